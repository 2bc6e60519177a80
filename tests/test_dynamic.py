"""Dynamic shapes (wasm_runtime/dynamic.py): one bundle, any value of the symbolic input dims, on the host
and in Chromium, against onnxruntime; and clear failures where no single plan exists."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from wasm_runtime import dynamic
from wasm_runtime.errors import PackageError
from wasm_runtime.host import HostSession
from wasm_runtime.package import package
from wasm_runtime.verify import reference_outputs

SHAPES = [(1, 1), (2, 3), (1, 50), (4, 7), (3, 64)]


def max_rel(got, ref) -> float:
    return float(np.abs(got - ref).max() / np.abs(ref).max())


def attention_like():
    """x[batch, seq, 16] -> MatMul+bias -> Relu -> transpose -> Softmax over seq, plus a seq x seq product
    (sizes quadratic in seq) and a broadcast residual: the shapes a transformer layer has."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((16, 24)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.standard_normal((24,)).astype(np.float32), "B"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Add", ["h", "B"], ["h2"]),
        helper.make_node("Relu", ["h2"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Softmax", ["t"], ["y"], axis=-1),
        helper.make_node("MatMul", ["r", "t"], ["scores"]),  # [batch, seq, seq]
        helper.make_node("Softmax", ["scores"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "r"], ["ctx"]),  # [batch, seq, 24]
        helper.make_node("Add", ["ctx", "h2"], ["z"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 16])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 24, "seq"]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", "seq", 24]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.fixture(scope="module")
def dyn_bundle(tmp_path_factory):
    model = attention_like()
    out = tmp_path_factory.mktemp("dyn") / "attn"
    result = package(model, out, variants=("simd", "relaxed", "simd-mt", "relaxed-mt"))
    return model, out, result.manifest


def test_manifest_keeps_symbols(dyn_bundle):
    _, _, m = dyn_bundle
    assert m["dynamic"]["symbols"] == ["batch", "seq"]
    assert m["dynamic"]["bind"] == {"batch": ["x", 0], "seq": ["x", 1]}
    # the scores tensor is 4 * batch * seq^2 bytes: a formula of degree 2 in seq
    assert any(isinstance(a["size"], list) and any(t[2] == 2 for t in a["size"]) for a in m["dynamic"]["arena"])


@pytest.mark.parametrize("threads", [1, 3])
def test_host_runs_any_shape_from_one_bundle(dyn_bundle, threads):
    model, out, _ = dyn_bundle
    session = HostSession(out, "simd", threads=threads)
    rng = np.random.default_rng(1)
    for batch, seq in SHAPES + SHAPES[:2]:  # repeated shapes reuse the cached plan
        x = rng.standard_normal((batch, seq, 16)).astype(np.float32)
        ref = reference_outputs(model, {"x": x})
        got = session.run({"x": x})
        for name in ("y", "z"):
            assert got[name].shape == ref[name].shape
            assert max_rel(got[name], ref[name]) <= 1e-5, f"{name} {batch}x{seq}"
    assert len(session._plans) == len(SHAPES)


def test_host_rejects_inconsistent_shapes(dyn_bundle):
    _, out, _ = dyn_bundle
    session = HostSession(out, "simd")
    with pytest.raises(ValueError, match="'x'.*must be"):
        session.run({"x": np.zeros((2, 3, 15), np.float32)})


def _model(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_strided_conv_takes_multiples_of_its_stride(tmp_path):
    """A strided conv's output size is a floor division of the symbolic size: a polynomial only on multiples
    of the stride. The bundle takes those (from the smallest that gives a non-empty output), matches
    onnxruntime at each, and rejects other sizes with a message that says which ones it takes."""
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="the_strided_conv", strides=[2, 3], pads=[1, 1, 1, 1])
    model = _model(
        [node],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w_"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, "oh", "ow"])],
        [w],
    )
    m = package(model, tmp_path / "b", variants=("simd",)).manifest
    assert m["dynamic"]["domain"] == {"h": {"step": 2, "min": 2}, "w_": {"step": 3, "min": 3}}
    session = HostSession(tmp_path / "b")
    for h, w_ in [(2, 3), (4, 9), (10, 3), (34, 66)]:
        x = np.random.default_rng(h).standard_normal((1, 3, h, w_)).astype(np.float32)
        ref = reference_outputs(model, {"x": x})["y"]
        got = session.run({"x": x})["y"]
        assert got.shape == ref.shape
        assert max_rel(got, ref) <= 1e-5, (h, w_)
    with pytest.raises(ValueError, match=r"'x' dim 2 \('h'\) must be a multiple of 2 and at least 2, got 5"):
        session.run({"x": np.zeros((1, 3, 5, 6), np.float32)})


def test_audio_front_end_minimum_and_step(tmp_path):
    """STFT-like front end: reflect Pad (onnxruntime needs more samples than the pad) + a 64-tap Conv1d with hop
    16 + magnitude + a stride-2 conv. Frames are floor((L + 32 - 64) / 16) + 1: the bundle takes multiples of
    32 (both strides) from the first size that gives a frame after the second conv, and is exact there."""
    rng = np.random.default_rng(3)
    basis = numpy_helper.from_array(rng.standard_normal((8, 1, 64)).astype(np.float32), "basis")
    w2 = numpy_helper.from_array(rng.standard_normal((4, 8, 3)).astype(np.float32), "w2")
    pads = numpy_helper.from_array(np.array([0, 0, 32, 0, 0, 0], np.int64), "pads")
    nodes = [
        helper.make_node("Unsqueeze", ["audio", "one"], ["a3"]),
        helper.make_node("Pad", ["a3", "pads"], ["padded"], mode="reflect", name="the_pad"),
        helper.make_node("Conv", ["padded", "basis"], ["spec"], strides=[16], name="the_stft"),
        helper.make_node("Mul", ["spec", "spec"], ["power"]),
        helper.make_node("Conv", ["power", "w2"], ["y"], strides=[2], pads=[1, 1]),
    ]
    model = _model(
        nodes,
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", "samples"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, "frames"])],
        [basis, w2, pads, numpy_helper.from_array(np.array([1], np.int64), "one")],
    )
    m = package(model, tmp_path / "b", variants=("simd",)).manifest
    domain = m["dynamic"]["domain"]
    assert domain["batch"] == {"step": 1, "min": 1}
    assert domain["samples"]["step"] == 32 and domain["samples"]["min"] == 64, domain
    session = HostSession(tmp_path / "b")
    for batch, samples in [(1, 64), (2, 96), (1, 512), (3, 1600)]:
        x = rng.standard_normal((batch, samples)).astype(np.float32)
        ref = reference_outputs(model, {"audio": x})["y"]
        got = session.run({"audio": x})["y"]
        assert got.shape == ref.shape, (batch, samples)
        assert max_rel(got, ref) <= 1e-5, (batch, samples)
    with pytest.raises(ValueError, match=r"multiple of 32 and at least 64, got 32"):
        session.run({"audio": np.zeros((1, 32), np.float32)})


def test_dim_that_cannot_stay_symbolic_is_refused_with_a_valid_shape(tmp_path):
    """A model whose flatten feeds fixed-size weights runs at one height only: no step makes its shapes a
    polynomial, so packaging refuses, names the dim, and suggests an --input-shape that fixes that dim alone at
    a size that works (never -1), keeping the other symbolic; that suggestion then packages."""
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    fc = numpy_helper.from_array(np.ones((4 * 8, 5), np.float32), "fc")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("ReduceMean", ["c"], ["r"], axes=[3], keepdims=0),  # [n, 4, h]
        helper.make_node("Reshape", ["r", "shape"], ["flat"]),  # [n, 4 * h]: a matmul with 32 rows needs h = 8
        helper.make_node("MatMul", ["flat", "fc"], ["y"]),
    ]
    model = _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w_"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])],
        [
            w,
            fc,
            numpy_helper.from_array(np.array([0, -1], np.int64), "shape"),
        ],
    )
    refusal = r"'h' \(input 'x' dim 2\) cannot stay symbolic.*--input-shape x=n,3,8,w_"
    with pytest.raises(PackageError, match=refusal) as e:
        package(model, tmp_path / "b")
    assert "-1" not in str(e.value)
    m = package(model, tmp_path / "c", {"x": ["n", 3, 8, "w_"]}, variants=("simd",)).manifest
    assert m["dynamic"]["symbols"] == ["n", "w_"]
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 5)).astype(np.float32)
    np.testing.assert_allclose(
        HostSession(tmp_path / "c").run({"x": x})["y"], reference_outputs(model, {"x": x})["y"], rtol=1e-5
    )


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_recurrent_with_state_inputs_over_a_symbolic_sequence(tmp_path, op):
    """An LSTM/GRU over [seq, batch, 8] with initial state inputs and state outputs (a streaming VAD or
    keyword model): one Scratch serves every time step, which the dynamic manifest once looked up by the
    last step that used it (KeyError: ('scratch', i, j))."""
    rng = np.random.default_rng(4)
    gates, hidden = (4 if op == "LSTM" else 3), 6
    inits = [
        numpy_helper.from_array(rng.standard_normal((1, gates * hidden, 8)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.standard_normal((1, gates * hidden, hidden)).astype(np.float32), "R"),
        numpy_helper.from_array(rng.standard_normal((1, 2 * gates * hidden)).astype(np.float32), "B"),
    ]
    state = ["h0", "c0"] if op == "LSTM" else ["h0"]
    outs = ["y", "hn", "cn"] if op == "LSTM" else ["y", "hn"]
    node = helper.make_node(op, ["x", "W", "R", "B", "", *state], outs, hidden_size=hidden)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["seq", "batch", 8])]
    inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, "batch", hidden]) for n in state]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["seq", 1, "batch", hidden])]
    outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, "batch", hidden]) for n in outs[1:]]
    model = _model([node], inputs, outputs, inits)
    m = package(model, tmp_path / "b", variants=("simd",)).manifest
    assert m["dynamic"]["symbols"] == ["seq", "batch"]
    session = HostSession(tmp_path / "b")
    for seq, batch in [(1, 1), (5, 2), (17, 3)]:
        feeds = {"x": rng.standard_normal((seq, batch, 8)).astype(np.float32)}
        feeds.update({n: rng.standard_normal((1, batch, hidden)).astype(np.float32) for n in state})
        ref = reference_outputs(model, feeds)
        got = session.run(feeds)
        for name in outs:
            assert got[name].shape == ref[name].shape
            assert max_rel(got[name], ref[name]) <= 1e-5, (name, seq, batch)


RUN_JS = """async ({ url, cases, threads }) => {
  const { InferenceSession, Tensor } = await import("/runtime/index.js");
  const session = await InferenceSession.create(url, { numThreads: threads });
  const out = { inputShape: session.inputMetadata[0].shape, threads: session.threads, results: [] };
  for (const c of cases) {
    const x = new Float32Array(Uint8Array.from(atob(c.x), (ch) => ch.charCodeAt(0)).buffer);
    const r = await session.run({ x: new Tensor("float32", x, c.dims) });
    const pick = (t) => ({ dims: t.dims, data: Array.from(t.data) });
    out.results.push({ y: pick(r.y), z: pick(r.z) });
  }
  try {
    await session.run({ x: new Tensor("float32", new Float32Array(2 * 3 * 15), [2, 3, 15]) });
    out.badShape = null;
  } catch (err) {
    out.badShape = err.message;
  }
  await session.release();
  return out;
}"""


@pytest.mark.browser
@pytest.mark.parametrize("threads", [1, 2])
def test_chromium_runs_any_shape_from_one_bundle(page, dyn_bundle, threads):
    from server.app import create_app, serving_in_background

    model, out, _ = dyn_bundle
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((b, s, 16)).astype(np.float32) for b, s in SHAPES]
    cases = [{"dims": list(x.shape), "x": base64.b64encode(x.tobytes()).decode()} for x in xs]
    with serving_in_background(create_app(out.parent), "dyn-server") as url:
        page.goto(f"{url}/demos/?model=")
        page.wait_for_selector("body[data-state=idle]")
        res = page.evaluate(RUN_JS, {"url": f"/models/{out.name}/", "cases": cases, "threads": threads})
    assert res["inputShape"] == ["batch", "seq", 16]
    assert res["threads"] == threads
    for x, r in zip(xs, res["results"], strict=True):
        ref = reference_outputs(model, {"x": x})
        for name in ("y", "z"):
            got = np.asarray(r[name]["data"], np.float32).reshape(r[name]["dims"])
            assert got.shape == ref[name].shape
            assert max_rel(got, ref[name]) <= 1e-5, name
    assert res["badShape"] and "'x'" in res["badShape"] and "[batch, seq, 16]" in res["badShape"]


@pytest.mark.parametrize("batch, seq", [(2, 9), (3, 30), (4, 13)])
def test_arena_is_placed_as_a_fixed_shape_bundle_places_it(dyn_bundle, tmp_path, batch, seq):
    """The executor places a dynamic bundle's arena per input shape with the planner's own placement
    (planner.place): at any shape, the tensors sit where a bundle packaged for that one shape puts them.
    (Batch 2 and up: at batch 1 the fixed-shape plan runs its batched MatMuls as plain GEMMs.)"""
    model, _, m = dyn_bundle
    fixed = package(model, tmp_path / "fixed", input_shapes={"x": [batch, seq, 16]}, variants=("simd",)).manifest
    plan = dynamic.materialize(m, {"x": [batch, seq, 16]})
    base, fixed_base = m["memory"]["arena_offset"], fixed["memory"]["arena_offset"]
    fixed_end = fixed_base + fixed["memory"]["arena_bytes"]
    assert plan["memory_bytes"] - base == fixed["memory"]["arena_bytes"]
    for kind in ("inputs", "outputs"):
        got = {e["name"]: e["offset"] - base for e in plan[kind]}
        assert got == {e["name"]: e["offset"] - fixed_base for e in fixed[kind]}, kind
    assert [s["kernel"] for s in plan["steps"]] == [s["kernel"] for s in fixed["steps"]]
    for step, fixed_step in zip(plan["steps"], fixed["steps"], strict=True):
        # the fixed plan's pointers into its arena, relative to the arena, and the same arguments of this plan
        pointers = [j for j, a in enumerate(fixed_step["args"]) if isinstance(a, int) and fixed_base <= a < fixed_end]
        got = [step["args"][j] - base for j in pointers]
        assert got == [fixed_step["args"][j] - fixed_base for j in pointers], step["node"]
