"""MaxPool, AveragePool (1-D/2-D, ceil_mode, auto_pad, count_include_pad) and GlobalAveragePool."""

from __future__ import annotations

import math

from ..ir import Node
from ..lowering import Buf, LoweringContext, lowers
from .spatial import as_2d, window


def _geometry(ctx: LoweringContext, node: Node):
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, y)
    xs, ys = ctx.shape(x), ctx.shape(y)
    if len(xs) not in (3, 4):
        raise ctx.fail(f"{len(xs) - 2}-D pooling is not supported (1-D and 2-D are)")
    kernel = tuple(node.attrs["kernel_shape"])
    win = window(ctx, node, xs[2:], kernel, ys[2:])
    # The spec (and onnxruntime) drop a ceil_mode window that would start in the right padding, but onnx's
    # shape inference still counts it: the output would be one larger than the reference's, its last row or
    # column all -inf (max) / 0 (average). Refuse rather than compute a wrong shape.
    for size, out, stride, begin in zip(xs[2:], ys[2:], win["strides"], win["begin"], strict=True):
        if out > 1 and (out - 1) * stride - begin >= size:
            raise ctx.fail(
                f"output size {out} (from shape inference) includes a window that starts in the right padding, "
                f"which ONNX drops (ceil_mode); the output would have {out - 1} there"
            )
    planes = xs[0] * xs[1]
    return x, y, planes, as_2d(xs[2:], 1), as_2d(ys[2:], 1), as_2d(kernel, 1), win


@lowers("MaxPool")
def max_pool(ctx: LoweringContext, node: Node) -> None:
    ctx.require_unused(node, 1, "Indices")
    x, y, planes, (H, W), (OH, OW), (KH, KW), win = _geometry(ctx, node)
    SH, SW = as_2d(win["strides"], 1)
    DH, DW = as_2d(win["dilations"], 1)
    PT, PL = as_2d(win["begin"], 0)
    ctx.emit(
        "f32_maxpool2d",
        planes,
        H,
        W,
        OH,
        OW,
        KH,
        KW,
        SH,
        SW,
        PT,
        PL,
        DH,
        DW,
        Buf(x),
        Buf(y),
        split=(planes, 0, {13: H * W * 4, 14: OH * OW * 4}),
    )


@lowers("AveragePool")
def average_pool(ctx: LoweringContext, node: Node) -> None:
    x, y, planes, (H, W), (OH, OW), (KH, KW), win = _geometry(ctx, node)
    if any(d != 1 for d in win["dilations"]):
        raise ctx.fail("AveragePool with dilations is not supported")
    SH, SW = as_2d(win["strides"], 1)
    PT, PL = as_2d(win["begin"], 0)
    PB, PR = as_2d(win["end"], 0)
    cip = int(node.attrs.get("count_include_pad", 0))
    ctx.emit(
        "f32_avgpool2d",
        planes,
        H,
        W,
        OH,
        OW,
        KH,
        KW,
        SH,
        SW,
        PT,
        PL,
        PB,
        PR,
        cip,
        Buf(x),
        Buf(y),
        split=(planes, 0, {14: H * W * 4, 15: OH * OW * 4}),
    )


@lowers("GlobalAveragePool")
def global_average_pool(ctx: LoweringContext, node: Node) -> None:
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, y)
    xs = ctx.shape(x)
    planes, size = xs[0] * xs[1], math.prod(xs[2:])
    ctx.emit("f32_global_avgpool", planes, size, Buf(x), Buf(y), split=(planes, 0, {2: size * 4, 3: 4}))
