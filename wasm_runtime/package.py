"""ONNX -> IR -> (fold) -> lowering -> memory plan -> bundle. The one entry point the CLI and tests use."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import onnx

from . import onnx_io
from .bundle import write_bundle
from .errors import PackageError
from .fold import fold_constants
from .ir import Graph
from .lowering import lower, supported_ops


@dataclass
class PackageResult:
    out_dir: Path
    manifest: dict
    graph: Graph


def check_supported(model: onnx.ModelProto) -> None:
    """One error listing every op type the runtime lacks, each with the first node that uses it."""
    supported = supported_ops()
    missing: dict[str, str] = {}
    for i, node in enumerate(model.graph.node):
        op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        if op not in supported and op not in missing:
            missing[op] = node.name or f"#{i}"
    if missing:
        listing = ", ".join(f"{op} (first used by node {name!r})" for op, name in sorted(missing.items()))
        raise PackageError(f"the model uses {len(missing)} op type(s) this runtime does not support: {listing}")


def import_model(source, input_shapes: dict[str, list[int]] | None = None) -> tuple[onnx.ModelProto, Graph]:
    """Load, validate and convert; returns the (shape-fixed) ONNX model and its IR with static shapes."""
    model = onnx_io.load_model(source)
    onnx_io.check_model(model)
    check_supported(model)
    if input_shapes:
        model = onnx_io.fix_input_shapes(model, input_shapes)
    graph = onnx_io.to_graph(model)
    onnx_io.require_static_inputs(graph)
    fold_constants(graph)
    onnx_io.infer_shapes(graph)
    return model, graph


def package(
    source, out_dir: str | Path, input_shapes: dict[str, list[int]] | None = None, name: str | None = None
) -> PackageResult:
    from .planner import plan_memory

    _, graph = import_model(source, input_shapes)
    if name:
        graph.name = name
    lowered = lower(graph)
    plan = plan_memory(graph, lowered)
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not (out_dir / "manifest.json").exists() and any(out_dir.iterdir()):
            raise PackageError(f"{out_dir} exists and is not a bundle; refusing to overwrite it")
        shutil.rmtree(out_dir)
    manifest = write_bundle(graph, lowered, plan, out_dir)
    return PackageResult(out_dir, manifest, graph)
