"""Memory plan: where every tensor lives in the one wasm memory.

    [weights_offset, +W)       constants: the bytes of weights.bin, then constants filled at load time
    [arena_offset, +A)         activations, graph inputs/outputs and per-step scratch, reused by lifetime

(memory_map.py places these regions and the rest of the memory.) Aliased tensors (Reshape, Flatten, ...) share
their source's storage. Each arena tensor lives from the first step that touches it to the last; graph inputs
from before the first step, graph outputs past the last. Offsets come from greedy-by-size placement (place()):
largest first, each at the lowest offset that does not overlap a placed tensor with an intersecting lifetime
(the strategy TFLite's arena planner uses). A dynamic-shape bundle's executor runs the same placement on the
sizes of each input shape (dynamic.materialize, web/dynamic.js).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import Graph, is_uniform
from .lowering import Buf, Const, Derived, Lowered, Scratch
from .memory_map import align

# uniform constants at least this large are filled by a kernel at load time instead of shipped as bytes
FILL_MIN_BYTES = 4096


@dataclass
class WeightItem:
    key: object
    array: np.ndarray
    offset: int = 0
    fill: bool = False  # uniform: filled at load time, not stored in weights.bin
    derived: Derived | None = None  # computed at load time by an init step (array is then empty)

    @property
    def nbytes(self) -> int:
        return self.derived.nbytes if self.derived is not None else self.array.nbytes

    @property
    def in_file(self) -> bool:
        return not self.fill and self.derived is None


@dataclass
class ArenaItem:
    key: object
    nbytes: int
    first: int
    last: int
    offset: int = 0


@dataclass
class MemoryPlan:
    weights: list[WeightItem]
    weights_file_bytes: int
    weights_bytes: int
    arena: list[ArenaItem]
    arena_bytes: int
    unshared_bytes: int  # sum of every arena tensor and scratch buffer
    root: dict[str, str]  # tensor name -> the tensor that owns its storage
    weight_of: dict[object, WeightItem]
    arena_of: dict[object, ArenaItem]

    def relative_address(self, arg) -> tuple[str, int]:
        """(region, offset within region) of a pointer argument."""
        if isinstance(arg, Buf):
            key = self.root[arg.name]
            if key in self.weight_of:
                return "weights", self.weight_of[key].offset + arg.offset
            return "arena", self.arena_of[key].offset + arg.offset
        if isinstance(arg, (Const, Derived)):
            return "weights", self.weight_of[id(arg)].offset
        if isinstance(arg, Scratch):
            return "arena", self.arena_of[id(arg)].offset
        raise TypeError(arg)


def _root(aliases: dict[str, str], name: str) -> str:
    while name in aliases:
        name = aliases[name]
    return name


def place(sizes: list[int], lives: list[tuple[int, int]]) -> tuple[list[int], int]:
    """Greedy by size: (offset of each item, aligned bytes of the whole arena) for items of `sizes` bytes
    live over the inclusive step ranges `lives` (graph inputs from step -1). Ties in size go to the item that
    is live first, then to the earlier item."""
    # the placed items live at each step, so finding those an item overlaps costs its lifetime, not the
    # number placed: a 10k-node chain plans in well under a second
    live_at: dict[int, list[int]] = {}
    offsets = [0] * len(sizes)
    top = 0
    for k in sorted(range(len(sizes)), key=lambda k: (-sizes[k], lives[k][0], k)):
        first, last = lives[k]
        seen: dict[int, None] = {}
        for step in range(first, last + 1):
            seen.update(dict.fromkeys(live_at.get(step, ())))
        offset = 0
        for p in sorted(seen, key=lambda p: offsets[p]):
            if offset + sizes[k] <= offsets[p]:
                break
            offset = max(offset, align(offsets[p] + sizes[p]))
        offsets[k] = offset
        for step in range(first, last + 1):
            live_at.setdefault(step, []).append(k)
        top = max(top, offset + sizes[k])
    return offsets, align(top)


def plan_memory(graph: Graph, lowered: Lowered) -> MemoryPlan:
    names = set(graph.inputs) | set(graph.outputs) | set(lowered.aliases)
    for step in lowered.steps:
        names.update(a.name for a in step.args if isinstance(a, Buf))
        names.update(cond for cond, _ in step.guard)
        for d in (a for a in step.args if isinstance(a, Derived)):
            names.update(x.name for x in d.args if isinstance(x, Buf))
    root = {n: _root(lowered.aliases, n) for n in names}

    weights: dict[object, WeightItem] = {}
    arena: dict[object, ArenaItem] = {}
    end = len(lowered.steps)

    def touch(key, nbytes, at):
        item = arena.get(key)
        if item is None:
            arena[key] = ArenaItem(key, nbytes, at, at)
        else:
            item.first, item.last = min(item.first, at), max(item.last, at)

    def tensor(name, at):
        key = root[name]
        data = graph.const(key)
        if data is not None:
            if key not in weights:
                weights[key] = WeightItem(key, data)
        else:
            touch(key, graph.values[key].nbytes, at)

    for name in graph.inputs:
        tensor(name, -1)
    for i, step in enumerate(lowered.steps):
        for cond, _ in step.guard:  # the executor reads the condition before the step
            tensor(cond, i)
        for a in step.args:
            if isinstance(a, Buf):
                tensor(a.name, i)
            elif isinstance(a, Const) and id(a) not in weights:
                weights[id(a)] = WeightItem(id(a), a.array)
            elif isinstance(a, Derived) and id(a) not in weights:
                for src in a.args:  # the shipped weights it is computed from
                    if isinstance(src, Buf):
                        tensor(src.name, i)
                    elif isinstance(src, Const) and id(src) not in weights:
                        weights[id(src)] = WeightItem(id(src), src.array)
                weights[id(a)] = WeightItem(id(a), np.empty(0, np.uint8), derived=a)
            elif isinstance(a, Scratch):
                touch(id(a), a.nbytes, i)
    for name in graph.outputs:
        tensor(name, end)

    for w in weights.values():
        w.fill = w.array.nbytes >= FILL_MIN_BYTES and w.array.dtype.itemsize == 4 and is_uniform(w.array)
    # bytes in the file first, fills and load-time derived weights after, so weights.bin is one contiguous
    # prefix of the region
    items = sorted(weights.values(), key=lambda w: not w.in_file)
    offset = 0
    file_bytes = 0
    for w in items:
        w.offset = offset
        offset = align(offset + w.nbytes)
        if w.in_file:
            file_bytes = offset
    arena_items = list(arena.values())
    offsets, arena_bytes = place([it.nbytes for it in arena_items], [(it.first, it.last) for it in arena_items])
    for item, off in zip(arena_items, offsets, strict=True):
        item.offset = off
    unshared = sum(it.nbytes for it in arena_items)  # what the arena would need without any reuse
    return MemoryPlan(items, file_bytes, offset, arena_items, arena_bytes, unshared, root, weights, arena)
