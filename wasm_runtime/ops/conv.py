"""Conv and FusedConv (1-D, 2-D and 3-D, NCHW): depthwise -> direct kernel, 3x3 stride 1 -> Winograd F(2x2,3x3)
(or im2col when --tune measured it faster), everything else -> im2col + GEMM (3-D: f32_conv3d);
the fused activation and residual run in the kernels' epilogue."""

from __future__ import annotations

from ..ir import is_uniform
from . import winograd
from .context import Buf, LoweringContext, Scratch, i32
from .gemm import TILES
from .spatial import ConvSpec, as_2d


def conv(ctx: LoweringContext, spec: ConvSpec) -> None:
    x, w, b, y = spec.x, spec.w, spec.b, spec.y
    ctx.require_dtype(x, w, b, y, spec.epilogue.residual)
    xs, ws, ys = spec.x_shape, spec.w_shape, spec.y_shape
    spatial = len(xs) - 2
    if spatial == 3:
        conv3d(ctx, spec)
        return
    if spatial not in (1, 2):
        raise ctx.fail(f"{spatial}-D convolution is not supported (1-D, 2-D and 3-D are)")
    group = spec.group
    N, C, M = xs[0], xs[1], ws[0]
    H, W = as_2d(xs[2:], 1)
    OH, OW = as_2d(ys[2:], 1)
    win = spec.window.as_2d()
    KH, KW = win.kernel
    SH, SW = win.strides
    DH, DW = win.dilations
    PT, PL = win.begin
    bias = Buf(b) if b else None
    act, p0, p1 = spec.epilogue.args()
    r = spec.epilogue.residual
    residual = Buf(r) if r else None
    if group == C == M and ws[1] == 1:
        # threads split the channels (one plane each); with a batch the planes interleave, so no split
        plane_in, plane_out = H * W * 4, OH * OW * 4
        split = (
            (C, "C", {"x": plane_in, "w": KH * KW * 4, "bias": 4, "y": plane_out, "residual": plane_out})
            if N == 1
            else None
        )
        ctx.emit(
            "f32_dwconv2d",
            N,
            C,
            H,
            W,
            OH,
            OW,
            KH,
            KW,
            SH,
            SW,
            PT,
            PL,
            DH,
            DW,
            Buf(x),
            Buf(w),
            bias,
            Buf(y),
            act,
            p0,
            p1,
            residual,
            split=split,
        )
        return
    weights = ctx.const(w)
    direct = KH == KW == SH == SW == 1 and PT == PL == 0
    # candidates: im2col into packed panels for the GEMM's register tile (gemm.TILES), and Winograd. A 1x1
    # convolution multiplies its input in place (no copy). Packing that input instead is not offered to --tune:
    # V8 runs it 1.00-1.15x slower on every MobileNetV2 1x1 layer (kernel A/B in Chromium), wasmtime 1.36x
    # faster, so wasmtime's choice of it made tuned bundles slower in the browser.
    options = ["gemm in place"] if direct else [f"im2col {t}" for t in TILES]
    # uniform weights (a ConstantOfShape fill) stay untransformed: shipped as a fill, not as 16/9 x the bytes
    # (not in a dynamic-shape plan: its workspace rounds the tile counts up, no polynomial in the dims)
    dynamic = ctx.graph.metadata.get("dynamic")
    if winograd.applicable(xs, ws, spec.node.attrs) and weights is not None and not is_uniform(weights) and not dynamic:
        # both give the same values; Winograd measured 3.6-4.4x faster on ResNet-18's layers (--tune re-times)
        options.insert(0, "winograd")
    choice = ctx.algorithm(options, default=options[0])
    if choice == "winograd":
        winograd.emit(ctx, spec)
        return
    mr = TILES.get(choice.split(" ", 1)[1], 0)
    K = (C // group) * KH * KW
    x_plane, y_plane = H * W, OH * OW
    if direct:
        # a 1x1 stride-1 convolution is one GEMM over the flattened plane, on the input as it is: present it
        # as a single row of OH*OW pixels, so threads split it into 8-column blocks (row bands leave slow
        # scalar column tails); with fewer pixels than output channels (MobileNetV2's 7x7 and 14x14 layers)
        # they split the channels instead, so each streams half the weights rather than all of them, and
        # small planes do not cut into uneven blocks (49 pixels: 32 + 17)
        H, W, OH, OW = 1, x_plane, 1, y_plane
        workspace = None
        split = (OW, "OW", {"x": 4, "y": 4, "residual": 4}, 8)
        # (a dynamic-shape plan keeps one way for every size: the pixel split)
        if group == 1 and N == 1 and M > OW and not dynamic:
            split = (M, "M", {"w": K * 4, "bias": 4, "y": y_plane * 4, "residual": y_plane * 4}, 4)
    else:
        # threads split output rows into bands: y/residual move to the band, im2col shifts the window origin
        # (PT) and fills its own part of the workspace. A band of r rows packs r * OW columns rounded up to 8,
        # at most r * (OW + 7): bands step by that much so their panels never overlap.
        workspace = Scratch(K * OH * (OW + 7) * 4)
        split = (OH, "OH", {"PT": -SH, "y": OW * 4, "workspace": K * (OW + 7) * 4, "residual": OW * 4})
    ctx.emit(
        "f32_conv2d",
        N,
        C,
        H,
        W,
        M,
        OH,
        OW,
        KH,
        KW,
        SH,
        SW,
        PT,
        PL,
        DH,
        DW,
        group,
        Buf(x),
        Buf(w),
        bias,
        Buf(y),
        workspace,
        act,
        p0,
        p1,
        residual,
        x_plane,
        y_plane,
        mr,
        split=split,
    )


# im2col columns of one 3-D block (output positions x Cg * K): bounds the workspace on large volumes
CONV3D_BLOCK_FLOATS = 1 << 20


def conv3d(ctx: LoweringContext, spec: ConvSpec) -> None:
    x, w, b, y = spec.x, spec.w, spec.b, spec.y
    xs, ws, ys = spec.x_shape, spec.w_shape, spec.y_shape
    group, win = spec.group, spec.window
    N, C, M = xs[0], xs[1], ws[0]
    if N * M * ys[2] * ys[3] * ys[4] == 0:
        return
    ck = (C // group) * win.kernel[0] * win.kernel[1] * win.kernel[2]
    plane = ys[3] * ys[4]
    slices = max(1, min(ys[2], CONV3D_BLOCK_FLOATS // max(1, ck * plane)))
    geo = [*xs[2:], *ys[2:], *win.kernel, *win.strides, *win.begin, *win.dilations, slices]
    act, p0, p1 = spec.epilogue.args()
    r = spec.epilogue.residual
    ctx.emit(
        "f32_conv3d",
        N,
        C,
        M,
        group,
        i32(geo),
        Buf(x),
        Buf(w),
        Buf(b) if b else None,
        Buf(y),
        Scratch(ck * slices * plane * 4),
        act,
        p0,
        p1,
        Buf(r) if r else None,
    )


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    "Conv": conv,
    "FusedConv": conv,
}
SPECS = {
    "Conv": ConvSpec.parse,
    "FusedConv": ConvSpec.parse,
}
