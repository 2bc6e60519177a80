"""Softmax. Before opset 13 the input is coerced to 2-D at `axis` (default 1); from 13 on it is taken
along `axis` (default -1)."""

from __future__ import annotations

import math

from ..ir import Node
from ..lowering import Buf, LoweringContext, lowers


@lowers("Softmax")
def softmax(ctx: LoweringContext, node: Node) -> None:
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, y)
    shape = ctx.shape(x)
    rank = len(shape)
    legacy = ctx.graph.opset < 13
    axis = int(node.attrs.get("axis", 1 if legacy else -1))
    axis = axis + rank if axis < 0 else axis
    if legacy:
        outer, length, inner = math.prod(shape[:axis]), math.prod(shape[axis:]), 1
    else:
        outer, length, inner = math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1 :])
    row = length * inner * 4  # bytes from one outer index to the next
    ctx.emit("f32_softmax", outer, length, inner, Buf(x), Buf(y), split=(outer, "outer", {"x": row, "y": row}))
