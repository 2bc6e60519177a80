"""ONNX -> IR -> (fold) -> lowering -> memory plan -> bundle. The one entry point the CLI and tests use."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import onnx

from . import control, domain, dynamic, onnx_io, webgl
from . import tune as tuning
from .bundle import write_bundle
from .errors import PackageError
from .importer import import_model
from .ir import Graph
from .lowering import lower, unsupported_listing
from .partition import link_wasm_part, wasm_part
from .passes import DEFAULT_LEVEL, Report, optimize
from .planner import plan_memory
from .precompress import compressed_names, precompress_dir

BACKENDS = ("wasm", "webgl", "all")
MAX_MEMORY = 1 << 32  # what a wasm32 memory can hold (65536 pages)


@dataclass
class PackageResult:
    out_dir: Path
    manifest: dict
    graph: Graph
    report: Report


def _all_nodes(graph: Graph):
    """The graph's nodes and those of the branches of its run-time Ifs, depth first."""
    for n in graph.nodes:
        yield n
        if control.is_runtime_if(n):
            for key in control.SUBGRAPHS:
                yield from _all_nodes(n.attrs[key])


def check_supported(graph: Graph) -> None:
    """One error listing every op type left after optimization that no lowering handles, each with the
    first node using it. (Ops the optimizer folded or removed, e.g. shape arithmetic, do not count.)"""
    message = unsupported_listing(
        [
            (n.op_type if n.domain in ("", "ai.onnx", "wasm_runtime") else f"{n.domain}.{n.op_type}", n.name)
            for n in _all_nodes(graph)
        ]
    )
    if message:
        raise PackageError(message)


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
    force: bool = False,
    max_memory: int = MAX_MEMORY,
) -> PackageResult:
    """Package a model. The optimizer's report (per pass: nodes, op counts, parameter bytes, FLOPs and
    planned arena bytes before and after) is returned and written to the bundle as optimization.json.
    With `tune`, nodes that can run more than one way are timed per candidate (wasm_runtime/tune.py) and
    the fastest is planned; the manifest's `algorithms` lists every such choice (and its timings).
    `backend` "webgl" or "all" adds the GPU plan (wasm_runtime/webgl/; the manifest's `webgl` section and
    webgl-weights.bin) next to the wasm plan, which every bundle keeps (the "auto" fallback). Nodes without
    a shader run on wasm between the GPU segments: their subgraph is packaged as a bundle of its own in
    WASM_PART_DIR (see _package_webgl). When no node can run on the GPU, "webgl" fails here naming them and
    "all" writes a section that only lists them (the bundle then runs on wasm).
    `algorithms` ({node: candidate}) plans those nodes with those kernels, over the defaults and `tune`'s
    picks: for experiments such as the benchmark's check that --tune's choices beat the ones it rejected.
    The bundle is written next to `out_dir` and moved there at the end (staged_directory): an
    existing `out_dir` is replaced only when it holds a previous bundle and nothing else, or with `force`.
    A plan whose weights and arena need more than `max_memory` bytes (default: the 4 GiB a wasm32 memory can
    hold; for a dynamic plan, at its smallest sizes) is refused before anything is written."""
    if backend not in BACKENDS:
        raise PackageError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    out_dir = Path(out_dir)
    check_output_directory(out_dir, force)
    model = onnx_io.load_model(source)
    onnx_io.check_model(model)
    model = onnx_io.name_unknown_dims(model)
    if input_shapes:
        model = onnx_io.fix_input_shapes(model, input_shapes)
    symbols, bind = dynamic.symbols_of(model)
    if len(symbols) > 1:
        model = domain.couple_symbols(model, symbols)  # unnamed dims that must be equal become one symbol
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
    _check_memory(plan if fitted is None or fitted.minimum_probe is None else fitted.minimum_probe[2], max_memory)
    extra_files = {"optimization.json": (json.dumps(report.to_json(), indent=1) + "\n").encode()}
    if backend != "wasm" and symbols:
        raise PackageError(f"--backend {backend} needs fixed input shapes (--input-shape) for now")
    with staged_directory(out_dir, force) as work:
        gpu = _package_webgl(graph, backend, chosen, work, extra_files, variants) if backend != "wasm" else {}
        manifest = write_bundle(
            graph,
            lowered,
            plan,
            work,
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
            (work / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
            if fitted.minimum_probe is not None:
                _check_minimum_by_running(model, work, fitted)
        precompress_dir(work)
    return PackageResult(out_dir, manifest, graph, report)


def _check_memory(plan, max_memory: int) -> None:
    need = plan.weights_bytes + plan.arena_bytes
    if need > max_memory:
        raise PackageError(
            f"the plan needs {need / 2**20:.0f} MiB of memory ({plan.weights_bytes / 2**20:.0f} MiB of weights, "
            f"{plan.arena_bytes / 2**20:.0f} MiB of tensors), more than the {max_memory / 2**20:.0f} MiB allowed "
            "(--max-memory; a WebAssembly memory holds 4096 MiB at most): fix smaller input shapes"
        )


def _bundle_files(directory: Path) -> set[str] | None:
    """The entries a bundle directory holds (manifest.json, its files, a mixed plan's wasm part), or None
    when `directory` holds no bundle manifest."""
    from .bundle import FORMAT

    try:
        manifest = json.loads((directory / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return None
    if not isinstance(manifest.get("files"), dict):
        return None
    names = {"manifest.json", *manifest["files"]}
    names |= compressed_names(names)
    if isinstance(manifest.get("webgl"), dict) and isinstance(manifest["webgl"].get("wasm"), dict):
        names.add(str(manifest["webgl"]["wasm"].get("dir", WASM_PART_DIR)))
    return names


def check_output_directory(out_dir: Path, force: bool = False) -> None:
    """Before any work: `out_dir` must be free, or a directory holding a previous bundle and nothing else (or
    any directory, with `force`). A file, or a directory with anything else in it (a web app's folder with its
    own manifest.json), is never replaced without `force`, and a file never."""
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise PackageError(f"-o {out_dir}: exists and is not a directory; give a directory for the bundle")
    if not out_dir.exists() or force:
        return
    entries = {p.name for p in out_dir.iterdir()}
    if not entries:
        return
    bundle = _bundle_files(out_dir)
    if bundle is None:
        raise PackageError(
            f"-o {out_dir}: the directory exists and holds no bundle; refusing to replace it (choose another "
            "directory, or pass --force to replace it with everything in it)"
        )
    others = sorted(entries - bundle)
    if others:
        listing = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise PackageError(
            f"-o {out_dir}: the directory holds a bundle and other files ({listing}); refusing to replace it "
            "(move them, or pass --force to replace the directory with everything in it)"
        )


@contextlib.contextmanager
def staged_directory(out_dir: Path, force: bool = False):
    """A new directory next to `out_dir` to write the bundle into; on success it takes `out_dir`'s place (the
    old one is removed only then), on failure it is removed and `out_dir` is left as it was."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".new", dir=out_dir.parent))
    try:
        yield work
        check_output_directory(out_dir, force)  # again: the directory may have changed meanwhile
        old = None
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
            out_dir.replace(old / "bundle")
        work.replace(out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _check_minimum_by_running(model: onnx.ModelProto, out_dir: Path, fitted) -> None:
    """The dynamic bundle at its minimum sizes against a bundle packaged at those sizes, on the same seeded
    inputs in wasmtime: both are our kernels, so they agree to float32 rounding, or the fit is wrong there."""
    import tempfile

    import numpy as np

    from .host import HostSession
    from .verify import fitted_inputs

    graph, lowered, plan, _, _ = fitted.minimum_probe
    with tempfile.TemporaryDirectory(prefix="wasm-runtime-minimum-") as tmp:
        static = write_bundle(graph, lowered, plan, Path(tmp) / "b", variants=("simd",))
        feeds = fitted_inputs(model, static["inputs"], seed=0)
        expected = HostSession(Path(tmp) / "b").run(feeds)
    modules = json.loads((out_dir / "manifest.json").read_text())["kernels"]["modules"]
    variant = next(v for v in modules if "-mt" not in v)
    got = HostSession(out_dir, variant).run(feeds)
    sizes = ", ".join(f"{s}={d.minimum}" for s, d in zip(fitted.symbols, fitted.domains, strict=True))
    for name, want in expected.items():
        have = got[name]
        scale = float(np.abs(want[np.isfinite(want)]).max(initial=0.0)) if want.dtype.kind == "f" else 0.0
        same = have.shape == want.shape and np.allclose(have, want, rtol=1e-5, atol=1e-5 * scale, equal_nan=True)
        if not same:
            raise PackageError(
                f"output {name!r}: the plan fitted for every size gives other results at the smallest sizes "
                f"({sizes}) than a plan made for them, so no single plan serves every shape; fix the dims with "
                "--input-shape"
            )


WASM_PART_DIR = "wasm-part"


def _package_webgl(graph: Graph, backend: str, choices, out_dir: Path, extra_files: dict, variants) -> dict:
    """The manifest's `webgl` section (and its files). A node without a shader runs on wasm: the nodes placed
    there (wasm_runtime/partition.py) form a subgraph that is lowered, planned and written like any model, as the
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
        sub = wasm_part(graph, gl.partition)
        sub_lowered = lower(sub, choices)
        sub_manifest = write_bundle(
            sub, sub_lowered, plan_memory(sub, sub_lowered), out_dir / WASM_PART_DIR, variants=variants
        )
        manifest_bytes = (out_dir / WASM_PART_DIR / "manifest.json").read_bytes()
        link_wasm_part(gl.section, gl.partition, sub_manifest, WASM_PART_DIR, manifest_bytes)
    return {"webgl": gl.section}


def _package_dynamic(model: onnx.ModelProto, symbols: list[str], opt_level: int):
    """Package at probe points of the symbolic dims, fit the plan's formulas and check them at other points
    (wasm_runtime/dynamic.py). The sizes each symbol may take come first (wasm_runtime/domain.py): probes and
    formulas are in k = size / step. Returns the first probe's graph, lowering, plan and report, and the fit."""
    domains = domain.find_domains(model, symbols)
    no_fold: set[str] = set()

    def sizes(ks):
        return tuple(d.step * k for d, k in zip(domains, ks, strict=True))

    def optimized(ks):
        _, graph = import_model(model, dynamic.shapes_at(model, symbols, sizes(ks)), no_fold, check=False)
        graph.metadata["dynamic"] = True  # lowerings pick the forms that hold at every size (ops/resize.py)
        report = optimize(graph, opt_level, report=False)
        return graph, report

    def probe(ks):
        graph, report = optimized(ks)
        check_supported(graph)
        lowered = lower(graph)
        plan = plan_memory(graph, lowered)
        return graph, lowered, plan, report, dynamic.flatten(graph, lowered, plan)

    k_mins = [d.k_min for d in domains]
    # Constants folded from dims (position ids sliced to the sequence length, masks...) differ per size:
    # keep the nodes that make them computed at run time, until folding gives the same constants everywhere
    # except index/shape vectors of the same length (those become formulas or stay package-time shape data).
    ends = dynamic.fit_points(k_mins)
    for _ in range(32):
        a, _ = optimized(ends[0])
        b, _ = optimized(ends[-1])
        varying = dynamic.varying_constants(a, b)
        if not varying - no_fold:
            break
        no_fold |= varying
    probes: dict[tuple, tuple] = {}

    def probed(ks):
        if ks not in probes:
            probes[ks] = probe(ks)
        return probes[ks]

    def fitted_at(degrees):
        points = dynamic.fit_points(k_mins, degrees)
        # the two ends first: a plan whose structure changes with the size fails before the other probes run
        dynamic.fit(symbols, [points[0], points[-1]], [probed(points[0])[4], probed(points[-1])[4]], True)
        fitted = dynamic.fit(symbols, points, [probed(p)[4] for p in points], degrees=degrees)
        fitted.domains = domains
        _, *beyond = dynamic.check_points(k_mins)
        for ks in beyond:
            dynamic.check(fitted, ks, probed(ks)[4])
        return fitted, probed(points[0])

    def check_minimum(fitted):
        """The plan at each symbol's minimum should be the fitted one. A lowering may specialize there (a unit
        dim makes a Transpose a view, a batch of 1 a plain GEMM, a view folds a dim of 1 away): then the fitted
        plan, which is meant to handle those sizes too, is run against that packaging in wasmtime once the
        bundle is written (package(): _check_minimum_by_running)."""
        minimum = tuple(k_mins)
        flat = probed(minimum)[4]
        if flat.structure == fitted.flat.structure:
            try:
                dynamic.check(fitted, minimum, flat)
                return
            except PackageError:
                pass
        fitted.minimum_probe = probed(minimum)

    # each symbol's degree (domain.py) says how many probes of it the fit needs; if a number of the plan has
    # a higher degree than the tensor sizes (none known), the checks say so and the full grid is fitted
    degrees = [d.degree for d in domains]
    try:
        fitted, first = fitted_at(degrees)
    except PackageError:
        if degrees == [dynamic.DEGREE] * len(degrees):
            raise
        fitted, first = fitted_at([dynamic.DEGREE] * len(degrees))
    check_minimum(fitted)
    minimum = tuple(k_mins)
    # shapes only (folding and inference, no lowering): cheap enough for more sizes, the largest far out
    shapes = domain.ShapeProbe(model, symbols)
    for ks in [minimum, tuple(k + 1 for k in k_mins), tuple(k + 2 for k in k_mins), tuple(k + 47 for k in k_mins)]:
        at = shapes(sizes(ks))
        if isinstance(at, str):
            listing = ", ".join(d.describe(s) for s, d in zip(symbols, domains, strict=True))
            raise PackageError(f"the model fails at sizes it should accept ({listing}): {at}")
        dynamic.check_shapes(fitted, ks, at)
    graph, lowered, plan, report, _ = first
    return graph, lowered, plan, report, fitted
