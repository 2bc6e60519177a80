"""Normalizations whose statistics come from the data: LayerNormalization, RMSNormalization,
GroupNormalization, InstanceNormalization, LpNormalization, MeanVarianceNormalization
(kernels_wasm/f32-normalization-wasmsimd.c). BatchNormalization lives in norm.py."""

from __future__ import annotations

import math

from ..ir import Node
from ..lowering import Buf, LoweringContext, Scratch, i32, lowers
from .layout import RANK, broadcast_layout


def optional_output(ctx: LoweringContext, node: Node, index: int) -> Buf | None:
    """Buf of output `index` when something reads it (a consumer or the graph's outputs), else None."""
    name = node.outputs[index] if len(node.outputs) > index else ""
    if not name:
        return None
    if name in ctx.graph.outputs or ctx.graph.consumers().get(name):
        return Buf(name)
    return None


def _axis(ctx: LoweringContext, node: Node, rank: int, default: int = -1) -> int:
    axis = int(node.attrs.get("axis", default))
    if not -rank <= axis < rank:
        raise ctx.fail(f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


@lowers("LayerNormalization", "RMSNormalization")
def layer_norm(ctx: LoweringContext, node: Node) -> None:
    """Rows = the dims before `axis`, each normalized over the dims from `axis` on; Scale (and LayerNorm's B)
    broadcast to those trailing dims."""
    rms = node.op_type == "RMSNormalization"
    x, scale, y = node.input(0), node.input(1), node.outputs[0]
    bias = "" if rms else node.input(2)
    ctx.require_dtype(x, scale, bias, y)
    xs = ctx.shape(x)
    axis = _axis(ctx, node, len(xs))
    norm_shape = xs[axis:]
    rows, cols = math.prod(xs[:axis]), math.prod(norm_shape)
    params = [scale] + ([bias] if bias else [])
    for p in params:
        ps = ctx.shape(p)
        tail = norm_shape[len(norm_shape) - len(ps) :] if len(ps) <= len(norm_shape) else None
        if tail is None or any(a not in (1, b) for a, b in zip(ps, tail, strict=True)):
            raise ctx.fail(f"{p!r} of shape {list(ps)} does not broadcast to the normalized shape {list(norm_shape)}")
    layout = broadcast_layout(ctx, norm_shape, *(ctx.shape(p) for p in params))
    if not bias:
        layout += [0] * RANK
    outs = [] if rms else [optional_output(ctx, node, 1), optional_output(ctx, node, 2)]
    for o in outs:
        if o is not None:
            ctx.require_dtype(o.name)
    mean, invstd = outs or (None, None)
    if cols == 0 or rows == 0:
        return
    ctx.emit(
        "f32_layernorm",
        rows,
        cols,
        Buf(x),
        Buf(y),
        Buf(scale),
        Buf(bias) if bias else None,
        i32(layout),
        mean,
        invstd,
        float(node.attrs.get("epsilon", 1e-5)),
        int(rms),
        split=(rows, "rows", {"x": cols * 4, "y": cols * 4, "mean_out": 4, "invstd_out": 4}),
    )


def _group_norm(ctx: LoweringContext, node: Node, groups: int, per_group: bool) -> None:
    x, scale, bias, y = node.input(0), node.input(1), node.input(2), node.outputs[0]
    ctx.require_dtype(x, scale, bias, y)
    xs = ctx.shape(x)
    if len(xs) < 2:
        raise ctx.fail(f"input rank {len(xs)} has no channel dim")
    N, C, inner = xs[0], xs[1], math.prod(xs[2:])
    if groups <= 0 or C % groups:
        raise ctx.fail(f"{C} channels do not divide into {groups} groups")
    want = groups if per_group else C
    for p in (scale, bias):
        if math.prod(ctx.shape(p)) != want:
            raise ctx.fail(f"{p!r} has shape {list(ctx.shape(p))}; expected {want} values")
    cpg = C // groups
    step = 4 if per_group else cpg * 4
    ctx.emit(
        "f32_groupnorm",
        groups,
        N,
        cpg,
        inner,
        C * inner,
        Buf(x),
        Buf(scale),
        Buf(bias),
        Buf(y),
        float(node.attrs.get("epsilon", 1e-5)),
        int(per_group),
        split=(groups, "G", {"x": cpg * inner * 4, "scale": step, "bias": step, "y": cpg * inner * 4}),
    )


@lowers("InstanceNormalization")
def instance_norm(ctx: LoweringContext, node: Node) -> None:
    _group_norm(ctx, node, ctx.shape(node.input(0))[1], per_group=False)


@lowers("GroupNormalization")
def group_norm(ctx: LoweringContext, node: Node) -> None:
    """Opset 18 has one scale/bias per group, opset 21 one per channel: the parameter size tells which
    (they coincide when every group is one channel)."""
    groups = int(node.attrs["num_groups"])
    C = ctx.shape(node.input(0))[1]
    per_group = math.prod(ctx.shape(node.input(1))) == groups != C
    _group_norm(ctx, node, groups, per_group)


@lowers("LpNormalization")
def lp_norm(ctx: LoweringContext, node: Node) -> None:
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, y)
    xs = ctx.shape(x)
    p = int(node.attrs.get("p", 2))
    if p not in (1, 2):
        raise ctx.fail(f"p={p} is not supported (LpNormalization defines p = 1 or 2)")
    axis = _axis(ctx, node, len(xs))
    outer, L, inner = math.prod(xs[:axis]), xs[axis], math.prod(xs[axis + 1 :])
    if outer * L * inner == 0:
        return
    ctx.emit(
        "f32_lpnorm",
        outer,
        L,
        inner,
        p,
        Buf(x),
        Buf(y),
        split=(outer, "outer", {"x": L * inner * 4, "y": L * inner * 4}),
    )


@lowers("MeanVarianceNormalization")
def mean_variance_norm(ctx: LoweringContext, node: Node) -> None:
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, y)
    xs = ctx.shape(x)
    rank = len(xs)
    axes = {a + rank if a < 0 else a for a in node.attrs.get("axes", [0, 2, 3])}
    if any(not 0 <= a < rank for a in axes):
        raise ctx.fail(f"axes {sorted(axes)} out of range for rank {rank}")
    # fold: drop size-1 dims, merge neighbours of the same kind
    dims: list[int] = []
    red: list[int] = []
    for i, d in enumerate(xs):
        if d == 1:
            continue
        r = int(i in axes)
        if red and red[-1] == r:
            dims[-1] *= d
        else:
            dims.append(d)
            red.append(r)
    if len(dims) > RANK:
        raise ctx.fail(f"the reduction pattern needs {len(dims)} dims after folding; the kernel walks {RANK}")
    if math.prod(xs) == 0:
        return
    pad = RANK - len(dims)
    layout = [1] * pad + dims + [0] * pad + red
    kept = math.prod(d for d, r in zip(dims, red, strict=True) if not r)
    ctx.emit("f32_mvn", i32(layout), Buf(x), Buf(y), Scratch(2 * kept * 4))
