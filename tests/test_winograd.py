"""Winograd F(2x2, 3x3) convolution: the offline weight transform, the kernel called directly through wasmtime
(both build variants) against a float64 numpy direct convolution, `applicable`, and `emit` on a one-node graph
(including the row-band split threads run).

Accuracy: F(2x2, 3x3) also rounds in its transforms. max |y - ref| / max |conv + bias + residual| measured over every
case below, both variants: 1.3e-6 with C = 1024 (simd build; 1.15e-6 relaxed), 6e-7 at C = 128, under 4e-7 for the
small cases, so TOL = 2e-6."""

from __future__ import annotations

import numpy as np
import pytest
from oputil import VARIANTS, KernelModule

from wasm_runtime.errors import PackageError
from wasm_runtime.host import chunks, split_args
from wasm_runtime.ir import Graph, Node, Value
from wasm_runtime.lowering import Buf, Const, Derived, LoweringContext, Scratch
from wasm_runtime.ops import winograd
from wasm_runtime.ops.activation import CODES
from wasm_runtime.ops.spatial import ConvSpec

TOL = 2e-6
GUARD = 256  # bytes checked untouched after every output / workspace
KERNEL = winograd.KERNEL


@pytest.fixture(scope="module", params=VARIANTS)
def km(request) -> KernelModule:
    return KernelModule([KERNEL, winograd.LOAD_KERNEL], request.param, pages=512)


@pytest.fixture
def k(km) -> KernelModule:
    km.reset()
    return km


# --------------------------------------------------------------------------------------------------------------
# float64 references


def direct_conv(x, w, pt, pl, oh, ow) -> np.ndarray:
    """3x3 stride-1 convolution, zero padding pt/pl on top/left and whatever bottom/right the output size implies."""
    N, C, H, W = x.shape
    pb, pr = max(0, oh + 2 - H - pt), max(0, ow + 2 - W - pl)
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    w = np.asarray(w, np.float64)
    y = np.zeros((N, w.shape[0], oh, ow))
    for ky in range(3):
        for kx in range(3):
            y += np.einsum("mc,nchw->nmhw", w[:, :, ky, kx], xp[:, :, ky : ky + oh, kx : kx + ow])
    return y


def activate(v: np.ndarray, act: int, p0: float, p1: float) -> np.ndarray:
    def sigmoid(t):
        return 1.0 / (1.0 + np.exp(-t))

    if act == CODES["Relu"]:
        return np.maximum(v, 0)
    if act == CODES["Clip"]:
        return np.minimum(np.maximum(v, p0), p1)
    if act == CODES["LeakyRelu"]:
        return np.where(v >= 0, v, v * p0)
    if act == CODES["Sigmoid"]:
        return sigmoid(v)
    if act == CODES["HardSigmoid"]:
        return np.clip(v * p0 + p1, 0, 1)
    if act == CODES["HardSwish"]:
        return v * np.clip(v / 6 + 0.5, 0, 1)
    if act == CODES["Tanh"]:
        return np.tanh(v)
    if act == CODES["SiLU"]:
        return v * sigmoid(v)
    assert act == 0, act
    return v


def reference(x, w, b, residual, pt, pl, oh, ow, act=0, p0=0.0, p1=0.0) -> tuple[np.ndarray, float]:
    """(y, scale): the float64 result and max |conv + bias + residual|, the scale rounding errors are relative to
    (the activations are 1-Lipschitz or less; a Clip's output max would overstate them)."""
    y = direct_conv(x, w, pt, pl, oh, ow)
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    if residual is not None:
        y += residual
    return activate(y, act, p0, p1), float(np.abs(y).max())


def rel_err(y: np.ndarray, ref: tuple[np.ndarray, float]) -> float:
    """max |y - ref| / scale; inf for any nan/inf (poisoned elements the kernel left unwritten included)."""
    out, scale = ref
    assert y.shape == out.shape, (y.shape, out.shape)
    if not np.isfinite(y).all():
        return float("inf")
    return float(np.abs(y - out).max() / scale)


# --------------------------------------------------------------------------------------------------------------
# (a) weight transform


@pytest.mark.parametrize("M,C", [(1, 1), (3, 5), (4, 8), (7, 3), (9, 16)])
def test_transform_weights(M, C):
    w = np.random.default_rng(M * 10 + C).standard_normal((M, C, 3, 3)).astype(np.float32)
    U = winograd.transform_weights(w)
    Mp = -(-M // winograd.MR) * winograd.MR
    assert U.dtype == np.float32 and U.shape == (16, Mp // winograd.MR, C, winograd.MR)
    assert U.flags.c_contiguous
    G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64)
    for m in range(Mp):
        for c in range(C):
            got = U[:, m // winograd.MR, c, m % winograd.MR].reshape(4, 4)
            if m >= M:
                assert not got.any(), "padding rows must be zero"
                continue
            g = w[m, c].astype(np.float64)
            ref = np.array(
                [
                    [sum(G[i, a] * g[a, b] * G[j, b] for a in range(3) for b in range(3)) for j in range(4)]
                    for i in range(4)
                ]
            )
            # one float32 rounding of the float64 result (G's entries are exact in binary)
            np.testing.assert_array_equal(got, ref.astype(np.float32))


@pytest.mark.parametrize("M,C", [(1, 1), (3, 5), (4, 8), (7, 3), (9, 16), (64, 33)])
def test_load_time_transform_matches_offline(k, M, C):
    """f32_winograd_f23_weights (the bundle's init step) computes transform_weights' layout in float32: the padding
    rows exactly zero, the rest within a few float32 roundings of the float64 transform."""
    w = np.random.default_rng(M * 7 + C).standard_normal((M, C, 3, 3)).astype(np.float32)
    ref = winograd.transform_weights(w)
    u = k.alloc(ref.nbytes)
    k.mem[u : u + ref.nbytes] = 0xFF  # NaN bytes: every float must be written
    k.call(winograd.LOAD_KERNEL, M, C, k.put(w), u)
    got = k.get(u, ref.shape)
    scale = np.abs(w).max()
    np.testing.assert_allclose(got, ref, rtol=0, atol=4 * np.finfo(np.float32).eps * scale)
    Mp = ref.shape[1] * winograd.MR
    padding = got.transpose(1, 3, 0, 2).reshape(Mp, 16, C)[M:]
    assert not padding.any(), "padding rows must be zero"


def test_transform_weights_rejects_other_kernels():
    with pytest.raises(ValueError):
        winograd.transform_weights(np.zeros((2, 2, 5, 5), np.float32))


# --------------------------------------------------------------------------------------------------------------
# (b) the kernel


def guarded(k: KernelModule, nbytes: int) -> tuple[int, int]:
    """A poisoned region of nbytes followed by GUARD marker bytes; returns (address, guard address)."""
    addr = k.alloc(nbytes + GUARD)
    guard = addr + nbytes
    k.mem[guard : guard + GUARD] = 0xA5
    return addr, guard


def assert_guard(k: KernelModule, guard: int, what: str):
    assert (k.mem[guard : guard + GUARD] == 0xA5).all(), f"kernel wrote past the end of {what}"


def run_kernel(k, x, w, b, residual, pt, pl, oh, ow, act=0, p0=0.0, p1=0.0, workspace=None, bands=1):
    """Run the kernel (as `bands` row-band chunks, the way split plans run it); returns y [N, M, oh, ow]."""
    N, C, H, W = x.shape
    M = w.shape[0]
    U = winograd.transform_weights(w)
    xa, ua = k.put(x), k.put(U)
    ba = k.put(b) if b is not None else 0
    ra = k.put(residual) if residual is not None else 0
    inputs = [(xa, x), (ua, U)] + [(a, v) for a, v in ((ba, b), (ra, residual)) if v is not None]
    ya, yguard = guarded(k, N * M * oh * ow * 4)
    nbytes = winograd.workspace_bytes(C, M, oh, ow) if workspace is None else workspace
    wsa, wsguard = guarded(k, nbytes)
    args = [N, C, H, W, M, oh, ow, pt, pl, xa, ua, ba, ya, wsa, act, p0, p1, ra, oh * ow]
    if bands == 1:
        k.call(KERNEL, *args)
    else:
        split = {"count": 5, "deltas": [(7, -1), (12, ow * 4), (13, winograd.row_workspace_bytes(C, M, ow))]}
        if residual is not None:
            split["deltas"].append((17, ow * 4))
        for u0, u1 in chunks(oh, 2, bands):
            k.call(KERNEL, *split_args(args, split, u0, u1))
    assert_guard(k, yguard, "y")
    assert_guard(k, wsguard, "the workspace")
    for addr, a in inputs:
        np.testing.assert_array_equal(k.get(addr, a.shape), a, "an input was modified")
    return k.get(ya, (N, M, oh, ow))


def case(seed, N, C, M, H, W, pt, pl, oh, ow, bias=True, res=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((M, C, 3, 3)).astype(np.float32)
    b = rng.standard_normal(M).astype(np.float32) if bias else None
    r = rng.standard_normal((N, M, oh, ow)).astype(np.float32) if res else None
    return x, w, b, r


# (N, C, M, H, W, PT, PL, OH, OW): bottom/right padding is OH + 2 - H - PT (resp. W)
SHAPES = {
    "tiny-valid": (1, 1, 1, 3, 3, 0, 0, 1, 1),
    "tiny-same": (1, 1, 1, 3, 3, 1, 1, 3, 3),
    "odd-same": (1, 3, 5, 7, 9, 1, 1, 7, 9),
    "odd-valid": (1, 4, 8, 7, 9, 0, 0, 5, 7),
    "asym-tl1-br0": (1, 5, 7, 8, 9, 1, 1, 7, 8),
    "asym-tl1-br2": (1, 5, 7, 8, 9, 1, 1, 9, 10),
    "asym-t0l2": (1, 6, 3, 6, 5, 0, 2, 4, 6),
    "pad2": (1, 3, 6, 5, 5, 2, 2, 7, 7),
    "input-smaller-than-tile": (1, 2, 3, 1, 2, 1, 1, 1, 2),
    "batch": (3, 9, 11, 6, 10, 1, 1, 6, 10),
    "M-C-not-multiples": (1, 13, 11, 12, 13, 1, 1, 12, 13),
    "wide-rows": (1, 8, 12, 4, 37, 1, 1, 4, 37),
    "blocks-64+36": (1, 128, 9, 20, 20, 1, 1, 20, 20),  # TB = 64, T = 100
    "blocks-8+7": (1, 1024, 3, 5, 9, 1, 1, 5, 9),  # TB = 8, T = 15, groups across tile rows
    "resnet-like": (1, 64, 64, 14, 14, 1, 1, 14, 14),
}


@pytest.mark.parametrize("name", SHAPES)
@pytest.mark.parametrize("bias,res", [(True, False), (False, False), (False, True)], ids=["bias", "plain", "residual"])
def test_kernel_shapes(k, name, bias, res):
    N, C, M, H, W, pt, pl, oh, ow = SHAPES[name]
    x, w, b, r = case(len(name), N, C, M, H, W, pt, pl, oh, ow, bias, res)
    y = run_kernel(k, x, w, b, r, pt, pl, oh, ow)
    err = rel_err(y, reference(x, w, b, r, pt, pl, oh, ow))
    assert err <= TOL, f"{k.variant} {name}: max rel err {err:.3g}"


ACTS = [
    ("Relu", 0.0, 0.0),
    ("Clip", -0.5, 1.5),
    ("LeakyRelu", 0.1, 0.0),
    ("Sigmoid", 0.0, 0.0),
    ("HardSigmoid", 0.2, 0.5),
    ("HardSwish", 0.0, 0.0),
    ("Tanh", 0.0, 0.0),
    ("SiLU", 0.0, 0.0),
]


@pytest.mark.parametrize("act,p0,p1", ACTS, ids=[a[0] for a in ACTS])
@pytest.mark.parametrize("res", [False, True], ids=["plain", "residual"])
@pytest.mark.parametrize("name", ["odd-same", "M-C-not-multiples"])
def test_kernel_epilogue(k, act, p0, p1, res, name):
    N, C, M, H, W, pt, pl, oh, ow = SHAPES[name]
    x, w, b, r = case(7, N, C, M, H, W, pt, pl, oh, ow, True, res)
    code = CODES[act]
    y = run_kernel(k, x, w, b, r, pt, pl, oh, ow, code, p0, p1)
    err = rel_err(y, reference(x, w, b, r, pt, pl, oh, ow, code, p0, p1))
    assert err <= TOL, f"{k.variant} {act}: max rel err {err:.3g}"


@pytest.mark.parametrize("name", ["tiny-same", "odd-same", "asym-tl1-br2", "batch", "blocks-64+36", "blocks-8+7"])
def test_kernel_uses_only_its_formula(k, name):
    """A workspace of exactly kernel_workspace_floats is enough (the guard after it stays untouched)."""
    N, C, M, H, W, pt, pl, oh, ow = SHAPES[name]
    x, w, b, r = case(3, N, C, M, H, W, pt, pl, oh, ow, True, True)
    exact = winograd.kernel_workspace_floats(C, M, oh, ow) * 4
    assert exact <= winograd.workspace_bytes(C, M, oh, ow)
    y = run_kernel(k, x, w, b, r, pt, pl, oh, ow, CODES["Relu"], workspace=exact)
    assert rel_err(y, reference(x, w, b, r, pt, pl, oh, ow, CODES["Relu"])) <= TOL


@pytest.mark.parametrize("bands", [2, 3, 5])
@pytest.mark.parametrize("name", ["odd-same", "asym-tl1-br2", "batch", "blocks-64+36", "pad2"])
def test_kernel_row_bands_bit_identical(k, name, bands):
    """Split into row bands (as threads run it): the same bits as one call, each band inside its workspace share."""
    N, C, M, H, W, pt, pl, oh, ow = SHAPES[name]
    x, w, b, r = case(5, N, C, M, H, W, pt, pl, oh, ow, True, True)
    whole = run_kernel(k, x, w, b, r, pt, pl, oh, ow, CODES["Relu"])
    k.reset()
    split = run_kernel(k, x, w, b, r, pt, pl, oh, ow, CODES["Relu"], bands=bands)
    np.testing.assert_array_equal(split, whole)


@pytest.mark.parametrize("C,M,OW", [(1, 1, 1), (3, 5, 7), (64, 64, 56), (128, 9, 20), (512, 512, 7), (1024, 3, 9)])
def test_workspace_shares_cover_every_band(C, M, OW):
    row = winograd.row_workspace_bytes(C, M, OW)
    assert row % 16 == 0
    for OH in (1, 2, 3, 7, 8, 28):
        total = winograd.workspace_bytes(C, M, OH, OW)
        for threads in (1, 2, 3, 4, 7):
            for u0, u1 in chunks(OH, 2, threads):
                assert u0 % 2 == 0
                share = total - u0 * row if u1 == OH else (u1 - u0) * row
                assert winograd.kernel_workspace_floats(C, M, u1 - u0, OW) * 4 <= share, (OH, threads, u0, u1)


# --------------------------------------------------------------------------------------------------------------
# (c) applicable


@pytest.mark.parametrize(
    "x_shape,w_shape,attrs,expected",
    [
        ((1, 64, 56, 56), (64, 64, 3, 3), {"pads": [1, 1, 1, 1]}, True),
        ((1, 64, 56, 56), (64, 64, 3, 3), {}, True),  # no pads: 54 x 54 out
        ((1, 64, 56, 56), (128, 64, 3, 3), {"strides": [1, 1], "dilations": [1, 1], "group": 1}, True),
        ((2, 4, 8, 8), (4, 4, 3, 3), {"auto_pad": "SAME_UPPER"}, True),
        ((1, 8, 2, 2), (8, 8, 3, 3), {"pads": [1, 1, 1, 1]}, False),  # one 2x2 tile
        ((1, 8, 3, 3), (8, 8, 3, 3), {"pads": [1, 1, 1, 1]}, True),  # 3x3
        ((1, 64, 56, 56), (64, 64, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}, False),
        ((1, 64, 56, 56), (64, 64, 3, 3), {"pads": [1, 1, 1, 1], "strides": [1, 2]}, False),
        ((1, 64, 56, 56), (64, 64, 3, 3), {"pads": [2, 2, 2, 2], "dilations": [2, 2]}, False),
        ((1, 64, 56, 56), (64, 32, 3, 3), {"pads": [1, 1, 1, 1], "group": 2}, False),
        ((1, 64, 56, 56), (64, 1, 3, 3), {"pads": [1, 1, 1, 1], "group": 64}, False),  # depthwise
        ((1, 64, 56, 56), (64, 64, 1, 1), {}, False),
        ((1, 64, 56, 56), (64, 64, 5, 5), {"pads": [2, 2, 2, 2]}, False),
        ((1, 64, 56, 56), (64, 64, 3, 1), {"pads": [1, 0, 1, 0]}, False),
        ((1, 64, 56), (64, 64, 3), {"pads": [1, 1]}, False),  # 1-D
        ((1, 64, 8, 8, 8), (64, 64, 3, 3, 3), {}, False),  # 3-D
        ((1, 3, 224, 224), (64, 3, 3, 3), {"pads": [1, 1, 1, 1]}, True),  # RGB input
        ((1, 2, 224, 224), (64, 2, 3, 3), {"pads": [1, 1, 1, 1]}, False),  # C < 3
        ((1, 64, 56, 56), (3, 64, 3, 3), {"pads": [1, 1, 1, 1]}, False),  # M < 4
        ((1, 4, 56, 56), (4, 4, 3, 3), {"pads": [1, 1, 1, 1]}, True),
        ((1, 64, 1, 1), (64, 64, 3, 3), {"pads": [1, 1, 1, 1]}, False),  # 1x1 output
        ((1, 64, 3, 3), (64, 64, 3, 3), {}, False),  # valid: 1x1 output
        ((1, 64, 4, 40), (64, 64, 3, 3), {"auto_pad": "VALID"}, True),  # 2 x 38
        ((1, 64, 1, 40), (64, 64, 3, 3), {"pads": [1, 1, 1, 1]}, False),  # a single output row
    ],
)
def test_applicable(x_shape, w_shape, attrs, expected):
    assert winograd.applicable(x_shape, w_shape, attrs) is expected
    if expected:
        assert winograd.supported(x_shape, w_shape, attrs)


@pytest.mark.parametrize(
    "x_shape,w_shape,attrs,expected",
    [
        ((1, 1, 3, 3), (1, 1, 3, 3), {}, True),  # too small to gain, but the kernel computes it
        ((1, 2, 1, 1), (3, 2, 3, 3), {"pads": [1, 1, 1, 1]}, True),
        ((1, 2, 8, 8), (3, 2, 3, 3), {"strides": [2, 2]}, False),
        ((1, 2, 8, 8), (3, 1, 3, 3), {"group": 2}, False),
        ((1, 2, 8), (3, 2, 3), {}, False),
    ],
)
def test_supported(x_shape, w_shape, attrs, expected):
    assert winograd.supported(x_shape, w_shape, attrs) is expected


# --------------------------------------------------------------------------------------------------------------
# (d) emit on a one-node graph, run through the emitted arguments


def one_node_graph(x, w, b, r, attrs, out_shape, activation="") -> Graph:
    values = {
        "x": Value("x", np.dtype(np.float32), x.shape),
        "w": Value("w", np.dtype(np.float32), w.shape, w),
        "y": Value("y", np.dtype(np.float32), out_shape),
    }
    inputs = ["x", "w"]
    if b is not None:
        values["b"] = Value("b", np.dtype(np.float32), b.shape, b)
        inputs.append("b")
    fused = bool(activation) or r is not None
    if r is not None:
        values["r"] = Value("r", np.dtype(np.float32), r.shape)
        inputs += [""] * (3 - len(inputs)) + ["r"]
    node_attrs = dict(attrs)
    if fused:
        node_attrs.update(activation=activation, activation_params=[])
    node = Node("FusedConv" if fused else "Conv", "conv", inputs, ["y"], node_attrs, "wasm_runtime" if fused else "")
    graph_inputs = ["x"] + (["r"] if r is not None else [])
    return Graph("g", [node], values, graph_inputs, ["y"], 13)


def run_emitted(k: KernelModule, graph: Graph, feeds: dict, threads: int = 1) -> np.ndarray:
    ctx = LoweringContext(graph)
    ctx.node = node = graph.nodes[0]
    winograd.emit(ctx, ConvSpec.parse(graph, node))
    (step,) = ctx.out.steps
    assert step.kernel == KERNEL
    addrs = {}
    args = []
    for a in step.args:
        if isinstance(a, Buf):
            if a.name not in addrs:
                v = graph.values[a.name]
                data = feeds.get(a.name, v.data)
                addrs[a.name] = k.put(data) if data is not None else k.alloc(v.nbytes)
            args.append(addrs[a.name] + a.offset)
        elif isinstance(a, Const):
            args.append(k.put(a.array))
        elif isinstance(a, Derived):  # the bundle's init step, here run before the call
            src = [k.put(graph.values[x.name].data) if isinstance(x, Buf) else x for x in a.args]
            args.append(k.alloc(a.nbytes))
            k.call(a.kernel, *src, args[-1])
        elif isinstance(a, Scratch):
            args.append(k.alloc(a.nbytes))
        else:
            args.append(0 if a is None else a)
    if threads == 1:
        k.call(KERNEL, *args)
    else:
        sp = step.split
        split = {"count": sp.count, "deltas": sp.deltas}
        for u0, u1 in chunks(sp.units, sp.align, threads):
            k.call(KERNEL, *split_args(args, split, u0, u1))
    return k.get(addrs["y"], graph.values["y"].shape)


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize(
    "attrs,H,W,out",
    [
        ({"pads": [1, 1, 1, 1]}, 9, 11, (9, 11)),
        ({"pads": [1, 2, 0, 1]}, 8, 7, (7, 8)),
        ({"auto_pad": "SAME_LOWER"}, 6, 5, (6, 5)),
        ({"auto_pad": "VALID", "strides": [1, 1], "dilations": [1, 1]}, 7, 10, (5, 8)),
    ],
)
def test_emit(k, attrs, H, W, out, threads):
    rng = np.random.default_rng(11)
    C, M, N = 6, 10, 2
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((M, C, 3, 3)).astype(np.float32)
    b = rng.standard_normal(M).astype(np.float32)
    graph = one_node_graph(x, w, b, None, attrs, (N, M, *out))
    y = run_emitted(k, graph, {"x": x}, threads)
    if "auto_pad" in attrs:
        total = (out[0] + 2 - H, out[1] + 2 - W)
        lower = attrs["auto_pad"] == "SAME_LOWER"
        pt, pl = ((t + 1) // 2 if lower else t // 2 for t in total)
    else:
        pt, pl = attrs["pads"][:2]
    assert rel_err(y, reference(x, w, b, None, pt, pl, *out)) <= TOL


@pytest.mark.parametrize("threads", [1, 2])
def test_emit_fused_residual_activation(k, threads):
    rng = np.random.default_rng(12)
    N, C, M, H, W = 1, 8, 8, 10, 10
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((M, C, 3, 3)).astype(np.float32)
    b = rng.standard_normal(M).astype(np.float32)
    r = rng.standard_normal((N, M, H, W)).astype(np.float32)
    graph = one_node_graph(x, w, b, r, {"pads": [1, 1, 1, 1]}, (N, M, H, W), "Relu")
    y = run_emitted(k, graph, {"x": x, "r": r}, threads)
    assert rel_err(y, reference(x, w, b, r, 1, 1, H, W, CODES["Relu"])) <= TOL


def test_emit_tiny_and_rejects_unsupported(k):
    rng = np.random.default_rng(14)
    x = rng.standard_normal((1, 1, 3, 3)).astype(np.float32)
    w = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    y = run_emitted(k, one_node_graph(x, w, None, None, {}, (1, 2, 1, 1)), {"x": x})
    assert rel_err(y, reference(x, w, None, None, 0, 0, 1, 1)) <= TOL
    graph = one_node_graph(x, w, None, None, {"pads": [1, 1, 1, 1], "strides": [2, 2]}, (1, 2, 2, 2))
    ctx = LoweringContext(graph)
    ctx.node = graph.nodes[0]
    with pytest.raises(PackageError, match="Winograd"):
        winograd.emit(ctx, ConvSpec.parse(graph, graph.nodes[0]))


def test_emit_without_bias(k):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((1, 5, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 5, 3, 3)).astype(np.float32)
    graph = one_node_graph(x, w, None, None, {"pads": [1, 1, 1, 1]}, (1, 4, 6, 6))
    y = run_emitted(k, graph, {"x": x})
    assert rel_err(y, reference(x, w, None, None, 1, 1, 6, 6)) <= TOL
