"""Softmax, LogSoftmax (in one step, or two for long rows) and LRN in flat4."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Graph, Node, Value
from . import geometry, tuning
from .glsl import lit
from .program import Program, ShaderContext


def softmax(g: ShaderContext, node: Node) -> Program:
    x = node.input(0)
    length, stride = geometry.softmax_rows(g.graph, node)
    log = node.op_type == "LogSoftmax"
    if len(node.inputs) > 1:  # the row statistics from softmax_stats (texel `row`: max, sum of exp(x - max))
        result = "x0(i) - s.x - log(s.y)" if log else "exp(x0(i) - s.x) / s.y"
        return Program(
            [x, node.input(1)],
            f"""float f(int i) {{
  vec4 s = v1((i / {length * stride}) * {stride} + i % {stride});
  return {result};
}}
""",
        )
    result = "x0(i) - mx - log(s)" if log else "exp(x0(i) - mx) / s"
    return Program(
        [x],
        f"""float f(int i) {{
  int inner = i % {stride}, k0 = (i / {stride}) % {length};
  int b = i - k0 * {stride};
  float mx = -1.0 / 0.0;
  for (int k = 0; k < {length}; k++) mx = max(mx, x0(b + k * {stride}));
  float s = 0.0;
  for (int k = 0; k < {length}; k++) s += exp(x0(b + k * {stride}) - mx);
  return {result};
}}
""",
    )


def softmax_stats(g: ShaderContext, node: Node) -> Program:
    """Texel `row` of the output: (max, sum of exp(x - max), 0, 0) of that row of the Softmax's input."""
    length, stride = geometry.softmax_rows(g.graph, node)
    return Program(
        [node.input(0)],
        f"""vec4 g(int b) {{
  int row = b >> 2;
  int base = (row / {stride}) * {length * stride} + row % {stride};
  float mx = -1.0 / 0.0;
  for (int k = 0; k < {length}; k++) mx = max(mx, x0(base + k * {stride}));
  float s = 0.0;
  for (int k = 0; k < {length}; k++) s += exp(x0(base + k * {stride}) - mx);
  return vec4(mx, s, 0.0, 0.0);
}}
""",
    )


def split_long_softmax_rows(graph: Graph, supported: set[str]) -> set[str]:
    """Softmax rows of tuning.SOFTMAX_TWO_STEPS elements or more take two steps, in place on the GPU plan's
    graph (the node keeps its name and outputs):

        y = Softmax(x)   =>   y@stats = SoftmaxStats(x); y = Softmax(x, y@stats)

    Only the nodes in `supported` are considered. Returns the names of the nodes added."""
    added, nodes = set(), []
    for node in graph.nodes:
        if node.name in supported and node.op_type in ("Softmax", "LogSoftmax"):
            length, stride = geometry.softmax_rows(graph, node)
            if length >= tuning.SOFTMAX_TWO_STEPS:
                y = node.outputs[0]
                stats = f"{y}@stats"
                rows = math.prod(graph.shape(y)) // length
                graph.values[stats] = Value(stats, np.dtype(np.float32), (rows, 4))
                attrs = {**node.attrs, "axis": geometry.softmax_axis(graph, node)}
                nodes.append(
                    Node("SoftmaxStats", f"{node.name}:stats", [node.input(0)], [stats], attrs, "wasm_runtime")
                )
                added.add(nodes[-1].name)
                node = Node(
                    node.op_type, node.name, [node.input(0), stats], list(node.outputs), node.attrs, node.domain
                )
        nodes.append(node)
    graph.nodes[:] = nodes
    return added


def lrn(g: ShaderContext, node: Node) -> Program:
    x = node.input(0)
    xs = g.shape(x)
    size = int(node.attrs["size"])
    alpha, beta, bias = (float(node.attrs.get(k, d)) for k, d in (("alpha", 1e-4), ("beta", 0.75), ("bias", 1.0)))
    C, inner = xs[1], math.prod(xs[2:])
    lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
    return Program(
        [x],
        f"""float f(int i) {{
  int c = (i / {inner}) % {C};
  float s = 0.0;
  for (int k = max(c - {lo}, 0); k <= min(c + {hi}, {C - 1}); k++) {{
    float v = x0(i + (k - c) * {inner});
    s += v * v;
  }}
  return x0(i) / pow({lit(bias)} + {lit(alpha / size)} * s, {lit(beta)});
}}
""",
    )
