"""The project's own graph IR: what every later stage (passes, planner, bundle writer) works on.

Values are named tensors with a numpy dtype and a shape; a value with `data` is a constant (an
initializer, a folded node). Large uniform constants are kept as zero-stride numpy views
(`np.broadcast_to`) so a 400 MB ConstantOfShape costs nothing until the bundle decides how to ship it.
Nodes keep ONNX op types and attributes with the spec's defaults filled in, so a lowering never has to
know which attributes the exporter left out. The IR does not know about wasm.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Value:
    name: str
    dtype: np.dtype
    shape: tuple[int, ...] | None
    data: np.ndarray | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def nbytes(self) -> int:
        assert self.shape is not None, self.name
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


@dataclass(eq=False)  # a node is itself: `node in graph.nodes` and list.remove compare identities, not fields
class Node:
    op_type: str
    name: str
    inputs: list[str]  # "" marks an omitted optional input
    outputs: list[str]
    attrs: dict = field(default_factory=dict)
    domain: str = ""

    def input(self, i: int) -> str:
        """Name of input i, or "" if absent."""
        return self.inputs[i] if i < len(self.inputs) else ""


@dataclass
class Graph:
    name: str
    nodes: list[Node]
    values: dict[str, Value]
    inputs: list[str]
    outputs: list[str]
    opset: int
    metadata: dict = field(default_factory=dict)

    def value(self, name: str) -> Value:
        return self.values[name]

    def const(self, name: str) -> np.ndarray | None:
        """The constant behind `name`, or None when it is computed at run time (or absent)."""
        if not name:
            return None
        v = self.values.get(name)
        return None if v is None else v.data

    def shape(self, name: str) -> tuple[int, ...]:
        return self.values[name].shape

    def consumers(self) -> dict[str, list[Node]]:
        uses: dict[str, list[Node]] = {}
        for node in self.nodes:
            for name in node.inputs:
                if name:
                    uses.setdefault(name, []).append(node)
        return uses

    def producers(self) -> dict[str, Node]:
        return {out: node for node in self.nodes for out in node.outputs if out}

    def constants(self) -> Iterator[Value]:
        return (v for v in self.values.values() if v.is_const)

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.nodes:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
        return dict(sorted(counts.items()))


def is_uniform(array: np.ndarray) -> bool:
    """True for zero-stride broadcast views: one value repeated, stored once."""
    return array.size > 1 and all(s == 0 for s in array.strides)


# graph surgery shared by the optimizer's passes ---------------------------------------------------------


def unique_name(graph: Graph, base: str) -> str:
    taken = set(graph.values) | {n.name for n in graph.nodes} | {o for n in graph.nodes for o in n.outputs}
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    return name


def add_constant(graph: Graph, base: str, array: np.ndarray) -> str:
    name = unique_name(graph, base)
    graph.values[name] = Value(name, array.dtype, tuple(array.shape), array)
    return name


def replace_uses(graph: Graph, old: str, new: str) -> None:
    """Every consumer (and graph output slot) of `old` reads `new` instead."""
    for node in graph.nodes:
        node.inputs = [new if i == old else i for i in node.inputs]
    graph.outputs = [new if o == old else o for o in graph.outputs]


def bypass(graph: Graph, node: Node, source: str) -> bool:
    """Remove `node`, whose single output equals `source`. If that output is a graph output, the
    producer of `source` is renamed to write it instead (possible when nothing else reads `source` and
    it is not itself a graph input or constant). Returns False (graph unchanged) when neither works."""
    out = node.outputs[0]
    if out in graph.outputs:
        producer = graph.producers().get(source)
        users = [n for n in graph.nodes if source in n.inputs and n is not node]
        if producer is None or users or source in graph.outputs:
            return False
        producer.outputs = [out if o == source else o for o in producer.outputs]
        graph.values[out] = Value(out, graph.values[source].dtype, graph.values[source].shape)
        graph.nodes.remove(node)
        return True
    graph.nodes.remove(node)
    replace_uses(graph, out, source)
    return True


def single_consumer(graph: Graph, name: str, uses: dict[str, list[Node]] | None = None) -> Node | None:
    """The only node reading `name`, if exactly one does and it is not also a graph output."""
    if name in graph.outputs:
        return None
    readers = (uses if uses is not None else graph.consumers()).get(name, [])
    return readers[0] if len(readers) == 1 and readers[0].inputs.count(name) == 1 else None


def toposort(graph: Graph) -> None:
    """Reorder nodes so every input is produced before it is read, keeping the existing order where it
    already is valid (a fusion can move a consumer ahead of one of its new inputs)."""
    produced_by = {o: n for n in graph.nodes for o in n.outputs if o}
    order: list[Node] = []
    state: dict[int, int] = {}  # 1 = visiting, 2 = done

    def visit(node: Node) -> None:
        mark = state.get(id(node))
        if mark == 2:
            return
        if mark == 1:
            raise ValueError(f"cycle through node {node.name!r}")
        state[id(node)] = 1
        for name in node.inputs:
            dep = produced_by.get(name)
            if dep is not None:
                visit(dep)
        state[id(node)] = 2
        order.append(node)

    for node in graph.nodes:
        visit(node)
    graph.nodes = order
