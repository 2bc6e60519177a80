"""The C4 layout pass of the GPU plan: which tensors live channel-packed (layout.py), and the Relayout steps
between layouts.

Every convolution the C4 shader takes reads and writes C4 tensors, and so do the ops after it whose rule in
shaders.SHADERS says they can (pools, activations, same-shape Add/Sub/Mul, channel Concat) once an input is
C4. A C4 copy of a tensor is named `<name>@c4`; the original name keeps the flat4 layout and is computed (a
Relayout node) only where something reads it flat: another GPU op, a wasm node, a graph output.

    a = Conv(x); b = Relu(a); y = Conv(b)
        =>
    x@c4 = Relayout[to=c4](x); a@c4 = Conv(x@c4); b@c4 = Relu(a@c4); y@c4 = Conv(b@c4);
    y = Relayout[to=flat4](y@c4)

A conv whose rule computes it in parts writes 4 tensors of every 4th output column, merged into its C4
output by a Relayout[from=x4]:

    y = Conv(x)   =>   y@x4_0, y@x4_1, y@x4_2, y@x4_3 = Conv(x@c4); y@c4 = Relayout[from=x4, to=c4](y@x4_0, ...)

The pass builds a new graph (the model's graph stays as it is for the wasm side).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Graph, Node, Value
from .layout import Grid, c4_grid, x4_shape
from .program import ShaderContext
from .shaders import SHADERS


@dataclass
class C4Layout:
    graph: Graph  # the rewritten graph the GPU plan runs
    grids: dict[str, Grid]  # the tiling of every C4 tensor
    nodes: set[str]  # the nodes whose C4 program runs (shaders.C4Rule.program)


def rewrite_to_c4(graph: Graph, supported: set[str]) -> C4Layout:
    """The C4 rewrite of `graph`, for its nodes in `supported` (those with a shader) of one output."""
    g = ShaderContext(graph)
    values = dict(graph.values)
    grids: dict[str, Grid] = {}
    c4_of: dict[str, str] = {}  # tensor -> its C4 copy
    flat = set(graph.inputs) | {n for n, v in graph.values.items() if v.data is not None}
    nodes: list[Node] = []
    c4_nodes: set[str] = set()

    def need_flat(t: str) -> None:
        if t and t not in flat and t in c4_of:
            nodes.append(Node("Relayout", f"{t}:to_flat4", [c4_of[t]], [t], {"to": "flat4"}, "wasm_runtime"))
            flat.add(t)

    def add_tensor(name: str, shape) -> str:
        values[name] = Value(name, np.dtype(np.float32), tuple(shape))
        grids[name] = c4_grid(shape)
        return name

    def c4_name(t: str) -> str:
        c4_of[t] = add_tensor(f"{t}@c4", graph.shape(t))
        return c4_of[t]

    def need_c4(t: str) -> str:
        if t not in c4_of:
            nodes.append(Node("Relayout", f"{t}:to_c4", [t], [c4_name(t)], {"to": "c4"}, "wasm_runtime"))
        return c4_of[t]

    for node in graph.nodes:
        ins, outs = node.inputs, node.outputs
        rule = SHADERS[node.op_type].c4 if node.op_type in SHADERS else None
        mode = None
        if rule is not None and node.name in supported and len([o for o in outs if o]) == 1:
            mode = rule.inputs(g, node, c4_of)
        if mode is None:
            for t in ins:
                need_flat(t)
            nodes.append(node)
            flat.update(o for o in outs if o)
            continue
        new_ins = list(ins)
        for k in mode:
            new_ins[k] = need_c4(ins[k])
        if rule.in_parts is not None and rule.in_parts(g, node):
            y = outs[0]
            parts = [add_tensor(f"{y}@x4_{j}", x4_shape(graph.shape(y))) for j in range(4)]
            nodes.append(Node(node.op_type, node.name, new_ins, parts, dict(node.attrs), node.domain))
            c4_nodes.add(node.name)
            merged = c4_name(y)
            nodes.append(Node("Relayout", f"{y}:merge_x4", parts, [merged], {"to": "c4", "from": "x4"}, "wasm_runtime"))
            continue
        if rule.flat_output:
            new_outs = list(outs)
            flat.add(outs[0])
        else:
            new_outs = [c4_name(outs[0])]
        nodes.append(Node(node.op_type, node.name, new_ins, new_outs, dict(node.attrs), node.domain))
        c4_nodes.add(node.name)
    for t in graph.outputs:
        need_flat(t)
    rewritten = Graph(
        graph.name, nodes, values, list(graph.inputs), list(graph.outputs), graph.opset, dict(graph.metadata)
    )
    return C4Layout(rewritten, grids, c4_nodes)
