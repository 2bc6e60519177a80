"""Smoke test of `benchmarks/bundle_ab.py`: two bundles of one model take turns in one Chromium page, with the
step profile, and a third bundle whose plan differs is refused by --profile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import helper
from oputil import make_model

from wasm_runtime.package import package

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parent.parent


def _conv_model(act: str):
    """Conv + SiLU (fused: the GEMM runs it after the tiles), or + Relu + Sigmoid (Relu fused, then a Sigmoid step)."""
    rng = np.random.default_rng(0)
    inits = {"w": rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "b": rng.standard_normal(8).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2])]  # im2col + GEMM
    if act == "silu":
        nodes += [helper.make_node("Sigmoid", ["c"], ["s"]), helper.make_node("Mul", ["c", "s"], ["y"])]
    else:
        nodes += [helper.make_node("Relu", ["c"], ["r"]), helper.make_node("Sigmoid", ["r"], ["y"])]
    return make_model(nodes, {"x": (1, 3, 16, 16)}, ["y"], inits)


def _run(tmp_path, bundles, *extra):
    out = tmp_path / "ab.json"
    cmd = [sys.executable, "benchmarks/bundle_ab.py", *map(str, bundles), "--rounds", "3", "--runs", "2",
           "--warmup-ms", "0", "--json", str(out), *extra]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    return proc, out


def test_two_bundles_take_turns_with_step_profile(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    package(_conv_model("silu"), a, name="m")
    package(_conv_model("silu"), b, name="m")
    proc, out = _run(tmp_path, [a, b], "--profile")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    page = json.loads(out.read_text())["page"]
    assert page["maxDiff"] == [0, 0], "the same plan and kernels must give the same output"
    assert [len(t) for t in page["times"]] == [3, 3] and all(t > 0 for row in page["times"] for t in row)
    kernels = [[s["kernel"] for s in steps] for steps in page["steps"]]
    assert kernels[0] == kernels[1] and "f32_conv2d" in kernels[0]
    assert all(np.isfinite(s["min"]) and s["min"] >= 0 for steps in page["steps"] for s in steps)
    assert "per-round ratio" in proc.stdout and "all steps" in proc.stdout and "f32_conv2d" in proc.stdout


def test_profile_refuses_bundles_with_different_plans(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    package(_conv_model("silu"), a, name="m")
    package(_conv_model("relu"), b, name="m")
    proc, _ = _run(tmp_path, [a, b], "--profile")
    assert proc.returncode != 0
    assert "--profile needs bundles with the same plan" in proc.stdout + proc.stderr
