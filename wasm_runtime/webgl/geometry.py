"""The op semantics the shaders need, read from a node's attributes: conv and pool windows, fused epilogues,
activation parameters, Softmax rows, Gemm's options.

This is a second reading of what wasm_runtime/ops/ already parses for the wasm lowerings. It is to be replaced
by the typed op specs (ConvSpec, PoolSpec, the activation/Epilogue spec) once wasm_runtime/ops/ has them: the
shaders then read those, and this module, the only place of the package that reads raw attributes of these
ops, goes away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir import Graph, Node
from ..ops.spatial import as_2d
from ..ops.spatial import window as spatial_window
from .layout import Unsupported


class _Refusals:
    """Stands in for the lowering context of ops.spatial.window: its failures refuse the node's shader."""

    def fail(self, message: str) -> Unsupported:
        return Unsupported(message)


@dataclass(frozen=True)
class Window:
    """A conv or pool window in 2-D, (rows, columns) each (a 1-D window has a leading size-1 dim): input
    size In, output size Out, kernel K, strides S, dilations D, padding before P and after E."""

    In: tuple[int, int]
    Out: tuple[int, int]
    K: tuple[int, int]
    S: tuple[int, int]
    D: tuple[int, int]
    P: tuple[int, int]
    E: tuple[int, int]


def window(node: Node, in_sizes, kernel, out_sizes) -> Window:
    """The window of a conv or pool node over spatial sizes `in_sizes` -> `out_sizes` (auto_pad resolved)."""
    win = spatial_window(_Refusals(), node, tuple(in_sizes), tuple(kernel), tuple(out_sizes))
    sizes = {"In": in_sizes, "Out": out_sizes, "K": kernel, "S": win["strides"], "D": win["dilations"]}
    pads = {"P": win["begin"], "E": win["end"]}
    return Window(
        **{k: tuple(as_2d(list(v), 1)) for k, v in sizes.items()},
        **{k: tuple(as_2d(list(v), 0)) for k, v in pads.items()},
    )


@dataclass(frozen=True)
class Conv:
    """A Conv or FusedConv: batch N, input channels C, output channels M in `group` groups of CG -> MG."""

    N: int
    C: int
    M: int
    group: int
    win: Window

    @property
    def CG(self) -> int:
        return self.C // self.group

    @property
    def MG(self) -> int:
        return self.M // self.group

    @property
    def depthwise(self) -> bool:
        return self.CG == 1 and self.MG == 1


def conv(graph: Graph, node: Node) -> Conv:
    xs, ws, ys = (graph.shape(t) for t in (node.input(0), node.input(1), node.outputs[0]))
    kernel = tuple(node.attrs.get("kernel_shape") or ws[2:])
    group = int(node.attrs.get("group", 1))
    return Conv(xs[0], xs[1], ws[0], group, window(node, xs[2:], kernel, ys[2:]))


@dataclass(frozen=True)
class Pool:
    """A MaxPool or AveragePool."""

    win: Window
    count_include_pad: bool


def pool(graph: Graph, node: Node) -> Pool:
    xs, ys = graph.shape(node.input(0)), graph.shape(node.outputs[0])
    win = window(node, xs[2:], tuple(node.attrs["kernel_shape"]), ys[2:])
    return Pool(win, bool(int(node.attrs.get("count_include_pad", 0))))


@dataclass(frozen=True)
class Epilogue:
    """What a fused node (domain wasm_runtime) applies to its result: a residual tensor added first, then an
    activation (wasm_runtime/ops/activation.py names) with its parameters."""

    activation: str = ""
    params: tuple[float, ...] = ()
    residual: str = ""


def epilogue(node: Node) -> Epilogue:
    if node.domain != "wasm_runtime":
        return Epilogue()
    residual = node.inputs[3] if len(node.inputs) > 3 and node.inputs[3] else ""
    return Epilogue(node.attrs.get("activation", ""), tuple(node.attrs.get("activation_params", [])), residual)


def activation_params(graph: Graph, node: Node) -> list[float]:
    """The parameters of a standalone activation node, in the order activation_glsl takes them."""
    op = node.op_type
    if op == "Clip":
        if len(node.inputs) > 1:  # opset >= 11: min/max are inputs
            lo, hi = graph.const(node.input(1)), graph.const(node.input(2))
            if (node.input(1) and lo is None) or (node.input(2) and hi is None):
                raise Unsupported("Clip bounds computed at run time")
            return [lo.item() if lo is not None else -math.inf, hi.item() if hi is not None else math.inf]
        return [float(node.attrs.get("min", -math.inf)), float(node.attrs.get("max", math.inf))]
    if op == "LeakyRelu":
        return [float(node.attrs.get("alpha", 0.01))]
    if op == "HardSigmoid":
        return [float(node.attrs.get("alpha", 0.2)), float(node.attrs.get("beta", 0.5))]
    return []


@dataclass(frozen=True)
class Gemm:
    trans_a: bool
    trans_b: bool
    alpha: float
    beta: float


def gemm(node: Node) -> Gemm:
    """A Gemm's options (a MatMul's are the defaults)."""
    attrs = node.attrs
    return Gemm(
        bool(int(attrs.get("transA", 0))),
        bool(int(attrs.get("transB", 0))),
        float(attrs.get("alpha", 1.0)),
        float(attrs.get("beta", 1.0)),
    )


def softmax_axis(graph: Graph, node: Node) -> int:
    """A Softmax's axis attribute, with the default of the graph's opset."""
    return node.attrs.get("axis", -1 if graph.opset >= 13 else 1)


def softmax_rows(graph: Graph, node: Node) -> tuple[int, int]:
    """(length, stride) of the rows a Softmax normalizes: `length` elements `stride` apart."""
    xs = graph.shape(node.input(0))
    axis = int(softmax_axis(graph, node)) % len(xs)
    if graph.opset >= 13:
        return xs[axis], math.prod(xs[axis + 1 :])
    return math.prod(xs[axis:]), 1
