"""Compare a bundle run in wasmtime with onnxruntime on the original model.

`verify()` is what `package-for-web --verify` runs: inputs made to fit the model (or the user's own, from
.npz files), both kernel builds, every output checked elementwise against a tolerance built from the
output's scale and onnxruntime's own numerical noise (see `check_output`). `random_inputs`, `compare` and
`verify_bundle` are the plain max-relative-error comparison the model tests use.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from .dynamic import evaluate
from .errors import VerifyError
from .host import HostSession

DEFAULT_RTOL = 1e-4
# How far our error may exceed onnxruntime's own difference between its optimization levels. On 19 real
# models (/work/realmodels: OCR, layout, wake-word, VAD, file-type), in the 36 of 64 output x kernel-build
# pairs where that difference was not 0, our error was 0.5-12.8x it (median 1.1; 12.8 on PP-OCRv6 det,
# whose output the scale term covers). 16 accepts all of them; a weight scaled by 1.01 in PP-OCRv4 det, whose
# near-zero output only the noise term covers, moved its error to 15.5x: that is the price of the margin.
NOISE_FACTOR = 16.0
# The smallest atol. onnxruntime's own Sigmoid is accurate near 0 in absolute terms only: over 2M points of
# [-40, 40] it is up to 1.4e-7 from the exact value where that value is below 1e-3 (and returns 0 for
# x <= -18), so smaller differences there are not evidence of anything; 2^-22 = 2.4e-7 leaves 1.7x headroom.
ABS_FLOOR = 2.0**-22


# ---------------------------------------------------------------------------------------------------------
# the plain comparison (model tests)


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


def _session(model: onnx.ModelProto, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 4  # its errors come back as exceptions; the log would repeat them on stderr
    options.graph_optimization_level = level
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def reference_outputs(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = _session(model)
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
    three settings of its symbolic dims: each at its minimum (batch 1, the shortest input: the edge where
    broadcasts and empty loops hide), then small and medium sizes that differ per symbol (so swapped dims
    show) and lie off the probe sizes the package step fitted its formulas at (dynamic.fit_points)."""
    if "dynamic" not in manifest:
        return [manifest["inputs"]]
    # formulas are in k = size / step per symbol (wasm_runtime/domain.py); the smallest size each symbol takes
    # is its minimum, and the others are the next multiples of its step
    dyn = manifest["dynamic"]
    k_mins = [dyn.get("domain", {}).get(s, {"min": 1, "step": 1}) for s in dyn["symbols"]]
    k_mins = [d["min"] // d["step"] for d in k_mins]
    settings = [list(k_mins), [k + 1 + j for j, k in enumerate(k_mins)], [k + 7 + j for j, k in enumerate(k_mins)]]
    return [
        [{**e, "shape": [evaluate(f, values) for f in e["shape"]]} for e in manifest["inputs"]] for values in settings
    ]


def verify_bundle(bundle_dir, model: onnx.ModelProto, seed: int = 0, variants=("simd", "relaxed")):
    """{label: [OutputError]} for the bundle against onnxruntime on the same seeded inputs, per variant
    (and, for a dynamic-shape bundle, per setting of its symbolic dims)."""
    results = {}
    # compact: the bundle's memory only, not 4 GiB + guard each (two sessions failed under an 8 GB limit)
    sessions = {variant: HostSession(bundle_dir, variant, compact=True) for variant in variants}
    settings = concrete_inputs(next(iter(sessions.values())).manifest)
    for entries in settings:
        feeds = random_inputs(entries, seed)
        ref = reference_outputs(model, feeds)
        for variant, session in sessions.items():
            label = variant if len(settings) == 1 else f"{variant} @ {_shapes_label(feeds)}"
            results[label] = compare(session.run(feeds), ref)
    return results


# ---------------------------------------------------------------------------------------------------------
# inputs that fit the model


# ops whose output holds (some of) the values of their first input, unchanged: an integer input reaches a
# Gather or an Equal through them
_PASS_THROUGH = {
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "Identity",
    "Expand",
    "Cast",
    "Transpose",
    "Slice",
    "Gather",
    "Tile",
    "Concat",
}


def _all_nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                yield from _all_nodes(sub)


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    consts = {}

    def collect(g):
        for init in g.initializer:
            consts[init.name] = numpy_helper.to_array(init)
        for node in g.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
            for attr in node.attribute:
                for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                    collect(sub)

    collect(graph)
    return consts


@dataclass
class IntegerHint:
    """What the graph says about an integer input's values."""

    choices: np.ndarray | None = None  # values it is compared with (Equal on constants)
    rows: int | None = None  # it indexes a constant table of this many rows (Gather)

    def describe(self) -> str:
        if self.choices is not None:
            shown = ", ".join(str(v) for v in self.choices[:4]) + (", ..." if len(self.choices) > 4 else "")
            return f"one of the {len(self.choices)} constants it is compared with ({shown})"
        if self.rows is not None:
            return f"ids in [0, {self.rows}) (indexes a {self.rows}-row table)"
        return "integers in [0, 10)"


def integer_hints(model: onnx.ModelProto) -> dict[str, IntegerHint]:
    """For each integer graph input, follow its values through ops that pass them on unchanged (Reshape,
    Cast, Gather of its elements...) to an Equal with a constant (a sample rate tested by an If, a one-hot
    encoding's range) or to the indices of a Gather on a constant table (an embedding's token ids)."""
    graph = model.graph
    consts = _constants(graph)
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in _all_nodes(graph):
        for k, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, k))
    hints = {}
    for inp in graph.input:
        if inp.name in consts or inp.type.tensor_type.elem_type not in _INTEGER_TYPES:
            continue
        hint = IntegerHint()
        seen, frontier = {inp.name}, [inp.name]
        while frontier:
            name = frontier.pop()
            for node, k in consumers.get(name, []):
                if node.op_type == "Equal":
                    other = node.input[1 - k]
                    if other in consts:
                        values = np.unique(consts[other].ravel())
                        hint.choices = values if hint.choices is None else np.union1d(hint.choices, values)
                elif node.op_type == "Gather" and k == 1 and node.input[0] in consts:
                    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
                    rows = consts[node.input[0]].shape[axis]
                    hint.rows = rows if hint.rows is None else min(hint.rows, rows)
                elif node.op_type in _PASS_THROUGH and k == 0:
                    for out in node.output:
                        if out not in seen:
                            seen.add(out)
                            frontier.append(out)
        hints[inp.name] = hint
    return hints


_INTEGER_TYPES = {
    onnx.TensorProto.INT8,
    onnx.TensorProto.INT16,
    onnx.TensorProto.INT32,
    onnx.TensorProto.INT64,
    onnx.TensorProto.UINT8,
    onnx.TensorProto.UINT16,
    onnx.TensorProto.UINT32,
    onnx.TensorProto.UINT64,
}


def audio_like(rng: np.random.Generator, shape: list[int]) -> np.ndarray:
    """Each row of the last axis a signal sampled at 16 kHz: three sinusoids (80 Hz - 4 kHz, amplitudes
    0.05-0.15, random phases) and white noise of 0.01, so peaks stay within about 0.5 as speech audio does."""
    rows = int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1
    n = shape[-1] if shape else 1
    t = np.arange(n) / 16000.0
    freq = rng.uniform(80.0, 4000.0, (rows, 3, 1))
    amp = rng.uniform(0.05, 0.15, (rows, 3, 1))
    phase = rng.uniform(0.0, 2 * np.pi, (rows, 3, 1))
    signal = (amp * np.sin(2 * np.pi * freq * t + phase)).sum(axis=1) + 0.01 * rng.standard_normal((rows, n))
    return signal.reshape(shape)


def input_generators(model: onnx.ModelProto, entries: list[dict]) -> dict[str, str]:
    """How `fitted_inputs` fills each input, by dtype, rank and what the graph does with it:
    - integers: see `integer_hints` (ids below a Gather table's rows, a constant an Equal tests for),
      otherwise [0, 10);
    - float rank 4 ([N, C, H, W] images): standard normal, the range of a normalized image. On 6 real image
      models (OCR, layout, orientation) with one weight scaled by 1.01, verify failed on 4 with normal
      inputs, 4 with uniform [0, 1] and 2 with smooth (upsampled) noise; normal inputs drive the PP-OCRv4
      detector's output furthest from 0 (peak 7e-4, against 7e-5 and 9e-8);
    - float rank 2 ([batch, samples]): an audio-like signal (`audio_like`);
    - other floats (features, recurrent states): standard normal; bool: fair coin flips."""
    hints = integer_hints(model)
    kinds = {}
    for e in entries:
        dtype = np.dtype(e["dtype"])
        rank = len(e["shape"])
        if dtype == np.bool_:
            kinds[e["name"]] = "booleans"
        elif dtype.kind in "iu":
            kinds[e["name"]] = hints.get(e["name"], IntegerHint()).describe()
        elif rank == 4:
            kinds[e["name"]] = "image-like: standard normal"
        elif rank == 2:
            kinds[e["name"]] = "audio-like: 3 sinusoids + noise, peak ~0.5"
        else:
            kinds[e["name"]] = "standard normal"
    return kinds


def fitted_inputs(model: onnx.ModelProto, entries: list[dict], seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs of the entries' shapes and dtypes, filled as `input_generators` describes."""
    rng = np.random.default_rng(seed)
    hints = integer_hints(model)
    feeds = {}
    for e in entries:
        dtype, shape, rank = np.dtype(e["dtype"]), list(e["shape"]), len(e["shape"])
        if dtype == np.bool_:
            value = rng.random(shape) < 0.5
        elif dtype.kind in "iu":
            hint = hints.get(e["name"], IntegerHint())
            if hint.choices is not None:
                value = rng.choice(hint.choices, size=shape)
            else:
                value = rng.integers(0, hint.rows if hint.rows else 10, shape)
        elif rank == 2:
            value = audio_like(rng, shape)
        else:
            value = rng.standard_normal(shape)
        feeds[e["name"]] = np.asarray(value).astype(dtype)
    return feeds


def load_inputs(path: str | Path, entries: list[dict]) -> dict[str, np.ndarray]:
    """The arrays of an .npz file as the bundle's inputs: names must be the inputs' names; a dtype of the
    same kind is converted (float64 -> float32, int32 -> int64 when the values fit); a static bundle's
    shapes must match, a dynamic bundle takes the file's shapes as the setting to verify at."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise VerifyError(f"--inputs {path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise VerifyError(f"--inputs {path}: not a readable .npz file ({exc})") from None
    expected = {e["name"]: e for e in entries}
    missing, unknown = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
    if missing or unknown:
        raise VerifyError(
            f"--inputs {path}: the model's inputs are {sorted(expected)}; "
            + "; ".join([f"missing {missing}"] * bool(missing) + [f"not inputs of the model {unknown}"] * bool(unknown))
        )
    feeds = {}
    for name, e in expected.items():
        array, dtype = arrays[name], np.dtype(e["dtype"])
        if array.dtype != dtype:
            same_kind = array.dtype.kind == dtype.kind or (array.dtype.kind in "iu" and dtype.kind in "iu")
            if not same_kind or (dtype.kind in "iu" and array.size and not _fits(array, dtype)):
                raise VerifyError(f"--inputs {path}: {name!r} is {array.dtype}, the model takes {dtype}")
            array = array.astype(dtype)
        if len(array.shape) != len(e["shape"]):
            raise VerifyError(f"--inputs {path}: {name!r} has shape {list(array.shape)}, the model takes {e['shape']}")
        fixed = all(isinstance(d, int) for d in e["shape"])
        if fixed and list(array.shape) != e["shape"]:
            raise VerifyError(f"--inputs {path}: {name!r} has shape {list(array.shape)}, the bundle takes {e['shape']}")
        feeds[name] = np.array(array, order="C")  # not ascontiguousarray: it makes a scalar 1-d
    return feeds


def _fits(array: np.ndarray, dtype: np.dtype) -> bool:
    info = np.iinfo(dtype)
    return bool(array.min() >= info.min and array.max() <= info.max)


# ---------------------------------------------------------------------------------------------------------
# the tolerance model


@dataclass
class OutputCheck:
    """One output of one run, as `check_output` judged it."""

    name: str
    size: int = 0
    max_err: float = 0.0  # max |ours - ref| where both are finite
    worst: float = 0.0  # max |ours - ref| / allowed over the elements: the check passes while <= 1
    rtol: float = 0.0
    atol: float = 0.0
    noise_factor: float = 0.0
    scale: float = 0.0  # max |ref|
    noise: float | None = None  # max |ref - onnxruntime without graph optimizations|; None: that run failed
    bound: str = ""  # which term set atol: "scale", "noise", "floor"; "exact" for integer outputs
    beyond: int = 0  # elements beyond the allowed error, NaN/Inf mismatches included
    nonfinite: str = ""  # what the NaN/Inf mismatches are
    problem: str = ""  # a shape mismatch or a missing output

    @property
    def ok(self) -> bool:
        return not self.problem and self.beyond == 0

    def format(self) -> str:
        """One line: the error, what it was allowed, and where the allowance came from."""
        if self.problem:
            return f"{self.name}: {self.problem} FAIL"
        noise = "n/a" if self.noise is None else f"{self.noise:.3g}"
        if self.bound == "exact":
            text = f"{self.name}: max err {self.max_err:.3g}, exact match required (integer output)"
        else:
            why = {
                "scale": f"rtol x max|ref| {self.scale:.3g} (onnxruntime noise {noise})",
                "noise": f"{self.noise_factor:g} x onnxruntime noise {noise} (max|ref| {self.scale:.3g})",
                "floor": f"the absolute floor (max|ref| {self.scale:.3g}, onnxruntime noise {noise})",
            }[self.bound]
            text = (
                f"{self.name}: max err {self.max_err:.3g} vs allowed {self.atol:.3g} + {self.rtol:g}|ref| "
                f"(worst element at {self.worst:.2g} of its allowance); atol = {why}"
            )
        if self.beyond:
            text += f"; {self.beyond} of {self.size} elements beyond"
        if self.nonfinite:
            text += f"; {self.nonfinite}"
        if self.scale < ABS_FLOOR and self.size and self.ok:
            text += "; the reference is ~0 everywhere on these inputs, so this checks little: try --inputs"
        return text + (" ok" if self.ok else " FAIL")


def check_output(
    name: str,
    got: np.ndarray,
    ref: np.ndarray,
    alt: np.ndarray | None,
    rtol: float = DEFAULT_RTOL,
    noise_factor: float = NOISE_FACTOR,
) -> OutputCheck:
    """Elementwise |ours - ref| <= atol + rtol * |ref|, with
        atol = max(rtol * max|ref|, noise_factor * max|ref - alt|, ABS_FLOOR)
    where ref is onnxruntime with all graph optimizations and alt without any.

    Why each term:
    - rtol * |ref|: the float32 rounding of a value grows with it;
    - rtol * max|ref|: an element near zero is usually a sum of large terms that cancel, and carries their
      rounding, so elements are judged against the output's scale, not their own size;
    - noise_factor * max|ref - alt|: onnxruntime's two runs differ only by how they round (fused kernels,
      other summation orders), which measures how sensitive this output is to rounding on these inputs.
      Near 0 a sigmoid's relative error is its logit's absolute error: PP-OCRv4 det's output peaks at 1e-5
      on uniform inputs, and onnxruntime's two runs differ by 1.5e-7, 1.5% of it; the scale cannot tell
      that, the noise does;
    - ABS_FLOOR: onnxruntime's own absolute accuracy near 0; only matters for outputs that are ~0.
    NaN and Inf are equal where onnxruntime has the same value at the same place; anywhere else a
    non-finite value on either side fails. Integer and bool outputs must equal onnxruntime's (rtol and the
    scale term are 0), except by as much as onnxruntime's two runs differ."""
    check = OutputCheck(name, size=int(ref.size), rtol=rtol, noise_factor=noise_factor)
    if got.shape != ref.shape:
        check.problem = f"shape {list(got.shape)}, onnxruntime's {list(ref.shape)}"
        return check
    exact = ref.dtype.kind not in "fc"
    if exact:
        rtol = check.rtol = 0.0
        noise_factor = check.noise_factor = 1.0
    g, r = got.astype(np.float64), ref.astype(np.float64)
    a = alt.astype(np.float64) if alt is not None and alt.shape == ref.shape else None
    finite_r, finite_g = np.isfinite(r), np.isfinite(g)
    both = finite_r & finite_g
    same_nonfinite = ~finite_r & ~finite_g & ((np.isnan(r) & np.isnan(g)) | (r == g))
    mismatch = ~both & ~same_nonfinite
    check.scale = float(np.abs(r[finite_r]).max()) if finite_r.any() else 0.0
    if a is not None:
        both_ort = finite_r & np.isfinite(a)
        check.noise = float(np.abs(np.where(both_ort, r - np.where(both_ort, a, 0), 0)).max(initial=0.0))
    terms = {
        "scale": 0.0 if exact else rtol * check.scale,
        "noise": noise_factor * (check.noise or 0.0),
        "floor": 0.0 if exact else ABS_FLOOR,
    }
    check.bound = max(terms, key=terms.get)
    check.atol = terms[check.bound]
    if exact and check.atol == 0:
        check.bound = "exact"
    err = np.abs(np.where(both, g, 0) - np.where(both, r, 0))  # 0 where either side is NaN or Inf
    allowed = check.atol + rtol * np.abs(np.where(both, r, 0))
    check.max_err = float(err.max(initial=0.0))
    if check.max_err > 0:
        check.worst = float("inf") if not allowed.all() else float((err / allowed).max())
    check.beyond = int(np.count_nonzero(err > allowed)) + int(np.count_nonzero(mismatch))
    if mismatch.any():
        nan_ours = int(np.count_nonzero(mismatch & np.isnan(g) & finite_r))
        parts = [f"{int(np.count_nonzero(mismatch))} NaN/Inf mismatches"]
        if nan_ours:
            parts.append(f"{nan_ours} NaN where onnxruntime is finite")
        check.nonfinite = ", ".join(parts)
        check.worst = float("inf")
    return check


# ---------------------------------------------------------------------------------------------------------
# verification


@dataclass
class Run:
    """One kernel build on one set of inputs."""

    label: str
    checks: list[OutputCheck] = field(default_factory=list)
    trap: str = ""  # our bundle failed where onnxruntime ran

    @property
    def ok(self) -> bool:
        return not self.trap and all(c.ok for c in self.checks)


@dataclass
class Verification:
    inputs: str  # where the inputs came from
    generators: dict[str, str]  # input name -> how it was filled (empty for --inputs)
    runs: list[Run] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # input settings onnxruntime rejected: not verified

    @property
    def ok(self) -> bool:
        return not self.rejected and all(r.ok for r in self.runs)

    @property
    def failed(self) -> bool:
        """True when some run differs from onnxruntime (exit 1), as opposed to could-not-verify (exit 2)."""
        return any(not r.ok for r in self.runs)


def _shapes_label(feeds: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{name}={'x'.join(map(str, np.shape(v))) or 'scalar'}" for name, v in feeds.items())


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    line = lines[0] if lines else type(exc).__name__
    return line if len(line) <= 400 else line[:400] + "..."


def _ort_reason(exc: BaseException) -> str:
    """onnxruntime's message, cut to the node that failed and its innermost status: an error inside an If
    branch repeats "Non-zero status code returned while running ..." once per level."""
    line = _first_line(exc)
    found = re.findall(r"running (\w+) node\. Name:'([^']*)' Status Message: ", line)
    if found:
        op, node = found[-1]
        return f"{op} node{f' {node!r}' if node else ''}: {line.rsplit('Status Message: ', 1)[1]}"
    return line


def verify(
    bundle_dir,
    model: onnx.ModelProto,
    seed: int = 0,
    inputs: list[str | Path] | None = None,
    rtol: float = DEFAULT_RTOL,
    variants=("simd", "relaxed"),
) -> Verification:
    """Run the bundle (each variant) and onnxruntime on the same inputs and check every output with
    `check_output`. Inputs: the .npz files given (one setting each), else `fitted_inputs` at the bundle's
    shapes (for a dynamic bundle, at each setting of `concrete_inputs`). Raises VerifyError when
    onnxruntime cannot load the model or an --inputs file is unusable; inputs onnxruntime rejects are
    listed in `rejected`, our bundle trapping is a failed run."""
    # compact: the bundle's memory only, not 4 GiB + guard each (two sessions failed under an 8 GB limit)
    sessions = {variant: HostSession(bundle_dir, variant, compact=True) for variant in variants}
    manifest = next(iter(sessions.values())).manifest
    if inputs:
        settings = [load_inputs(path, manifest["inputs"]) for path in inputs]
        result = Verification(", ".join(str(p) for p in inputs), {})
    else:
        all_entries = concrete_inputs(manifest)
        settings = [fitted_inputs(model, entries, seed) for entries in all_entries]
        result = Verification(f"generated (seed {seed})", input_generators(model, manifest["inputs"]))
    try:
        reference = _session(model)
    except Exception as exc:  # onnxruntime raises its own Fail, InvalidGraph, NotImplemented...
        raise VerifyError(f"onnxruntime cannot load the model, so it cannot be verified: {_ort_reason(exc)}") from None
    try:
        plain = _session(model, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    except Exception:  # the noise term is then 0: the check is only stricter
        plain = None
    names = [o.name for o in reference.get_outputs()]
    for feeds in settings:
        shapes = _shapes_label(feeds)
        try:
            ref = dict(zip(names, reference.run(names, feeds), strict=True))
        except Exception as exc:
            source = "your" if inputs else "the generated"
            hint = "check the file's values and shapes" if inputs else "give your own inputs with --inputs FILE.npz"
            result.rejected.append(f"onnxruntime rejects {source} inputs at {shapes}: {_ort_reason(exc)}; {hint}")
            continue
        try:
            alt = dict(zip(names, plain.run(names, feeds), strict=True)) if plain else {}
        except Exception:
            alt = {}
        for variant, session in sessions.items():
            label = variant if len(settings) == 1 else f"{variant} @ {shapes}"
            run = Run(label)
            result.runs.append(run)
            try:
                ours = session.run(feeds)
            except ValueError as exc:  # the bundle's own input checks: shapes that disagree with its dims
                if not inputs:
                    raise  # our own inputs: a bug, not the user's
                raise VerifyError(f"the bundle rejects the inputs at {shapes}: {exc}") from None
            except (RuntimeError, MemoryError) as exc:  # a trap in a kernel, or a plan larger than wasm32 memory
                run.trap = _first_line(exc)
                continue
            for name in names:
                if name not in ours:
                    run.checks.append(OutputCheck(name, problem="the bundle has no such output"))
                    continue
                run.checks.append(check_output(name, ours[name], ref[name], alt.get(name), rtol))
    return result
