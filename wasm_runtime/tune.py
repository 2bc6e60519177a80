"""Kernel auto-tuning (package-for-web --tune): for every node that can run more than one way (a 3x3
convolution as im2col + GEMM or as Winograd, ...), package the node alone once per candidate, time it in
wasmtime on the same kernel module the browser gets, and keep the fastest. Identical layers (same op,
shapes and attributes) are timed once. The choices go to the lowering and into the manifest."""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .bundle import write_bundle
from .host import HostSession
from .ir import Graph, Node
from .lowering import lower
from .planner import plan_memory
from .verify import random_inputs


@dataclass
class Timing:
    node: str
    choice: str
    ms: dict[str, float]  # candidate -> median milliseconds


def _single_node_graph(graph: Graph, node: Node) -> Graph:
    names = [i for i in node.inputs if i] + [o for o in node.outputs if o]
    values = {n: graph.values[n] for n in names if n in graph.values}
    inputs = [i for i in node.inputs if i and not graph.values[i].is_const]
    return Graph(f"tune-{node.name}", [node], values, inputs, [node.outputs[0]], graph.opset, {})


def _signature(graph: Graph, node: Node) -> tuple:
    shapes = tuple((graph.values[i].shape, graph.values[i].is_const) if i else None for i in node.inputs)
    attrs = tuple(sorted((k, repr(v)) for k, v in node.attrs.items()))
    return (node.domain, node.op_type, shapes, attrs)


def _time_candidate(graph: Graph, node: Node, candidate: str, variant: str, repeats: int, workdir: Path) -> float:
    sub = _single_node_graph(graph, node)
    lowered = lower(sub, {node.name: candidate})
    out = workdir / f"{len(list(workdir.iterdir()))}"
    write_bundle(sub, lowered, plan_memory(sub, lowered), out)
    session = HostSession(out, variant, check_integrity=False)
    feeds = random_inputs(session.inputs)
    session.run(feeds)  # warm-up
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        session.run(feeds)
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def tune(graph: Graph, variant: str = "relaxed", repeats: int = 5) -> list[Timing]:
    """Time every multi-candidate node; returns one Timing per such node (choice = fastest)."""
    candidates = lower(graph).algorithms
    by_name = {n.name: n for n in graph.nodes}
    seen: dict[tuple, dict[str, float]] = {}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (_, options) in candidates.items():
            node = by_name[name]
            key = _signature(graph, node)
            if key not in seen:
                seen[key] = {c: _time_candidate(graph, node, c, variant, repeats, Path(tmp)) for c in options}
            ms = seen[key]
            results.append(Timing(name, min(ms, key=ms.get), ms))
    return results


def choices(timings: list[Timing]) -> dict[str, str]:
    return {t.node: t.choice for t in timings}


def as_json(timings: list[Timing]) -> dict:
    return {t.node: {"choice": t.choice, "ms": {k: round(v, 4) for k, v in t.ms.items()}} for t in timings}
