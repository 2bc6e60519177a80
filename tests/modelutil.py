"""Helpers shared by test_corpus.py and test_real_models.py: a whole-model case table entry, seeded feeds,
comparison with onnxruntime through --verify's own metric, and packaging each case once per mode."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import pytest

from wasm_runtime.errors import PackageError
from wasm_runtime.host import HostSession
from wasm_runtime.package import package
from wasm_runtime.verify import check_output, reference_outputs, verify


@dataclass(frozen=True)
class ModelCase:
    """How a new user would package one model: `fixed` is the --input-shape of the packaging with fixed
    shapes (empty when the model declares none symbolic); without --input-shape, either the dynamic bundle
    must match onnxruntime at every shape of `sizes` (3+), or packaging must refuse with one line naming
    `refuse` (a dim, or the input holding it). `values`: scalar inputs that pick a branch at run time
    (silero's `sr`), each value is compared (random ints would only ever take one branch)."""

    name: str
    checks: str
    fixed: dict[str, list[int]]
    sizes: tuple[dict[str, tuple[int, ...]], ...] = ()
    refuse: str | None = None
    values: dict[str, tuple] = field(default_factory=dict)
    slow: bool = False
    # the --input-shape of the packaging that `sizes` run (names keep dims symbolic: fixing a recognizer's
    # height, whose refusal `refuse` checks, keeps its batch and width symbolic); None: no --input-shape
    dynamic: dict[str, list] | None = None

    def param(self):
        return pytest.param(self, id=self.name, marks=[pytest.mark.slow] if self.slow else [])


def input_dtypes(model: onnx.ModelProto) -> dict[str, np.dtype]:
    inits = {i.name for i in model.graph.initializer}
    return {
        i.name: np.dtype(onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type))
        for i in model.graph.input
        if i.name not in inits
    }


def feed_sets(case: ModelCase, model: onnx.ModelProto, shapes: dict, seed: int) -> list[dict[str, np.ndarray]]:
    """Seeded feeds at these shapes, once per value of the branch-picking scalar input. Integer inputs are
    bytes (0..255), float inputs standard normal."""
    rng = np.random.default_rng(seed)
    dtypes = input_dtypes(model)
    base = {}
    for name, dtype in dtypes.items():
        if name in case.values:
            continue
        shape = tuple(shapes[name])
        if dtype.kind == "f":
            base[name] = rng.standard_normal(shape).astype(dtype)
        else:
            base[name] = rng.integers(0, 256, shape).astype(dtype)
    if not case.values:
        return [base]
    (name, values), *rest = case.values.items()
    assert not rest, "one branch-picking input per case"
    return [{**base, name: np.array(v, dtypes[name])} for v in values]


def describe(case: ModelCase, feeds: dict) -> str:
    shapes = {k: v.shape for k, v in feeds.items() if k not in case.values}
    picked = {k: int(feeds[k]) for k in case.values}
    return f"{case.name} at {shapes}" + (f" {picked}" if picked else "")


def assert_matches(session: HostSession, model: onnx.ModelProto, feeds: dict, where: str) -> None:
    """Same shapes as onnxruntime and every output within --verify's tolerance (verify.check_output: the
    output's scale and onnxruntime's own difference between its optimization levels)."""
    import onnxruntime as ort

    try:
        ref = reference_outputs(model, feeds)
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own error types
        # onnxruntime refuses these inputs (silero's 8 kHz branch on a 16 kHz-sized input): so must we
        with pytest.raises((RuntimeError, ValueError)):
            session.run(feeds)
        print(f"{where}: onnxruntime and the bundle both refuse: {str(exc).splitlines()[0][:200]}")
        return
    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    plain = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    alt = dict(zip(ref, plain.run(list(ref), feeds), strict=True))
    got = session.run(feeds)
    for name, expected in ref.items():
        check = check_output(name, got[name], expected, alt[name])
        assert check.ok, f"{where}: {check.format()}"


def assert_verifies(bundle: Path, model: onnx.ModelProto, where: str) -> None:
    """What `package-for-web --verify` checks, both kernel builds."""
    report = verify(bundle, model)
    lines = [f"[{r.label}] {c.format()}" for r in report.runs for c in r.checks] + report.rejected
    lines += [f"[{r.label}] {r.trap}" for r in report.runs if r.trap]
    assert report.ok, f"{where}: " + "; ".join(lines)


class Packaged:
    """Each case packaged once per mode ("fixed" / "dynamic") for all the tests of a module: the bundle
    directory, or the exception packaging raised (re-raised to every test that needs that bundle)."""

    def __init__(self, root: Path):
        self.root = root
        self.results: dict[tuple[str, str], Path | Exception] = {}

    def get(self, case: ModelCase, mode: str, model: onnx.ModelProto) -> Path:
        key = (case.name, mode)
        if key not in self.results:
            out = self.root / f"{case.name}-{mode}"
            try:
                package(model, out, case.fixed if mode == "fixed" else case.dynamic)
                self.results[key] = out
            except Exception as exc:  # noqa: BLE001 - replayed to each test that needs the bundle
                self.results[key] = exc
        result = self.results[key]
        if isinstance(result, Exception):
            raise result
        return result


# ---------------------------------------------------------------------------------------------------------
# the checks, run by both test modules on their own tables


def check_fixed(case: ModelCase, model: onnx.ModelProto, packaged: Packaged) -> None:
    """With --input-shape: packages, --verify passes, and every branch value matches onnxruntime."""
    out = packaged.get(case, "fixed", model)
    assert_verifies(out, model, case.name)
    session = HostSession(out)
    shapes = {e["name"]: e["shape"] for e in session.inputs}
    for feeds in feed_sets(case, model, shapes, seed=1):
        assert_matches(session, model, feeds, describe(case, feeds) + " (fixed shapes)")


def check_dynamic_sizes(case: ModelCase, model: onnx.ModelProto, packaged: Packaged) -> None:
    """Without --input-shape: one bundle with symbolic dims, matching onnxruntime at every size."""
    assert len(case.sizes) >= 3
    out = packaged.get(case, "dynamic", model)
    session = HostSession(out)
    assert "dynamic" in session.manifest, f"{case.name}: packaged without --input-shape but no symbolic dims"
    for k, shapes in enumerate(case.sizes):
        for feeds in feed_sets(case, model, shapes, seed=10 + k):
            assert_matches(session, model, feeds, describe(case, feeds))


def check_dynamic_verify(case: ModelCase, model: onnx.ModelProto, packaged: Packaged) -> None:
    """`--verify` without --input-shape passes at the sizes it picks."""
    assert_verifies(packaged.get(case, "dynamic", model), model, f"{case.name} (dynamic)")


def suggested_shape(message: str) -> str | None:
    """The DIMS of the first `--input-shape NAME=DIMS` in a message."""
    words = message.split()
    for i, w in enumerate(words[:-1]):
        if w == "--input-shape" and "=" in words[i + 1]:
            return words[i + 1].split("=", 1)[1].rstrip(".;,)")
    return None


def check_refused(case: ModelCase, model: onnx.ModelProto, out: Path) -> None:
    """Without --input-shape, where no plan serves the symbolic dim: one line naming it, suggesting an
    --input-shape with no -1 in it."""
    with pytest.raises(PackageError) as info:
        package(model, out)
    message = str(info.value)
    assert "\n" not in message, message
    assert case.refuse in message, message
    shape = suggested_shape(message)
    assert shape is not None, f"no `--input-shape NAME=DIMS` suggestion: {message}"
    assert "-1" not in shape.split(","), message
