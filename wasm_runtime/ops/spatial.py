"""The ops that slide a window over the spatial dims (Conv, the pools), parsed once into typed specs: Window
(kernel/stride/dilation/padding attributes -> numbers, auto_pad resolved), ConvSpec, PoolSpec. The lowerings
(ops/conv.py, ops/winograd.py, ops/pool.py) read only these; the webgl backend should too (it still calls
`window` and `as_2d`, kept for it)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import PackageError
from ..ir import Graph, Node
from .activation import Epilogue


class SpecError(PackageError):
    """A node whose attributes cannot be parsed into its op's spec; `reason` without the node's name."""

    def __init__(self, node: Node, reason: str):
        super().__init__(f"node {node.name!r} ({node.op_type}): {reason}")
        self.reason = reason


def as_2d(sizes: list | tuple, fill: int) -> list[int]:
    """1-D windows run on the 2-D kernels with a leading size-1 dim."""
    return [fill, *sizes] if len(sizes) == 1 else list(sizes)


@dataclass(frozen=True)
class Window:
    """Per spatial dim: the kernel size, stride, dilation and the padding before (`begin`) and after (`end`)."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    begin: tuple[int, ...]
    end: tuple[int, ...]

    @classmethod
    def of(cls, node: Node, in_sizes, kernel, out_sizes) -> Window:
        """The window of `node` (strides, dilations, pads or auto_pad) over an input of `in_sizes` giving
        `out_sizes` (auto_pad SAME_* needs them)."""
        n = len(in_sizes)
        strides = list(node.attrs.get("strides") or [1] * n)
        dilations = list(node.attrs.get("dilations") or [1] * n)
        auto_pad = node.attrs.get("auto_pad", "NOTSET") or "NOTSET"
        if auto_pad == "NOTSET":
            pads = list(node.attrs.get("pads") or [0] * (2 * n))
            begin, end = pads[:n], pads[n:]
        elif auto_pad == "VALID":
            begin, end = [0] * n, [0] * n
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            begin, end = [], []
            for i in range(n):
                total = max((out_sizes[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in_sizes[i], 0)
                small = total // 2
                begin.append(small if auto_pad == "SAME_UPPER" else total - small)
                end.append(total - begin[-1])
        else:
            raise SpecError(node, f"unknown auto_pad {auto_pad!r}")
        if min(begin + end) < 0:
            raise SpecError(node, f"negative pads {begin + end} are not supported")
        return cls(tuple(kernel), tuple(strides), tuple(dilations), tuple(begin), tuple(end))

    def as_2d(self) -> Window:
        """A 1-D window as the 2-D one the 2-D kernels run (a leading size-1 dim); 2-D unchanged."""
        return Window(
            tuple(as_2d(self.kernel, 1)),
            tuple(as_2d(self.strides, 1)),
            tuple(as_2d(self.dilations, 1)),
            tuple(as_2d(self.begin, 0)),
            tuple(as_2d(self.end, 0)),
        )


@dataclass(frozen=True)
class ConvSpec:
    """Conv and FusedConv (passes/fusion.py): the tensors, their shapes, the groups, the window over the spatial
    dims (kernel from kernel_shape or the weights) and the fused epilogue (activation, residual)."""

    node: Node
    x: str
    w: str
    b: str  # "" without a bias
    y: str
    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    group: int
    window: Window
    epilogue: Epilogue

    @classmethod
    def parse(cls, graph: Graph, node: Node) -> ConvSpec:
        x, w, b, y = node.input(0), node.input(1), node.input(2), node.outputs[0]
        xs, ws, ys = (tuple(graph.values[t].shape) for t in (x, w, y))
        kernel = tuple(node.attrs.get("kernel_shape") or ws[2:])
        win = Window.of(node, xs[2:], kernel, ys[2:])
        return cls(node, x, w, b, y, xs, ws, ys, int(node.attrs.get("group", 1)), win, Epilogue.of(node))


@dataclass(frozen=True)
class PoolSpec:
    """MaxPool, AveragePool, LpPool: 1-D to 3-D windows over NC... inputs."""

    node: Node
    x: str
    y: str
    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    window: Window
    count_include_pad: int
    storage_order: int
    p: int  # LpPool's power

    @classmethod
    def parse(cls, graph: Graph, node: Node) -> PoolSpec:
        x, y = node.input(0), node.outputs[0]
        xs, ys = tuple(graph.values[x].shape), tuple(graph.values[y].shape)
        if len(xs) not in (3, 4, 5):
            raise SpecError(node, f"{len(xs) - 2}-D pooling is not supported (1-D, 2-D and 3-D are)")
        win = Window.of(node, xs[2:], tuple(node.attrs["kernel_shape"]), ys[2:])
        # The spec (and onnxruntime) drop a ceil_mode window that would start in the right padding, but onnx's
        # shape inference still counts it: the output would be one larger than the reference's, its last row or
        # column all -inf (max) / 0 (average). Refuse rather than compute a wrong shape.
        for size, out, stride, begin in zip(xs[2:], ys[2:], win.strides, win.begin, strict=True):
            if out > 1 and (out - 1) * stride - begin >= size:
                raise SpecError(
                    node,
                    f"output size {out} (from shape inference) includes a window that starts in the right padding, "
                    f"which ONNX drops (ceil_mode); the output would have {out - 1} there",
                )
        a = node.attrs
        p = int(a.get("p", 2))
        return cls(node, x, y, xs, ys, win, int(a.get("count_include_pad", 0)), int(a.get("storage_order", 0)), p)
