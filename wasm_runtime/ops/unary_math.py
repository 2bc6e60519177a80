"""Elementwise math: one float32 kernel per op over the flat tensor (kernels_wasm/f32-vmath-wasmsimd.c, the
functions in vmath.h), IsNaN/IsInf to bool, and the two-input PRelu and Pow with numpy broadcasting."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Node
from .context import Buf, LoweringContext, i32
from .layout import broadcast_layout

# op -> (kernel, the float attributes it passes, in order, with the spec's defaults)
_UNARY: dict[str, tuple[str, tuple[tuple[str, float], ...]]] = {
    "Abs": ("f32_abs", ()),
    "Neg": ("f32_neg", ()),
    "Sqrt": ("f32_sqrt", ()),
    "Reciprocal": ("f32_reciprocal", ()),
    "Floor": ("f32_floor", ()),
    "Ceil": ("f32_ceil", ()),
    "Round": ("f32_round", ()),
    "Sign": ("f32_sign", ()),
    "Exp": ("f32_exp", ()),
    "Log": ("f32_log", ()),
    "Erf": ("f32_erf", ()),
    "Sin": ("f32_sin", ()),
    "Cos": ("f32_cos", ()),
    "Tan": ("f32_tan", ()),
    "Asin": ("f32_asin", ()),
    "Acos": ("f32_acos", ()),
    "Atan": ("f32_atan", ()),
    "Sinh": ("f32_sinh", ()),
    "Cosh": ("f32_cosh", ()),
    "Asinh": ("f32_asinh", ()),
    "Acosh": ("f32_acosh", ()),
    "Atanh": ("f32_atanh", ()),
    "Softplus": ("f32_softplus", ()),
    "Softsign": ("f32_softsign", ()),
    "Mish": ("f32_mish", ()),
    "Elu": ("f32_elu", (("alpha", 1.0),)),
    "Celu": ("f32_celu", (("alpha", 1.0),)),
    "Swish": ("f32_swish", (("alpha", 1.0),)),
    "ThresholdedRelu": ("f32_thresholded_relu", (("alpha", 1.0),)),
    "Selu": ("f32_selu", (("alpha", 1.67326319217681884765625), ("gamma", 1.05070102214813232421875))),
    "Shrink": ("f32_shrink", (("lambd", 0.5), ("bias", 0.0))),
}

# Pow operand types of the x_pow kernel; the base (and output) is one of the first three
_TYPE_CODES = {np.dtype(t): code for code, t in enumerate((np.float32, np.int32, np.int64, np.uint32, np.uint64))}


def emit_flat(ctx: LoweringContext, kernel: str, x: str, y: str, *params, in_bytes=4, out_bytes=4, align=4):
    """kernel(x, y, n, *params) over all n elements, split into chunks of `align` elements for threads."""
    n = math.prod(ctx.shape(y))
    if n == 0:
        return
    ctx.emit(kernel, Buf(x), Buf(y), n, *params, split=(n, "n", {"x": in_bytes, "y": out_bytes}, align))


def _unary(ctx: LoweringContext, node: Node, kernel: str, *params: float) -> None:
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, y)
    emit_flat(ctx, kernel, x, y, *params)


def unary(ctx, node):
    kernel, attrs = _UNARY[node.op_type]
    params = [float(node.attrs.get(name, default)) for name, default in attrs]
    if node.op_type == "Celu" and params[0] == 0.0:
        raise ctx.fail("alpha must not be 0")
    _unary(ctx, node, kernel, *params)


def gelu(ctx, node):
    approximate = node.attrs.get("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise ctx.fail(f"approximate={approximate!r} (expected 'none' or 'tanh')")
    _unary(ctx, node, "f32_gelu_tanh" if approximate == "tanh" else "f32_gelu")


def is_nan_inf(ctx, node):
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x)
    ctx.require_dtype(y, dtypes=(np.bool_,))
    if node.op_type == "IsNaN":
        flags = (0, 0)
    else:
        flags = (int(node.attrs.get("detect_positive", 1)), int(node.attrs.get("detect_negative", 1)))
    emit_flat(ctx, "f32_isnan" if node.op_type == "IsNaN" else "f32_isinf", x, y, *flags, out_bytes=1, align=16)


def emit_broadcast(ctx: LoweringContext, kernel: str, a: str, b: str, y: str, *extra: int) -> None:
    """kernel(layout, a, b, y, n0, *extra): the broadcast layout with the outermost real dim moved to slot 0
    (the slots before it are size 1, so the move changes nothing), where n0 is its extent and the split
    count. A single dim is walked by the kernel as one strided row, so even a flat call splits."""
    out = ctx.shape(y)
    if math.prod(out) == 0:
        return
    layout = broadcast_layout(ctx, out, ctx.shape(a), ctx.shape(b))
    dims, sa, sb = layout[:6], layout[6:12], layout[12:]
    k = next((i for i, d in enumerate(dims) if d != 1), 0)
    for arr in (dims, sa, sb):
        arr[0], arr[k] = arr[k], arr[0]
    n0, inner = dims[0], math.prod(dims[1:])
    size = [ctx.dtype(t).itemsize for t in (a, b, y)]
    deltas = {"a": sa[0] * size[0], "b": sb[0] * size[1], "y": inner * size[2]}
    ctx.emit(
        kernel,
        i32(dims + sa + sb),
        Buf(a),
        Buf(b),
        Buf(y),
        n0,
        *extra,
        split=(n0, "n0", deltas, 4 if inner == 1 else 1),
    )


def prelu(ctx, node):
    x, slope, y = node.input(0), node.input(1), node.outputs[0]
    ctx.require_dtype(x, slope, y)
    if ctx.shape(y) != ctx.shape(x):
        raise ctx.fail(f"slope {ctx.shape(slope)} must broadcast to the input's shape {ctx.shape(x)}")
    emit_broadcast(ctx, "f32_prelu", x, slope, y)


def pow_(ctx, node):
    """float32 x^y with broadcasting; one constant exponent for the whole tensor takes the unary kernel (its
    shortcuts for 2, 3, 1/2, -1). An int32/int64 base or an integer exponent (also uint32/uint64) goes through
    the scalar x_pow kernel."""
    x, e, y = node.input(0), node.input(1), node.outputs[0]
    ctx.require_dtype(x, y, dtypes=tuple(_TYPE_CODES)[:3])
    ctx.require_dtype(e, dtypes=tuple(_TYPE_CODES))
    tx, te = ctx.dtype(x), ctx.dtype(e)
    p = ctx.const(e)
    if tx == np.float32 and p is not None and p.size == 1 and ctx.shape(y) == ctx.shape(x):
        emit_flat(ctx, "f32_pow_scalar", x, y, float(p.reshape(-1)[0]))
    elif tx == np.float32 and te == np.float32:
        emit_broadcast(ctx, "f32_pow", x, e, y)
    else:
        emit_broadcast(ctx, "x_pow", x, e, y, _TYPE_CODES[tx], _TYPE_CODES[te])


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    **dict.fromkeys(_UNARY, unary),
    "Gelu": gelu,
    "IsNaN": is_nan_inf,
    "IsInf": is_nan_inf,
    "PRelu": prelu,
    "Pow": pow_,
}
