"""Data movement that rearranges elements, for any dtype (kernels copy by element size, kernels_wasm/x-movement.c):
Slice, Split, Pad, Expand, Tile, DepthToSpace, SpaceToDepth, CenterCropPad, and ConstantOfShape whose shape is
computed at run time.

Parameters known at package time become a strided view of the input (dims + element strides, folded, copied
by `x_copy_view`) or constant kernel arguments. Slice starts/steps and Pad pads given as run-time tensors are
read by the kernel itself (`x_slice`, `x_pad`), which normalizes them as ONNX specifies and traps if they do
not produce the output shape the plan was made for. Parameters that only set a shape the static output shape
determines exactly (Expand's shape, Tile's repeats, Split's sizes, CenterCropPad's shape, ConstantOfShape's
shape) are taken from that static shape.

    Slice(x[2:8:2, ::-1])   =>  x_copy_view  dims [3, W], strides [2W, -1], from x + (2W + W-1) elements
    Tile(x[3, 4], [2, 2])   =>  x_copy_view  dims [2, 3, 2, 4], strides [0, 4, 0, 1]
    Pad(x, run-time pads)   =>  x_pad reads pads at run time
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import Node
from .context import Buf, Const, LoweringContext, i32
from .layout import contiguous_strides, fold_dims

MAXR = 12  # dims the kernels walk (MAXR in x-movement.c)
_PAD_MODES = {"constant": 0, "reflect": 1, "edge": 2, "wrap": 3}


def elem_size(ctx: LoweringContext, name: str) -> int:
    dtype = ctx.dtype(name)
    if dtype.kind not in "biuf":
        raise ctx.fail(f"tensor {name!r} is {dtype.name}; data movement supports numeric and bool tensors")
    return dtype.itemsize


def _axis(ctx: LoweringContext, axis: int, rank: int) -> int:
    a = int(axis) + (rank if int(axis) < 0 else 0)
    if not 0 <= a < rank:
        raise ctx.fail(f"axis {axis} is out of range for rank {rank}")
    return a


def emit_view(ctx: LoweringContext, x: str, y: str, dims, strides, offset: int = 0) -> None:
    """y (contiguous, shape `dims`) = the elements of x at offset + sum(i_k * strides[k]); a view that is x
    itself becomes an alias."""
    dims, strides = [int(d) for d in dims], [int(s) for s in strides]
    if math.prod(dims) == 0:
        return
    es = elem_size(ctx, y)
    dims, (strides,) = fold_dims(dims, [strides])
    if not dims:
        dims, strides = [1], [0]
    if offset == 0 and strides == [1] and dims[0] == math.prod(ctx.shape(x)):
        ctx.alias(y, x)
        return
    if len(dims) > MAXR:
        raise ctx.fail(f"the copy needs {len(dims)} dims after folding; the kernel walks at most {MAXR}")
    rows = math.prod(dims[:-1])
    ctx.emit(
        "x_copy_view", es, len(dims), i32(dims + strides), Buf(x, offset * es), Buf(y), 0, rows,
        split=(rows, "nrows", {"y": dims[-1] * es, "r0": 1}),
    )  # fmt: skip


# Slice ------------------------------------------------------------------------------------------------------


def _slice_params(ctx: LoweringContext, node: Node):
    """(starts, ends, axes, steps) as names or constant arrays (None when absent)."""
    if ctx.graph.opset < 10:
        a = node.attrs
        return [np.asarray(a[k], np.int64) if a.get(k) is not None else None for k in ("starts", "ends", "axes")] + [
            None
        ]
    return [node.input(i) or None for i in (1, 2, 3, 4)]


def slice_(ctx: LoweringContext, node: Node) -> None:
    x, y = node.input(0), node.outputs[0]
    in_shape, out_shape = ctx.shape(x), ctx.shape(y)
    rank = len(in_shape)
    params = _slice_params(ctx, node)
    values = [ctx.const(p) if isinstance(p, str) else p for p in params]
    if all(v is not None for p, v in zip(params, values, strict=True) if p is not None):
        _slice_constant(ctx, x, y, in_shape, out_shape, *values)
        return
    if math.prod(out_shape) == 0:
        return
    if rank > MAXR:
        raise ctx.fail(f"Slice of a rank-{rank} tensor with run-time starts/ends (the kernel walks {MAXR} dims)")
    index_dtype = ctx.dtype(params[0]) if values[0] is None else np.asarray(values[0]).dtype
    if index_dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        raise ctx.fail(f"starts are {index_dtype.name}; Slice indices are int32 or int64")
    n = int(np.prod(ctx.shape(params[0]) if values[0] is None else np.shape(values[0])))
    args = []
    for what, p, v in zip(("starts", "ends", "axes", "steps"), params, values, strict=True):
        if p is None:
            args.append(None)
            continue
        size = int(np.prod(ctx.shape(p) if v is None else np.shape(v)))
        if size != n:
            raise ctx.fail(f"{what} has {size} entries, starts has {n}")
        if v is not None:
            args.append(Const(np.asarray(v).astype(index_dtype).reshape(-1), "slice"))
        elif ctx.dtype(p) != index_dtype:
            raise ctx.fail(f"{what} is {ctx.dtype(p).name} and starts {index_dtype.name}; they must match")
        else:
            args.append(Buf(p))
    es = elem_size(ctx, y)
    rows = math.prod(out_shape[:-1])
    ctx.emit(
        "x_slice", es, rank, i32(list(in_shape) + list(out_shape)), *args, n, int(index_dtype.itemsize == 8),
        Buf(x), Buf(y), 0, rows, split=(rows, "nrows", {"y": out_shape[-1] * es, "r0": 1}),
    )  # fmt: skip


def _slice_constant(ctx, x, y, in_shape, out_shape, starts, ends, axes, steps) -> None:
    rank = len(in_shape)
    starts, ends = np.asarray(starts).reshape(-1), np.asarray(ends).reshape(-1)
    axes = np.arange(len(starts)) if axes is None else np.asarray(axes).reshape(-1)
    steps = np.ones(len(starts), np.int64) if steps is None else np.asarray(steps).reshape(-1)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ctx.fail("starts, ends, axes and steps must have the same length")
    start, step, count = [0] * rank, [1] * rank, list(in_shape)
    seen = set()
    for s, e, a, st in zip(starts.tolist(), ends.tolist(), axes.tolist(), steps.tolist(), strict=True):
        a = _axis(ctx, a, rank)
        if a in seen:
            raise ctx.fail(f"axis {a} is sliced twice")
        seen.add(a)
        dim = in_shape[a]
        if st == 0:
            raise ctx.fail("a step of 0")
        s, e = s + dim if s < 0 else s, e + dim if e < 0 else e
        if st > 0:
            s, e = min(max(s, 0), dim), min(max(e, 0), dim)
            count[a] = max(0, -(-(e - s) // st))
        else:
            s, e = min(max(s, 0), dim - 1), min(max(e, -1), dim - 1)
            count[a] = max(0, -(-(s - e) // -st))
        start[a], step[a] = s, st
    if tuple(count) != tuple(out_shape):
        raise ctx.fail(f"the slice selects shape {count}, but the output is declared {list(out_shape)}")
    if math.prod(count) == 0:
        return
    cs = contiguous_strides(in_shape)
    offset = sum(s * c for s, c in zip(start, cs, strict=True))
    emit_view(ctx, x, y, count, [c * st for c, st in zip(cs, step, strict=True)], offset)


# Split ------------------------------------------------------------------------------------------------------


def split(ctx: LoweringContext, node: Node) -> None:
    """Each output is a band of the input along `axis`; its size is the output's static shape (whether the
    sizes came from the `split` attribute/input or from num_outputs)."""
    x = node.input(0)
    shape = ctx.shape(x)
    axis = _axis(ctx, node.attrs.get("axis", 0), len(shape))
    es = elem_size(ctx, x)
    outer, inner = math.prod(shape[:axis]), math.prod(shape[axis + 1 :]) * es
    row = shape[axis] * inner
    if any(not o for o in node.outputs):
        raise ctx.fail("an unnamed Split output (its size is unknown)")
    offset = 0
    for y in node.outputs:
        chunk = ctx.shape(y)[axis] * inner
        if chunk and outer:
            ctx.emit(
                "x_copy2d",
                outer,
                chunk,
                Buf(x, offset),
                row,
                Buf(y),
                chunk,
                split=(outer, "rows", {"src": row, "dst": chunk}),
            )
        offset += chunk
    if offset != row:
        raise ctx.fail(f"the outputs' sizes along axis {axis} do not add up to the input's {shape[axis]}")


# Pad --------------------------------------------------------------------------------------------------------


def _index_size(ctx: LoweringContext, name: str) -> int:
    shape = ctx.shape(name)
    return int(np.prod(shape)) if shape is not None else 0


def emit_pad(ctx: LoweringContext, x: str, y: str, mode: str, pads, axes, value) -> None:
    """pads: constant int array [begins, ends] or a run-time tensor name; axes: constant array, name or None;
    value: constant array (one element of x's dtype) or a run-time tensor name."""
    in_shape, out_shape = ctx.shape(x), ctx.shape(y)
    rank = len(in_shape)
    if mode not in _PAD_MODES:
        raise ctx.fail(f"mode {mode!r} (supported: {', '.join(_PAD_MODES)})")
    es = elem_size(ctx, y)
    if math.prod(out_shape) == 0:
        return
    if rank == 0:
        ctx.alias(y, x)
        return
    if rank > MAXR:
        raise ctx.fail(f"Pad of a rank-{rank} tensor (the kernel walks {MAXR} dims)")
    axes_value = ctx.const(axes) if isinstance(axes, str) else axes
    if not isinstance(pads, str) and (axes is None or axes_value is not None):
        pads = np.asarray(pads, np.int64).reshape(-1)
        axes_list = range(len(pads) // 2) if axes is None else np.asarray(axes_value).reshape(-1).tolist()
        if len(pads) != 2 * len(axes_list):
            raise ctx.fail(f"{len(pads)} pads for {len(axes_list)} axes")
        begin, end = [0] * rank, [0] * rank
        for i, a in enumerate(axes_list):
            a = _axis(ctx, a, rank)
            begin[a], end[a] = int(pads[i]), int(pads[len(axes_list) + i])
        got = [d + b + e for d, b, e in zip(in_shape, begin, end, strict=True)]
        if got != list(out_shape):
            raise ctx.fail(f"the pads give shape {got}, but the output is declared {list(out_shape)}")
        # negative pads crop first; the other modes repeat what is left
        kept = [d + min(b, 0) + min(e, 0) for d, b, e in zip(in_shape, begin, end, strict=True)]
        if any(k < 0 for k in kept) or (mode != "constant" and any(k == 0 < o for k, o in zip(kept, got, strict=True))):
            raise ctx.fail(f"pads {begin + end} crop more than the input {list(in_shape)} holds")
        if all(p <= 0 for p in begin + end):  # nothing added (a crop): a view of x
            emit_view(ctx, x, y, out_shape, contiguous_strides(in_shape),
                      sum(-b * c for b, c in zip(begin, contiguous_strides(in_shape), strict=True)))  # fmt: skip
            return
        pads_arg, axes_arg, n, axes64 = Const(np.array(begin + end, np.int64), "pads"), None, rank, 0
    else:
        axes_arg, axes64 = None, 0
        if axes is not None:
            if axes_value is not None:
                axes_arg = Const(np.asarray(axes_value, np.int64).reshape(-1), "axes")
                axes64 = 1
            else:
                ctx.require_dtype(axes, dtypes=(np.int32, np.int64))
                axes_arg, axes64 = Buf(axes), int(ctx.dtype(axes).itemsize == 8)
        n = _index_size(ctx, axes) if axes is not None else rank
        if isinstance(pads, str):
            ctx.require_dtype(pads, dtypes=(np.int64,))
            size, pads_arg = _index_size(ctx, pads), Buf(pads)
        else:
            pads_arg = Const(np.asarray(pads, np.int64).reshape(-1), "pads")
            size = pads_arg.array.size
        if size != 2 * n:
            raise ctx.fail(f"{size} pads for {n} axes")
    if isinstance(value, str):
        if ctx.dtype(value) != ctx.dtype(x):
            raise ctx.fail(f"constant_value is {ctx.dtype(value).name}, the data {ctx.dtype(x).name}")
        value_arg = Buf(value)
    else:
        v = np.asarray(value).reshape(-1)
        value_arg = Const(np.asarray(v[:1] if v.size else [0], ctx.dtype(x)), "pad value")
    rows = math.prod(out_shape[:-1])
    ctx.emit(
        "x_pad", es, rank, i32(list(in_shape) + list(out_shape)), pads_arg, axes_arg, n, axes64, _PAD_MODES[mode],
        value_arg, Buf(x), Buf(y), 0, rows, split=(rows, "nrows", {"y": out_shape[-1] * es, "r0": 1}),
    )  # fmt: skip


def pad(ctx: LoweringContext, node: Node) -> None:
    x, y = node.input(0), node.outputs[0]
    mode = node.attrs.get("mode", "constant")
    if ctx.graph.opset < 11:
        emit_pad(ctx, x, y, mode, node.attrs["pads"], None, [node.attrs.get("value", 0.0)])
        return
    pads = ctx.const(node.input(1))
    value = node.input(2)
    if not value or ctx.const(value) is not None or _index_size(ctx, value) == 0:
        value = ctx.const(value) if value else None
        value = [0] if value is None or np.size(value) == 0 else value
    emit_pad(ctx, x, y, mode, node.input(1) if pads is None else pads, node.input(3) or None, value)


def center_crop_pad(ctx: LoweringContext, node: Node) -> None:
    """Crop or zero-pad each listed axis to the output's size, centered (the extra element of an odd
    difference goes to the end)."""
    x, y = node.input(0), node.outputs[0]
    in_shape, out_shape = ctx.shape(x), ctx.shape(y)
    rank = len(in_shape)
    axes = node.attrs.get("axes")
    axes = {_axis(ctx, a, rank) for a in (range(rank) if axes is None else axes)}
    begin = []
    for k, (i, o) in enumerate(zip(in_shape, out_shape, strict=True)):
        if k not in axes and i != o:
            raise ctx.fail(f"axis {k} is not cropped or padded but changes size ({i} -> {o})")
        begin.append((o - i) // 2 if o >= i else -((i - o) // 2))
    end = [o - i - b for i, o, b in zip(in_shape, out_shape, begin, strict=True)]
    emit_pad(ctx, x, y, "constant", begin + end, None, [0])


# Expand, Tile, DepthToSpace, SpaceToDepth --------------------------------------------------------------------


def expand(ctx: LoweringContext, node: Node) -> None:
    """Broadcast to the output's static shape: size-1 dims repeat with stride 0."""
    x, y = node.input(0), node.outputs[0]
    out_shape = ctx.shape(y)
    in_shape = (1,) * (len(out_shape) - len(ctx.shape(x))) + tuple(ctx.shape(x))
    if len(in_shape) != len(out_shape):
        raise ctx.fail(f"input shape {list(ctx.shape(x))} has more dims than the output {list(out_shape)}")
    strides = []
    for i, o, s in zip(in_shape, out_shape, contiguous_strides(in_shape), strict=True):
        if i != o and i != 1:
            raise ctx.fail(f"input shape {list(ctx.shape(x))} does not broadcast to {list(out_shape)}")
        strides.append(s if i == o else 0)
    emit_view(ctx, x, y, out_shape, strides)


def tile(ctx: LoweringContext, node: Node) -> None:
    """Output dim k as (repeat, in_dim) with strides (0, stride): repeats are out_dim / in_dim."""
    x, y = node.input(0), node.outputs[0]
    in_shape, out_shape = ctx.shape(x), ctx.shape(y)
    if len(in_shape) != len(out_shape):
        raise ctx.fail(f"output rank {len(out_shape)} differs from the input's {len(in_shape)}")
    if math.prod(out_shape) == 0:
        return
    dims, strides = [], []
    for i, o, s in zip(in_shape, out_shape, contiguous_strides(in_shape), strict=True):
        if i == 0 or o % i:
            raise ctx.fail(f"output shape {list(out_shape)} is not a tiling of {list(in_shape)}")
        dims += [o // i, i]
        strides += [0, s]
    emit_view(ctx, x, y, dims, strides)


def _block_view(ctx: LoweringContext, node: Node, shape6, perm, expect) -> None:
    x, y = node.input(0), node.outputs[0]
    if tuple(ctx.shape(y)) != tuple(expect):
        raise ctx.fail(f"output shape {list(ctx.shape(y))}, expected {list(expect)}")
    cs = contiguous_strides(shape6)
    emit_view(ctx, x, y, [shape6[p] for p in perm], [cs[p] for p in perm])


def _nchw(ctx: LoweringContext, node: Node) -> tuple[int, int, int, int, int]:
    shape = ctx.shape(node.input(0))
    b = int(node.attrs["blocksize"])
    if len(shape) != 4 or b <= 0:
        raise ctx.fail(f"input shape {list(shape)} with blocksize {b} (expected 4-D NCHW)")
    return (*shape, b)


def depth_to_space(ctx: LoweringContext, node: Node) -> None:
    n, c, h, w, b = _nchw(ctx, node)
    if c % (b * b):
        raise ctx.fail(f"{c} channels are not a multiple of blocksize^2 = {b * b}")
    mode, c2 = node.attrs.get("mode", "DCR"), c // (b * b)
    if mode == "DCR":
        shape6, perm = (n, b, b, c2, h, w), (0, 3, 4, 1, 5, 2)
    elif mode == "CRD":
        shape6, perm = (n, c2, b, b, h, w), (0, 1, 4, 2, 5, 3)
    else:
        raise ctx.fail(f"mode {mode!r} (supported: DCR, CRD)")
    _block_view(ctx, node, shape6, perm, (n, c2, h * b, w * b))


def space_to_depth(ctx: LoweringContext, node: Node) -> None:
    n, c, h, w, b = _nchw(ctx, node)
    if h % b or w % b:
        raise ctx.fail(f"spatial size {h}x{w} is not a multiple of blocksize {b}")
    mode = node.attrs.get("mode", "DCR")
    perm = {"DCR": (0, 3, 5, 1, 2, 4), "CRD": (0, 1, 3, 5, 2, 4)}.get(mode)
    if perm is None:
        raise ctx.fail(f"mode {mode!r} (supported: DCR, CRD)")
    _block_view(ctx, node, (n, c, h // b, b, w // b, b), perm, (n, c * b * b, h // b, w // b))


# ConstantOfShape -------------------------------------------------------------------------------------------


def constant_of_shape(ctx: LoweringContext, node: Node) -> None:
    """A shape computed at run time still gives the statically known output shape: fill it. (Constant
    shapes were folded at package time into fills at load time.)"""
    y = node.outputs[0]
    n = math.prod(ctx.shape(y))
    if n == 0:
        return
    value = node.attrs.get("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)[:1]
    es = elem_size(ctx, y)
    ctx.emit("x_fill", es, Const(value.astype(ctx.dtype(y)), "fill value"), Buf(y), n, split=(n, "n", {"y": es}))


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    "Slice": slice_,
    "Split": split,
    "Pad": pad,
    "CenterCropPad": center_crop_pad,
    "Expand": expand,
    "Tile": tile,
    "DepthToSpace": depth_to_space,
    "SpaceToDepth": space_to_depth,
    "ConstantOfShape": constant_of_shape,
}
