"""What onnxruntime refuses to run and onnx's shape inference lets through: checked on the imported graph
(importer.settle), before any optimization rewrites it, each failure a PackageError naming the node.

Shape inference takes a Conv weight with 5 input channels on a 3-channel input, a Transpose perm shorter
than the rank, a Reshape that changes the element count, or a Gemm bias of the wrong width, and gives shapes;
the plan would then read and write past the tensors it was made for. One check per op type, registered in
CHECKS; each reads shapes and constants only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .errors import PackageError
from .ir import Graph, Node

# a wasm32 memory holds 4 GiB; no one tensor of a plan can be larger
MAX_TENSOR_BYTES = 1 << 32

CHECKS: dict[str, Callable[[Graph, Node], str | None]] = {}


def check(*op_types: str):
    def register(fn):
        for op in op_types:
            CHECKS[op] = fn
        return fn

    return register


def _shape(graph: Graph, name: str):
    v = graph.values.get(name) if name else None
    return None if v is None or v.shape is None else tuple(v.shape)


@check("Transpose")
def _transpose(graph: Graph, node: Node) -> str | None:
    shape, perm = _shape(graph, node.input(0)), node.attrs.get("perm")
    if shape is not None and perm is not None and sorted(int(p) for p in perm) != list(range(len(shape))):
        return f"perm {list(perm)} is not a permutation of the {len(shape)} axes of its input {list(shape)}"
    return None


@check("Conv")
def _conv(graph: Graph, node: Node) -> str | None:
    xs, ws = _shape(graph, node.input(0)), _shape(graph, node.input(1))
    if xs is None or ws is None:
        return None
    if len(xs) != len(ws) or len(xs) < 3:
        return f"input {list(xs)} and weights {list(ws)} must have the same rank, at least 3"
    group = int(node.attrs.get("group", 1))
    if group < 1 or xs[1] != ws[1] * group:
        return (
            f"the input has {xs[1]} channels; weights {list(ws)} with group {group} take {ws[1] * group}"
        )
    if ws[0] % group:
        return f"{ws[0]} output channels do not divide into {group} groups"
    kernel = node.attrs.get("kernel_shape")
    if kernel is not None and list(kernel) != list(ws[2:]):
        return f"kernel_shape {list(kernel)} differs from the weights' {list(ws[2:])}"
    bias = _shape(graph, node.input(2))
    if bias is not None and bias != (ws[0],):
        return f"bias {list(bias)} must have one value per output channel ({ws[0]})"
    return None


@check("ConvTranspose")
def _conv_transpose(graph: Graph, node: Node) -> str | None:
    xs, ws = _shape(graph, node.input(0)), _shape(graph, node.input(1))
    if xs is None or ws is None:
        return None
    group = int(node.attrs.get("group", 1))
    if len(xs) != len(ws) or xs[1] != ws[0] or group < 1 or xs[1] % group:
        return f"input {list(xs)} does not match weights {list(ws)} with group {group}"
    bias = _shape(graph, node.input(2))
    if bias is not None and bias != (ws[1] * group,):
        return f"bias {list(bias)} must have one value per output channel ({ws[1] * group})"
    return None


@check("Gemm")
def _gemm(graph: Graph, node: Node) -> str | None:
    a, b, c = (_shape(graph, node.input(i)) for i in range(3))
    if a is None or b is None or len(a) != 2 or len(b) != 2:
        return None if a is None or b is None else f"A {list(a)} and B {list(b)} must be matrices"
    m, k = (a[1], a[0]) if node.attrs.get("transA", 0) else a
    k2, n = (b[1], b[0]) if node.attrs.get("transB", 0) else b
    if k != k2:
        return f"A {list(a)} and B {list(b)} disagree on the inner size ({k} vs {k2})"
    if c is not None:
        padded = (1,) * (2 - len(c)) + c
        if len(c) > 2 or padded[0] not in (1, m) or padded[1] not in (1, n):
            return f"C {list(c)} does not broadcast to the product's [{m}, {n}]"
    return None


@check("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def _view(graph: Graph, node: Node) -> str | None:
    x, y = _shape(graph, node.input(0)), _shape(graph, node.outputs[0] if node.outputs else "")
    # onnx's inference takes a Reshape target without counting the elements
    if x is not None and y is not None and math.prod(x) != math.prod(y):
        return f"{list(x)} ({math.prod(x)} elements) cannot become {list(y)} ({math.prod(y)} elements)"
    return None


@check("Pad")
def _pad(graph: Graph, node: Node) -> str | None:
    if node.attrs.get("mode") != "reflect":
        return None
    pads = node.attrs.get("pads") if graph.opset < 11 else graph.const(node.input(1))
    shape = _shape(graph, node.input(0))
    if pads is None or shape is None:
        return None
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    axes = graph.const(node.input(3)) if graph.opset >= 18 and node.input(3) else None
    axes = [int(a) % len(shape) for a in axes.reshape(-1)] if axes is not None else list(range(len(shape)))
    half = len(pads) // 2
    for k, axis in enumerate(axes[:half]):
        widest = max(pads[k], pads[k + half])
        if widest > 0 and widest >= shape[axis]:
            return f"a reflect pad of {widest} on axis {axis} needs more elements there than the input's {shape[axis]}"
    return None


def check_graph(graph: Graph, max_tensor_bytes: int | None = MAX_TENSOR_BYTES) -> None:
    """Every node against its op's check, and every computed tensor against the memory a plan can have (not
    with max_tensor_bytes None)."""
    for node in graph.nodes:
        fn = CHECKS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        problem = fn(graph, node) if fn else None
        if problem:
            raise PackageError(f"node {node.name!r} ({node.op_type}): {problem}")
        for out in node.outputs if max_tensor_bytes is not None else ():
            v = graph.values.get(out) if out else None
            if v is None or v.shape is None or v.is_const or not all(isinstance(d, int) for d in v.shape):
                continue
            nbytes = math.prod(v.shape) * v.dtype.itemsize
            if nbytes > max_tensor_bytes:
                raise PackageError(
                    f"node {node.name!r} ({node.op_type}): its output {out!r} {list(v.shape)} would take "
                    f"{nbytes / 2**30:.1f} GiB; a WebAssembly memory holds {max_tensor_bytes / 2**30:g} GiB at most"
                )
