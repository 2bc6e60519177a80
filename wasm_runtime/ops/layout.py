"""Index layouts for the kernels that walk strided views: numpy broadcasting and transposes, folded to
at most 6 dims (adjacent dims that move together merge, size-1 dims vanish)."""

from __future__ import annotations

import math

from .context import LoweringContext

RANK = 6


def contiguous_strides(shape) -> list[int]:
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return strides[::-1]


def fold_dims(dims: list[int], strides: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Drop size-1 dims and merge dim i into i+1 where every operand steps through both contiguously."""
    keep = [i for i, d in enumerate(dims) if d != 1]
    dims = [dims[i] for i in keep]
    strides = [[s[i] for i in keep] for s in strides]
    out_d: list[int] = []
    out_s: list[list[int]] = [[] for _ in strides]
    for i, d in enumerate(dims):
        if out_d and all(os[-1] == s[i] * d for os, s in zip(out_s, strides, strict=True)):
            out_d[-1] *= d
            for os, s in zip(out_s, strides, strict=True):
                os[-1] = s[i]
        else:
            out_d.append(d)
            for os, s in zip(out_s, strides, strict=True):
                os.append(s[i])
    return out_d, out_s


def pad_layout(ctx: LoweringContext, dims, strides) -> list[int]:
    if len(dims) > RANK:
        raise ctx.fail(f"the index pattern needs {len(dims)} dims after folding; kernels walk at most {RANK}")
    pad = RANK - len(dims)
    block = [1] * pad + dims
    for s in strides:
        block += [0] * pad + s
    return block


def broadcast_layout(ctx: LoweringContext, out_shape, *in_shapes) -> list[int]:
    """dims[6] + one strides[6] per input (0 where broadcast), for a contiguous output."""
    rank = len(out_shape)
    strides = []
    for shape in in_shapes:
        shape = (1,) * (rank - len(shape)) + tuple(shape)
        cs = contiguous_strides(shape)
        strides.append([0 if d == 1 else s for d, s in zip(shape, cs, strict=True)])
    dims, strides = fold_dims(list(out_shape), strides)
    if not dims:
        dims, strides = [1], [[0] for _ in strides]
    return pad_layout(ctx, dims, strides)


def transpose_layout(ctx: LoweringContext, in_shape, perm) -> list[int] | None:
    """dims[6] + input strides[6] of the output's dims; None when the transpose moves no data."""
    cs = contiguous_strides(in_shape)
    dims, (strides,) = fold_dims([in_shape[p] for p in perm], [[cs[p] for p in perm]])
    if all(strides[i] == math.prod(dims[i + 1 :]) for i in range(len(dims))):
        return None
    return pad_layout(ctx, dims, [strides])
