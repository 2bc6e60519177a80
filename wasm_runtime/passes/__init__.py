"""The offline optimizer: passes run in order, repeatedly, until none fires (a fixed point).

    level 0  canonicalize only: constants folded (the lowering needs constant shapes)
    level 1  + cleanup: dead code, no-op nodes, duplicate constants, common subexpressions (bit-exact)
    level 2  + fusions: BatchNorm/bias/Pad folding, MatMul+Add -> Gemm, Transpose into Gemm, merged
             Transpose/Reshape/Concat chains, activation and residual epilogues (exact up to float32 rounding)

Level 2 is the default: the highest level whose results stay within float32 rounding of the original.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ..ir import Graph, toposort
from . import cleanup, fusion

Pass = Callable[[Graph], int]

CLEANUP: list[Pass] = [
    cleanup.fold_constants,
    cleanup.eliminate_noops,
    cleanup.eliminate_dead_code,
    cleanup.deduplicate_constants,
    cleanup.eliminate_common_subexpressions,
    cleanup.canonicalize_sum,
]
FUSION: list[Pass] = [
    fusion.fold_batch_norm,
    fusion.fuse_bias_add,
    fusion.fuse_pad,
    fusion.matmul_add_to_gemm,
    fusion.transpose_into_gemm,
    fusion.merge_transposes,
    fusion.merge_reshapes,
    fusion.merge_concats,
    fusion.fuse_residual,
    fusion.fuse_activation,
]
LEVELS: dict[int, list[Pass]] = {0: [cleanup.fold_constants], 1: CLEANUP, 2: CLEANUP + FUSION}
DEFAULT_LEVEL = 2
MAX_ROUNDS = 10


@dataclass
class Snapshot:
    nodes: int
    op_counts: dict[str, int]
    param_bytes: int
    flops: int
    arena_bytes: int | None = None


@dataclass
class PassRun:
    name: str
    rewrites: int
    before: Snapshot
    after: Snapshot
    seconds: float


@dataclass
class Report:
    level: int
    before: Snapshot
    after: Snapshot | None = None
    passes: list[PassRun] = field(default_factory=list)

    def to_json(self) -> dict:
        """Everything but wall-clock times, so packaging the same model twice gives identical bundles."""
        data = asdict(self)
        for run in data["passes"]:
            del run["seconds"]
        return data

    def format(self) -> str:
        def counts(s: Snapshot) -> str:
            return ", ".join(f"{op} {n}" for op, n in s.op_counts.items())

        def line(s: Snapshot) -> str:
            arena = f", arena {s.arena_bytes / 1e6:.2f} MB" if s.arena_bytes is not None else ""
            return f"{s.nodes} nodes, params {s.param_bytes / 1e6:.2f} MB, {s.flops / 1e9:.3f} GFLOP{arena}"

        out = [f"optimization level {self.level}", f"  before: {line(self.before)}", f"          {counts(self.before)}"]
        for run in self.passes:
            b, a = run.before, run.after
            changes = ", ".join(
                f"{op} {b.op_counts.get(op, 0)}->{a.op_counts.get(op, 0)}"
                for op in sorted(set(b.op_counts) | set(a.op_counts))
                if b.op_counts.get(op, 0) != a.op_counts.get(op, 0)
            )
            out.append(
                f"  {run.name}: {run.rewrites} rewrites, nodes {b.nodes}->{a.nodes} ({changes or 'same op types'}); "
                f"params {b.param_bytes / 1e6:.2f}->{a.param_bytes / 1e6:.2f} MB, "
                f"{b.flops / 1e9:.3f}->{a.flops / 1e9:.3f} GFLOP, arena {_mb(b.arena_bytes)}->{_mb(a.arena_bytes)} MB"
            )
        if self.after:
            out += [f"  after:  {line(self.after)}", f"          {counts(self.after)}"]
        return "\n".join(out)


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:.2f}"


def snapshot(graph: Graph, with_arena: bool = True) -> Snapshot:
    from ..flops import graph_flops

    used = {i for n in graph.nodes for i in n.inputs} | set(graph.outputs)
    params = sum(v.nbytes for v in graph.constants() if v.name in used)
    arena = None
    if with_arena:
        from ..lowering import lower
        from ..planner import plan_memory

        try:
            arena = plan_memory(graph, lower(graph)).arena_bytes
        except Exception:  # a graph mid-optimization may hold ops only a later pass makes lowerable
            arena = None
    return Snapshot(len(graph.nodes), graph.op_counts(), params, graph_flops(graph), arena)


def optimize(graph: Graph, level: int = DEFAULT_LEVEL, report: bool = True) -> Report:
    """Run the level's passes to a fixed point, in place. Records per-pass before/after snapshots when
    `report` (which costs a lowering and a memory plan per pass that fired)."""
    if level not in LEVELS:
        raise ValueError(f"optimization level must be one of {sorted(LEVELS)}")
    current = snapshot(graph, report)
    result = Report(level, current)
    for _ in range(MAX_ROUNDS):
        fired = 0
        for p in LEVELS[level]:
            t0 = time.perf_counter()
            n = p(graph)
            if n:
                toposort(graph)
            dt = time.perf_counter() - t0
            if n:
                after = snapshot(graph, report) if report else current
                result.passes.append(PassRun(p.__name__, n, current, after, dt))
                current = after
                fired += n
        if not fired:
            break
    for node in graph.nodes:  # the branches of run-time Ifs (control.py) are graphs of their own
        for sub in node.attrs.values():
            if isinstance(sub, Graph):
                optimize(sub, level, report=False)
    result.after = snapshot(graph, report)
    return result
