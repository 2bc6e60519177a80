"""MaxPool (with Indices), AveragePool, LpPool (1-D/2-D/3-D, ceil_mode, auto_pad, dilations, count_include_pad),
GlobalAveragePool, GlobalMaxPool, GlobalLpPool and MaxUnpool.

1-D and 2-D max/average pooling without dilated averages or Indices run on the tuned 2-D kernels
(f32-pool2d.c); everything else on the general 3-D kernel (f32-poolnd.c), 1-D/2-D as leading size-1 dims."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Node
from ..lowering import Buf, LoweringContext, i32, lowers
from .normalization import optional_output
from .spatial import as_2d, window


def _geometry(ctx: LoweringContext, node: Node):
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, y)
    xs, ys = ctx.shape(x), ctx.shape(y)
    if len(xs) not in (3, 4, 5):
        raise ctx.fail(f"{len(xs) - 2}-D pooling is not supported (1-D, 2-D and 3-D are)")
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
    return x, y, win


def _geometry_2d(ctx: LoweringContext, node: Node):
    """_geometry for the 2-D kernels: sizes as (H, W) pairs."""
    x, y, win = _geometry(ctx, node)
    xs, ys = ctx.shape(x), ctx.shape(y)
    planes = xs[0] * xs[1]
    kernel = tuple(node.attrs["kernel_shape"])
    return x, y, planes, as_2d(xs[2:], 1), as_2d(ys[2:], 1), as_2d(kernel, 1), win


def _as_3d(sizes, fill: int) -> list[int]:
    return [fill] * (3 - len(sizes)) + list(sizes)


def _emit_poolnd(ctx: LoweringContext, node: Node, mode: int, p: int = 0, indices: Buf | None = None) -> None:
    """The general kernel: mode 0 max, 1 average, 2 Lp (power p)."""
    x, y = node.input(0), node.outputs[0]
    xs, ys = ctx.shape(x), ctx.shape(y)
    kernel = tuple(node.attrs["kernel_shape"])
    win = window(ctx, node, xs[2:], kernel, ys[2:])
    geo = [
        *_as_3d(xs[2:], 1),
        *_as_3d(ys[2:], 1),
        *_as_3d(kernel, 1),
        *_as_3d(win["strides"], 1),
        *_as_3d(win["begin"], 0),
        *_as_3d(win["end"], 0),
        *_as_3d(win["dilations"], 1),
        int(node.attrs.get("count_include_pad", 0)),
        int(node.attrs.get("storage_order", 0)),
    ]
    planes = xs[0] * xs[1]
    plane_in, plane_out = math.prod(xs[2:]), math.prod(ys[2:])
    if planes * plane_out == 0:
        return
    ctx.emit(
        "f32_poolnd",
        planes,
        0,
        i32(geo),
        mode,
        p,
        Buf(x),
        Buf(y),
        indices,
        split=(planes, "planes", {"plane0": 1, "x": plane_in * 4, "y": plane_out * 4, "indices": plane_out * 8}),
    )


@lowers("MaxPool")
def max_pool(ctx: LoweringContext, node: Node) -> None:
    indices = optional_output(ctx, node, 1)
    if indices is not None:
        ctx.require_dtype(indices.name, dtypes=(np.int64,))
    xs = ctx.shape(node.input(0))
    if indices is not None or len(xs) == 5:
        _geometry(ctx, node)  # the checks
        _emit_poolnd(ctx, node, 0, indices=indices)
        return
    x, y, planes, (H, W), (OH, OW), (KH, KW), win = _geometry_2d(ctx, node)
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
        split=(planes, "planes", {"x": H * W * 4, "y": OH * OW * 4}),
    )


@lowers("AveragePool")
def average_pool(ctx: LoweringContext, node: Node) -> None:
    x, y, win = _geometry(ctx, node)
    if len(ctx.shape(x)) == 5 or any(d != 1 for d in win["dilations"]):
        _emit_poolnd(ctx, node, 1)
        return
    x, y, planes, (H, W), (OH, OW), (KH, KW), win = _geometry_2d(ctx, node)
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
        split=(planes, "planes", {"x": H * W * 4, "y": OH * OW * 4}),
    )


@lowers("GlobalAveragePool")
def global_average_pool(ctx: LoweringContext, node: Node) -> None:
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, y)
    xs = ctx.shape(x)
    planes, size = xs[0] * xs[1], math.prod(xs[2:])
    ctx.emit("f32_global_avgpool", planes, size, Buf(x), Buf(y), split=(planes, "planes", {"x": size * 4, "y": 4}))


@lowers("LpPool")
def lp_pool(ctx: LoweringContext, node: Node) -> None:
    """y = (sum over the window of |x|^p)^(1/p); padding contributes zeros."""
    p = int(node.attrs.get("p", 2))
    if p < 1:
        raise ctx.fail(f"p={p} is not supported (p >= 1 is)")
    _geometry(ctx, node)
    _emit_poolnd(ctx, node, 2, p)


def _global(ctx: LoweringContext, node: Node) -> tuple[str, str, int, int]:
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, y)
    xs = ctx.shape(x)
    if len(xs) < 3:
        raise ctx.fail(f"input rank {len(xs)}: global pooling needs spatial dims")
    return x, y, xs[0] * xs[1], math.prod(xs[2:])


@lowers("GlobalMaxPool")
def global_max_pool(ctx: LoweringContext, node: Node) -> None:
    x, y, planes, size = _global(ctx, node)
    if size == 0:
        raise ctx.fail("GlobalMaxPool over an empty plane")
    ctx.emit("f32_global_maxpool", planes, size, Buf(x), Buf(y), split=(planes, "planes", {"x": size * 4, "y": 4}))


@lowers("GlobalLpPool")
def global_lp_pool(ctx: LoweringContext, node: Node) -> None:
    x, y, planes, size = _global(ctx, node)
    p = int(node.attrs.get("p", 2))
    if p < 1:
        raise ctx.fail(f"p={p} is not supported (p >= 1 is)")
    ctx.emit("f32_global_lppool", planes, size, p, Buf(x), Buf(y), split=(planes, "planes", {"x": size * 4, "y": 4}))


@lowers("MaxUnpool")
def max_unpool(ctx: LoweringContext, node: Node) -> None:
    """Indices address the tensor of the shape the pooling attributes give back ((in - 1) * stride - pads +
    kernel); a larger output_shape puts that tensor in the output's leading corner, zeros elsewhere (the
    ONNX reference's reading)."""
    x, ind, y = node.input(0), node.input(1), node.outputs[0]
    ctx.require_dtype(x, y)
    ctx.require_dtype(ind, dtypes=(np.int64,))
    xs, ys = ctx.shape(x), ctx.shape(y)
    n = len(xs) - 2
    if not 1 <= n <= 3:
        raise ctx.fail(f"{n}-D unpooling is not supported (1-D, 2-D and 3-D are)")
    if ctx.shape(ind) != xs:
        raise ctx.fail(f"indices shape {list(ctx.shape(ind))} differs from the input's {list(xs)}")
    kernel = list(node.attrs["kernel_shape"])
    strides = list(node.attrs.get("strides") or [1] * n)
    pads = list(node.attrs.get("pads") or [0] * (2 * n))
    inferred = [(xs[2 + i] - 1) * strides[i] - pads[i] - pads[n + i] + kernel[i] for i in range(n)]
    if any(o < i for o, i in zip(ys[2:], inferred, strict=True)):
        raise ctx.fail(f"output shape {list(ys)} is smaller than the unpooled shape {[*xs[:2], *inferred]}")
    planes = xs[0] * xs[1]
    if planes * math.prod(ys[2:]) == 0:
        return
    layout = [*_as_3d(inferred, 1), *_as_3d(ys[2:], 1)]
    ctx.emit("f32_maxunpool", math.prod(xs), planes, i32(layout), Buf(x), Buf(ind), Buf(y))
