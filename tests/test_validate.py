"""Models onnxruntime refuses and onnx's shape inference lets through (wasm_runtime/validate.py): each is
refused at package time with one line naming the node, where they used to package and compute garbage.
Each case is checked against onnxruntime's own refusal, so a check that refuses a valid model fails here."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from wasm_runtime.errors import PackageError
from wasm_runtime.package import package

RNG = np.random.default_rng(0)


def _model(node, x_shape, inits, y_rank=2):
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [f"d{i}" for i in range(y_rank)])],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _w(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


CASES = {
    "transpose_perm_shorter_than_rank": (
        helper.make_node("Transpose", ["x"], ["y"], name="bad", perm=[1, 0]),
        [2, 3, 4],
        {},
        r"perm \[1, 0\] is not a permutation of the 3 axes",
    ),
    "conv_weights_for_5_channels_on_3": (
        helper.make_node("Conv", ["x", "w"], ["y"], name="bad"),
        [1, 3, 8, 8],
        {"w": _w(4, 5, 3, 3)},
        r"the input has 3 channels; weights \[4, 5, 3, 3\] with group 1 take 5",
    ),
    "conv_group_does_not_match": (
        helper.make_node("Conv", ["x", "w"], ["y"], name="bad", group=2),
        [1, 3, 8, 8],
        {"w": _w(4, 2, 3, 3)},
        r"the input has 3 channels; weights \[4, 2, 3, 3\] with group 2 take 4",
    ),
    "conv_kernel_shape_attribute": (
        helper.make_node("Conv", ["x", "w"], ["y"], name="bad", kernel_shape=[5, 5]),
        [1, 3, 8, 8],
        {"w": _w(4, 3, 3, 3)},
        r"kernel_shape \[5, 5\] differs from the weights' \[3, 3\]",
    ),
    "conv_bias_length": (
        helper.make_node("Conv", ["x", "w", "b"], ["y"], name="bad"),
        [1, 3, 8, 8],
        {"w": _w(4, 3, 3, 3), "b": _w(3)},
        r"bias \[3\] must have one value per output channel \(4\)",
    ),
    "gemm_bias_width": (
        helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="bad"),
        [2, 3],
        {"w": _w(3, 4), "b": _w(5)},
        r"C \[5\] does not broadcast to the product's \[2, 4\]",
    ),
    "reshape_changes_the_count": (
        helper.make_node("Reshape", ["x", "s"], ["y"], name="bad"),
        [2, 6],
        {"s": np.array([4, 4], np.int64)},
        r"\[2, 6\] \(12 elements\) cannot become \[4, 4\] \(16 elements\)",
    ),
    "reflect_pad_wider_than_the_axis": (
        helper.make_node("Pad", ["x", "p"], ["y"], name="bad", mode="reflect"),
        [1, 2],
        {"p": np.array([0, 2, 0, 2], np.int64)},
        r"a reflect pad of 2 on axis 1",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_refused_like_onnxruntime(name, tmp_path):
    node, x_shape, inits, message = CASES[name]
    rank = {"Conv": 4, "Transpose": 3}.get(node.op_type, 2)
    model = _model(node, x_shape, inits, rank)
    options = ort.SessionOptions()
    options.log_severity_level = 4
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime raises its own Fail / InvalidArgument types
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        session.run(None, {"x": RNG.standard_normal(x_shape).astype(np.float32)})
    with pytest.raises(PackageError, match=rf"node 'bad' \({node.op_type}\): {message}"):
        package(model, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_the_same_ops_valid_still_package(tmp_path):
    """The checks refuse only what onnxruntime refuses: the valid forms of the same nodes package."""
    valid = [
        (helper.make_node("Transpose", ["x"], ["y"], perm=[1, 2, 0]), [2, 3, 4], {}, 3),
        (helper.make_node("Conv", ["x", "w", "b"], ["y"], group=3), [1, 3, 8, 8], {"w": _w(6, 1, 3, 3), "b": _w(6)}, 4),
        (helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1), [2, 3], {"w": _w(4, 3), "b": _w(1, 4)}, 2),
        (helper.make_node("Reshape", ["x", "s"], ["y"]), [2, 6], {"s": np.array([3, -1], np.int64)}, 2),
        (helper.make_node("Pad", ["x", "p"], ["y"], mode="reflect"), [1, 3], {"p": np.array([0, 2, 0, 2])}, 2),
    ]
    for k, (node, x_shape, inits, rank) in enumerate(valid):
        package(_model(node, x_shape, inits, rank), tmp_path / f"b{k}", variants=("simd",))


@pytest.mark.parametrize("ratio, refused", [(0.5, True), (0.0, False)])
def test_training_dropout_of_constants_is_not_frozen_into_one_draw(tmp_path, ratio, refused):
    """A training-mode Dropout of constants draws a new mask every run in onnxruntime (two runs differ); folding
    it froze one draw into a constant of 0s and 2s. It is refused now, naming the node; with ratio 0 it is the
    identity and folds."""
    nodes = [
        helper.make_node("Dropout", ["c", "ratio", "training"], ["d"], name="drop"),
        helper.make_node("Add", ["x", "d"], ["y"], name="add"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [16, 16])],
        [
            numpy_helper.from_array(np.ones((16, 16), np.float32), "c"),
            numpy_helper.from_array(np.array(ratio, np.float32), "ratio"),
            numpy_helper.from_array(np.array(True), "training"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.zeros((16, 16), np.float32)
    a, b = sess.run(None, {"x": x})[0], sess.run(None, {"x": x})[0]
    assert (not np.array_equal(a, b)) == refused  # onnxruntime's own runs differ exactly when it is random
    if refused:
        with pytest.raises(PackageError, match="drop.*training_mode Dropout"):
            package(model, tmp_path / "b")
    else:
        package(model, tmp_path / "b")
