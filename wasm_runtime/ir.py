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


@dataclass
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
