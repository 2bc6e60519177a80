"""Comparisons (Equal, Greater, GreaterOrEqual, Less, LessOrEqual), boolean logic (And, Or, Xor, Not), Where and
BitShift, on the kernels that walk a broadcast layout (ops/broadcast.py)."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Node
from .broadcast import NUMERIC, SPLIT_ALIGN, emit_walk, kernel_prefix
from .context import Buf, LoweringContext

# op -> (kernel op, operands swapped): a < b is b > a
_COMPARE = {
    "Equal": ("eq", False),
    "Greater": ("gt", False),
    "GreaterOrEqual": ("ge", False),
    "Less": ("gt", True),
    "LessOrEqual": ("ge", True),
}


def compare(ctx: LoweringContext, node: Node) -> None:
    a, b, y = node.input(0), node.input(1), node.outputs[0]
    op, swap = _COMPARE[node.op_type]
    allowed = (*NUMERIC, np.bool_) if op == "eq" else NUMERIC
    prefix = kernel_prefix(ctx, [a, b], allowed)
    ctx.require_dtype(y, dtypes=(np.bool_,))
    if swap:
        a, b = b, a
    emit_walk(ctx, f"{prefix}_{op}", y, a, b)


def logic(ctx: LoweringContext, node: Node) -> None:
    a, b, y = node.input(0), node.input(1), node.outputs[0]
    ctx.require_dtype(a, b, y, dtypes=(np.bool_,))
    emit_walk(ctx, f"b8_{node.op_type.lower()}", y, a, b)


def not_(ctx: LoweringContext, node: Node) -> None:
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, y, dtypes=(np.bool_,))
    n = math.prod(ctx.shape(y))
    if n:
        ctx.emit("b8_not", Buf(x), Buf(y), n, split=(n, "n", {"x": 1, "y": 1}, SPLIT_ALIGN))


_BY_SIZE = {1: "x8", 2: "x16", 4: "x32", 8: "x64"}
# dtypes whose values we move (Where) or compute in
VALUE_DTYPES = (np.float32, np.int32, np.int64, np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.uint64)


def where(ctx: LoweringContext, node: Node) -> None:
    """y = cond ? a : b, all three broadcast; the values are moved by element size, whatever their dtype."""
    c, a, b, y = node.input(0), node.input(1), node.input(2), node.outputs[0]
    ctx.require_dtype(c, dtypes=(np.bool_,))
    ctx.require_dtype(a, b, y, dtypes=VALUE_DTYPES)
    emit_walk(ctx, f"{_BY_SIZE[ctx.dtype(y).itemsize]}_where", y, c, a, b)


_UNSIGNED = (np.uint8, np.uint16, np.uint32, np.uint64)
_SIGNED = (np.int8, np.int16, np.int32, np.int64)


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


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    **dict.fromkeys(_COMPARE, compare),
    "And": logic,
    "Or": logic,
    "Xor": logic,
    "Not": not_,
    "Where": where,
    "BitShift": bitshift,
}
