"""Lowering: each IR node becomes kernel calls (steps) or a view of another tensor (alias).

ops/registry.py maps each op type to its lowering (one module per op family in ops/); `lower` runs them through
a LoweringContext (ops/context.py: the symbolic arguments Buf, Const, Scratch, Derived that the planner resolves,
re-exported here for the planner, the bundle writer and the dynamic-shape fitter).
"""

from __future__ import annotations

from .ir import Graph
from .ops import registry
from .ops.context import Arg, Buf, Const, Derived, Lowered, LoweringContext, Scratch, Split, Step, i32

__all__ = [
    "Arg", "Buf", "Const", "Derived", "Lowered", "LoweringContext", "Scratch", "Split", "Step", "i32",
    "lower", "supported_ops",
]  # fmt: skip


def lower(graph: Graph, choices: dict[str, str] | None = None) -> Lowered:
    ctx = LoweringContext(graph, choices, registry.wasm_lowerings())
    ctx.lower_nodes(graph.nodes)
    return ctx.out


def supported_ops() -> set[str]:
    """The op types the wasm backend lowers."""
    return set(registry.REGISTRY)


def unsupported_listing(ops: list[tuple[str, str]]) -> str:
    """One line naming the op types of `ops` ((op type, first node) pairs) the wasm backend cannot lower, with
    the first node using each; "" when it lowers them all."""
    supported = supported_ops()
    missing: dict[str, str] = {}
    for op, name in ops:
        if op not in supported and op not in missing:
            missing[op] = name
    if not missing:
        return ""
    listing = ", ".join(f"{op} (first used by node {name!r})" for op, name in sorted(missing.items()))
    return f"the model uses {len(missing)} op type(s) this runtime does not support: {listing}"
