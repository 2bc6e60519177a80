"""Which ops the wasm backend runs and how: op type -> OpEntry (its typed-spec parser and its wasm lowering).

Each op family module in this package ends with `LOWERINGS = {"OpType": lowering, ...}` (its wasm lowerings)
and, for ops whose attributes are parsed into a typed spec, `SPECS = {"OpType": parser, ...}`. The families
are listed here by hand, so `lowering.lower()` (which imports this module) sees every op whatever else was
imported; nothing registers itself by being imported.

A new op in an existing family: its lowering (and spec, if any) in the family module, one row in that module's
LOWERINGS (and SPECS), a test. A new family: a new module with those tables, and one line in FAMILIES.

Each backend keeps its own table keyed by op type: this one for wasm, webgl/shaders.py for WebGL (a WebGPU
backend adds its own beside it). They share the op semantics, not the table: the typed specs parsed here are
what webgl/geometry.py reads, so an op's attributes are parsed in one place, while ops/ never imports a GPU
backend and no backend registers itself into another's table by being imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FAMILIES = tuple(
    importlib.import_module(f"{__package__}.{name}")
    for name in (
        "activation",
        "arithmetic",
        "cast",
        "control",
        "conv",
        "conv_transpose",
        "einsum",
        "gemm",
        "index",
        "logic",
        "matmul_integer",
        "movement",
        "normalization",
        "pool",
        "reduce",
        "resize",
        "rnn",
        "softmax",
        "tensor",
        "unary_math",
    )
)


@dataclass
class OpEntry:
    wasm: Callable[..., None]  # (ctx, spec) when `spec` is set, else (ctx, node)
    spec: Callable[..., Any] | None = None  # (graph, node) -> the op's typed spec, parsed once per node


def collect() -> dict[str, OpEntry]:
    """op type -> OpEntry from every family's tables."""
    table: dict[str, OpEntry] = {}
    for family in FAMILIES:
        specs = getattr(family, "SPECS", {})
        for op, lowering in family.LOWERINGS.items():
            if op in table:
                raise AssertionError(f"op {op} is lowered by two families ({family.__name__} and another)")
            table[op] = OpEntry(lowering, specs.get(op))
        stray = set(specs) - set(family.LOWERINGS)
        if stray:
            raise AssertionError(f"{family.__name__}: specs without a lowering: {sorted(stray)}")
    return table


REGISTRY: dict[str, OpEntry] = collect()


def wasm_lowerings() -> dict[str, Callable]:
    """op type -> (ctx, node) -> None: the wasm lowering, given the op's spec parsed from the node when it has
    one."""
    return {op: _with_spec(e) if e.spec else e.wasm for op, e in REGISTRY.items()}


def _with_spec(entry: OpEntry) -> Callable:
    def lower(ctx, node):
        entry.wasm(ctx, entry.spec(ctx.graph, node))

    return lower
