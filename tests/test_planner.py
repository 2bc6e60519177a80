"""Memory planner: buffers reused by lifetime, never overlapping while both are live."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from wasm_runtime import zoo
from wasm_runtime.lowering import lower
from wasm_runtime.memory_map import ALIGN
from wasm_runtime.package import import_model
from wasm_runtime.planner import plan_memory


def _plan(model):
    _, graph = import_model(model)
    lowered = lower(graph)
    return graph, lowered, plan_memory(graph, lowered)


def _assert_no_live_overlap(plan):
    items = plan.arena
    for i, a in enumerate(items):
        assert a.offset % ALIGN == 0
        assert a.offset + a.nbytes <= plan.arena_bytes
        for b in items[i + 1:]:
            if a.first <= b.last and b.first <= a.last:  # live at the same time
                assert a.offset + a.nbytes <= b.offset or b.offset + b.nbytes <= a.offset, (a, b)


@pytest.mark.parametrize("name", sorted(zoo.BUILDERS))
def test_zoo_plans_reuse_memory_without_overlap(name):
    graph, lowered, plan = _plan(zoo.BUILDERS[name](image_size=96, num_classes=10))
    _assert_no_live_overlap(plan)
    # a chain of convolutions needs far less than every activation at once
    assert plan.arena_bytes < 0.5 * plan.unshared_bytes
    # the peak can never be below the largest set of buffers live at one step
    for step in range(len(lowered.steps)):
        live = sum(a.nbytes for a in plan.arena if a.first <= step <= a.last)
        assert live <= plan.arena_bytes


def _chain_model():
    """x -> relu -> reshape (alias) -> relu -> y, plus a weight used twice."""
    w = numpy_helper.from_array(np.arange(16, dtype=np.float32).reshape(4, 4), "w")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"], name="mm1"),
        helper.make_node("Relu", ["a"], ["b"], name="r1"),
        helper.make_node("Reshape", ["b", "shape"], ["c"], name="view"),
        helper.make_node("Relu", ["c"], ["d"], name="r2"),
        helper.make_node("Reshape", ["d", "shape2"], ["e"], name="view2"),
        helper.make_node("MatMul", ["e", "w"], ["y"], name="mm2"),
    ]
    shapes = [numpy_helper.from_array(np.array([16], np.int64), "shape"),
              numpy_helper.from_array(np.array([4, 4], np.int64), "shape2")]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])], [w, *shapes])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_aliases_share_storage_and_extend_lifetime():
    graph, lowered, plan = _plan(_chain_model())
    assert lowered.aliases == {"c": "b", "e": "d"}
    assert plan.root["c"] == "b"
    b = plan.arena_of["b"]
    # b is read through its alias c by the second Relu (step 2), so it must live until then
    assert b.last == 2
    _assert_no_live_overlap(plan)
    # the weight used by both MatMuls is stored once (as the GEMM's packed panels, made once for both)
    (weight,) = plan.weights
    assert weight.array.shape == (1, 4, 8)


def test_graph_inputs_and_outputs_live_for_the_whole_run():
    graph, lowered, plan = _plan(_chain_model())
    assert plan.arena_of["x"].first == -1
    assert plan.arena_of["y"].last == len(lowered.steps)


def test_uniform_constants_are_fills_and_kept_out_of_the_file():
    big = helper.make_node("ConstantOfShape", ["s"], ["w"], name="cos",
                           value=numpy_helper.from_array(np.array([0.25], np.float32)))
    small = numpy_helper.from_array(np.arange(8, dtype=np.float32), "b")
    nodes = [big, helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
             helper.make_node("Add", ["m", "b"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "fill", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 512])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])],
                              [numpy_helper.from_array(np.array([512, 8], np.int64), "s"), small])
    _, _, plan = _plan(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    fills = [w for w in plan.weights if w.fill]
    assert len(fills) == 1 and fills[0].array.shape == (512, 8)
    # the file holds the small bias and the layout block, not the 16 KB fill
    assert plan.weights_file_bytes < 1024 < plan.weights_bytes
    assert all(w.offset >= plan.weights_file_bytes for w in fills)
