"""Floating-point operation counts per node (a multiply-add counts 2), for the optimizer's report."""

from __future__ import annotations

import math

from .ir import Graph, Node

_ELEMENTWISE = {
    "Relu": 1,
    "Clip": 1,
    "LeakyRelu": 2,
    "Sigmoid": 4,
    "Tanh": 4,
    "HardSigmoid": 3,
    "HardSwish": 4,
    "Add": 1,
    "Sub": 1,
    "Mul": 1,
    "Div": 1,
    "BatchNormalization": 2,
    "Softmax": 5,
}
_ACTIVATION = {
    "": 0,
    "Relu": 1,
    "Clip": 1,
    "LeakyRelu": 2,
    "Sigmoid": 4,
    "Tanh": 4,
    "HardSigmoid": 3,
    "HardSwish": 4,
    "SiLU": 5,
}


def node_flops(graph: Graph, node: Node) -> int:
    op = node.op_type.removeprefix("Fused") if node.domain == "wasm_runtime" else node.op_type
    out = math.prod(graph.shape(node.outputs[0])) if node.outputs and node.outputs[0] in graph.values else 0
    if op == "Conv":
        w = graph.shape(node.inputs[1])
        flops = 2 * out * math.prod(w[1:]) + (out if node.input(2) else 0)
    elif op in ("Gemm", "MatMul"):
        a = graph.shape(node.inputs[0])
        k = a[0] if op == "Gemm" and node.attrs.get("transA", 0) else a[-1]
        flops = 2 * out * k + (out if node.input(2) and op == "Gemm" else 0)
    elif op in ("MaxPool", "AveragePool"):
        flops = out * math.prod(node.attrs.get("kernel_shape", [1]))
    elif op in ("GlobalAveragePool", "LRN", "Sum", "ReduceMean"):
        flops = math.prod(graph.shape(node.inputs[0])) * (node.attrs.get("size", 1) * 2 if op == "LRN" else 1)
    else:
        flops = out * _ELEMENTWISE.get(op, 0)
    if node.domain == "wasm_runtime":
        flops += out * (
            _ACTIVATION.get(node.attrs.get("activation", ""), 1) + (1 if len(node.inputs) > 3 and node.inputs[3] else 0)
        )
    return flops


def graph_flops(graph: Graph) -> int:
    return sum(node_flops(graph, n) for n in graph.nodes)
