"""Control flow: `If` nodes are inlined before anything else sees the graph.

Both branches become ordinary nodes of the main graph (their own names prefixed, outer-scope references
kept), and each output of the If becomes `Where(cond, then_output, else_output)`. When `cond` is a constant
(the common case: exporters branch on shapes, which fold), constant folding resolves the Where and dead-code
removal drops the branch not taken, so nothing of it ships. When `cond` is only known at run time, both
branches run and the Where selects: ONNX ops have no side effects, so this gives the If's result, at the
cost of computing the branch not taken. Both branches must then produce the same static shape (checked
after shape inference, `check_branch_shapes`).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .errors import PackageError


def _produced(graph: onnx.GraphProto) -> set[str]:
    names = {i.name for i in graph.initializer}
    for n in graph.node:
        names.update(o for o in n.output if o)
    return names


def _rename_graph_refs(graph: onnx.GraphProto, mapping: dict[str, str]) -> None:
    """Rename references in a nested subgraph (e.g. an If inside a branch) that point at renamed names,
    except where the subgraph defines the name itself."""
    local = _produced(graph) | {i.name for i in graph.input}
    inner = {k: v for k, v in mapping.items() if k not in local}
    for n in graph.node:
        for i, name in enumerate(n.input):
            if name in inner:
                n.input[i] = inner[name]
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _rename_graph_refs(a.g, inner)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    _rename_graph_refs(g, inner)
    for o in graph.output:
        if o.name in inner:
            o.name = inner[o.name]


def _inline_branch(branch: onnx.GraphProto, prefix: str, taken: set[str]) -> tuple[list, list[str]]:
    """(nodes, output names) of a branch body with every name it defines made unique in the main graph."""
    mapping = {}
    for name in sorted(_produced(branch)):
        new = f"{prefix}{name}"
        while new in taken:
            new += "_"
        taken.add(new)
        mapping[name] = new
    nodes = []
    for init in branch.initializer:
        arr = numpy_helper.to_array(init)
        nodes.append(
            helper.make_node(
                "Constant",
                [],
                [mapping[init.name]],
                name=f"{prefix}{init.name}/const",
                value=numpy_helper.from_array(arr),
            )
        )
    for i, n in enumerate(branch.node):
        m = onnx.NodeProto()
        m.CopyFrom(n)
        m.name = f"{prefix}{n.name or f'{n.op_type}_{i}'}"
        m.input[:] = [mapping.get(x, x) for x in n.input]
        m.output[:] = [mapping.get(x, x) for x in n.output]
        for a in m.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _rename_graph_refs(a.g, mapping)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    _rename_graph_refs(g, mapping)
        nodes.append(m)
    return nodes, [mapping.get(o.name, o.name) for o in branch.output]


def inline_if(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[tuple[str, str, str]]]:
    """The model with every If (nested ones too) inlined, and (select node, then output, else output) per
    If output for `check_branch_shapes`."""
    if not any(n.op_type == "If" and n.domain in ("", "ai.onnx") for n in model.graph.node):
        return model, []
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    taken = _produced(g) | {i.name for i in g.input} | {n.name for n in g.node}
    pairs: list[tuple[str, str, str]] = []
    pending = list(g.node)
    out_nodes = []
    while pending:
        n = pending.pop(0)
        if n.op_type != "If" or n.domain not in ("", "ai.onnx"):
            out_nodes.append(n)
            continue
        name = n.name or f"If_{len(out_nodes)}"
        branches = {a.name: a.g for a in n.attribute}
        if "then_branch" not in branches or "else_branch" not in branches:
            raise PackageError(f"node {name!r} (If): needs then_branch and else_branch")
        for b in branches.values():
            for o in b.output:
                if not o.type.HasField("tensor_type"):
                    raise PackageError(
                        f"node {name!r} (If): branch output {o.name!r} is of type {o.type.WhichOneof('value')}; "
                        "only tensor outputs are supported"
                    )
        then_nodes, then_outs = _inline_branch(branches["then_branch"], f"{name}/then/", taken)
        else_nodes, else_outs = _inline_branch(branches["else_branch"], f"{name}/else/", taken)
        if not (len(then_outs) == len(else_outs) == len(n.output)):
            raise PackageError(f"node {name!r} (If): the branches and the node disagree on the number of outputs")
        cond = f"{name}/cond_scalar"
        shape = f"{name}/scalar_shape"
        taken.update({cond, shape})
        select = [
            helper.make_node(
                "Constant",
                [],
                [shape],
                name=f"{name}/scalar_shape",
                value=numpy_helper.from_array(np.zeros(0, np.int64)),
            ),
            helper.make_node("Reshape", [n.input[0], shape], [cond], name=f"{name}/cond"),
        ]
        for k, (t, e, y) in enumerate(zip(then_outs, else_outs, n.output, strict=True)):
            select.append(helper.make_node("Where", [cond, t, e], [y], name=f"{name}/select{k}"))
            pairs.append((f"{name}/select{k}", t, e))
        # nested Ifs in the branches are inlined in turn, before the nodes that follow
        pending[:0] = then_nodes + else_nodes + select
    del g.node[:]
    g.node.extend(out_nodes)
    return model, pairs


def check_branch_shapes(graph, pairs: list[tuple[str, str, str]]) -> None:
    """After shape inference and folding: a select still in the graph (run-time condition) needs both
    branches to agree on dtype and shape, or Where would broadcast them into something else."""
    live = {n.name for n in graph.nodes}
    for select, t, e in pairs:
        if select not in live:  # the condition folded: one branch was chosen at package time
            continue
        name = select.rsplit("/", 1)[0]
        vt, ve = graph.values[t], graph.values[e]
        if tuple(vt.shape) != tuple(ve.shape) or vt.dtype != ve.dtype:
            raise PackageError(
                f"node {name!r} (If): the branches give different outputs ({vt.dtype.name} {list(vt.shape)} vs "
                f"{ve.dtype.name} {list(ve.shape)}) and the condition is only known at run time; "
                "outputs whose shape depends on a run-time condition are not supported"
            )
