"""Cast and CastLike between float32, bool and the 8- to 64-bit integer types (kernels_wasm/x-cast.c)."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Node
from .broadcast import SPLIT_ALIGN
from .context import Buf, LoweringContext

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
            split=(n, "n", {"x": src.itemsize, "y": dst.itemsize}, SPLIT_ALIGN),
        )


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    "Cast": cast,
    "CastLike": cast,
}
