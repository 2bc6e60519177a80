"""Normalizations: LayerNormalization, RMSNormalization, GroupNormalization, InstanceNormalization,
LpNormalization, MeanVarianceNormalization (statistics from the data, kernels_wasm/f32-normalization-wasmsimd.c),
BatchNormalization (given statistics, or computed in training mode) and LRN."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..ir import Graph, Node
from .context import Buf, Const, LoweringContext, Scratch, i32
from .layout import RANK, broadcast_layout


def _axis(ctx: LoweringContext, node: Node, rank: int, default: int = -1) -> int:
    axis = int(node.attrs.get("axis", default))
    if not -rank <= axis < rank:
        raise ctx.fail(f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


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
    outs = [] if rms else [ctx.optional_output(node, 1), ctx.optional_output(node, 2)]
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


def instance_norm(ctx: LoweringContext, node: Node) -> None:
    _group_norm(ctx, node, ctx.shape(node.input(0))[1], per_group=False)


def group_norm(ctx: LoweringContext, node: Node) -> None:
    """Opset 18 has one scale/bias per group, opset 21 one per channel: the parameter size tells which
    (they coincide when every group is one channel)."""
    groups = int(node.attrs["num_groups"])
    C = ctx.shape(node.input(0))[1]
    per_group = math.prod(ctx.shape(node.input(1))) == groups != C
    _group_norm(ctx, node, groups, per_group)


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


def batch_norm(ctx: LoweringContext, node: Node) -> None:
    """y = (x - mean) / sqrt(var + eps) * gamma + beta. With constant statistics, ==  x * scale + shift with
    scale and shift computed here once, in float64; with statistics computed at run time, a kernel derives
    them per channel. training_mode=1 normalizes with the batch's statistics and outputs the updated running
    mean and variance."""
    x, y = node.input(0), node.outputs[0]
    params = [node.input(i) for i in range(1, 5)]
    ctx.require_dtype(x, y, *params)
    xs = ctx.shape(x)
    N, C, inner = xs[0], (xs[1] if len(xs) > 1 else 1), math.prod(xs[2:])
    eps = float(node.attrs.get("epsilon", 1e-5))
    split = (C, "C", {"x": inner * 4, "scale": 4, "bias": 4, "mean": 4, "var": 4, "y": inner * 4})
    if node.attrs.get("training_mode", 0):
        outs = [ctx.optional_output(node, i) for i in (1, 2)]
        ctx.require_dtype(*(o.name for o in outs if o is not None))
        ctx.emit(
            "f32_batchnorm_train",
            C,
            N,
            inner,
            C * inner,
            *(Buf(n) for n in [x, *params]),
            Buf(y),
            *outs,
            eps,
            float(node.attrs.get("momentum", 0.9)),
            split=(
                C,
                "C",
                {
                    "x": inner * 4,
                    "scale": 4,
                    "bias": 4,
                    "in_mean": 4,
                    "in_var": 4,
                    "y": inner * 4,
                    "out_mean": 4,
                    "out_var": 4,
                },
            ),
        )
        return
    for i, what in ((1, "running mean"), (2, "running variance")):
        ctx.require_unused(node, i, what)
    consts = [ctx.const(n) for n in params]
    if any(c is None for c in consts):
        ctx.emit("f32_batchnorm", C, N, inner, C * inner, *(Buf(n) for n in [x, *params]), Buf(y), eps, split=split)
        return
    gamma, beta, mean, var = (c.astype(np.float64) for c in consts)
    scale = gamma / np.sqrt(var + eps)
    shift = beta - mean * scale
    ctx.emit(
        "f32_channel_affine",
        xs[0],
        xs[1],
        math.prod(xs[2:]),
        Buf(x),
        Const(scale.astype(np.float32), "bn.scale"),
        Const(shift.astype(np.float32), "bn.shift"),
        Buf(y),
    )


@dataclass(frozen=True)
class LRNSpec:
    """LRN: y = x / (bias + alpha / size * sum of x^2 over `size` neighbouring channels)^beta."""

    node: Node
    x: str
    y: str
    size: int
    alpha: float
    beta: float
    bias: float

    @classmethod
    def parse(cls, graph: Graph, node: Node) -> LRNSpec:
        a = node.attrs
        alpha, beta, bias = float(a.get("alpha", 1e-4)), float(a.get("beta", 0.75)), float(a.get("bias", 1.0))
        return cls(node, node.input(0), node.outputs[0], int(a["size"]), alpha, beta, bias)


def lrn(ctx: LoweringContext, spec: LRNSpec) -> None:
    x, y = spec.x, spec.y
    ctx.require_dtype(x, y)
    xs = ctx.shape(x)
    ctx.emit("f32_lrn", xs[0], xs[1], math.prod(xs[2:]), spec.size, spec.alpha, spec.beta, spec.bias, Buf(x), Buf(y))


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    "LayerNormalization": layer_norm,
    "RMSNormalization": layer_norm,
    "InstanceNormalization": instance_norm,
    "GroupNormalization": group_norm,
    "LpNormalization": lp_norm,
    "MeanVarianceNormalization": mean_variance_norm,
    "BatchNormalization": batch_norm,
    "LRN": lrn,
}
SPECS = {"LRN": LRNSpec.parse}
