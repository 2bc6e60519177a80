"""MaxPool (with Indices), AveragePool, LpPool (1-D/2-D/3-D, ceil_mode, auto_pad, dilations, count_include_pad),
GlobalAveragePool, GlobalMaxPool, GlobalLpPool and MaxUnpool.

1-D and 2-D max/average pooling without dilated averages or Indices run on the tuned 2-D kernels
(f32-pool2d.c); everything else on the general 3-D kernel (f32-poolnd.c), 1-D/2-D as leading size-1 dims."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Node
from .context import Buf, LoweringContext, i32
from .spatial import PoolSpec, as_2d


def _as_3d(sizes, fill: int) -> list[int]:
    return [fill] * (3 - len(sizes)) + list(sizes)


def _emit_poolnd(ctx: LoweringContext, spec: PoolSpec, mode: int, p: int = 0, indices: Buf | None = None) -> None:
    """The general kernel: mode 0 max, 1 average, 2 Lp (power p)."""
    xs, ys, win = spec.x_shape, spec.y_shape, spec.window
    geo = [
        *_as_3d(xs[2:], 1),
        *_as_3d(ys[2:], 1),
        *_as_3d(win.kernel, 1),
        *_as_3d(win.strides, 1),
        *_as_3d(win.begin, 0),
        *_as_3d(win.end, 0),
        *_as_3d(win.dilations, 1),
        spec.count_include_pad,
        spec.storage_order,
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
        Buf(spec.x),
        Buf(spec.y),
        indices,
        split=(planes, "planes", {"plane0": 1, "x": plane_in * 4, "y": plane_out * 4, "indices": plane_out * 8}),
    )


def _as_2d(spec: PoolSpec):
    """planes, (H, W), (OH, OW) and the window of a 1-D or 2-D pooling, for the 2-D kernels."""
    xs, ys = spec.x_shape, spec.y_shape
    return xs[0] * xs[1], as_2d(xs[2:], 1), as_2d(ys[2:], 1), spec.window.as_2d()


def max_pool(ctx: LoweringContext, spec: PoolSpec) -> None:
    indices = ctx.optional_output(spec.node, 1)
    if indices is not None:
        ctx.require_dtype(indices.name, dtypes=(np.int64,))
    x, y = spec.x, spec.y
    ctx.require_dtype(x, y)
    xs = spec.x_shape
    if indices is not None or len(xs) == 5:
        _emit_poolnd(ctx, spec, 0, indices=indices)
        return
    planes, (H, W), (OH, OW), win = _as_2d(spec)
    KH, KW = win.kernel
    SH, SW = win.strides
    DH, DW = win.dilations
    PT, PL = win.begin
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


def average_pool(ctx: LoweringContext, spec: PoolSpec) -> None:
    x, y = spec.x, spec.y
    ctx.require_dtype(x, y)
    xs = spec.x_shape
    if len(xs) == 5 or any(d != 1 for d in spec.window.dilations):
        _emit_poolnd(ctx, spec, 1)
        return
    planes, (H, W), (OH, OW), win = _as_2d(spec)
    KH, KW = win.kernel
    SH, SW = win.strides
    PT, PL = win.begin
    PB, PR = win.end
    cip = spec.count_include_pad
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


def global_average_pool(ctx: LoweringContext, node: Node) -> None:
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, y)
    xs = ctx.shape(x)
    planes, size = xs[0] * xs[1], math.prod(xs[2:])
    ctx.emit("f32_global_avgpool", planes, size, Buf(x), Buf(y), split=(planes, "planes", {"x": size * 4, "y": 4}))


def lp_pool(ctx: LoweringContext, spec: PoolSpec) -> None:
    """y = (sum over the window of |x|^p)^(1/p); padding contributes zeros."""
    if spec.p < 1:
        raise ctx.fail(f"p={spec.p} is not supported (p >= 1 is)")
    ctx.require_dtype(spec.x, spec.y)
    _emit_poolnd(ctx, spec, 2, spec.p)


def _global(ctx: LoweringContext, node: Node) -> tuple[str, str, int, int]:
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, y)
    xs = ctx.shape(x)
    if len(xs) < 3:
        raise ctx.fail(f"input rank {len(xs)}: global pooling needs spatial dims")
    return x, y, xs[0] * xs[1], math.prod(xs[2:])


def global_max_pool(ctx: LoweringContext, node: Node) -> None:
    x, y, planes, size = _global(ctx, node)
    if size == 0:
        raise ctx.fail("GlobalMaxPool over an empty plane")
    ctx.emit("f32_global_maxpool", planes, size, Buf(x), Buf(y), split=(planes, "planes", {"x": size * 4, "y": 4}))


def global_lp_pool(ctx: LoweringContext, node: Node) -> None:
    x, y, planes, size = _global(ctx, node)
    p = int(node.attrs.get("p", 2))
    if p < 1:
        raise ctx.fail(f"p={p} is not supported (p >= 1 is)")
    ctx.emit("f32_global_lppool", planes, size, p, Buf(x), Buf(y), split=(planes, "planes", {"x": size * 4, "y": 4}))


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


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    "MaxPool": max_pool,
    "AveragePool": average_pool,
    "GlobalAveragePool": global_average_pool,
    "LpPool": lp_pool,
    "GlobalMaxPool": global_max_pool,
    "GlobalLpPool": global_lp_pool,
    "MaxUnpool": max_unpool,
}
SPECS = {
    "MaxPool": PoolSpec.parse,
    "AveragePool": PoolSpec.parse,
    "LpPool": PoolSpec.parse,
}
