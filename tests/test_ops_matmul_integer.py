"""MatMulInteger through the whole pipeline against numpy (exact int32) and onnxruntime where it runs the
dtype combination: SIMD column blocks and scalar tails (N not a multiple of 8), zero points per tensor /
row / column / N-D, batch broadcasting, 1-D operands, run-time zero points, a split plan."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper
from oputil import make_model, run_bundle, tensor_info

from wasm_runtime.host import HostSession
from wasm_runtime.package import package
from wasm_runtime.verify import reference_outputs


def ints(shape, dtype, seed):
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(info.min, info.max + 1, shape).astype(dtype)


def reference(a, b, za=None, zb=None):
    a32, b32 = a.astype(np.int32), b.astype(np.int32)
    if za is not None:
        za = za.astype(np.int32)
        a32 = a32 - (za[:, None] if za.ndim == 1 and za.size > 1 else za)
    if zb is not None:
        b32 = b32 - zb.astype(np.int32)
    return np.matmul(a32, b32)


def build(a_shape, b_shape, a_dtype=np.uint8, b_dtype=np.uint8, za_shape=None, zb_shape=None, runtime_zp=False):
    """(model, feeds, expected): A and B are inputs, zero points initializers (or inputs when runtime_zp)."""
    a, b = ints(a_shape, a_dtype, 1), ints(b_shape, b_dtype, 2)
    za = ints(za_shape, a_dtype, 3) if za_shape is not None else None
    zb = ints(zb_shape, b_dtype, 4) if zb_shape is not None else None
    names = ["a", "b", "za" if za is not None else "", "zb" if zb is not None else ""]
    while names[-1] == "":
        names.pop()
    inputs = [tensor_info("a", a_shape, a_dtype), tensor_info("b", b_shape, b_dtype)]
    inits, feeds = [], {"a": a, "b": b}
    for name, value in (("za", za), ("zb", zb)):
        if value is None:
            continue
        if runtime_zp:
            inputs.append(tensor_info(name, list(value.shape), value.dtype))
            feeds[name] = value
        else:
            inits.append(numpy_helper.from_array(value, name))
    node = helper.make_node("MatMulInteger", names, ["y"], name="mmi")
    expected = reference(a, b, za, zb)
    graph = helper.make_graph([node], "g", inputs, [tensor_info("y", list(expected.shape), np.int32)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model, feeds, expected


CASES = {
    "2d_scalar_zp": dict(a_shape=[5, 13], b_shape=[13, 11], za_shape=[], zb_shape=[]),
    "2d_no_zp": dict(a_shape=[4, 9], b_shape=[9, 16]),
    "2d_per_row_per_col": dict(a_shape=[6, 10], b_shape=[10, 19], za_shape=[6], zb_shape=[19]),
    "2d_one_element_zp": dict(a_shape=[4, 3], b_shape=[3, 2], za_shape=[1], zb_shape=[1]),
    "batch_a_shared_b": dict(a_shape=[2, 3, 5, 7], b_shape=[7, 9], za_shape=[], zb_shape=[9]),
    "shared_a_batch_b": dict(a_shape=[5, 7], b_shape=[2, 7, 12], za_shape=[5], zb_shape=[]),
    "broadcast_batches_nd_zp": dict(
        a_shape=[2, 1, 4, 6], b_shape=[3, 6, 10], za_shape=[2, 1, 4, 1], zb_shape=[3, 1, 10]
    ),
    "a_1d": dict(a_shape=[7], b_shape=[2, 7, 9], za_shape=[], zb_shape=[9]),
    "b_1d": dict(a_shape=[3, 4, 7], b_shape=[7], za_shape=[4], zb_shape=[]),
    "split_plan": dict(a_shape=[64, 100], b_shape=[100, 37], za_shape=[], zb_shape=[37]),
}
DTYPES = {"u8u8": (np.uint8, np.uint8), "u8s8": (np.uint8, np.int8), "s8s8": (np.int8, np.int8)}


@pytest.mark.parametrize("dtypes", sorted(DTYPES))
@pytest.mark.parametrize("name", sorted(CASES))
def test_matmul_integer(name, dtypes, tmp_path):
    a_dtype, b_dtype = DTYPES[dtypes]
    model, feeds, expected = build(**CASES[name], a_dtype=a_dtype, b_dtype=b_dtype)
    manifest, outs = run_bundle(model, tmp_path, feeds)
    assert {s["kernel"] for s in manifest["steps"]} == {"x8_matmul_integer"}
    refs = [expected]
    # onnxruntime: no s8 x s8 kernel, u8 x s8 saturates int16 pair sums on x86, A's zero point scalar only,
    # B's per tensor or per column of a 2-D B
    za, zb = CASES[name].get("za_shape"), CASES[name].get("zb_shape")
    if dtypes == "u8u8" and za in (None, [], [1]) and (zb in (None, [], [1]) or len(CASES[name]["b_shape"]) == 2):
        refs.append(reference_outputs(model, feeds)["y"])
    for variant, got in outs.items():  # both builds and the 3-thread split plan: exact
        for ref in refs:
            assert got["y"].dtype == np.int32 and np.array_equal(got["y"], ref), variant


def test_runtime_zero_points_and_s8u8(tmp_path):
    model, feeds, expected = build(
        [3, 6, 10], [10, 13], np.int8, np.uint8, za_shape=[6], zb_shape=[13], runtime_zp=True
    )
    package(model, tmp_path)
    for variant in ("simd", "relaxed"):
        assert np.array_equal(HostSession(tmp_path, variant).run(feeds)["y"], expected)


def test_extreme_values_do_not_overflow_int16(tmp_path):
    """(0 - 255) * (255 - 0) per term: the widened products must be formed in int32."""
    a = np.zeros((2, 40), np.uint8)
    b = np.full((40, 9), 255, np.uint8)
    model = make_model(
        [helper.make_node("MatMulInteger", ["a", "b", "za"], ["y"])],
        {"a": ([2, 40], np.uint8), "b": ([40, 9], np.uint8)},
        ["y"],
        {"za": np.array(255, np.uint8)},
    )
    package(model, tmp_path)
    got = HostSession(tmp_path).run({"a": a, "b": b})["y"]
    assert np.array_equal(got, np.full((2, 9), -255 * 255 * 40, np.int32))
