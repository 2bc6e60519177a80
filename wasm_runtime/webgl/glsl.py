"""The GLSL library the shader generators share: literals, index arithmetic of the flat4 layout, fragment and
plane addressing of the C4 layout (layout.py), fused activations and the epilogue lines that apply them."""

from __future__ import annotations

import math

from ..ops.layout import contiguous_strides
from .layout import Grid, Unsupported

# ---- literals ------------------------------------------------------------------------------------------------


def lit(x: float) -> str:
    """A GLSL float literal of a parameter."""
    x = float(x)
    if math.isnan(x):
        raise Unsupported("NaN parameter")
    if math.isinf(x):
        return "(1.0 / 0.0)" if x > 0 else "(-1.0 / 0.0)"
    return repr(x)  # "0.2", "1e-05": GLSL float literals, rounded to float32 like the reference's attribute


def fl(x: float) -> str:
    """A GLSL float literal of an exactly representable number (or the nearest float)."""
    s = repr(float(x))
    return s if ("." in s or "e" in s or "inf" in s) else s + ".0"


# ---- flat4 index arithmetic ----------------------------------------------------------------------------------


def unravel(shape, names: list[str], src: str = "i") -> str:
    """GLSL lines declaring ints `names` (one per dim) from flat index `src`."""
    lines = [f"int r_ = {src};"]
    for d, name in zip(reversed(shape), reversed(names), strict=True):
        lines.append(f"int {name} = r_ % {d}; r_ /= {d};")
    return "\n  ".join(lines)


def broadcast_index(in_shape, out_shape, names: list[str]) -> str:
    """Flat index into a tensor of `in_shape` broadcast (numpy rules) to `out_shape` whose indices are `names`."""
    in_shape = list(in_shape)
    offset = len(out_shape) - len(in_shape)
    terms = []
    for k, (d, s) in enumerate(zip(in_shape, contiguous_strides(in_shape), strict=True)):
        if d != 1:
            terms.append(f"{names[k + offset]} * {s}" if s != 1 else names[k + offset])
    return " + ".join(terms) or "0"


def transposed_index(in_shape, perm, names: list[str]) -> str:
    """Flat index into a tensor of `in_shape` of the output element whose indices (output dims) are `names`."""
    strides = contiguous_strides(in_shape)
    return " + ".join(f"{names[k]} * {strides[p]}" for k, p in enumerate(perm)) or "0"


# ---- C4 addressing ---------------------------------------------------------------------------------------------


def frag_plane(grid: Grid, p: str = "") -> str:
    """GLSL declaring floats {p}q (plane), {p}y, {p}x (pixel in the tile) of this fragment in `grid`."""
    lines = []
    if grid.TY == 1:
        lines.append(f"float {p}ty = 0.0, {p}y = gl_FragCoord.y - 0.5;")
    else:
        lines.append(f"float {p}ty = floor(gl_FragCoord.y * {fl(1 / grid.H)});")
        lines.append(f"float {p}y = gl_FragCoord.y - 0.5 - {p}ty * {fl(grid.H)};")
    if grid.TX == 1:
        lines.append(f"float {p}tx = 0.0, {p}x = gl_FragCoord.x - 0.5;")
    else:
        lines.append(f"float {p}tx = floor(gl_FragCoord.x * {fl(1 / grid.W)});")
        lines.append(f"float {p}x = gl_FragCoord.x - 0.5 - {p}tx * {fl(grid.W)};")
    lines.append(f"float {p}q = {p}ty * {fl(grid.TX)} + {p}tx;")
    return "\n  ".join(lines)


def split(value: str, count: int, hi: str, lo: str) -> str:
    """GLSL declaring floats hi = floor(value / count), lo = value - hi * count (value a small integer)."""
    if count == 1:
        return f"float {hi} = {value}, {lo} = 0.0;"
    return f"float {hi} = floor(({value} + 0.5) * {fl(1 / count)}); float {lo} = {value} - {hi} * {fl(count)};"


def plane_origin(grid: Grid, q: str, name: str, indent: str = "  ") -> str:
    """GLSL declaring vec2 `name`: the texel origin of plane `q` (a float) in `grid` (its lines after the
    first indented by `indent`)."""
    if grid.TX == 1:
        return f"vec2 {name} = vec2(0.0, {q} * {fl(grid.H)});"
    return (
        f"float {name}r = floor(({q} + 0.5) * {fl(1 / grid.TX)});\n"
        f"{indent}vec2 {name} = vec2(({q} - {name}r * {fl(grid.TX)}) * {fl(grid.W)}, {name}r * {fl(grid.H)});"
    )


def inv(size: tuple[int, int]) -> str:
    """vec2 of the reciprocals of a texture's size: texel to texture coordinates."""
    return f"vec2({fl(1 / size[0])}, {fl(1 / size[1])})"


# ---- activations and epilogues -------------------------------------------------------------------------------

# tanh from exp, stable for large |x| (GLSL ES 3.00 has tanh(), but SwiftShader's overflows to NaN past ~±44)
TANH = (
    "float tanh_(float x) { float e = exp(-2.0 * abs(x)); return sign(x) * (1.0 - e) / (1.0 + e); }\n"
    "vec4 tanh_(vec4 x) { vec4 e = exp(-2.0 * abs(x)); return sign(x) * (1.0 - e) / (1.0 + e); }\n"
)


def _clip(v: str, p: list[float]) -> str:
    out = v
    if not math.isinf(p[0]):
        out = f"max({out}, {lit(p[0])})"
    if not math.isinf(p[1]):
        out = f"min({out}, {lit(p[1])})"
    return out


# activation (wasm_runtime/ops/activation.py names) -> its expression of v with parameters p (2 at least)
ACTIVATIONS = {
    "": lambda v, p: v,
    "Relu": lambda v, p: f"max({v}, 0.0)",
    "Clip": _clip,
    "LeakyRelu": lambda v, p: f"mix({v} * {lit(p[0])}, {v}, step(0.0, {v}))",
    "Sigmoid": lambda v, p: f"(1.0 / (1.0 + exp(-{v})))",
    "HardSigmoid": lambda v, p: f"clamp({v} * {lit(p[0])} + {lit(p[1])}, 0.0, 1.0)",
    "HardSwish": lambda v, p: f"({v} * clamp({v} / 6.0 + 0.5, 0.0, 1.0))",
    "Tanh": lambda v, p: f"tanh_({v})",
    "SiLU": lambda v, p: f"({v} / (1.0 + exp(-{v})))",
}


def activation_glsl(name: str, params: list[float], v: str = "v") -> str:
    """An expression applying a fused activation (wasm_runtime/ops/activation.py codes) to `v`."""
    p = [float(x) for x in params] + [0.0, 0.0]
    if name not in ACTIVATIONS:
        raise Unsupported(f"activation {name!r}")
    return ACTIVATIONS[name](v, p)


def add_residual(texture: int | None, form: str, v: str = "v") -> str:
    """The line adding a fused residual (input `texture`) to the accumulator `v` of a flat4 shader: `form`
    "element" in float f(int i), "texel" in vec4 g(int b) (whose texel is b >> 2); "" without a residual."""
    if texture is None:
        return ""
    if form == "element":
        return f"{v} += x{texture}(i);"
    return f"{v} += v{texture}(b >> 2);"
