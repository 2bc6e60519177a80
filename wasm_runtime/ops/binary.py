"""Broadcasting elementwise ops beyond float Add/Sub/Mul/Div: Max, Min, Mean, Mod, comparisons, boolean logic,
Where, BitShift, Cast/CastLike, and integer Add/Sub/Mul/Div (ops/elementwise.py hands those over).

The kernels (kernels_wasm/x-varith.c, x-vcompare-wasmsimd.c, x-cast.c) walk a broadcast layout from a flat
output element `start` for `count` elements (kernels_wasm/binary-walk.h), so every call splits into
element ranges for threads."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Node
from ..lowering import Buf, Const, LoweringContext, i32, lowers
from .elementwise import emit_sum
from .layout import broadcast_layout

# kernel name prefix per tensor dtype
_PREFIX = {np.dtype(np.float32): "f32", np.dtype(np.int32): "i32", np.dtype(np.int64): "i64", np.dtype(np.bool_): "b8"}
_SPLIT_ALIGN = 16  # elements per chunk boundary: whole SIMD vectors for every element size


def _prefix(ctx: LoweringContext, names, allowed: tuple) -> str:
    """The kernel prefix for the (common) dtype of `names`, failing clearly on dtypes we do not compute in."""
    ctx.require_dtype(*names, dtypes=allowed)
    dtypes = {ctx.dtype(n) for n in names if n}
    if len(dtypes) != 1:
        raise ctx.fail(f"inputs have different dtypes ({', '.join(sorted(d.name for d in dtypes))})")
    return _PREFIX[dtypes.pop()]


def emit_walk(ctx: LoweringContext, kernel: str, y: str, *inputs: str) -> None:
    """kernel(layout, start, count, inputs..., y) over y's elements, inputs broadcast to y's shape."""
    shape = ctx.shape(y)
    n = math.prod(shape)
    if n == 0:
        return
    layout = broadcast_layout(ctx, shape, *(ctx.shape(name) for name in inputs))
    ctx.emit(
        kernel,
        i32(layout),
        0,
        n,
        *(Buf(name) for name in inputs),
        Buf(y),
        split=(n, "count", {"start": 1, ctx.kernel_params(kernel)[-1]: ctx.dtype(y).itemsize}, _SPLIT_ALIGN),
    )


def _variadic(ctx: LoweringContext, node: Node, kernel: str) -> None:
    """y = op(a, b); y = op(y, c); ... in place (y is read at the index it is written)."""
    inputs, y = [i for i in node.inputs if i], node.outputs[0]
    if len(inputs) == 1:
        ctx.alias(y, inputs[0])
        return
    emit_walk(ctx, kernel, y, inputs[0], inputs[1])
    for other in inputs[2:]:
        emit_walk(ctx, kernel, y, y, other)


# --------------------------------------------------------------------------------------------------------
# arithmetic

NUMERIC = (np.float32, np.int32, np.int64)
INTEGER = (np.int32, np.int64)


@lowers("Max", "Min")
def max_min(ctx: LoweringContext, node: Node) -> None:
    """Float Max/Min propagate NaN, like numpy's maximum/minimum."""
    prefix = _prefix(ctx, [*node.inputs, node.outputs[0]], NUMERIC)
    _variadic(ctx, node, f"{prefix}_{node.op_type.lower()}")


@lowers("Mean")
def mean(ctx: LoweringContext, node: Node) -> None:
    """Sum of the inputs, then divided by their count."""
    inputs, y = [i for i in node.inputs if i], node.outputs[0]
    ctx.require_dtype(*inputs, y)
    emit_sum(ctx, inputs, y)
    if len(inputs) == 1:
        return
    shape = ctx.shape(y)
    if math.prod(shape):
        count = Const(np.array([len(inputs)], np.float32), "mean count")
        ctx.emit("f32_div", i32(broadcast_layout(ctx, shape, shape, ())), Buf(y), count, Buf(y))


@lowers("Mod")
def mod(ctx: LoweringContext, node: Node) -> None:
    """fmod=0: the sign of the divisor (numpy's mod, Python's %); fmod=1: the sign of the dividend (C's fmod).
    Integer x % 0 stops the run, as in onnxruntime (refused here when the divisor is a constant)."""
    a, b, y = node.input(0), node.input(1), node.outputs[0]
    prefix = _prefix(ctx, [a, b, y], NUMERIC)
    _no_constant_zero_divisor(ctx, b)
    emit_walk(ctx, f"{prefix}_{'fmod' if node.attrs.get('fmod', 0) else 'mod'}", y, a, b)


_INT_ARITH = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}


def _no_constant_zero_divisor(ctx: LoweringContext, b: str) -> None:
    divisor = ctx.const(b)
    if divisor is not None and ctx.dtype(b).kind in "iu" and not np.all(divisor):
        raise ctx.fail(f"the integer divisor {b!r} holds 0: onnxruntime fails such a run (integer division by zero)")


def int_arith(ctx: LoweringContext, node: Node) -> None:
    """Integer Add/Sub/Mul/Div (shape arithmetic at run time): wrap on overflow, Div truncates toward zero,
    x / 0 stops the run, as in onnxruntime (refused here when the divisor is a constant)."""
    a, b, y = node.input(0), node.input(1), node.outputs[0]
    prefix = _prefix(ctx, [a, b, y], INTEGER)
    if node.op_type == "Div":
        _no_constant_zero_divisor(ctx, b)
    emit_walk(ctx, f"{prefix}_{_INT_ARITH[node.op_type]}", y, a, b)


# --------------------------------------------------------------------------------------------------------
# comparisons and logic

# op -> (kernel op, operands swapped): a < b is b > a
_COMPARE = {
    "Equal": ("eq", False),
    "Greater": ("gt", False),
    "GreaterOrEqual": ("ge", False),
    "Less": ("gt", True),
    "LessOrEqual": ("ge", True),
}


@lowers(*_COMPARE)
def compare(ctx: LoweringContext, node: Node) -> None:
    a, b, y = node.input(0), node.input(1), node.outputs[0]
    op, swap = _COMPARE[node.op_type]
    allowed = (*NUMERIC, np.bool_) if op == "eq" else NUMERIC
    prefix = _prefix(ctx, [a, b], allowed)
    ctx.require_dtype(y, dtypes=(np.bool_,))
    if swap:
        a, b = b, a
    emit_walk(ctx, f"{prefix}_{op}", y, a, b)


@lowers("And", "Or", "Xor")
def logic(ctx: LoweringContext, node: Node) -> None:
    a, b, y = node.input(0), node.input(1), node.outputs[0]
    ctx.require_dtype(a, b, y, dtypes=(np.bool_,))
    emit_walk(ctx, f"b8_{node.op_type.lower()}", y, a, b)


@lowers("Not")
def not_(ctx: LoweringContext, node: Node) -> None:
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, y, dtypes=(np.bool_,))
    n = math.prod(ctx.shape(y))
    if n:
        ctx.emit("b8_not", Buf(x), Buf(y), n, split=(n, "n", {"x": 1, "y": 1}, _SPLIT_ALIGN))


_BY_SIZE = {1: "x8", 2: "x16", 4: "x32", 8: "x64"}
# dtypes whose values we move (Where) or compute in
VALUE_DTYPES = (np.float32, np.int32, np.int64, np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.uint64)


@lowers("Where")
def where(ctx: LoweringContext, node: Node) -> None:
    """y = cond ? a : b, all three broadcast; the values are moved by element size, whatever their dtype."""
    c, a, b, y = node.input(0), node.input(1), node.input(2), node.outputs[0]
    ctx.require_dtype(c, dtypes=(np.bool_,))
    ctx.require_dtype(a, b, y, dtypes=VALUE_DTYPES)
    emit_walk(ctx, f"{_BY_SIZE[ctx.dtype(y).itemsize]}_where", y, c, a, b)


_UNSIGNED = (np.uint8, np.uint16, np.uint32, np.uint64)
_SIGNED = (np.int8, np.int16, np.int32, np.int64)


@lowers("BitShift")
def bitshift(ctx: LoweringContext, node: Node) -> None:
    """Shift counts outside [0, bits) shift every bit out: LEFT and unsigned RIGHT give 0, signed RIGHT the
    sign fill (0 or -1)."""
    a, b, y = node.input(0), node.input(1), node.outputs[0]
    ctx.require_dtype(a, b, y, dtypes=_UNSIGNED + _SIGNED)
    dtype = ctx.dtype(y)
    if ctx.dtype(a) != dtype or ctx.dtype(b) != dtype:
        raise ctx.fail("the value and the shift count must have the same dtype")
    bits = 8 * dtype.itemsize
    direction = node.attrs.get("direction")
    if direction == "LEFT":
        kernel = f"x{bits}_shl"
    elif direction == "RIGHT":
        kernel = f"{'i' if dtype.kind == 'i' else 'u'}{bits}_shr"
    else:
        raise ctx.fail(f"direction must be LEFT or RIGHT, not {direction!r}")
    emit_walk(ctx, kernel, y, a, b)


# --------------------------------------------------------------------------------------------------------
# Cast

# source codes of kernels_wasm/x-cast.c (bool reads as uint8) and the destination kernels
CAST_CODES = {
    np.dtype(np.float32): 0,
    np.dtype(np.int8): 1,
    np.dtype(np.uint8): 2,
    np.dtype(np.bool_): 2,
    np.dtype(np.int16): 3,
    np.dtype(np.uint16): 4,
    np.dtype(np.int32): 5,
    np.dtype(np.uint32): 6,
    np.dtype(np.int64): 7,
    np.dtype(np.uint64): 8,
}
_CAST_KERNELS = {
    np.dtype(np.float32): "x_cast_f32",
    np.dtype(np.bool_): "x_cast_bool",
    np.dtype(np.int8): "x_cast_i8",
    np.dtype(np.uint8): "x_cast_u8",
    np.dtype(np.int16): "x_cast_i16",
    np.dtype(np.uint16): "x_cast_u16",
    np.dtype(np.int32): "x_cast_i32",
    np.dtype(np.uint32): "x_cast_u32",
    np.dtype(np.int64): "x_cast_i64",
    np.dtype(np.uint64): "x_cast_u64",
}


@lowers("Cast", "CastLike")
def cast(ctx: LoweringContext, node: Node) -> None:
    """Between float32, bool and the 8- to 64-bit integer types. Float -> integer truncates toward zero,
    saturating to the int64 range (NaN -> 0) before narrower types keep the low bits; integer -> integer
    wraps; -> bool is "nonzero". The output's dtype is the declared one (`to`, or CastLike's second input)."""
    x, y = node.input(0), node.outputs[0]
    src, dst = ctx.dtype(x), ctx.dtype(y)
    for what, dtype in (("input", src), ("output", dst)):
        if dtype not in CAST_CODES:
            supported = "float32, bool, int8/16/32/64, uint8/16/32/64"
            raise ctx.fail(f"Cast with a {dtype.name} {what} is not supported (supported: {supported})")
    if src == dst:
        ctx.alias(y, x)
        return
    n = math.prod(ctx.shape(y))
    if n:
        ctx.emit(
            _CAST_KERNELS[dst],
            CAST_CODES[src],
            Buf(x),
            Buf(y),
            n,
            split=(n, "n", {"x": src.itemsize, "y": dst.itemsize}, _SPLIT_ALIGN),
        )
