"""Resize (opset 10-19) and Upsample (7, 9): nearest / linear / cubic, every coordinate transformation mode,
antialias, exclude_outside, keep_aspect_ratio_policy, axes; scales, sizes and roi constant or run-time.

Interpolation is separable: each resized axis is one pass of `f32_resize_axis` over a [outer, n_in, inner]
view, reading a table of (first input coordinate, count, weights) per output coordinate (format in
kernels_wasm/f32-resize-wasmsimd.c). The tables follow the ONNX reference implementation's arithmetic
(float64 coordinates, its tap windows and edge clamping), so nearest-mode ties round the same way.

When the scales / sizes / roi are constants (or sizes a run-time tensor that the static output shape
determines), the tables are computed here at package time and axes that come out as the identity are
skipped. Otherwise `resize_table` computes each axis's table at run time from the tensors.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..ir import Node
from .context import Buf, Const, LoweringContext, Scratch, i32

MODES = {"nearest": 0, "linear": 1, "bilinear": 1, "trilinear": 1, "cubic": 2, "bicubic": 2}
CTMS = {
    "half_pixel": 0,
    "asymmetric": 1,
    "pytorch_half_pixel": 2,
    "tf_half_pixel_for_nn": 3,
    "align_corners": 4,
    "tf_crop_and_resize": 5,
    "half_pixel_symmetric": 6,
}
NEAREST = {"round_prefer_floor": 0, "round_prefer_ceil": 1, "floor": 2, "ceil": 3, "simple": 4}
POLICIES = {"stretch": 0, "not_larger": 1, "not_smaller": 2}
NEAREST_MODE, LINEAR_MODE, CUBIC_MODE = 0, 1, 2
TF_CROP = CTMS["tf_crop_and_resize"]


@dataclass(frozen=True)
class Interp:
    mode: int
    ctm: int
    nearest: int
    exclude_outside: bool
    antialias: bool
    cubic_a: float  # float32 value

    def taps(self, scale_min: float, n_in: int) -> int:
        """Weights per output coordinate for scales >= scale_min (merged taps never exceed n_in)."""
        if self.mode == NEAREST_MODE:
            return 1
        if not self.antialias:
            n = 2 if self.mode == LINEAR_MODE else 4
        else:
            s = min(scale_min, 1.0)
            n = -2 * math.floor((-1.0 if self.mode == LINEAR_MODE else -2.0) / s) + 2  # slack for rounding
        return max(1, min(n, n_in))


def _tap_weight(ip: Interp, s: float, i: int, r: float) -> float:
    A = ip.cubic_a
    if ip.antialias:
        arg = (i - r) * s
        if ip.mode == LINEAR_MODE:
            return min(max(1 - abs(arg), 0.0), 1.0)
        x = abs(arg)
        x2, x3 = x * x, x * x * x
        if x <= 1:
            return (A + 2) * x3 - (A + 3) * x2 + 1
        if x < 2:
            return A * x3 - 5 * A * x2 + 8 * A * x - 4 * A
        return 0.0
    if ip.mode == LINEAR_MODE:
        return 1 - r if i == 0 else r
    if i == -1:
        return ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A
    if i == 0:
        return ((A + 2) * r - (A + 3)) * r * r + 1
    if i == 1:
        return ((A + 2) * (1 - r) - (A + 3)) * (1 - r) * (1 - r) + 1
    return ((A * ((1 - r) + 1) - 5 * A) * ((1 - r) + 1) + 8 * A) * ((1 - r) + 1) - 4 * A


def source_coordinate(ip: Interp, o: int, n_in: int, n_out: int, scale: float, r0, r1) -> float:
    """Input coordinate of output coordinate o (float64, the reference's formulas; r0/r1 float32)."""
    x = float(o)
    ow = scale * n_in  # the reference's output_width: not rounded
    ctm = ip.ctm
    if ctm == CTMS["asymmetric"]:
        return x / scale
    if ctm == CTMS["pytorch_half_pixel"]:
        return (x + 0.5) / scale - 0.5 if n_out > 1 else 0.0
    if ctm == CTMS["tf_half_pixel_for_nn"]:
        return (x + 0.5) / scale
    if ctm == CTMS["align_corners"]:
        return 0.0 if ow == 1 else x * (n_in - 1) / (ow - 1)
    if ctm == TF_CROP:
        span, lead = np.float32(r1) - np.float32(r0), np.float32(r0) * np.float32(n_in - 1)
        if ow == 1:
            xo = float(span * np.float32(n_in - 1) / np.float32(2))
        else:
            xo = x * float(span) * (n_in - 1) / (ow - 1)
        return xo + float(lead)
    if ctm == CTMS["half_pixel_symmetric"]:
        adjustment = n_out / ow
        offset = (n_in / 2) * (1 - adjustment)
        return offset + (x + 0.5) / scale - 0.5
    return (x + 0.5) / scale - 0.5


def axis_table(ip: Interp, n_in: int, n_out: int, scale: float, r0=0.0, r1=1.0, taps: int | None = None):
    """(start[n_out], count[n_out], weights[n_out, taps]) for one axis; the same computation as the
    kernel resize_table (kernels_wasm/f32-resize-wasmsimd.c)."""
    taps = taps or ip.taps(scale, n_in)
    start = np.zeros(n_out, np.int32)
    count = np.zeros(n_out, np.int32)
    weights = np.zeros((n_out, taps), np.float32)
    s_aa = min(scale, 1.0)
    for o in range(n_out):
        xo = source_coordinate(ip, o, n_in, n_out, scale, r0, r1)
        if ip.ctm == TF_CROP and (xo < 0 or xo > n_in - 1):
            continue  # count 0: extrapolation value
        fl = math.floor(xo)
        frac = xo - fl
        if ip.mode == NEAREST_MODE:
            idx = fl
            if frac != 0:
                idx += {0: frac > 0.5, 1: frac >= 0.5, 2: 0, 3: 1, 4: scale < 1}[ip.nearest]
            start[o], count[o], weights[o, 0] = min(max(idx, 0), n_in - 1), 1, 1.0
            continue
        base, r = (fl, frac) if frac != 0 else (fl - 1, 1.0)
        if ip.antialias:
            i0 = math.floor((-1.0 if ip.mode == LINEAR_MODE else -2.0) / s_aa) + 1
            n = 2 - 2 * i0
        else:
            i0, n = (0, 2) if ip.mode == LINEAR_MODE else (-1, 4)
        taps_in = [i for i in range(i0, i0 + n) if not (ip.exclude_outside and not 0 <= base + i < n_in)]
        raw = {i: _tap_weight(ip, s_aa, i, r) for i in taps_in}
        total = sum(raw.values())
        norm = total if (ip.antialias or ip.exclude_outside) and total != 0 else 1.0
        lo, hi = min(max(base + i0, 0), n_in - 1), min(max(base + i0 + n - 1, 0), n_in - 1)
        acc = np.zeros(hi - lo + 1, np.float64)
        for i, v in raw.items():
            acc[min(max(base + i, 0), n_in - 1) - lo] += v / norm
        w = acc.astype(np.float32)
        nz = np.flatnonzero(w)
        j0, j1 = (int(nz[0]), int(nz[-1])) if nz.size else (0, 0)
        if j1 - j0 + 1 > taps:
            raise AssertionError(f"resize table needs {j1 - j0 + 1} taps, sized for {taps}")
        start[o], count[o] = lo + j0, j1 - j0 + 1
        weights[o, : j1 - j0 + 1] = w[j0 : j1 + 1]
    return start, count, weights


def pack_table(start, count, weights) -> np.ndarray:
    return np.concatenate([start, count, weights.reshape(-1).view(np.int32)]).astype(np.int32)


def is_identity(start, count, weights, n_in: int) -> bool:
    n_out = len(start)
    return (
        n_in == n_out
        and bool(np.all(count == 1))
        and bool(np.all(start == np.arange(n_out)))
        and bool(np.all(weights[:, 0] == 1.0))
    )


# ---------------------------------------------------------------------------------------------------------


def _present(ctx: LoweringContext, name: str) -> bool:
    """An optional input counts as given when it names a tensor with at least one element."""
    return bool(name) and math.prod(ctx.shape(name)) > 0


def resize(ctx: LoweringContext, node: Node) -> None:
    x, y = node.input(0), node.outputs[0]
    in_shape, out_shape = ctx.shape(x), ctx.shape(y)
    rank = len(in_shape)
    a = node.attrs
    legacy = node.op_type == "Upsample" or ctx.graph.opset < 11  # Resize-10 and Upsample: asymmetric, "simple"
    mode_name = str(a.get("mode", "nearest")).lower()
    if mode_name not in MODES or (legacy and MODES[mode_name] == CUBIC_MODE):
        raise ctx.fail(f"mode {mode_name!r} is not supported")
    ctm_name = "asymmetric" if legacy else a.get("coordinate_transformation_mode", "half_pixel")
    nearest_name = "simple" if legacy else a.get("nearest_mode", "round_prefer_floor")
    policy_name = a.get("keep_aspect_ratio_policy", "stretch")
    for value, table, what in (
        (ctm_name, CTMS, "coordinate_transformation_mode"),
        (nearest_name, NEAREST, "nearest_mode"),
        (policy_name, POLICIES, "keep_aspect_ratio_policy"),
    ):
        if value not in table:
            raise ctx.fail(f"{what} {value!r} is not supported")
    ip = Interp(
        MODES[mode_name],
        CTMS[ctm_name],
        NEAREST[nearest_name],
        bool(a.get("exclude_outside", 0)),
        bool(a.get("antialias", 0)) and MODES[mode_name] != NEAREST_MODE,
        float(np.float32(a.get("cubic_coeff_a", -0.75))),
    )
    extrapolation = float(a.get("extrapolation_value", 0.0))
    policy = POLICIES[policy_name]

    # which input holds what; `axes` lists the dims that scales / sizes / roi describe, in their order
    if node.op_type == "Upsample" and ctx.graph.opset < 9:
        roi_name, sizes_name = "", ""
        scales_name = None
        scales_const = np.asarray(a["scales"], np.float32)
    elif legacy:
        roi_name, scales_name, sizes_name = "", node.input(1), ""
    else:
        roi_name, scales_name, sizes_name = node.input(1), node.input(2), node.input(3)
    if scales_name is not None:
        scales_const = None
        if not _present(ctx, scales_name):
            scales_name = ""
        elif (c := ctx.const(scales_name)) is not None:
            scales_const = np.asarray(c, np.float32)
    if sizes_name and not _present(ctx, sizes_name):
        sizes_name = ""
    if scales_const is None and not scales_name and not sizes_name:
        raise ctx.fail("neither scales nor sizes is given")
    if ip.ctm != TF_CROP or (roi_name and not _present(ctx, roi_name)):
        roi_name = ""
    axes = [int(d) + (rank if int(d) < 0 else 0) for d in (a.get("axes") or range(rank))]
    if sorted(set(axes)) != sorted(axes) or any(not 0 <= d < rank for d in axes):
        raise ctx.fail(f"invalid axes {a.get('axes')} for rank {rank}")
    pos = [axes.index(d) if d in axes else -1 for d in range(rank)]
    for d in range(rank):
        if pos[d] < 0 and in_shape[d] != out_shape[d]:
            raise ctx.fail(f"dim {d} is not in axes but changes size ({in_shape[d]} -> {out_shape[d]})")
    if math.prod(out_shape) == 0:
        return
    if any(in_shape[d] == 0 for d in axes):
        raise ctx.fail("an empty input dimension cannot be resized to a non-empty one")

    float_data = ctx.dtype(x) == np.float32
    if not float_data and ip.mode != NEAREST_MODE:
        raise ctx.fail(f"{mode_name} interpolation of {ctx.dtype(x).name} is not supported (float32 only)")
    if ctx.dtype(x).name in ("float16", "float64", "bfloat16", "object"):
        raise ctx.fail(f"tensor {x!r} is {ctx.dtype(x).name}; Resize supports float32 (nearest: any 1-8 byte type)")

    sizes_const = ctx.const(sizes_name) if sizes_name else None
    if sizes_name and sizes_const is None and policy == POLICIES["stretch"]:
        # run-time sizes without a policy: the static output shape is exactly what they say
        sizes_const = np.array([out_shape[d] for d in axes], np.int64)
    roi_const = None
    if roi_name:
        roi_const = ctx.const(roi_name)
        if roi_const is not None:
            roi_const = np.asarray(roi_const)
            if roi_const.dtype != np.float32:
                roi_const = roi_const.astype(np.float32)

    static = (sizes_name and sizes_const is not None) or (not sizes_name and scales_const is not None)
    static = static and (not roi_name or roi_const is not None)
    # a dynamic-shape plan (package._package_dynamic) has one table size per input size: tables at run time
    static = static and not ctx.graph.metadata.get("dynamic")

    passes: list[tuple[int, object, int]] = []  # (dim, table pointer, taps)
    if static:
        scales = _static_scales(
            ctx, in_shape, out_shape, axes, scales_const, sizes_const if sizes_name else None, policy
        )
        for d in axes:
            p = pos[d]
            r0, r1 = (roi_const[p], roi_const[len(axes) + p]) if roi_const is not None else (0.0, 1.0)
            start, count, weights = axis_table(ip, in_shape[d], out_shape[d], scales[d], r0, r1)
            if is_identity(start, count, weights, in_shape[d]):
                continue
            taps = int(max(count.max(initial=1), 1))
            passes.append((d, Const(pack_table(start, count, weights[:, :taps]), "resize table"), taps))
    else:
        if roi_name and roi_const is None:
            ctx.require_dtype(roi_name)
        if scales_name and scales_const is None:
            ctx.require_dtype(scales_name)
        if sizes_name and sizes_const is None:
            ctx.require_dtype(sizes_name, dtypes=(np.int64,))
        scales_ptr = None
        if not sizes_name:
            scales_ptr = Const(scales_const) if scales_const is not None else Buf(scales_name)
        sizes_ptr = (
            (Const(np.asarray(sizes_const, np.int64)) if sizes_const is not None else Buf(sizes_name))
            if sizes_name
            else None
        )
        roi_ptr = (Const(roi_const) if roi_const is not None else Buf(roi_name)) if roi_name else None
        cfg = i32(
            [
                rank,
                ip.mode,
                ip.ctm,
                ip.nearest,
                int(ip.exclude_outside),
                int(ip.antialias),
                int(np.float32(ip.cubic_a).view(np.int32)),
                policy,
                len(axes),
                *pos,
                *in_shape,
            ]
        )
        for d in axes:
            n_in, n_out = in_shape[d], out_shape[d]
            if n_in == n_out == 1 and ip.ctm != TF_CROP:
                continue  # one input element: every mode returns it
            # output n_out = floor(n_in * scale) or round(n_in * scale): scale > (n_out - 0.5) / n_in
            taps = ip.taps(max(n_out - 0.5, 0.5) / n_in, n_in)
            table = Scratch((2 * n_out + n_out * taps) * 4)
            ctx.emit("resize_table", cfg, scales_ptr, sizes_ptr, roi_ptr, d, n_in, n_out, taps, table)
            passes.append((d, table, taps))

    if not passes:
        ctx.alias(y, x)
        return
    _emit_passes(ctx, x, y, in_shape, out_shape, passes, float_data, extrapolation)


def _static_scales(ctx, in_shape, out_shape, axes, scales, sizes, policy) -> dict[int, float]:
    """Per resized dim, the scale the reference uses (float64), checked against the static output shape."""
    out = {}
    if sizes is not None:
        sizes = [int(v) for v in np.asarray(sizes).reshape(-1)]
        if len(sizes) != len(axes):
            raise ctx.fail(f"sizes has {len(sizes)} values for {len(axes)} axes")
        ratios = {d: sizes[i] / in_shape[d] for i, d in enumerate(axes)}
        if policy == POLICIES["stretch"]:
            out = ratios
            expected = dict(zip(axes, sizes, strict=True))
        else:
            s = (min if policy == POLICIES["not_larger"] else max)(ratios.values())
            out = dict.fromkeys(axes, s)
            expected = {d: int(s * in_shape[d] + 0.5) for d in axes}
    else:
        scales = np.asarray(scales, np.float32).reshape(-1)
        if len(scales) != len(axes):
            raise ctx.fail(f"scales has {len(scales)} values for {len(axes)} axes")
        if np.any(scales <= 0):
            raise ctx.fail(f"scales must be positive, got {scales.tolist()}")
        out = {d: float(scales[i]) for i, d in enumerate(axes)}
        expected = {d: int(math.floor(float(scales[i]) * in_shape[d])) for i, d in enumerate(axes)}
    for d in axes:
        if expected[d] != out_shape[d]:
            raise ctx.fail(f"output dim {d} is {out_shape[d]} in the model but the scales/sizes give {expected[d]}")
    return out


def _emit_passes(ctx, x, y, in_shape, out_shape, passes, float_data, extrapolation) -> None:
    """One pass per axis, in the order with the least work; intermediates live in scratch buffers."""

    def cost(order):
        shape, total = list(in_shape), 0
        for d, _, taps in order:
            shape[d] = out_shape[d]
            inner = math.prod(shape[d + 1 :])
            total += math.prod(shape) * taps * (3 if inner < 4 else 1)
        return total

    order = min(itertools.permutations(passes), key=cost) if len(passes) <= 4 else passes
    itemsize = ctx.dtype(x).itemsize
    shape = list(in_shape)
    src = Buf(x)
    for k, (d, table, taps) in enumerate(order):
        n_in = shape[d]
        shape[d] = out_shape[d]
        outer, inner, n_out = math.prod(shape[:d]), math.prod(shape[d + 1 :]), shape[d]
        dst = Buf(y) if k == len(order) - 1 else Scratch(math.prod(shape) * itemsize)
        units = outer * n_out
        if float_data:
            ctx.emit(
                "f32_resize_axis",
                0,
                units,
                n_out,
                inner,
                src,
                n_in,
                dst,
                table,
                taps,
                extrapolation,
                split=(units, "count", {"first": 1}),
            )
        else:
            extra = Const(np.asarray([extrapolation]).astype(ctx.dtype(x)), "extrapolation")
            ctx.emit(
                "x_resize_nearest_axis",
                0,
                units,
                n_out,
                inner * itemsize,
                src,
                n_in,
                dst,
                table,
                extra,
                itemsize,
                split=(units, "count", {"first": 1}),
            )
        src = dst


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    "Resize": resize,
    "Upsample": resize,
}
