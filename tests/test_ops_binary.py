"""ops/arithmetic.py, ops/logic.py and ops/cast.py through the whole pipeline (package -> both kernel builds + a
3-thread split plan), on what the ONNX node tests leave out: sizes that are not multiples of 4 or 16, tensors big
enough that split plans really split, 3-way broadcasting, integer and bool dtypes, edge values (NaN, +-0, inf,
shift counts out of range, huge quotients in fmod). Results must be exact (bit for bit) against onnxruntime or
numpy, except Mean."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from oputil import make_model, max_rel, run_bundle, single

from wasm_runtime.errors import PackageError
from wasm_runtime.host import HostSession
from wasm_runtime.package import package
from wasm_runtime.verify import reference_outputs

RNG = np.random.default_rng(7)
BIG = (3, 37, 41)  # 4551 elements: chunks of a 3-thread split, and rows that end mid-vector


def rand(shape, dtype=np.float32, lo=-1000, hi=1000):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return RNG.random(shape) < 0.5
    if dtype.kind in "iu":
        return RNG.integers(lo, hi, shape).astype(dtype)
    return RNG.standard_normal(shape).astype(dtype)


def spec(feeds: dict) -> dict:
    return {k: (v.shape, v.dtype) for k, v in feeds.items()}


def check(model, tmp_path, feeds, expect=None, ort=True, tol=0.0):
    """Run every variant; compare with onnxruntime (ort=True) and with `expect` (name -> array), exactly
    (NaNs in the same places) unless tol > 0. Returns the manifest."""
    refs = []
    if ort:
        refs.append(("onnxruntime", reference_outputs(model, feeds)))
    if expect:
        refs.append(("numpy", expect))
    assert refs
    manifest, outs = run_bundle(model, tmp_path / "bundle", feeds)
    for variant, got in outs.items():
        for who, ref in refs:
            for name, r in ref.items():
                r = np.asarray(r)
                assert got[name].dtype == r.dtype, f"{variant}: {name} is {got[name].dtype}, {who} {r.dtype}"
                if tol:
                    err = max_rel(got[name], r)
                    assert err <= tol, f"{variant}: {name} max rel err {err:.3g} vs {who}"
                else:
                    np.testing.assert_array_equal(got[name], r, err_msg=f"{variant} vs {who}")
    return manifest


def split_steps(manifest) -> list[str]:
    return [s["kernel"] for s in manifest["steps"] if s.get("split")]


# ---------------------------------------------------------------------------------------------------------
# Max / Min / Mean


@pytest.mark.parametrize("op", ["Max", "Min"])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
def test_max_min_three_inputs_broadcast(op, dtype, tmp_path):
    feeds = {"a": rand((3, 1, 41), dtype), "b": rand((37, 1), dtype), "c": rand((41,), dtype)}
    manifest = check(single(op, spec(feeds)), tmp_path, feeds)
    assert len(split_steps(manifest)) == 2  # a op b, then (in place) op c


def test_max_min_propagate_nan(tmp_path):
    a = rand((5, 7))
    b = rand((5, 7))
    a[1, 2], b[3, 4], a[0, 0], b[0, 0] = np.nan, np.nan, np.nan, np.nan
    feeds = {"a": a, "b": b}
    nodes = [helper.make_node("Max", ["a", "b"], ["mx"]), helper.make_node("Min", ["a", "b"], ["mn"])]
    model = make_model(nodes, spec(feeds), ["mx", "mn"])
    check(model, tmp_path, feeds, {"mx": np.maximum(a, b), "mn": np.minimum(a, b)}, ort=False)


def test_mean_broadcast(tmp_path):
    feeds = {"a": rand((2, 37, 5)), "b": rand((37, 1)), "c": rand((5,))}
    model = single("Mean", spec(feeds))
    expect = {"y": ((feeds["a"].astype(np.float64) + feeds["b"] + feeds["c"]) / 3).astype(np.float32)}
    check(model, tmp_path, feeds, expect, tol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# Mod


def _fmod_operands():
    """Mixed signs and magnitudes: quotients up to 2^250 (the 64-bit reduction loops), subnormals, zeros."""
    x = np.concatenate(
        [
            RNG.standard_normal(300) * 10.0 ** RNG.integers(-5, 30, 300),
            [3e38, -3e38, 1e-40, -1e-40, 0.0, -0.0, 7.0, -7.0, 5e-39, 1.0, 2.5, -2.5, 6.0],
        ]
    ).astype(np.float32)
    y = np.concatenate(
        [
            RNG.standard_normal(300) * 10.0 ** RNG.integers(-8, 6, 300),
            [1e-45, -3.3, 3e-39, 7e-41, 2.0, -2.0, 7.0, 3.5, -1e-45, 1e-38, 1.25, 0.5, -4.0],
        ]
    ).astype(np.float32)
    return x, y


def test_mod_fmod1_exact(tmp_path):
    x, y = _fmod_operands()
    feeds = {"x": x, "y": y}
    check(single("Mod", spec(feeds), {"fmod": 1}, outputs=("z",)), tmp_path, feeds, {"z": np.fmod(x, y)})


def test_mod_fmod0_float_is_numpy_mod(tmp_path):
    """onnxruntime rejects float Mod with fmod=0; the node tests' reference is numpy's mod (sign of y)."""
    x, y = _fmod_operands()
    x = np.concatenate([x, [0, -0.0, -3, 3, -1, 1, np.inf, 1, 1, np.nan, 1]]).astype(np.float32)
    y = np.concatenate([y, [-2, 2, np.inf, np.inf, -np.inf, -np.inf, 2, 0, -0.0, 2, np.nan]]).astype(np.float32)
    feeds = {"x": x, "y": y}
    with np.errstate(all="ignore"):
        expect = np.mod(x, y)
    model = single("Mod", spec(feeds), {"fmod": 0}, outputs=("z",))
    check(model, tmp_path, feeds, {"z": expect}, ort=False)
    got = run_bundle(model, tmp_path / "again", feeds, variants=("simd",))[1]["simd"]["z"]
    assert np.array_equal(np.signbit(got), np.signbit(expect)), "signs of zero results"


@pytest.mark.parametrize("fmod", [0, 1])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_mod_int_broadcast(fmod, dtype, tmp_path):
    x = rand(BIG, dtype)
    y = rand((37, 1), dtype, -50, 50)
    y[y == 0] = 7
    feeds = {"x": x, "y": y}
    expect = np.fmod(x, y) if fmod else np.mod(x, y)
    check(single("Mod", spec(feeds), {"fmod": fmod}, outputs=("z",)), tmp_path, feeds, {"z": expect})


# ---------------------------------------------------------------------------------------------------------
# integer Add/Sub/Mul/Div


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_int_arith_broadcast(op, dtype, tmp_path):
    a = rand(BIG, dtype)
    b = rand((41,), dtype, -30, 30)
    b[b == 0] = -3
    feeds = {"a": a, "b": b}
    manifest = check(single(op, spec(feeds)), tmp_path, feeds)
    assert split_steps(manifest) == [f"{np.dtype(dtype).name.replace('int', 'i')}_{op.lower()}"]


def test_int_arith_wraps_and_division_by_zero_stops_the_run(tmp_path):
    """INT_MIN / -1 would trap in wasm: it wraps to INT_MIN (and its % is 0). x / 0 and x % 0 stop the run with
    an error naming the node, as onnxruntime fails the run ("Integer division by zero")."""
    lo = np.iinfo(np.int32).min
    a = np.array([7, lo, -7, 2**31 - 1, 5], np.int32)
    b = np.array([3, -1, 2, 2, -1], np.int32)
    feeds = {"a": a, "b": b}
    nodes = [
        helper.make_node("Div", ["a", "b"], ["q"]),
        helper.make_node("Mod", ["a", "b"], ["r"], fmod=1),
        helper.make_node("Mul", ["a", "a"], ["m"]),
        helper.make_node("Add", ["a", "a"], ["s"]),
    ]
    expect = {
        "q": np.array([2, lo, -3, 2**30 - 1, -5], np.int32),
        "r": np.array([1, 0, -1, 1, 0], np.int32),
        "m": (a.astype(np.int64) ** 2).astype(np.int32),
        "s": (a.astype(np.int64) * 2).astype(np.int32),
    }
    model = make_model(nodes, spec(feeds), list(expect))
    check(model, tmp_path, feeds, expect, ort=False)
    for op, attrs in (("Div", {}), ("Mod", {"fmod": 1}), ("Mod", {"fmod": 0})):
        zero = make_model([helper.make_node(op, ["a", "b"], ["q"], name="the_div", **attrs)], spec(feeds), ["q"])
        feeds0 = {"a": a, "b": np.array([3, 1, 0, 2, 1], np.int32)}
        with pytest.raises(Exception, match="(division|modulo) by zero"):
            reference_outputs(zero, feeds0)
        for variant in ("simd", "relaxed"):
            package(zero, tmp_path / f"zero-{op}{attrs}", variants=(variant,))
            with pytest.raises(RuntimeError, match=r"node 'the_div'.*integer division by zero"):
                HostSession(tmp_path / f"zero-{op}{attrs}", variant).run(feeds0)


@pytest.mark.parametrize("folded", [False, True], ids=["run_time_dividend", "both_constant"])
def test_constant_integer_zero_divisor_is_refused_at_package_time(tmp_path, folded):
    inits = {"b": np.array([2, 0, 1], np.int64)}
    if folded:
        inits["a"] = np.array([4, 5, 6], np.int64)
    inputs = {} if folded else {"a": ((3,), np.int64)}
    nodes = [helper.make_node("Div", ["a", "b"], ["q"], name="the_div"), helper.make_node("Neg", ["q"], ["y"])]
    with pytest.raises(PackageError, match=r"the_div.*divisor.*holds 0.*integer division by zero"):
        package(make_model(nodes, inputs, ["y"], inits), tmp_path / "b")


# ---------------------------------------------------------------------------------------------------------
# comparisons, logic, Where


@pytest.mark.parametrize("op", ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
def test_compare_broadcast(op, dtype, tmp_path):
    a = rand(BIG, dtype, -4, 4)
    b = rand((37, 1), dtype, -4, 4)
    if a.dtype.kind == "f":  # ties, so Equal/LessOrEqual see equal operands
        a, b = np.round(a * 2), np.round(b * 2)
    feeds = {"a": a, "b": b}
    check(single(op, spec(feeds)), tmp_path, feeds)


def test_compare_nan_is_false_except_not_equal(tmp_path):
    a = np.array([np.nan, 1, np.nan, -0.0, np.inf], np.float32)
    b = np.array([np.nan, np.nan, 1, 0.0, np.inf], np.float32)
    ops = {"Equal": np.equal, "Less": np.less, "LessOrEqual": np.less_equal, "Greater": np.greater,
           "GreaterOrEqual": np.greater_equal}  # fmt: skip
    nodes = [helper.make_node(op, ["a", "b"], [op.lower()]) for op in ops]
    expect = {op.lower(): fn(a, b) for op, fn in ops.items()}
    feeds = {"a": a, "b": b}
    check(make_model(nodes, spec(feeds), list(expect)), tmp_path, feeds, expect)


def test_equal_bool(tmp_path):
    feeds = {"a": rand(BIG, np.bool_), "b": rand((41,), np.bool_)}
    check(single("Equal", spec(feeds), opset=11), tmp_path, feeds)


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
def test_logic_broadcast(op, tmp_path):
    feeds = {"a": rand((3, 1, 41), np.bool_), "b": rand((37, 41), np.bool_)}
    manifest = check(single(op, spec(feeds)), tmp_path, feeds)
    assert split_steps(manifest) == [f"b8_{op.lower()}"]


def test_not_big(tmp_path):
    feeds = {"x": rand(BIG, np.bool_)}
    manifest = check(single("Not", spec(feeds)), tmp_path, feeds)
    assert split_steps(manifest) == ["b8_not"]


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32, np.bool_, np.uint8])
def test_where_three_way_broadcast(dtype, tmp_path):
    feeds = {"c": rand((37, 1), np.bool_), "a": rand((3, 1, 41), dtype), "b": rand((41,), dtype)}
    expect = {"y": np.where(feeds["c"], feeds["a"], feeds["b"])}
    # onnxruntime has no bool Where
    check(single("Where", spec(feeds)), tmp_path, feeds, expect, ort=dtype != np.bool_)


@pytest.mark.parametrize(
    "shapes", [((5, 7), (5, 7), (5, 7)), ((1,), (5, 7), (7,)), ((5, 7), (), (5, 1)), ((5, 1), (1, 7), ())]
)
def test_where_stride_patterns(shapes, tmp_path):
    """Each (cond, x, y) stride combination of the row loop: contiguous, broadcast scalar per row."""
    feeds = {"c": rand(shapes[0], np.bool_), "a": rand(shapes[1]), "b": rand(shapes[2])}
    check(single("Where", spec(feeds)), tmp_path, feeds)


# ---------------------------------------------------------------------------------------------------------
# BitShift


def _shift_ref(a, b, direction):
    bits = 8 * a.dtype.itemsize
    a, b = np.broadcast_arrays(a, b)
    out = np.zeros(a.shape, a.dtype)
    ok = (b >= 0) & (b < bits)
    if direction == "RIGHT" and a.dtype.kind == "i":
        out[~ok] = np.where(a[~ok] < 0, -1, 0)
    u = np.dtype(f"u{a.dtype.itemsize}")
    if direction == "LEFT":
        out[ok] = (a[ok].view(u) << b[ok].astype(u)).view(a.dtype)
    else:
        out[ok] = a[ok] >> b[ok]
    return out


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64, np.int32, np.int64])
def test_bitshift_broadcast_and_out_of_range_counts(direction, dtype, tmp_path):
    bits = 8 * np.dtype(dtype).itemsize
    info = np.iinfo(dtype)
    a = RNG.integers(info.min, info.max, BIG, dtype=dtype, endpoint=True)
    lo = -3 if info.min < 0 else 0
    b = RNG.integers(lo, bits + 3, (37, 1)).astype(dtype)  # counts beyond the width, and negative ones
    feeds = {"a": a, "b": b}
    model = single("BitShift", spec(feeds), {"direction": direction}, opset=11 if info.min == 0 else 26)
    in_range = info.min == 0 and bool((b < bits).all())
    check(model, tmp_path, feeds, {"y": _shift_ref(a, b, direction)}, ort=in_range)


# ---------------------------------------------------------------------------------------------------------
# Cast / CastLike

CAST_PAIRS = [
    (np.float32, np.int32),
    (np.float32, np.int64),
    (np.float32, np.bool_),
    (np.float32, np.uint8),
    (np.float32, np.int8),
    (np.int64, np.float32),
    (np.int64, np.int32),
    (np.int64, np.bool_),
    (np.int32, np.int64),
    (np.int32, np.float32),
    (np.bool_, np.float32),
    (np.bool_, np.int64),
    (np.uint8, np.float32),
    (np.uint8, np.bool_),
    (np.uint64, np.float32),
    (np.int16, np.uint16),
]


def _cast_source(src, dst):
    if np.dtype(src).kind == "f":
        x = RNG.standard_normal(BIG) * 40
        if np.dtype(dst).itemsize == 1 and dst != np.bool_:
            x = np.clip(x, -100, 100)  # in range of the 8-bit destination
        x.flat[:6] = [0.0, -0.0, 0.5, -0.5, 1.99, -1.99]  # truncation toward zero
        return x.astype(src)
    info = np.iinfo(src) if np.dtype(src) != np.bool_ else None
    if info is None:
        return rand(BIG, np.bool_)
    x = RNG.integers(max(info.min, -(2**62)), min(info.max, 2**62), BIG, endpoint=True).astype(src)
    x.flat[:3] = [0, 1, info.max]
    return x


@pytest.mark.parametrize("src,dst", CAST_PAIRS, ids=[f"{np.dtype(s).name}-{np.dtype(d).name}" for s, d in CAST_PAIRS])
def test_cast(src, dst, tmp_path):
    x = _cast_source(src, dst)
    feeds = {"x": x}
    model = single("Cast", spec(feeds), {"to": helper.np_dtype_to_tensor_dtype(np.dtype(dst))})
    manifest = check(model, tmp_path, feeds, {"y": x.astype(dst)})
    assert len(split_steps(manifest)) == 1


def test_cast_float_edge_values(tmp_path):
    """Documented choices where C and numpy leave it undefined: NaN -> 0, saturation to the int range;
    NaN -> bool is true (nonzero)."""
    x = np.array([np.nan, np.inf, -np.inf, 3e9, -3e9, 1e20, -1e20, 2.5, -2.5], np.float32)
    i32 = np.iinfo(np.int32)
    i64 = np.iinfo(np.int64)
    nodes = [
        helper.make_node("Cast", ["x"], ["a"], to=TensorProto.INT32),
        helper.make_node("Cast", ["x"], ["b"], to=TensorProto.INT64),
        helper.make_node("Cast", ["x"], ["c"], to=TensorProto.BOOL),
    ]
    expect = {
        "a": np.array([0, i32.max, i32.min, i32.max, i32.min, i32.max, i32.min, 2, -2], np.int32),
        "b": np.array([0, i64.max, i64.min, 3000000000, -3000000000, i64.max, i64.min, 2, -2], np.int64),
        "c": np.array([1, 1, 1, 1, 1, 1, 1, 1, 1], np.bool_),
    }
    check(make_model(nodes, spec({"x": x}), list(expect)), tmp_path, {"x": x}, expect, ort=False)


def test_castlike_and_same_dtype_cast_is_free(tmp_path):
    x = rand((5, 7))
    like = np.zeros((1,), np.int64)
    nodes = [
        helper.make_node("CastLike", ["x", "like"], ["a"]),
        helper.make_node("Cast", ["x"], ["same"], to=TensorProto.FLOAT),
        helper.make_node("Relu", ["same"], ["b"]),
    ]
    model = make_model(nodes, {"x": (5, 7)}, ["a", "b"], {"like": like}, opset=15)
    manifest = check(model, tmp_path, {"x": x})
    assert [s["kernel"] for s in manifest["steps"]] == ["x_cast_i64", "f32_relu"]


@pytest.mark.parametrize("to", [TensorProto.FLOAT16, TensorProto.DOUBLE])
def test_cast_out_of_scope_dtype_fails_clearly(to, tmp_path):
    model = single("Cast", {"x": (4,)}, {"to": to})
    with pytest.raises(PackageError, match=r"'cast' \(Cast\): Cast with a float(16|64) output is not supported"):
        package(model, tmp_path / "b")


def test_compare_unsupported_dtype_fails_clearly(tmp_path):
    model = single("Greater", {"a": ((4,), np.uint8), "b": ((4,), np.uint8)})
    with pytest.raises(PackageError, match=r"'greater'.*uint8"):
        package(model, tmp_path / "b")
