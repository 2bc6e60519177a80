"""Ops that move elements without arithmetic: Concat and Transpose, and the Relayout steps the C4 rewrite adds
between layouts (flat4 -> C4, C4 -> flat4, and the 4 parts of a conv_x4 -> C4)."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Node
from .glsl import fl, frag_plane, inv, plane_origin, split, transposed_index, unravel
from .layout import Unsupported, c4_grid
from .program import Program, ShaderContext


def concat(g: ShaderContext, node: Node) -> Program:
    y = node.outputs[0]
    ys = g.shape(y)
    axis = int(node.attrs["axis"]) % len(ys)
    inner = math.prod(ys[axis + 1 :])
    inputs = [n for n in node.inputs if n and math.prod(g.shape(n)) > 0]
    if len(inputs) > 15:
        raise Unsupported(f"Concat of {len(inputs)} inputs (at most 15 on the GPU)")
    lines, start = [], 0
    for k, name in enumerate(inputs):
        size = g.shape(name)[axis]
        cond = f"if (a < {start + size}) " if k < len(inputs) - 1 else ""
        lines.append(f"{cond}return x{k}((o * {size} + a - {start}) * {inner} + r);")
        start += size
    joined = "\n  ".join(lines)
    return Program(
        inputs,
        f"""float f(int i) {{
  int r = i % {inner}, q = i / {inner};
  int a = q % {ys[axis]}, o = q / {ys[axis]};
  {joined}
}}
""",
    )


def concat_c4_inputs(g: ShaderContext, node: Node, c4_of) -> list[int] | None:
    """Concat along channels of tensors whose channel counts are multiples of 4 (whole planes), one of them C4
    already, runs in C4 (all inputs C4)."""
    graph = g.graph
    ys = graph.shape(node.outputs[0])
    if len(ys) not in (3, 4) or int(node.attrs["axis"]) % len(ys) != 1 or c4_grid(ys) is None:
        return None
    ins = [t for t in node.inputs if t]
    if len(ins) > 15 or not all(graph.shape(t)[1] % 4 == 0 and graph.values[t].dtype == np.float32 for t in ins):
        return None
    if not any(t in c4_of for t in ins):
        return None
    return [k for k, t in enumerate(node.inputs) if t]


def concat_c4(g: ShaderContext, node: Node) -> Program:
    """Output plane (n, c4) is plane (n, c4 - first plane of input k) of the input k holding channel 4 c4."""
    inputs = [t for t in node.inputs if t]
    go = g.grid(node.outputs[0])
    lines = [frag_plane(go, "o"), split("oq", go.C4, "n", "c4")]
    start = 0
    for k, t in enumerate(inputs):
        gi = g.grid(t)
        cond = f"if (c4 < {fl(start + gi.C4)}) " if k < len(inputs) - 1 else ""
        lines.append(f"{cond}{{")
        lines.append(f"  float q = n * {fl(gi.C4)} + c4 - {fl(start)};")
        lines.append("  " + plane_origin(gi, "q", "org", "    "))
        lines.append(f"  return texture(t{k}, (org + vec2(ox, oy) + 0.5) * {inv(gi.size)});")
        lines.append("}")
        start += gi.C4
    body = "\n  ".join(lines)
    return Program(inputs, f"vec4 run() {{\n  {body}\n}}\n")


def transpose(g: ShaderContext, node: Node) -> Program:
    x, y = node.input(0), node.outputs[0]
    xs, ys = g.shape(x), g.shape(y)
    perm = list(node.attrs.get("perm") or reversed(range(len(xs))))
    names = [f"d{k}" for k in range(len(ys))]
    index = transposed_index(xs, perm, names)
    return Program([x], f"float f(int i) {{\n  {unravel(ys, names)}\n  return x0({index});\n}}\n")


def merge_x4(g: ShaderContext, node: Node) -> Program:
    """The C4 tensor from the 4 parts of conv_x4: pixel (y, x) is part x % 4's pixel (y, x / 4)."""
    go, gp = g.grid(node.outputs[0]), g.grid(node.inputs[0])
    return Program(
        list(node.inputs),
        f"""vec4 run() {{
  {frag_plane(go, "o")}
  {split("ox", 4, "X", "j")}
  {plane_origin(gp, "oq", "org")}
  vec2 at = (org + vec2(X, oy) + 0.5) * {inv(gp.size)};
  return j < 1.5 ? (j < 0.5 ? texture(t0, at) : texture(t1, at)) : (j < 2.5 ? texture(t2, at) : texture(t3, at));
}}
""",
    )


def relayout(g: ShaderContext, node: Node) -> Program:
    """Between layouts: attrs["to"] "c4" (flat4 -> C4, or the 4 parts of a conv_x4 with attrs["from"] "x4")
    or "flat4" (C4 -> flat4)."""
    x, y = node.input(0), node.outputs[0]
    if node.attrs.get("from") == "x4":
        return merge_x4(g, node)
    if node.attrs["to"] == "c4":
        go = g.grid(y)
        HW = go.H * go.W
        comps = ", ".join(f"c + {j} < {go.C} ? x0(i + {j * HW}) : 0.0" for j in range(4))
        return Program(
            [x],
            f"""vec4 run() {{
  {frag_plane(go, "o")}
  {split("oq", go.C4, "n", "c4")}
  int c = int(c4) * 4;
  int i = ((int(n) * {go.C} + c) * {go.H} + int(oy)) * {go.W} + int(ox);
  return vec4({comps});
}}
""",
        )
    gi = g.grid(x)
    names = ["n", "c", "h", "w"]
    return Program(
        [x],
        f"""float f(int i) {{
  {unravel((gi.N, gi.C, gi.H, gi.W), names)}
  int q = n * {gi.C4} + (c >> 2);
  return texelFetch(t0, ivec2((q % {gi.TX}) * {gi.W} + w, (q / {gi.TX}) * {gi.H} + h), 0)[c & 3];
}}
""",
    )
