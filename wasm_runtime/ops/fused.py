"""FusedConv / FusedGemm (wasm_runtime domain, produced by passes/fusion.py): the base op, then the
residual add and the activation applied in place on its output."""

from __future__ import annotations

import math

from ..ir import Node
from ..lowering import Buf, LoweringContext, Scratch, i32, lowers
from .conv import conv
from .elementwise import emit_binary
from .gemm import gemm
from .layout import broadcast_layout

ACTIVATION_KERNELS = {
    "Relu": "f32_relu",
    "Clip": "f32_clip",
    "LeakyRelu": "f32_leaky_relu",
    "Sigmoid": "f32_sigmoid",
    "HardSigmoid": "f32_hard_sigmoid",
    "HardSwish": "f32_hard_swish",
    "Tanh": "f32_tanh",
}


def _epilogue(ctx: LoweringContext, node: Node) -> None:
    y = node.outputs[0]
    if len(node.inputs) > 3 and node.inputs[3]:
        emit_binary(ctx, "f32_add", y, node.inputs[3], y)
    act = node.attrs.get("activation", "")
    n = math.prod(ctx.shape(y))
    if act == "SiLU":
        sig = Scratch(n * 4)
        ctx.emit("f32_sigmoid", Buf(y), sig, n)
        shape = ctx.shape(y)
        ctx.emit("f32_mul", i32(broadcast_layout(ctx, shape, shape, shape)), Buf(y), sig, Buf(y))
    elif act:
        ctx.emit(ACTIVATION_KERNELS[act], Buf(y), Buf(y), n, *node.attrs.get("activation_params", []))


@lowers("FusedConv")
def fused_conv(ctx: LoweringContext, node: Node) -> None:
    conv(ctx, node)
    _epilogue(ctx, node)


@lowers("FusedGemm")
def fused_gemm(ctx: LoweringContext, node: Node) -> None:
    gemm(ctx, node)
    _epilogue(ctx, node)
