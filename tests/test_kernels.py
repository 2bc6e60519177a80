"""The C kernels called directly through wasmtime (both build variants) against numpy float64 references.

Each test writes its operands into the module's memory above `__heap_base` (64-aligned; every buffer is
poisoned with NaN bytes first, so an element a kernel forgets to write or a read past an operand shows up)
and reads the results back."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from oputil import VARIANTS, KernelModule

from wasm_runtime.ops.gemm import pack_b
from wasm_runtime.ops.layout import transpose_layout

EXPORTS = [
    "f32_gemm",
    "f32_gemm_batched",
    "f32_gemm_packed",
    "f32_pack_b",
    "f32_dwconv2d",
    "f32_sigmoid",
    "f32_tanh",
    "f32_softmax",
    "x32_transpose",
    "x64_transpose",
    "x16_transpose",
    "x8_transpose",
    "x_copy2d",
    "x32_fill",
]

# f32_tanh / f32_sigmoid accuracy, max |y - ref| / |ref| over every x with |ref| > 1e-30 (measured, both
# variants: tanh 8.7e-7 just below |x| = 0.5 where the odd series is truncated; sigmoid 1.8e-7 near x = -16).
TANH_RTOL = 1e-6
SIGMOID_RTOL = 3e-7
SOFTMAX_ATOL = 5e-7
SOFTMAX_RTOL = 5e-6


@pytest.fixture(scope="module", params=VARIANTS)
def km(request) -> KernelModule:
    return KernelModule(EXPORTS, request.param)


@pytest.fixture
def k(km) -> KernelModule:
    km.reset()
    return km


# --------------------------------------------------------------------------------------------------------
# GEMM

SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 33)
BIAS_MODES = (None, (0, 0), (0, 1), (1, 0), "full")


def _strided(k: KernelModule, matrix: np.ndarray, ld: int) -> int:
    """matrix [rows, cols] stored with leading dimension ld > cols; the gaps hold NaN."""
    rows, cols = matrix.shape
    padded = np.full((rows, ld), np.nan, np.float32)
    padded[:, :cols] = matrix
    return k.put(padded)


# f32_gemm on B as it is, and f32_gemm_packed over B packed by f32_pack_b (4-row tiles, the one height built)
GEMMS = ("plain", 4)


def _call_gemm(k: KernelModule, gemm, M, N, K, a, lda, b, ldb, c, ldc, epilogue):
    if gemm == "plain":
        k.call("f32_gemm", M, N, K, a, lda, b, ldb, c, ldc, *epilogue)
        return
    bp = k.alloc(K * -(-N // 8) * 8 * 4)
    k.call("f32_pack_b", K, N, b, ldb, bp)
    B = k.get(b, (K, ldb))[:, :N] if K * N else np.zeros((K, N), np.float32)
    np.testing.assert_array_equal(k.get(bp, (-(-N // 8), K, 8)), pack_b(B), "f32_pack_b differs from pack_b")
    k.call("f32_gemm_packed", M, N, K, a, lda, bp, c, ldc, *epilogue, gemm)


def _gemm_case(k: KernelModule, rng, M, N, K, bias_mode, alpha, beta, pad=(3, 5, 2), gemm="plain"):
    k.reset()
    A = rng.standard_normal((M, K)).astype(np.float32)
    B = rng.standard_normal((K, N)).astype(np.float32)
    lda, ldb, ldc = K + pad[0], N + pad[1], N + pad[2]
    a, b = _strided(k, A, lda), _strided(k, B, ldb)
    c = k.alloc(M * ldc * 4)
    if bias_mode is None:
        bias, rs, cs, full = 0, 0, 0, np.zeros((M, N))
    else:
        if bias_mode == "full":
            rs, cs = N, 1
            vec = rng.standard_normal(M * N).astype(np.float32)
        else:
            rs, cs = bias_mode
            vec = rng.standard_normal(max(1, (M - 1) * rs + (N - 1) * cs + 1)).astype(np.float32)
        bias = k.put(vec)
        i, j = np.meshgrid(np.arange(M), np.arange(N), indexing="ij")
        full = vec.astype(np.float64)[i * rs + j * cs]
    _call_gemm(k, gemm, M, N, K, a, lda, b, ldb, c, ldc, (alpha, bias, rs, cs, beta, 0, 0.0, 0.0, 0, 0))
    out = k.get(c, (M, ldc))
    A64, B64 = A.astype(np.float64), B.astype(np.float64)
    ref = alpha * (A64 @ B64) + (beta * full if bias_mode is not None else 0.0)
    # float32 accumulation over K terms: bound the error by the magnitudes that were summed
    bound = 1e-6 * (K + 2) * (abs(alpha) * (np.abs(A64) @ np.abs(B64)) + abs(beta) * np.abs(full)) + 1e-30
    got = out[:, :N].astype(np.float64)
    where = f"{gemm}: M={M} N={N} K={K} bias={bias_mode} alpha={alpha} beta={beta}"
    assert np.all(np.abs(got - ref) <= bound), f"{where}: max err {np.abs(got - ref).max():.3g}"
    assert np.isnan(out[:, N:]).all(), f"{where}: wrote C past N (into the ldc gap)"


@pytest.mark.parametrize("gemm", GEMMS)
@pytest.mark.parametrize("M", SIZES)
def test_gemm_grid(k, M, gemm):
    """Every N, K in SIZES for this M: full tiles, column tails (4-wide and scalar, or a partial packed
    panel), leftover rows. The bias mode cycles through none / scalar / per-column / per-row / full matrix."""
    rng = np.random.default_rng(M)
    for idx, (N, K) in enumerate(itertools.product(SIZES, SIZES)):
        mode = BIAS_MODES[(idx + M) % len(BIAS_MODES)]
        _gemm_case(k, rng, M, N, K, mode, 1.0, 1.0, gemm=gemm)


@pytest.mark.parametrize("gemm", GEMMS)
@pytest.mark.parametrize("bias_mode", BIAS_MODES)
@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 1.0), (0.5, 2.0), (-1.25, 0.0), (0.0, -0.75)])
def test_gemm_bias_alpha_beta(k, bias_mode, alpha, beta, gemm):
    rng = np.random.default_rng(7)
    for M, N, K in [(1, 1, 1), (4, 8, 3), (5, 13, 9), (9, 17, 16), (33, 12, 7), (3, 4, 33)]:
        _gemm_case(k, rng, M, N, K, bias_mode, alpha, beta, gemm=gemm)


@pytest.mark.parametrize("gemm", GEMMS)
def test_gemm_no_padding_and_lda_only(k, gemm):
    """Leading dimensions equal to the row length, and only one of them padded."""
    rng = np.random.default_rng(3)
    for pad in [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)]:
        for M, N, K in [(5, 9, 7), (8, 16, 4), (17, 33, 5)]:
            _gemm_case(k, rng, M, N, K, (0, 1), 1.0, 1.0, pad, gemm)


def test_gemm_reads_no_float_past_the_end_of_b(k):
    """f32_gemm reads B in place (a 1x1 convolution's input): with B's last element the last float of the
    memory, every column tail (4- and 8-wide tiles, whose full-width reads stop in the rows where they would
    run past it) must neither trap nor differ from numpy."""
    rng = np.random.default_rng(11)
    end = k.mem.size
    for N in range(1, 20):
        for K in (1, 2, 5, 16):
            k.reset()
            A = rng.standard_normal((4 + 1, K)).astype(np.float32)
            B = rng.standard_normal((K, N)).astype(np.float32)
            a, c = k.put(A), k.alloc(5 * N * 4)
            b = end - B.nbytes
            assert b >= k.top
            k.mem[b:end] = B.reshape(-1).view(np.uint8)
            k.call("f32_gemm", 5, N, K, a, K, b, N, c, N, 1.0, 0, 0, 0, 0.0, 0, 0.0, 0.0, 0, 0)
            ref = A.astype(np.float64) @ B.astype(np.float64)
            bound = 1e-6 * (K + 2) * (np.abs(A.astype(np.float64)) @ np.abs(B.astype(np.float64))) + 1e-30
            assert np.all(np.abs(k.get(c, (5, N)) - ref) <= bound), (N, K)


def _activation_ref(x, code, p0, p1):
    sig = 1 / (1 + np.exp(-x))
    return {
        1: np.maximum(x, 0),
        2: np.clip(x, p0, p1),
        3: np.where(x >= 0, x, p0 * x),
        4: sig,
        5: np.clip(p0 * x + p1, 0, 1),
        6: x * np.clip(x / 6 + 0.5, 0, 1),
        7: np.tanh(x),
        8: x * sig,
    }[code]


@pytest.mark.parametrize("gemm", ("plain", 4))
@pytest.mark.parametrize("with_residual", [False, True])
@pytest.mark.parametrize(
    ("code", "p0", "p1"),
    [(1, 0, 0), (2, -0.5, 0.75), (3, 0.1, 0), (4, 0, 0), (5, 0.2, 0.5), (6, 0, 0), (7, 0, 0), (8, 0, 0)],
)
def test_gemm_fused_epilogue(k, code, p0, p1, with_residual, gemm):
    """act(A @ B + bias[row] + residual) in the kernel's epilogue, on full tiles and both column tails."""
    rng = np.random.default_rng(code)
    for M, N, K in [(4, 8, 5), (5, 13, 9), (1, 3, 2), (9, 17, 16)]:
        k.reset()
        A, B = (rng.standard_normal(s).astype(np.float32) for s in ((M, K), (K, N)))
        bias = rng.standard_normal(M).astype(np.float32)
        R = rng.standard_normal((M, N)).astype(np.float32)
        c = k.alloc(M * N * 4)
        res = k.put(R) if with_residual else 0
        epilogue = (1.0, k.put(bias), 1, 0, 1.0, code, p0, p1, res, N)
        _call_gemm(k, gemm, M, N, K, k.put(A), K, k.put(B), N, c, N, epilogue)
        pre = A.astype(np.float64) @ B.astype(np.float64) + bias[:, None] + (R if with_residual else 0)
        ref = _activation_ref(pre, code, p0, p1)
        np.testing.assert_allclose(k.get(c, (M, N)), ref, rtol=2e-5, atol=2e-5 * (np.abs(ref).max() + 1))


@pytest.mark.parametrize(("share_a", "share_b"), [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize(("M", "N", "K"), [(1, 1, 1), (3, 5, 7), (4, 8, 16), (9, 17, 2)])
def test_gemm_batched(k, share_a, share_b, M, N, K):
    rng = np.random.default_rng(M * 100 + N * 10 + K)
    batch = 3
    A = rng.standard_normal((1 if share_a else batch, M, K)).astype(np.float32)
    B = rng.standard_normal((1 if share_b else batch, K, N)).astype(np.float32)
    a, b = k.put(A), k.put(B)
    c = k.alloc(batch * M * N * 4 + 64)
    k.call("f32_gemm_batched", batch, M, N, K, a, 0 if share_a else M * K, b, 0 if share_b else K * N, c)
    got = k.get(c, (batch, M, N)).astype(np.float64)
    ref = np.matmul(A.astype(np.float64), B.astype(np.float64))
    bound = 1e-6 * (K + 2) * np.matmul(np.abs(A.astype(np.float64)), np.abs(B.astype(np.float64)))
    assert np.all(np.abs(got - np.broadcast_to(ref, got.shape)) <= bound + 1e-30)
    assert np.isnan(k.get(c + batch * M * N * 4, (16,))).all(), "wrote past the last batch"


# --------------------------------------------------------------------------------------------------------
# depthwise convolution epilogue


def _dwconv_ref(x, w, b, stride, pad, out_hw):
    """float64 depthwise convolution, zero padding top/left by pad (bottom/right as the output size needs)."""
    (N, C, H, W), K, (OH, OW) = x.shape, w.shape[2], out_hw
    xp = np.zeros((N, C, pad + H + (OH - 1) * stride + K, pad + W + (OW - 1) * stride + K))
    xp[:, :, pad : pad + H, pad : pad + W] = x
    y = np.broadcast_to(b.astype(np.float64)[None, :, None, None], (N, C, OH, OW)).copy()
    for ky in range(K):
        for kx in range(K):
            win = xp[:, :, ky : ky + (OH - 1) * stride + 1 : stride, kx : kx + (OW - 1) * stride + 1 : stride]
            y += w[None, :, 0, ky, kx, None, None].astype(np.float64) * win
    return y


# (H, W, kernel, stride, pad): the small-plane path at strides 1 and 2 (zero-padded copy), a plane too large for
# it (rows with edge columns), and a 5x5 kernel (the general path)
DW_GEOMETRIES = [(9, 21, 3, 1, 1), (11, 23, 3, 2, 1), (70, 66, 3, 1, 1), (13, 10, 5, 1, 2)]


@pytest.mark.parametrize("with_residual", [False, True])
@pytest.mark.parametrize(
    ("code", "p0", "p1"),
    [(0, 0, 0), (1, 0, 0), (2, -0.5, 0.75), (3, 0.1, 0), (4, 0, 0), (5, 0.2, 0.5), (6, 0, 0), (7, 0, 0), (8, 0, 0)],
)
def test_dwconv_fused_epilogue(k, code, p0, p1, with_residual):
    """act(depthwise(x) + bias + residual) on every path of f32_dwconv2d: activations that are a clamp run in
    registers, the others over whole rows after the taps."""
    rng = np.random.default_rng(code)
    for H, W, K, S, P in DW_GEOMETRIES:
        k.reset()
        N, C = 1, 3
        OH, OW = (H + 2 * P - K) // S + 1, (W + 2 * P - K) // S + 1
        x = rng.standard_normal((N, C, H, W)).astype(np.float32)
        w = rng.standard_normal((C, 1, K, K)).astype(np.float32)
        b = rng.standard_normal(C).astype(np.float32)
        R = rng.standard_normal((N, C, OH, OW)).astype(np.float32)
        y = k.alloc(N * C * OH * OW * 4)
        res = k.put(R) if with_residual else 0
        args = (N, C, H, W, OH, OW, K, K, S, S, P, P, 1, 1, k.put(x), k.put(w), k.put(b), y, code, p0, p1, res)
        k.call("f32_dwconv2d", *args)
        pre = _dwconv_ref(x, w, b, S, P, (OH, OW)) + (R if with_residual else 0)
        ref = _activation_ref(pre, code, p0, p1) if code else pre
        got = k.get(y, (N, C, OH, OW))
        where = f"{H}x{W} k{K} s{S} act={code} residual={with_residual}"
        np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-5 * (np.abs(ref).max() + 1), err_msg=where)


# --------------------------------------------------------------------------------------------------------
# transcendental activations


def _sweep() -> np.ndarray:
    dense = np.linspace(-100.0, 100.0, 400_001)
    near_half = 0.5 + np.arange(-64, 65) * np.spacing(np.float32(0.5))  # tanh switches formula at |x| = 0.5
    special = [1e-8, 1e-3, 1e-30, 1e-38, 0.0, 0.4999999, 0.5, 0.5000001, 0.49, 0.51, 1.0, 9.0, 17.0, 44.0, 88.0]
    x = np.concatenate([dense, near_half, special, np.linspace(-1, 1, 20_001)])
    # append a tail that is not a multiple of 4 so the scalar path runs too
    x = np.concatenate([x, -x, [0.25, -0.4999999, 0.7]]).astype(np.float32)
    assert x.size % 4 != 0
    return x


def _unary(k, name, x):
    xa = k.put(x)
    ya = k.alloc(x.nbytes + 64)
    k.call(name, xa, ya, x.size)
    assert np.isnan(k.get(ya + x.nbytes, (16,))).all(), f"{name} wrote past n"
    return k.get(ya, x.shape).astype(np.float64)


@pytest.mark.parametrize(
    ("name", "ref_fn", "rtol"),
    [
        ("f32_tanh", np.tanh, TANH_RTOL),
        ("f32_sigmoid", lambda z: 1.0 / (1.0 + np.exp(-z)), SIGMOID_RTOL),
    ],
)
def test_transcendental_accuracy(k, name, ref_fn, rtol):
    x = _sweep()
    got = _unary(k, name, x)
    ref = ref_fn(x.astype(np.float64))
    assert np.isfinite(got).all()
    big = np.abs(ref) > 1e-30
    rel = np.abs(got[big] - ref[big]) / np.abs(ref[big])
    worst = int(np.argmax(rel))
    assert rel.max() <= rtol, f"{name}: rel err {rel.max():.3g} at x={x[big][worst]!r}"
    # where |ref| <= 1e-30 the error beyond rtol stays below float32's smallest normal (sigmoid's exp input is
    # clamped, so sigmoid(x < -88.4) is 4.2e-39 instead of underflowing to 0)
    assert np.all(np.abs(got[~big] - ref[~big]) <= rtol * np.abs(ref[~big]) + 1.2e-38)
    if name == "f32_sigmoid":
        assert np.all((got >= 0) & (got <= 1))
    else:
        assert np.all(np.abs(got) <= 1) and np.all(np.sign(got) == np.sign(ref))
        assert np.array_equal(got[x == 0], np.zeros((x == 0).sum()))


def test_tanh_small_values_exact_odd(k):
    """Tiny |x|: tanh(x) == x to float precision, and the function is exactly odd."""
    x = np.array([1e-8, 1e-6, 1e-4, 1e-3, 3e-3, 0.1, 0.3, 0.49, 0.4999999, 0.5, 0.5000001, 2.0, 30.0], np.float32)
    got = _unary(k, "f32_tanh", np.concatenate([x, -x]))
    n = x.size
    assert np.array_equal(got[:n], -got[n:])
    assert np.array_equal(got[:2], x[:2].astype(np.float64))


# --------------------------------------------------------------------------------------------------------
# softmax


def _softmax_ref(x: np.ndarray, outer, axis, inner) -> np.ndarray:
    v = x.astype(np.float64).reshape(outer, axis, inner)
    e = np.exp(v - v.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).reshape(-1)


@pytest.mark.parametrize(
    ("outer", "axis", "inner"),
    [(1, 1, 1), (1, 3, 1), (2, 4, 1), (3, 5, 1), (1, 7, 1), (2, 13, 1), (1, 1000, 1), (2, 3, 5), (3, 7, 4), (1, 1, 6)],
)
@pytest.mark.parametrize(("scale", "offset"), [(1.0, 0.0), (1e3, 0.0), (1e30, 0.0), (3.0, -1000.0), (3.0, 1000.0)])
def test_softmax(k, outer, axis, inner, scale, offset):
    """Large magnitudes: exp must see x - max (all-negative rows far below exp's range, huge ones above it)."""
    rng = np.random.default_rng(outer * 31 + axis * 7 + inner)
    x = (rng.standard_normal(outer * axis * inner) * scale + offset).astype(np.float32)
    if x.size >= 3 and offset == 0:
        x[:3] = [3e38, -3e38, 88.5]  # extremes: no inf - inf, no overflow in exp
    xa = k.put(x)
    ya = k.alloc(x.nbytes + 64)
    k.call("f32_softmax", outer, axis, inner, xa, ya)
    got = k.get(ya, x.shape).astype(np.float64)
    assert np.isnan(k.get(ya + x.nbytes, (16,))).all(), "wrote past the tensor"
    assert np.isfinite(got).all()
    ref = _softmax_ref(x, outer, axis, inner)
    # measured over these cases, both variants: max abs err 2.0e-7, max rel err 2.2e-6 (where ref > 1e-30)
    assert np.abs(got - ref).max() <= SOFTMAX_ATOL
    big = ref > 1e-30
    assert (np.abs(got - ref)[big] / ref[big]).max() <= SOFTMAX_RTOL
    sums = got.reshape(outer, axis, inner).sum(axis=1)
    assert np.allclose(sums, 1.0, atol=2e-6)


def test_softmax_in_place(k):
    x = np.random.default_rng(1).standard_normal(2 * 9 * 3).astype(np.float32) * 50
    xa = k.put(x)
    k.call("f32_softmax", 2, 9, 3, xa, xa)
    assert np.abs(k.get(xa, x.shape) - _softmax_ref(x, 2, 9, 3)).max() <= SOFTMAX_ATOL


# --------------------------------------------------------------------------------------------------------
# data movement


class _Ctx:
    """Stands in for a LoweringContext: transpose_layout only calls .fail on a rank overflow."""

    def fail(self, message: str) -> Exception:
        return AssertionError(message)


TRANSPOSE_DTYPES = {
    "x8_transpose": np.uint8,
    "x16_transpose": np.float16,
    "x32_transpose": np.float32,
    "x64_transpose": np.int64,
}


def _random_tensor(rng, shape, dtype) -> np.ndarray:
    bits = rng.integers(0, 256, size=int(np.prod(shape)) * np.dtype(dtype).itemsize, dtype=np.uint8)
    return bits.view(dtype).reshape(shape)


@pytest.mark.parametrize("kernel", sorted(TRANSPOSE_DTYPES))
@pytest.mark.parametrize("rank", [1, 2, 3, 4, 5, 6])
def test_transpose(k, kernel, rank):
    dtype = TRANSPOSE_DTYPES[kernel]
    rng = np.random.default_rng(rank * 10 + np.dtype(dtype).itemsize)
    moved = 0
    for trial in range(12):
        k.reset()
        shape = tuple(int(d) for d in rng.integers(1, 5, size=rank))
        if trial == 0:
            shape = tuple(range(2, 2 + rank))  # no size-1 dims: nothing folds away
        perm = tuple(int(p) for p in rng.permutation(rank))
        x = _random_tensor(rng, shape, dtype)
        expected = np.ascontiguousarray(np.transpose(x, perm))
        layout = transpose_layout(_Ctx(), shape, perm)
        if layout is None:  # "moves no data": the bytes already are the transpose
            assert np.array_equal(expected.reshape(-1).view(np.uint8), x.reshape(-1).view(np.uint8))
            continue
        assert len(layout) == 12
        moved += 1
        lay = k.put(np.asarray(layout, np.int32))
        xa = k.put(x)
        ya = k.alloc(x.nbytes + 64)
        k.call(kernel, lay, xa, ya)
        got = k.get(ya, expected.shape, dtype)
        assert np.array_equal(got.view(np.uint8), expected.view(np.uint8)), (shape, perm, layout)
        assert (k.get(ya + x.nbytes, (64,), np.uint8) == 0xFF).all(), "wrote past the output"
    assert rank == 1 or moved > 0


def test_transpose_layout_identity_and_unit_dims():
    ctx = _Ctx()
    assert transpose_layout(ctx, (2, 3, 4), (0, 1, 2)) is None
    assert transpose_layout(ctx, (1, 5, 1, 7), (2, 1, 0, 3)) is None  # only size-1 dims move
    assert transpose_layout(ctx, (3, 1), (1, 0)) is None
    assert transpose_layout(ctx, (2, 3), (1, 0)) == [1, 1, 1, 1, 3, 2, 0, 0, 0, 0, 1, 3]


@pytest.mark.parametrize(
    ("rows", "row_bytes", "src_stride", "dst_stride"),
    [(1, 1, 1, 1), (3, 5, 7, 9), (4, 16, 16, 16), (5, 12, 12, 40), (2, 13, 29, 13), (7, 3, 3, 3), (1, 100, 0, 0)],
)
def test_copy2d(k, rows, row_bytes, src_stride, dst_stride):
    rng = np.random.default_rng(rows * row_bytes)
    src = rng.integers(0, 255, size=max(rows - 1, 0) * src_stride + row_bytes, dtype=np.uint8)  # never 0xFF
    dst_len = max(rows - 1, 0) * dst_stride + row_bytes + 64
    sa = k.put(src)
    da = k.alloc(dst_len)
    da += 3  # byte-granular: odd addresses too
    k.call("x_copy2d", rows, row_bytes, sa, src_stride, da, dst_stride)
    got = k.get(da, (dst_len - 3,), np.uint8)
    expected = np.full(dst_len - 3, 0xFF, np.uint8)
    for r in range(rows):
        expected[r * dst_stride : r * dst_stride + row_bytes] = src[r * src_stride : r * src_stride + row_bytes]
    assert np.array_equal(got, expected)


def test_copy2d_zero_rows(k):
    da = k.alloc(64)
    k.call("x_copy2d", 0, 16, k.put(np.zeros(16, np.uint8)), 16, da, 16)
    assert (k.get(da, (64,), np.uint8) == 0xFF).all()


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 8, 13, 1000, 4097])
@pytest.mark.parametrize("value", [0.0, 0.02, -1.5, float("-inf"), -0.0])
def test_fill(k, n, value):
    bits = int(np.array(value, np.float32).view(np.uint32))
    signed = bits - (1 << 32) if bits >= 1 << 31 else bits  # wasm i32 parameter: unsigned bits as signed
    ya = k.alloc(n * 4 + 64)
    k.call("x32_fill", ya, n, signed)
    got = k.get(ya, (n,), np.uint32)
    assert (got == bits).all()
    assert (k.get(ya + n * 4, (64,), np.uint8) == 0xFF).all(), "wrote past n"
    assert np.array_equal(got.view(np.float32), np.full(n, value, np.float32))
