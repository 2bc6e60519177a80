"""The ONNX backend conformance suite run through our bundles.

`WasmBackend` is an `onnx.backend.base.Backend`: `prepare(model)` packages the model (the same pipeline as
`package-for-web`: optimizer, lowering, planner, kernel build) and loads it in the wasmtime host;
`rep.run(inputs)` runs it. `onnx.backend.test.BackendTest(WasmBackend)` drives it under pytest
(tests/test_conformance.py runs the committed list of expected passes).

`python -m wasm_runtime.conformance` runs every node test case (or `--op Abs --op Gather`, `-k regex`),
prints what failed and why, and with `--write` regenerates `docs/OPERATORS.md` and the expected-pass list
`tests/conformance/expected_pass.txt` from that run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

from .errors import BundleError, PackageError
from .kernels import REPO_ROOT

EXPECTED_FILE = REPO_ROOT / "tests" / "conformance" / "expected_pass.txt"
RESULTS_FILE = REPO_ROOT / "tests" / "conformance" / "results.json"
DOC_FILE = REPO_ROOT / "docs" / "OPERATORS.md"

# dtypes this runtime computes in; tests whose tensors use others are out of scope (listed, not counted)
IN_SCOPE_DTYPES = {"float32", "int64", "int32", "bool"}
# ops about indices, shapes or masks, whose integer/bool-only tests count along with the float32 ones
INDEX_OPS = {
    "And", "ArgMax", "ArgMin", "BitShift", "Cast", "CastLike", "Compress", "Concat", "ConstantOfShape", "CumSum",
    "Equal", "Expand", "Flatten", "Gather", "GatherElements", "GatherND", "Greater", "GreaterOrEqual", "Identity",
    "If", "IsInf", "IsNaN", "Less", "LessOrEqual", "NonZero", "Not", "OneHot", "Or", "Pad", "Range", "Reshape",
    "ReverseSequence", "ScatterElements", "ScatterND", "Shape", "Size", "Slice", "Split", "Squeeze", "Tile", "TopK",
    "Transpose", "Trilu", "Unsqueeze", "Where", "Xor",
}  # fmt: skip
# ops defined on 8-bit or unsigned integers (bit patterns, quantized products): those tests count too
UNSIGNED_OPS = {"BitShift", "MatMulInteger"}


class WasmBackendRep(BackendRep):
    def __init__(self, session, input_names: list[str], output_names: list[str]):
        self.session = session
        self.input_names = input_names
        self.output_names = output_names

    def run(self, inputs, **kwargs):
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            if not isinstance(inputs, (list, tuple)):
                inputs = [inputs]
            feeds = dict(zip(self.input_names, inputs, strict=False))
        bundle_inputs = {e["name"] for e in self.session.inputs}
        feeds = {k: np.asarray(v) for k, v in feeds.items() if k in bundle_inputs}  # unused inputs are pruned
        results = self.session.run(feeds)
        return [results[name] for name in self.output_names]


class WasmBackend(Backend):
    """Packages with every optimization (the path users take) and runs the plain SIMD build in wasmtime."""

    variant = "simd"

    @classmethod
    def prepare(cls, model, device: str = "CPU", **kwargs):
        from .host import HostSession
        from .package import package

        if not cls.supports_device(device):
            raise BackendIsNotSupposedToImplementIt(f"device {device!r}")
        tmp = Path(tempfile.mkdtemp(prefix="wasm-conformance-"))
        try:
            package(model, tmp / "bundle", variants=(cls.variant,))
            session = HostSession(tmp / "bundle", variant=cls.variant)  # reads every file it needs
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        initializers = {i.name for i in model.graph.initializer}
        inputs = [i.name for i in model.graph.input if i.name not in initializers]
        return WasmBackendRep(session, inputs, [o.name for o in model.graph.output])

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device.upper().startswith("CPU")


class BackendIsNotSupposedToImplementIt(NotImplementedError):
    pass


# ---------------------------------------------------------------------------------------------------------
# the suite


@dataclass
class CaseInfo:
    name: str
    ops: list[str]
    dtypes: set[str]
    expanded: bool
    scope: str  # "" when the case counts for its op; else why it does not
    case: object = field(repr=False, default=None)


@cache
def node_cases() -> list:
    from onnx.backend.test.loader import load_node_model_tests

    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        return load_node_model_tests()


def _tensor_dtypes(model: onnx.ModelProto) -> set[str]:
    out = set()
    for vi in list(model.graph.input) + list(model.graph.output):
        t = vi.type
        if t.HasField("tensor_type"):
            out.add(
                np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.tensor_type.elem_type)).name
                if t.tensor_type.elem_type not in _NON_NUMPY
                else _NON_NUMPY[t.tensor_type.elem_type]
            )
        else:
            out.add(t.WhichOneof("value") or "unknown")
    return out


_NON_NUMPY = {
    onnx.TensorProto.BFLOAT16: "bfloat16",
    onnx.TensorProto.STRING: "string",
    **{
        getattr(onnx.TensorProto, n): n.lower()
        for n in ("FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1")
        if hasattr(onnx.TensorProto, n)
    },
}


def classify(case) -> CaseInfo:
    model = case.model
    ops = sorted({n.op_type for n in model.graph.node} - {"Constant"}) or ["Constant"]
    expanded = "_expanded" in case.name
    try:
        dtypes = _tensor_dtypes(model)
    except Exception:  # noqa: BLE001  (a dtype numpy cannot name)
        dtypes = {"unknown"}
    scope = ""
    if expanded:
        scope = "expanded function body (counted under the ops it uses)"
    elif len(ops) > 1:
        scope = f"several ops ({', '.join(ops)})"
    elif ops[0] == "Dropout" and any(len(n.input) > 2 and n.input[2] for n in model.graph.node):
        scope = "training mode (draws random numbers; this is an inference runtime)"
    else:
        allowed = set(IN_SCOPE_DTYPES)
        if ops[0] in UNSIGNED_OPS:
            allowed |= {"uint8", "uint16", "uint32", "uint64", "int8"}
        other = sorted(dtypes - allowed)
        if other:
            scope = f"dtype {'/'.join(other)}"
        elif "float32" not in dtypes and ops[0] not in INDEX_OPS | UNSIGNED_OPS:
            scope = "integer arithmetic (float32 only for this op)"
    return CaseInfo(case.name, ops, dtypes, expanded, scope, case)


def run_case(info: CaseInfo) -> str:
    """'' when the case passes, else a one-line reason."""
    from onnx.backend.test.runner import Runner

    case = info.case
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rep = WasmBackend.prepare(case.model)
            for inputs, ref_outputs in case.data_sets:
                inputs = [onnx.numpy_helper.to_array(t) if isinstance(t, onnx.TensorProto) else t for t in inputs]
                refs = [onnx.numpy_helper.to_array(t) if isinstance(t, onnx.TensorProto) else t for t in ref_outputs]
                outputs = rep.run(inputs)
                Runner.assert_similar_outputs(refs, outputs, rtol=case.rtol, atol=case.atol)
        return ""
    except (PackageError, BundleError, ValueError, RuntimeError) as exc:
        return f"{type(exc).__name__}: {_first_line(str(exc))}"
    except AssertionError as exc:
        return f"wrong result: {_first_line(_mismatch(str(exc)))}"
    except Exception as exc:  # noqa: BLE001  (the runner reports every failure, whatever it is)
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        return f"{type(exc).__name__}: {_first_line(str(exc))} ({Path(tb.filename).name}:{tb.lineno})"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[0] if lines else "")[:300]


def _mismatch(text: str) -> str:
    m = re.search(r"Mismatched elements: .*", text)
    return m.group(0) if m else text


def select(ops: list[str] | None = None, pattern: str | None = None, names: set[str] | None = None) -> list[CaseInfo]:
    infos = [classify(c) for c in node_cases()]
    if ops:
        infos = [i for i in infos if set(i.ops) & set(ops)]
    if pattern:
        infos = [i for i in infos if re.search(pattern, i.name)]
    if names is not None:
        infos = [i for i in infos if i.name in names]
    return infos


def run_all(infos: list[CaseInfo], verbose: bool = False) -> dict[str, str]:
    results = {}
    for info in infos:
        t0 = time.perf_counter()
        results[info.name] = run_case(info)
        if verbose:
            status = "ok" if not results[info.name] else "FAIL " + results[info.name]
            print(f"{info.name:60s} {time.perf_counter() - t0:5.2f}s {status}", flush=True)
    return results


# ---------------------------------------------------------------------------------------------------------
# the operator table


def op_table(infos: list[CaseInfo], results: dict[str, str]) -> dict[str, dict]:
    """Per op type: in-scope tests passed/total, dtypes of the passing tests, out-of-scope tests and why."""
    from .lowering import supported_ops

    supported = supported_ops()
    table: dict[str, dict] = defaultdict(
        lambda: {"passed": 0, "total": 0, "dtypes": set(), "failures": {}, "excluded": defaultdict(int)}
    )
    for info in infos:
        if info.expanded or len(info.ops) != 1:
            continue
        row = table[info.ops[0]]
        if info.scope:
            row["excluded"][info.scope] += 1
            continue
        row["total"] += 1
        reason = results.get(info.name)
        if reason == "":
            row["passed"] += 1
            row["dtypes"] |= info.dtypes
        else:
            row["failures"][info.name] = reason or "not run"
    for op, row in table.items():
        row["supported"] = op in supported
        row["full"] = row["total"] > 0 and row["passed"] == row["total"]
    return dict(table)


def render_markdown(table: dict[str, dict], command: str) -> str:
    full = sorted(op for op, r in table.items() if r["full"])
    partial = sorted(op for op, r in table.items() if not r["full"] and r["passed"])
    lines = [
        "# Operator coverage",
        "",
        f"Generated by `{command}` from a run of the ONNX node conformance tests (onnx {onnx.__version__}) through",
        "`package-for-web` and the wasmtime host. Do not edit by hand.",
        "",
        f"- **{len(full)} op types pass every in-scope node test**; {len(partial)} more pass some.",
        "- In scope: single-op tests on float32 tensors, plus int64/int32/bool tests of ops about indices, shapes "
        "or masks. Other dtypes (float16, double, int8, strings...), expanded function bodies and multi-op tests "
        "are listed as excluded, with the reason.",
        "",
        "Beyond single ops (the README has the details):",
        "",
        "- **If**: a condition that folds to a constant (a shape, a rank, a fixed sample rate) keeps only the branch "
        "taken; a run-time condition plans both branches and runs the one it picks (outputs of one dtype and shape "
        "in both branches; a branch that cannot run with the packaged shapes stops the run with its reason). Loop and "
        "Scan are not supported.",
        "- **Dynamic shapes**: every op above can take symbolic dims, each of which takes the multiples of a step "
        "from a minimum (found from the model: a stride-32 detector takes multiples of 32). Refused at package "
        "time, naming the dim and a valid --input-shape: dims the model accepts at one size only, or whose plan "
        "changes structure with the size; sizes that depend on data (NonZero, Unique) need a static declared "
        "shape.",
        "",
        "| op | status | node tests passed | dtypes seen passing | excluded (why) | failing (first reason) |",
        "|---|---|---|---|---|---|",
    ]
    for op in sorted(table):
        r = table[op]
        if r["full"]:
            status = "full"
        elif r["passed"]:
            status = "partial"
        elif r["supported"]:
            status = "no in-scope test" if r["total"] == 0 else "failing"
        else:
            status = "—"
        excluded = "; ".join(f"{n}: {why}" for why, n in sorted(r["excluded"].items()))
        failing = ""
        if r["failures"]:
            name, reason = next(iter(sorted(r["failures"].items())))
            more = f" (+{len(r['failures']) - 1} more)" if len(r["failures"]) > 1 else ""
            failing = f"`{name}`: {reason.replace('|', '/')}{more}"
        dtypes = ", ".join(sorted(r["dtypes"]))
        lines.append(f"| {op} | {status} | {r['passed']}/{r['total']} | {dtypes} | {excluded} | {failing} |")
    lines.append("")
    return "\n".join(lines)


def write_outputs(infos: list[CaseInfo], results: dict[str, str], command: str) -> dict:
    table = op_table(infos, results)
    DOC_FILE.parent.mkdir(parents=True, exist_ok=True)
    DOC_FILE.write_text(render_markdown(table, command))
    EXPECTED_FILE.parent.mkdir(parents=True, exist_ok=True)
    passed = sorted(n for n, r in results.items() if r == "")
    EXPECTED_FILE.write_text(
        "# node tests that pass through package-for-web + the wasmtime host; tests/test_conformance.py fails on\n"
        "# any regression. Regenerate with: python -m wasm_runtime.conformance --write\n" + "\n".join(passed) + "\n"
    )
    RESULTS_FILE.write_text(json.dumps(results, indent=0, sort_keys=True) + "\n")
    return table


def expected_passes() -> list[str]:
    if not EXPECTED_FILE.exists():
        return []
    return [ln.strip() for ln in EXPECTED_FILE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wasm_runtime.conformance", description=__doc__.split("\n\n")[0])
    p.add_argument("--op", action="append", help="only the node tests of this op type (repeatable)")
    p.add_argument("-k", help="only test names matching this regex")
    p.add_argument("-v", "--verbose", action="store_true", help="print every case")
    p.add_argument("--write", action="store_true", help="regenerate docs/OPERATORS.md and the expected-pass list")
    args = p.parse_args(argv)
    if args.write and (args.op or args.k):
        p.error("--write needs the whole suite (no --op / -k)")
    infos = select(args.op, args.k)
    t0 = time.perf_counter()
    results = run_all(infos, args.verbose)
    took = time.perf_counter() - t0
    table = op_table(infos, results)
    if not args.verbose:
        for name, reason in sorted(results.items()):
            if reason:
                print(f"FAIL {name}: {reason}")
    full = sorted(op for op, r in table.items() if r["full"])
    print(
        f"{sum(r == '' for r in results.values())}/{len(results)} cases passed in {took:.0f} s; "
        f"{len(full)} op types fully pass: {', '.join(full)}"
    )
    if args.write:
        write_outputs(infos, results, "python -m wasm_runtime.conformance --write")
        print(f"wrote {DOC_FILE.relative_to(REPO_ROOT)} and {EXPECTED_FILE.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
