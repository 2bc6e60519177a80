"""The one table from op type to shader generators: the flat4 program, and the C4 rule (when the op may run
in the C4 layout) that the C4 rewrite (c4_layout.py) and the program generation (plan.py) both read.

A new op is a generator in its family's module and a row here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..ir import Node
from ..partition import VIEWS
from . import conv, elementwise, matmul, movement, normalization, pool
from .layout import fits_c4
from .program import Program, ShaderContext

Generator = Callable[[ShaderContext, Node], Program]
# which inputs the node reads in C4, given the tensors that have a C4 copy (name -> copy); None: it stays flat4
C4Inputs = Callable[[ShaderContext, Node, Mapping[str, str]], "list[int] | None"]


@dataclass(frozen=True)
class C4Rule:
    inputs: C4Inputs
    program: Generator
    flat_output: bool = False  # writes its output flat4 (a global pool's [N, C, 1, 1])
    # computes its output in 4 parts of every 4th column (4 render targets), merged by a Relayout step
    in_parts: Callable[[ShaderContext, Node], bool] | None = None


@dataclass(frozen=True)
class Shader:
    flat4: Generator
    c4: C4Rule | None = None
    internal: bool = False  # a step the GPU plan adds (domain wasm_runtime), no op of a model


def _input_is_c4(g: ShaderContext, node: Node, c4_of: Mapping[str, str]) -> list[int] | None:
    """Pools and activations run in C4 when their input already is."""
    return [0] if node.inputs[0] in c4_of and fits_c4(g.graph, node.outputs[0]) else None


_CONV = Shader(conv.conv, C4Rule(conv.conv_c4_inputs, conv.conv_c4_program, in_parts=conv.conv_x4_ok))
_POOL = Shader(pool.pool, C4Rule(_input_is_c4, pool.pool_c4))
_GLOBAL_POOL = Shader(pool.global_pool, C4Rule(pool.global_pool_c4_inputs, pool.global_pool_c4, flat_output=True))
# texel by texel: the same program in both layouts
_BINARY = Shader(elementwise.binary, C4Rule(elementwise.binary_c4_inputs, elementwise.binary))
_UNARY = Shader(elementwise.unary, C4Rule(_input_is_c4, elementwise.unary))

SHADERS: dict[str, Shader] = {
    "Conv": _CONV,
    "FusedConv": _CONV,
    "Gemm": Shader(matmul.gemm),
    "FusedGemm": Shader(matmul.gemm),
    "MatMul": Shader(matmul.matmul),
    "MaxPool": _POOL,
    "AveragePool": _POOL,
    "GlobalAveragePool": _GLOBAL_POOL,
    "GlobalMaxPool": _GLOBAL_POOL,
    **{op: _BINARY for op in elementwise.OPERATORS},
    **{op: _UNARY for op in elementwise.ACTIVATIONS},
    "Concat": Shader(movement.concat, C4Rule(movement.concat_c4_inputs, movement.concat_c4)),
    "Transpose": Shader(movement.transpose),
    "Softmax": Shader(normalization.softmax),
    "LogSoftmax": Shader(normalization.softmax),
    "LRN": Shader(normalization.lrn),
    "Relayout": Shader(movement.relayout, internal=True),
    "SoftmaxStats": Shader(normalization.softmax_stats, internal=True),
}


def supports(node: Node) -> bool:
    """Whether the GPU plan has a shader for this node's op (or runs it as a free view)."""
    return node.op_type in SHADERS or node.op_type in VIEWS
