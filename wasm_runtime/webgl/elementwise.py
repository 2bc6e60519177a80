"""Add, Sub, Mul, Div and the activations: texel by texel where the operands have the output's shape (then the
same shader serves both layouts), with numpy broadcasting in flat4 otherwise."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Graph, Node
from . import geometry
from .glsl import activation_glsl, broadcast_index, lit, unravel
from .layout import fits_c4
from .program import Program, ShaderContext

OPERATORS = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}
ACTIVATIONS = ("Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh")  # the standalone ops
BINARY_C4 = {"Add", "Sub", "Mul"}  # not Div: 0 / 0 in a padding channel would be NaN, and NaN * 0 is not 0
_TEXEL = "vec4 run() { vec4 v = texelFetch(t0, ivec2(gl_FragCoord.xy), 0);"  # the texel of a texel-wise op


def _apply(op: str, a: str, b: str) -> str:
    return f"{a} {OPERATORS[op]} {b}"


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


def binary(g: ShaderContext, node: Node) -> Program:
    a, b, y = node.input(0), node.input(1), node.outputs[0]
    ys = g.shape(y)
    scalar = scalar_operand(g.graph, node)
    if scalar is not None:  # texel by texel with the constant in the source, in either layout
        k, value = scalar
        operands = ("v", lit(value)) if k == 0 else (lit(value), "v")
        return Program([node.input(k)], f"{_TEXEL} return {_apply(node.op_type, *operands)}; }}\n")
    if g.shape(a) == ys and g.shape(b) == ys:  # texel by texel, in either layout (both inputs in the same)
        return Program(
            [a, b],
            "vec4 run() {\n  ivec2 p = ivec2(gl_FragCoord.xy);\n"
            "  vec4 va = texelFetch(t0, p, 0), vb = texelFetch(t1, p, 0);\n"
            f"  return {_apply(node.op_type, 'va', 'vb')};\n}}\n",
        )
    names = [f"d{k}" for k in range(len(ys))]
    return Program(
        [a, b],
        f"""float f(int i) {{
  {unravel(ys, names) if ys else ""}
  float a = x0({broadcast_index(g.shape(a), ys, names)});
  float b = x1({broadcast_index(g.shape(b), ys, names)});
  return {_apply(node.op_type, "a", "b")};
}}
""",
    )


def binary_c4_inputs(g: ShaderContext, node: Node, c4_of) -> list[int] | None:
    """Add/Sub/Mul of two tensors of the output's shape, one of them C4 already, run in C4 (both inputs C4);
    so does an op of a C4 tensor and a one-element constant that keeps the padding channels finite."""
    graph, op, ins, y = g.graph, node.op_type, node.inputs, node.outputs[0]
    if not fits_c4(graph, y):
        return None
    if op in BINARY_C4 and graph.shape(ins[0]) == graph.shape(ins[1]) == graph.shape(y):
        return [0, 1] if ins[0] in c4_of or ins[1] in c4_of else None
    scalar = scalar_operand(graph, node)
    if scalar and ins[scalar[0]] in c4_of and scalar_op_keeps_padding_finite(op, *scalar):
        return [scalar[0]]  # e.g. a decomposed HardSwish after a conv
    return None


def unary(g: ShaderContext, node: Node) -> Program:
    params = geometry.activation_params(g.graph, node)
    # texel by texel: the output has the input's layout and texture size (flat4 or C4)
    return Program([node.input(0)], f"{_TEXEL} return {activation_glsl(node.op_type, params)}; }}\n")
