"""Indexing ops: Gather (the embedding lookup), GatherElements, GatherND, Scatter/ScatterElements, ScatterND,
OneHot, NonZero, Trilu, Compress, ReverseSequence, EyeLike, Range.

Kernels are in kernels_wasm/x-gather.c, x-scatter.c and x-index.c. They move elements by size, so every dtype
of the right width goes through the same code; arithmetic (scatter reductions, Range) has per-dtype kernels.
Index tensors may be int32 or int64 and are read at run time; negative indices count from the end and an
index out of range traps (the run fails naming the kernel and node) rather than touching foreign memory.
Constant indices are checked and wrapped at package time instead.

Where a run-time value sets an output size (NonZero's count, Compress's kept rows, Range's length, OneHot's
depth), the planned size is the model's static output shape and the kernel checks at run time that the
values give exactly that size, trapping otherwise.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import Node
from .context import Buf, Const, LoweringContext, i32
from .layout import RANK, contiguous_strides, fold_dims

# element types moved by size (float16/bfloat16/double are out of scope for the runtime)
DATA = (np.float32, np.int64, np.int32, np.bool_, np.uint8, np.int8, np.uint32, np.uint64, np.int16, np.uint16)
INDICES = (np.int64, np.int32)
_REDUCTIONS = {"none": 0, "add": 1, "mul": 2, "max": 3, "min": 4}
_SIZE_PREFIX = {1: "x8", 2: "x16", 4: "x32", 8: "x64"}
# per-dtype arithmetic kernels (scatter reductions)
_ARITH_PREFIX = {np.dtype(np.float32): "f32", np.dtype(np.int32): "i32", np.dtype(np.int64): "i64",
                 np.dtype(np.bool_): "u8"}  # fmt: skip


def _axis(ctx: LoweringContext, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ctx.fail(f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _size(shape) -> int:
    return math.prod(shape)


def _indices(ctx: LoweringContext, name: str, bound: int):
    """(pointer, is_int64) for an int32/int64 index tensor into an axis of `bound` entries. A constant one is
    checked against [-bound, bound) here, wrapped, and shipped as int32."""
    ctx.require_dtype(name, dtypes=INDICES)
    value = ctx.const(name)
    if value is None:
        return Buf(name), int(ctx.dtype(name) == np.int64)
    value = np.asarray(value, np.int64)
    bad = (value < -bound) | (value >= bound)
    if bad.any():
        raise ctx.fail(f"index {int(value[bad].reshape(-1)[0])} of {name!r} is out of range [-{bound}, {bound})")
    value = np.where(value < 0, value + bound, value)
    return Const(value.astype(np.int32).reshape(-1), "indices"), 0


def _data_dtype(ctx: LoweringContext, *names: str) -> int:
    ctx.require_dtype(*names, dtypes=DATA)
    return ctx.dtype(names[0]).itemsize


def _layout(ctx: LoweringContext, dims, strides) -> list[int]:
    """dims[6] + strides[6] for walking `dims` (row-major) while tracking an offset with `strides`; size-1 dims
    drop and contiguous runs merge."""
    dims, (strides,) = fold_dims(list(dims), [list(strides)])
    if len(dims) > RANK:
        raise ctx.fail(f"the index pattern needs {len(dims)} dims after folding; kernels walk at most {RANK}")
    pad = RANK - len(dims)
    return [1] * pad + dims + [0] * pad + strides


# ----------------------------------------------------------------------------------------------------------
# gathers


def emit_gather(ctx: LoweringContext, data: str, out: str, shape, axis: int, idx, idx64: int, m: int) -> None:
    """out[o, j, :] = data[o, idx[j], :] with data (of `shape`) viewed as [outer, n, inner] around `axis`."""
    es = ctx.dtype(data).itemsize
    outer, n, inner = _size(shape[:axis]), shape[axis], _size(shape[axis + 1 :])
    units = outer * m
    if units == 0 or inner == 0:
        return
    if n == 0:
        raise ctx.fail(f"gathering from an empty axis (data shape {list(shape)})")
    ctx.emit(
        "x_gather", 0, units, m, inner * es, Buf(data), n, idx, idx64, Buf(out), split=(units, "count", {"first": 1})
    )


def gather(ctx: LoweringContext, node: Node) -> None:
    """The embedding lookup (constant table, run-time ids) copies one table row per id; it splits over ids."""
    data, indices, y = node.input(0), node.input(1), node.outputs[0]
    _data_dtype(ctx, data, y)
    shape = ctx.shape(data)
    axis = _axis(ctx, int(node.attrs.get("axis", 0)), len(shape))
    idx, idx64 = _indices(ctx, indices, shape[axis])
    emit_gather(ctx, data, y, shape, axis, idx, idx64, _size(ctx.shape(indices)))


def gather_elements(ctx: LoweringContext, node: Node) -> None:
    data, indices, y = node.input(0), node.input(1), node.outputs[0]
    es = _data_dtype(ctx, data, y)
    shape, ishape = ctx.shape(data), ctx.shape(indices)
    axis = _axis(ctx, int(node.attrs.get("axis", 0)), len(shape))
    if len(ishape) != len(shape) or any(i > d for k, (i, d) in enumerate(zip(ishape, shape, strict=True)) if k != axis):
        raise ctx.fail(f"indices shape {list(ishape)} does not fit data shape {list(shape)} off axis {axis}")
    total = _size(ishape)
    if total == 0:
        return
    idx, idx64 = _indices(ctx, indices, shape[axis])
    strides = contiguous_strides(shape)
    layout = _layout(ctx, ishape, [0 if k == axis else s for k, s in enumerate(strides)])
    ctx.emit(f"{_SIZE_PREFIX[es]}_gather_elements", 0, total, i32(layout), Buf(data), shape[axis], strides[axis],
             idx, idx64, Buf(y), split=(total, "count", {"first": 1}))  # fmt: skip


def _index_table(shape, k: int) -> tuple[list[int], list[int]]:
    """dims and strides (in units of the trailing slice) of the first k dims of `shape`."""
    dims = list(shape[:k])
    strides = contiguous_strides(dims) if dims else []
    return dims, strides


def gather_nd(ctx: LoweringContext, node: Node) -> None:
    data, indices, y = node.input(0), node.input(1), node.outputs[0]
    es = _data_dtype(ctx, data, y)
    ctx.require_dtype(indices, dtypes=INDICES)
    shape, ishape = ctx.shape(data), ctx.shape(indices)
    b = int(node.attrs.get("batch_dims", 0))
    k = ishape[-1] if ishape else 0
    if not ishape or b < 0 or b + k > len(shape) or tuple(ishape[:b]) != tuple(shape[:b]):
        raise ctx.fail(f"indices shape {list(ishape)} does not fit data shape {list(shape)} (batch_dims {b})")
    batches, per_batch = _size(shape[:b]), _size(ishape[b:-1])
    units = batches * per_batch
    slice_elems = _size(shape[b + k :])
    if units == 0 or slice_elems == 0:
        return
    dims, strides = _index_table(shape[b:], k)
    idx, idx64 = Buf(indices), int(ctx.dtype(indices) == np.int64)
    ctx.emit("x_gathernd", 0, units, per_batch, k, i32(dims + strides or [0]), _size(shape[b:]) * es,
             slice_elems * es, Buf(data), idx, idx64, Buf(y), split=(units, "count", {"first": 1}))  # fmt: skip


def compress(ctx: LoweringContext, node: Node) -> None:
    """A constant condition becomes a Gather of the kept rows; a run-time one is read by the kernel, which checks
    that it keeps as many rows as the static output shape has."""
    x, cond, y = node.input(0), node.input(1), node.outputs[0]
    es = _data_dtype(ctx, x, y)
    ctx.require_dtype(cond, dtypes=(np.bool_,))
    shape, out_shape = ctx.shape(x), ctx.shape(y)
    axis = node.attrs.get("axis")
    if axis is None:  # flattened
        shape, axis = (_size(shape),), 0
    axis = _axis(ctx, int(axis), len(shape))
    outer, n, inner = _size(shape[:axis]), shape[axis], _size(shape[axis + 1 :])
    if len(ctx.shape(cond)) != 1:
        raise ctx.fail(f"condition must be 1-D, got shape {list(ctx.shape(cond))}")
    kept = out_shape[axis] if len(out_shape) == len(shape) else _size(out_shape)
    value = ctx.const(cond)
    if value is not None:
        rows = np.flatnonzero(np.asarray(value)[:n])
        if len(rows) != kept:
            raise ctx.fail(f"the condition keeps {len(rows)} entries, the output shape {list(out_shape)} has {kept}")
        emit_gather(ctx, x, y, shape, axis, Const(rows.astype(np.int32), "indices"), 0, kept)
        return
    if outer * inner == 0:
        return
    clen = ctx.shape(cond)[0]
    ctx.emit("x_compress", outer, n, inner * es, Buf(cond), clen, kept, Buf(x), Buf(y),
             split=(outer, "outer", {"x": n * inner * es, "y": kept * inner * es}))  # fmt: skip


# ----------------------------------------------------------------------------------------------------------
# scatters: y = copy of data, then the updates in index order (no thread split: indices may repeat)


def emit_copy(ctx: LoweringContext, src: str, dst: str) -> None:
    """dst = src, as rows of the last dim, split over rows."""
    shape = ctx.shape(dst)
    row = (shape[-1] if shape else 1) * ctx.dtype(dst).itemsize
    rows = _size(shape[:-1]) if shape else 1
    if rows * row:
        ctx.emit("x_copy2d", rows, row, Buf(src), row, Buf(dst), row, split=(rows, "rows", {"src": row, "dst": row}))


def _scatter_kernel(ctx: LoweringContext, node: Node, what: str, data: str) -> tuple[str, int]:
    reduction = node.attrs.get("reduction", "none") if node.op_type != "Scatter" else "none"
    if reduction not in _REDUCTIONS:
        raise ctx.fail(f"reduction {reduction!r} is not supported")
    dtype = ctx.dtype(data)
    if reduction == "none":
        prefix = {1: "u8", 4: "i32", 8: "i64"}.get(dtype.itemsize)  # a plain store moves any dtype of that size
    else:
        prefix = _ARITH_PREFIX.get(dtype)
    if prefix is None:
        raise ctx.fail(f"{what} with reduction {reduction!r} on {dtype.name} is not supported")
    return f"{prefix}_{what}", _REDUCTIONS[reduction]


def scatter_elements(ctx: LoweringContext, node: Node) -> None:
    data, indices, updates, y = node.input(0), node.input(1), node.input(2), node.outputs[0]
    _data_dtype(ctx, data, updates, y)
    shape, ishape = ctx.shape(data), ctx.shape(indices)
    axis = _axis(ctx, int(node.attrs.get("axis", 0)), len(shape))
    if ctx.shape(updates) != ishape or len(ishape) != len(shape):
        raise ctx.fail(f"indices {list(ishape)} and updates {list(ctx.shape(updates))} must have one shape of "
                       f"data's rank ({list(shape)})")  # fmt: skip
    if any(i > d for k, (i, d) in enumerate(zip(ishape, shape, strict=True)) if k != axis):
        raise ctx.fail(f"indices shape {list(ishape)} does not fit data shape {list(shape)} off axis {axis}")
    kernel, red = _scatter_kernel(ctx, node, "scatter_elements", data)
    emit_copy(ctx, data, y)
    total = _size(ishape)
    if total == 0:
        return
    idx, idx64 = _indices(ctx, indices, shape[axis])
    strides = contiguous_strides(shape)
    layout = _layout(ctx, ishape, [0 if k == axis else s for k, s in enumerate(strides)])
    ctx.emit(kernel, total, i32(layout), shape[axis], strides[axis], idx, idx64, Buf(updates), Buf(y), red)


def scatter_nd(ctx: LoweringContext, node: Node) -> None:
    data, indices, updates, y = node.input(0), node.input(1), node.input(2), node.outputs[0]
    _data_dtype(ctx, data, updates, y)
    ctx.require_dtype(indices, dtypes=INDICES)
    shape, ishape = ctx.shape(data), ctx.shape(indices)
    k = ishape[-1] if ishape else -1
    if not ishape or k > len(shape) or tuple(ctx.shape(updates)) != tuple(ishape[:-1]) + tuple(shape[k:]):
        raise ctx.fail(f"indices {list(ishape)} / updates {list(ctx.shape(updates))} do not fit data {list(shape)}")
    kernel, red = _scatter_kernel(ctx, node, "scatternd", data)
    emit_copy(ctx, data, y)
    count, slice_elems = _size(ishape[:-1]), _size(shape[k:])
    if count == 0 or slice_elems == 0:
        return
    dims, strides = list(shape[:k]), contiguous_strides(shape)[:k]
    ctx.emit(kernel, count, k, i32(dims + strides or [0]), slice_elems, Buf(indices),
             int(ctx.dtype(indices) == np.int64), Buf(updates), Buf(y), red)  # fmt: skip


# ----------------------------------------------------------------------------------------------------------
# index-shaped outputs

# run-time scalars the kernels read: int32 0, int64 1, float32 2 (kernels_wasm/index.h, ld_index)
_KIND = {np.dtype(np.int32): 0, np.dtype(np.int64): 1, np.dtype(np.float32): 2}


def one_hot(ctx: LoweringContext, node: Node) -> None:
    """depth comes from the static output shape; a constant depth must agree, a run-time one is checked by the
    kernel."""
    indices, depth, values, y = node.input(0), node.input(1), node.input(2), node.outputs[0]
    for name, what in ((indices, "indices"), (depth, "depth")):
        if ctx.dtype(name) not in _KIND:
            raise ctx.fail(f"{what} of {ctx.dtype(name).name} is not supported (int32, int64 or float32)")
    ctx.require_dtype(values, y, dtypes=DATA)
    es = ctx.dtype(y).itemsize
    if es not in (1, 4, 8):
        raise ctx.fail(f"values of {ctx.dtype(y).name} are not supported")
    ishape, out_shape = ctx.shape(indices), ctx.shape(y)
    axis = _axis(ctx, int(node.attrs.get("axis", -1)), len(out_shape))
    d = out_shape[axis]
    outer, inner = _size(ishape[:axis]), _size(ishape[axis:])
    if _size(ctx.shape(values)) != 2 or _size(ctx.shape(depth)) != 1:
        raise ctx.fail("depth must be a scalar and values a pair [off, on]")
    depth_ptr, depth_kind = Buf(depth), _KIND[ctx.dtype(depth)]
    value = ctx.const(depth)
    if value is not None:
        given = np.asarray(value).reshape(-1)[0]
        if int(given) != d:
            raise ctx.fail(f"depth {given} does not match the output shape {list(out_shape)}")
        depth_ptr = None
    if outer * d * inner == 0:
        return
    idx_es = ctx.dtype(indices).itemsize
    split = (outer, "outer", {"idx": inner * idx_es, "out": d * inner * es})
    ctx.emit(f"{_SIZE_PREFIX[es]}_onehot", outer, d, inner, Buf(indices), _KIND[ctx.dtype(indices)], Buf(values),
             Buf(y), depth_ptr, depth_kind, split=split)  # fmt: skip


def non_zero(ctx: LoweringContext, node: Node) -> None:
    """The count of nonzeros is data: the output is planned with the model's declared shape [rank, count] and
    the kernel traps when the run-time count differs."""
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, dtypes=DATA)
    shape, out_shape = ctx.shape(x), ctx.shape(y)
    if not shape or len(shape) > 32:
        raise ctx.fail(f"NonZero of a rank-{len(shape)} tensor is not supported")
    if len(out_shape) != 2 or out_shape[0] != len(shape):
        raise ctx.fail(f"output shape {list(out_shape)} is not [rank, count]")
    expected, n = out_shape[1], _size(shape)
    if n == 0:
        if expected:
            raise ctx.fail(f"an empty input has no nonzeros, the output shape says {expected}")
        return
    dtype = ctx.dtype(x)
    if dtype.itemsize not in (1, 4, 8):
        raise ctx.fail(f"NonZero of {dtype.name} is not supported")
    kernel = "f32_nonzero" if dtype == np.float32 else f"{_SIZE_PREFIX[dtype.itemsize]}_nonzero"  # -0.0 is zero
    ctx.emit(kernel, Buf(x), n, len(shape), i32(list(shape)), expected, Buf(y))


def trilu(ctx: LoweringContext, node: Node) -> None:
    x, k, y = node.input(0), node.input(1), node.outputs[0]
    es = _data_dtype(ctx, x, y)
    shape = ctx.shape(x)
    if len(shape) < 2:
        raise ctx.fail(f"input must have rank >= 2, got {list(shape)}")
    rows, cols = shape[-2], shape[-1]
    units = _size(shape[:-1])
    if units * cols == 0:
        return
    k_value, k_ptr = 0, None
    if k:
        ctx.require_dtype(k, dtypes=(np.int64,))
        value = ctx.const(k)
        if value is None:
            k_ptr = Buf(k)
        else:
            k_value = int(np.clip(np.asarray(value).reshape(-1)[0], -(1 << 30), 1 << 30))
    upper = int(node.attrs.get("upper", 1))
    ctx.emit(
        "x_trilu", 0, units, rows, cols, es, k_value, k_ptr, upper, Buf(x), Buf(y), split=(units, "count", {"first": 1})
    )


def reverse_sequence(ctx: LoweringContext, node: Node) -> None:
    x, lens, y = node.input(0), node.input(1), node.outputs[0]
    es = _data_dtype(ctx, x, y)
    ctx.require_dtype(lens, dtypes=INDICES)
    shape = ctx.shape(x)
    batch_axis, time_axis = int(node.attrs.get("batch_axis", 1)), int(node.attrs.get("time_axis", 0))
    if len(shape) < 2 or {batch_axis, time_axis} != {0, 1}:
        raise ctx.fail(f"batch_axis {batch_axis} / time_axis {time_axis} must be 0 and 1 (shape {list(shape)})")
    batches, steps, row = shape[batch_axis], shape[time_axis], _size(shape[2:]) * es
    if batches * steps * row == 0:
        return
    t_stride, b_stride = (batches * row, row) if time_axis == 0 else (row, steps * row)
    lens_es = ctx.dtype(lens).itemsize
    ctx.emit("x_reverse_sequence", batches, steps, row, t_stride, b_stride, Buf(lens), int(lens_es == 8), Buf(x),
             Buf(y), split=(batches, "batches", {"lens": lens_es, "x": b_stride, "y": b_stride}))  # fmt: skip


def eye_like(ctx: LoweringContext, node: Node) -> None:
    """The output depends only on the (static) shape; the kernel writes it, nothing is shipped."""
    y = node.outputs[0]
    ctx.require_dtype(y, dtypes=DATA)
    shape = ctx.shape(y)
    if len(shape) != 2:
        raise ctx.fail(f"input must be 2-D, got {list(shape)}")
    rows, cols = shape
    if rows * cols == 0:
        return
    dtype = ctx.dtype(y)
    one = int.from_bytes(np.ones(1, dtype).tobytes().ljust(8, b"\0"), "little")
    k = int(np.clip(int(node.attrs.get("k", 0)), -(1 << 30), 1 << 30))
    ctx.emit("x_eyelike", 0, rows, cols, k, dtype.itemsize, one & 0xFFFFFFFF, one >> 32,
             Buf(y), split=(rows, "count", {"first": 1}))  # fmt: skip


_RANGE = {np.dtype(np.float32): "f32_range", np.dtype(np.int32): "i32_range", np.dtype(np.int64): "i64_range"}


def range_(ctx: LoweringContext, node: Node) -> None:
    """The length is the static output shape; the kernel computes the values from the run-time scalars and
    checks that they give that length."""
    start, limit, delta, y = node.input(0), node.input(1), node.input(2), node.outputs[0]
    kernel = _RANGE.get(ctx.dtype(y))
    if kernel is None:
        raise ctx.fail(f"Range of {ctx.dtype(y).name} is not supported (float32, int32, int64)")
    ctx.require_dtype(start, limit, delta, dtypes=(ctx.dtype(y),))
    (total,) = ctx.shape(y)
    args = (0, total, Buf(start), Buf(limit), Buf(delta), total, Buf(y))
    ctx.emit(kernel, *args, split=(total, "count", {"first": 1}) if total else None)


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    "Gather": gather,
    "GatherElements": gather_elements,
    "GatherND": gather_nd,
    "Compress": compress,
    "ScatterElements": scatter_elements,
    "Scatter": scatter_elements,
    "ScatterND": scatter_nd,
    "OneHot": one_hot,
    "NonZero": non_zero,
    "Trilu": trilu,
    "ReverseSequence": reverse_sequence,
    "EyeLike": eye_like,
    "Range": range_,
}
