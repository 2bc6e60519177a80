"""Placing a model's nodes on a GPU backend or on wasm: nodes with a shader run on the GPU, the others on
wasm, in contiguous segments with the tensors to move between texture and wasm memory before each. The wasm
nodes are packaged as a bundle of their own (`wasm_part`, package.py) whose step ranges and tensor offsets
`link_wasm_part` fills into the GPU section. Nothing here knows a shader language: the GPU backend says which
tensors each of its nodes reads, and names itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from .errors import PackageError
from .ir import Graph, Node

# ops that only reinterpret their input's row-major elements: a GPU backend runs them as free views (the same
# texture or buffer) where their input is computed
VIEWS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"})


@dataclass
class Segment:
    backend: str  # the GPU backend's name (e.g. "webgl"), or "wasm"
    nodes: list[str]
    transfers: list[str] = field(default_factory=list)  # computed on the other backend, moved in before it runs


@dataclass
class Partition:
    placement: dict[str, str]  # node -> the GPU backend or "wasm"
    segments: list[Segment]  # contiguous runs of one backend, in graph (topological) order
    gpu_inputs: list[str]  # graph inputs the GPU reads: uploaded from the feeds
    gpu_outputs: list[str]  # graph outputs the GPU computes: read back at the end of a run
    wasm_inputs: list[str]  # inputs of the wasm part: graph inputs it reads, then the tensors moved to it
    wasm_outputs: list[str]  # outputs of the wasm part: the tensors moved to the GPU, then graph outputs

    @property
    def mixed(self) -> bool:
        return any(s.backend == "wasm" for s in self.segments)


def partition(graph: Graph, gpu_reads: dict[str, list[str]], gpu: str) -> Partition:
    """Place every node: one in `gpu_reads` (node name -> the tensors it reads on the GPU) runs on the GPU
    backend named `gpu`, any other on wasm. A free view (VIEWS) runs where its input is computed, and a run
    of GPU nodes that are all free views moves to wasm, so that they never cost a transfer of their own. The
    nodes, in graph order (topological), then form contiguous segments; each segment lists the tensors
    computed on the other backend that it reads and that have not been moved to its backend yet (each tensor
    moves at most once per direction, just before the first segment that needs it). Graph inputs go to both
    sides from the feeds, and each side holds its own constants, so neither ever transfers."""
    producer = {out: node for node in graph.nodes for out in node.outputs if out}
    placement: dict[str, str] = {}
    for node in graph.nodes:
        src = producer.get(node.input(0)) if node.inputs else None
        if node.name not in gpu_reads:
            placement[node.name] = "wasm"
        elif node.op_type in VIEWS and src is not None:
            placement[node.name] = placement[src.name]
        else:
            placement[node.name] = gpu
    runs: list[list[Node]] = []
    for node in graph.nodes:
        if runs and placement[runs[-1][0].name] == placement[node.name]:
            runs[-1].append(node)
        else:
            runs.append([node])
    for run in runs:
        if placement[run[0].name] == gpu and all(n.op_type in VIEWS for n in run):
            for n in run:
                placement[n.name] = "wasm"

    segments: list[Segment] = []
    moved: dict[str, set[str]] = {gpu: set(), "wasm": set()}
    read: dict[str, set[str]] = {gpu: set(), "wasm": set()}
    for node in graph.nodes:
        side = placement[node.name]
        if not segments or segments[-1].backend != side:
            segments.append(Segment(side, []))
        seg = segments[-1]
        seg.nodes.append(node.name)
        reads = gpu_reads[node.name] if side == gpu else [n for n in node.inputs if n]
        for name in reads:
            read[side].add(name)
            src = producer.get(name)
            if src is not None and placement[src.name] != side and name not in moved[side]:
                seg.transfers.append(name)
                moved[side].add(name)

    mixed = any(s.backend == "wasm" for s in segments)

    def side_of_output(name: str) -> str:
        src = producer.get(name)
        if src is not None:
            return placement[src.name]
        return "wasm" if mixed else gpu  # a graph input (or constant) passed through

    gpu_outputs = [o for o in graph.outputs if side_of_output(o) == gpu]
    wasm_graph_outputs = [o for o in graph.outputs if side_of_output(o) == "wasm"]
    to_gpu = [t for s in segments if s.backend == gpu for t in s.transfers]
    to_wasm = [t for s in segments if s.backend == "wasm" for t in s.transfers]
    gpu_inputs = [n for n in graph.inputs if n in read[gpu] or n in gpu_outputs]
    wasm_inputs = [n for n in graph.inputs if n in read["wasm"] or n in wasm_graph_outputs] + to_wasm
    wasm_outputs = to_gpu + [o for o in wasm_graph_outputs if o not in to_gpu]
    return Partition(placement, segments, gpu_inputs, gpu_outputs, wasm_inputs, wasm_outputs)


def wasm_part(graph: Graph, part: Partition) -> Graph:
    """The subgraph of the nodes placed on wasm: its inputs are the graph inputs they read and the tensors
    moved to them from the GPU, its outputs the tensors moved to the GPU and the graph outputs computed on
    wasm. It is lowered and planned like any model (a normal wasm bundle); its constants are only the ones
    these nodes read."""
    nodes = [n for n in graph.nodes if part.placement[n.name] == "wasm"]
    used = {name for n in nodes for name in [*n.inputs, *n.outputs] if name}
    used |= set(part.wasm_inputs) | set(part.wasm_outputs)
    values = {name: v for name, v in graph.values.items() if name in used}
    return Graph(
        f"{graph.name} (wasm part)",
        nodes,
        values,
        list(part.wasm_inputs),
        list(part.wasm_outputs),
        graph.opset,
        dict(graph.metadata),
    )


def link_wasm_part(section: dict, part: Partition, manifest: dict, directory: str, manifest_bytes: bytes) -> None:
    """Fill in what the wasm part's bundle decided: each wasm segment's range of its steps, and the byte
    offset in its memory of every tensor moved to (its input) or from (its output) wasm."""
    offsets = {e["name"]: e["offset"] for e in [*manifest["inputs"], *manifest["outputs"]]}
    step_nodes = [s["node"] for s in manifest["steps"]]
    pos = 0
    wasm_segments = [s for s in part.segments if s.backend == "wasm"]
    gpu = next(s.backend for s in part.segments if s.backend != "wasm")

    def belongs(step_node: str, nodes: set) -> bool:
        # the steps of a run-time If's branches are named after the branch's nodes, "<if>/then/<node>"
        return step_node in nodes or any(step_node.startswith(f"{n}/") for n in nodes)

    for seg, out in zip(wasm_segments, [s for s in section["segments"] if s["backend"] == "wasm"], strict=True):
        nodes = set(seg.nodes)
        start = pos
        while pos < len(step_nodes) and belongs(step_nodes[pos], nodes):
            pos += 1
        out["steps"] = [start, pos]
    if pos != len(step_nodes):
        raise PackageError(f"{gpu} plan: the wasm part's step {pos} (node {step_nodes[pos]!r}) is out of order")
    for out in section["segments"]:
        for t in out["transfers"]:
            t["offset"] = offsets[t["tensor"]]
    section["wasm"] = {
        "dir": directory,
        "manifest": {"bytes": len(manifest_bytes), "sha256": hashlib.sha256(manifest_bytes).hexdigest()},
    }
