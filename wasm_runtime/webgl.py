"""WebGL2 plan: one GLSL ES 3.00 fragment shader per graph node, shapes and strides baked in.

The executor (web/webgl.js) keeps every tensor in an RGBA32F 2-D texture in the **flat4** layout: element
`i` of the row-major tensor is component `i & 3` of texel `t = i >> 2`, and texel `t` sits at
`(t % width, t / width)` with `width = min(texels, MAX_WIDTH)`. A reshape is therefore free (same texture),
and a flat4 shader computes the 4 elements of its output texel from their flat indices: its program defines
`float f(int i)` (output element `i`) reading inputs through `x0(i)`, `x1(i)`..., which main() calls for the
texel's 4 elements, or `vec4 g(int b)` (the texel of elements b..b+3), or `vec4 run()` (the fragment's texel,
from gl_FragCoord).

Convolutions, and the pools, activations and same-shape Add/Sub/Mul around them, use the channel-packed **C4**
layout instead (4 channels of one pixel per texel, `Grid`; `_c4_rewrite` decides per tensor and adds Relayout
steps where a flat4 reader needs one); they sample with texture() at texel centres, which SwiftShader does in
about half the time of a texelFetch. Everything uploaded, read back or moved to wasm is flat4.

The plan is data in the manifest's `webgl` section (web/README.md): textures (sizes only; the executor
allocates them), which tensor lives in which texture (textures are reused once their tensor is dead),
programs (deduplicated sources), steps (program, input textures, output texture, node) and the constants,
shipped raw in `webgl-weights.bin` (float32, ONNX layout, or repacked for the C4 shaders). This module reads
the optimized IR; the IR knows nothing of WebGL.

Nodes without a shader run on wasm (`partition`): the plan is then a list of segments, alternately GPU and
wasm, with the tensors to move between texture and wasm memory before each; the wasm nodes are packaged as
a bundle of their own (`wasm_part`, package.py) whose step ranges and tensor offsets `link_wasm_part` fills in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from .errors import PackageError
from .ir import Graph, Node, Value
from .ops.spatial import as_2d

MAX_WIDTH = 2048  # WebGL2 guarantees MAX_TEXTURE_SIZE >= 2048
WEIGHTS_FILE = "webgl-weights.bin"
ALIASES = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"}
INTERNAL_OPS = ("Relayout", "SoftmaxStats")  # steps the GPU plan adds (domain wasm_runtime), no ONNX op
ACTIVATIONS = ("Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "SiLU")


class Unsupported(Exception):
    """This node has no shader (reason in the message)."""


def texture_size(elements: int) -> tuple[int, int]:
    texels = max(1, -(-elements // 4))
    width = min(texels, MAX_WIDTH)
    height = -(-texels // width)
    if height > MAX_WIDTH:
        raise Unsupported(f"{elements} elements do not fit one {MAX_WIDTH}x{MAX_WIDTH} texture")
    return width, height


def _f(x: float) -> str:
    """A GLSL float literal."""
    x = float(x)
    if math.isnan(x):
        raise Unsupported("NaN parameter")
    if math.isinf(x):
        return "(1.0 / 0.0)" if x > 0 else "(-1.0 / 0.0)"
    return repr(x)  # "0.2", "1e-05": GLSL float literals, rounded to float32 like the reference's attribute


def _strides(shape) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return out[::-1]


def _unravel(shape, names: list[str], src: str = "i") -> str:
    """GLSL lines declaring ints `names` (one per dim) from flat index `src`."""
    lines = [f"int r_ = {src};"]
    for d, name in zip(reversed(shape), reversed(names), strict=True):
        lines.append(f"int {name} = r_ % {d}; r_ /= {d};")
    return "\n  ".join(lines)


def _broadcast_index(in_shape, out_shape, names: list[str]) -> str:
    """Flat index into a tensor of `in_shape` broadcast (numpy rules) to `out_shape` whose indices are `names`."""
    in_shape = list(in_shape)
    offset = len(out_shape) - len(in_shape)
    terms = []
    for k, (d, s) in enumerate(zip(in_shape, _strides(in_shape), strict=True)):
        if d != 1:
            terms.append(f"{names[k + offset]} * {s}" if s != 1 else names[k + offset])
    return " + ".join(terms) or "0"


def activation_glsl(name: str, params: list[float], v: str = "v") -> str:
    """An expression applying a fused activation (wasm_runtime/ops/activation.py codes) to `v`."""
    p = [float(x) for x in params] + [0.0, 0.0]
    if name == "":
        return v
    if name == "Relu":
        return f"max({v}, 0.0)"
    if name == "Clip":
        lo, hi = p[0], p[1]
        out = v
        if not math.isinf(lo):
            out = f"max({out}, {_f(lo)})"
        if not math.isinf(hi):
            out = f"min({out}, {_f(hi)})"
        return out
    if name == "LeakyRelu":
        return f"mix({v} * {_f(p[0])}, {v}, step(0.0, {v}))"
    if name == "Sigmoid":
        return f"(1.0 / (1.0 + exp(-{v})))"
    if name == "HardSigmoid":
        return f"clamp({v} * {_f(p[0])} + {_f(p[1])}, 0.0, 1.0)"
    if name == "HardSwish":
        return f"({v} * clamp({v} / 6.0 + 0.5, 0.0, 1.0))"
    if name == "Tanh":
        return f"tanh_({v})"
    if name == "SiLU":
        return f"({v} / (1.0 + exp(-{v})))"
    raise Unsupported(f"activation {name!r}")


# tanh from exp, stable for large |x| (GLSL ES 3.00 has tanh(), but SwiftShader's overflows to NaN past ~±44)
TANH = (
    "float tanh_(float x) { float e = exp(-2.0 * abs(x)); return sign(x) * (1.0 - e) / (1.0 + e); }\n"
    "vec4 tanh_(vec4 x) { vec4 e = exp(-2.0 * abs(x)); return sign(x) * (1.0 - e) / (1.0 + e); }\n"
)


@dataclass
class Program:
    inputs: list[str]  # tensor names read as x0, x1, ...
    body: str  # GLSL defining float f(int i), vec4 g(int b), vec4 run(), or main() itself (several outputs)
    outputs: int = 1  # render targets o0, o1, ... when more than one (the node's outputs, in order)


@dataclass
class WebGLPlan:
    section: dict
    weights: bytes
    unsupported: list[tuple[str, str, str]] = field(default_factory=list)  # (node, op, reason)
    partition: Partition | None = None  # None: no node runs on the GPU


class _Gen:
    def __init__(self, graph: Graph, grids: dict[str, Grid] | None = None):
        self.graph = graph
        self.grids = grids if grids is not None else {}  # tensors in the C4 layout
        self.dims: dict[str, tuple[int, int]] = {}  # textures of constants repacked for a shader

    def grid(self, name: str) -> Grid:
        return self.grids[name]

    def add_const(self, name: str, data: np.ndarray, size: tuple[int, int]) -> str:
        """A constant repacked for a shader: `data` fills a size[0] x size[1] RGBA texture row by row."""
        data = np.ascontiguousarray(data, np.float32)
        assert data.size == size[0] * size[1] * 4, (name, data.shape, size)
        if size[0] > MAX_WIDTH or size[1] > MAX_WIDTH:
            raise Unsupported(f"{name!r} needs a {size[0]}x{size[1]} texture")
        self.graph.values[name] = Value(name, np.dtype(np.float32), tuple(data.shape), data)
        self.dims[name] = size
        return name

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.graph.values[name].shape)

    def const(self, name: str):
        return self.graph.const(name)

    def attr(self, node: Node, key: str, default=None):
        return node.attrs.get(key, default)


# ---- op shaders ----------------------------------------------------------------------------------------

OPS = {}


def shader(*op_types: str):
    def register(fn):
        for op in op_types:
            OPS[op] = fn
        return fn

    return register


def _window(node: Node, in_sizes, kernel, out_sizes) -> dict:
    from .ops.spatial import window

    class _Ctx:
        def fail(self, message):
            return Unsupported(message)

    return window(_Ctx(), node, tuple(in_sizes), tuple(kernel), tuple(out_sizes))


@shader("Conv", "FusedConv")
def conv(g: _Gen, node: Node) -> Program:
    x, w, b = node.input(0), node.input(1), node.input(2)
    y = node.outputs[0]
    xs, ws, ys = g.shape(x), g.shape(w), g.shape(y)
    if len(xs) not in (3, 4):
        raise Unsupported(f"{len(xs) - 2}-D convolution (1-D and 2-D run on the GPU)")
    group = int(g.attr(node, "group", 1))
    kernel = tuple(g.attr(node, "kernel_shape") or ws[2:])
    win = _window(node, xs[2:], kernel, ys[2:])
    N, C, M = xs[0], xs[1], ws[0]
    H, W = as_2d(xs[2:], 1)
    OH, OW = as_2d(ys[2:], 1)
    KH, KW = as_2d(kernel, 1)
    SH, SW = as_2d(win["strides"], 1)
    DH, DW = as_2d(win["dilations"], 1)
    PT, PL = as_2d(win["begin"], 0)
    CG, MG = C // group, M // group
    inputs = [x, w]
    bias = "0.0"
    if b:
        inputs.append(b)
        bias = f"x{len(inputs) - 1}(m)"
    residual = ""
    act, params = "", []
    if node.domain == "wasm_runtime":
        act, params = node.attrs.get("activation", ""), node.attrs.get("activation_params", [])
        if len(node.inputs) > 3 and node.inputs[3]:
            inputs.append(node.inputs[3])
            residual = f"v += x{len(inputs) - 1}(i);"
    P = OH * OW
    vec_residual = residual.replace("v += x", "v += v").replace("(i)", "(b >> 2)")
    if (KH, KW, SH, SW, PT, PL, group) == (1, 1, 1, 1, 0, 0, 1) and P % 4 == 0 and C % 4 == 0 and (H, W) == (OH, OW):
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
  {vec_residual}
  return {activation_glsl(act, params)};
}}
"""
        return Program(inputs, body)
    if OW % 4 == 0:
        # a texel is 4 neighbouring output pixels of one row: each weight is fetched once for the 4
        taps = ", ".join(f"(jx{j} >= 0 && jx{j} < {W}) ? x0(row + jx{j}) : 0.0" for j in range(4))
        ixs = " ".join(f"int jx{j} = ix0 + {j * SW} + kx * {DW};" for j in range(4))
        body = f"""vec4 g(int b) {{
  {_unravel((N, M, OH, OW), ["n", "m", "oy", "ox"], "b")}
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
  {vec_residual}
  return {activation_glsl(act, params)};
}}
"""
        return Program(inputs, body)
    body = f"""float f(int i) {{
  {_unravel((N, M, OH, OW), ["n", "m", "oy", "ox"])}
  int xb = (n * {C} + (m / {MG}) * {CG}) * {H * W};
  int wb = m * {CG * KH * KW};
  int iy0 = oy * {SH} - {PT}, ix0 = ox * {SW} - {PL};
  float v = {bias};
  for (int c = 0; c < {CG}; c++) {{
    for (int ky = 0; ky < {KH}; ky++) {{
      int iy = iy0 + ky * {DH};
      if (iy < 0 || iy >= {H}) continue;
      for (int kx = 0; kx < {KW}; kx++) {{
        int ix = ix0 + kx * {DW};
        if (ix < 0 || ix >= {W}) continue;
        v += x0(xb + (c * {H} + iy) * {W} + ix) * x1(wb + (c * {KH} + ky) * {KW} + kx);
      }}
    }}
  }}
  {residual}
  return {activation_glsl(act, params)};
}}
"""
    return Program(inputs, body)


@shader("Gemm", "FusedGemm")
def gemm(g: _Gen, node: Node, mkn: tuple[int, int, int] | None = None) -> Program:
    """mkn: (M, K, N) of a MatMul with a constant 2-D B, its A's leading dims flattened into M (a free view in
    flat4)."""
    a, b, c = node.input(0), node.input(1), node.input(2)
    y = node.outputs[0]
    ta, tb = int(g.attr(node, "transA", 0)), int(g.attr(node, "transB", 0))
    M, K, N = mkn or (g.shape(y)[0], g.shape(a)[0 if ta else 1], g.shape(y)[1])
    alpha, beta = float(g.attr(node, "alpha", 1.0)), float(g.attr(node, "beta", 1.0))
    a_idx = f"k * {M} + m" if ta else f"m * {K} + k"
    b_idx = f"n * {K} + k" if tb else f"k * {N} + n"
    inputs = [a, b]
    bias = "0.0"
    if c and beta != 0.0:
        inputs.append(c)
        bias = f"{_f(beta)} * x{len(inputs) - 1}({_broadcast_index(g.shape(c), (M, N), ['m', 'n'])})"
    act, params, residual = "", [], ""
    if node.domain == "wasm_runtime":
        act, params = node.attrs.get("activation", ""), node.attrs.get("activation_params", [])
        if len(node.inputs) > 3 and node.inputs[3]:
            inputs.append(node.inputs[3])
            residual = f"v += x{len(inputs) - 1}(i);"
    Kq = K // 4
    bdata = g.const(b)
    if not ta and K % 4 == 0 and N % 4 == 0 and bdata is not None and K <= MAX_WIDTH and N // 4 <= MAX_WIDTH:
        if M * Kq <= MAX_WIDTH:  # A's rows in one texture row: sampled with texture(), B repacked to match
            return _gemm_tex(g, node, inputs, bdata, tb, (M, K, N), alpha, bias, act, params, residual)
    if not ta and K % 4 == 0 and N % 4 == 0:
        if tb:  # B is [N, K]: texels of 4 k for each of the 4 columns
            dots = ", ".join(f"dot(a, v1(bt + {j * Kq} + k4))" for j in range(4))
            inner = f"s += vec4({dots});"
        else:  # B is [K, N]: texel of 4 columns per k
            inner = " + ".join(f"a.{'xyzw'[j]} * v1(bt + (4 * k4 + {j}) * {N // 4})" for j in range(4))
            inner = f"s += {inner};"
        bias4 = "vec4(0.0)"
        if bias != "0.0":
            idx = [_broadcast_index(g.shape(c), (M, N), ["m", f"(n + {j})"]) for j in range(4)]
            bias4 = f"{_f(beta)} * vec4({', '.join(f'x{len(inputs) - 1 - bool(residual)}({e})' for e in idx)})"
        vec_residual = residual.replace("v += x", "v += v").replace("(i)", "(b >> 2)")
        body = f"""vec4 g(int b) {{
  int m = b / {N}, n = b % {N};
  int at = m * {Kq}, bt = {"n * " + str(Kq) if tb else "n >> 2"};
  vec4 s = vec4(0.0);
  for (int k4 = 0; k4 < {Kq}; k4++) {{
    vec4 a = v0(at + k4);
    {inner}
  }}
  vec4 v = {_f(alpha)} * s + {bias4};
  {vec_residual}
  return {activation_glsl(act, params)};
}}
"""
        return Program(inputs, body)
    body = f"""float f(int i) {{
  int m = i / {N}, n = i % {N};
  float s = 0.0;
  for (int k = 0; k < {K}; k++) s += x0({a_idx}) * x1({b_idx});
  float v = {_f(alpha)} * s + {bias};
  {residual}
  return {activation_glsl(act, params)};
}}
"""
    return Program(inputs, body)


def _gemm_tex(g: _Gen, node: Node, inputs, bdata, tb, mkn, alpha, bias, act, params, residual) -> Program:
    """Gemm with constant B: B repacked so that texel (k, n / 4) holds B[k, n .. n + 3]; an output texel (4
    columns of one row) takes 1 texel of A and 4 of B per 4 k, all sampled with texture() (unrolled by 4)."""
    M, K, N = mkn
    Kq, N4 = K // 4, N // 4
    bk = np.asarray(bdata, np.float32).reshape((N, K) if tb else (K, N))
    bk = bk.T if tb else bk
    inputs = list(inputs)
    inputs[1] = g.add_const(f"{node.input(1)}@gemm", bk.reshape(K, N4, 4).transpose(1, 0, 2), (K, N4))
    wa = M * Kq  # A's texture: one row of M * Kq texels
    bias4 = "vec4(0.0)"
    if bias != "0.0":
        c = node.input(2)
        idx = [_broadcast_index(g.shape(c), (M, N), ["m", f"(n + {j})"]) for j in range(4)]
        bias4 = f"{_f(float(g.attr(node, 'beta', 1.0)))} * vec4({', '.join(f'x2({e})' for e in idx)})"
    vec_residual = residual.replace("v += x", "v += v").replace("(i)", "(b >> 2)")
    unroll = next(u for u in (4, 2, 1) if Kq % u == 0)
    lines = []
    for u in range(unroll):
        lines.append(f"vec4 a{u} = texture(t0, vec2(ab + float(k4 + {u}) * {_fl(1 / wa)}, 0.5));")
        kx = f"(float(k4 + {u}) * 4.0 + {{j}}.5) * {_fl(1 / K)}"
        terms = [f"a{u}.{'xyzw'[j]} * texture(t1, vec2({kx.format(j=j)}, wy))" for j in range(4)]
        lines.append(f"s += {' + '.join(terms)};")
    inner = "\n    ".join(lines)
    return Program(
        inputs,
        f"""vec4 g(int b) {{
  int m = b / {N}, n = b % {N};
  float ab = (float(m * {Kq}) + 0.5) * {_fl(1 / wa)}, wy = (float(n >> 2) + 0.5) * {_fl(1 / N4)};
  vec4 s = vec4(0.0);
  for (int k4 = 0; k4 < {Kq}; k4 += {unroll}) {{
    {inner}
  }}
  vec4 v = {_f(alpha)} * s + {bias4};
  {vec_residual}
  return {activation_glsl(act, params)};
}}
""",
    )


@shader("MatMul")
def matmul(g: _Gen, node: Node) -> Program:
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
    batch_a = _broadcast_index([*sa[:-2], 1, 1], full, names)
    batch_b = _broadcast_index([*sb[:-2], 1, 1], full, names)
    body = f"""float f(int i) {{
  {_unravel(full, names)}
  int ab = ({batch_a}) * {M * K} + m * {K}, bb = ({batch_b}) * {K * N} + n;
  float s = 0.0;
  for (int k = 0; k < {K}; k++) s += x0(ab + k) * x1(bb + k * {N});
  return s;
}}
"""
    assert math.prod(full) == math.prod(sy)
    return Program([a, b], body)


def _matmul_bt(g: _Gen, node: Node, bdata: np.ndarray, mkn: tuple[int, int, int]) -> Program:
    """A @ B for a constant B whose N is no multiple of 4 (an output texel then straddles rows): B stored
    transposed, so that each output element is the dot product of K / 4 texels of A's row and of B's column."""
    M, K, N = mkn
    Kq = K // 4
    bt = f"{node.input(1)}@t"
    g.graph.values[bt] = Value(bt, np.dtype(np.float32), (N, K), np.ascontiguousarray(bdata.T))
    body = f"""float f(int i) {{
  int m = i / {N}, n = i % {N};
  int at = m * {Kq}, bt = n * {Kq};
  vec4 s = vec4(0.0);
  for (int k4 = 0; k4 < {Kq}; k4++) s += v0(at + k4) * v1(bt + k4);
  return s.x + s.y + s.z + s.w;
}}
"""
    return Program([node.input(0), bt], body)


def _pool(g: _Gen, node: Node, mode: str) -> Program:
    x, y = node.input(0), node.outputs[0]
    xs, ys = g.shape(x), g.shape(y)
    if len(xs) not in (3, 4):
        raise Unsupported(f"{len(xs) - 2}-D pooling (1-D and 2-D run on the GPU)")
    if len(node.outputs) > 1 and node.outputs[1]:
        raise Unsupported("MaxPool's Indices output")
    kernel = tuple(node.attrs["kernel_shape"])
    win = _window(node, xs[2:], kernel, ys[2:])
    H, W = as_2d(xs[2:], 1)
    OH, OW = as_2d(ys[2:], 1)
    KH, KW = as_2d(kernel, 1)
    SH, SW = as_2d(win["strides"], 1)
    DH, DW = as_2d(win["dilations"], 1)
    PT, PL = as_2d(win["begin"], 0)
    PB, PR = as_2d(win["end"], 0)
    for size, out, stride, begin in zip(xs[2:], ys[2:], win["strides"], win["begin"], strict=True):
        if out > 1 and (out - 1) * stride - begin >= size:
            raise Unsupported("a ceil_mode window starting in the right padding")
    head = f"""float f(int i) {{
  {_unravel((xs[0] * xs[1], OH, OW), ["p", "oy", "ox"])}
  int xb = p * {H * W};
  int iy0 = oy * {SH} - {PT}, ix0 = ox * {SW} - {PL};
"""
    if mode == "max":
        return Program(
            [x],
            head
            + f"""  float v = -1.0 / 0.0;
  for (int ky = 0; ky < {KH}; ky++) {{
    int iy = iy0 + ky * {DH};
    if (iy < 0 || iy >= {H}) continue;
    for (int kx = 0; kx < {KW}; kx++) {{
      int ix = ix0 + kx * {DW};
      if (ix < 0 || ix >= {W}) continue;
      v = max(v, x0(xb + iy * {W} + ix));
    }}
  }}
  return v;
}}
""",
        )
    if DH != 1 or DW != 1:
        raise Unsupported("AveragePool with dilations")
    cip = int(node.attrs.get("count_include_pad", 0))
    count = (
        f"float((min(iy0 + {KH}, {H + PB}) - iy0) * (min(ix0 + {KW}, {W + PR}) - ix0))"
        if cip
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


@shader("MaxPool")
def max_pool(g: _Gen, node: Node) -> Program:
    return _pool(g, node, "max")


@shader("AveragePool")
def average_pool(g: _Gen, node: Node) -> Program:
    return _pool(g, node, "avg")


@shader("GlobalAveragePool", "GlobalMaxPool")
def global_pool(g: _Gen, node: Node) -> Program:
    x = node.input(0)
    xs = g.shape(x)
    size = math.prod(xs[2:])
    if node.op_type == "GlobalMaxPool":
        loop, result = "v = max(v, x0(b + k));", "v"
        init = "-1.0 / 0.0"
    else:
        loop, result, init = "v += x0(b + k);", f"v / {_f(size)}", "0.0"
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


BINARY = {"Add": "a + b", "Sub": "a - b", "Mul": "a * b", "Div": "a / b"}


def scalar_operand(graph: Graph, node: Node) -> tuple[int, float] | None:
    """(index of the tensor operand, value of the other) when one operand of a binary op is a constant of one
    element and the other has the output's shape: the op is then texel-wise with the constant in the shader."""
    y = graph.shape(node.outputs[0])
    for k in (0, 1):
        c = graph.const(node.input(1 - k))
        if c is not None and c.size == 1 and len(c.shape) <= len(y) and tuple(graph.shape(node.input(k))) == tuple(y):
            return k, float(np.asarray(c).reshape(()))
    return None


def scalar_op_keeps_padding_finite(op: str, k: int, value: float) -> bool:
    """Whether `tensor op value` (k = 0) or `value op tensor` (k = 1) maps the finite padding channels of a C4
    tensor to finite values (x / 0 and 0 / x do not)."""
    if not math.isfinite(value):
        return False
    return op != "Div" or (k == 0 and value != 0.0)


@shader(*BINARY)
def binary(g: _Gen, node: Node) -> Program:
    a, b, y = node.input(0), node.input(1), node.outputs[0]
    ys = g.shape(y)
    scalar = scalar_operand(g.graph, node)
    if scalar is not None:  # texel by texel with the constant in the source, in either layout
        k, value = scalar
        operands = ("v", _f(value)) if k == 0 else (_f(value), "v")
        expr = BINARY[node.op_type].replace("a", "{0}").replace("b", "{1}").format(*operands)
        return Program(
            [node.input(k)],
            f"vec4 run() {{ vec4 v = texelFetch(t0, ivec2(gl_FragCoord.xy), 0); return {expr}; }}\n",
        )
    if g.shape(a) == ys and g.shape(b) == ys:  # texel by texel, in either layout (both inputs in the same)
        expr = BINARY[node.op_type].replace("a", "va").replace("b", "vb")
        return Program(
            [a, b],
            "vec4 run() {\n  ivec2 p = ivec2(gl_FragCoord.xy);\n"
            f"  vec4 va = texelFetch(t0, p, 0), vb = texelFetch(t1, p, 0);\n  return {expr};\n}}\n",
        )
    names = [f"d{k}" for k in range(len(ys))]
    return Program(
        [a, b],
        f"""float f(int i) {{
  {_unravel(ys, names) if ys else ""}
  float a = x0({_broadcast_index(g.shape(a), ys, names)});
  float b = x1({_broadcast_index(g.shape(b), ys, names)});
  return {BINARY[node.op_type]};
}}
""",
    )


@shader(*[a for a in ACTIVATIONS if a != "SiLU"])
def unary(g: _Gen, node: Node) -> Program:
    op = node.op_type
    params: list[float] = []
    if op == "Clip":
        if len(node.inputs) > 1:  # opset >= 11: min/max are inputs
            lo, hi = g.const(node.input(1)), g.const(node.input(2))
            if (node.input(1) and lo is None) or (node.input(2) and hi is None):
                raise Unsupported("Clip bounds computed at run time")
            params = [lo.item() if lo is not None else -math.inf, hi.item() if hi is not None else math.inf]
        else:
            params = [float(node.attrs.get("min", -math.inf)), float(node.attrs.get("max", math.inf))]
    elif op == "LeakyRelu":
        params = [float(node.attrs.get("alpha", 0.01))]
    elif op == "HardSigmoid":
        params = [float(node.attrs.get("alpha", 0.2)), float(node.attrs.get("beta", 0.5))]
    # texel by texel: the output has the input's layout and texture size (flat4 or C4)
    return Program(
        [node.input(0)],
        f"vec4 run() {{ vec4 v = texelFetch(t0, ivec2(gl_FragCoord.xy), 0); return {activation_glsl(op, params)}; }}\n",
    )


@shader("Concat")
def concat(g: _Gen, node: Node) -> Program:
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


@shader("Transpose")
def transpose(g: _Gen, node: Node) -> Program:
    x, y = node.input(0), node.outputs[0]
    xs, ys = g.shape(x), g.shape(y)
    perm = list(node.attrs.get("perm") or reversed(range(len(xs))))
    names = [f"d{k}" for k in range(len(ys))]
    strides = _strides(xs)
    index = " + ".join(f"{names[k]} * {strides[p]}" for k, p in enumerate(perm)) or "0"
    return Program([x], f"float f(int i) {{\n  {_unravel(ys, names)}\n  return x0({index});\n}}\n")


def _softmax_rows(g: _Gen, node: Node) -> tuple[int, int]:
    """(length, stride) of the rows a Softmax normalizes: `length` elements `stride` apart."""
    xs = g.shape(node.input(0))
    axis = int(node.attrs.get("axis", -1 if g.graph.opset >= 13 else 1)) % len(xs)
    if g.graph.opset >= 13:
        return xs[axis], math.prod(xs[axis + 1 :])
    return math.prod(xs[axis:]), 1


# Softmax rows of at least this many elements take two steps (softmax_stats, then the normalization): the
# single step recomputes its row's max and sum for each element, O(length^2) per row, which made PP-OCRv4's
# 6625-class Softmax 34 s of a 36 s run in SwiftShader. Rows of 512 (Chromium/SwiftShader, A/B in one page,
# median of 20): length 4 1 vs 1 ms in one step, 8 1 vs 2, 16 2 vs 7, 40 2 vs 18.
SOFTMAX_TWO_STEPS = 8


@shader("Softmax", "LogSoftmax")
def softmax(g: _Gen, node: Node) -> Program:
    x = node.input(0)
    length, stride = _softmax_rows(g, node)
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


@shader("SoftmaxStats")
def softmax_stats(g: _Gen, node: Node) -> Program:
    """Texel `row` of the output: (max, sum of exp(x - max), 0, 0) of that row of the Softmax's input."""
    length, stride = _softmax_rows(g, node)
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


def _two_step_rewrite(graph: Graph, supported: set[str]) -> set[str]:
    """Softmax -> SoftmaxStats + Softmax reading its statistics, for rows of SOFTMAX_TWO_STEPS or more
    elements (in place on the GPU plan's graph). Returns the names of the nodes added."""
    added, nodes = set(), []
    g = _Gen(graph)
    for node in graph.nodes:
        if node.name in supported and node.op_type in ("Softmax", "LogSoftmax"):
            length, stride = _softmax_rows(g, node)
            if length >= SOFTMAX_TWO_STEPS:
                y = node.outputs[0]
                stats = f"{y}@stats"
                rows = math.prod(graph.shape(y)) // length
                graph.values[stats] = Value(stats, np.dtype(np.float32), (rows, 4))
                attrs = {**node.attrs, "axis": node.attrs.get("axis", -1 if graph.opset >= 13 else 1)}
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


@shader("LRN")
def lrn(g: _Gen, node: Node) -> Program:
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
  return x0(i) / pow({_f(bias)} + {_f(alpha / size)} * s, {_f(beta)});
}}
""",
    )


# ---- the channel-packed (C4) layout ------------------------------------------------------------------------
#
# Convolutions and the ops around them keep [N, C, H, W] (or [N, C, L], as H = 1) tensors channel-packed: a
# texel holds 4 channels of one pixel. Plane q = n * ceil(C / 4) + c // 4 is an H x W tile; tiles fill a grid
# of TX columns (as few as fit 2048 rows), tile q at column q % TX, row q // TX. Channels past C are padding
# (finite values that consumers never mix into real ones: their weights are zero). Shaders address these
# textures with texture() at texel centres (NEAREST, no filtering): in SwiftShader that costs about half of a
# texelFetch (micro-benchmark, 64 unrolled fetches per fragment: 2.7-3.4 vs 5.5-5.8 ms), and a tap of a
# convolution is the fragment's own coordinate plus a constant offset. Textures have one level and NEAREST
# for both filters, so the implicit LOD (undefined where a tap is masked by a condition) cannot change the
# texel sampled.


@dataclass(frozen=True)
class Grid:
    N: int
    C: int
    H: int
    W: int
    TX: int

    @property
    def C4(self) -> int:
        return -(-self.C // 4)

    @property
    def planes(self) -> int:
        return self.N * self.C4

    @property
    def TY(self) -> int:
        return -(-self.planes // self.TX)

    @property
    def size(self) -> tuple[int, int]:
        return self.TX * self.W, self.TY * self.H


def c4_grid(shape) -> Grid | None:
    """The C4 tiling of a 3-D or 4-D tensor, or None when it does not fit a 2048 x 2048 texture."""
    if len(shape) not in (3, 4) or 0 in shape:
        return None
    N, C = shape[0], shape[1]
    H, W = as_2d(list(shape[2:]), 1)
    if H > MAX_WIDTH or W > MAX_WIDTH:
        return None
    planes = N * -(-C // 4)
    tx = -(-planes // (MAX_WIDTH // H))
    grid = Grid(N, C, H, W, tx)
    return grid if grid.size[0] <= MAX_WIDTH and grid.size[1] <= MAX_WIDTH else None


def _fl(x: float) -> str:
    """A GLSL float literal of an exactly representable number (or the nearest float)."""
    s = repr(float(x))
    return s if ("." in s or "e" in s or "inf" in s) else s + ".0"


def _frag_plane(grid: Grid, p: str = "") -> str:
    """GLSL declaring floats {p}q (plane), {p}y, {p}x (pixel in the tile) of this fragment in `grid`."""
    lines = []
    if grid.TY == 1:
        lines.append(f"float {p}ty = 0.0, {p}y = gl_FragCoord.y - 0.5;")
    else:
        lines.append(f"float {p}ty = floor(gl_FragCoord.y * {_fl(1 / grid.H)});")
        lines.append(f"float {p}y = gl_FragCoord.y - 0.5 - {p}ty * {_fl(grid.H)};")
    if grid.TX == 1:
        lines.append(f"float {p}tx = 0.0, {p}x = gl_FragCoord.x - 0.5;")
    else:
        lines.append(f"float {p}tx = floor(gl_FragCoord.x * {_fl(1 / grid.W)});")
        lines.append(f"float {p}x = gl_FragCoord.x - 0.5 - {p}tx * {_fl(grid.W)};")
    lines.append(f"float {p}q = {p}ty * {_fl(grid.TX)} + {p}tx;")
    return "\n  ".join(lines)


def _split(value: str, count: int, hi: str, lo: str) -> str:
    """GLSL declaring floats hi = floor(value / count), lo = value - hi * count (value a small integer)."""
    if count == 1:
        return f"float {hi} = {value}, {lo} = 0.0;"
    return f"float {hi} = floor(({value} + 0.5) * {_fl(1 / count)}); float {lo} = {value} - {hi} * {_fl(count)};"


def _plane_origin(grid: Grid, q: str, name: str) -> str:
    """GLSL declaring vec2 `name`: the texel origin of plane `q` (a float) in `grid`."""
    if grid.TX == 1:
        return f"vec2 {name} = vec2(0.0, {q} * {_fl(grid.H)});"
    return (
        f"float {name}r = floor(({q} + 0.5) * {_fl(1 / grid.TX)});\n"
        f"  vec2 {name} = vec2(({q} - {name}r * {_fl(grid.TX)}) * {_fl(grid.W)}, {name}r * {_fl(grid.H)});"
    )


def _inv(size: tuple[int, int]) -> str:
    return f"vec2({_fl(1 / size[0])}, {_fl(1 / size[1])})"


def _conv_geometry(g: _Gen, node: Node):
    x, w = node.input(0), node.input(1)
    y = node.outputs[0]
    xs, ws, ys = g.shape(x), g.shape(w), g.shape(y)
    group = int(g.attr(node, "group", 1))
    kernel = tuple(g.attr(node, "kernel_shape") or ws[2:])
    win = _window(node, xs[2:], kernel, ys[2:])
    return dict(
        group=group,
        C=xs[1],
        M=ws[0],
        CG=xs[1] // group,
        MG=ws[0] // group,
        K=as_2d(list(kernel), 1),
        S=as_2d(list(win["strides"]), 1),
        D=as_2d(list(win["dilations"]), 1),
        P=as_2d(list(win["begin"]), 0),
    )


def conv_c4_ok(g: _Gen, node: Node) -> bool:
    """Whether the C4 convolution shader takes this node (its input and output then live in C4)."""
    x, w, b = node.input(0), node.input(1), node.input(2)
    if len(g.shape(x)) not in (3, 4) or g.const(w) is None or (b and g.const(b) is None):
        return False
    if c4_grid(g.shape(x)) is None or c4_grid(g.shape(node.outputs[0])) is None:
        return False
    try:
        geo = _conv_geometry(g, node)
    except Unsupported:
        return False
    T = geo["K"][0] * geo["K"][1]
    if geo["CG"] == 1 and geo["MG"] == 1:  # depthwise
        return T <= MAX_WIDTH
    if geo["group"] != 1 and (geo["CG"] % 4 or geo["MG"] % 4):
        return False
    M4 = -(-geo["M"] // 4)
    return T <= MAX_WIDTH and M4 <= MAX_WIDTH and 4 * -(-geo["CG"] // 4) * _weight_blocks(M4, T)[0] <= MAX_WIDTH


def _weight_blocks(M4: int, T: int) -> tuple[int, int]:
    """(column blocks, output planes per block) of a C4 conv's weight texture: planes m4 * T + tap rows at most
    2048, so past that the planes continue in another block of columns."""
    rows = min(M4, MAX_WIDTH // T)
    return -(-M4 // rows), rows


def _c4_weights(wdata: np.ndarray, M: int, CG: int, T: int) -> tuple[np.ndarray, tuple[int, int]]:
    """A dense C4 conv's weights [M, CG, T] as its weight texture (texels, (width, height)): texel (x = b * 4 CG4 +
    input channel, y = r * T + tap) holds the weights of output channels 4 m4 .. 4 m4 + 3, m4 = b * rows + r
    (one block of columns unless M4 * T > 2048)."""
    M4, CG4 = -(-M // 4), -(-CG // 4)
    blocks, rows = _weight_blocks(M4, T)
    full = np.zeros((blocks * rows * 4, CG4 * 4, T), np.float32)
    full[:M, :CG] = wdata
    return full.reshape(blocks, rows, 4, CG4 * 4, T).transpose(1, 4, 0, 3, 2), (blocks * CG4 * 4, rows * T)


def _c4_weight_head(geo, gi: Grid, M4: int, CG4: int, T: int, wsize: tuple[int, int]) -> list[str]:
    """Shader lines placing a dense C4 conv's fragment: iq0 (its first input plane, per group), mb/mr (its
    weight block and row, _c4_weights), wy and wxb (its weight texel row and first column)."""
    WW, WH = wsize
    MG = geo["MG"]
    if geo["group"] == 1:
        lines = [f"float iq0 = n * {_fl(gi.C4)};"]
    else:
        lines = [f"float iq0 = n * {_fl(gi.C4)} + floor((m4 + 0.5) * {_fl(4 / MG)}) * {_fl(CG4)};"]
    blocks, rows = _weight_blocks(M4, T)
    lines.append(_split("m4", rows, "mb", "mr") if blocks > 1 else "float mb = 0.0, mr = m4;")
    lines.append(f"float wy = (mr * {_fl(T)} + 0.5) * {_fl(1 / WH)};")
    lines.append(f"float wxb = mb * {_fl(CG4 * 4 / WW)} + {_fl(0.5 / WW)};")
    return lines


def _c4_unit(gi: Grid, u: int, inv_in: str, WW: int) -> tuple[str, list[str]]:
    """Unrolled input plane u of a dense C4 conv's loop over c: (its index expression, the lines locating its
    plane origin org{u}, sample base base{u} and weight column wx{u})."""
    c = f"(c + {u})" if u else "c"
    return c, [
        f"float qi{u} = iq0 + float({c});",
        _plane_origin(gi, f"qi{u}", f"org{u}").replace("\n  ", "\n    "),
        f"vec2 base{u} = (org{u} + ib) * {inv_in};",
        f"float wx{u} = float({c}) * {_fl(4 / WW)} + wxb;",
    ]


def _edge(o: str, S: int, off: int, out_size: int, in_size: int) -> list[str]:
    """GLSL conditions that input coordinate o * S + off lies inside [0, in_size), only for the bounds some
    output position 0 .. out_size - 1 can cross."""
    conds = []
    if off < 0:
        conds.append(f"{o} * {_fl(S)} >= {_fl(-off)}")
    if (out_size - 1) * S + off >= in_size:
        conds.append(f"{o} * {_fl(S)} < {_fl(in_size - off)}")
    return conds


def _taps(geo, grid_in: Grid, grid_out: Grid, ox: str, oy: str):
    """Per tap (ky, kx): its texel offset from the window origin and the GLSL condition that it is inside the
    image, or None when it always is (decided from the output size)."""
    (KH, KW), (SH, SW), (DH, DW), (PT, PL) = geo["K"], geo["S"], geo["D"], geo["P"]
    conds, taps = [], []
    for ky in range(KH):
        cy = _edge(oy, SH, ky * DH - PT, grid_out.H, grid_in.H)
        for kx in range(KW):
            c = " && ".join(cy + _edge(ox, SW, kx * DW - PL, grid_out.W, grid_in.W))
            conds.append(c or None)
            taps.append((ky, kx))
    return taps, conds


def _col_cond(geo, grid_in: Grid, grid_out: Grid, kx: int, ox: str) -> str:
    """The GLSL condition that column tap kx is inside the image ("" when it always is)."""
    SW, DW, PL = geo["S"][1], geo["D"][1], geo["P"][1]
    lo, hi = kx * DW - PL, (grid_out.W - 1) * SW + kx * DW - PL
    cx = []
    if lo < 0:
        cx.append(f"{ox} * {_fl(SW)} >= {_fl(-lo)}")
    if hi >= grid_in.W:
        cx.append(f"{ox} * {_fl(SW)} < {_fl(grid_in.W - lo)}")
    return " && ".join(cx)


def _row_cond(geo, grid_in: Grid, grid_out: Grid, oy: str, fy: str) -> str:
    """The GLSL condition that kernel row `fy` (a float in a loop) is inside the image ("true" if always)."""
    KH, SH, DH, PT = geo["K"][0], geo["S"][0], geo["D"][0], geo["P"][0]
    iy = f"{oy} * {_fl(SH)} + {fy} * {_fl(DH)}"
    rc = []
    if PT > 0:
        rc.append(f"{iy} >= {_fl(PT)}")
    if (grid_out.H - 1) * SH + (KH - 1) * DH - PT >= grid_in.H:
        rc.append(f"{iy} < {_fl(grid_in.H + PT)}")
    return " && ".join(rc) or "true"


# A window row of at most COLUMNS_UNROLLED taps is unrolled whole; a wider one loops over chunks of
# COLUMN_CHUNK unrolled taps (then the remainder, unrolled), so a shader's size and its texture() count stay
# bounded whatever the kernel: a 256-tap 1-D conv unrolled whole was a 119 KB shader whose first draw
# (SwiftShader's JIT) lost the WebGL context, and a 31x31 conv with its rows unrolled had not finished its
# first draw after 300 s. Unrolled rows are faster up to 15 taps (Chromium/SwiftShader, A/B in one page,
# median of 16 runs: 7x7 depthwise 33-35 ms unrolled vs 58 ms in chunks of 4, 9x9 164 vs 184, 15x15 107 vs
# 132); chunks of 2, 4 or 8 taps ran within noise of each other on 31x31, 1x256 and 1x512 kernels.
COLUMNS_UNROLLED = 16
COLUMN_CHUNK = 4


def _window_columns(KW: int) -> tuple[int, list[int]]:
    """(columns covered by the chunk loop, the columns unrolled with constant indices) of a window row."""
    if KW <= COLUMNS_UNROLLED:
        return 0, list(range(KW))
    looped = KW - KW % COLUMN_CHUNK
    return looped, list(range(looped, KW))


def _column_flags(geo, grid_in: Grid, grid_out: Grid) -> list[str]:
    """Head lines for _window_rows: a bool cx<kx> per unrolled column that can fall outside the image, and
    the window's first input column ixb when the chunk loop needs bounds checks."""
    KW, SW, PL = geo["K"][1], geo["S"][1], geo["P"][1]
    looped, cols = _window_columns(KW)
    lines = [f"bool cx{kx} = {c};" for kx in cols if (c := _col_cond(geo, grid_in, grid_out, kx, "ox"))]
    if looped and any(_loop_col_checks(geo, grid_in, grid_out)):
        lines.append(f"float ixb = ox * {_fl(SW)} - {_fl(PL)};")
    return lines


def _loop_col_checks(geo, grid_in: Grid, grid_out: Grid) -> tuple[bool, bool]:
    """Whether some tap of the window falls left of the image, and whether some falls right of it."""
    KW, SW, DW, PL = geo["K"][1], geo["S"][1], geo["D"][1], geo["P"][1]
    return PL > 0, (grid_out.W - 1) * SW + (KW - 1) * DW - PL >= grid_in.W


def _window_rows(geo, grid_in: Grid, grid_out: Grid, base: str, tap) -> list[str]:
    """GLSL looping over the window's rows from sample position `base` (the window's top-left tap), each row's
    columns unrolled or looped in chunks (_window_columns). tap(v, cond, fx) returns the GLSL handling one
    tap: v its texture() sample, cond the condition that it lies inside the image, fx its column index (a
    GLSL float expression). Needs _column_flags in the shader's head."""
    (KH, KW), DH, DW = geo["K"], geo["D"][0], geo["D"][1]
    w_in = grid_in.size[0]
    looped, cols = _window_columns(KW)
    out = [f"for (int ky = 0; ky < {KH}; ky++) {{", "  float fy = float(ky);"]
    out.append(f"  bool rin = {_row_cond(geo, grid_in, grid_out, 'oy', 'fy')};")
    out.append(f"  vec2 rb = {base} + vec2(0.0, fy * {_fl(DH / grid_in.size[1])});")
    if looped:
        lo, hi = _loop_col_checks(geo, grid_in, grid_out)
        out.append(f"  for (int kx = 0; kx < {looped}; kx += {COLUMN_CHUNK}) {{")
        out.append("    float fx = float(kx);")
        for u in range(COLUMN_CHUNK):
            fx = f"(fx + {_fl(u)})" if u else "fx"
            cond = ["rin"]
            if lo or hi:
                out.append(f"    float ix{u} = ixb + {fx} * {_fl(DW)};")
                cond += [f"ix{u} >= 0.0"] * lo + [f"ix{u} < {_fl(grid_in.W)}"] * hi
            v = f"texture(t0, rb + vec2({fx} * {_fl(DW / w_in)}, 0.0))"
            out += ["    " + line for line in tap(v, " && ".join(cond), fx)]
        out.append("  }")
    for kx in cols:
        cond = " && ".join(["rin"] + ([f"cx{kx}"] if _col_cond(geo, grid_in, grid_out, kx, "ox") else []))
        v = f"texture(t0, rb + vec2({_fl(kx * DW / w_in)}, 0.0))"
        out += ["  " + line for line in tap(v, cond, _fl(kx))]
    out.append("}")
    return out


def _x4_shape(shape) -> tuple[int, ...]:
    """The shape of each of the 4 parts of a conv output computed 4 pixels per fragment: part j holds the
    pixels of columns 4 X + j at column X."""
    return (*shape[:-1], -(-shape[-1] // 4))


def conv_x4_ok(g: _Gen, node: Node) -> bool:
    """Dense (or grouped by fours) convs of at most 7x7 taps whose output rows are 4 pixels or more: each
    fragment computes 4 neighbouring pixels, so every weight fetched serves 4 of them (SwiftShader: ~1.8x
    faster on ResNet's 3x3 layers, micro-benchmark, merge step not included)."""
    geo = _conv_geometry(g, node)
    ys = g.shape(node.outputs[0])
    if geo["CG"] == 1 and geo["MG"] == 1:
        return False
    KH, KW = geo["K"]
    return KH <= 7 and KW <= 7 and ys[-1] >= 4 and c4_grid(_x4_shape(ys)) is not None


def conv_x4(g: _Gen, node: Node) -> Program:
    """conv_c4 for 4 pixels per fragment: output j (render target j) is pixel 4 X + j of the fragment's column
    X in the parts' grid. Per input plane and kernel row, every input column the 4 pixels' taps touch is
    sampled once, and each weight texel once for the 4 pixels."""
    x, w, b = node.input(0), node.input(1), node.input(2)
    y0 = node.outputs[0]
    geo = _conv_geometry(g, node)
    gi, gp = g.grid(x), g.grid(y0)  # input, one part
    (KH, KW), (SH, SW), (DH, DW), (PT, PL) = geo["K"], geo["S"], geo["D"], geo["P"]
    T = KH * KW
    M, CG = geo["M"], geo["CG"]
    M4, CG4 = -(-M // 4), -(-CG // 4)
    arr, wsize = _c4_weights(np.asarray(g.const(w), np.float32).reshape(M, CG, T), M, CG, T)  # as conv_c4
    WW, WH = wsize
    inputs = [x, g.add_const(f"{w}@c4w", arr, wsize)]
    bias = "vec4(0.0)"
    if b:
        bv = np.zeros(M4 * 4, np.float32)
        bv[:M] = np.asarray(g.const(b), np.float32).reshape(-1)
        inputs.append(g.add_const(f"{b}@c4b", bv.reshape(1, M4, 4), (M4, 1)))
        bias = f"texture(t{len(inputs) - 1}, vec2((m4 + 0.5) * {_fl(1 / M4)}, 0.5))"
    act, params, residual = "", [], None
    if node.domain == "wasm_runtime":
        act, params = node.attrs.get("activation", ""), node.attrs.get("activation_params", [])
        if len(node.inputs) > 3 and node.inputs[3]:
            inputs.append(node.inputs[3])
            residual = len(inputs) - 1
    head = [_frag_plane(gp, "o"), _split("oq", M4, "n", "m4")]
    head.append(f"vec2 ib = vec2(ox * {_fl(4 * SW)} + {_fl(0.5 - PL)}, oy * {_fl(SH)} + {_fl(0.5 - PT)});")
    offsets = sorted({j * SW + kx * DW for j in range(4) for kx in range(KW)})
    colc = set()  # offsets whose column can fall outside the image (pixels past the real width included)
    for d in offsets:  # input column ix = 4 X SW - PL + d
        c = []
        if d - PL < 0:
            c.append(f"ox * {_fl(4 * SW)} >= {_fl(PL - d)}")
        if (gp.W - 1) * 4 * SW - PL + d >= gi.W:
            c.append(f"ox * {_fl(4 * SW)} < {_fl(gi.W + PL - d)}")
        if c:
            head.append(f"bool cx{d} = {' && '.join(c)};")
            colc.add(d)
    rowc = {}  # 1-row kernels: the one row's condition, when it can fail
    if KH == 1 and _row_cond(geo, gi, gp, "oy", "0.0") != "true":
        head.append(f"bool ry0 = {_row_cond(geo, gi, gp, 'oy', '0.0')};")
        rowc[0] = "ry0"
    head += _c4_weight_head(geo, gi, M4, CG4, T, wsize)
    head.append(f"vec4 b4 = {bias};")
    head.append("vec4 a0 = b4, a1 = b4, a2 = b4, a3 = b4;")
    inv_in = _inv(gi.size)
    unroll = next(u for u in ((2, 1) if T == 1 else (1,)) if CG4 % u == 0)
    body = []
    for u in range(unroll):
        c, lines = _c4_unit(gi, u, inv_in, WW)
        body += lines
        # kernel rows in a loop (SwiftShader's JIT time grows fast with unrolled samplers), columns unrolled
        body.append(f"for (int ky = 0; ky < {KH}; ky++) {{" if KH > 1 else "{")
        if KH > 1:
            body.append("  float fy = float(ky);")
            body.append(f"  bool rin = {_row_cond(geo, gi, gp, 'oy', 'fy')};")
            body.append(f"  vec2 rb = base{u} + vec2(0.0, fy * {_fl(DH / gi.size[1])});")
            body.append(f"  float wr = wy + fy * {_fl(KW / WH)};")
        else:
            body.append(f"  bool rin = {rowc.get(0, 'true')}; vec2 rb = base{u}; float wr = wy;")
        for d in offsets:
            conds = ["rin"] + ([f"cx{d}"] if d in colc else [])
            v = f"texture(t0, rb + vec2({_fl(d / gi.size[0])}, 0.0))"
            body.append(f"  vec4 x{d} = {' && '.join(conds)} ? {v} : vec4(0.0);")
        for kx in range(KW):
            wy = "wr" if kx == 0 else f"wr + {_fl(kx / WH)}"
            for j in range(4):
                body.append(f"  vec4 w{j}_{kx} = texture(t1, vec2(wx{u}{' + ' + _fl(j / WW) if j else ''}, {wy}));")
            for j in range(4):
                d = j * SW + kx * DW
                body.append(f"  a{j} += x{d}.x * w0_{kx} + x{d}.y * w1_{kx} + x{d}.z * w2_{kx} + x{d}.w * w3_{kx};")
        body.append("}")
    inner = "\n    ".join(body)
    tail = []
    if residual is not None:
        go = g.grid(node.inputs[3])
        tail.append(_plane_origin(go, "oq", "rorg"))
        for j in range(4):
            tail.append(
                f"a{j} += texture(t{residual}, (rorg + vec2(ox * 4.0 + {_fl(j + 0.5)}, oy + 0.5)) * {_inv(go.size)});"
            )
    for j in range(4):
        tail.append(f"o{j} = {activation_glsl(act, params, f'a{j}')};")
    src = "\n  ".join(head)
    end = "\n  ".join(tail)
    return Program(
        inputs,
        f"""void main() {{
  {src}
  for (int c = 0; c < {CG4}; c += {unroll}) {{
    {inner}
  }}
  {end}
}}
""",
        outputs=4,
    )


def merge_x4(g: _Gen, node: Node) -> Program:
    """The C4 tensor from the 4 parts of conv_x4: pixel (y, x) is part x % 4's pixel (y, x / 4)."""
    go, gp = g.grid(node.outputs[0]), g.grid(node.inputs[0])
    return Program(
        list(node.inputs),
        f"""vec4 run() {{
  {_frag_plane(go, "o")}
  {_split("ox", 4, "X", "j")}
  {_plane_origin(gp, "oq", "org")}
  vec2 at = (org + vec2(X, oy) + 0.5) * {_inv(gp.size)};
  return j < 1.5 ? (j < 0.5 ? texture(t0, at) : texture(t1, at)) : (j < 2.5 ? texture(t2, at) : texture(t3, at));
}}
""",
    )


def conv_c4(g: _Gen, node: Node) -> Program:
    x, w, b = node.input(0), node.input(1), node.input(2)
    y = node.outputs[0]
    geo = _conv_geometry(g, node)
    gi, go = g.grid(x), g.grid(y)
    (KH, KW), (SH, SW), (DH, DW), (PT, PL) = geo["K"], geo["S"], geo["D"], geo["P"]
    T = KH * KW
    M, CG, MG = geo["M"], geo["CG"], geo["MG"]
    M4 = -(-M // 4)
    wdata = np.asarray(g.const(w), np.float32).reshape(M, CG, T)
    depthwise = CG == 1 and MG == 1
    inputs = [x]
    if depthwise:
        # weight texel (tap, c4) = the 4 channels' weights of that tap
        arr = np.zeros((M4 * 4, T), np.float32)
        arr[:M] = wdata[:, 0, :]
        arr = arr.reshape(M4, 4, T).transpose(0, 2, 1)  # [row c4][x tap][lane]
        wsize = (T, M4)
    else:
        arr, wsize = _c4_weights(wdata, M, CG, T)
    wname = g.add_const(f"{w}@c4w", arr, wsize)
    inputs.append(wname)
    bias = "vec4(0.0)"
    if b:
        bv = np.zeros(M4 * 4, np.float32)
        bv[:M] = np.asarray(g.const(b), np.float32).reshape(-1)
        inputs.append(g.add_const(f"{b}@c4b", bv.reshape(1, M4, 4), (M4, 1)))
        bias = f"texture(t{len(inputs) - 1}, vec2((m4 + 0.5) * {_fl(1 / M4)}, 0.5))"
    act, params, residual = "", [], ""
    if node.domain == "wasm_runtime":
        act, params = node.attrs.get("activation", ""), node.attrs.get("activation_params", [])
        if len(node.inputs) > 3 and node.inputs[3]:
            inputs.append(node.inputs[3])
            residual = f"acc += texture(t{len(inputs) - 1}, gl_FragCoord.xy * {_inv(go.size)});"
    inv_in = _inv(gi.size)
    # big kernels loop over their rows and wide rows over chunks of columns (_window_rows): SwiftShader's
    # JIT takes minutes on hundreds of samplers
    row_loop = T * (2 if depthwise else 5) > 50
    taps, conds = _taps(geo, gi, go, "ox", "oy")
    head = [_frag_plane(go, "o"), _split("oq", M4, "n", "m4")]
    head.append(f"vec2 ib = vec2(ox * {_fl(SW)} + {_fl(0.5 - PL)}, oy * {_fl(SH)} + {_fl(0.5 - PT)});")
    if row_loop:
        head += _column_flags(geo, gi, go)
    else:
        head += [f"bool in{t} = {c};" for t, c in enumerate(conds) if c]
    head.append(f"vec4 acc = {bias};")

    def tap_fetch(t: int, base: str) -> str:
        ky, kx = taps[t]
        off = f"vec2({_fl(kx * DW / gi.size[0])}, {_fl(ky * DH / gi.size[1])})"
        v = f"texture(t0, {base} + {off})"
        return f"(in{t} ? {v} : vec4(0.0))" if conds[t] else v

    def row_taps(base: str, weight) -> list[str]:
        """_window_rows with weight(fx) the GLSL accumulating the tap of column fx, whose value is v."""
        return _window_rows(
            geo, gi, go, base, lambda v, cond, fx: [f"{{ vec4 v = {cond} ? {v} : vec4(0.0);", f"  {weight(fx)} }}"]
        )

    lines = []
    if depthwise:
        head.append(_plane_origin(gi, "oq", "org"))
        head.append(f"vec2 base = (org + ib) * {inv_in};")
        head.append(f"float wy = (m4 + 0.5) * {_fl(1 / M4)};")
        if row_loop:
            lines = row_taps(
                "base",
                lambda fx: f"acc += v * texture(t1, vec2((fy * {_fl(KW)} + {fx} + 0.5) * {_fl(1 / T)}, wy));",
            )
        for t in range(0 if row_loop else T):
            lines.append(f"acc += {tap_fetch(t, 'base')} * texture(t1, vec2({_fl((t + 0.5) / T)}, wy));")
        loop = "\n  ".join(lines)
    else:
        CG4 = -(-CG // 4)
        WW, WH = wsize
        head += _c4_weight_head(geo, gi, M4, CG4, T, wsize)
        unroll = next(u for u in ((4, 2, 1) if T == 1 else (1,)) if CG4 % u == 0)
        body = []
        for u in range(unroll):
            c, lines = _c4_unit(gi, u, inv_in, WW)
            body += lines
            if row_loop:
                body += row_taps(
                    f"base{u}",
                    lambda fx, u=u: (
                        "acc += "
                        + " + ".join(
                            f"v.{'xyzw'[j]} * texture(t1, vec2(wx{u}{' + ' + _fl(j / WW) if j else ''}, "
                            f"wy + (fy * {_fl(KW)} + {fx}) * {_fl(1 / WH)}))"
                            for j in range(4)
                        )
                        + ";"
                    ),
                )
            for t in range(0 if row_loop else T):
                wy = "wy" if t == 0 else f"wy + {_fl(t / WH)}"
                body.append(f"{{ vec4 v = {tap_fetch(t, f'base{u}')};")
                terms = [
                    f"v.{'xyzw'[j]} * texture(t1, vec2(wx{u}{' + ' + _fl(j / WW) if j else ''}, {wy}))"
                    for j in range(4)
                ]
                body.append(f"  acc += {' + '.join(terms)}; }}")
        inner = "\n    ".join(body)
        loop = f"for (int c = 0; c < {CG4}; c += {unroll}) {{\n    {inner}\n  }}"
    src = "\n  ".join(head)
    return Program(
        inputs,
        f"""vec4 run() {{
  {src}
  {loop}
  {residual}
  vec4 v = acc;
  return {activation_glsl(act, params)};
}}
""",
    )


def pool_c4(g: _Gen, node: Node) -> Program:
    x, y = node.input(0), node.outputs[0]
    xs, ys = g.shape(x), g.shape(y)
    gi, go = g.grid(x), g.grid(y)
    if len(node.outputs) > 1 and node.outputs[1]:
        raise Unsupported("MaxPool's Indices output")
    kernel = tuple(node.attrs["kernel_shape"])
    win = _window(node, xs[2:], kernel, ys[2:])
    for size, out, stride, begin in zip(xs[2:], ys[2:], win["strides"], win["begin"], strict=True):
        if out > 1 and (out - 1) * stride - begin >= size:
            raise Unsupported("a ceil_mode window starting in the right padding")
    geo = dict(
        K=as_2d(list(kernel), 1),
        S=as_2d(list(win["strides"]), 1),
        D=as_2d(list(win["dilations"]), 1),
        P=as_2d(list(win["begin"]), 0),
    )
    (KH, KW), (SH, SW), (DH, DW), (PT, PL) = geo["K"], geo["S"], geo["D"], geo["P"]
    PB, PR = as_2d(list(win["end"]), 0)
    taps, conds = _taps(geo, gi, go, "ox", "oy")
    lines = [
        _frag_plane(go, "o"),
        _plane_origin(gi, "oq", "org"),
        f"vec2 base = (org + vec2(ox * {_fl(SW)} + {_fl(0.5 - PL)}, oy * {_fl(SH)} + {_fl(0.5 - PT)})) * "
        f"{_inv(gi.size)};",
    ]
    mode = "max" if node.op_type == "MaxPool" else "avg"
    if mode == "avg" and (DH != 1 or DW != 1):
        raise Unsupported("AveragePool with dilations")
    lines.append("vec4 s = vec4(-1.0 / 0.0);" if mode == "max" else "vec4 s = vec4(0.0);")

    def add(v: str) -> str:
        return f"s = max(s, {v});" if mode == "max" else f"s += {v};"

    if KH * KW > 25:  # a loop over the window's rows, and wide rows over chunks of columns (see conv_c4)
        lines += _column_flags(geo, gi, go)
        lines += _window_rows(geo, gi, go, "base", lambda v, cond, fx: [f"if ({cond}) {add(v)}"])
    for t, (ky, kx) in enumerate(taps if KH * KW <= 25 else []):
        op = add(f"texture(t0, base + vec2({_fl(kx * DW / gi.size[0])}, {_fl(ky * DH / gi.size[1])}))")
        lines.append(f"if ({conds[t]}) {op}" if conds[t] else op)
    if mode == "max":
        lines.append("return s;")
    else:
        iy0, ix0 = f"(oy * {_fl(SH)} - {_fl(PT)})", f"(ox * {_fl(SW)} - {_fl(PL)})"
        if int(node.attrs.get("count_include_pad", 0)):
            cy = f"(min({iy0} + {_fl(KH)}, {_fl(gi.H + PB)}) - {iy0})"
            cx = f"(min({ix0} + {_fl(KW)}, {_fl(gi.W + PR)}) - {ix0})"
        else:
            cy = f"(min({iy0} + {_fl(KH)}, {_fl(gi.H)}) - max({iy0}, 0.0))"
            cx = f"(min({ix0} + {_fl(KW)}, {_fl(gi.W)}) - max({ix0}, 0.0))"
        lines.append(f"return s / ({cy} * {cx});")
    body = "\n  ".join(lines)
    return Program([x], f"vec4 run() {{\n  {body}\n}}\n")


def global_pool_c4(g: _Gen, node: Node, out_width: int) -> Program:
    """[N, C, H, W] in C4 (C % 4 == 0) -> [N, C, 1, 1] flat4, whose texel t is plane t."""
    x = node.input(0)
    gi = g.grid(x)
    inv = _inv(gi.size)
    mx = node.op_type == "GlobalMaxPool"
    lines = [
        f"float q = floor(gl_FragCoord.y) * {_fl(out_width)} + floor(gl_FragCoord.x);",
        _plane_origin(gi, "q", "org"),
        f"vec2 base = (org + 0.5) * {inv};",
        "vec4 s = vec4(-1.0 / 0.0);" if mx else "vec4 s = vec4(0.0);",
        f"for (int h = 0; h < {gi.H}; h++) {{",
        f"  vec2 row = base + vec2(0.0, float(h) * {_fl(1 / gi.size[1])});",
    ]
    unroll = next(u for u in (16, 8, 7, 4, 2, 1) if gi.W % u == 0)  # unrolled columns per step (JIT time)
    if unroll < gi.W:
        lines.append(f"  for (int w = 0; w < {gi.W}; w += {unroll}) {{")
        lines.append(f"    vec2 at = row + vec2(float(w) * {_fl(1 / gi.size[0])}, 0.0);")
    else:
        lines.append("  { vec2 at = row;")
    for xw in range(unroll):
        v = f"texture(t0, at + vec2({_fl(xw / gi.size[0])}, 0.0))"
        lines.append(f"    s = max(s, {v});" if mx else f"    s += {v};")
    lines.append("  }")
    lines.append("}")
    lines.append("return s;" if mx else f"return s * {_fl(1 / (gi.H * gi.W))};")
    body = "\n  ".join(lines)
    return Program([x], f"vec4 run() {{\n  {body}\n}}\n")


@shader("Relayout")
def relayout(g: _Gen, node: Node) -> Program:
    """Between layouts: attrs["to"] "c4" (flat4 -> C4) or "flat4" (C4 -> flat4)."""
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
  {_frag_plane(go, "o")}
  {_split("oq", go.C4, "n", "c4")}
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
  {_unravel((gi.N, gi.C, gi.H, gi.W), names)}
  int q = n * {gi.C4} + (c >> 2);
  return texelFetch(t0, ivec2((q % {gi.TX}) * {gi.W} + w, (q / {gi.TX}) * {gi.H} + h), 0)[c & 3];
}}
""",
    )


# ---- assembling ------------------------------------------------------------------------------------------


def program_source(prog: Program, widths: list[int], out_width: int, out_elements: int) -> str:
    lines = [
        "#version 300 es",
        "precision highp float;",
        "precision highp int;",
        "precision highp sampler2D;",
        "out vec4 o;"
        if prog.outputs == 1
        else " ".join(f"layout(location = {j}) out vec4 o{j};" for j in range(prog.outputs)),
    ]
    for k, width in enumerate(widths):
        # a texture is one row, or MAX_WIDTH (a power of two) wide: no integer division per fetch
        at = "ivec2(t, 0)" if width < MAX_WIDTH else f"ivec2(t & {MAX_WIDTH - 1}, t >> {MAX_WIDTH.bit_length() - 1})"
        lines.append(f"uniform sampler2D t{k};")
        lines.append(f"vec4 v{k}(int t) {{ return texelFetch(t{k}, {at}, 0); }}")
        lines.append(f"float x{k}(int i) {{ return v{k}(i >> 2)[i & 3]; }}")
    src = "\n".join(lines) + "\n" + (TANH if "tanh_(" in prog.body else "") + prog.body
    n = out_elements
    if prog.outputs > 1:
        return src
    if "vec4 run()" in prog.body:
        return src + "void main() {\n  o = run();\n}\n"
    if "vec4 g(int b)" in prog.body:
        assert n % 4 == 0
        return (
            src
            + f"""void main() {{
  o = g((int(gl_FragCoord.y) * {out_width} + int(gl_FragCoord.x)) * 4);
}}
"""
        )
    comps = ", ".join(
        ("f(b)" if k == 0 else f"f(b + {k})") if n % 4 == 0 else f"(b + {k} < {n} ? f(b + {k}) : 0.0)" for k in range(4)
    )
    src += f"""void main() {{
  int b = (int(gl_FragCoord.y) * {out_width} + int(gl_FragCoord.x)) * 4;
  o = vec4({comps});
}}
"""
    return src


def supports(node: Node) -> bool:
    return node.op_type in OPS or node.op_type in ALIASES


# ---- partitioning: which nodes run on the GPU, which on wasm, and what moves between them ---------------


@dataclass
class Segment:
    backend: str  # "webgl" or "wasm"
    nodes: list[str]
    transfers: list[str] = field(default_factory=list)  # computed on the other backend, moved in before it runs


@dataclass
class Partition:
    placement: dict[str, str]  # node -> "webgl" | "wasm"
    segments: list[Segment]  # contiguous runs of one backend, in graph (topological) order
    gpu_inputs: list[str]  # graph inputs the GPU reads: uploaded from the feeds
    gpu_outputs: list[str]  # graph outputs the GPU computes: read back at the end of a run
    wasm_inputs: list[str]  # inputs of the wasm part: graph inputs it reads, then the tensors moved to it
    wasm_outputs: list[str]  # outputs of the wasm part: the tensors moved to the GPU, then graph outputs

    @property
    def mixed(self) -> bool:
        return any(s.backend == "wasm" for s in self.segments)


def partition(graph: Graph, gpu_reads: dict[str, list[str]]) -> Partition:
    """Place every node: one in `gpu_reads` (node name -> the tensors its shader reads) runs on the GPU, any
    other on wasm. A free reshape (ALIASES) runs where its input is computed, and a run of GPU nodes that
    are all free reshapes moves to wasm, so that they never cost a transfer of their own. The nodes, in graph
    order (topological), then form contiguous segments; each segment lists the tensors computed on the other
    backend that it reads and that have not been moved to its backend yet (each tensor moves at most once
    per direction, just before the first segment that needs it). Graph inputs go to both sides from the
    feeds, and each side holds its own constants, so neither ever transfers."""
    producer = {out: node for node in graph.nodes for out in node.outputs if out}
    placement: dict[str, str] = {}
    for node in graph.nodes:
        src = producer.get(node.input(0)) if node.inputs else None
        if node.name not in gpu_reads:
            placement[node.name] = "wasm"
        elif node.op_type in ALIASES and src is not None:
            placement[node.name] = placement[src.name]
        else:
            placement[node.name] = "webgl"
    runs: list[list[Node]] = []
    for node in graph.nodes:
        if runs and placement[runs[-1][0].name] == placement[node.name]:
            runs[-1].append(node)
        else:
            runs.append([node])
    for run in runs:
        if placement[run[0].name] == "webgl" and all(n.op_type in ALIASES for n in run):
            for n in run:
                placement[n.name] = "wasm"

    segments: list[Segment] = []
    moved: dict[str, set[str]] = {"webgl": set(), "wasm": set()}
    read: dict[str, set[str]] = {"webgl": set(), "wasm": set()}
    for node in graph.nodes:
        side = placement[node.name]
        if not segments or segments[-1].backend != side:
            segments.append(Segment(side, []))
        seg = segments[-1]
        seg.nodes.append(node.name)
        reads = gpu_reads[node.name] if side == "webgl" else [n for n in node.inputs if n]
        for name in reads:
            read[side].add(name)
            src = producer.get(name)
            if src is not None and placement[src.name] != side and name not in moved[side]:
                seg.transfers.append(name)
                moved[side].add(name)

    mixed = any(s.backend == "wasm" for s in segments)

    def side_of_output(name: str) -> str:
        src = producer.get(name)
        if src is not None:
            return placement[src.name]
        return "wasm" if mixed else "webgl"  # a graph input (or constant) passed through

    gpu_outputs = [o for o in graph.outputs if side_of_output(o) == "webgl"]
    wasm_graph_outputs = [o for o in graph.outputs if side_of_output(o) == "wasm"]
    to_gpu = [t for s in segments if s.backend == "webgl" for t in s.transfers]
    to_wasm = [t for s in segments if s.backend == "wasm" for t in s.transfers]
    gpu_inputs = [n for n in graph.inputs if n in read["webgl"] or n in gpu_outputs]
    wasm_inputs = [n for n in graph.inputs if n in read["wasm"] or n in wasm_graph_outputs] + to_wasm
    wasm_outputs = to_gpu + [o for o in wasm_graph_outputs if o not in to_gpu]
    return Partition(placement, segments, gpu_inputs, gpu_outputs, wasm_inputs, wasm_outputs)


def wasm_part(graph: Graph, part: Partition) -> Graph:
    """The subgraph of the nodes placed on wasm: its inputs are the graph inputs they read and the tensors
    moved to them from the GPU, its outputs the tensors moved to the GPU and the graph outputs computed on
    wasm. It is lowered and planned like any model (a normal wasm bundle); its constants are only the ones
    these nodes read."""
    nodes = [n for n in graph.nodes if part.placement[n.name] == "wasm"]
    used = {name for n in nodes for name in [*n.inputs, *n.outputs] if name}
    used |= set(part.wasm_inputs) | set(part.wasm_outputs)
    values = {name: v for name, v in graph.values.items() if name in used}
    return Graph(
        f"{graph.name} (wasm part)",
        nodes,
        values,
        list(part.wasm_inputs),
        list(part.wasm_outputs),
        graph.opset,
        dict(graph.metadata),
    )


# ---- the GPU plan -----------------------------------------------------------------------------------------


def plan_webgl(graph: Graph) -> WebGLPlan:
    """The GPU plan of an optimized graph. Nodes without a shader are listed in `unsupported` and run on wasm
    (`partition`): the section then also names the wasm part and the segments with their transfers. When no
    node with a shader is left for the GPU, the section is only {"unsupported": [...]} and `partition` None.
    Convolutions and the ops around them run in the C4 layout (`_c4_rewrite` adds the relayouts), so the
    partition and the textures are those of the rewritten graph; the wasm side keeps the original names."""
    unsupported: list[tuple[str, str, str]] = []
    supported: set[str] = set()
    g0 = _Gen(dataclasses.replace(graph, values=dict(graph.values)))  # generators may add repacked constants

    def float_tensor(name: str) -> None:
        v = g0.graph.values[name]
        if v.dtype != np.float32:
            raise Unsupported(f"tensor {name!r} is {v.dtype.name} (the GPU runs float32)")
        texture_size(math.prod(v.shape))

    for node in graph.nodes:
        if node.domain not in ("", "ai.onnx", "wasm_runtime"):
            unsupported.append((node.name, node.op_type, f"domain {node.domain}"))
            continue
        try:
            if node.op_type in ALIASES:
                for extra in node.outputs[1:]:
                    if extra and (graph.consumers().get(extra) or extra in graph.outputs):
                        raise Unsupported(f"output {extra!r}")
                float_tensor(node.input(0))
            else:
                fn = OPS.get(node.op_type)
                if fn is None or node.op_type in INTERNAL_OPS:
                    raise Unsupported(f"no shader for {node.op_type}")
                prog = fn(g0, node)
                for name in [*prog.inputs, node.outputs[0]]:
                    float_tensor(name)
                if len(prog.inputs) > 15:
                    raise Unsupported("more than 15 inputs")
            supported.add(node.name)
        except Unsupported as err:
            unsupported.append((node.name, node.op_type, str(err)))
    listing = [{"node": n, "op": o, "reason": r} for n, o, r in unsupported]

    gpu_graph, grids, c4_nodes = _c4_rewrite(graph, supported)
    internal = _two_step_rewrite(gpu_graph, supported) | {n.name for n in gpu_graph.nodes if n.op_type == "Relayout"}
    g = _Gen(gpu_graph, grids)
    programs: dict[str, Program | None] = {}  # None: a free reshape (the same texture)
    for node in gpu_graph.nodes:
        if node.name not in supported and node.name not in internal:
            continue
        if node.op_type in ALIASES:
            programs[node.name] = None
        elif node.name in c4_nodes:
            programs[node.name] = _c4_program(g, node)
        else:
            programs[node.name] = OPS[node.op_type](g, node)
    gpu_reads = {name: (p.inputs if p else [_node(gpu_graph, name).input(0)]) for name, p in programs.items()}
    part = partition(gpu_graph, gpu_reads)
    if not any(part.placement[name] == "webgl" and p is not None for name, p in programs.items()):
        return WebGLPlan({"unsupported": listing}, b"", unsupported)
    section, weights = _assemble(gpu_graph, part, programs, {**g.dims, **{k: v.size for k, v in grids.items()}})
    part.placement = {n.name: part.placement[n.name] for n in graph.nodes}  # the model's nodes, no relayouts
    section["placement"] = part.placement
    if unsupported:
        section["unsupported"] = listing
    return WebGLPlan(section, weights, unsupported, part)


UNARY_C4 = set(ACTIVATIONS) - {"SiLU"}
BINARY_C4 = {"Add", "Sub", "Mul"}  # not Div: 0 / 0 in a padding channel would be NaN, and NaN * 0 is not 0


def _c4_rewrite(graph: Graph, supported: set[str]) -> tuple[Graph, dict[str, Grid], set[str]]:
    """The graph the GPU plan runs: every convolution the C4 shader takes reads and writes C4 tensors, and so
    do pools, activations and same-shape Add/Sub/Mul whose input already is C4. A C4 copy of a tensor is
    named `<name>@c4`; the original name keeps the flat4 layout and is computed (a Relayout node, a shader)
    only where something reads it flat: another GPU op, a wasm node, a graph output. Returns that graph, the
    grid of every C4 tensor and the names of the nodes to generate in C4."""
    g = _Gen(graph)
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

    def c4_name(t: str) -> str:
        name = f"{t}@c4"
        values[name] = Value(name, np.dtype(np.float32), tuple(graph.shape(t)))
        grids[name] = c4_grid(graph.shape(t))
        c4_of[t] = name
        return name

    def need_c4(t: str) -> str:
        if t not in c4_of:
            nodes.append(Node("Relayout", f"{t}:to_c4", [t], [c4_name(t)], {"to": "c4"}, "wasm_runtime"))
        return c4_of[t]

    def fits(*names: str) -> bool:
        return all(graph.values[n].dtype == np.float32 and c4_grid(graph.shape(n)) is not None for n in names)

    for node in graph.nodes:
        op, ins, outs = node.op_type, node.inputs, node.outputs
        mode = None
        if node.name in supported and len([o for o in outs if o]) == 1:
            y = outs[0]
            if op in ("Conv", "FusedConv") and conv_c4_ok(g, node):
                mode = [0] + ([3] if len(ins) > 3 and ins[3] else [])
                if conv_x4_ok(g, node):  # 4 pixels per fragment (4 render targets), then one merge step
                    new_ins = list(ins)
                    for k in mode:
                        new_ins[k] = need_c4(ins[k])
                    parts = []
                    for j in range(4):
                        name = f"{y}@x4_{j}"
                        values[name] = Value(name, np.dtype(np.float32), _x4_shape(graph.shape(y)))
                        grids[name] = c4_grid(_x4_shape(graph.shape(y)))
                        parts.append(name)
                    nodes.append(Node(op, node.name, new_ins, parts, dict(node.attrs), node.domain))
                    c4_nodes.add(node.name)
                    merged = c4_name(y)
                    nodes.append(
                        Node("Relayout", f"{y}:merge_x4", parts, [merged], {"to": "c4", "from": "x4"}, "wasm_runtime")
                    )
                    continue
            elif op in ("MaxPool", "AveragePool", *UNARY_C4) and ins[0] in c4_of and fits(y):
                mode = [0]
            elif op in BINARY_C4 and fits(y) and graph.shape(ins[0]) == graph.shape(ins[1]) == graph.shape(y):
                if ins[0] in c4_of or ins[1] in c4_of:
                    mode = [0, 1]
            elif op in BINARY and fits(y) and (scalar := scalar_operand(graph, node)) and ins[scalar[0]] in c4_of:
                if scalar_op_keeps_padding_finite(op, *scalar):  # e.g. a decomposed HardSwish after a conv
                    mode = [scalar[0]]
            elif op in ("GlobalAveragePool", "GlobalMaxPool") and ins[0] in c4_of and graph.shape(ins[0])[1] % 4 == 0:
                mode = [0]
            elif op == "Concat" and _concat_c4_ok(graph, node) and any(t in c4_of for t in ins if t):
                mode = [k for k, t in enumerate(ins) if t]
        if mode is None:
            for t in ins:
                need_flat(t)
            nodes.append(node)
            flat.update(o for o in outs if o)
            continue
        new_ins = list(ins)
        for k in mode:
            new_ins[k] = need_c4(ins[k])
        if op.startswith("Global"):
            new_outs = list(outs)
            flat.add(outs[0])
        else:
            new_outs = [c4_name(outs[0])]
        nodes.append(Node(op, node.name, new_ins, new_outs, dict(node.attrs), node.domain))
        c4_nodes.add(node.name)
    for t in graph.outputs:
        need_flat(t)
    rewritten = Graph(
        graph.name, nodes, values, list(graph.inputs), list(graph.outputs), graph.opset, dict(graph.metadata)
    )
    return rewritten, grids, c4_nodes


def _concat_c4_ok(graph: Graph, node: Node) -> bool:
    """Concat along channels of C4 tensors whose channel counts are multiples of 4 (whole planes)."""
    ys = graph.shape(node.outputs[0])
    if len(ys) not in (3, 4) or int(node.attrs["axis"]) % len(ys) != 1 or c4_grid(ys) is None:
        return False
    ins = [t for t in node.inputs if t]
    return len(ins) <= 15 and all(graph.shape(t)[1] % 4 == 0 and graph.values[t].dtype == np.float32 for t in ins)


def concat_c4(g: _Gen, node: Node) -> Program:
    """Output plane (n, c4) is plane (n, c4 - first plane of input k) of the input k holding channel 4 c4."""
    inputs = [t for t in node.inputs if t]
    go = g.grid(node.outputs[0])
    lines = [_frag_plane(go, "o"), _split("oq", go.C4, "n", "c4")]
    start = 0
    for k, t in enumerate(inputs):
        gi = g.grid(t)
        cond = f"if (c4 < {_fl(start + gi.C4)}) " if k < len(inputs) - 1 else ""
        lines.append(f"{cond}{{")
        lines.append(f"  float q = n * {_fl(gi.C4)} + c4 - {_fl(start)};")
        lines.append("  " + _plane_origin(gi, "q", "org").replace("\n  ", "\n    "))
        lines.append(f"  return texture(t{k}, (org + vec2(ox, oy) + 0.5) * {_inv(gi.size)});")
        lines.append("}")
        start += gi.C4
    body = "\n  ".join(lines)
    return Program(inputs, f"vec4 run() {{\n  {body}\n}}\n")


def _c4_program(g: _Gen, node: Node) -> Program:
    op = node.op_type
    if op in ("Conv", "FusedConv") and len(node.outputs) == 4:
        return conv_x4(g, node)
    if op == "Concat":
        return concat_c4(g, node)
    if op in ("Conv", "FusedConv"):
        return conv_c4(g, node)
    if op in ("MaxPool", "AveragePool"):
        return pool_c4(g, node)
    if op in ("GlobalAveragePool", "GlobalMaxPool"):
        return global_pool_c4(g, node, texture_size(math.prod(g.shape(node.outputs[0])))[0])
    return OPS[op](g, node)  # texel-wise activations and binary ops: the same in both layouts


def _node(graph: Graph, name: str) -> Node:
    return next(n for n in graph.nodes if n.name == name)


def _assemble(
    graph: Graph, part: Partition, programs: dict[str, Program | None], dims: dict[str, tuple[int, int]]
) -> tuple[dict, bytes]:
    """Textures, programs and steps of the GPU segments. Constants and graph inputs get textures of their
    own; any other tensor takes a free texture of its size (or a new one) when it is computed or moved in,
    and frees it after the last GPU step reading it, or after the GPU segment before the wasm segment it is
    read back for, whichever is later. Graph outputs computed on the GPU keep theirs."""
    by_name = {n.name: n for n in graph.nodes}
    alias = {
        by_name[n].outputs[0]: by_name[n].input(0)
        for seg in part.segments
        if seg.backend == "webgl"
        for n in seg.nodes
        if programs[n] is None
    }

    def root(name: str) -> str:
        while name in alias:
            name = alias[name]
        return name

    def elements(name: str) -> int:
        return math.prod(graph.values[name].shape)

    # GPU step index of every program node, and how many GPU steps run before each segment
    index: dict[str, int] = {}
    before: list[int] = []
    for seg in part.segments:
        before.append(len(index))
        if seg.backend == "webgl":
            index.update((n, len(index)) for n in [n for n in seg.nodes if programs[n] is not None])
    last_use: dict[str, int] = {}
    for name, k in index.items():
        for t in programs[name].inputs:
            last_use[root(t)] = k
    for seg, b in zip(part.segments, before, strict=True):
        if seg.backend == "wasm":
            for t in seg.transfers:  # read back just before this segment, after GPU step b - 1
                last_use[root(t)] = max(last_use.get(root(t), -1), b - 1)
    frees: dict[int, list[str]] = {}
    for name, k in last_use.items():
        frees.setdefault(k, []).append(name)
    keep = {root(o) for o in part.gpu_outputs} | set(part.gpu_inputs)

    textures: list[list[int]] = []
    where: dict[str, int] = {}
    weights = bytearray()
    constants = []
    free: dict[tuple[int, int], list[int]] = {}
    live: set[str] = set()

    def size(name: str) -> tuple[int, int]:
        return tuple(dims[name]) if name in dims else texture_size(elements(name))

    def new_texture(name: str) -> int:
        textures.append(list(size(name)))
        return len(textures) - 1

    def take(name: str) -> int:
        pool = free.get(size(name))
        where[name] = pool.pop() if pool else new_texture(name)
        live.add(name)
        return where[name]

    def release(name: str) -> None:
        if name in live and name not in keep:
            live.discard(name)
            free.setdefault(tuple(textures[where[name]]), []).append(where[name])

    for name in part.gpu_inputs:
        where[name] = new_texture(name)
    steps, sources, program_index, segments = [], [], {}, []
    for seg in part.segments:
        if seg.backend == "wasm":
            moves = [{"tensor": t, "texture": where[root(t)], "elements": elements(t)} for t in seg.transfers]
            segments.append({"backend": "wasm", "steps": None, "transfers": moves})
            continue
        start = len(steps)
        moves = [{"tensor": t, "texture": take(t), "elements": elements(t)} for t in seg.transfers]
        for node_name in seg.nodes:
            prog = programs[node_name]
            if prog is None:
                continue
            node = by_name[node_name]
            for name in prog.inputs:
                r = root(name)
                if r not in where:
                    data = graph.const(r)
                    if data is None:
                        raise PackageError(f"webgl plan: tensor {r!r} read by node {node.name!r} has no producer")
                    where[r] = new_texture(r)
                    raw = np.ascontiguousarray(data, dtype=np.float32).tobytes()
                    constants.append(
                        {"name": r, "texture": where[r], "offset": len(weights), "elements": int(data.size)}
                    )
                    weights += raw + b"\0" * (-len(raw) % 16)
            out = node.outputs[0]
            outs = node.outputs[: prog.outputs]
            for name in outs:
                take(name)
            widths = [textures[where[root(n)]][0] for n in prog.inputs]
            src = program_source(prog, widths, textures[where[out]][0], elements(out))
            if src not in program_index:
                program_index[src] = len(sources)
                sources.append({"source": src, "inputs": len(prog.inputs)})
            k = len(steps)
            steps.append(
                {
                    "program": program_index[src],
                    "inputs": [where[root(n)] for n in prog.inputs],
                    "output": where[out],
                    **({"outputs": [where[name] for name in outs]} if len(outs) > 1 else {}),
                    "node": node.name,
                    "op": node.op_type,
                }
            )
            # free what this step read for the last time, and its outputs if nothing reads them
            for name in frees.get(k, []) + [name for name in outs if last_use.get(name, -1) <= k]:
                release(name)
        segments.append({"backend": "webgl", "steps": [start, len(steps)], "transfers": moves})

    def entry(name: str) -> dict:
        r = root(name)
        if r not in where:
            raise PackageError(f"webgl plan: graph output {name!r} is not computed on the GPU")
        return {"name": name, "texture": where[r], "shape": list(graph.values[name].shape), "elements": elements(name)}

    section = {
        "version": 1,
        "layout": "flat4",
        "max_width": MAX_WIDTH,
        "textures": textures,
        "constants": constants,
        "inputs": [entry(n) for n in part.gpu_inputs],
        "outputs": [entry(n) for n in part.gpu_outputs],
        "programs": sources,
        "steps": steps,
        "segments": segments,
        "placement": part.placement,
    }
    return section, bytes(weights)


def link_wasm_part(section: dict, part: Partition, manifest: dict, directory: str, manifest_bytes: bytes) -> None:
    """Fill in what the wasm part's bundle decided: each wasm segment's range of its steps, and the byte
    offset in its memory of every tensor moved to (its input) or from (its output) wasm."""
    offsets = {e["name"]: e["offset"] for e in [*manifest["inputs"], *manifest["outputs"]]}
    step_nodes = [s["node"] for s in manifest["steps"]]
    pos = 0
    wasm_segments = [s for s in part.segments if s.backend == "wasm"]
    def belongs(step_node: str, nodes: set) -> bool:
        # the steps of a run-time If's branches are named after the branch's nodes, "<if>/then/<node>"
        return step_node in nodes or any(step_node.startswith(f"{n}/") for n in nodes)

    for seg, out in zip(wasm_segments, [s for s in section["segments"] if s["backend"] == "wasm"], strict=True):
        nodes = set(seg.nodes)
        start = pos
        while pos < len(step_nodes) and belongs(step_nodes[pos], nodes):
            pos += 1
        out["steps"] = [start, pos]
    if pos != len(step_nodes):
        raise PackageError(f"webgl plan: the wasm part's step {pos} (node {step_nodes[pos]!r}) is out of order")
    for out in section["segments"]:
        for t in out["transfers"]:
            t["offset"] = offsets[t["tensor"]]
    section["wasm"] = {
        "dir": directory,
        "manifest": {"bytes": len(manifest_bytes), "sha256": hashlib.sha256(manifest_bytes).hexdigest()},
    }
