"""A BERT encoder (the sentence-transformers all-MiniLM-L6-v2 architecture) through the whole pipeline.

CI runs `tests/data/tiny_bert.onnx`: the same Hugging Face model class and the same torch export path as
MiniLM (benchmarks/minilm/export.py --tiny), at toy size with seeded random weights, so it has exactly the
op patterns of the real export (embedding Gathers, LayerNormalization, attention with the mask built from
Cast/Where/IsNaN, Erf GELU...). The real MiniLM (90 MB, exported with torch by benchmarks/minilm/setup.sh) runs
when MINILM_DIR points at the export (or benchmarks/work/minilm holds it): host and Chromium, several sentence
lengths, against onnxruntime within 1e-4. Both keep their [batch, seq] inputs symbolic: ONE bundle serves
every shape (wasm_runtime/dynamic.py); a fixed-shape bundle is checked too."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import onnx
import pytest

from wasm_runtime.host import HostSession
from wasm_runtime.package import package
from wasm_runtime.verify import reference_outputs

DATA = Path(__file__).parent / "data"
MINILM_DIR = Path(os.environ.get("MINILM_DIR", Path(__file__).parent.parent / "benchmarks" / "work" / "minilm"))
NAMES = ("input_ids", "attention_mask", "token_type_ids")


def bert_feeds(batch: int, seq: int, vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Token ids with [CLS]/[SEP]-like ends and right padding (mask 0) of different lengths per row."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab, (batch, seq))
    mask = np.ones((batch, seq), np.int64)
    for b in range(batch):
        length = seq - (b * 3) % max(seq - 1, 1)
        ids[b, 0], ids[b, length - 1] = 2, 3
        ids[b, length:], mask[b, length:] = 0, 0
    return {"input_ids": ids.astype(np.int64), "attention_mask": mask, "token_type_ids": np.zeros_like(mask)}


def shapes_for(batch: int, seq: int) -> dict[str, list[int]]:
    return {n: [batch, seq] for n in NAMES}


def max_rel(ours, ref) -> float:
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


TINY_SHAPES = [(1, 1), (1, 5), (2, 7), (3, 16), (1, 64), (4, 33)]


@pytest.fixture(scope="module")
def tiny_dynamic(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "tiny_bert"
    manifest = package(DATA / "tiny_bert.onnx", out).manifest
    return onnx.load(DATA / "tiny_bert.onnx"), out, manifest


def test_tiny_bert_one_dynamic_bundle_matches_onnxruntime(tiny_dynamic):
    model, out, manifest = tiny_dynamic
    assert manifest["dynamic"]["symbols"] == ["batch", "seq"]
    sessions = [HostSession(out, v, threads=t) for v, t in (("simd", 1), ("relaxed", 1), ("simd", 3))]
    for batch, seq in TINY_SHAPES:
        feeds = bert_feeds(batch, seq, vocab=256)
        ref = reference_outputs(model, feeds)["last_hidden_state"]
        for session in sessions:
            got = session.run(feeds)["last_hidden_state"]
            assert got.shape == ref.shape
            assert max_rel(got, ref) <= 1e-5, f"{session.variant} {batch}x{seq}: {max_rel(got, ref):.2e}"


@pytest.mark.parametrize("batch,seq", [(2, 7)])
def test_tiny_bert_fixed_shape_bundle(tmp_path, batch, seq):
    model = onnx.load(DATA / "tiny_bert.onnx")
    feeds = bert_feeds(batch, seq, vocab=256)
    ref = reference_outputs(model, feeds)["last_hidden_state"]
    manifest = package(model, tmp_path / "b", shapes_for(batch, seq)).manifest
    assert "dynamic" not in manifest
    got = HostSession(tmp_path / "b", "simd", threads=3).run(feeds)["last_hidden_state"]
    assert max_rel(got, ref) <= 1e-5


def _minilm_samples():
    if not (MINILM_DIR / "minilm.onnx").exists():
        pytest.skip(f"no MiniLM export in {MINILM_DIR} (run benchmarks/minilm/setup.sh)")
    data = np.load(MINILM_DIR / "samples.npz")
    return [{n: data[f"{i}/{n}"] for n in NAMES} for i in range(len(data.files) // 3)]


@pytest.mark.slow
def test_minilm_host_matches_onnxruntime(tmp_path):
    samples = _minilm_samples()
    model_path = MINILM_DIR / "minilm.onnx"
    model = onnx.load(model_path)
    package(model_path, tmp_path / "minilm")  # one bundle, dynamic [batch, seq]
    session = HostSession(tmp_path / "minilm", "relaxed")
    for i, feeds in enumerate(samples):
        ref = reference_outputs(model, feeds)["last_hidden_state"]
        got = session.run(feeds)["last_hidden_state"]
        err = float(np.abs(got - ref).max())
        assert err <= 1e-4, f"sample {i} {feeds['input_ids'].shape}: max abs err {err:.2e}"


RUN_JS = """async ({ url, cases, threads }) => {
  const { InferenceSession, Tensor } = await import("/runtime/index.js");
  const session = await InferenceSession.create(url, { numThreads: threads });
  const results = [];
  for (const feeds of cases) {
    const tensors = {};
    for (const [name, f] of Object.entries(feeds)) {
      const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
      tensors[name] = new Tensor("int64", new BigInt64Array(bytes.buffer), f.dims);
    }
    const out = (await session.run(tensors)).last_hidden_state;
    results.push({ dims: out.dims, data: Array.from(out.data) });
  }
  const threadsUsed = session.threads;
  await session.release();
  return { results, threadsUsed };
}"""


def _browser_check(page, base_url, bundle: str, cases: list[tuple[dict, np.ndarray]], tol: float, threads: int):
    """One session of one (dynamic) bundle runs every case; each output within `tol` (max abs) of its ref."""
    page.goto(f"{base_url}/demos/?model=")
    page.wait_for_selector("body[data-state=idle]")

    def b64(a):
        return base64.b64encode(a.astype(np.int64).tobytes()).decode()

    payload = [{n: {"dims": list(a.shape), "data": b64(a)} for n, a in f.items()} for f, _ in cases]
    out = page.evaluate(RUN_JS, {"url": f"/models/{bundle}/", "cases": payload, "threads": threads})
    assert out["threadsUsed"] == threads
    for (feeds, ref), r in zip(cases, out["results"], strict=True):
        got = np.asarray(r["data"], np.float32).reshape(r["dims"])
        assert got.shape == ref.shape
        err = float(np.abs(got - ref).max())
        assert err <= tol, f"{feeds['input_ids'].shape}: max abs err {err:.2e} in Chromium"


@pytest.mark.browser
@pytest.mark.parametrize("threads", [1, 2])
def test_tiny_bert_in_chromium(page, tiny_dynamic, threads):
    from server.app import create_app, serving_in_background

    model, out, _ = tiny_dynamic
    cases = []
    for batch, seq in TINY_SHAPES:
        feeds = bert_feeds(batch, seq, vocab=256)
        cases.append((feeds, reference_outputs(model, feeds)["last_hidden_state"]))
    with serving_in_background(create_app(out.parent), "bert-server") as url:
        _browser_check(page, url, out.name, cases, 1e-5, threads)


@pytest.mark.browser
@pytest.mark.slow
def test_minilm_in_chromium(page, tmp_path):
    from server.app import create_app, serving_in_background

    samples = _minilm_samples()
    model_path = MINILM_DIR / "minilm.onnx"
    model = onnx.load(model_path)
    package(model_path, tmp_path / "minilm")  # one bundle, dynamic [batch, seq]
    cases = [(feeds, reference_outputs(model, feeds)["last_hidden_state"]) for feeds in samples]
    with serving_in_background(create_app(tmp_path), "minilm-server") as url:
        _browser_check(page, url, "minilm", cases, 1e-4, 2)
