"""The GPU plan of an optimized graph: which nodes get a shader, the C4 rewrite, the programs, the partition
between GPU and wasm, and the manifest's `webgl` section (textures, constants, programs, steps, segments)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import PackageError
from ..ir import Graph, Node
from ..partition import VIEWS, Partition
from ..partition import partition as place_nodes
from .c4_layout import rewrite_to_c4
from .layout import MAX_WIDTH, Unsupported, texture_size
from .normalization import split_long_softmax_rows
from .program import Program, ShaderContext, program_source
from .shaders import SHADERS
from .textures import TexturePlan, plan_textures

BACKEND = "webgl"


@dataclass
class WebGLPlan:
    section: dict
    weights: bytes
    unsupported: list[tuple[str, str, str]] = field(default_factory=list)  # (node, op, reason)
    partition: Partition | None = None  # None: no node runs on the GPU


def partition(graph: Graph, gpu_reads: dict[str, list[str]]) -> Partition:
    """wasm_runtime.partition.partition with the GPU side named "webgl"."""
    return place_nodes(graph, gpu_reads, BACKEND)


def _program(g: ShaderContext, node: Node) -> Program:
    """The flat4 program of a node (raises Unsupported with the reason when it has none)."""
    shader = SHADERS.get(node.op_type)
    if shader is None or shader.internal:
        raise Unsupported(f"no shader for {node.op_type}")
    return shader.flat4(g, node)


def plan_webgl(graph: Graph) -> WebGLPlan:
    """The GPU plan of an optimized graph. Nodes without a shader are listed in `unsupported` and run on wasm
    (`partition`): the section then also names the wasm part and the segments with their transfers. When no
    node with a shader is left for the GPU, the section is only {"unsupported": [...]} and `partition` None.
    Convolutions and the ops around them run in the C4 layout (c4_layout.py adds the relayouts), so the
    partition and the textures are those of the rewritten graph; the wasm side keeps the original names."""
    unsupported: list[tuple[str, str, str]] = []
    supported: set[str] = set()
    g0 = ShaderContext(dataclasses.replace(graph, values=dict(graph.values)))  # generators may add constants

    def float_tensor(name: str) -> None:
        v = g0.graph.values[name]
        if v.dtype != np.float32:
            raise Unsupported(f"tensor {name!r} is {v.dtype.name} (the GPU runs float32)")
        texture_size(math.prod(v.shape))

    for node in graph.nodes:
        if node.domain not in ("", "ai.onnx", "wasm_runtime"):
            unsupported.append((node.name, node.op_type, f"domain {node.domain}"))
            continue
        try:
            if node.op_type in VIEWS:
                for extra in node.outputs[1:]:
                    if extra and (graph.consumers().get(extra) or extra in graph.outputs):
                        raise Unsupported(f"output {extra!r}")
                float_tensor(node.input(0))
            else:
                prog = _program(g0, node)
                for name in [*prog.inputs, node.outputs[0]]:
                    float_tensor(name)
                if len(prog.inputs) > 15:
                    raise Unsupported("more than 15 inputs")
            supported.add(node.name)
        except Unsupported as err:
            unsupported.append((node.name, node.op_type, str(err)))
    listing = [{"node": n, "op": o, "reason": r} for n, o, r in unsupported]

    c4 = rewrite_to_c4(graph, supported)
    gpu_graph = c4.graph
    added = split_long_softmax_rows(gpu_graph, supported)
    internal = added | {n.name for n in gpu_graph.nodes if n.op_type == "Relayout"}
    g = ShaderContext(gpu_graph, c4.grids)
    programs: dict[str, Program | None] = {}  # None: a free view (the same texture)
    for node in gpu_graph.nodes:
        if node.name not in supported and node.name not in internal:
            continue
        if node.op_type in VIEWS:
            programs[node.name] = None
        elif node.name in c4.nodes:
            programs[node.name] = SHADERS[node.op_type].c4.program(g, node)
        else:
            programs[node.name] = SHADERS[node.op_type].flat4(g, node)
    by_name = {n.name: n for n in gpu_graph.nodes}
    gpu_reads = {name: (p.inputs if p else [by_name[name].input(0)]) for name, p in programs.items()}
    part = partition(gpu_graph, gpu_reads)
    if not any(part.placement[name] == BACKEND and p is not None for name, p in programs.items()):
        return WebGLPlan({"unsupported": listing}, b"", unsupported)
    dims = {**g.dims, **{k: v.size for k, v in c4.grids.items()}}
    textures = plan_textures(gpu_graph, part, programs, dims)
    section, weights = _section(gpu_graph, part, programs, textures)
    part.placement = {n.name: part.placement[n.name] for n in graph.nodes}  # the model's nodes, no relayouts
    section["placement"] = part.placement
    if unsupported:
        section["unsupported"] = listing
    return WebGLPlan(section, weights, unsupported, part)


def _section(
    graph: Graph, part: Partition, programs: dict[str, Program | None], tex: TexturePlan
) -> tuple[dict, bytes]:
    """The manifest's `webgl` section and the constants' bytes: programs (deduplicated sources), steps and
    segments in the textures `tex` planned."""

    def elements(name: str) -> int:
        return math.prod(graph.values[name].shape)

    weights = bytearray()
    constants = []
    for name in tex.constants:
        data = graph.const(name)
        raw = np.ascontiguousarray(data, dtype=np.float32).tobytes()
        constants.append({"name": name, "texture": tex.where[name], "offset": len(weights), "elements": int(data.size)})
        weights += raw + b"\0" * (-len(raw) % 16)

    by_name = {n.name: n for n in graph.nodes}
    steps, sources, program_index, segments = [], [], {}, []
    for seg in part.segments:
        if seg.backend == "wasm":
            moves = [{"tensor": t, "texture": tex.texture(t), "elements": elements(t)} for t in seg.transfers]
            segments.append({"backend": "wasm", "steps": None, "transfers": moves})
            continue
        start = len(steps)
        moves = [{"tensor": t, "texture": tex.where[t], "elements": elements(t)} for t in seg.transfers]
        for node_name in seg.nodes:
            prog = programs[node_name]
            if prog is None:
                continue
            node = by_name[node_name]
            out = node.outputs[0]
            outs = node.outputs[: prog.outputs]
            widths = [tex.textures[tex.texture(n)][0] for n in prog.inputs]
            src = program_source(prog, widths, tex.textures[tex.where[out]][0], elements(out))
            if src not in program_index:
                program_index[src] = len(sources)
                sources.append({"source": src, "inputs": len(prog.inputs)})
            steps.append(
                {
                    "program": program_index[src],
                    "inputs": [tex.texture(n) for n in prog.inputs],
                    "output": tex.where[out],
                    **({"outputs": [tex.where[name] for name in outs]} if len(outs) > 1 else {}),
                    "node": node.name,
                    "op": node.op_type,
                }
            )
        segments.append({"backend": BACKEND, "steps": [start, len(steps)], "transfers": moves})

    def entry(name: str) -> dict:
        r = tex.root(name)
        if r not in tex.where:
            raise PackageError(f"webgl plan: graph output {name!r} is not computed on the GPU")
        return {
            "name": name,
            "texture": tex.where[r],
            "shape": list(graph.values[name].shape),
            "elements": elements(name),
        }

    section = {
        "version": 1,
        "layout": "flat4",
        "max_width": MAX_WIDTH,
        "textures": tex.textures,
        "constants": constants,
        "inputs": [entry(n) for n in part.gpu_inputs],
        "outputs": [entry(n) for n in part.gpu_outputs],
        "programs": sources,
        "steps": steps,
        "segments": segments,
        "placement": part.placement,
    }
    return section, bytes(weights)
