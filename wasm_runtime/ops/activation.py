"""Activations: the one table of the activations the kernels apply, standalone (Relu, Clip, ...) and in the
Conv/Gemm epilogues, with their ONNX parameters and their codes in kernels_wasm/common.h (enum ACT_*); the
Epilogue a fused node carries (passes/fusion.py writes it); the lowerings of the standalone ops.

The webgl backend reads a node's parameters and epilogue from here (webgl/geometry.py); its GLSL for each name
is webgl/glsl.py ACTIVATIONS (tests/test_op_registry.py checks the two tables name the same activations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Node
from .context import Buf, LoweringContext

FLT_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Activation:
    code: int  # ACT_* in kernels_wasm/common.h: the `act` argument of the epilogues
    kernel: str  # the standalone kernel; "" when no ONNX op is this activation alone (SiLU: x * Sigmoid(x))
    # ONNX attributes with their defaults, in the order the kernels take them (p0, p1); Clip's are attributes
    # before opset 11 and optional inputs after
    params: tuple[tuple[str, float], ...] = ()


ACTIVATIONS = {
    "Relu": Activation(1, "f32_relu"),
    "Clip": Activation(2, "f32_clip", (("min", -FLT_MAX), ("max", FLT_MAX))),
    "LeakyRelu": Activation(3, "f32_leaky_relu", (("alpha", 0.01),)),
    "Sigmoid": Activation(4, "f32_sigmoid"),
    "HardSigmoid": Activation(5, "f32_hard_sigmoid", (("alpha", 0.2), ("beta", 0.5))),
    "HardSwish": Activation(6, "f32_hard_swish"),
    "Tanh": Activation(7, "f32_tanh"),
    "SiLU": Activation(8, ""),
}
# the ONNX ops that are an activation alone (what passes/fusion.py folds into a Conv/Gemm epilogue)
STANDALONE = tuple(name for name, act in ACTIVATIONS.items() if act.kernel)
CODES = {"": 0, **{name: act.code for name, act in ACTIVATIONS.items()}}


def attribute_params(name: str, attrs: dict) -> list[float]:
    """The parameters of activation `name` from a node's attributes, defaults filled in (Clip: before opset 11)."""
    return [float(attrs.get(key, default)) for key, default in ACTIVATIONS[name].params]


@dataclass(frozen=True)
class Epilogue:
    """What a Conv/Gemm kernel does to its result before storing it: add `residual` (a tensor of the output's
    shape, FusedConv only), then apply `activation` with `params`. A plain op's is Epilogue()."""

    activation: str = ""
    params: tuple[float, ...] = ()
    residual: str = ""

    @classmethod
    def of(cls, node: Node) -> Epilogue:
        if node.domain != "wasm_runtime":
            return cls()
        residual = node.inputs[3] if len(node.inputs) > 3 else ""
        params = tuple(float(p) for p in node.attrs.get("activation_params", []))
        return cls(node.attrs.get("activation", ""), params, residual)

    def args(self) -> tuple[int, float, float]:
        """(act, p0, p1), the kernels' epilogue arguments."""
        params = [*self.params, 0.0, 0.0]
        return CODES[self.activation], params[0], params[1]


def epilogue_args(node: Node) -> tuple[int, float, float]:
    """(code, p0, p1) of the node's fused activation; (0, 0, 0) for a plain op."""
    return Epilogue.of(node).args()


def residual_input(node: Node) -> str:
    """The tensor a FusedConv adds before its activation, or ""."""
    return Epilogue.of(node).residual


def _emit(ctx: LoweringContext, node: Node, kernel: str, *params: float) -> None:
    x, y = node.input(0), node.outputs[0]
    ctx.require_dtype(x, y)
    n = int(np.prod(ctx.shape(y)))
    ctx.emit(kernel, Buf(x), Buf(y), n, *params, split=(n, "n", {"x": 4, "y": 4}, 4))


def activation(ctx: LoweringContext, node: Node) -> None:
    _emit(ctx, node, ACTIVATIONS[node.op_type].kernel, *attribute_params(node.op_type, node.attrs))


def clip(ctx: LoweringContext, node: Node) -> None:
    """Bounds are attributes before opset 11, optional constant inputs after."""
    if ctx.graph.opset < 11:
        lo, hi = attribute_params("Clip", node.attrs)
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
    _emit(ctx, node, "f32_clip", float(lo), float(hi))


# op type -> its wasm lowering, collected by ops/registry.py
LOWERINGS = {**dict.fromkeys(STANDALONE, activation), "Clip": clip}
