"""A BERT encoder (the sentence-transformers all-MiniLM-L6-v2 architecture) through the whole pipeline.

CI runs `tests/data/tiny_bert.onnx`: the same Hugging Face model class and the same torch export path as
MiniLM (benchmarks/minilm/export.py --tiny), at toy size with seeded random weights, so it has exactly the
op patterns of the real export (embedding Gathers, LayerNormalization, attention with the mask built from
Cast/Where/IsNaN, Erf GELU...). The real MiniLM (90 MB, exported with torch by benchmarks/minilm/setup.sh) runs
when MINILM_DIR points at the export (or benchmarks/work/minilm holds it): host and Chromium, several sentence
lengths, against onnxruntime within 1e-4."""

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


@pytest.mark.parametrize("batch,seq", [(1, 5), (2, 7), (3, 16), (1, 40)])
def test_tiny_bert_matches_onnxruntime(tmp_path, batch, seq):
    model = onnx.load(DATA / "tiny_bert.onnx")
    feeds = bert_feeds(batch, seq, vocab=256)
    ref = reference_outputs(model, feeds)["last_hidden_state"]
    package(model, tmp_path / "b", shapes_for(batch, seq))
    for variant, threads in (("simd", 1), ("relaxed", 1), ("simd", 3)):
        got = HostSession(tmp_path / "b", variant, threads=threads).run(feeds)["last_hidden_state"]
        assert got.shape == ref.shape
        assert max_rel(got, ref) <= 1e-5, f"{variant} x{threads}: {max_rel(got, ref):.2e}"


def _minilm_samples():
    if not (MINILM_DIR / "minilm.onnx").exists():
        pytest.skip(f"no MiniLM export in {MINILM_DIR} (run benchmarks/minilm/setup.sh)")
    data = np.load(MINILM_DIR / "samples.npz")
    return [{n: data[f"{i}/{n}"] for n in NAMES} for i in range(len(data.files) // 3)]


@pytest.mark.slow
def test_minilm_host_matches_onnxruntime(tmp_path):
    samples = _minilm_samples()
    model_path = MINILM_DIR / "minilm.onnx"
    for i, feeds in enumerate(samples):
        ref = reference_outputs(onnx.load(model_path), feeds)["last_hidden_state"]
        package(model_path, tmp_path / f"b{i}", shapes_for(*feeds["input_ids"].shape))
        got = HostSession(tmp_path / f"b{i}", "relaxed").run(feeds)["last_hidden_state"]
        err = float(np.abs(got - ref).max())
        assert err <= 1e-4, f"sample {i} {feeds['input_ids'].shape}: max abs err {err:.2e}"


RUN_JS = """async ({ url, feeds }) => {
  const { InferenceSession, Tensor } = await import("/runtime/index.js");
  const session = await InferenceSession.create(url);
  const tensors = {};
  for (const [name, f] of Object.entries(feeds)) {
    const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
    tensors[name] = new Tensor("int64", new BigInt64Array(bytes.buffer), f.dims);
  }
  const out = (await session.run(tensors)).last_hidden_state;
  await session.release();
  return { dims: out.dims, data: Array.from(out.data) };
}"""


def _browser_check(page, base_url, bundles: dict[str, tuple[dict, np.ndarray]], tol: float):
    page.goto(f"{base_url}/demos/?model=")
    page.wait_for_selector("body[data-state=idle]")
    for name, (feeds, ref) in bundles.items():
        payload = {
            n: {"dims": list(a.shape), "data": base64.b64encode(a.astype(np.int64).tobytes()).decode()}
            for n, a in feeds.items()
        }
        out = page.evaluate(RUN_JS, {"url": f"/models/{name}/", "feeds": payload})
        got = np.asarray(out["data"], np.float32).reshape(out["dims"])
        err = float(np.abs(got - ref).max())
        assert err <= tol, f"{name}: max abs err {err:.2e} in Chromium"


@pytest.mark.browser
def test_tiny_bert_in_chromium(page, tmp_path):
    from server.app import create_app, serving_in_background

    model = onnx.load(DATA / "tiny_bert.onnx")
    bundles = {}
    for batch, seq in [(1, 5), (2, 9)]:
        feeds = bert_feeds(batch, seq, vocab=256)
        package(model, tmp_path / f"tiny{batch}x{seq}", shapes_for(batch, seq))
        bundles[f"tiny{batch}x{seq}"] = (feeds, reference_outputs(model, feeds)["last_hidden_state"])
    with serving_in_background(create_app(tmp_path), "bert-server") as url:
        _browser_check(page, url, bundles, 1e-5)


@pytest.mark.browser
@pytest.mark.slow
def test_minilm_in_chromium(page, tmp_path):
    from server.app import create_app, serving_in_background

    samples = _minilm_samples()
    model_path = MINILM_DIR / "minilm.onnx"
    model = onnx.load(model_path)
    bundles = {}
    for i, feeds in enumerate(samples):
        package(model_path, tmp_path / f"minilm{i}", shapes_for(*feeds["input_ids"].shape))
        bundles[f"minilm{i}"] = (feeds, reference_outputs(model, feeds)["last_hidden_state"])
    with serving_in_background(create_app(tmp_path), "minilm-server") as url:
        _browser_check(page, url, bundles, 1e-4)
