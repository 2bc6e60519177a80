"""ONNX -> IR -> (fold) -> lowering -> memory plan -> bundle. The one entry point the CLI and tests use."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import onnx

from . import control, dynamic, onnx_io, webgl
from . import tune as tuning
from .bundle import write_bundle
from .errors import PackageError
from .fold import fold_constants
from .ir import Graph
from .lowering import lower, supported_ops
from .passes import DEFAULT_LEVEL, Report, optimize
from .planner import plan_memory

BACKENDS = ("wasm", "webgl", "all")


@dataclass
class PackageResult:
    out_dir: Path
    manifest: dict
    graph: Graph
    report: Report


def _unsupported_listing(ops: list[tuple[str, str]]) -> str:
    supported = supported_ops()
    missing: dict[str, str] = {}
    for op, name in ops:
        if op not in supported and op not in missing:
            missing[op] = name
    if not missing:
        return ""
    listing = ", ".join(f"{op} (first used by node {name!r})" for op, name in sorted(missing.items()))
    return f"the model uses {len(missing)} op type(s) this runtime does not support: {listing}"


def check_supported(graph: Graph) -> None:
    """One error listing every op type left after optimization that no lowering handles, each with the
    first node using it. (Ops the optimizer folded or removed, e.g. shape arithmetic, do not count.)"""
    message = _unsupported_listing(
        [
            (n.op_type if n.domain in ("", "ai.onnx", "wasm_runtime") else f"{n.domain}.{n.op_type}", n.name)
            for n in graph.nodes
        ]
    )
    if message:
        raise PackageError(message)


def _check_domains(model: onnx.ModelProto) -> None:
    """Ops of other domains cannot even be shape-inferred: report them before trying."""
    foreign = [
        (f"{n.domain}.{n.op_type}", n.name or f"#{i}")
        for i, n in enumerate(model.graph.node)
        if n.domain not in ("", "ai.onnx")
    ]
    message = _unsupported_listing(foreign)
    if message:
        raise PackageError(message)


def import_model(
    source, input_shapes: dict[str, list[int]] | None = None, no_fold: set[str] | None = None
) -> tuple[onnx.ModelProto, Graph]:
    """Load, validate and convert; returns the (shape-fixed) ONNX model and its IR with static shapes.
    Values named in `no_fold` are never replaced by constants (see _package_dynamic)."""
    model = onnx_io.load_model(source)
    onnx_io.check_model(model)
    _check_domains(model)
    if input_shapes:
        model = onnx_io.fix_input_shapes(model, input_shapes)
    model, if_outputs = control.inline_if(model)
    graph = onnx_io.to_graph(model)
    if no_fold:
        graph.metadata["no_fold"] = set(no_fold)
    onnx_io.require_static_inputs(graph)
    # Shape arithmetic (Shape -> Gather -> Concat -> Reshape...) folds once the shapes it reads are inferred,
    # and the shapes after it are inferred once it has folded: alternate until nothing more folds.
    for _ in range(20):
        before = len(graph.nodes)
        fold_constants(graph)
        onnx_io.infer_shapes(graph, require_static=False)
        if len(graph.nodes) == before:
            break
    onnx_io.require_static_shapes(graph)
    control.check_branch_shapes(graph, if_outputs)
    return model, graph


def package(
    source,
    out_dir: str | Path,
    input_shapes: dict[str, list[int]] | None = None,
    name: str | None = None,
    opt_level: int = DEFAULT_LEVEL,
    tune: bool = False,
    variants: tuple[str, ...] | None = None,
    backend: str = "wasm",
    algorithms: dict[str, str] | None = None,
) -> PackageResult:
    """Package a model. The optimizer's report (per pass: nodes, op counts, parameter bytes, FLOPs and
    planned arena bytes before and after) is returned and written to the bundle as optimization.json.
    With `tune`, nodes that can run more than one way are timed per candidate (wasm_runtime/tune.py) and
    the fastest is planned; the manifest's `algorithms` lists every such choice (and its timings).
    `backend` "webgl" or "all" adds the GPU plan (wasm_runtime/webgl.py; the manifest's `webgl` section and
    webgl-weights.bin) next to the wasm plan, which every bundle keeps (the "auto" fallback). Nodes without
    a shader run on wasm between the GPU segments: their subgraph is packaged as a bundle of its own in
    WASM_PART_DIR (see _package_webgl). When no node can run on the GPU, "webgl" fails here naming them and
    "all" writes a section that only lists them (the bundle then runs on wasm).
    `algorithms` ({node: candidate}) plans those nodes with those kernels, over the defaults and `tune`'s
    picks: for experiments such as the benchmark's check that --tune's choices beat the ones it rejected."""
    if backend not in BACKENDS:
        raise PackageError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    model = onnx_io.load_model(source)
    if input_shapes:
        onnx_io.check_model(model)
        model = onnx_io.fix_input_shapes(model, input_shapes)
    symbols, bind = dynamic.symbols_of(model)
    fitted = None
    if symbols:
        if tune:
            raise PackageError("--tune needs fixed input shapes (--input-shape) for now")
        graph, lowered, plan, report, fitted = _package_dynamic(model, symbols, opt_level)
    else:
        _, graph = import_model(model)
        report = optimize(graph, opt_level)
        check_supported(graph)
    if name:
        graph.name = name
    timings = tuning.tune(graph) if tune else []
    chosen = {**tuning.choices(timings), **(algorithms or {})}
    if not symbols:
        lowered = lower(graph, chosen)  # which fails on a forced candidate that a node does not have
        unknown = [node for node in algorithms or {} if node not in lowered.algorithms]
        if unknown:
            have = ", ".join(lowered.algorithms) or "none"
            raise PackageError(f"algorithms: node {unknown[0]!r} has no choice of kernels (those that do: {have})")
        plan = plan_memory(graph, lowered)
    elif algorithms:
        raise PackageError("algorithms= needs fixed input shapes (--input-shape) for now")
    measured = tuning.as_json(timings)
    planned = {
        node: {"choice": choice, "candidates": options, **({"ms": measured[node]["ms"]} if node in measured else {})}
        for node, (choice, options) in lowered.algorithms.items()
    }
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not (out_dir / "manifest.json").exists() and any(out_dir.iterdir()):
            raise PackageError(f"{out_dir} exists and is not a bundle; refusing to overwrite it")
        shutil.rmtree(out_dir)
    extra_files = {"optimization.json": (json.dumps(report.to_json(), indent=1) + "\n").encode()}
    gpu = {}
    if backend != "wasm":
        if symbols:
            raise PackageError(f"--backend {backend} needs fixed input shapes (--input-shape) for now")
        gpu = _package_webgl(graph, backend, chosen, out_dir, extra_files, variants)
    manifest = write_bundle(
        graph,
        lowered,
        plan,
        out_dir,
        extra_files=extra_files,
        variants=variants,
        extra={
            "optimization": {
                "level": opt_level,
                "nodes_before": report.before.nodes,
                "nodes_after": report.after.nodes,
            },
            "algorithms": {"tuned": tune, "nodes": planned},
            **gpu,
        },
    )
    if fitted is not None:
        manifest = dynamic.dynamic_manifest(manifest, graph, lowered, plan, fitted, bind)
        (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return PackageResult(out_dir, manifest, graph, report)


WASM_PART_DIR = "wasm-part"


def _package_webgl(graph: Graph, backend: str, choices, out_dir: Path, extra_files: dict, variants) -> dict:
    """The manifest's `webgl` section (and its files). A node without a shader runs on wasm: the nodes placed
    there (webgl.partition) form a subgraph that is lowered, planned and written like any model, as the
    bundle in out_dir/WASM_PART_DIR, holding only the constants those nodes read (the GPU's are in
    webgl-weights.bin, so a mixed run downloads each constant once). The section's segments then say which
    of its steps run when, and where in its memory each tensor moved between the backends lives."""
    gl = webgl.plan_webgl(graph)
    if gl.partition is None:
        if backend == "webgl":
            listing = "; ".join(f"node {n!r} ({op}): {reason}" for n, op, reason in gl.unsupported)
            raise PackageError(
                f"no node of this model can run on the WebGL backend ({len(gl.unsupported)} without a shader: "
                f"{listing}); package it with --backend wasm"
            )
        return {"webgl": gl.section}
    extra_files[webgl.WEIGHTS_FILE] = gl.weights
    if gl.partition.mixed:
        sub = webgl.wasm_part(graph, gl.partition)
        sub_lowered = lower(sub, choices)
        sub_manifest = write_bundle(
            sub, sub_lowered, plan_memory(sub, sub_lowered), out_dir / WASM_PART_DIR, variants=variants
        )
        manifest_bytes = (out_dir / WASM_PART_DIR / "manifest.json").read_bytes()
        webgl.link_wasm_part(gl.section, gl.partition, sub_manifest, WASM_PART_DIR, manifest_bytes)
    return {"webgl": gl.section}


def _package_dynamic(model: onnx.ModelProto, symbols: list[str], opt_level: int):
    """Package at every probe point of the symbolic dims, fit the plan's formulas and check them at other
    points (wasm_runtime/dynamic.py). Returns the first probe's graph, lowering, plan and report, and the fit."""

    no_fold: set[str] = set()

    def optimized(values):
        _, graph = import_model(model, dynamic.shapes_at(model, symbols, values), no_fold)
        report = optimize(graph, opt_level, report=False)
        return graph, report

    def probe(values):
        graph, report = optimized(values)
        check_supported(graph)
        lowered = lower(graph)
        plan = plan_memory(graph, lowered)
        return graph, lowered, plan, report, dynamic.flatten(graph, lowered, plan)

    points = dynamic.fit_points(len(symbols))
    # Constants folded from dims (position ids sliced to the sequence length, masks...) differ per size:
    # keep the nodes that make them computed at run time, until folding gives the same constants everywhere
    # except index/shape vectors of the same length (those become formulas or stay package-time shape data).
    for _ in range(32):
        a, _ = optimized(points[0])
        b, _ = optimized(points[-1])
        varying = dynamic.varying_constants(a, b)
        if not varying - no_fold:
            break
        no_fold |= varying
    probes = [probe(v) for v in points]
    fitted = dynamic.fit(symbols, points, [p[4] for p in probes])
    for values in dynamic.check_points(len(symbols)):
        dynamic.check(fitted, values, probe(values)[4])
    graph, lowered, plan, report, _ = probes[0]
    return graph, lowered, plan, report, fitted
