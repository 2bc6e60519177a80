"""Conv and FusedConv in flat4 (1-D and 2-D), and which of them run in C4 (conv_c4.py), 4 pixels per
fragment or one."""

from __future__ import annotations

from ..ir import Node
from . import geometry, window
from .conv_c4 import conv_c4, conv_x4, weight_blocks
from .glsl import activation_glsl, add_residual, unravel
from .layout import MAX_WIDTH, Unsupported, c4_grid, x4_shape
from .program import Program, ShaderContext, fused_epilogue


def conv(g: ShaderContext, node: Node) -> Program:
    x, w, b = node.input(0), node.input(1), node.input(2)
    xs = g.shape(x)
    if len(xs) not in (3, 4):
        raise Unsupported(f"{len(xs) - 2}-D convolution (1-D and 2-D run on the GPU)")
    geo = geometry.conv(g.graph, node)
    win = geo.win
    N, C, M, CG, MG = geo.N, geo.C, geo.M, geo.CG, geo.MG
    (H, W), (OH, OW), (KH, KW) = win.In, win.Out, win.K
    (SH, SW), (DH, DW), (PT, PL) = win.S, win.D, win.P
    inputs = [x, w]
    bias = "0.0"
    if b:
        inputs.append(b)
        bias = f"x{len(inputs) - 1}(m)"
    epi, residual = fused_epilogue(node, inputs)
    result = activation_glsl(epi.activation, epi.params)
    P = OH * OW
    pointwise = (KH, KW, SH, SW, PT, PL, geo.group) == (1, 1, 1, 1, 0, 0, 1) and (H, W) == (OH, OW)
    if pointwise and P % 4 == 0 and C % 4 == 0:
        # pointwise: a texel is 4 pixels of one output channel; per 4 input channels, 1 weight texel and 4 input
        # texels make 16 multiply-adds
        Q = P // 4
        body = f"""vec4 g(int b) {{
  int p = b % {P}, m = (b / {P}) % {M}, n = b / {M * P};
  int xt = (n * {C * P} + p) >> 2, wt = m * {C // 4};
  vec4 v = vec4({bias});
  for (int c4 = 0; c4 < {C // 4}; c4++) {{
    vec4 w = v1(wt + c4);
    int q = xt + c4 * {4 * Q};
    v += w.x * v0(q) + w.y * v0(q + {Q}) + w.z * v0(q + {2 * Q}) + w.w * v0(q + {3 * Q});
  }}
  {add_residual(residual, "texel")}
  return {result};
}}
"""
        return Program(inputs, body)
    if OW % 4 == 0:
        # a texel is 4 neighbouring output pixels of one row: each weight is fetched once for the 4
        taps = ", ".join(f"(jx{j} >= 0 && jx{j} < {W}) ? x0(row + jx{j}) : 0.0" for j in range(4))
        ixs = " ".join(f"int jx{j} = ix0 + {j * SW} + kx * {DW};" for j in range(4))
        body = f"""vec4 g(int b) {{
  {unravel((N, M, OH, OW), ["n", "m", "oy", "ox"], "b")}
  int xb = (n * {C} + (m / {MG}) * {CG}) * {H * W};
  int wb = m * {CG * KH * KW};
  int iy0 = oy * {SH} - {PT}, ix0 = ox * {SW} - {PL};
  vec4 v = vec4({bias});
  for (int c = 0; c < {CG}; c++) {{
    for (int ky = 0; ky < {KH}; ky++) {{
      int iy = iy0 + ky * {DH};
      if (iy < 0 || iy >= {H}) continue;
      int row = xb + (c * {H} + iy) * {W};
      for (int kx = 0; kx < {KW}; kx++) {{
        {ixs}
        v += x1(wb + (c * {KH} + ky) * {KW} + kx) * vec4({taps});
      }}
    }}
  }}
  {add_residual(residual, "texel")}
  return {result};
}}
"""
        return Program(inputs, body)
    tap = f"v += x0(xb + (c * {H} + iy) * {W} + ix) * x1(wb + (c * {KH} + ky) * {KW} + kx);"
    body = f"""float f(int i) {{
  {unravel((N, M, OH, OW), ["n", "m", "oy", "ox"])}
  int xb = (n * {C} + (m / {MG}) * {CG}) * {H * W};
  int wb = m * {CG * KH * KW};
  int iy0 = oy * {SH} - {PT}, ix0 = ox * {SW} - {PL};
  float v = {bias};
  for (int c = 0; c < {CG}; c++) {{
    {window.flat4_taps(win, tap, "    ")}
  }}
  {add_residual(residual, "element")}
  return {result};
}}
"""
    return Program(inputs, body)


def conv_c4_inputs(g: ShaderContext, node: Node, c4_of) -> list[int] | None:
    """The inputs the C4 convolution shader reads in C4 (the image, and the residual), or None when it does
    not take this node."""
    x, w, b = node.input(0), node.input(1), node.input(2)
    if len(g.shape(x)) not in (3, 4) or g.const(w) is None or (b and g.const(b) is None):
        return None
    if c4_grid(g.shape(x)) is None or c4_grid(g.shape(node.outputs[0])) is None:
        return None
    try:
        geo = geometry.conv(g.graph, node)
    except Unsupported:
        return None
    T = geo.win.K[0] * geo.win.K[1]
    c4 = [0] + ([3] if len(node.inputs) > 3 and node.inputs[3] else [])
    if geo.depthwise:
        return c4 if T <= MAX_WIDTH else None
    if geo.group != 1 and (geo.CG % 4 or geo.MG % 4):
        return None
    M4 = -(-geo.M // 4)
    fits = T <= MAX_WIDTH and M4 <= MAX_WIDTH and 4 * -(-geo.CG // 4) * weight_blocks(M4, T)[0] <= MAX_WIDTH
    return c4 if fits else None


def conv_x4_ok(g: ShaderContext, node: Node) -> bool:
    """Dense (or grouped by fours) convs of at most 7x7 taps whose output rows are 4 pixels or more: each
    fragment computes 4 neighbouring pixels, so every weight fetched serves 4 of them (SwiftShader: ~1.8x
    faster on ResNet's 3x3 layers, micro-benchmark, merge step not included)."""
    geo = geometry.conv(g.graph, node)
    ys = g.shape(node.outputs[0])
    if geo.depthwise:
        return False
    KH, KW = geo.win.K
    return KH <= 7 and KW <= 7 and ys[-1] >= 4 and c4_grid(x4_shape(ys)) is not None


def conv_c4_program(g: ShaderContext, node: Node) -> Program:
    """The C4 shader of a node the C4 rewrite placed: in 4 parts (its 4 outputs) or whole."""
    return conv_x4(g, node) if len(node.outputs) == 4 else conv_c4(g, node)
