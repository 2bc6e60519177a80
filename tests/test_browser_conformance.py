"""The ONNX node conformance cases we pass on the host (tests/conformance/expected_pass.txt), run again in
headless Chromium through the JS runtime (web/index.js + worker.js): the same bundles, fed and read back as
typed arrays of every dtype, compared with onnx's reference outputs by onnx's own comparison. Batched into
a few page loads so CI stays fast."""

from __future__ import annotations

import base64

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from wasm_runtime import conformance

pytestmark = pytest.mark.browser

BATCHES = 4
EXPECTED = conformance.expected_passes()

RUN_CASES_JS = """async (cases) => {
  const { InferenceSession, Tensor } = await import("/runtime/index.js");
  const decode = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const encode = (bytes) => {
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  };
  const ARRAYS = { float32: Float32Array, int32: Int32Array, int64: BigInt64Array, bool: Uint8Array,
                   uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array,
                   int8: Int8Array, int16: Int16Array };
  const results = {};
  for (const c of cases) {
    let session;
    try {
      session = await InferenceSession.create(`/models/${c.name}/`, { numThreads: 1 });
      const runs = [];
      for (const feeds of c.datasets) {
        const tensors = {};
        for (const f of feeds) {
          const bytes = decode(f.data);
          const Ctor = ARRAYS[f.dtype];
          const data = new Ctor(bytes.buffer, 0, bytes.length / Ctor.BYTES_PER_ELEMENT);
          tensors[f.name] = new Tensor(f.dtype, data, f.dims);
        }
        const out = await session.run(tensors);
        runs.push(c.outputs.map((name) => {
          const t = out[name];
          const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
          return { dtype: t.type, dims: t.dims, data: encode(bytes) };
        }));
      }
      results[c.name] = { runs, variant: session.wasmVariant ?? null };
    } catch (err) {
      results[c.name] = { error: String(err && err.message || err) };
    } finally {
      if (session) await session.release();
    }
  }
  return results;
}"""


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()


def _np(t):
    return numpy_helper.to_array(t) if isinstance(t, onnx.TensorProto) else np.asarray(t)


@pytest.fixture(scope="module")
def conformance_site(tmp_path_factory):
    """Every expected-pass case packaged (simd + relaxed builds) under one server; -> (url, cases)."""
    from server.app import create_app, serving_in_background
    from wasm_runtime.package import package

    root = tmp_path_factory.mktemp("conformance-models")
    cases = []
    for info in conformance.select(names=set(EXPECTED)):
        model = info.case.model
        manifest = package(model, root / info.name, variants=("simd", "relaxed")).manifest
        kept = {e["name"]: e for e in manifest["inputs"]}
        inits = {i.name for i in model.graph.initializer}
        names = [i.name for i in model.graph.input if i.name not in inits]
        datasets, refs = [], []
        for inputs, outputs in info.case.data_sets:
            feeds = []
            for name, value in zip(names, inputs, strict=False):
                if name in kept:
                    arr = _np(value)
                    dtype = kept[name]["dtype"]
                    feeds.append({"name": name, "dtype": dtype, "dims": list(arr.shape), "data": _b64(arr)})
            datasets.append(feeds)
            refs.append([_np(o) for o in outputs])
        outputs = [o.name for o in model.graph.output]
        cases.append({"name": info.name, "datasets": datasets, "outputs": outputs, "refs": refs, "case": info.case})
    with serving_in_background(create_app(root), "conformance-server") as url:
        yield url, cases


@pytest.mark.parametrize("batch", range(BATCHES))
def test_node_tests_in_chromium(page, conformance_site, batch):
    from onnx.backend.test.runner import Runner

    url, cases = conformance_site
    mine = cases[batch::BATCHES]
    assert mine, "no expected-pass cases to run"
    page.goto(f"{url}/demos/?model=")
    page.wait_for_selector("body[data-state=idle]")
    payload = [{k: c[k] for k in ("name", "datasets", "outputs")} for c in mine]
    results = page.evaluate(RUN_CASES_JS, payload)
    failures = []
    for c in mine:
        r = results[c["name"]]
        if "error" in r:
            failures.append(f"{c['name']}: {r['error']}")
            continue
        try:
            for run, refs in zip(r["runs"], c["refs"], strict=True):
                got = []
                for out in run:
                    dtype = np.bool_ if out["dtype"] == "bool" else np.dtype(out["dtype"])
                    data = np.frombuffer(base64.b64decode(out["data"]), dtype=dtype)
                    got.append(data.reshape(out["dims"]))
                assert len(got) == len(refs), f"{len(got)} outputs, expected {len(refs)}"
                Runner.assert_similar_outputs(refs, got, rtol=c["case"].rtol, atol=c["case"].atol)
        except AssertionError as exc:
            failures.append(f"{c['name']}: {str(exc).strip().splitlines()[0][:200]}")
    assert not failures, f"{len(failures)}/{len(mine)} node tests fail in Chromium:\n" + "\n".join(failures)
