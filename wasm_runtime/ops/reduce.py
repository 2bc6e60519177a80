"""Reductions: Reduce* (any set of axes), ArgMax/ArgMin, CumSum and TopK (LogSoftmax and Hardmax: ops/softmax.py).

Reduce* fold the input into kept and reduced dims at package time (size-1 dims dropped, neighbours of the
same kind merged) and run one strided walk (kernels_wasm/f32-reduce-wasmsimd.c):

    ReduceSum(x[8, 3, 5, 7], axes=[1, 3])  =>  kept [8 (stride 105), 5 (stride 7)], reduced [3 (35), 7 (1)]

When the axes are a run-time input (opset 18+, ReduceSum 13+), the kernel reads them and folds itself; the
output shape the model declares bounds what it may write. The other ops view the input as [outer, n, inner]
around their axis and split for threads over whichever of outer / inner is larger.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import Node
from .context import Buf, LoweringContext, i32
from .layout import contiguous_strides

RMAX = 8  # dims per kind in a reduce layout (kernels_wasm/f32-reduce-wasmsimd.c)

# mode codes of f32_reduce, and the opset from which the op takes axes as an input instead of an attribute
_REDUCE = {
    "ReduceSum": (0, 13),
    "ReduceMean": (1, 18),
    "ReduceSumSquare": (2, 18),
    "ReduceL1": (3, 18),
    "ReduceL2": (4, 18),
    "ReduceLogSum": (5, 18),
    "ReduceLogSumExp": (6, 18),
    "ReduceProd": (7, 18),
    "ReduceMax": (8, 18),
    "ReduceMin": (9, 18),
}


def _axis(ctx: LoweringContext, axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ctx.fail(f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def reduce_layout(ctx: LoweringContext, shape, reduced: set[int]) -> tuple[list[int], int, int]:
    """(layout block, cdim, units): the kept/reduced dims of `shape` folded; cdim is the kept dim a split
    divides (the largest), units its size."""
    strides = contiguous_strides(shape)
    kept: list[list[int]] = []  # [size, input stride]
    red: list[list[int]] = []
    last = None
    for d, (n, s) in enumerate(zip(shape, strides, strict=True)):
        r = d in reduced
        if n == 1:
            continue
        group = red if r else kept
        if last == r:
            group[-1] = [group[-1][0] * n, s]
        else:
            group.append([n, s])
            last = r
    count = math.prod(shape[d] for d in reduced)
    if any(n == 0 for n, _ in red):
        red = [[0, 0]]
    kept = kept or [[1, 0]]
    red = red or [[1, 0]]
    if len(kept) > RMAX or len(red) > RMAX:
        raise ctx.fail(f"the reduction folds to {len(kept)} kept and {len(red)} reduced dims; at most {RMAX} each")
    out_strides = contiguous_strides([n for n, _ in kept])
    cdim = max(range(len(kept)), key=lambda i: (kept[i][0], -i))

    def pad(values):
        values = list(values)
        return values + [0] * (RMAX - len(values))

    block = [len(kept), len(red), cdim, count]
    block += pad(n for n, _ in kept) + pad(s for _, s in kept) + pad(out_strides)
    block += pad(n for n, _ in red) + pad(s for _, s in red)
    return block, cdim, kept[cdim][0]


def reduce(ctx: LoweringContext, node: Node) -> None:
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, y)
    mode, axes_input_from = _REDUCE[node.op_type]
    shape = ctx.shape(x)
    rank = len(shape)
    keepdims = int(node.attrs.get("keepdims", 1))
    noop = int(node.attrs.get("noop_with_empty_axes", 0))
    out_count = math.prod(ctx.shape(y))
    if ctx.graph.opset >= axes_input_from:
        axes_name = node.input(1)
        axes = ctx.const(axes_name) if axes_name else None
        if axes_name and axes is None:
            if rank > 16:
                raise ctx.fail(f"rank {rank} with run-time axes (at most 16)")
            if out_count:
                naxes = math.prod(ctx.shape(axes_name))
                dims = i32(shape)
                ctx.emit("f32_reduce_dyn", mode, dims, rank, Buf(axes_name), naxes, noop, out_count, Buf(x), Buf(y))
            return
    else:
        axes = node.attrs.get("axes")
    axes = [] if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]
    reduced = {_axis(ctx, a, rank) for a in axes} if axes else (set() if noop else set(range(rank)))
    expect = tuple(1 if d in reduced else n for d, n in enumerate(shape) if keepdims or d not in reduced)
    if expect != ctx.shape(y):
        raise ctx.fail(f"output shape {list(ctx.shape(y))} does not match the reduction's {list(expect)}")
    if not out_count:
        return
    block, cdim, units = reduce_layout(ctx, shape, reduced)
    ks, os_ = block[4 + RMAX + cdim], block[4 + 2 * RMAX + cdim]
    contiguous_inner = cdim == block[0] - 1 and ks == 1
    ctx.emit(
        "f32_reduce",
        mode,
        i32(block),
        units,
        Buf(x),
        Buf(y),
        split=(units, "count", {"x": 4 * ks, "y": 4 * os_}, 4 if contiguous_inner else 1),
    )


# ---------------------------------------------------------------------------------------------------------
# one axis: [outer, n, inner]


def _around(shape, axis: int) -> tuple[int, int, int]:
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1 :])


def emit_axis(ctx: LoweringContext, kernel: str, outer: int, n: int, inner: int, *rest, bufs, out_rows: dict):
    """kernel(outer, n, inner, pitch, *rest, *bufs), split over outer or inner (whichever is larger).
    out_rows: (bytes per element, axis rows per outer step) of each buffer in `bufs`, in order."""
    args = [outer, n, inner, inner, *rest, *bufs]
    names = ctx.kernel_params(kernel)[4 + len(rest) :]  # the buffers'
    if outer >= inner:
        deltas = {name: size * rows * inner for name, (size, rows) in zip(names, out_rows, strict=True)}
        split = (outer, "outer", deltas)
    else:
        deltas = {name: size for name, (size, _) in zip(names, out_rows, strict=True)}
        split = (inner, "inner", deltas, 4)
    ctx.emit(kernel, *args, split=split)


def arg_min_max(ctx: LoweringContext, node: Node) -> None:
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x)
    ctx.require_dtype(y, dtypes=(np.int64,))
    shape = ctx.shape(x)
    axis = _axis(ctx, int(node.attrs.get("axis", 0)), len(shape))
    outer, n, inner = _around(shape, axis)
    if n == 0:
        raise ctx.fail(f"{node.op_type} over an empty axis")
    if not outer * inner:
        return
    flags = (1 if node.op_type == "ArgMin" else 0) | (2 if node.attrs.get("select_last_index", 0) else 0)
    emit_axis(ctx, "f32_argminmax", outer, n, inner, flags, bufs=(Buf(x), Buf(y)), out_rows=((4, n), (8, 1)))


_PREFIX = {np.dtype(np.float32): "f32", np.dtype(np.int32): "i32", np.dtype(np.int64): "i64"}


def cumsum(ctx: LoweringContext, node: Node) -> None:
    """The axis is a scalar tensor: baked when constant, read by the kernel when computed at run time."""
    x, axis_name, y = node.input(0), node.input(1), node.outputs[0]
    ctx.require_dtype(x, y, dtypes=(np.float32, np.int32, np.int64))
    ctx.require_dtype(axis_name, dtypes=(np.int32, np.int64))
    prefix = _PREFIX[ctx.dtype(x)]
    size = ctx.dtype(x).itemsize
    shape = ctx.shape(x)
    flags = (1 if node.attrs.get("exclusive", 0) else 0) | (2 if node.attrs.get("reverse", 0) else 0)
    if not math.prod(shape):
        return
    axis = ctx.const(axis_name)
    if axis is None:
        is64 = int(ctx.dtype(axis_name) == np.int64)
        ctx.emit(f"{prefix}_cumsum_dyn", i32(shape), len(shape), Buf(axis_name), is64, flags, Buf(x), Buf(y))
        return
    outer, n, inner = _around(shape, _axis(ctx, int(np.asarray(axis).reshape(-1)[0]), len(shape)))
    bufs = (Buf(x), Buf(y))
    emit_axis(ctx, f"{prefix}_cumsum", outer, n, inner, flags, bufs=bufs, out_rows=((size, n), (size, n)))


def topk(ctx: LoweringContext, node: Node) -> None:
    """k is the size of the outputs' axis (an input from opset 10, an attribute before): the static output
    shape determines it exactly."""
    x, values, indices = node.input(0), node.outputs[0], node.outputs[1]
    ctx.require_dtype(x, values, dtypes=(np.float32, np.int32, np.int64))
    ctx.require_dtype(indices, dtypes=(np.int64,))
    shape = ctx.shape(x)
    axis = _axis(ctx, int(node.attrs.get("axis", -1)), len(shape))
    outer, n, inner = _around(shape, axis)
    k = ctx.shape(values)[axis]
    if k > n:
        raise ctx.fail(f"k = {k} is larger than the axis ({n})")
    if not outer * k * inner:
        return
    size = ctx.dtype(x).itemsize
    largest = int(node.attrs.get("largest", 1))
    ctx.emit(
        f"{_PREFIX[ctx.dtype(x)]}_topk",
        outer,
        n,
        k,
        inner,
        inner,
        largest,
        Buf(x),
        Buf(values),
        Buf(indices),
        split=(outer, "outer", {"x": size * n * inner, "yv": size * k * inner, "yi": 8 * k * inner})
        if outer >= inner
        else (inner, "inner", {"x": size, "yv": size, "yi": 8}),
    )


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    **dict.fromkeys(_REDUCE, reduce),
    "ArgMax": arg_min_max,
    "ArgMin": arg_min_max,
    "CumSum": cumsum,
    "TopK": topk,
}
