"""Reductions (Reduce*, ArgMax/ArgMin, CumSum, TopK, LogSoftmax, Hardmax) through package -> HostSession
against onnxruntime, on what the ONNX node tests leave out: SIMD tails (sizes that are not multiples of 4
or 16), tensors big enough that the 3-thread plan really splits, several non-adjacent axes, axes as
attributes, constants and run-time inputs, ties, and edge values. The error measure is max |ours - ref| /
max |ref| (tests/oputil.py), indices exact."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from oputil import check_model, make_model, run_bundle, single, tensor_info

from wasm_runtime.host import HostSession
from wasm_runtime.package import package

REDUCE_OPS = [
    "ReduceSum",
    "ReduceMean",
    "ReduceSumSquare",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceProd",
    "ReduceMax",
    "ReduceMin",
]
POSITIVE = {"ReduceLogSum", "ReduceProd"}  # log of a sum of N(0,1) is NaN; products of |x|+0.5 stay tame


def _reduce_model(op, shape, axes, keepdims=1, how="input", opset=18, **attrs):
    """axes given as: "attr" (opset 13), "input" (an initializer), "runtime" (a graph input)."""
    attrs = {"keepdims": keepdims, **attrs}
    if how == "attr":
        if axes is not None:
            attrs["axes"] = axes
        return single(op, {"x": shape}, attrs, opset=13 if op != "ReduceSum" else 11)
    if how == "input":
        inits = {"axes": np.array(axes, np.int64)} if axes is not None else {}
        return single(op, {"x": shape}, attrs, inits, opset=opset)
    # shape inference cannot see run-time axes: declare the output's shape as a model would
    out = np.sum(
        np.zeros(shape),
        axis=tuple(axes) if axes or not attrs.get("noop_with_empty_axes") else (),
        keepdims=bool(keepdims),
    ).shape
    node = helper.make_node(op, ["x", "axes"], ["y"], name="r", **attrs)
    inputs = [tensor_info("x", shape), tensor_info("axes", [len(axes)], np.int64)]
    graph = helper.make_graph([node], "t", inputs, [tensor_info("y", out)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _feeds(op, shape, seed=0, axes=None):
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    if op in POSITIVE:
        x = np.abs(x) + 0.5
    if op == "ReduceProd":
        x = (x / x.mean()).astype(np.float32)
    feeds = {"x": x}
    if axes is not None:
        feeds["axes"] = np.array(axes, np.int64)
    return feeds


# (shape, axes): each reaches a different part of the walk in kernels_wasm/f32-reduce-wasmsimd.c
PATTERNS = {
    "rows_tail": ((67, 133), [-1]),  # innermost reduced: 16-wide, 4-wide, 1-wide tails
    "cols_tail": ((301, 70), [0]),  # innermost kept: 68 outputs in lanes + 2 in lane 0, split over 70
    "wide_cols": ((21, 2, 301), [0, 1]),  # innermost kept: 256-output tiles, then 44, then 1
    "two_axes_inner_reduced": ((3, 37, 5, 19), [1, 3]),
    "two_axes_inner_kept": ((3, 37, 5, 19), [0, 2]),
    "alternating_rank6": ((2, 3, 4, 5, 6, 7), [0, 2, 4]),
    "size1_axes_merge": ((4, 1, 6, 1, 9), [1, 2, 4]),
}


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_ops(op, tmp_path):
    shape, axes = PATTERNS["two_axes_inner_kept"] if op in ("ReduceProd",) else PATTERNS["rows_tail"]
    model = _reduce_model(op, shape, axes, keepdims=0)
    check_model(model, tmp_path / "a", feeds=_feeds(op, shape))
    shape, axes = PATTERNS["two_axes_inner_reduced"]
    check_model(_reduce_model(op, shape, axes, how="attr"), tmp_path / "b", feeds=_feeds(op, shape, 1))


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_reduce_patterns(pattern, tmp_path):
    shape, axes = PATTERNS[pattern]
    for op in ("ReduceSum", "ReduceLogSumExp"):
        manifest = check_model(_reduce_model(op, shape, axes), tmp_path / op, feeds=_feeds(op, shape))
        (step,) = manifest["steps"]
        assert step["kernel"] == "f32_reduce"


def test_reduce_split_is_bit_identical(tmp_path):
    """the 3-thread chunks of the 70 kept columns start off the 16-lane grid: same bits anyway"""
    shape, axes = PATTERNS["cols_tail"]
    manifest, outs = run_bundle(_reduce_model("ReduceL2", shape, axes), tmp_path, _feeds("ReduceL2", shape))
    assert manifest["steps"][0]["split"]["units"] == 70
    np.testing.assert_array_equal(outs["simd"]["y"], outs["simd, 3 threads"]["y"])


@pytest.mark.parametrize(
    "op,axes,keepdims",
    [("ReduceMean", [0, 2], 0), ("ReduceL2", [-2], 1), ("ReduceMin", [1, 0], 0), ("ReduceLogSumExp", [2], 0)],
)
def test_reduce_runtime_axes(op, axes, keepdims, tmp_path):
    shape = (5, 6, 23)
    model = _reduce_model(op, shape, axes, keepdims, how="runtime")
    manifest = check_model(model, tmp_path, feeds=_feeds(op, shape, axes=axes))
    assert [s["kernel"] for s in manifest["steps"]] == ["f32_reduce_dyn"]


def test_reduce_all_axes_long_sum_is_accurate(tmp_path):
    """70000 terms: every level of the blocked sum; float64 numpy reference, tighter than a plain float32 loop."""
    shape = (70001,)
    x = (np.random.default_rng(3).standard_normal(shape) + 0.25).astype(np.float32)
    model = _reduce_model("ReduceSum", shape, None, keepdims=0)
    _, outs = run_bundle(model, tmp_path, {"x": x})
    exact = np.sum(x.astype(np.float64))
    for got in outs.values():
        assert abs(float(got["y"]) - exact) <= 2e-6 * abs(exact)


def test_reduce_noop_and_size1_axes(tmp_path):
    shape = (3, 1, 5)
    # noop_with_empty_axes with no axes: identity; ReduceL1 over a size-1 axis: |x|
    check_model(single("ReduceSum", {"x": shape}, {"noop_with_empty_axes": 1}, opset=13), tmp_path / "a")
    check_model(_reduce_model("ReduceL1", shape, [1]), tmp_path / "b")
    model = _reduce_model("ReduceSumSquare", shape, [], how="runtime", noop_with_empty_axes=1)
    feeds = _feeds("ReduceSumSquare", shape, axes=[])
    _, outs = run_bundle(model, tmp_path / "c", feeds)
    for got in outs.values():  # the reference evaluator's reading: a reduction over no axes (x^2 here)
        np.testing.assert_array_equal(got["y"], feeds["x"] ** 2)


def test_reduce_edge_values(tmp_path):
    inf = np.float32(np.inf)
    x = np.array([[1, -inf, 3, 2, 0, 5], [-inf] * 6, [1000, 999, 998, -1000, 1000, 3], [inf, 1, 2, 3, 4, 5]])
    x = x.astype(np.float32)
    lse0 = np.log(np.exp(np.array([1, 3, 2, 0, 5]) - 5.0).sum()) + 5
    expect = {
        "ReduceMax": [5, -inf, 1000, inf],
        "ReduceMin": [-inf, -inf, -1000, 1],
        "ReduceLogSumExp": [lse0, -inf, 1000 + np.log(2 + np.exp(-1) + np.exp(-2)), inf],
        "ReduceSum": [-inf, -inf, 3000, inf],
    }
    for op, ref in expect.items():
        _, outs = run_bundle(_reduce_model(op, x.shape, [1], keepdims=0), tmp_path / op, {"x": x})
        for variant, got in outs.items():
            np.testing.assert_allclose(got["y"], np.array(ref, np.float32), rtol=1e-6, err_msg=f"{op} {variant}")


def test_reduce_empty_set(tmp_path):
    model = _reduce_model("ReduceMax", (2, 0, 4), [1], how="input")
    _, outs = run_bundle(model, tmp_path, {"x": np.zeros((2, 0, 4), np.float32)})
    for got in outs.values():
        np.testing.assert_array_equal(got["y"], np.full((2, 1, 4), -np.inf, np.float32))


def test_reduce_runtime_axes_disagreeing_with_static_shape_traps(tmp_path):
    model = _reduce_model("ReduceSum", (2, 3), [1], keepdims=0, how="runtime")
    package(model, tmp_path)
    session = HostSession(tmp_path, "simd")
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(session.run({"x": x, "axes": np.array([1], np.int64)})["y"], [3, 3])
    with pytest.raises(RuntimeError, match="trapped"):
        session.run({"x": x, "axes": np.array([0], np.int64)})


# ---------------------------------------------------------------------------------------------------------
# ArgMax / ArgMin


@pytest.mark.parametrize("shape,axis", [((37, 131), 1), ((50, 39), 0), ((4, 9, 7), -2), ((5, 6), 1)])
def test_argminmax(shape, axis, tmp_path):
    """rounded inputs: many ties, so first / last index matters"""
    x = np.round(np.random.default_rng(0).standard_normal(shape) * 2).astype(np.float32)
    for op in ("ArgMax", "ArgMin"):
        for last in (0, 1):
            model = single(op, {"x": shape}, {"axis": axis, "keepdims": int(axis != 0), "select_last_index": last})
            check_model(model, tmp_path / f"{op}{last}", feeds={"x": x}, tol=0)


# ---------------------------------------------------------------------------------------------------------
# LogSoftmax, Hardmax, Softmax


@pytest.mark.parametrize("shape,axis,opset", [((9, 131), -1, 13), ((6, 7, 37), 1, 13), ((2, 3, 4, 5), None, 11),
                                              ((2, 3, 4, 5), 2, 11), ((50, 3), 0, 13)])  # fmt: skip
def test_softmax_family(shape, axis, opset, tmp_path):
    attrs = {} if axis is None else {"axis": axis}
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32) * 5
    for op in ("LogSoftmax", "Hardmax", "Softmax"):
        feeds = {"x": np.round(x) if op == "Hardmax" else x}  # Hardmax: ties, the first max wins
        check_model(single(op, {"x": shape}, attrs, opset=opset), tmp_path / op, feeds=feeds, tol=2e-6)


@pytest.mark.parametrize("shape,axis", [((7, 45), -1), ((5, 6, 3), 1)])
def test_softmax_split_rows_are_bit_identical(shape, axis, tmp_path):
    """threads split Softmax by rows (outer index): 3 chunks of 7 or 5 rows give the one-thread bits, for the
    4-wide last-axis path (a 45-long row has a scalar tail) and the strided one; a row with a NaN stays NaN"""
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32) * 5
    x.reshape(shape[0], -1)[2, 3] = np.nan
    manifest, outs = run_bundle(single("Softmax", {"x": shape}, {"axis": axis}, opset=13), tmp_path, {"x": x})
    (step,) = manifest["steps"]
    assert step["split"]["units"] == shape[0]
    np.testing.assert_array_equal(outs["simd"]["y"], outs["simd, 3 threads"]["y"])
    y = outs["simd, 3 threads"]["y"]
    assert np.isnan(y.reshape(shape[0], -1)[2]).any() and not np.isnan(np.delete(y, 2, axis=0)).any()
    finite = np.delete(x, 2, axis=0).astype(np.float64)
    e = np.exp(finite - finite.max(axis=axis, keepdims=True))
    np.testing.assert_allclose(np.delete(y, 2, axis=0), e / e.sum(axis=axis, keepdims=True), rtol=2e-6, atol=1e-7)


def test_log_softmax_large_values(tmp_path):
    x = np.array([[10000, 10001, 10002, -10000, 1e30, 1e30, 0]], np.float32)
    check_model(single("LogSoftmax", {"x": x.shape}, {}), tmp_path, feeds={"x": x}, tol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# CumSum


@pytest.mark.parametrize(
    "dtype,exclusive,reverse", [(np.float32, 0, 0), (np.float32, 1, 1), (np.int32, 1, 0), (np.int64, 0, 1)]
)
def test_cumsum(dtype, exclusive, reverse, tmp_path):
    shape = (5, 37, 7)
    attrs = {"exclusive": exclusive, "reverse": reverse}
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(shape) * 100).astype(dtype)
    # constant axis (split over the larger of outer / inner), then a run-time axis
    model = single("CumSum", {"x": (shape, dtype)}, attrs, {"axis": np.array(1, np.int64)})
    check_model(model, tmp_path / "const", feeds={"x": x}, tol=1e-6)
    axis_dtype = np.int32 if dtype == np.int32 else np.int64
    model = single("CumSum", {"x": (shape, dtype), "axis": ((), axis_dtype)}, attrs)
    for axis in (0, -1):
        feeds = {"x": x, "axis": np.array(axis, axis_dtype)}
        check_model(model, tmp_path / f"rt{axis}", feeds=feeds, tol=1e-6)


def test_cumsum_wraps_int32(tmp_path):
    x = np.array([2**31 - 1, 1, 5], np.int32)
    model = single("CumSum", {"x": ((3,), np.int32)}, {}, {"axis": np.array(0, np.int32)})
    check_model(model, tmp_path, feeds={"x": x}, tol=0)


# ---------------------------------------------------------------------------------------------------------
# TopK


@pytest.mark.parametrize(
    "dtype,largest,shape,axis,k",
    [
        (np.float32, 1, (6, 101), -1, 7),
        (np.float32, 0, (40, 9), 0, 40),
        (np.int64, 1, (3, 50, 5), 1, 1),
        (np.int64, 0, (2, 13), 1, 13),
        (np.float32, 1, (300, 17), 1, 5),
    ],
)
def test_topk(dtype, largest, shape, axis, k, tmp_path):
    x = np.round(np.random.default_rng(4).standard_normal(shape) * 3).astype(dtype)  # many ties
    model = make_model(
        [helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=axis, largest=largest)],
        {"x": (shape, dtype)},
        ["v", "i"],
        {"k": np.array([k], np.int64)},
    )
    check_model(model, tmp_path, feeds={"x": x}, tol=0)
