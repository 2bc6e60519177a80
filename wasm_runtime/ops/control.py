"""If with a run-time condition (control.py plans its branches as subgraphs): the steps of both branches,
each guarded by the condition, then each branch copies its outputs into the If's. Executors skip the steps of
the branch not taken, so a run computes one branch.

    y = If(c; then: {t = Relu(x)}, else: {e = Neg(x)})   =>   [c] relu(x -> t); [c] copy(t -> y);
                                                              [!c] neg(x -> e); [!c] copy(e -> y)

Both branches write y, and only one runs: the memory plan sees y live from the first branch's copy on, and
each branch's own tensors only within its steps (so the two branches can share arena space).
"""

from __future__ import annotations

import numpy as np

from ..control import SUBGRAPHS
from ..ir import Graph, Node, unique_name
from .context import Buf, LoweringContext


def _merge_values(ctx: LoweringContext, sub: Graph) -> None:
    """The planner looks every tensor up in the graph it plans: a branch's tensors join the enclosing graph's.
    A name the enclosing graph already uses for something else (a pass there made a name the branch also made)
    is renamed in the branch first."""
    outer = ctx.graph.values
    for name, v in list(sub.values.items()):
        mine = outer.get(name)
        if mine is None or mine is v:
            continue
        same_const = mine.is_const and v.is_const and mine.dtype == v.dtype and mine.shape == v.shape and (
            np.array_equal(mine.data, v.data)
        )
        if same_const or name in sub.inputs:  # a constant or value read from outside: the same tensor
            continue
        new = unique_name(Graph("", [*ctx.graph.nodes, *sub.nodes], {**outer, **sub.values}, [], [], 0), name)
        v.name = new
        sub.values[new] = sub.values.pop(name)
        for n in sub.nodes:
            n.inputs = [new if i == name else i for i in n.inputs]
            n.outputs = [new if o == name else o for o in n.outputs]
        sub.outputs = [new if o == name else o for o in sub.outputs]
    for name, v in sub.values.items():
        outer.setdefault(name, v)


def if_(ctx: LoweringContext, node: Node) -> None:
    if not isinstance(node.attrs.get(SUBGRAPHS[0]), Graph):
        raise ctx.fail("an If whose branches were not planned (internal error: control.plan_runtime_if)")
    cond = node.input(0)
    ctx.require_dtype(cond, dtypes=(np.bool_,))
    outer, guard = ctx.graph, ctx.guard
    # passes on the enclosing graph may have renamed a value the branches read: the If's inputs say which
    captured = node.attrs.get("captured", [])
    rename = {old: new for old, new in zip(captured, node.inputs[1:], strict=True) if old != new}
    node.attrs["captured"] = list(node.inputs[1:])
    for key, taken in zip(SUBGRAPHS, (True, False), strict=True):
        sub: Graph = node.attrs[key]
        if rename:
            for n in sub.nodes:
                n.inputs = [rename.get(i, i) for i in n.inputs]
            sub.outputs = [rename.get(o, o) for o in sub.outputs]
            sub.inputs = [rename.get(i, i) for i in sub.inputs]
        _merge_values(ctx, sub)
        ctx.graph = Graph(sub.name, sub.nodes, outer.values, sub.inputs, sub.outputs, outer.opset, outer.metadata)
        ctx.guard = (*guard, (cond, taken))
        try:
            if sub.metadata.get("cannot_run"):
                ctx.node = node
                ctx.emit_failure(
                    f"node {node.name!r} (If): the condition took the {key.split('_')[0]} branch, which cannot run "
                    f"with these input shapes: {sub.metadata['cannot_run']}"
                )
                continue
            ctx.lower_nodes(sub.nodes)
            ctx.node = node
            for src, dst in zip(sub.outputs, node.outputs, strict=True):
                nbytes = outer.values[dst].nbytes if dst else 0
                if nbytes:
                    ctx.emit("x_copy2d", 1, nbytes, Buf(src), nbytes, Buf(dst), nbytes)
        finally:
            ctx.graph, ctx.guard = outer, guard


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    "If": if_,
}
