"""Softmax, LogSoftmax and Hardmax: one spec, the input as [outer, n, inner] around `axis`. Before opset 13 the
input is coerced to 2-D at `axis` (default 1): n is the product of the dims from `axis` on and inner is 1; from
13 on they are taken along `axis` (default -1)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir import Graph, Node
from .context import Buf, LoweringContext
from .reduce import emit_axis
from .spatial import SpecError


@dataclass(frozen=True)
class SoftmaxSpec:
    node: Node
    x: str
    y: str
    outer: int
    n: int
    inner: int
    axis: int  # non-negative; opset < 13 coerces the input to 2-D [outer, n] at it

    @classmethod
    def parse(cls, graph: Graph, node: Node) -> SoftmaxSpec:
        x, y = node.input(0), node.outputs[0]
        shape = tuple(graph.values[x].shape)
        rank = len(shape)
        legacy = graph.opset < 13
        axis = int(node.attrs.get("axis", 1 if legacy else -1))
        if not -rank <= axis < max(rank, 1):
            raise SpecError(node, f"axis {axis} is out of range for rank {rank}")
        axis = axis + rank if axis < 0 else axis
        if legacy:
            return cls(node, x, y, math.prod(shape[:axis]), math.prod(shape[axis:]), 1, axis)
        return cls(node, x, y, math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1 :]), axis)


def softmax(ctx: LoweringContext, spec: SoftmaxSpec) -> None:
    x, y = spec.x, spec.y
    ctx.require_dtype(x, y)
    outer, length, inner = spec.outer, spec.n, spec.inner
    row = length * inner * 4  # bytes from one outer index to the next
    ctx.emit("f32_softmax", outer, length, inner, Buf(x), Buf(y), split=(outer, "outer", {"x": row, "y": row}))


# LogSoftmax, Hardmax: kernel(outer, n, inner, pitch, x, y), split over outer or inner (reduce.emit_axis)
_AXIS_KERNELS = {"LogSoftmax": "f32_log_softmax", "Hardmax": "f32_hardmax"}


def along_axis(ctx: LoweringContext, spec: SoftmaxSpec) -> None:
    ctx.require_dtype(spec.x, spec.y)
    outer, n, inner = spec.outer, spec.n, spec.inner
    if outer * n * inner:
        bufs = (Buf(spec.x), Buf(spec.y))
        emit_axis(ctx, _AXIS_KERNELS[spec.node.op_type], outer, n, inner, bufs=bufs, out_rows=((4, n), (4, n)))


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    "Softmax": softmax,
    "LogSoftmax": along_axis,
    "Hardmax": along_axis,
}
SPECS = dict.fromkeys(LOWERINGS, SoftmaxSpec.parse)
