"""If: inlined at import (wasm_runtime/control.py). A run-time condition runs both branches and selects;
a constant one keeps only the branch taken. Compared with onnxruntime for both values of the condition."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from oputil import run_bundle

from wasm_runtime.errors import PackageError
from wasm_runtime.package import package
from wasm_runtime.verify import reference_outputs


def _branch(name, nodes, out, shape, inits=()):
    return helper.make_graph(
        nodes, name, [], [helper.make_tensor_value_info(out, TensorProto.FLOAT, shape)], list(inits)
    )


def _model(cond_input: bool, then_shape=(2, 3), else_shape=(2, 3), nested=False):
    """y = If(cond, then: x * 2 + outer bias, else: Relu(x) - 1 [or a nested If]); x and bias from the
    outer scope."""
    two = numpy_helper.from_array(np.float32(2.0), "two")
    then_g = _branch(
        "then",
        [helper.make_node("Mul", ["x", "two"], ["t0"]), helper.make_node("Add", ["t0", "bias"], ["t_out"])],
        "t_out",
        then_shape,
        [two],
    )
    if then_shape != else_shape:
        then_g = _branch("then", [helper.make_node("ReduceSum", ["x"], ["t_out"], keepdims=1)], "t_out", then_shape)
    one = numpy_helper.from_array(np.float32(1.0), "one")
    else_nodes = [helper.make_node("Relu", ["x"], ["e0"]), helper.make_node("Sub", ["e0", "one"], ["e_out"])]
    if nested:
        inner_then = _branch("it", [helper.make_node("Neg", ["x"], ["it_out"])], "it_out", else_shape)
        inner_else = _branch("ie", [helper.make_node("Sub", ["e0", "one"], ["ie_out"])], "ie_out", else_shape)
        else_nodes = [
            helper.make_node("Relu", ["x"], ["e0"]),
            helper.make_node("If", ["cond2"], ["e_out"], then_branch=inner_then, else_branch=inner_else),
        ]
    else_g = _branch("else", else_nodes, "e_out", else_shape, [one])
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])]
    inits = [numpy_helper.from_array(np.array([0.5, -1.0, 2.0], np.float32), "bias")]
    if cond_input:
        inputs.append(helper.make_tensor_value_info("cond", TensorProto.BOOL, []))
    else:
        inits.append(numpy_helper.from_array(np.array(True), "cond"))
    if nested:
        inputs.append(helper.make_tensor_value_info("cond2", TensorProto.BOOL, [1]))
    node = helper.make_node("If", ["cond"], ["y"], name="the_if", then_branch=then_g, else_branch=else_g)
    graph = helper.make_graph(
        [node],
        "g",
        inputs,
        [
            helper.make_tensor_value_info(
                "y", TensorProto.FLOAT, list(else_shape) if then_shape == else_shape else ["a", "b"]
            )
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what onnxruntime 1.31 reads
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("nested", [False, True])
def test_runtime_condition_matches_onnxruntime_both_ways(tmp_path, nested):
    model = _model(cond_input=True, nested=nested)
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    for cond in (True, False):
        for cond2 in (True, False) if nested else (None,):
            feeds = {"x": x, "cond": np.array(cond)}
            if nested:
                feeds["cond2"] = np.array([cond2])
            ref = reference_outputs(model, feeds)["y"]
            _, outs = run_bundle(model, tmp_path / "b", feeds)
            for variant, got in outs.items():
                np.testing.assert_allclose(got["y"], ref, rtol=1e-6, err_msg=f"{variant} cond={cond} {cond2}")


def test_constant_condition_ships_only_the_branch_taken(tmp_path):
    model = _model(cond_input=False)
    x = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    ref = reference_outputs(model, {"x": x})["y"]
    manifest, outs = run_bundle(model, tmp_path / "b", {"x": x})
    for got in outs.values():
        np.testing.assert_allclose(got["y"], ref, rtol=1e-6)
    ops = manifest["stats"]["op_counts"]
    assert "Where" not in ops and "Relu" not in ops, ops  # the else branch and the select are gone


def test_runtime_condition_with_branches_of_different_shapes_fails_clearly(tmp_path):
    model = _model(cond_input=True, then_shape=(1, 1), else_shape=(2, 3))
    with pytest.raises(PackageError, match=r"the_if.*different outputs.*\[1, 1\].*\[2, 3\]"):
        package(model, tmp_path / "b")
