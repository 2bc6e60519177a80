"""Activations and broadcasting arithmetic."""

from __future__ import annotations

import numpy as np

from ..ir import Node
from ..lowering import Buf, LoweringContext, i32, lowers
from .layout import broadcast_layout

FLT_MAX = float(np.finfo(np.float32).max)


def _unary(ctx: LoweringContext, node: Node, kernel: str, *params: float) -> None:
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, y)
    n = int(np.prod(ctx.shape(y)))
    ctx.emit(kernel, Buf(x), Buf(y), n, *params, split=(n, "n", {"x": 4, "y": 4}, 4))


@lowers("Relu")
def relu(ctx, node):
    _unary(ctx, node, "f32_relu")


@lowers("Sigmoid")
def sigmoid(ctx, node):
    _unary(ctx, node, "f32_sigmoid")


@lowers("Tanh")
def tanh(ctx, node):
    _unary(ctx, node, "f32_tanh")


@lowers("HardSwish")
def hard_swish(ctx, node):
    _unary(ctx, node, "f32_hard_swish")


@lowers("LeakyRelu")
def leaky_relu(ctx, node):
    _unary(ctx, node, "f32_leaky_relu", float(node.attrs.get("alpha", 0.01)))


@lowers("HardSigmoid")
def hard_sigmoid(ctx, node):
    _unary(ctx, node, "f32_hard_sigmoid", float(node.attrs.get("alpha", 0.2)), float(node.attrs.get("beta", 0.5)))


@lowers("Clip")
def clip(ctx, node):
    """Bounds are attributes before opset 11, optional constant inputs after."""
    if ctx.graph.opset < 11:
        lo, hi = node.attrs.get("min", -FLT_MAX), node.attrs.get("max", FLT_MAX)
    else:
        bounds = [node.input(1), node.input(2)]
        if any(b and ctx.const(b) is None for b in bounds):
            # bounds computed at run time: the kernel reads them from memory
            x, y = node.input(0), node.outputs[0]
            ctx.require_dtype(x, y, *[b for b in bounds if b])
            n = int(np.prod(ctx.shape(y)))
            lo, hi = (Buf(b) if b else None for b in bounds)
            ctx.emit("f32_clip_dynamic", Buf(x), Buf(y), n, lo, hi, split=(n, "n", {"x": 4, "y": 4}, 4))
            return
        lo = ctx.const(node.input(1)) if node.input(1) else -np.inf
        hi = ctx.const(node.input(2)) if node.input(2) else np.inf
    _unary(ctx, node, "f32_clip", float(lo), float(hi))


_BINARY = {"Add": "f32_add", "Sub": "f32_sub", "Mul": "f32_mul", "Div": "f32_div"}


def emit_binary(ctx: LoweringContext, kernel: str, a: str, b: str, y: str) -> None:
    ctx.require_dtype(a, b, y)
    layout = broadcast_layout(ctx, ctx.shape(y), ctx.shape(a), ctx.shape(b))
    ctx.emit(kernel, i32(layout), Buf(a), Buf(b), Buf(y))


@lowers(*_BINARY)
def binary(ctx, node):
    if ctx.dtype(node.outputs[0]) != np.float32:
        from .binary import int_arith  # integer shape arithmetic: ops/binary.py

        int_arith(ctx, node)
        return
    emit_binary(ctx, _BINARY[node.op_type], node.input(0), node.input(1), node.outputs[0])


@lowers("Sum")
def sum_(ctx, node):
    """Sum(a, b, c) -> y = a + b; y = y + c (in place: y is read at the index it is written)."""
    emit_sum(ctx, [i for i in node.inputs if i], node.outputs[0])


def emit_sum(ctx: LoweringContext, inputs: list[str], y: str) -> None:
    """y = inputs[0] + inputs[1] + ...: the first add writes y, the others add into it in place; one input
    is an alias."""
    if len(inputs) == 1:
        ctx.alias(y, inputs[0])
        return
    emit_binary(ctx, "f32_add", inputs[0], inputs[1], y)
    for other in inputs[2:]:
        emit_binary(ctx, "f32_add", y, other, y)
