"""The kernel modules a bundle ships stay small: every variant (SIMD128, relaxed SIMD, and their threaded
builds), raw (what `package-for-web serve` sends) and gzipped (what a compressing host sends).

A GEMM that inlined every activation into every accumulator of every tile height once made each of these
modules ~200 KB (16-19 KB gzipped) for a model that calls four kernels. The bounds are the sizes measured when
they were set plus ~20%; a failure names the largest functions of the module, which is where to look."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from onnx import helper
from oputil import make_model

from wasm_runtime import zoo
from wasm_runtime.kernels import VARIANTS, size_report
from wasm_runtime.package import package


def _mlp():
    """x[1, 64] -> Gemm -> Relu -> Gemm -> Softmax: a small classifier head (f32_gemm_packed, f32_softmax)."""
    rng = np.random.default_rng(0)
    inits = {
        "w1": rng.standard_normal((32, 64)).astype(np.float32),
        "b1": rng.standard_normal(32).astype(np.float32),
        "w2": rng.standard_normal((10, 32)).astype(np.float32),
        "b2": rng.standard_normal(10).astype(np.float32),
    }
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["z"], transB=1),
        helper.make_node("Softmax", ["z"], ["y"], axis=1),
    ]
    return make_model(nodes, {"x": (1, 64)}, ["y"], inits)


# (model, bytes raw, bytes gzipped) for every variant: ~20% over the largest variant measured when set (the four
# are within 1.1 KB raw and 0.3 KB gzipped of each other): MLP 22.8 KB / 6.2 KB, MobileNetV2 33.9 / 10.7,
# ResNet-18 43.3 / 14.1. Before: MLP 159-166 KB / 9.8-10.0 KB, MobileNetV2 211-220 / 16.4-16.5, ResNet-18
# 209-218 / 19.3-19.4.
CASES = {
    "mlp": (_mlp, 27_000, 7_400),
    "mobilenetv2": (lambda: zoo.mobilenet_v2(image_size=64), 40_000, 12_800),
    "resnet18": (lambda: zoo.resnet18(image_size=64), 52_000, 16_800),
}


@pytest.fixture(scope="module", params=list(CASES))
def bundle(request, tmp_path_factory):
    build, raw_max, gz_max = CASES[request.param]
    out = tmp_path_factory.mktemp(request.param)
    manifest = package(build(), out, name=request.param).manifest
    return request.param, out, manifest, raw_max, gz_max


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_kernel_module_size(bundle, variant):
    name, out, manifest, raw_max, gz_max = bundle
    module = (out / manifest["kernels"]["modules"][variant]).read_bytes()
    raw, gz = len(module), len(gzip.compress(module, 9))
    exports = manifest["kernels"]["exports"]
    assert raw <= raw_max and gz <= gz_max, (
        f"{name}: kernels-{variant}.wasm is {raw / 1024:.1f} KB ({gz / 1024:.1f} KB gzipped), over "
        f"{raw_max / 1024:.1f} KB ({gz_max / 1024:.1f} KB) for exports {exports}; largest functions: "
        f"{size_report(exports, variant)}"
    )
