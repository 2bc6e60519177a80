"""ONNX import: validation errors a user sees at package time, attribute defaults, input shapes, folding."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from wasm_runtime import onnx_io
from wasm_runtime.errors import PackageError
from wasm_runtime.fold import fold_constants
from wasm_runtime.package import import_model, package


def _model(nodes, inputs, outputs, initializers=(), opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def test_unsupported_ops_listed_together_with_first_node(tmp_path):
    # signal-processing ops nobody plans to support; STFT used twice, listed once with its first node
    window = [numpy_helper.from_array(np.array(v, np.int64), name) for name, v in (("step", 4), ("n", 8))]
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="ok"),
        helper.make_node("STFT", ["a", "step", "", "n"], ["b"], name="stft_first"),
        helper.make_node("STFT", ["a", "step", "", "n"], ["c"], name="stft_second"),
        helper.make_node("DFT", ["a"], ["d"], name="dft_node"),
    ]
    outputs = [_f32("b", [1, 3, 5, 2]), _f32("c", [1, 3, 5, 2]), _f32("d", [1, 16, 2])]
    model = _model(nodes, [_f32("x", [1, 16, 1])], outputs, window, opset=17)
    with pytest.raises(PackageError) as err:
        package(model, tmp_path / "out")
    msg = str(err.value)
    assert "2 op type(s)" in msg
    assert "STFT (first used by node 'stft_first')" in msg
    assert "DFT (first used by node 'dft_node')" in msg
    assert "stft_second" not in msg


def test_custom_domain_op_is_unsupported():
    node = helper.make_node("Gelu", ["x"], ["y"], name="g", domain="com.microsoft")
    model = _model([node], [_f32("x", [2])], [_f32("y", [2])])
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(PackageError, match=r"com\.microsoft\.Gelu \(first used by node 'g'\)"):
        import_model(model)


@pytest.mark.parametrize("payload", [b"", b"not a protobuf at all \xff\xfe", b"\x08\x07\x12\x03abc\x3a\xff\xff\xff"])
def test_malformed_bytes_give_clear_error(tmp_path, payload):
    path = tmp_path / "bad.onnx"
    path.write_bytes(payload)
    with pytest.raises(PackageError, match="not a valid ONNX model"):
        import_model(path)


def test_truncated_model_file(tmp_path):
    model = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [_f32("x", [1, 3])], [_f32("y", [1, 3])],
                   [numpy_helper.from_array(np.ones((256, 256), np.float32), "unused")])
    data = model.SerializeToString()
    path = tmp_path / "trunc.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PackageError, match="not a valid ONNX model"):
        import_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(PackageError, match="no such model file"):
        import_model(tmp_path / "nope.onnx")


def test_checker_failure_is_reported():
    # a node consuming a tensor nobody produces
    model = _model([helper.make_node("Relu", ["ghost"], ["y"], name="r")], [_f32("x", [1])], [_f32("y", [1])])
    with pytest.raises(PackageError, match="malformed"):
        import_model(model)


def test_unsupported_opset():
    model = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [_f32("x", [1])], [_f32("y", [1])], opset=5)
    with pytest.raises(PackageError, match="opset 5 is not supported"):
        import_model(model)


def test_symbolic_dim_needs_input_shape():
    model = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [_f32("x", ["batch", 3])],
                   [_f32("y", ["batch", 3])])
    with pytest.raises(PackageError, match=r"--input-shape x=N,3"):
        import_model(model)
    _, graph = import_model(model, {"x": [4, 3]})
    assert graph.shape("y") == (4, 3)


def test_input_shape_errors():
    model = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [_f32("x", ["b", 3])], [_f32("y", ["b", 3])])
    with pytest.raises(PackageError, match="model's inputs are"):
        import_model(model, {"z": [1, 3]})
    with pytest.raises(PackageError, match="rank 2"):
        import_model(model, {"x": [1, 3, 5]})


def test_attribute_defaults_come_from_the_schema():
    node = helper.make_node("LeakyRelu", ["x"], ["y"], name="lr")
    conv = helper.make_node("Conv", ["y", "w"], ["z"], name="c")
    w = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
    _, graph = import_model(_model([node, conv], [_f32("x", [1, 3, 4, 4])], [_f32("z", [1, 2, 4, 4])], [w]))
    attrs = {n.name: n.attrs for n in graph.nodes}
    assert attrs["lr"]["alpha"] == pytest.approx(0.01)
    assert attrs["c"]["auto_pad"] == "NOTSET" and attrs["c"]["group"] == 1


def test_initializers_listed_as_inputs_are_constants():
    # IR < 4 style: the weight is both an initializer and a graph input
    w = numpy_helper.from_array(np.full((4,), 2.0, np.float32), "w")
    model = _model([helper.make_node("Mul", ["x", "w"], ["y"], name="m")], [_f32("x", [4]), _f32("w", [4])],
                   [_f32("y", [4])], [w])
    _, graph = import_model(model)
    assert graph.inputs == ["x"]
    assert graph.values["w"].is_const


def test_folding_constant_subgraphs_and_uniform_views():
    shape = numpy_helper.from_array(np.array([1000, 1000], np.int64), "shape")
    nodes = [
        helper.make_node("Constant", [], ["k"], name="k", value=numpy_helper.from_array(np.float32(3.0))),
        helper.make_node("ConstantOfShape", ["shape"], ["big"], name="cos",
                         value=numpy_helper.from_array(np.array([0.5], np.float32))),
        helper.make_node("Mul", ["k", "k"], ["k2"], name="k2"),
        helper.make_node("MatMul", ["x", "big"], ["y0"], name="mm"),
        helper.make_node("Mul", ["y0", "k2"], ["y"], name="scale"),
    ]
    model = _model(nodes, [_f32("x", [2, 1000])], [_f32("y", [2, 1000])], [shape])
    graph = onnx_io.to_graph(model)
    assert fold_constants(graph) == 3
    assert [n.name for n in graph.nodes] == ["mm", "scale"]
    big = graph.const("big")
    assert big.shape == (1000, 1000) and big.strides == (0, 0)  # not materialized
    assert graph.const("k2") == pytest.approx(9.0)


def _relu_model():
    return _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [_f32("x", [4])], [_f32("y", [4])])


def test_package_refuses_to_overwrite_a_non_bundle_directory(tmp_path):
    target = tmp_path / "precious"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(PackageError, match="holds no bundle; refusing to replace it.*--force"):
        package(_relu_model(), target)
    assert (target / "notes.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["precious"]  # no staging directory left behind


def test_a_web_app_folder_with_its_own_manifest_is_not_a_bundle(tmp_path):
    """A web app's folder: a manifest.json of its own (a PWA manifest), important.txt and src/main.js."""
    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    (app / "manifest.json").write_text('{"name": "my app", "start_url": "/"}')
    (app / "important.txt").write_text("keep me")
    (app / "src" / "main.js").write_text("console.log(1)")
    with pytest.raises(PackageError, match="holds no bundle"):
        package(_relu_model(), app)
    assert (app / "important.txt").read_text() == "keep me" and (app / "src" / "main.js").is_file()


def test_a_previous_bundle_with_other_files_is_kept_unless_forced(tmp_path):
    out = tmp_path / "b"
    package(_relu_model(), out, variants=("simd",))
    (out / "notes.txt").write_text("mine")
    with pytest.raises(PackageError, match=r"holds a bundle and other files \(notes.txt\).*--force"):
        package(_relu_model(), out, variants=("simd",))
    assert (out / "notes.txt").is_file()
    package(_relu_model(), out, variants=("simd",), force=True)
    assert not (out / "notes.txt").exists() and (out / "manifest.json").is_file()


def test_a_previous_bundle_is_replaced_and_survives_a_failed_packaging(tmp_path):
    out = tmp_path / "b"
    package(_relu_model(), out, variants=("simd",))
    before = (out / "manifest.json").read_bytes()
    bad = _model([helper.make_node("DFT", ["x"], ["y"], name="d")], [_f32("x", [1, 4, 1])], [_f32("y", [1, 4, 2])])
    with pytest.raises(PackageError, match="DFT"):
        package(bad, out, variants=("simd",))
    assert (out / "manifest.json").read_bytes() == before
    package(_relu_model(), out, variants=("simd", "relaxed"))  # a previous bundle and nothing else: replaced
    assert (out / "kernels-relaxed.wasm").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_output_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"data")
    with pytest.raises(PackageError, match="exists and is not a directory"):
        package(_relu_model(), target, force=True)
    assert target.read_bytes() == b"data"


def test_ir_round_trip_keeps_semantics():
    from wasm_runtime import zoo
    from wasm_runtime.verify import reference_outputs

    model = zoo.squeezenet1_1(image_size=64, num_classes=10)
    graph = onnx_io.to_graph(model)
    onnx_io.infer_shapes(graph)  # declared output shapes are not kept (hints only): inference gives them
    rebuilt = onnx_io.to_onnx(graph)
    onnx.checker.check_model(rebuilt)
    x = {"input": np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)}
    np.testing.assert_array_equal(reference_outputs(model, x)["logits"], reference_outputs(rebuilt, x)["logits"])


def test_plan_over_the_memory_budget_is_refused_before_writing(tmp_path):
    """x and y of [2000, 2000]: 32 MB of arena. Under a 10 MiB budget packaging stops, naming the sizes; a
    tensor over the 4 GiB a wasm memory holds (Tile to [200000, 200000]) stops at import, naming the node."""
    relu = helper.make_node("Relu", ["x"], ["y"], name="r")
    model = _model([relu], [_f32("x", [2000, 2000])], [_f32("y", [2000, 2000])])
    with pytest.raises(PackageError, match=r"needs 31 MiB of memory.*more than the 10 MiB allowed.*--max-memory"):
        package(model, tmp_path / "b", max_memory=10 << 20)
    assert not (tmp_path / "b").exists()
    tile = _model(
        [helper.make_node("Tile", ["x", "r"], ["y"], name="big_tile")],
        [_f32("x", [2, 2])],
        [_f32("y", [200000, 200000])],
        [numpy_helper.from_array(np.array([100000, 100000], np.int64), "r")],
    )
    with pytest.raises(PackageError, match=r"'big_tile' \(Tile\).*\[200000, 200000\] would take 149.0 GiB"):
        package(tile, tmp_path / "c")
