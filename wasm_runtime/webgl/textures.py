"""The texture planner of the GPU plan: which texture holds which tensor, reusing a texture once its tensor is
dead (the GPU counterpart of wasm_runtime/planner.py, in textures of a size instead of bytes of an arena)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import PackageError
from ..ir import Graph
from ..partition import Partition
from .layout import texture_size
from .program import Program


@dataclass
class TexturePlan:
    textures: list[list[int]] = field(default_factory=list)  # [width, height] of each texture
    where: dict[str, int] = field(default_factory=dict)  # tensor -> its texture (free views: see root)
    constants: list[str] = field(default_factory=list)  # constants uploaded from the weights, in upload order
    alias: dict[str, str] = field(default_factory=dict)  # output of a free view -> its input

    def root(self, name: str) -> str:
        """The tensor whose texture `name` is (a free view's output is its input's texture)."""
        while name in self.alias:
            name = self.alias[name]
        return name

    def texture(self, name: str) -> int:
        return self.where[self.root(name)]


def plan_textures(
    graph: Graph, part: Partition, programs: dict[str, Program | None], dims: dict[str, tuple[int, int]]
) -> TexturePlan:
    """Textures of the GPU segments, in the order their steps run. Constants and graph inputs get textures of
    their own; any other tensor takes a free texture of its size (or a new one) when it is computed or moved
    in, and frees it after the last GPU step reading it, or after the GPU segment before the wasm segment it
    is read back for, whichever is later. Graph outputs computed on the GPU keep theirs. `programs` has the
    GPU nodes (None: a free view), `dims` the texture size of tensors not in flat4."""
    by_name = {n.name: n for n in graph.nodes}
    plan = TexturePlan()
    plan.alias = {
        by_name[n].outputs[0]: by_name[n].input(0)
        for seg in part.segments
        if seg.backend != "wasm"
        for n in seg.nodes
        if programs[n] is None
    }
    root = plan.root

    # GPU step index of every program node, and how many GPU steps run before each segment
    index: dict[str, int] = {}
    before: list[int] = []
    for seg in part.segments:
        before.append(len(index))
        if seg.backend != "wasm":
            index.update((n, len(index)) for n in [n for n in seg.nodes if programs[n] is not None])
    last_use: dict[str, int] = {}
    for name, k in index.items():
        for t in programs[name].inputs:
            last_use[root(t)] = k
    for seg, b in zip(part.segments, before, strict=True):
        if seg.backend == "wasm":
            for t in seg.transfers:  # read back just before this segment, after GPU step b - 1
                last_use[root(t)] = max(last_use.get(root(t), -1), b - 1)
    frees: dict[int, list[str]] = {}
    for name, k in last_use.items():
        frees.setdefault(k, []).append(name)
    keep = {root(o) for o in part.gpu_outputs} | set(part.gpu_inputs)

    textures, where = plan.textures, plan.where
    free: dict[tuple[int, int], list[int]] = {}
    live: set[str] = set()

    def size(name: str) -> tuple[int, int]:
        return tuple(dims[name]) if name in dims else texture_size(math.prod(graph.values[name].shape))

    def new_texture(name: str) -> int:
        textures.append(list(size(name)))
        return len(textures) - 1

    def take(name: str) -> None:
        pool = free.get(size(name))
        where[name] = pool.pop() if pool else new_texture(name)
        live.add(name)

    def release(name: str) -> None:
        if name in live and name not in keep:
            live.discard(name)
            free.setdefault(tuple(textures[where[name]]), []).append(where[name])

    for name in part.gpu_inputs:
        where[name] = new_texture(name)
    for seg in part.segments:
        if seg.backend == "wasm":
            continue
        for t in seg.transfers:
            take(t)
        for node_name in seg.nodes:
            prog = programs[node_name]
            if prog is None:
                continue
            for name in prog.inputs:
                r = root(name)
                if r not in where:
                    if graph.const(r) is None:
                        raise PackageError(f"webgl plan: tensor {r!r} read by node {node_name!r} has no producer")
                    where[r] = new_texture(r)
                    plan.constants.append(r)
            outs = by_name[node_name].outputs[: prog.outputs]
            for name in outs:
                take(name)
            # free what this step read for the last time, and its outputs if nothing reads them
            k = index[node_name]
            for name in frees.get(k, []) + [name for name in outs if last_use.get(name, -1) <= k]:
                release(name)
    return plan
