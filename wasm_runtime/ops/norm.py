"""BatchNormalization (inference) and LRN."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Node
from ..lowering import Buf, Const, LoweringContext, lowers
from .normalization import optional_output


@lowers("BatchNormalization")
def batch_norm(ctx: LoweringContext, node: Node) -> None:
    """y = (x - mean) / sqrt(var + eps) * gamma + beta. With constant statistics, ==  x * scale + shift with
    scale and shift computed here once, in float64; with statistics computed at run time, a kernel derives
    them per channel. training_mode=1 normalizes with the batch's statistics and outputs the updated running
    mean and variance."""
    x, y = node.input(0), node.outputs[0]
    params = [node.input(i) for i in range(1, 5)]
    ctx.require_dtype(x, y, *params)
    xs = ctx.shape(x)
    N, C, inner = xs[0], (xs[1] if len(xs) > 1 else 1), math.prod(xs[2:])
    eps = float(node.attrs.get("epsilon", 1e-5))
    split = (C, "C", {"x": inner * 4, "scale": 4, "bias": 4, "mean": 4, "var": 4, "y": inner * 4})
    if node.attrs.get("training_mode", 0):
        outs = [optional_output(ctx, node, i) for i in (1, 2)]
        ctx.require_dtype(*(o.name for o in outs if o is not None))
        ctx.emit(
            "f32_batchnorm_train",
            C,
            N,
            inner,
            C * inner,
            *(Buf(n) for n in [x, *params]),
            Buf(y),
            *outs,
            eps,
            float(node.attrs.get("momentum", 0.9)),
            split=(
                C,
                "C",
                {
                    "x": inner * 4,
                    "scale": 4,
                    "bias": 4,
                    "in_mean": 4,
                    "in_var": 4,
                    "y": inner * 4,
                    "out_mean": 4,
                    "out_var": 4,
                },
            ),
        )
        return
    for i, what in ((1, "running mean"), (2, "running variance")):
        ctx.require_unused(node, i, what)
    consts = [ctx.const(n) for n in params]
    if any(c is None for c in consts):
        ctx.emit("f32_batchnorm", C, N, inner, C * inner, *(Buf(n) for n in [x, *params]), Buf(y), eps, split=split)
        return
    gamma, beta, mean, var = (c.astype(np.float64) for c in consts)
    scale = gamma / np.sqrt(var + eps)
    shift = beta - mean * scale
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
