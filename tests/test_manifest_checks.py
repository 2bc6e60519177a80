"""Bundles every executor must refuse (tests/data/bad_manifests.json), run through the Python host and through
create() in Chromium: the same fixture, the same words in both errors (wasm_runtime/manifest_check.py and
web/worker.js apply the same rules). Plus the manifest pin: a page (or HostSession) that pins the manifest's
sha256 runs that bundle and no other."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from wasm_runtime.errors import BundleError
from wasm_runtime.host import HostSession
from wasm_runtime.manifest_check import manifest_integrity
from wasm_runtime.package import package

FIXTURES = json.loads((Path(__file__).parent / "data" / "bad_manifests.json").read_text())["fixtures"]


def _model():
    """A fill (so init has a step), a weight in weights.bin and one Gemm: every kind of manifest entry."""
    one = numpy_helper.from_array(np.ones(1, np.float32))
    big = helper.make_node("ConstantOfShape", ["shape"], ["fill"], value=one)
    nodes = [big, helper.make_node("Gemm", ["x", "w", "fill"], ["y"], transB=1)]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 1024])],
        [
            numpy_helper.from_array(np.random.default_rng(0).standard_normal((1024, 8)).astype(np.float32), "w"),
            numpy_helper.from_array(np.array([4, 1024], np.int64), "shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _apply(bundle: Path, fixture: dict) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    for path, value in fixture.get("set", []):
        target = manifest
        for key in path[:-1]:
            target = target[key]
        if value is None:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    if "truncate_weights" in fixture:
        data = (bundle / "weights.bin").read_bytes()[: fixture["truncate_weights"]]
        (bundle / "weights.bin").write_bytes(data)
        manifest["files"]["weights.bin"] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (bundle / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def bad_bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    package(_model(), root / "good", variants=("simd", "relaxed"))
    assert json.loads((root / "good" / "manifest.json").read_text())["init"], "the model must have an init step"
    for k, fixture in enumerate(FIXTURES):
        shutil.copytree(root / "good", root / f"bad{k}")
        _apply(root / f"bad{k}", copy.deepcopy(fixture))
    return root


@pytest.mark.parametrize("k", range(len(FIXTURES)), ids=[f["name"] for f in FIXTURES])
def test_python_host_refuses(bad_bundles, k):
    with pytest.raises(BundleError) as info:
        HostSession(bad_bundles / f"bad{k}", "simd")
    assert FIXTURES[k]["error"] in str(info.value)


def test_python_host_runs_the_good_bundle_and_honours_the_pin(bad_bundles):
    good = bad_bundles / "good"
    pin = manifest_integrity((good / "manifest.json").read_bytes())
    x = np.ones((4, 8), np.float32)
    assert HostSession(good, integrity=pin).run({"x": x})["y"].shape == (4, 1024)
    other = manifest_integrity(b"another manifest")
    with pytest.raises(BundleError, match="does not match the integrity pin"):
        HostSession(good, integrity=other)


CREATE_JS = """async ({ urls, pin }) => {
  const { InferenceSession } = await import("/runtime/index.js");
  const out = [];
  for (const url of urls) {
    try {
      const session = await InferenceSession.create(url, pin ? { integrity: pin } : {});
      await session.release();
      out.push("ok");
    } catch (err) {
      out.push(err.message);
    }
  }
  return out;
}"""


@pytest.mark.browser
def test_chromium_refuses_the_same_bundles(page, bad_bundles):
    from server.app import create_app, serving_in_background

    good_pin = manifest_integrity((bad_bundles / "good" / "manifest.json").read_bytes())
    with serving_in_background(create_app(bad_bundles), "bad-bundles") as url:
        page.goto(f"{url}/demos/?model=")
        page.wait_for_selector("body[data-state=idle]")
        urls = [f"/models/bad{k}/" for k in range(len(FIXTURES))]
        got = page.evaluate(CREATE_JS, {"urls": urls, "pin": None})
        pinned = page.evaluate(CREATE_JS, {"urls": ["/models/good/"], "pin": good_pin})
        wrong = page.evaluate(CREATE_JS, {"urls": ["/models/good/"], "pin": manifest_integrity(b"x")})
    for fixture, message in zip(FIXTURES, got, strict=True):
        assert fixture["error"] in message, f"{fixture['name']}: {message}"
    assert pinned == ["ok"]
    assert "does not match the integrity pin" in wrong[0]
