"""Optimizer passes: each fires where it applies, stays put where it must not, and never changes results
beyond float32 rounding: the optimized graph (fused nodes expanded back to ONNX) is run in onnxruntime,
and the optimized bundle in wasmtime, both against onnxruntime on the original model."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from wasm_runtime import onnx_io, zoo
from wasm_runtime.host import HostSession
from wasm_runtime.ops.activation import ACTIVATIONS
from wasm_runtime.package import import_model, package
from wasm_runtime.passes import cleanup, fusion, optimize
from wasm_runtime.verify import compare, random_inputs, reference_outputs

RTOL = 1e-5
rng = np.random.default_rng(0)


def _w(name, *shape, positive=False):
    a = rng.standard_normal(shape).astype(np.float32)
    return numpy_helper.from_array(np.abs(a) + 0.5 if positive else a, name)


def _model(nodes, inputs, outputs, inits=(), opset=13):
    g = helper.make_graph(
        nodes,
        "t",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_empty_tensor_value_info(o if isinstance(o, str) else o[0]) for o in outputs],
        list(inits),
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    # output types come from shape inference, so tests only spell out the inputs
    inferred = {v.name: v for v in onnx.shape_inference.infer_shapes(m, data_prop=True).graph.value_info}
    for out, spec in zip(m.graph.output, outputs, strict=True):
        if isinstance(spec, str):
            out.type.CopyFrom(inferred[out.name].type)
        else:  # (name, shape) where inference cannot know it without folding constants first
            out.type.CopyFrom(helper.make_tensor_type_proto(TensorProto.FLOAT, spec[1]))
    return m


def _bn(name, x, y, c):
    return (
        helper.make_node(
            "BatchNormalization", [x, f"{name}.g", f"{name}.b", f"{name}.m", f"{name}.v"], [y], name=name, epsilon=1e-3
        ),
        [_w(f"{name}.g", c), _w(f"{name}.b", c), _w(f"{name}.m", c), _w(f"{name}.v", c, positive=True)],
    )


def run_pass(model, p, level_passes=(cleanup.fold_constants,)):
    _, graph = import_model(model)
    for q in level_passes:
        q(graph)
    n = p(graph)
    return graph, n


def check_equivalent(model, graph, tmp_path, levels=(0, 2)):
    """The rewritten graph computes what the model computes: in onnxruntime and as a bundle."""
    feeds = random_inputs([{"name": i, "dtype": "float32", "shape": list(graph.shape(i))} for i in graph.inputs])
    ref = reference_outputs(model, feeds)
    rebuilt = onnx_io.to_onnx(fusion.unfuse(graph))
    onnx.checker.check_model(rebuilt)
    for e in compare(reference_outputs(rebuilt, feeds), ref):
        assert e.ok(RTOL), e
    for level in levels:  # level 0 only where the original ops are all supported
        out = package(model, tmp_path / f"l{level}", opt_level=level).out_dir
        for e in compare(HostSession(out).run(feeds), ref):
            assert e.ok(RTOL), (level, e)


def ops(graph):
    return [n.op_type for n in graph.nodes]


# ---- cleanup -------------------------------------------------------------------------------------------


def test_dead_code_and_unused_constants(tmp_path):
    m = _model(
        [
            helper.make_node("Relu", ["x"], ["y"], name="r"),
            helper.make_node("Exp", ["x"], ["dead"], name="e"),
            helper.make_node("Add", ["x", "k"], ["dead2"], name="a"),
        ],
        [("x", [2, 3])],
        ["y"],
        [_w("k", 3)],
    )
    g = onnx_io.to_graph(m)
    assert cleanup.eliminate_dead_code(g) == 2
    assert ops(g) == ["Relu"] and "k" not in g.values


def test_noops_removed_and_kept(tmp_path):
    shape = numpy_helper.from_array(np.array([2, 3], np.int64), "s")
    other = numpy_helper.from_array(np.array([3, 2], np.int64), "s2")
    nodes = [
        helper.make_node("Identity", ["x"], ["a"], name="id"),
        helper.make_node("Dropout", ["a"], ["b", "mask"], name="drop"),
        helper.make_node("Reshape", ["b", "s"], ["c"], name="same"),
        helper.make_node("Transpose", ["c"], ["d"], name="tid", perm=[0, 1]),
        helper.make_node("Cast", ["d"], ["e"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["e", "s2"], ["f"], name="real"),  # changes the shape: stays
        helper.make_node("Transpose", ["f"], ["y"], name="treal", perm=[1, 0]),
    ]  # moves data: stays
    m = _model(nodes, [("x", [2, 3])], ["y"], [shape, other])
    g, n = run_pass(m, cleanup.eliminate_noops)
    assert n == 5 and ops(g) == ["Reshape", "Transpose"]
    check_equivalent(m, g, tmp_path, levels=(1, 2))


def test_noop_feeding_a_graph_output_renames_the_producer(tmp_path):
    m = _model(
        [helper.make_node("Relu", ["x"], ["r"], name="r"), helper.make_node("Identity", ["r"], ["y"], name="i")],
        [("x", [4])],
        ["y"],
    )
    g, n = run_pass(m, cleanup.eliminate_noops)
    assert n == 1 and ops(g) == ["Relu"] and g.nodes[0].outputs == ["y"]
    # graph input straight to output: the Identity has to stay
    m2 = _model([helper.make_node("Identity", ["x"], ["y"], name="i")], [("x", [4])], ["y"])
    g2, n2 = run_pass(m2, cleanup.eliminate_noops)
    assert n2 == 0 and ops(g2) == ["Identity"]


def test_reversing_slice_is_not_a_noop():
    inits = [
        numpy_helper.from_array(np.array(v, np.int64), k)
        for k, v in (("st", [-1]), ("en", [-(2**62)]), ("ax", [0]), ("sp", [-1]))
    ]
    m = _model(
        [helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"], name="rev")], [("x", [5])], ["y"], inits
    )
    g, n = run_pass(m, cleanup.eliminate_noops)
    assert n == 0


def test_duplicate_constants_and_cse(tmp_path):
    w = rng.standard_normal((3,)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w1"), numpy_helper.from_array(w.copy(), "w2"), _w("w3", 3)]
    nodes = [
        helper.make_node("Add", ["x", "w1"], ["a"], name="a"),
        helper.make_node("Add", ["x", "w2"], ["b"], name="b"),
        helper.make_node("Add", ["x", "w3"], ["c"], name="c"),
        helper.make_node("Mul", ["a", "b"], ["ab"], name="ab"),
        helper.make_node("Mul", ["ab", "c"], ["y"], name="y"),
    ]
    m = _model(nodes, [("x", [2, 3])], ["y"], inits)
    g, n = run_pass(m, cleanup.deduplicate_constants)
    assert n == 1 and "w2" not in g.values and "w3" in g.values
    assert cleanup.eliminate_common_subexpressions(g) == 1  # a and b are now the same Add
    assert ops(g) == ["Add", "Add", "Mul", "Mul"]
    check_equivalent(m, g, tmp_path)


def test_constant_subgraph_folds_shape_arithmetic(tmp_path):
    # Shape -> Gather -> Unsqueeze -> Concat -> Reshape: computable once shapes are known
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "i0"),
        numpy_helper.from_array(np.array([-1], np.int64), "m1"),
        numpy_helper.from_array(np.array([0], np.int64), "ax"),
    ]
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "i0"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "m1"], ["target"], name="cat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="reshape"),
    ]
    m = _model(nodes, [("x", [2, 3, 4])], [("y", [2, 12])], inits)
    _, g = import_model(m)
    optimize(g, 1)
    # Shape is not a runtime op here: its input's shape is static, so the chain became a constant
    assert ops(g) == ["Reshape"] and g.const(g.nodes[0].inputs[1]).tolist() == [2, -1]
    check_equivalent(m, g, tmp_path)


# ---- fusions -------------------------------------------------------------------------------------------


def _conv_bn_relu(extra_bn_use=False, conv_output_used_twice=False, bn_output_is_graph_output=False):
    bn, bn_inits = _bn("bn", "c", "b", 8)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        bn,
        helper.make_node("Relu", ["b"], ["y"], name="relu"),
    ]
    outputs = ["y"]
    if extra_bn_use:
        nodes.append(helper.make_node("Sigmoid", ["b"], ["y2"], name="sig"))
        outputs.append("y2")
    if conv_output_used_twice:
        nodes.append(helper.make_node("Tanh", ["c"], ["y3"], name="tanh"))
        outputs.append("y3")
    if bn_output_is_graph_output:
        outputs.append("b")
    return _model(nodes, [("x", [1, 4, 9, 9])], outputs, [_w("w", 8, 4, 3, 3), *bn_inits])


def test_batchnorm_folds_into_conv(tmp_path):
    m = _conv_bn_relu()
    g, n = run_pass(m, fusion.fold_batch_norm)
    assert n == 1 and ops(g) == ["Conv", "Relu"]
    check_equivalent(m, g, tmp_path)


def test_batchnorm_with_several_consumers_still_folds(tmp_path):
    m = _conv_bn_relu(extra_bn_use=True)
    g, n = run_pass(m, fusion.fold_batch_norm)
    assert n == 1 and "BatchNormalization" not in ops(g)
    check_equivalent(m, g, tmp_path)


@pytest.mark.parametrize("case", ["conv_output_used_twice", "bn_output_is_graph_output_but_conv_is_not"])
def test_batchnorm_fold_safety(case, tmp_path):
    if case == "conv_output_used_twice":
        m = _conv_bn_relu(conv_output_used_twice=True)
        g, n = run_pass(m, fusion.fold_batch_norm)
        assert n == 0 and "BatchNormalization" in ops(g)
    else:
        m = _conv_bn_relu(bn_output_is_graph_output=True)
        g, n = run_pass(m, fusion.fold_batch_norm)
        assert n == 1  # BN's own output keeps its name, so a graph output there is fine
    check_equivalent(m, g, tmp_path)


def test_batchnorm_not_folded_with_runtime_weights():
    bn, inits = _bn("bn", "c", "y", 8)
    m = _model(
        [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"), bn],
        [("x", [1, 4, 5, 5]), ("w", [8, 4, 1, 1])],
        ["y"],
        inits,
    )
    g, n = run_pass(m, fusion.fold_batch_norm)
    assert n == 0


@pytest.mark.parametrize("producer", ["gemm", "gemm_transB", "matmul"])
def test_batchnorm_folds_into_gemm_and_matmul(producer, tmp_path):
    bn, inits = _bn("bn", "h", "y", 6)
    if producer == "matmul":
        first = helper.make_node("MatMul", ["x", "w"], ["h"], name="mm")
        inits += [_w("w", 5, 6)]
    else:
        t = producer == "gemm_transB"
        first = helper.make_node("Gemm", ["x", "w", "c"], ["h"], name="gemm", transB=int(t), beta=0.5)
        inits += [_w("w", *((6, 5) if t else (5, 6))), _w("c", 6)]
    m = _model([first, bn], [("x", [3, 5])], ["y"], inits)
    g, n = run_pass(m, fusion.fold_batch_norm)
    assert n == 1 and ops(g) == ["Gemm"]
    check_equivalent(m, g, tmp_path)


def test_bias_add_into_conv_and_gemm(tmp_path):
    inits = [
        _w("w", 6, 3, 3, 3),
        _w("b", 6),
        numpy_helper.from_array(rng.standard_normal((6, 1, 1)).astype(np.float32), "c"),
        _w("gw", 6 * 7 * 7, 4),
        _w("gc", 4),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["conv"], name="conv"),
        helper.make_node("Add", ["c", "conv"], ["a"], name="add"),
        helper.make_node("Flatten", ["a"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "gw"], ["g"], name="gemm"),
        helper.make_node("Add", ["g", "gc"], ["y"], name="gadd"),
    ]
    m = _model(nodes, [("x", [1, 3, 9, 9])], ["y"], inits)
    g, n = run_pass(m, fusion.fuse_bias_add)
    assert n == 2 and ops(g) == ["Conv", "Flatten", "Gemm"]
    check_equivalent(m, g, tmp_path)


def test_bias_add_not_fused_when_it_varies_spatially():
    inits = [_w("w", 6, 3, 1, 1), _w("c", 6, 5, 1)]
    m = _model(
        [
            helper.make_node("Conv", ["x", "w"], ["conv"], name="conv"),
            helper.make_node("Add", ["conv", "c"], ["y"], name="add"),
        ],
        [("x", [1, 3, 5, 5])],
        ["y"],
        inits,
    )
    g, n = run_pass(m, fusion.fuse_bias_add)
    assert n == 0


def test_pad_into_conv_and_pools(tmp_path):
    pads = numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64), "p")
    ones = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 0, 1], np.int64), "p1")
    ninf = numpy_helper.from_array(np.array(-np.inf, np.float32), "ninf")
    nodes = [
        helper.make_node("Pad", ["x", "p"], ["px"], name="pad"),
        helper.make_node("Conv", ["px", "w"], ["c"], name="conv", pads=[1, 0, 0, 1]),
        helper.make_node("Pad", ["c", "p"], ["pc"], name="pad2"),
        helper.make_node("AveragePool", ["pc"], ["a"], name="avg", kernel_shape=[3, 3]),
        helper.make_node("Pad", ["a", "p1", "ninf"], ["pa"], name="pad3"),
        helper.make_node("MaxPool", ["pa"], ["y"], name="max", kernel_shape=[2, 2]),
    ]
    m = _model(nodes, [("x", [1, 2, 8, 8])], ["y"], [pads, ones, ninf, _w("w", 3, 2, 3, 3)])
    g, n = run_pass(m, fusion.fuse_pad)
    assert n == 3 and ops(g) == ["Conv", "AveragePool", "MaxPool"]
    assert g.nodes[0].attrs["pads"] == [2, 2, 2, 2]
    check_equivalent(m, g, tmp_path, levels=(2,))


def test_pad_not_fused_into_maxpool_with_zero_value_or_reflect():
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "p")
    nodes = [
        helper.make_node("Pad", ["x", "p"], ["px"], name="pad"),
        helper.make_node("MaxPool", ["px"], ["m"], name="max", kernel_shape=[2, 2]),
        helper.make_node("Pad", ["m", "p"], ["pm"], name="refl", mode="reflect"),
        helper.make_node("Conv", ["pm", "w"], ["y"], name="conv"),
    ]
    m = _model(nodes, [("x", [1, 2, 6, 6])], ["y"], [pads, _w("w", 2, 2, 3, 3)])
    g, n = run_pass(m, fusion.fuse_pad)
    assert n == 0
    # a -inf pad as large as the window cannot move into it (pool pads must be smaller than the kernel)
    big = numpy_helper.from_array(np.array([0, 0, 2, 2, 0, 0, 2, 2], np.int64), "p")
    ninf = numpy_helper.from_array(np.array(-np.inf, np.float32), "ninf")
    nodes = [
        helper.make_node("Pad", ["x", "p", "ninf"], ["px"], name="pad"),
        helper.make_node("MaxPool", ["px"], ["y"], name="max", kernel_shape=[2, 2]),
    ]
    g, n = run_pass(_model(nodes, [("x", [1, 2, 6, 6])], ["y"], [big, ninf]), fusion.fuse_pad)
    assert n == 0


def test_matmul_add_and_transpose_into_gemm(tmp_path):
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], name="t", perm=[1, 0]),
        helper.make_node("MatMul", ["xt", "w"], ["mm"], name="mm"),
        helper.make_node("Add", ["mm", "b"], ["y"], name="add"),
    ]
    m = _model(nodes, [("x", [5, 3])], ["y"], [_w("w", 5, 7), _w("b", 7)])
    _, g = import_model(m)
    assert fusion.matmul_add_to_gemm(g) == 1
    assert fusion.transpose_into_gemm(g) == 1
    assert ops(g) == ["Gemm"] and g.nodes[0].attrs["transA"] == 1
    check_equivalent(m, g, tmp_path)


def test_matmul_add_not_fused_for_batched_or_shared_output():
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["mm"], name="mm"),
        helper.make_node("Add", ["mm", "b"], ["y"], name="a"),
        helper.make_node("Relu", ["mm"], ["y2"], name="r"),
    ]
    m = _model(nodes, [("x", [5, 3])], ["y", "y2"], [_w("w", 3, 7), _w("b", 7)])
    assert run_pass(m, fusion.matmul_add_to_gemm)[1] == 0
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["mm"], name="mm"),
        helper.make_node("Add", ["mm", "b"], ["y"], name="a"),
    ]
    m = _model(nodes, [("x", [2, 5, 3])], ["y"], [_w("w", 3, 7), _w("b", 7)])
    assert run_pass(m, fusion.matmul_add_to_gemm)[1] == 0


def test_merge_transposes_reshapes_concats(tmp_path):
    shape = numpy_helper.from_array(np.array([2, 12], np.int64), "s")
    axes = numpy_helper.from_array(np.array([0], np.int64), "ax")
    nodes = [
        helper.make_node("Transpose", ["x"], ["t1"], name="t1", perm=[2, 0, 1]),
        helper.make_node("Transpose", ["t1"], ["t2"], name="t2", perm=[1, 2, 0]),  # composes to identity
        helper.make_node("Transpose", ["t2"], ["t3"], name="t3", perm=[0, 2, 1]),
        helper.make_node("Transpose", ["t3"], ["t4"], name="t4", perm=[1, 0, 2]),
        helper.make_node("Reshape", ["t4", "s"], ["r1"], name="r1"),
        helper.make_node("Unsqueeze", ["r1", "ax"], ["r2"], name="r2"),
        helper.make_node("Flatten", ["r2"], ["r3"], name="r3", axis=2),
        helper.make_node("Concat", ["r3", "r3"], ["c1"], name="c1", axis=1),
        helper.make_node("Concat", ["c1", "k"], ["y"], name="c2", axis=1),
    ]
    m = _model(nodes, [("x", [2, 3, 4])], [("y", [2, 27])], [shape, axes, _w("k", 2, 3)])
    _, g = import_model(m)
    assert fusion.merge_transposes(g) == 3
    assert fusion.merge_reshapes(g) == 2
    assert fusion.merge_concats(g) == 1
    optimize(g, 2)
    assert ops(g) == ["Transpose", "Reshape", "Concat"]
    check_equivalent(m, g, tmp_path)


@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_activation_fused_into_conv_and_gemm(act, tmp_path):
    def activation(x, y, name):
        if act == "SiLU":
            return [
                helper.make_node("Sigmoid", [x], [f"{name}.s"], name=f"{name}.sig"),
                helper.make_node("Mul", [x, f"{name}.s"], [y], name=f"{name}.mul"),
            ]
        extra = {"LeakyRelu": {"alpha": 0.2}, "HardSigmoid": {"alpha": 0.3, "beta": 0.4}}.get(act, {})
        inputs = [x, "lo", "hi"] if act == "Clip" else [x]
        return [helper.make_node(act, inputs, [y], name=name, **extra)]

    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        *activation("c", "a", "act1"),
        helper.make_node("Flatten", ["a"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "gw", "gb"], ["g"], name="gemm", transB=1),
        *activation("g", "y", "act2"),
    ]
    inits = [
        _w("w", 4, 3, 3, 3),
        _w("b", 4),
        _w("gw", 10, 4 * 6 * 6),
        _w("gb", 10),
        numpy_helper.from_array(np.array(-0.5, np.float32), "lo"),
        numpy_helper.from_array(np.array(0.7, np.float32), "hi"),
    ]
    m = _model(nodes, [("x", [2, 3, 6, 6])], ["y"], inits, opset=14)  # HardSwish exists from opset 14
    g, n = run_pass(m, fusion.fuse_activation)
    assert n == 2 and ops(g) == ["FusedConv", "Flatten", "FusedGemm"]
    assert g.nodes[0].attrs["activation"] == act
    check_equivalent(m, g, tmp_path)


def test_activation_not_fused_when_conv_output_is_shared_or_a_graph_output():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"), helper.make_node("Relu", ["c"], ["y"], name="r")]
    m = _model(nodes, [("x", [1, 2, 4, 4])], ["y", "c"], [_w("w", 2, 2, 1, 1)])
    assert run_pass(m, fusion.fuse_activation)[1] == 0
    nodes.append(helper.make_node("Sigmoid", ["c"], ["y2"], name="s"))
    m = _model(nodes, [("x", [1, 2, 4, 4])], ["y", "y2"], [_w("w", 2, 2, 1, 1)])
    assert run_pass(m, fusion.fuse_activation)[1] == 0


def test_residual_add_relu_fused(tmp_path):
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["h"], name="c1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h"], ["hr"], name="r1"),
        helper.make_node("Conv", ["hr", "w2"], ["c2"], name="c2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["x", "c2"], ["s"], name="add"),
        helper.make_node("Relu", ["s"], ["y"], name="r2"),
    ]
    m = _model(nodes, [("x", [1, 4, 7, 7])], ["y"], [_w("w1", 4, 4, 3, 3), _w("w2", 4, 4, 3, 3)])
    _, g = import_model(m)
    optimize(g, 2)
    assert ops(g) == ["FusedConv", "FusedConv"]
    second = g.nodes[1]
    assert second.inputs[3] == "x" and second.attrs["activation"] == "Relu"
    check_equivalent(m, g, tmp_path)


def test_residual_not_fused_after_activation_or_with_broadcast():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="c"),
        helper.make_node("Relu", ["c"], ["r"], name="r"),
        helper.make_node("Add", ["r", "x"], ["y"], name="add"),
    ]
    m = _model(nodes, [("x", [1, 4, 5, 5])], ["y"], [_w("w", 4, 4, 1, 1)])
    _, g = import_model(m)
    optimize(g, 2)
    assert ops(g) == ["FusedConv", "Add"]  # Relu fused, the Add after it cannot be
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="c"),
        helper.make_node("Add", ["c", "z"], ["y"], name="add"),
    ]
    m = _model(nodes, [("x", [1, 4, 5, 5]), ("z", [1, 4, 1, 5])], ["y"], [_w("w", 4, 4, 1, 1)])
    assert run_pass(m, fusion.fuse_residual)[1] == 0


# ---- whole models --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mobilenetv2", "resnet18"])
def test_model_report_shows_rewrites(name, tmp_path):
    model = zoo.BUILDERS[name]()
    result = package(model, tmp_path / name)
    report = result.report
    assert report.before.op_counts["BatchNormalization"] > 0
    assert "BatchNormalization" not in report.after.op_counts
    for act in ("Relu", "Clip", "Add"):
        assert act not in report.after.op_counts, report.after.op_counts
    assert report.after.nodes < report.before.nodes / 2
    assert report.after.arena_bytes and report.before.arena_bytes
    assert {"fold_batch_norm", "fuse_activation"} <= {p.name for p in report.passes}
    assert (tmp_path / name / "optimization.json").is_file()
    feeds = random_inputs(HostSession(result.out_dir).inputs, seed=2)
    ref = reference_outputs(model, feeds)
    for variant in ("simd", "relaxed"):
        for e in compare(HostSession(result.out_dir, variant).run(feeds), ref):
            assert e.ok(1e-5), (variant, e)
