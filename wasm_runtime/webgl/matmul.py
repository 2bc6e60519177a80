"""Gemm, FusedGemm and MatMul in flat4: texel-wise shaders (4 k per fetch) where the shapes allow, texture()
sampling of a constant B repacked for it, and one element per fragment otherwise."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Node
from . import geometry
from .glsl import activation_glsl, add_residual, broadcast_index, fl, lit, unravel
from .layout import MAX_WIDTH
from .program import Program, ShaderContext, fused_epilogue


def gemm(g: ShaderContext, node: Node, mkn: tuple[int, int, int] | None = None) -> Program:
    """mkn: (M, K, N) of a MatMul with a constant 2-D B, its A's leading dims flattened into M (a free view in
    flat4)."""
    a, b, c = node.input(0), node.input(1), node.input(2)
    y = node.outputs[0]
    opts = geometry.gemm(node)
    ta, tb = opts.trans_a, opts.trans_b
    M, K, N = mkn or (g.shape(y)[0], g.shape(a)[0 if ta else 1], g.shape(y)[1])
    a_idx = f"k * {M} + m" if ta else f"m * {K} + k"
    b_idx = f"n * {K} + k" if tb else f"k * {N} + n"
    inputs = [a, b]
    bias = bias_input = None  # beta * C, C's input index
    if c and opts.beta != 0.0:
        inputs.append(c)
        bias_input = len(inputs) - 1
        bias = f"{lit(opts.beta)} * x{bias_input}({broadcast_index(g.shape(c), (M, N), ['m', 'n'])})"
    epi, residual = fused_epilogue(node, inputs)
    result = activation_glsl(epi.activation, epi.params)
    Kq = K // 4
    bdata = g.const(b)
    bias4 = "vec4(0.0)"
    if bias is not None:  # the bias texel of the output texel's 4 columns n .. n + 3 (in C, broadcast)
        idx = [broadcast_index(g.shape(c), (M, N), ["m", f"(n + {j})"]) for j in range(4)]
        bias4 = f"{lit(opts.beta)} * vec4({', '.join(f'x{bias_input}({e})' for e in idx)})"
    if not ta and K % 4 == 0 and N % 4 == 0 and bdata is not None and K <= MAX_WIDTH and N // 4 <= MAX_WIDTH:
        if M * Kq <= MAX_WIDTH:  # A's rows in one texture row: sampled with texture(), B repacked to match
            return _gemm_tex(g, node, inputs, bdata, tb, (M, K, N), opts.alpha, bias4, result, residual)
    if not ta and K % 4 == 0 and N % 4 == 0:
        if tb:  # B is [N, K]: texels of 4 k for each of the 4 columns
            dots = ", ".join(f"dot(a, v1(bt + {j * Kq} + k4))" for j in range(4))
            inner = f"s += vec4({dots});"
        else:  # B is [K, N]: texel of 4 columns per k
            inner = " + ".join(f"a.{'xyzw'[j]} * v1(bt + (4 * k4 + {j}) * {N // 4})" for j in range(4))
            inner = f"s += {inner};"
        body = f"""vec4 g(int b) {{
  int m = b / {N}, n = b % {N};
  int at = m * {Kq}, bt = {"n * " + str(Kq) if tb else "n >> 2"};
  vec4 s = vec4(0.0);
  for (int k4 = 0; k4 < {Kq}; k4++) {{
    vec4 a = v0(at + k4);
    {inner}
  }}
  vec4 v = {lit(opts.alpha)} * s + {bias4};
  {add_residual(residual, "texel")}
  return {result};
}}
"""
        return Program(inputs, body)
    body = f"""float f(int i) {{
  int m = i / {N}, n = i % {N};
  float s = 0.0;
  for (int k = 0; k < {K}; k++) s += x0({a_idx}) * x1({b_idx});
  float v = {lit(opts.alpha)} * s + {bias or "0.0"};
  {add_residual(residual, "element")}
  return {result};
}}
"""
    return Program(inputs, body)


def _gemm_tex(g: ShaderContext, node: Node, inputs, bdata, tb, mkn, alpha, bias4, result, residual) -> Program:
    """Gemm with constant B: B repacked so that texel (k, n / 4) holds B[k, n .. n + 3]; an output texel (4
    columns of one row) takes 1 texel of A and 4 of B per 4 k, all sampled with texture() (unrolled by 4)."""
    M, K, N = mkn
    Kq, N4 = K // 4, N // 4
    bk = np.asarray(bdata, np.float32).reshape((N, K) if tb else (K, N))
    bk = bk.T if tb else bk
    inputs = list(inputs)
    inputs[1] = g.add_const(f"{node.input(1)}@gemm", bk.reshape(K, N4, 4).transpose(1, 0, 2), (K, N4))
    wa = M * Kq  # A's texture: one row of M * Kq texels
    unroll = next(u for u in (4, 2, 1) if Kq % u == 0)
    lines = []
    for u in range(unroll):
        lines.append(f"vec4 a{u} = texture(t0, vec2(ab + float(k4 + {u}) * {fl(1 / wa)}, 0.5));")
        kx = f"(float(k4 + {u}) * 4.0 + {{j}}.5) * {fl(1 / K)}"
        terms = [f"a{u}.{'xyzw'[j]} * texture(t1, vec2({kx.format(j=j)}, wy))" for j in range(4)]
        lines.append(f"s += {' + '.join(terms)};")
    inner = "\n    ".join(lines)
    return Program(
        inputs,
        f"""vec4 g(int b) {{
  int m = b / {N}, n = b % {N};
  float ab = (float(m * {Kq}) + 0.5) * {fl(1 / wa)}, wy = (float(n >> 2) + 0.5) * {fl(1 / N4)};
  vec4 s = vec4(0.0);
  for (int k4 = 0; k4 < {Kq}; k4 += {unroll}) {{
    {inner}
  }}
  vec4 v = {lit(alpha)} * s + {bias4};
  {add_residual(residual, "texel")}
  return {result};
}}
""",
    )


def matmul(g: ShaderContext, node: Node) -> Program:
    a, b, y = node.input(0), node.input(1), node.outputs[0]
    sa, sb, sy = list(g.shape(a)), list(g.shape(b)), list(g.shape(y))
    a1, b1 = len(sa) == 1, len(sb) == 1
    if a1:
        sa = [1, *sa]
    if b1:
        sb = [*sb, 1]
    M, K, N = sa[-2], sa[-1], sb[-1]
    bdata = g.const(b)
    if len(sb) == 2 and not b1 and bdata is not None and K % 4 == 0:
        # a constant weight matrix (a transformer's linear layers): A's rows are contiguous, so this is a Gemm
        # of all of them (texel-wise shaders, 4 k per fetch) instead of 2 scalar fetches per multiply-add
        rows = math.prod(sa[:-1])
        if N % 4 == 0:
            return gemm(g, node, (rows, K, N))
        return _matmul_bt(g, node, np.asarray(bdata, np.float32).reshape(K, N), (rows, K, N))
    full = list(np.broadcast_shapes(tuple(sa[:-2]), tuple(sb[:-2]))) + [M, N]
    names = [f"d{k}" for k in range(len(full) - 2)] + ["m", "n"]
    batch_a = broadcast_index([*sa[:-2], 1, 1], full, names)
    batch_b = broadcast_index([*sb[:-2], 1, 1], full, names)
    body = f"""float f(int i) {{
  {unravel(full, names)}
  int ab = ({batch_a}) * {M * K} + m * {K}, bb = ({batch_b}) * {K * N} + n;
  float s = 0.0;
  for (int k = 0; k < {K}; k++) s += x0(ab + k) * x1(bb + k * {N});
  return s;
}}
"""
    assert math.prod(full) == math.prod(sy)
    return Program([a, b], body)


def _matmul_bt(g: ShaderContext, node: Node, bdata: np.ndarray, mkn: tuple[int, int, int]) -> Program:
    """A @ B for a constant B whose N is no multiple of 4 (an output texel then straddles rows): B stored
    transposed, so that each output element is the dot product of K / 4 texels of A's row and of B's column."""
    M, K, N = mkn
    Kq = K // 4
    bt = g.add_matrix(f"{node.input(1)}@t", bdata.T)
    body = f"""float f(int i) {{
  int m = i / {N}, n = i % {N};
  int at = m * {Kq}, bt = n * {Kq};
  vec4 s = vec4(0.0);
  for (int k4 = 0; k4 < {Kq}; k4++) s += v0(at + k4) * v1(bt + k4);
  return s.x + s.y + s.z + s.w;
}}
"""
    return Program([node.input(0), bt], body)
