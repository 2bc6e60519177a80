"""Compare a bundle run in wasmtime with onnxruntime on the original model, on seeded random inputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort

from .dynamic import evaluate
from .host import HostSession

DEFAULT_RTOL = 1e-4


@dataclass
class OutputError:
    name: str
    max_abs: float
    max_rel: float  # max |ours - ref| / max |ref|: scale-relative, so near-zero elements do not dominate

    def ok(self, rtol: float) -> bool:
        return bool(np.isfinite(self.max_rel)) and self.max_rel <= rtol


def random_inputs(entries: list[dict], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for e in entries:
        dtype = np.dtype(e["dtype"])
        if dtype.kind == "f":
            feeds[e["name"]] = rng.standard_normal(e["shape"]).astype(dtype)
        elif dtype == np.bool_:
            feeds[e["name"]] = rng.random(e["shape"]) < 0.5
        else:
            feeds[e["name"]] = rng.integers(0, 10, e["shape"]).astype(dtype)
    return feeds


def reference_outputs(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def compare(ours: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> list[OutputError]:
    errors = []
    for name, expected in ref.items():
        got = ours[name]
        if got.shape != expected.shape:
            raise AssertionError(f"output {name!r}: shape {got.shape} != reference {expected.shape}")
        diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
        max_abs = float(diff.max()) if diff.size else 0.0
        scale = float(np.abs(expected).max()) if expected.size else 0.0
        errors.append(OutputError(name, max_abs, max_abs / scale if scale > 0 else max_abs))
    return errors


def concrete_inputs(manifest: dict) -> list[list[dict]]:
    """Input entries with concrete shapes: the manifest's own, or for a dynamic-shape bundle the inputs at
    two settings of its symbolic dims (all 1, and all 3)."""
    if "dynamic" not in manifest:
        return [manifest["inputs"]]
    out = []
    for value in (1, 3):
        values = [value] * len(manifest["dynamic"]["symbols"])
        out.append([{**e, "shape": [evaluate(f, values) for f in e["shape"]]} for e in manifest["inputs"]])
    return out


def verify_bundle(bundle_dir, model: onnx.ModelProto, seed: int = 0, variants=("simd", "relaxed")):
    """{label: [OutputError]} for the bundle against onnxruntime on the same seeded inputs, per variant
    (and, for a dynamic-shape bundle, per setting of its symbolic dims)."""
    results = {}
    sessions = {variant: HostSession(bundle_dir, variant) for variant in variants}
    settings = concrete_inputs(next(iter(sessions.values())).manifest)
    for entries in settings:
        feeds = random_inputs(entries, seed)
        ref = reference_outputs(model, feeds)
        for variant, session in sessions.items():
            shapes = ", ".join("x".join(map(str, e["shape"])) for e in entries)
            label = variant if len(settings) == 1 else f"{variant} @ {shapes}"
            results[label] = compare(session.run(feeds), ref)
    return results
