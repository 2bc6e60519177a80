"""Activation codes shared with kernels_wasm/common.h (enum ACT_*): the epilogue arguments
(act, p0, p1) that Conv/Gemm kernels take, read from a fused node's attributes."""

from __future__ import annotations

from ..ir import Node

CODES = {
    "": 0,
    "Relu": 1,
    "Clip": 2,
    "LeakyRelu": 3,
    "Sigmoid": 4,
    "HardSigmoid": 5,
    "HardSwish": 6,
    "Tanh": 7,
    "SiLU": 8,
}


def epilogue_args(node: Node) -> tuple[int, float, float]:
    """(code, p0, p1) of the node's fused activation; (0, 0, 0) for a plain op."""
    name = node.attrs.get("activation", "") if node.domain == "wasm_runtime" else ""
    params = [float(p) for p in node.attrs.get("activation_params", [])] + [0.0, 0.0]
    return CODES[name], params[0], params[1]


def residual_input(node: Node) -> str:
    """The tensor a FusedConv adds before its activation, or ""."""
    return node.inputs[3] if node.domain == "wasm_runtime" and len(node.inputs) > 3 else ""
