"""MaxPool, AveragePool (1-D and 2-D) and the global pools, in flat4 and in C4."""

from __future__ import annotations

import math

from ..ir import Node
from . import geometry, window
from .glsl import fl, frag_plane, inv, lit, plane_origin, unravel
from .layout import Unsupported, texture_size
from .program import Program, ShaderContext


def _pool_geometry(g: ShaderContext, node: Node) -> geometry.Pool:
    """The node's window, refused where the shaders cannot take it."""
    if len(node.outputs) > 1 and node.outputs[1]:
        raise Unsupported("MaxPool's Indices output")
    pool = geometry.pool(g.graph, node)
    win = pool.win
    for size, out, stride, begin in zip(win.In, win.Out, win.S, win.P, strict=True):
        if out > 1 and (out - 1) * stride - begin >= size:
            raise Unsupported("a ceil_mode window starting in the right padding")
    if node.op_type == "AveragePool" and win.D != (1, 1):
        raise Unsupported("AveragePool with dilations")
    return pool


def pool(g: ShaderContext, node: Node) -> Program:
    x, xs = node.input(0), g.shape(node.input(0))
    if len(xs) not in (3, 4):
        raise Unsupported(f"{len(xs) - 2}-D pooling (1-D and 2-D run on the GPU)")
    geo = _pool_geometry(g, node)
    win = geo.win
    (H, W), (OH, OW), (KH, KW) = win.In, win.Out, win.K
    (SH, SW), (PT, PL), (PB, PR) = win.S, win.P, win.E
    head = f"""float f(int i) {{
  {unravel((xs[0] * xs[1], OH, OW), ["p", "oy", "ox"])}
  int xb = p * {H * W};
  int iy0 = oy * {SH} - {PT}, ix0 = ox * {SW} - {PL};
"""
    if node.op_type == "MaxPool":
        return Program(
            [x],
            head
            + f"""  float v = -1.0 / 0.0;
  {window.flat4_taps(win, f"v = max(v, x0(xb + iy * {W} + ix));", "  ")}
  return v;
}}
""",
        )
    count = (
        f"float((min(iy0 + {KH}, {H + PB}) - iy0) * (min(ix0 + {KW}, {W + PR}) - ix0))"
        if geo.count_include_pad
        else "float((y1 - y0) * (x1_ - x0_))"
    )
    return Program(
        [x],
        head
        + f"""  int y0 = max(iy0, 0), y1 = min(iy0 + {KH}, {H});
  int x0_ = max(ix0, 0), x1_ = min(ix0 + {KW}, {W});
  float s = 0.0;
  for (int iy = y0; iy < y1; iy++)
    for (int ix = x0_; ix < x1_; ix++) s += x0(xb + iy * {W} + ix);
  return s / {count};
}}
""",
    )


def global_pool(g: ShaderContext, node: Node) -> Program:
    x = node.input(0)
    xs = g.shape(x)
    size = math.prod(xs[2:])
    if node.op_type == "GlobalMaxPool":
        loop, result = "v = max(v, x0(b + k));", "v"
        init = "-1.0 / 0.0"
    else:
        loop, result, init = "v += x0(b + k);", f"v / {lit(size)}", "0.0"
    return Program(
        [x],
        f"""float f(int i) {{
  int b = i * {size};
  float v = {init};
  for (int k = 0; k < {size}; k++) {loop}
  return {result};
}}
""",
    )


def pool_c4(g: ShaderContext, node: Node) -> Program:
    x, y = node.input(0), node.outputs[0]
    gi, go = g.grid(x), g.grid(y)
    geo = _pool_geometry(g, node)
    win = geo.win
    (KH, KW), (SH, SW), (DH, DW), (PT, PL), (PB, PR) = win.K, win.S, win.D, win.P, win.E
    taps, conds = window.taps(win, gi, go, "ox", "oy")
    lines = [
        frag_plane(go, "o"),
        plane_origin(gi, "oq", "org"),
        f"vec2 base = (org + vec2(ox * {fl(SW)} + {fl(0.5 - PL)}, oy * {fl(SH)} + {fl(0.5 - PT)})) * {inv(gi.size)};",
    ]
    mode = "max" if node.op_type == "MaxPool" else "avg"
    lines.append("vec4 s = vec4(-1.0 / 0.0);" if mode == "max" else "vec4 s = vec4(0.0);")

    def add(v: str) -> str:
        return f"s = max(s, {v});" if mode == "max" else f"s += {v};"

    if KH * KW > 25:  # a loop over the window's rows, and wide rows over chunks of columns (see conv_c4)
        lines += window.column_flags(win, gi, go)
        lines += window.window_rows(win, gi, go, "base", lambda v, cond, fx: [f"if ({cond}) {add(v)}"])
    for t, (ky, kx) in enumerate(taps if KH * KW <= 25 else []):
        op = add(f"texture(t0, base + vec2({fl(kx * DW / gi.size[0])}, {fl(ky * DH / gi.size[1])}))")
        lines.append(f"if ({conds[t]}) {op}" if conds[t] else op)
    if mode == "max":
        lines.append("return s;")
    else:
        iy0, ix0 = f"(oy * {fl(SH)} - {fl(PT)})", f"(ox * {fl(SW)} - {fl(PL)})"
        if geo.count_include_pad:
            cy = f"(min({iy0} + {fl(KH)}, {fl(gi.H + PB)}) - {iy0})"
            cx = f"(min({ix0} + {fl(KW)}, {fl(gi.W + PR)}) - {ix0})"
        else:
            cy = f"(min({iy0} + {fl(KH)}, {fl(gi.H)}) - max({iy0}, 0.0))"
            cx = f"(min({ix0} + {fl(KW)}, {fl(gi.W)}) - max({ix0}, 0.0))"
        lines.append(f"return s / ({cy} * {cx});")
    body = "\n  ".join(lines)
    return Program([x], f"vec4 run() {{\n  {body}\n}}\n")


def global_pool_c4_inputs(g: ShaderContext, node: Node, c4_of) -> list[int] | None:
    """A global pool reads C4 when its input already is and has whole planes (C % 4 == 0); it writes flat4."""
    x = node.inputs[0]
    return [0] if x in c4_of and g.shape(x)[1] % 4 == 0 else None


def global_pool_c4(g: ShaderContext, node: Node) -> Program:
    """[N, C, H, W] in C4 (C % 4 == 0) -> [N, C, 1, 1] flat4, whose texel t is plane t."""
    x = node.input(0)
    gi = g.grid(x)
    out_width = texture_size(math.prod(g.shape(node.outputs[0])))[0]
    to_texture = inv(gi.size)
    mx = node.op_type == "GlobalMaxPool"
    lines = [
        f"float q = floor(gl_FragCoord.y) * {fl(out_width)} + floor(gl_FragCoord.x);",
        plane_origin(gi, "q", "org"),
        f"vec2 base = (org + 0.5) * {to_texture};",
        "vec4 s = vec4(-1.0 / 0.0);" if mx else "vec4 s = vec4(0.0);",
        f"for (int h = 0; h < {gi.H}; h++) {{",
        f"  vec2 row = base + vec2(0.0, float(h) * {fl(1 / gi.size[1])});",
    ]
    unroll = next(u for u in (16, 8, 7, 4, 2, 1) if gi.W % u == 0)  # unrolled columns per step (JIT time)
    if unroll < gi.W:
        lines.append(f"  for (int w = 0; w < {gi.W}; w += {unroll}) {{")
        lines.append(f"    vec2 at = row + vec2(float(w) * {fl(1 / gi.size[0])}, 0.0);")
    else:
        lines.append("  { vec2 at = row;")
    for xw in range(unroll):
        v = f"texture(t0, at + vec2({fl(xw / gi.size[0])}, 0.0))"
        lines.append(f"    s = max(s, {v});" if mx else f"    s += {v};")
    lines.append("  }")
    lines.append("}")
    lines.append("return s;" if mx else f"return s * {fl(1 / (gi.H * gi.W))};")
    body = "\n  ".join(lines)
    return Program([x], f"vec4 run() {{\n  {body}\n}}\n")
