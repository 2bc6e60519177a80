"""Elementwise math ops (wasm_runtime/ops/unary_math.py, kernels_wasm/f32-vmath-wasmsimd.c + vmath.h).

Two checks per op: the whole pipeline against onnxruntime on N(0, 1)-ish data (check_model: both builds and a
3-thread split plan), and element by element against a float64 numpy reference over the whole float range
(tiny, huge, inf, nan, subnormal, values past sin's fast range reduction), where every finite result must be
within a few ulp of the reference and nan/inf must land where numpy puts them. Many ops share one model, so
the file packages a handful of bundles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import helper
from oputil import check_model, make_model, run_bundle, single

SQRT1_2 = 1 / math.sqrt(2)
_erf = np.vectorize(math.erf, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])
SELU_A, SELU_G = 1.67326319217681884765625, 1.05070102214813232421875

# op -> (attributes, float64 reference, max ulp error)
OPS = {
    "Abs": ({}, np.abs, 0),
    "Neg": ({}, np.negative, 0),
    "Sqrt": ({}, np.sqrt, 0.5),
    "Reciprocal": ({}, lambda x: 1 / x, 0.5),
    "Floor": ({}, np.floor, 0),
    "Ceil": ({}, np.ceil, 0),
    "Round": ({}, np.round, 0),
    "Sign": ({}, np.sign, 0),
    "Exp": ({}, np.exp, 1),
    "Log": ({}, np.log, 1),
    "Erf": ({}, _erf, 2),
    "Sin": ({}, np.sin, 2),
    "Cos": ({}, np.cos, 2),
    "Tan": ({}, np.tan, 3),
    "Asin": ({}, np.arcsin, 2),
    "Acos": ({}, np.arccos, 2),
    "Atan": ({}, np.arctan, 2),
    "Sinh": ({}, np.sinh, 2),
    "Cosh": ({}, np.cosh, 2),
    "Asinh": ({}, np.arcsinh, 2),
    "Acosh": ({}, np.arccosh, 3),
    "Atanh": ({}, np.arctanh, 3),
    "Softplus": ({}, lambda x: np.logaddexp(0, x), 2),
    "Softsign": ({}, lambda x: x / (1 + np.abs(x)), 2),
    "Elu": ({"alpha": 0.7}, lambda x: np.where(x > 0, x, 0.7 * np.expm1(x)), 2),
    "Celu": ({"alpha": 1.5}, lambda x: np.maximum(x, 0) + np.minimum(0, 1.5 * np.expm1(x / 1.5)), 2),
    "Selu": ({}, lambda x: SELU_G * np.where(x > 0, x, SELU_A * np.expm1(x)), 2),
    "Gelu": ({}, lambda x: 0.5 * x * _erfc(-x * SQRT1_2), 4),
    "ThresholdedRelu": ({"alpha": 0.25}, lambda x: np.where(x > 0.25, x, 0), 0),
    "Shrink": ({"lambd": 0.6, "bias": 0.2}, lambda x: np.where(x < -0.6, x + 0.2, np.where(x > 0.6, x - 0.2, 0)), 0.5),
    "Mish": ({}, lambda x: x * np.tanh(np.logaddexp(0, x)), 4),
}
OPSET = 20  # Gelu


def _wide_inputs() -> np.ndarray:
    """Both signs of: N(0, 3) and N(0, 30), a log-uniform sweep 1e-40..1e38, values near 1 and pi/2 multiples,
    and the special values: 3915 elements, so that the SIMD tail runs."""
    rng = np.random.default_rng(7)
    parts = [
        rng.standard_normal(1500) * 3,
        rng.standard_normal(500) * 30,
        np.exp(rng.uniform(np.log(1e-40), np.log(1e38), 1500)) * rng.choice([-1, 1], 1500),
        1 + rng.uniform(-1e-3, 1e-3, 200),
        np.pi / 2 * rng.integers(-10**6, 10**6, 200) + rng.uniform(-1e-3, 1e-3, 200),
        [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, -0.5, 1e-45, -1e-45, 3.4e38, -3.4e38, 88.5, -88.5],
    ]
    return np.concatenate([np.asarray(p, np.float64) for p in parts]).astype(np.float32)


def _ulp_errors(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|got - ref| in units of the float32 spacing at ref (at least the smallest subnormal); nan/inf must match
    exactly (0 when they do, inf when not). Results below FLT_MIN get an absolute allowance of 1e-38 (no op
    keeps relative precision there)."""
    with np.errstate(all="ignore"):
        return _ulp_errors_(got, ref)


def _ulp_errors_(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    ref32 = ref.astype(np.float32)
    g = got.astype(np.float64)
    special = ~np.isfinite(ref32) | ~np.isfinite(g)
    same_special = (np.isnan(g) & np.isnan(ref32)) | (np.isinf(g) & (g == ref32))
    spacing = np.maximum(np.spacing(np.abs(ref32)).astype(np.float64), 2.0**-149)
    err = np.abs(g - ref) / spacing
    err[(np.abs(ref) < 2.0**-126) & (np.abs(g - ref) <= 1e-38)] = 0.0
    err[special] = np.where(same_special[special], 0.0, np.inf)
    return err


def _many(ops: list[str], x_shape) -> object:
    nodes = [helper.make_node(op, ["x"], [op], name=op.lower(), **OPS[op][0]) for op in ops]
    return make_model(nodes, {"x": x_shape}, ops, opset=OPSET)


def test_unary_ops_match_onnxruntime(tmp_path):
    """Every op on one N(0, 2) input of 5*7*13 elements (odd size: a SIMD tail and uneven thread chunks);
    Log/Sqrt/Acosh/Asin/Acos/Atanh take inputs mapped into their domain."""
    unbounded = [op for op in OPS if op not in ("Log", "Sqrt", "Acosh", "Asin", "Acos", "Atanh")]
    x = (np.random.default_rng(1).standard_normal((5, 7, 13)) * 2).astype(np.float32)
    check_model(_many(unbounded, x.shape), tmp_path / "a", feeds={"x": x})
    u = np.random.default_rng(2).uniform(-0.999, 0.999, (5, 7, 13)).astype(np.float32)
    check_model(_many(["Asin", "Acos", "Atanh"], u.shape), tmp_path / "b", feeds={"x": u})
    p = np.abs(x) * 10 + 1  # >= 1
    check_model(_many(["Log", "Sqrt", "Acosh"], p.shape), tmp_path / "c", feeds={"x": p})


def test_unary_ops_within_a_few_ulp_everywhere(tmp_path):
    x = _wide_inputs()
    manifest, outs = run_bundle(_many(list(OPS), list(x.shape)), tmp_path / "m", {"x": x})
    with np.errstate(all="ignore"):
        refs = {op: np.asarray(fn(x.astype(np.float64)), np.float64) for op, (_, fn, _) in OPS.items()}
    bad = []
    for variant, got in outs.items():
        for op, (_, _, max_ulp) in OPS.items():
            err = _ulp_errors(got[op], refs[op])
            i = int(np.argmax(err))
            if err[i] > max(max_ulp, 0.5) + 1e-9:
                bad.append(f"{variant} {op}({x[i]!r}) = {got[op][i]!r}, reference {refs[op][i]!r}: {err[i]:.3g} ulp")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_large_tensor(approximate, tmp_path):
    """4099 x 5 elements split over threads; both formulas against onnxruntime."""
    model = single("Gelu", {"x": (4099, 5)}, {"approximate": approximate}, opset=20)
    check_model(model, tmp_path, tol=2e-6)


def test_swish(tmp_path):
    model = single("Swish", {"x": (3, 1001)}, {"alpha": 1.7}, opset=24)
    check_model(model, tmp_path, expect={"y": lambda f: f["x"] / (1 + np.exp(-1.7 * f["x"].astype(np.float64)))})


@pytest.mark.parametrize(
    "x_shape, slope_shape",
    [
        ((2, 5, 9, 7), (5, 1, 1)),  # per channel
        ((2, 5, 9, 7), (7,)),  # last dim
        ((2, 5, 9, 7), (1,)),  # one slope
        ((2, 5, 9, 7), (2, 5, 9, 7)),  # elementwise
        ((4097,), (4097,)),  # one dim: the kernel's strided-row path, split
    ],
)
def test_prelu_broadcast(x_shape, slope_shape, tmp_path):
    slope = np.random.default_rng(3).uniform(-1, 1, slope_shape).astype(np.float32)
    check_model(single("PRelu", {"x": x_shape}, inits={"slope": slope}, opset=16), tmp_path)


def test_prelu_slope_as_input(tmp_path):
    check_model(single("PRelu", {"x": (6, 4, 5), "slope": (4, 1)}, opset=16), tmp_path)


@pytest.mark.parametrize("p", [2.0, 3.0, 0.5, -1.0, 1.0, 1.7, -2.5, 0.0])
def test_pow_constant_exponent_takes_the_unary_kernel(p, tmp_path):
    x = np.abs(np.random.default_rng(4).standard_normal((7, 301))).astype(np.float32) * 3
    x[0, :4] = [0.0 if p >= 0 else 0.25, 1.0, 4.0, 1e-3]
    model = single("Pow", {"x": x.shape}, inits={"p": np.array(p, np.float32)}, opset=15)
    manifest = check_model(model, tmp_path, feeds={"x": x}, tol=2e-7)
    assert [s["kernel"] for s in manifest["steps"]] == ["f32_pow_scalar"]


@pytest.mark.parametrize(
    "x_shape, y_shape",
    [((3, 1, 5), (4, 1)), ((2, 3, 4, 5), (5,)), ((1,), (7, 9)), ((2, 1003), (2, 1003)), ((9, 2), (1, 2))],
)
def test_pow_broadcast(x_shape, y_shape, tmp_path):
    rng = np.random.default_rng(5)
    feeds = {"x": rng.uniform(0.1, 4, x_shape).astype(np.float32), "e": rng.uniform(-3, 3, y_shape).astype(np.float32)}
    manifest = check_model(single("Pow", {"x": x_shape, "e": y_shape}, opset=15), tmp_path, feeds=feeds, tol=2e-7)
    assert [s["kernel"] for s in manifest["steps"]] == ["f32_pow"]


def test_pow_special_values_follow_c(tmp_path):
    """Negative bases with integral exponents keep or flip the sign, others give nan; pow(x, 0) = pow(1, y) = 1;
    zero and inf bases by the sign of y; overflow and underflow."""
    v = np.array([0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0, np.inf, -np.inf, np.nan, 1e-45, 3e38, 1e20])
    x, y = (a.ravel().astype(np.float32) for a in np.meshgrid(v, v))
    _, outs = run_bundle(single("Pow", {"x": x.shape, "e": y.shape}, opset=15), tmp_path, {"x": x, "e": y})
    ref = np.array([_c_pow(a, b) for a, b in zip(x.tolist(), y.tolist(), strict=True)])
    for variant, got in outs.items():
        err = _ulp_errors(got["y"], ref)
        i = int(np.argmax(err))
        assert err[i] <= 0.5, f"{variant}: pow({x[i]!r}, {y[i]!r}) = {got['y'][i]!r}, expected {ref[i]!r}"


def _c_pow(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except (ValueError, OverflowError):
        return _c_pow_edge(a, b)


def _c_pow_edge(a: float, b: float) -> float:
    """C's pow where Python's math.pow raises: overflow -> +-inf, pow(0, negative) -> +-inf, domain -> nan"""
    if a == 0:
        odd = float(b).is_integer() and abs(b) < 2**53 and int(b) % 2 == 1
        return math.copysign(math.inf, a) if odd else math.inf
    if a < 0 and not float(b).is_integer():
        return math.nan
    odd = float(b).is_integer() and int(b) % 2 == 1
    return -math.inf if a < 0 and odd else math.inf


@pytest.mark.parametrize(
    "x_dtype, y_dtype",
    [(np.float32, np.int64), (np.float32, np.int32), (np.float32, np.uint32), (np.float32, np.uint64),
     (np.int64, np.float32), (np.int32, np.float32), (np.int64, np.int64), (np.int32, np.int32)],
)  # fmt: skip
def test_pow_integer_operands(x_dtype, y_dtype, tmp_path):
    rng = np.random.default_rng(6)
    base = rng.integers(-6, 7, (4, 9)).astype(x_dtype)
    expo = rng.integers(0, 9, (9,)).astype(y_dtype)
    if np.dtype(x_dtype).kind == "i" and np.dtype(y_dtype).kind == "f":
        expo[:3] = [0.5, 1.5, 2.25]  # fractional exponents of integer bases truncate toward zero
        base[:, :3] = np.abs(base[:, :3])
    model = single("Pow", {"x": ((4, 9), x_dtype), "e": ((9,), y_dtype)}, opset=15)
    unsigned = np.dtype(y_dtype).kind == "u"  # onnxruntime has no Pow with unsigned exponents: numpy is the reference
    expect = {"y": lambda f: np.power(f["x"].astype(np.float64), f["e"].astype(np.float64))} if unsigned else None
    check_model(model, tmp_path, feeds={"x": base, "e": expo}, tol=0, expect=expect, ort=not unsigned)


@pytest.mark.parametrize("n", [37, 4099])
def test_isnan_isinf(n, tmp_path):
    rng = np.random.default_rng(8)
    x = rng.standard_normal(n).astype(np.float32)
    x[rng.integers(0, n, n // 3)] = np.nan
    x[rng.integers(0, n, n // 5)] = np.inf
    x[rng.integers(0, n, n // 5)] = -np.inf
    nodes = [
        helper.make_node("IsNaN", ["x"], ["nan"], name="isnan"),
        helper.make_node("IsInf", ["x"], ["inf"], name="isinf"),
        helper.make_node("IsInf", ["x"], ["pos"], name="ispos", detect_negative=0),
        helper.make_node("IsInf", ["x"], ["neg"], name="isneg", detect_positive=0),
    ]
    model = make_model(nodes, {"x": (n,)}, ["nan", "inf", "pos", "neg"], opset=20)
    expect = {
        "nan": lambda f: np.isnan(f["x"]),
        "inf": lambda f: np.isinf(f["x"]),
        "pos": lambda f: f["x"] == np.inf,
        "neg": lambda f: f["x"] == -np.inf,
    }
    check_model(model, tmp_path, feeds={"x": x}, expect=expect, tol=0)


@pytest.mark.parametrize("bounds", [("lo", "hi"), ("lo", ""), ("", "hi")])
def test_clip_with_run_time_bounds(tmp_path, bounds):
    """Clip's min/max as graph inputs (opset 11+): read from memory by the kernel, split for threads."""
    inputs = {"x": (5, 103)}
    feeds = {"x": np.random.default_rng(0).standard_normal((5, 103)).astype(np.float32)}
    for name, value in zip(bounds, (-0.5, 0.75), strict=True):
        if name:
            inputs[name] = ((), np.float32)
            feeds[name] = np.array(value, np.float32)
    model = single("Clip", inputs, input_names=["x", *bounds], opset=13)
    check_model(model, tmp_path, tol=0.0, feeds=feeds)
