"""Dynamic shapes (wasm_runtime/dynamic.py): one bundle, any value of the symbolic input dims, on the host
and in Chromium, against onnxruntime; and clear failures where no single plan exists."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

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


def test_non_polynomial_plan_fails_at_package_time(tmp_path):
    """A strided conv's output size is a floor division of the symbolic size: no formula, so packaging
    fails naming the node, instead of a bundle that runs wrong at some sizes."""
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="the_strided_conv", strides=[2, 2], pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w_"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, "oh", "ow"])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(PackageError, match=r"the_strided_conv.*symbolic dims.*--input-shape"):
        package(model, tmp_path / "b")


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
