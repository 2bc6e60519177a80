"""Whole models: the bundle run in wasmtime matches onnxruntime on the original model, both kernel builds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from wasm_runtime import zoo
from wasm_runtime.errors import PackageError
from wasm_runtime.host import HostSession
from wasm_runtime.package import package
from wasm_runtime.verify import compare, random_inputs, reference_outputs, verify_bundle

LIGHT_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
LIGHT_MODELS = sorted(p.stem for p in LIGHT_DIR.glob("*.onnx"))
RTOL = 1e-4


def test_all_nine_light_models_are_present():
    assert len(LIGHT_MODELS) == 9, LIGHT_MODELS


@pytest.mark.slow
@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model(name, tmp_path):
    model = onnx.load(str(LIGHT_DIR / f"{name}.onnx"))
    result = package(model, tmp_path / name)
    for variant, errors in verify_bundle(result.out_dir, model).items():
        for e in errors:
            assert e.ok(RTOL), f"{name} [{variant}] {e}"
    # and against the reference output shipped next to the model (computed by the model's authors)
    ref = onnx.numpy_helper.to_array(onnx.load_tensor(str(LIGHT_DIR / f"{name}_output_0.pb")))
    session = HostSession(result.out_dir)
    out = session.run(random_inputs(session.inputs))
    (got,) = out.values()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(zoo.BUILDERS))
def test_cnn(name, tmp_path):
    model = zoo.BUILDERS[name]()
    result = package(model, tmp_path / name)
    for variant, errors in verify_bundle(result.out_dir, model, seed=1).items():
        for e in errors:
            assert e.ok(RTOL), f"{name} [{variant}] {e}"
            # the seeded weights give real, input-dependent logits, so this comparison means something
            assert e.max_abs > 0


def test_batch_and_resolution_variants(tmp_path):
    model = zoo.mobilenet_v2(batch=2, image_size=96, num_classes=7)
    result = package(model, tmp_path / "mb")
    session = HostSession(result.out_dir)
    feeds = random_inputs(session.inputs, seed=3)
    (err,) = compare(session.run(feeds), reference_outputs(model, feeds))
    assert err.ok(RTOL), err


def test_host_rejects_bad_feeds(tmp_path):
    result = package(zoo.squeezenet1_1(image_size=64, num_classes=5), tmp_path / "sq")
    session = HostSession(result.out_dir)
    with pytest.raises(ValueError, match="missing"):
        session.run({})
    with pytest.raises(ValueError, match=r"shape \[1, 3, 32, 32\].*\[1, 3, 64, 64\]"):
        session.run({"input": np.zeros((1, 3, 32, 32), np.float32)})


def test_repeated_runs_are_independent(tmp_path):
    model = zoo.resnet18(image_size=64, num_classes=10)
    session = HostSession(package(model, tmp_path / "rn").out_dir)
    a, b = (random_inputs(session.inputs, seed=s) for s in (1, 2))
    first = session.run(a)["logits"]
    session.run(b)
    np.testing.assert_array_equal(session.run(a)["logits"], first)


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_split_plans_match_one_thread(threads, tmp_path):
    """Every split step cut into chunks, as the worker pool runs them, computes exactly the same values."""
    model = zoo.mobilenet_v2(image_size=96, num_classes=10)
    out = package(model, tmp_path / "mb").out_dir
    single = HostSession(out)
    feeds = random_inputs(single.inputs, seed=4)
    assert any("split" in s for s in single.manifest["steps"])
    np.testing.assert_array_equal(HostSession(out, threads=threads).run(feeds)["logits"], single.run(feeds)["logits"])


def test_tune_times_every_candidate_and_keeps_the_fastest(tmp_path):
    """--tune times each multi-way node's candidates in wasmtime, records them, picks the fastest, and the tuned
    bundle computes what the default one does. Only choices whose ranking carries over to V8 are offered
    (Winograd or im2col for 3x3 convolutions; see ops/gemm.py TILES and ops/conv.py)."""
    model = zoo.squeezenet1_1(image_size=64, num_classes=10)
    tuned = package(model, tmp_path / "tuned", tune=True).manifest["algorithms"]
    assert tuned["tuned"] and tuned["nodes"]
    for node, a in tuned["nodes"].items():
        assert set(a["ms"]) == set(a["candidates"]) == {"winograd", "im2col 4x8"}, (node, a)
        assert a["choice"] == min(a["ms"], key=a["ms"].get), (node, a)
    plain = HostSession(package(model, tmp_path / "plain").out_dir)
    feeds = random_inputs(plain.inputs, seed=1)
    got = HostSession(tmp_path / "tuned").run(feeds)["logits"]
    np.testing.assert_allclose(got, plain.run(feeds)["logits"], rtol=1e-5, atol=1e-5)


def test_forced_algorithms_are_planned_and_checked(tmp_path):
    """package(algorithms={node: candidate}) plans those kernels instead of the defaults (the benchmark
    builds the choices --tune rejected this way); the result still matches, and a node without a choice or a
    candidate it does not have fails naming them."""
    model = zoo.squeezenet1_1(image_size=64, num_classes=10)
    plain = package(model, tmp_path / "plain")
    nodes = plain.manifest["algorithms"]["nodes"]
    assert nodes and all(a["choice"] == "winograd" for a in nodes.values())
    forced = {n: "im2col 4x8" for n in nodes}
    other = package(model, tmp_path / "forced", algorithms=forced)
    assert {n: a["choice"] for n, a in other.manifest["algorithms"]["nodes"].items()} == forced
    kernels = {s["kernel"] for s in other.manifest["steps"]}
    assert "f32_conv2d_winograd_f23" not in kernels and "f32_conv2d" in kernels
    feeds = random_inputs(HostSession(plain.out_dir).inputs, seed=2)
    want = HostSession(plain.out_dir).run(feeds)["logits"]
    np.testing.assert_allclose(HostSession(other.out_dir).run(feeds)["logits"], want, rtol=1e-5, atol=1e-5)
    node = next(iter(nodes))
    with pytest.raises(PackageError, match=rf"node '{node}' runs as one of winograd, im2col 4x8, not 'direct'"):
        package(model, tmp_path / "bad", algorithms={node: "direct"})
    with pytest.raises(PackageError, match=r"node 'nope' has no choice of kernels"):
        package(model, tmp_path / "bad", algorithms={"nope": "winograd"})
