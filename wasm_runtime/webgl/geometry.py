"""What the shaders need of a node's op semantics, taken from the typed op specs the wasm lowerings use
(wasm_runtime/ops: Window/ConvSpec in spatial.py, Epilogue and the activations' parameters in activation.py,
SoftmaxSpec in softmax.py), in the 2-D form the shaders index: a spec that cannot be parsed refuses the node's
shader (it then runs on wasm, whose lowering refuses it in the same words). Gemm's four options are the one
thing still read from attributes here: no wasm spec holds them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir import Graph, Node
from ..ops.activation import ACTIVATIONS, Epilogue, attribute_params
from ..ops.softmax import SoftmaxSpec
from ..ops.spatial import ConvSpec, SpecError, as_2d
from ..ops.spatial import Window as SpecWindow
from .layout import Unsupported

__all__ = ["Epilogue", "epilogue"]


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

    @classmethod
    def of(cls, spec: SpecWindow, in_sizes, out_sizes) -> Window:
        w = spec.as_2d()
        return cls(
            tuple(as_2d(list(in_sizes), 1)), tuple(as_2d(list(out_sizes), 1)), w.kernel, w.strides, w.dilations,
            w.begin, w.end,
        )  # fmt: skip


def _parsed(parse, *args):
    try:
        return parse(*args)
    except SpecError as e:
        raise Unsupported(e.reason) from None


def window(node: Node, in_sizes, kernel, out_sizes) -> Window:
    """The window of a conv or pool node over spatial sizes `in_sizes` -> `out_sizes` (auto_pad resolved)."""
    spec = _parsed(SpecWindow.of, node, tuple(in_sizes), tuple(kernel), tuple(out_sizes))
    return Window.of(spec, in_sizes, out_sizes)


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
    spec = _parsed(ConvSpec.parse, graph, node)
    xs, ys = spec.x_shape, spec.y_shape
    return Conv(xs[0], xs[1], spec.w_shape[0], spec.group, Window.of(spec.window, xs[2:], ys[2:]))


@dataclass(frozen=True)
class Pool:
    """A MaxPool or AveragePool."""

    win: Window
    count_include_pad: bool


def pool(graph: Graph, node: Node) -> Pool:
    xs, ys = graph.shape(node.input(0)), graph.shape(node.outputs[0])
    win = window(node, xs[2:], tuple(node.attrs["kernel_shape"]), ys[2:])
    return Pool(win, bool(int(node.attrs.get("count_include_pad", 0))))


def epilogue(node: Node) -> Epilogue:
    """What a fused node (domain wasm_runtime) applies to its result: a residual tensor added first, then an
    activation with its parameters (Epilogue() for a plain op)."""
    return Epilogue.of(node)


def activation_params(graph: Graph, node: Node) -> list[float]:
    """The parameters of a standalone activation node, in the order activation_glsl takes them."""
    op = node.op_type
    if op == "Clip" and len(node.inputs) > 1:  # opset >= 11: min/max are inputs
        lo, hi = graph.const(node.input(1)), graph.const(node.input(2))
        if (node.input(1) and lo is None) or (node.input(2) and hi is None):
            raise Unsupported("Clip bounds computed at run time")
        return [lo.item() if lo is not None else -math.inf, hi.item() if hi is not None else math.inf]
    return attribute_params(op, node.attrs) if op in ACTIVATIONS else []


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
    """A Softmax's axis, with the default of the graph's opset, as a non-negative index."""
    return _parsed(SoftmaxSpec.parse, graph, node).axis


def softmax_rows(graph: Graph, node: Node) -> tuple[int, int]:
    """(length, stride) of the rows a Softmax normalizes: `length` elements `stride` apart."""
    spec = _parsed(SoftmaxSpec.parse, graph, node)
    return spec.n, spec.inner
