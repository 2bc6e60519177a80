"""Kernels that walk a broadcast layout from a flat output element `start` for `count` elements
(kernels_wasm/binary-walk.h: x-varith.c, x-vcompare-wasmsimd.c), shared by ops/arithmetic.py and ops/logic.py:
every call splits into element ranges for threads."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Node
from .context import Buf, LoweringContext, i32
from .layout import broadcast_layout

# kernel name prefix per tensor dtype
PREFIX = {np.dtype(np.float32): "f32", np.dtype(np.int32): "i32", np.dtype(np.int64): "i64", np.dtype(np.bool_): "b8"}
SPLIT_ALIGN = 16  # elements per chunk boundary: whole SIMD vectors for every element size


def kernel_prefix(ctx: LoweringContext, names, allowed: tuple) -> str:
    """The kernel prefix for the (common) dtype of `names`, failing clearly on dtypes we do not compute in."""
    ctx.require_dtype(*names, dtypes=allowed)
    dtypes = {ctx.dtype(n) for n in names if n}
    if len(dtypes) != 1:
        raise ctx.fail(f"inputs have different dtypes ({', '.join(sorted(d.name for d in dtypes))})")
    return PREFIX[dtypes.pop()]


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
        split=(n, "count", {"start": 1, ctx.kernel_params(kernel)[-1]: ctx.dtype(y).itemsize}, SPLIT_ALIGN),
    )


def emit_variadic(ctx: LoweringContext, node: Node, kernel: str) -> None:
    """y = op(a, b); y = op(y, c); ... in place (y is read at the index it is written)."""
    inputs, y = [i for i in node.inputs if i], node.outputs[0]
    if len(inputs) == 1:
        ctx.alias(y, inputs[0])
        return
    emit_walk(ctx, kernel, y, inputs[0], inputs[1])
    for other in inputs[2:]:
        emit_walk(ctx, kernel, y, y, other)


NUMERIC = (np.float32, np.int32, np.int64)
INTEGER = (np.int32, np.int64)
