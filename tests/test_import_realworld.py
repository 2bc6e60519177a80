"""What real exporters write and the import must take (wasm_runtime/importer.py, control.py): dims declared
-1 or "?", declared shapes that are wrong, shape arithmetic that folds only after several rounds, Ifs whose
branches are untyped or change rank, run-time Ifs whose branches differ inside, and a branch that cannot run
with the packaged shapes. Each case packages and matches onnxruntime, or fails with a clear message."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from wasm_runtime.errors import PackageError
from wasm_runtime.host import HostSession
from wasm_runtime.package import package
from wasm_runtime.verify import reference_outputs


def _model(nodes, inputs, outputs, inits=(), opset=17, value_info=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits), value_info=list(value_info))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _matches(model, bundle, feeds, rtol=1e-5):
    got = HostSession(bundle).run(feeds)
    ref = reference_outputs(model, feeds)
    for name, expected in ref.items():
        assert got[name].shape == expected.shape, name
        np.testing.assert_allclose(got[name], expected, rtol=rtol, atol=1e-6, err_msg=name)


def _paddle_style(first_dim):
    """x: [first_dim, 3, "?", "?"] (paddle2onnx writes -1 and "?"), Conv + global pool + MatMul, declared output
    [-1, 2]: the two "?" are not one size, and -1 is a dim to name, not a size."""
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [first_dim, 3, "?", "?"])
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["p"]),
        helper.make_node("Reshape", ["p", "flat"], ["f"]),
        helper.make_node("MatMul", ["f", "fc"], ["y"]),
    ]
    inits = [
        _const("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
        _const("flat", np.array([-1, 4], np.int64)),
        _const("fc", rng.standard_normal((4, 2)).astype(np.float32)),
    ]
    return _model(nodes, [x], [_f32("y", [-1, 2])], inits)


@pytest.mark.parametrize("first_dim", [-1, "?", None], ids=["minus_one", "question_mark", "no_value"])
def test_unknown_dims_become_symbols_of_their_own(tmp_path, first_dim):
    model = _paddle_style(first_dim)
    if first_dim is None:
        model.graph.input[0].type.tensor_type.shape.dim[0].Clear()
    m = package(model, tmp_path / "dyn", variants=("simd",)).manifest
    assert m["dynamic"]["symbols"] == ["x_dim0", "x_dim2", "x_dim3"]  # the two "?" are independent
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 7)).astype(np.float32)
    _matches(model, tmp_path / "dyn", {"x": x})
    package(model, tmp_path / "fixed", {"x": [1, 3, 8, 6]}, variants=("simd",))
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 6)).astype(np.float32)
    _matches(model, tmp_path / "fixed", {"x": x})


def test_a_name_in_input_shape_keeps_that_dim_symbolic(tmp_path):
    model = _paddle_style(-1)
    m = package(model, tmp_path / "b", {"x": [1, 3, 8, "width"]}, variants=("simd",)).manifest
    assert m["dynamic"]["symbols"] == ["width"]
    _matches(model, tmp_path / "b", {"x": np.random.default_rng(2).standard_normal((1, 3, 8, 11)).astype(np.float32)})


def test_wrong_declared_shapes_are_hints_and_inference_wins(tmp_path):
    """A rank-2 output declared for a rank-3 result, and value_info declaring [2, 2] for a [2, 8] tensor:
    onnxruntime only warns and computes the right thing; so does the bundle, with a warning."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Unsqueeze", ["r", "axes"], ["y"]),
    ]
    model = _model(
        nodes,
        [_f32("x", [2, 8])],
        [_f32("y", [2, 8])],  # wrong: the result is [1, 2, 8]
        [_const("axes", np.array([0], np.int64))],
        value_info=[_f32("r", [2, 2])],  # wrong: r is [2, 8]
    )
    result = package(model, tmp_path / "b", variants=("simd",))
    assert result.manifest["outputs"][0]["shape"] == [1, 2, 8]
    warnings = " ".join(result.graph.metadata.get("warnings", []))
    assert "'r' as [2, 2]" in warnings and "[2, 8]" in warnings
    _matches(model, tmp_path / "b", {"x": np.random.default_rng(3).standard_normal((2, 8)).astype(np.float32)})


def test_shape_arithmetic_that_folds_only_after_inference(tmp_path):
    """No Constant nodes: the first fold removes nothing (Shape reads a tensor whose shape is not inferred yet).
    Round 2 folds Shape -> Gather -> Range length and the Reshape target built from it; round 3 infers the
    rest. A YOLO head's anchors and a recognizer's flatten are made like this."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shape", ["r"], ["s"]),
        helper.make_node("Gather", ["s", "i2"], ["w"], axis=0),  # scalar: the width
        helper.make_node("Range", ["zero", "w", "one"], ["grid"]),  # [W]
        helper.make_node("Cast", ["grid"], ["gridf"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["r", "gridf"], ["a"]),  # [N, C, W] + [W]
        helper.make_node("Gather", ["s", "i01"], ["nc"], axis=0),
        helper.make_node("Concat", ["nc", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["a", "target"], ["y"]),
    ]
    inits = [
        _const("i2", np.array(2, np.int64)),
        _const("i01", np.array([0], np.int64)),
        _const("zero", np.array(0, np.int64)),
        _const("one", np.array(1, np.int64)),
        _const("minus1", np.array([-1], np.int64)),
    ]
    model = _model(nodes, [_f32("x", [2, 3, 5])], [_f32("y", [2, 15])], inits)
    package(model, tmp_path / "b", variants=("simd",))
    _matches(model, tmp_path / "b", {"x": np.random.default_rng(4).standard_normal((2, 3, 5)).astype(np.float32)})


def _branch(name, nodes, outs, inits=(), typed=True):
    info = [_f32(o, None) if typed else helper.make_empty_tensor_value_info(o) for o in outs]
    return helper.make_graph(nodes, name, [], info, list(inits))


def test_if_on_a_shape_with_untyped_and_rank_changing_branches(tmp_path):
    """silero-vad's decoder: `if x.shape[-1] == 1: squeeze it, else: keep it`, branch outputs with no type.
    The condition folds from the input shape before strict inference sees the branch not taken (whose rank
    differs), and only the branch taken is planned."""
    then = _branch("then", [helper.make_node("Squeeze", ["x", "last"], ["t"])], ["t"], typed=False)
    other = _branch("else", [helper.make_node("Identity", ["x"], ["e"])], ["e"], typed=False)
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "minus1"], ["n"], axis=0),
        helper.make_node("Equal", ["n", "one"], ["c"]),
        helper.make_node("If", ["c"], ["v"], name="squeeze_if", then_branch=then, else_branch=other),
        helper.make_node("MatMul", ["v", "w"], ["y"]),  # needs rank 2: only the squeezed branch fits
    ]
    inits = [
        _const("minus1", np.array(-1, np.int64)),
        _const("one", np.array(1, np.int64)),
        _const("last", np.array([-1], np.int64)),
        _const("w", np.random.default_rng(5).standard_normal((6, 4)).astype(np.float32)),
    ]
    model = _model(nodes, [_f32("x", [3, 6, 1])], [_f32("y", ["a", "b"])], inits)
    m = package(model, tmp_path / "b", variants=("simd",)).manifest
    assert "If" not in m["stats"]["op_counts"]
    _matches(model, tmp_path / "b", {"x": np.random.default_rng(6).standard_normal((3, 6, 1)).astype(np.float32)})


def _runtime_if_model(else_valid_below: int | None = None):
    """y, state = If(sr == 16000, then: a 16 kHz path, else: an 8 kHz one), on an input of `samples` samples:
    the branches hold different weights and convolutions (different intermediate shapes) but give outputs of
    one shape, like silero-vad. With `else_valid_below`, the else branch reshapes to a size only inputs
    shorter than that have, so it cannot run at the packaged size."""
    rng = np.random.default_rng(7)

    def path(tag, taps, stride, reshape=None):
        nodes = [
            helper.make_node("Conv", ["audio3", f"{tag}_w"], [f"{tag}_c"], strides=[stride]),
            helper.make_node("ReduceMean", [f"{tag}_c"], [f"{tag}_m"], axes=[2], keepdims=0),  # [1, 4]
            helper.make_node("Add", [f"{tag}_m", "state"], [f"{tag}_y"]),
        ]
        if reshape is not None:
            nodes.insert(0, helper.make_node("Reshape", ["audio3", f"{tag}_shape"], [f"{tag}_bad"]))
            nodes[-1] = helper.make_node("Add", [f"{tag}_m", f"{tag}_bad_m"], [f"{tag}_y"])
            nodes.insert(1, helper.make_node("ReduceMean", [f"{tag}_bad"], [f"{tag}_bad_m"], axes=[2], keepdims=0))
        inits = [_const(f"{tag}_w", rng.standard_normal((4, 1, taps)).astype(np.float32))]
        if reshape is not None:
            inits.append(_const(f"{tag}_shape", np.array(reshape, np.int64)))
        return _branch(tag, nodes, [f"{tag}_y"], inits)

    then = path("k16", 16, 8)
    other = path("k8", 8, 4, reshape=[1, 4, else_valid_below // 4] if else_valid_below else None)
    nodes = [
        helper.make_node("Unsqueeze", ["audio", "axis1"], ["audio3"]),
        helper.make_node("Equal", ["sr", "sr16k"], ["is16k"]),
        helper.make_node("If", ["is16k"], ["y"], name="rate_if", then_branch=then, else_branch=other),
    ]
    inits = [_const("axis1", np.array([1], np.int64)), _const("sr16k", np.array(16000, np.int64))]
    inputs = [
        _f32("audio", [1, 64]),
        helper.make_tensor_value_info("sr", TensorProto.INT64, []),
        _f32("state", [1, 4]),
    ]
    return _model(nodes, inputs, [_f32("y", [1, 4])], inits)


def test_runtime_if_runs_the_branch_the_condition_picks(tmp_path):
    model = _runtime_if_model()
    m = package(model, tmp_path / "b", variants=("simd",)).manifest
    guarded = [s for s in m["steps"] if "when" in s]
    assert guarded and {w[0][1] for w in (s["when"] for s in guarded)} == {0, 1}
    rng = np.random.default_rng(8)
    session = HostSession(tmp_path / "b")
    for sr in (16000, 8000, 16000):
        feeds = {
            "audio": rng.standard_normal((1, 64)).astype(np.float32),
            "sr": np.array(sr, np.int64),
            "state": rng.standard_normal((1, 4)).astype(np.float32),
        }
        ref = reference_outputs(model, feeds)["y"]
        np.testing.assert_allclose(session.run(feeds)["y"], ref, rtol=1e-5, atol=1e-6, err_msg=str(sr))


def test_runtime_if_branch_that_cannot_run_stops_with_its_reason(tmp_path):
    """The 8 kHz branch reshapes 64 samples to [1, 4, 8] (32 elements): invalid at this size, as onnxruntime
    finds when a run takes it. The bundle plans the 16 kHz branch, warns at package time, and a run that takes
    the other one stops with a message naming the If and the reason."""
    model = _runtime_if_model(else_valid_below=32)
    result = package(model, tmp_path / "b", variants=("simd",))
    assert any("rate_if" in w and "else branch cannot run" in w for w in result.graph.metadata["warnings"])
    rng = np.random.default_rng(9)
    feeds = {"audio": rng.standard_normal((1, 64)).astype(np.float32), "state": np.zeros((1, 4), np.float32)}
    session = HostSession(tmp_path / "b")
    got = session.run({**feeds, "sr": np.array(16000, np.int64)})["y"]
    np.testing.assert_allclose(got, reference_outputs(model, {**feeds, "sr": np.array(16000)})["y"], rtol=1e-5)
    with pytest.raises(RuntimeError, match=r"'rate_if' \(If\): the condition took the else branch, which cannot run"):
        session.run({**feeds, "sr": np.array(8000, np.int64)})


def test_runtime_if_with_outputs_of_different_shapes_is_refused(tmp_path):
    then = _branch("then", [helper.make_node("ReduceSum", ["x"], ["t"], keepdims=1)], ["t"])
    other = _branch("else", [helper.make_node("Relu", ["x"], ["e"])], ["e"])
    node = helper.make_node("If", ["c"], ["y"], name="shape_if", then_branch=then, else_branch=other)
    model = _model(
        [node], [_f32("x", [2, 3]), helper.make_tensor_value_info("c", TensorProto.BOOL, [])], [_f32("y", ["a", "b"])]
    )
    with pytest.raises(PackageError, match=r"shape_if.*different outputs.*\[1, 1\].*\[2, 3\].*run time"):
        package(model, tmp_path / "b")


RUN_JS = """async ({ url, cases, backend }) => {
  const { InferenceSession, Tensor } = await import("/runtime/index.js");
  const session = await InferenceSession.create(url, { numThreads: 1, backend: backend ?? "wasm" });
  const out = [];
  for (const c of cases) {
    const feeds = {};
    for (const [name, [type, data, dims]] of Object.entries(c)) {
      const Ctor = type === "int64" ? BigInt64Array : Float32Array;
      feeds[name] = new Tensor(type, type === "int64" ? Ctor.from(data, BigInt) : Ctor.from(data), dims);
    }
    try {
      const r = await session.run(feeds);
      out.push(Object.fromEntries(Object.entries(r).map(([k, t]) => [k, { dims: t.dims, data: Array.from(t.data) }])));
    } catch (err) {
      out.push({ error: err.message });
    }
  }
  await session.release();
  return out;
}"""


def _js_case(feeds):
    return {k: [v.dtype.name, v.reshape(-1).tolist(), list(v.shape)] for k, v in feeds.items()}


@pytest.mark.browser
def test_chromium_runs_runtime_ifs_and_checks_dynamic_sizes(page, tmp_path):
    """The browser executor skips the steps of the branch not taken, stops with the packager's message on a
    branch that cannot run, and takes only the sizes a dynamic bundle's domain allows."""
    from server.app import create_app, serving_in_background

    rif = _runtime_if_model(else_valid_below=32)
    package(rif, tmp_path / "rif")
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    conv = _model(
        [helper.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1])],
        [_f32("x", [1, 3, "h", "w_"])],
        [_f32("y", [1, 4, "oh", "ow"])],
        [w],
    )
    package(conv, tmp_path / "conv")
    rng = np.random.default_rng(10)
    base = {"audio": rng.standard_normal((1, 64)).astype(np.float32)}
    base["state"] = rng.standard_normal((1, 4)).astype(np.float32)
    if_feeds = [{**base, "sr": np.array(sr, np.int64)} for sr in (16000, 8000)]
    conv_feeds = [{"x": rng.standard_normal((1, 3, h, w_)).astype(np.float32)} for h, w_ in ((6, 10), (32, 4), (5, 4))]
    with serving_in_background(create_app(tmp_path), "rif-server") as url:
        page.goto(f"{url}/demos/?model=")
        page.wait_for_selector("body[data-state=idle]")
        got_if = page.evaluate(RUN_JS, {"url": "/models/rif/", "cases": [_js_case(f) for f in if_feeds]})
        got_conv = page.evaluate(RUN_JS, {"url": "/models/conv/", "cases": [_js_case(f) for f in conv_feeds]})
    ref = reference_outputs(rif, if_feeds[0])["y"]
    np.testing.assert_allclose(np.asarray(got_if[0]["y"]["data"]).reshape(ref.shape), ref, rtol=1e-5, atol=1e-6)
    assert "'rate_if' (If): the condition took the else branch, which cannot run" in got_if[1]["error"]
    for feeds, got in zip(conv_feeds[:2], got_conv[:2], strict=True):
        ref = reference_outputs(conv, feeds)["y"]
        assert got["y"]["dims"] == list(ref.shape)
        np.testing.assert_allclose(np.asarray(got["y"]["data"]).reshape(ref.shape), ref, rtol=1e-5, atol=1e-5)
    assert "dim 2 ('h') must be a multiple of 2 and at least 2, got 5" in got_conv[2]["error"]


@pytest.mark.browser
def test_chromium_runs_a_runtime_if_between_gpu_segments(page, tmp_path):
    """A mixed WebGL plan: Relu on the GPU, the run-time If (and its condition) on wasm between GPU segments,
    Sigmoid on the GPU again; both values of the condition match onnxruntime."""
    from server.app import create_app, serving_in_background

    model = _runtime_if_model()
    g = model.graph
    next(n for n in g.node if n.op_type == "Unsqueeze").input[0] = "audio_r"
    g.node.insert(0, helper.make_node("Relu", ["audio"], ["audio_r"], name="pre_relu"))
    g.node[-1].output[0] = "y_pre"
    g.node.append(helper.make_node("Sigmoid", ["y_pre"], ["y"], name="post_sig"))
    m = package(model, tmp_path / "mixed", backend="webgl").manifest
    assert m["webgl"]["placement"] == {
        "pre_relu": "webgl", "Unsqueeze_1": "webgl", "Equal_2": "wasm", "rate_if": "wasm", "post_sig": "webgl"
    }
    rng = np.random.default_rng(11)
    base = {"audio": rng.standard_normal((1, 64)).astype(np.float32)}
    base["state"] = rng.standard_normal((1, 4)).astype(np.float32)
    feeds = [{**base, "sr": np.array(sr, np.int64)} for sr in (16000, 8000)]
    with serving_in_background(create_app(tmp_path), "mixed-if-server") as url:
        page.goto(f"{url}/demos/?model=")
        page.wait_for_selector("body[data-state=idle]")
        cases = [_js_case(f) for f in feeds]
        got = page.evaluate(RUN_JS, {"url": "/models/mixed/", "cases": cases, "backend": "webgl"})
    for f, r in zip(feeds, got, strict=True):
        ref = reference_outputs(model, f)["y"]
        assert "error" not in r, r
        np.testing.assert_allclose(np.asarray(r["y"]["data"]).reshape(ref.shape), ref, rtol=1e-5, atol=1e-6)
