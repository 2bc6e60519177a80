"""Winograd F(2x2, 3x3) convolution: 3x3, stride 1, dilation 1, groups 1, 2-D NCHW float32.

The weights are transformed when the bundle loads (U = G g G^T per output/input channel pair, packed for the
kernel's register tile, by the init step `f32_winograd_f23_weights`; transform_weights is the float64 reference of
the same layout); the browser runs `f32_conv2d_winograd_f23` (kernels_wasm/f32-conv2d-winograd-f23-wasmsimd.c),
which transforms the input tiles, runs 16 GEMMs per block of tiles and transforms back with the fused epilogue
(y = act(conv + bias + residual)). U holds 16 floats per (m, c) pair where the OIHW weights hold 9: the download
stays at the 9, the memory holds both (25/9 of the layer's weights).

conv.py decides: `if winograd.applicable(x_shape, w_shape, node.attrs) and ctx.const(w) is not None:
winograd.emit(ctx, spec)` (emit needs the weights constant, applicable only sees shapes).
"""

from __future__ import annotations

import numpy as np

from .context import Buf, LoweringContext, Scratch
from .spatial import ConvSpec

KERNEL = "f32_conv2d_winograd_f23"

# Mirrors of the kernel's constants (MR, TB_MAX and tile_block() in the C file): keep them in sync.
MR = 4  # output channels per GEMM register tile; U rows are zero-padded to a multiple of MR
NR = 8  # tiles per GEMM register tile; blocks hold a multiple of NR tiles
TB_MAX = 256  # most tiles per block
TB_BUDGET = 8192  # C * TB floats per transform position, ~32 KB

# F(2x2, 3x3) transforms (Lavin & Gray): y = A^T [(G g G^T) (.) (B^T d B)] A
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
BT = np.array([[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, -1.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0]])
AT = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]])

# Where it pays, measured against im2col + GEMM in wasmtime (benchmarks/winograd_bench.py --sweep, both variants):
# 2.1-4.9x with C, M >= 4 and outputs from 3x3 up (3.8-4.4x on ResNet-18's layers), 1.7-1.9x for RGB inputs (C = 3);
# only 1.1x with C = 1, 1.5x with M = 1 (the GEMM pads M to MR = 4) and 1.05-1.5x for a 2x2 output (one tile: the
# 16/9 bigger weights dominate). Outside these bounds it is not worth 7/9 more weight bytes.
MIN_IN_CHANNELS = 3
MIN_OUT_CHANNELS = 4
MIN_OUTPUT_SIDE = 2
MIN_OUTPUT_AREA = 9


def padded_rows(M: int) -> int:
    return -(-M // MR) * MR


def transform_weights(w: np.ndarray) -> np.ndarray:
    """w [M, C, 3, 3] -> U, float32 [16, Mp / MR, C, MR] (Mp = M rounded up to MR, zero rows past M):
    U[p, m // MR, c, m % MR] = (G w[m, c] G^T)[p // 4, p % 4], computed in float64."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 4 or w.shape[2:] != (3, 3):
        raise ValueError(f"expected weights [M, C, 3, 3], got {w.shape}")
    M, C = w.shape[:2]
    gw = np.tensordot(G, w, axes=([1], [2]))  # [i][m][c][l] = sum_k G[i][k] w[m][c][k][l]
    u = np.tensordot(gw, G, axes=([3], [1])).transpose(0, 3, 1, 2).reshape(16, M, C)  # [i * 4 + j][m][c]
    Mp = padded_rows(M)
    packed = np.zeros((16, Mp, C))
    packed[:, :M] = u
    return np.ascontiguousarray(packed.reshape(16, Mp // MR, MR, C).transpose(0, 1, 3, 2), dtype=np.float32)


def tile_block(C: int, tiles: int) -> int:
    """Tiles per block for `tiles` tiles of C channels, as the kernel's tile_block() picks them (a multiple of NR)."""
    tb = max(NR, min(TB_MAX, TB_BUDGET // max(C, 1)) // NR * NR)
    return min(tb, -(-tiles // NR) * NR)


def kernel_workspace_floats(C: int, M: int, OH: int, OW: int) -> int:
    """What one call on an OH x OW output uses: the zero-padded input C x (2 TH + 2) x (2 TW + 2) (TH, TW = OH, OW
    halved up), the V block 16 x (C * TB + 16) and the M' block Mp x 16 x TB, TB = tile_block(C, TH * TW)."""
    TH, TW = -(-OH // 2), -(-OW // 2)
    TB = tile_block(C, TH * TW)
    return C * (2 * TH + 2) * (2 * TW + 2) + 16 * (C * TB + 16) + padded_rows(M) * 16 * TB


def row_workspace_bytes(C: int, M: int, OW: int) -> int:
    """Workspace share of one output row (a multiple of 16 bytes): half of what a band of one tile row (2 output rows)
    uses. A band of k tile rows never needs more than k of those, so rows [r0, r1) (r0 even) can run at once, each
    band at workspace + r0 * row_workspace_bytes."""
    return -(-kernel_workspace_floats(C, M, 2, OW) * 4 // 32) * 16


def workspace_bytes(C: int, M: int, OH: int, OW: int) -> int:
    """Scratch for one call: ceil(OH / 2) tile rows' shares, enough for the whole output at once
    (>= kernel_workspace_floats(C, M, OH, OW) * 4) or for any split into even row bands."""
    return -(-OH // 2) * 2 * row_workspace_bytes(C, M, OW)


def _output_size(size: int, begin: int, end: int, auto_pad: str) -> int:
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return size
    if auto_pad == "VALID":
        return size - 2
    return size + begin + end - 2


def supported(x_shape, w_shape, attrs: dict) -> bool:
    """The kernel computes it: a 2-D 3x3 convolution with stride 1, dilation 1 and one group, any padding."""
    if len(x_shape) != 4 or len(w_shape) != 4:
        return False
    M, Cg, KH, KW = w_shape
    if tuple(attrs.get("kernel_shape") or (KH, KW)) != (3, 3) or (KH, KW) != (3, 3):
        return False
    if int(attrs.get("group", 1)) != 1 or Cg != x_shape[1]:
        return False
    if any(int(s) != 1 for s in attrs.get("strides") or (1, 1)):
        return False
    return all(int(d) == 1 for d in attrs.get("dilations") or (1, 1))


def applicable(x_shape, w_shape, attrs: dict) -> bool:
    """supported() and big enough to gain: C >= MIN_IN_CHANNELS, M >= MIN_OUT_CHANNELS, an output at least
    MIN_OUTPUT_SIDE wide and high with MIN_OUTPUT_AREA elements. Any padding (pads or auto_pad). The caller also needs
    the weights constant (emit transforms them)."""
    if not supported(x_shape, w_shape, attrs):
        return False
    pads = list(attrs.get("pads") or (0, 0, 0, 0))
    auto_pad = attrs.get("auto_pad", "NOTSET") or "NOTSET"
    OH = _output_size(x_shape[2], pads[0], pads[2], auto_pad)
    OW = _output_size(x_shape[3], pads[1], pads[3], auto_pad)
    channels = x_shape[1] >= MIN_IN_CHANNELS and w_shape[0] >= MIN_OUT_CHANNELS
    return channels and min(OH, OW) >= MIN_OUTPUT_SIDE and OH * OW >= MIN_OUTPUT_AREA


LOAD_KERNEL = "f32_winograd_f23_weights"


def transformed_at_load(ctx: LoweringContext, w: str, M: int, C: int):
    """U for the weights tensor `w`, computed by LOAD_KERNEL when the bundle loads: weights.bin ships the OIHW
    weights (9 floats per channel pair, not U's 16), and U (the same values as transform_weights, rounded once
    more in float32) sits next to them in memory."""
    return ctx.derived_at_load(f"winograd {w}", 16 * padded_rows(M) * C * 4, LOAD_KERNEL, M, C, Buf(w))


def emit(ctx: LoweringContext, spec: ConvSpec) -> None:
    """Emit the Winograd kernel for a Conv/FusedConv (normally one `applicable` accepted; any `supported` one
    works) with constant weights: shapes, pads/auto_pad, fused activation and residual come from its spec."""
    x, w, b, y = spec.x, spec.w, spec.b, spec.y
    ctx.require_dtype(x, w, b, y, spec.epilogue.residual)
    xs, ws, ys = spec.x_shape, spec.w_shape, spec.y_shape
    if not supported(xs, ws, spec.node.attrs):
        raise ctx.fail("not a 2-D 3x3 stride-1 dilation-1 single-group convolution (the Winograd kernel's case)")
    ctx.need_const(w, "Winograd convolution weights")  # U is computed from it at load time
    N, C, H, W = xs
    M = ws[0]
    OH, OW = ys[2:]
    PT, PL = spec.window.begin
    act, p0, p1 = spec.epilogue.args()
    r = spec.epilogue.residual
    # threads split the output rows into bands of whole tile rows (even starts): y and the residual move to the
    # band, the window origin moves up (PT - r0; the kernel pads rows above/below the image itself), and each band
    # works in its own share of the workspace
    ctx.emit(
        KERNEL,
        N,
        C,
        H,
        W,
        M,
        OH,
        OW,
        PT,
        PL,
        Buf(x),
        transformed_at_load(ctx, w, M, C),
        Buf(b) if b else None,
        Buf(y),
        Scratch(workspace_bytes(C, M, OH, OW)),
        act,
        p0,
        p1,
        Buf(r) if r else None,
        OH * OW,
        split=(OH, "OH", {"PT": -1, "y": OW * 4, "workspace": row_workspace_bytes(C, M, OW), "residual": OW * 4}, 2),
    )
