"""BatchNormalization (inference) and LRN."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Node
from ..lowering import Buf, Const, LoweringContext, lowers


@lowers("BatchNormalization")
def batch_norm(ctx: LoweringContext, node: Node) -> None:
    """y = (x - mean) / sqrt(var + eps) * gamma + beta  ==  x * scale + shift, with scale and shift
    computed here once, in float64, from the constant statistics."""
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, y)
    if node.attrs.get("training_mode", 0):
        raise ctx.fail("training_mode=1 is not supported (inference only)")
    for i, what in ((1, "running mean"), (2, "running variance")):
        ctx.require_unused(node, i, what)
    gamma, beta, mean, var = (
        ctx.need_const(node.input(i), name).astype(np.float64)
        for i, name in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var"))
    )
    scale = gamma / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
    shift = beta - mean * scale
    xs = ctx.shape(x)
    ctx.emit(
        "f32_channel_affine",
        xs[0],
        xs[1],
        math.prod(xs[2:]),
        Buf(x),
        Const(scale.astype(np.float32), "bn.scale"),
        Const(shift.astype(np.float32), "bn.shift"),
        Buf(y),
    )


@lowers("LRN")
def lrn(ctx: LoweringContext, node: Node) -> None:
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, y)
    xs = ctx.shape(x)
    a = node.attrs
    ctx.emit(
        "f32_lrn",
        xs[0],
        xs[1],
        math.prod(xs[2:]),
        int(a["size"]),
        float(a.get("alpha", 1e-4)),
        float(a.get("beta", 0.75)),
        float(a.get("bias", 1.0)),
        Buf(x),
        Buf(y),
    )
