"""What a shader generator returns (a Program: the tensors it reads and the GLSL of its output), the context
it works in, and the whole fragment shader source around a program's body (the GL plumbing: declarations,
input accessors, main())."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Graph, Node, Value
from .geometry import Epilogue, epilogue
from .glsl import TANH
from .layout import MAX_WIDTH, Grid, Unsupported


@dataclass
class Program:
    inputs: list[str]  # tensor names read as x0, x1, ...
    body: str  # GLSL defining float f(int i), vec4 g(int b), vec4 run(), or main() itself (several outputs)
    outputs: int = 1  # render targets o0, o1, ... when more than one (the node's outputs, in order)


class ShaderContext:
    """The graph a generator reads, the C4 tiling of the tensors in that layout, and the constants it repacks."""

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

    def add_matrix(self, name: str, data: np.ndarray) -> str:
        """A constant repacked for a shader that reads it flat4 (a texture of its size)."""
        self.graph.values[name] = Value(name, np.dtype(np.float32), tuple(data.shape), np.ascontiguousarray(data))
        return name

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.graph.values[name].shape)

    def const(self, name: str):
        return self.graph.const(name)


def fused_epilogue(node: Node, inputs: list[str]) -> tuple[Epilogue, int | None]:
    """The node's fused epilogue, its residual tensor appended to the program's `inputs`: (the epilogue, the
    residual's input index, None without)."""
    epi = epilogue(node)
    if not epi.residual:
        return epi, None
    inputs.append(epi.residual)
    return epi, len(inputs) - 1


def program_source(prog: Program, widths: list[int], out_width: int, out_elements: int) -> str:
    """The fragment shader of a program whose inputs have textures `widths` wide, writing a texture
    `out_width` wide of a tensor of `out_elements` elements."""
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
