"""Broadcasting arithmetic: Add, Sub, Mul, Div (float32 on the f32 kernels, int32/int64 shape arithmetic on the
walking kernels), Sum, Mean, Max, Min, Mod."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Node
from .broadcast import INTEGER, NUMERIC, emit_variadic, emit_walk, kernel_prefix
from .context import Buf, Const, LoweringContext, i32
from .layout import broadcast_layout

_BINARY = {"Add": "f32_add", "Sub": "f32_sub", "Mul": "f32_mul", "Div": "f32_div"}


def emit_binary(ctx: LoweringContext, kernel: str, a: str, b: str, y: str) -> None:
    ctx.require_dtype(a, b, y)
    layout = broadcast_layout(ctx, ctx.shape(y), ctx.shape(a), ctx.shape(b))
    ctx.emit(kernel, i32(layout), Buf(a), Buf(b), Buf(y))


def binary(ctx, node):
    if ctx.dtype(node.outputs[0]) != np.float32:
        int_arith(ctx, node)
        return
    emit_binary(ctx, _BINARY[node.op_type], node.input(0), node.input(1), node.outputs[0])


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


def max_min(ctx: LoweringContext, node: Node) -> None:
    """Float Max/Min propagate NaN, like numpy's maximum/minimum."""
    prefix = kernel_prefix(ctx, [*node.inputs, node.outputs[0]], NUMERIC)
    emit_variadic(ctx, node, f"{prefix}_{node.op_type.lower()}")


def mean(ctx: LoweringContext, node: Node) -> None:
    """Sum of the inputs, then divided by their count."""
    inputs, y = [i for i in node.inputs if i], node.outputs[0]
    ctx.require_dtype(*inputs, y)
    emit_sum(ctx, inputs, y)
    if len(inputs) == 1:
        return
    shape = ctx.shape(y)
    if math.prod(shape):
        count = Const(np.array([len(inputs)], np.float32), "mean count")
        ctx.emit("f32_div", i32(broadcast_layout(ctx, shape, shape, ())), Buf(y), count, Buf(y))


def mod(ctx: LoweringContext, node: Node) -> None:
    """fmod=0: the sign of the divisor (numpy's mod, Python's %); fmod=1: the sign of the dividend (C's fmod).
    Integer x % 0 stops the run, as in onnxruntime (refused here when the divisor is a constant)."""
    a, b, y = node.input(0), node.input(1), node.outputs[0]
    prefix = kernel_prefix(ctx, [a, b, y], NUMERIC)
    _no_constant_zero_divisor(ctx, b)
    emit_walk(ctx, f"{prefix}_{'fmod' if node.attrs.get('fmod', 0) else 'mod'}", y, a, b)


_INT_ARITH = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}


def _no_constant_zero_divisor(ctx: LoweringContext, b: str) -> None:
    divisor = ctx.const(b)
    if divisor is not None and ctx.dtype(b).kind in "iu" and not np.all(divisor):
        raise ctx.fail(f"the integer divisor {b!r} holds 0: onnxruntime fails such a run (integer division by zero)")


def int_arith(ctx: LoweringContext, node: Node) -> None:
    """Integer Add/Sub/Mul/Div (shape arithmetic at run time): wrap on overflow, Div truncates toward zero,
    x / 0 stops the run, as in onnxruntime (refused here when the divisor is a constant)."""
    a, b, y = node.input(0), node.input(1), node.outputs[0]
    prefix = kernel_prefix(ctx, [a, b, y], INTEGER)
    if node.op_type == "Div":
        _no_constant_zero_divisor(ctx, b)
    emit_walk(ctx, f"{prefix}_{_INT_ARITH[node.op_type]}", y, a, b)


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {
    **dict.fromkeys(_BINARY, binary),
    "Sum": sum_,
    "Max": max_min,
    "Min": max_min,
    "Mean": mean,
    "Mod": mod,
}
