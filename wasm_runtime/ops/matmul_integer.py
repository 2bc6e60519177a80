"""MatMulInteger: 8-bit (uint8 / int8) matrices with optional zero points (per tensor, per row of A, per
column of B, or N-D with batch dims) multiplied into int32, with numpy matmul's 1-D and batch broadcasting."""

from __future__ import annotations

import itertools
import math

import numpy as np

from ..ir import Node
from .context import Buf, LoweringContext
from .gemm import batch_strides, matmul_shapes
from .layout import contiguous_strides

EIGHT_BIT = (np.uint8, np.int8)


def _zero_point(ctx, name, matrix_shape, batch, axis):
    """(pointer, stride along rows of A / columns of B, batch strides) of a zero point; axis -2 for A's
    per-row, -1 for B's per-column zero points."""
    if not name or math.prod(ctx.shape(name)) == 0:
        return None, 0, [0] * len(batch)
    zshape = list(ctx.shape(name))
    if math.prod(zshape) == 1:
        return Buf(name), 0, [0] * len(batch)
    if len(zshape) == 1:  # per row of A ([M]) or per column of B ([N])
        return Buf(name), 1, [0] * len(batch)
    # N-D: [..., M, 1] for A, [..., 1, N] for B, batch dims broadcasting like the matrices'
    rank = max(len(matrix_shape), len(zshape))
    zshape = [1] * (rank - len(zshape)) + zshape
    cs = [0 if d == 1 else s for d, s in zip(zshape, contiguous_strides(zshape), strict=True)]
    along = cs[axis]
    bshape = zshape[:-2]
    bstrides = cs[:-2]
    bstrides = [0] * (len(batch) - len(bstrides)) + bstrides
    bshape = [1] * (len(batch) - len(bshape)) + bshape
    return Buf(name), along, [0 if d == 1 else s for d, s in zip(bshape, bstrides, strict=True)]


def matmul_integer(ctx: LoweringContext, node: Node) -> None:
    a, b, y = node.input(0), node.input(1), node.outputs[0]
    za_name, zb_name = node.input(2), node.input(3)
    ctx.require_dtype(a, b, dtypes=EIGHT_BIT)
    ctx.require_dtype(y, dtypes=(np.int32,))
    if za_name:
        ctx.require_dtype(za_name, dtypes=(ctx.dtype(a),))
    if zb_name:
        ctx.require_dtype(zb_name, dtypes=(ctx.dtype(b),))
    sa, sb, M, K, N, batch = matmul_shapes(ctx.shape(a), ctx.shape(b))
    if sb[-2] != K:
        raise ctx.fail(f"inner dims differ: {ctx.shape(a)} x {ctx.shape(b)}")
    batch = batch or [1]
    if math.prod(batch) * M * N == 0:
        return
    st_a, st_b = batch_strides(sa[:-2], batch, M * K), batch_strides(sb[:-2], batch, K * N)
    za, za_row, za_b = _zero_point(ctx, za_name, sa, batch, -2)
    zb, zb_col, zb_b = _zero_point(ctx, zb_name, sb, batch, -1)
    flags = int(ctx.dtype(a) == np.int8) | (int(ctx.dtype(b) == np.int8) << 1)
    last = batch[-1]
    for outer in itertools.product(*(range(d) for d in batch[:-1])):

        def offset(strides, outer=outer):
            return sum(i * s for i, s in zip(outer, strides, strict=False))

        oy = sum(i * math.prod(batch[k + 1 :]) for k, i in enumerate(outer)) * M * N
        rows = last * M
        ctx.emit(
            "x8_matmul_integer",
            0,
            rows,
            M,
            N,
            K,
            flags,
            Buf(a, offset(st_a)),
            st_a[-1],
            None if za is None else Buf(za.name, offset(za_b)),
            za_row,
            za_b[-1],
            Buf(b, offset(st_b)),
            st_b[-1],
            None if zb is None else Buf(zb.name, offset(zb_b)),
            zb_col,
            zb_b[-1],
            Buf(y, oy * 4),
            split=(rows, "count", {"first": 1}),
        )


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    "MatMulInteger": matmul_integer,
}
