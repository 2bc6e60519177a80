"""Data movement ops (wasm_runtime/ops/movement.py, kernels_wasm/x-movement.c) against onnxruntime: shapes the
node tests do not cover (odd sizes, several dtypes, rows enough for the 3-thread split plan), constant and
run-time parameters (the kernel normalizes run-time starts/pads itself), old opsets, and run-time parameters
that disagree with the planned shape (the kernel traps)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from oputil import check_model, make_model, randn, single, tensor_info

from wasm_runtime.host import HostSession
from wasm_runtime.package import package

INT64_MAX = np.iinfo(np.int64).max


def declared(op, inputs, outputs, attrs=None, inits=None, opset=13, input_names=None):
    """One node with run-time parameters: inputs/outputs are name -> (shape, dtype), outputs declared
    (shape inference cannot know them when they depend on input values)."""
    names = input_names if input_names is not None else [*inputs, *(inits or {})]
    node = helper.make_node(op, list(names), list(outputs), name=op.lower(), **(attrs or {}))
    graph = helper.make_graph(
        [node],
        "t",
        [tensor_info(n, list(s), d) for n, (s, d) in inputs.items()],
        [tensor_info(n, list(s), d) for n, (s, d) in outputs.items()],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def kernels(manifest) -> list[str]:
    return [s["kernel"] for s in manifest["steps"]]


def i64(*v):
    return np.array(v, np.int64)


def data(shape, dtype, seed=0):
    if np.dtype(dtype) == np.bool_:
        return np.random.default_rng(seed).integers(0, 2, shape).astype(bool)
    if np.dtype(dtype).kind in "iu":
        return np.random.default_rng(seed).integers(-1000, 1000, shape).astype(dtype)
    return randn(shape, seed, dtype)


# Slice ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "starts,ends,axes,steps",
    [
        ([1, -2], [INT64_MAX, -10], [0, 2], [2, -3]),  # negative step from a negative start to "before 0"
        ([0, 0, 3], [5, 7, 8], [0, 1, 2], [1, 1, 1]),  # inner band: one memcpy per row
        ([-100, 2], [100, 6], [-1, -2], [1, 1]),  # clamped, negative axes
        ([4, 6, 8], [-INT64_MAX, -INT64_MAX, -INT64_MAX], [0, 1, 2], [-1, -1, -1]),  # full reverse
    ],
)
def test_slice_constant_params(starts, ends, axes, steps, tmp_path):
    model = single("Slice", {"x": (5, 7, 9)}, inits={"s": i64(*starts), "e": i64(*ends), "a": i64(*axes),
                   "p": i64(*steps)})  # fmt: skip
    manifest = check_model(model, tmp_path, tol=0)
    assert kernels(manifest) == ["x_copy_view"]


@pytest.mark.parametrize("index_dtype", [np.int64, np.int32])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_slice_runtime_params(index_dtype, dtype, tmp_path):
    idx = {n: ((3,), index_dtype) for n in ("starts", "ends", "axes", "steps")}
    model = declared("Slice", {"x": ((6, 10, 7), dtype), **idx}, {"y": ((2, 4, 7), dtype)})
    feeds = {"x": data((6, 10, 7), dtype), "starts": np.array([-1, 1, 0], index_dtype),
             "ends": np.array([1, 8, 100], index_dtype), "axes": np.array([0, -2, 2], index_dtype),
             "steps": np.array([-3, 2, 1], index_dtype)}  # fmt: skip
    manifest = check_model(model, tmp_path, tol=0, feeds=feeds)
    assert kernels(manifest) == ["x_slice"]


def test_slice_runtime_starts_constant_axes_big(tmp_path):
    """Run-time starts/ends, constant axes and steps; 129 rows so the 3-thread plan really splits."""
    model = declared("Slice", {"x": ((129, 66), np.float32), "st": ((1,), np.int64), "en": ((1,), np.int64)},
                     {"y": ((129, 31), np.float32)}, inits={"ax": i64(-1), "sp": i64(-2)},
                     input_names=["x", "st", "en", "ax", "sp"])  # fmt: skip
    manifest = check_model(model, tmp_path, tol=0, feeds={"x": randn((129, 66)), "st": i64(-4), "en": i64(0)})
    (step,) = manifest["steps"]
    assert step["kernel"] == "x_slice" and step["split"]["units"] == 129


def test_slice_runtime_values_disagreeing_with_the_plan_trap(tmp_path):
    model = declared("Slice", {"x": ((8,), np.float32), "st": ((1,), np.int64), "en": ((1,), np.int64)},
                     {"y": ((3,), np.float32)})  # fmt: skip
    package(model, tmp_path / "b")
    session = HostSession(tmp_path / "b")
    x = randn((8,))
    np.testing.assert_array_equal(session.run({"x": x, "st": i64(2), "en": i64(5)})["y"], x[2:5])
    np.testing.assert_array_equal(session.run({"x": x, "st": i64(-4), "en": i64(-1)})["y"], x[4:7])
    with pytest.raises(RuntimeError, match="trapped"):
        session.run({"x": x, "st": i64(2), "en": i64(6)})  # 4 elements, not the planned 3


@pytest.mark.parametrize("opset", [7, 9])
def test_slice_attributes_before_opset_10(opset, tmp_path):
    model = single("Slice", {"x": (4, 10, 5)}, {"starts": [1, -7], "ends": [3, INT64_MAX], "axes": [0, 1]}, opset=opset)
    check_model(model, tmp_path, tol=0, expect={"y": lambda f: f["x"][1:3, -7:]})


# Split ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_split_uneven_sizes_input(dtype, tmp_path):
    model = declared("Split", {"x": ((2, 10, 3), dtype)}, {"a": ((2, 3, 3), dtype), "b": ((2, 7, 3), dtype)},
                     {"axis": -2}, inits={"split": i64(3, 7)})  # fmt: skip
    check_model(model, tmp_path, tol=0, feeds={"x": data((2, 10, 3), dtype)})


def test_split_num_outputs_uneven_big(tmp_path):
    model = single("Split", {"x": (150, 7)}, {"axis": 1, "num_outputs": 3}, opset=18, outputs=("a", "b", "c"))
    manifest = check_model(model, tmp_path, tol=0, expect={"c": lambda f: f["x"][:, 6:]})
    assert [s["split"]["units"] for s in manifest["steps"]] == [150, 150, 150]


def test_split_attribute_opset11(tmp_path):
    model = single("Split", {"x": (9, 4)}, {"axis": 0, "split": [2, 3, 4]}, opset=11, outputs=("a", "b", "c"))
    check_model(model, tmp_path, tol=0)


# Pad --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_constant_pads_modes(mode, tmp_path):
    pads = i64(0, 1, 2, 3, 0, 2, 1, 4)
    model = single("Pad", {"x": (2, 3, 5, 7)}, {"mode": mode}, inits={"p": pads, "v": np.array(1.5, np.float32)},
                   input_names=["x", "p", "v"] if mode == "constant" else ["x", "p"])  # fmt: skip
    manifest = check_model(model, tmp_path, tol=0)
    assert kernels(manifest) == ["x_pad"]


def test_pad_negative_pads_crop_and_pad(tmp_path):
    model = single("Pad", {"x": (6, 9)}, inits={"p": i64(-2, 3, 1, -4)}, input_names=["x", "p"])
    check_model(model, tmp_path, tol=0, expect={"y": lambda f: np.pad(f["x"][2:, : 9 - 4], [(0, 1), (3, 0)])})


def test_pad_only_crops_is_a_view(tmp_path):
    model = single("Pad", {"x": (6, 9)}, inits={"p": i64(-1, 0, -2, -3)}, input_names=["x", "p"])
    manifest = check_model(model, tmp_path, tol=0, expect={"y": lambda f: f["x"][1:4, :6]})
    assert kernels(manifest) == ["x_copy_view"]


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
def test_pad_runtime_pads(mode, dtype, tmp_path):
    inputs = {"x": ((67, 5, 6), dtype), "pads": ((6,), np.int64)}
    if mode == "constant":
        inputs["value"] = ((), dtype)
    model = declared("Pad", inputs, {"y": ((70, 5, 11), dtype)}, {"mode": mode})
    feeds = {"x": data((67, 5, 6), dtype), "pads": i64(1, 0, 3, 2, 0, 2), "value": np.array(7, dtype)}
    manifest = check_model(model, tmp_path, tol=0, feeds={k: v for k, v in feeds.items() if k in inputs})
    assert kernels(manifest) == ["x_pad"] and manifest["steps"][0]["split"]["units"] == 70 * 5


def test_pad_runtime_pads_and_negative_axes_opset18(tmp_path):
    model = declared("Pad", {"x": ((3, 4, 5), np.float32), "pads": ((4,), np.int64), "axes": ((2,), np.int32)},
                     {"y": ((3, 7, 3), np.float32)}, {"mode": "reflect"}, opset=18,
                     input_names=["x", "pads", "", "axes"])  # fmt: skip
    feeds = {"x": randn((3, 4, 5)), "pads": i64(1, 2, -3, 1), "axes": np.array([-1, 1], np.int32)}
    check_model(model, tmp_path, tol=0, feeds=feeds,
                expect={"y": lambda f: np.pad(f["x"][:, :, :2], [(0, 0), (2, 1), (1, 0)], mode="reflect")})  # fmt: skip


@pytest.mark.parametrize("mode", ["reflect", "edge", "wrap"])
def test_pad_crop_one_side_pad_the_other(mode, tmp_path):
    """Negative pads crop first; the modes repeat the cropped extent (onnxruntime's semantics)."""
    model = single("Pad", {"x": (4, 6)}, {"mode": mode}, inits={"p": i64(-1, 3, 1, -2)}, input_names=["x", "p"])
    check_model(model, tmp_path, tol=0, expect={"y": lambda f: np.pad(f["x"][1:, :4], [(0, 1), (3, 0)], mode)})


def test_pad_wrap_wider_than_the_input(tmp_path):
    model = single("Pad", {"x": (2, 3)}, {"mode": "wrap"}, inits={"p": i64(0, 7, 0, 5)}, input_names=["x", "p"])
    check_model(model, tmp_path, tol=0, ort=False, expect={"y": lambda f: np.pad(f["x"], [(0, 0), (7, 5)], "wrap")})


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_attributes_opset7(mode, tmp_path):
    model = single("Pad", {"x": (3, 5)}, {"mode": mode, "pads": [1, 2, 0, 3], "value": -2.0}, opset=7)
    check_model(model, tmp_path, tol=0)


def test_pad_runtime_pads_disagreeing_with_the_plan_trap(tmp_path):
    model = declared("Pad", {"x": ((4,), np.float32), "p": ((2,), np.int64)}, {"y": ((6,), np.float32)})
    package(model, tmp_path / "b")
    session = HostSession(tmp_path / "b")
    x = randn((4,))
    np.testing.assert_array_equal(session.run({"x": x, "p": i64(2, 0)})["y"], np.pad(x, (2, 0)))
    with pytest.raises(RuntimeError, match="trapped"):
        session.run({"x": x, "p": i64(2, 1)})


def test_center_crop_pad_mixed_axes(tmp_path):
    model = declared("CenterCropPad", {"x": ((5, 10, 3), np.float32), "s": ((2,), np.int64)},
                     {"y": ((8, 7, 3), np.float32)}, {"axes": [-3, 1]}, opset=18)  # fmt: skip
    feeds = {"x": randn((5, 10, 3)), "s": i64(8, 7)}
    check_model(model, tmp_path, tol=0, feeds=feeds, ort=False,
                expect={"y": lambda f: np.pad(f["x"][:, 1:8], [(1, 2), (0, 0), (0, 0)])})  # fmt: skip


# Expand, Tile, DepthToSpace, SpaceToDepth, ConstantOfShape -------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_expand(dtype, tmp_path):
    model = declared("Expand", {"x": ((3, 1, 5), dtype)}, {"y": ((2, 3, 4, 5), dtype)}, inits={"s": i64(2, 1, 4, 1)})
    check_model(model, tmp_path, tol=0, feeds={"x": data((3, 1, 5), dtype)})


def test_expand_scalar_run_time_shape(tmp_path):
    model = declared("Expand", {"x": ((), np.float32), "s": ((2,), np.int64)}, {"y": ((7, 9), np.float32)})
    check_model(model, tmp_path, tol=0, feeds={"x": np.array(2.5, np.float32), "s": i64(7, 9)})


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.bool_])
def test_tile_constant_repeats(dtype, tmp_path):
    model = declared("Tile", {"x": ((3, 5, 2), dtype)}, {"y": ((6, 5, 6), dtype)}, inits={"r": i64(2, 1, 3)})
    check_model(model, tmp_path, tol=0, feeds={"x": data((3, 5, 2), dtype)})


def test_tile_runtime_repeats_big(tmp_path):
    model = declared("Tile", {"x": ((33, 7), np.float32), "r": ((2,), np.int64)}, {"y": ((99, 14), np.float32)})
    check_model(model, tmp_path, tol=0, feeds={"x": randn((33, 7)), "r": i64(3, 2)})


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_to_space(mode, tmp_path):
    model = single("DepthToSpace", {"x": (2, 12, 3, 5)}, {"blocksize": 2, "mode": mode})
    check_model(model, tmp_path, tol=0)


def test_space_to_depth(tmp_path):
    model = single("SpaceToDepth", {"x": (2, 3, 6, 9)}, {"blocksize": 3})
    check_model(model, tmp_path, tol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_constant_of_shape_runtime_shape(dtype, tmp_path):
    value = numpy_helper.from_array(np.array([1], dtype))
    model = declared("ConstantOfShape", {"s": ((3,), np.int64)}, {"y": ((3, 1, 7), dtype)}, {"value": value})
    manifest = check_model(model, tmp_path, tol=0, feeds={"s": i64(3, 1, 7)})
    assert kernels(manifest) == ["x_fill"]


def test_int64_transpose(tmp_path):
    model = single("Transpose", {"x": ((3, 5, 2), np.int64)}, {"perm": [2, 0, 1]})
    check_model(model, tmp_path, tol=0)


def test_chain_through_views(tmp_path):
    """Slice of a reshaped (aliased) input, padded, then split: offsets resolve through the alias."""
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("Slice", ["r", "st", "en", "ax", "sp"], ["s"]),
        helper.make_node("Pad", ["s", "pads"], ["p"], mode="edge"),
        helper.make_node("Split", ["p"], ["a", "b"], axis=1),
    ]
    inits = {
        "shape": i64(6, 10),
        "st": i64(1, 9),
        "en": i64(5, 0),
        "ax": i64(0, 1),
        "sp": i64(1, -1),
        "pads": i64(0, 1, 2, 0),
    }
    model = make_model(nodes, {"x": (3, 20)}, ["a", "b"], inits)

    def ref(f):
        return np.pad(f["x"].reshape(6, 10)[1:5, 9:0:-1], [(0, 2), (1, 0)], "edge")

    check_model(model, tmp_path, tol=0, expect={"a": lambda f: ref(f)[:, :5], "b": lambda f: ref(f)[:, 5:]})


def test_runtime_slice_of_a_constant(tmp_path):
    model = declared("Slice", {"st": ((1,), np.int32), "en": ((1,), np.int32)}, {"y": ((4, 4), np.float32)},
                     inits={"w": randn((4, 9), 3), "ax": np.array([1], np.int32)},
                     input_names=["w", "st", "en", "ax"])  # fmt: skip
    feeds = {"st": np.array([5], np.int32), "en": np.array([np.iinfo(np.int32).max], np.int32)}
    check_model(model, tmp_path, tol=0, feeds=feeds, expect={"y": lambda f: randn((4, 9), 3)[:, 5:]})
