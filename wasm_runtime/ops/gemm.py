"""Gemm and MatMul on the f32 GEMM kernel. Constant operands that ONNX stores transposed are transposed
here, once, so the kernel always reads row-major [M,K] x [K,N]."""

from __future__ import annotations

import itertools
import math

import numpy as np

from ..ir import Node, is_uniform
from .activation import epilogue_args
from .context import Buf, Const, LoweringContext, Scratch, i32
from .layout import transpose_layout

# register tiles of f32_gemm_packed (rows x 8 columns) that --tune may choose; the first is the default. The
# kernel builds only 4 rows (another height is one more case there), and only 4x8 is offered: V8 runs it fastest
# on every layer measured (ResNet-18's im2col convolutions in Chromium: 3x8 1.15-1.20x and 2x8 1.5-1.7x slower;
# 5 and 6 rows spill registers), while wasmtime, where --tune times, preferred 3x8 or 2x8 on some layers, which
# then ran slower in the browser.
TILES = {"4x8": 4}


def pack_b(b: np.ndarray) -> np.ndarray:
    """B [K, N] -> f32_gemm_packed's layout: 8-column panels, each K rows of 8 floats, the last zero-padded."""
    K, N = b.shape
    n8 = -(-N // 8) * 8
    padded = np.zeros((K, n8), np.float32)
    padded[:, :N] = b
    return np.ascontiguousarray(padded.reshape(K, n8 // 8, 8).transpose(1, 0, 2))


def transposed_constant(array: np.ndarray) -> np.ndarray:
    """array.T, row-major; a zero-stride (uniform) array stays a view so it still ships as a fill."""
    t = array.T
    return t if all(s == 0 for s in t.strides) else np.ascontiguousarray(t)


def _operand(ctx: LoweringContext, name: str, transpose: bool):
    """A pointer to `name` as a row-major matrix, transposing a constant now or a tensor at run time."""
    if not transpose:
        return Buf(name)
    const = ctx.const(name)
    if const is not None:
        return ctx.derived(f"{name}.T", lambda: transposed_constant(const))
    rows, cols = ctx.shape(name)
    layout = transpose_layout(ctx, (rows, cols), (1, 0))
    if layout is None:  # a [1, n] or [n, 1] matrix: its transpose has the same bytes
        return Buf(name)
    scratch = Scratch(rows * cols * 4)
    ctx.emit("x32_transpose", i32(layout), Buf(name), scratch)
    return scratch


def gemm_columns_split(n: int, bias_cs: int) -> tuple:
    """Threads take column blocks (multiples of the kernel's 8-wide tile): B, C, the bias (when it varies
    along columns) and the residual move to the block."""
    return (n, "N", {"B": 4, "C": 4, "bias": bias_cs * 4, "residual": 4}, 8)


def packed_constant(ctx: LoweringContext, name: str, transpose: bool) -> Const | None:
    """B as f32_gemm_packed's panels when `name` is a constant worth packing (not a uniform fill, which
    ships as one value): packed here, at package time, so the browser never repacks weights."""
    const = ctx.const(name)
    if const is None or is_uniform(const):
        return None
    label = f"{name}{'.T' if transpose else ''}.packed"
    return ctx.derived(label, lambda: pack_b(np.asarray(const.T if transpose else const, np.float32)))


def emit_gemm(
    ctx: LoweringContext,
    M: int,
    N: int,
    K: int,
    A,
    b: str,
    transpose_b: bool,
    y: str,
    alpha: float = 1.0,
    bias=None,
    rs: int = 0,
    cs: int = 0,
    beta: float = 0.0,
    act: int = 0,
    p0: float = 0.0,
    p1: float = 0.0,
):
    """y[M, N] = epilogue(A @ B) for a row-major A pointer and the tensor `b` (B, or B^T with transpose_b):
    over packed panels with the tuned register tile when B is a constant, else f32_gemm on B as it is. Threads
    take column blocks (multiples of 8): B, C, the bias (when it varies along columns) and the residual move."""
    packed = packed_constant(ctx, b, transpose_b)
    if packed is not None:
        choice = ctx.algorithm([f"packed {t}" for t in TILES], default=f"packed {next(iter(TILES))}")
        mr = TILES[choice.split(" ", 1)[1]]
        args = (M, N, K, A, K, packed, Buf(y), N, alpha, bias, rs, cs, beta, act, p0, p1, None, 0, mr)
        ctx.emit("f32_gemm_packed", *args, split=(N, "N", {"Bp": K * 4, "C": 4, "bias": cs * 4, "residual": 4}, 8))
        return
    B = _operand(ctx, b, transpose_b)
    args = (M, N, K, A, K, B, N, Buf(y), N, alpha, bias, rs, cs, beta, act, p0, p1, None, 0)
    ctx.emit("f32_gemm", *args, split=gemm_columns_split(N, cs))


def gemm(ctx: LoweringContext, node: Node) -> None:
    a, b, c, y = node.input(0), node.input(1), node.input(2), node.outputs[0]
    ctx.require_dtype(a, b, c, y)
    M, N = ctx.shape(y)
    K = ctx.shape(a)[0 if node.attrs.get("transA", 0) else 1]
    A = _operand(ctx, a, bool(node.attrs.get("transA", 0)))
    bias, rs, cs = None, 0, 0
    if c:
        # C broadcasts to [M, N]: element (i, j) sits at i * rs + j * cs, a zero stride repeating it
        rows, cols = (1,) * (2 - len(ctx.shape(c))) + tuple(ctx.shape(c))
        cs = 1 if cols != 1 else 0
        rs = 0 if rows == 1 else cols
        bias = Buf(c)
    alpha, beta = float(node.attrs.get("alpha", 1.0)), float(node.attrs.get("beta", 1.0))
    act, p0, p1 = epilogue_args(node)
    emit_gemm(ctx, M, N, K, A, b, bool(node.attrs.get("transB", 0)), y, alpha, bias, rs, cs, beta, act, p0, p1)


def matmul_shapes(shape_a, shape_b) -> tuple[list[int], list[int], int, int, int, list[int]]:
    """numpy matmul: (A's shape, B's shape with a 1-D operand given its unit dim, M, K, N, broadcast batch dims)."""
    sa, sb = list(shape_a), list(shape_b)
    if len(sa) == 1:
        sa = [1, *sa]
    if len(sb) == 1:
        sb = [*sb, 1]
    batch = list(np.broadcast_shapes(tuple(sa[:-2]), tuple(sb[:-2])))
    return sa, sb, sa[-2], sa[-1], sb[-1], batch


def batch_strides(shape, batch, size) -> list[int]:
    """Element strides of each broadcast batch dim for a stack of `size`-element matrices (0: broadcast)."""
    shape = [1] * (len(batch) - len(shape)) + list(shape)
    out, acc = [], size
    for d in reversed(shape):
        out.append(0 if d == 1 else acc)
        acc *= d
    return out[::-1]


def matmul(ctx: LoweringContext, node: Node) -> None:
    """numpy matmul: 1-D operands gain a unit dim; batch dims broadcast. Batches whose operands advance by
    fixed strides run as one batched call; other broadcast patterns split into one call per outer index."""
    a, b, y = node.input(0), node.input(1), node.outputs[0]
    ctx.require_dtype(a, b, y)
    sa, sb, M, K, N, batch = matmul_shapes(ctx.shape(a), ctx.shape(b))
    if not batch or math.prod(sb[:-2]) == 1:
        # B is one matrix: fold all of A's batch dims into its rows
        emit_gemm(ctx, math.prod(sa[:-1]), N, K, Buf(a), b, False, y)
        return

    st_a, st_b = batch_strides(sa[:-2], batch, M * K), batch_strides(sb[:-2], batch, K * N)
    st_y = batch_strides(batch, batch, M * N)
    # merge adjacent batch dims that every operand steps through with one stride, so the common cases
    # (attention's [batch, heads, ...], any contiguous batch) are a single call whose count scales with them
    keep = [i for i, d in enumerate(batch) if d != 1] or [len(batch) - 1]  # size-1 dims index nothing
    batch, st_a, st_b, st_y = ([x[i] for i in keep] for x in (batch, st_a, st_b, st_y))
    dims, sts = [batch[0]], [[st_a[0]], [st_b[0]], [st_y[0]]]
    for i in range(1, len(batch)):
        if all(s[-1] == full[i] * batch[i] for s, full in zip(sts, (st_a, st_b, st_y), strict=True)):
            dims[-1] *= batch[i]
            for s, full in zip(sts, (st_a, st_b, st_y), strict=True):
                s[-1] = full[i]
        else:
            dims.append(batch[i])
            for s, full in zip(sts, (st_a, st_b, st_y), strict=True):
                s.append(full[i])
    (sa_m, sb_m, sy_m), last = sts, dims[-1]
    for outer in itertools.product(*(range(d) for d in dims[:-1])):
        oa = sum(i * s for i, s in zip(outer, sa_m, strict=False))
        ob = sum(i * s for i, s in zip(outer, sb_m, strict=False))
        oy = sum(i * s for i, s in zip(outer, sy_m, strict=False))
        ctx.emit(
            "f32_gemm_batched",
            last,
            M,
            N,
            K,
            Buf(a, oa * 4),
            sa_m[-1],
            Buf(b, ob * 4),
            sb_m[-1],
            Buf(y, oy * 4),
            split=(last, "batch", {"A": sa_m[-1] * 4, "B": sb_m[-1] * 4, "C": M * N * 4}),
        )


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    "Gemm": gemm,
    "MatMul": matmul,
    "FusedGemm": gemm,
}
