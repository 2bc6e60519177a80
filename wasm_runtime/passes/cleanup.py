"""Cleanup passes (the onnx-simplifier / onnxoptimizer set). Each rewrites the graph in place and returns
how many rewrites it made; all of them are exact (no arithmetic changes)."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx

from ..fold import NONDETERMINISTIC, fold_constants
from ..ir import Graph, Node, bypass

__all__ = [
    "fold_constants",
    "eliminate_dead_code",
    "eliminate_noops",
    "deduplicate_constants",
    "eliminate_common_subexpressions",
    "canonicalize_sum",
]


def eliminate_dead_code(graph: Graph) -> int:
    """Drop nodes whose outputs nobody reads, and constants nobody uses.

    a = Relu(x); b = Exp(a)   (b unused)     =>   a = Relu(x) if a is used, else nothing
    """
    removed = 0
    while True:
        used = set(graph.outputs) | {i for n in graph.nodes for i in n.inputs}
        dead = {id(n) for n in graph.nodes if not any(o in used for o in n.outputs if o)}
        if not dead:
            break
        graph.nodes = [n for n in graph.nodes if id(n) not in dead]
        removed += len(dead)
    used = set(graph.outputs) | {i for n in graph.nodes for i in n.inputs}
    for name in [v.name for v in graph.constants() if v.name not in used]:
        del graph.values[name]
    keep = used | {o for n in graph.nodes for o in n.outputs} | set(graph.inputs)
    for name in [n for n, v in graph.values.items() if not v.is_const and n not in keep]:
        del graph.values[name]
    return removed


def _all_equal(values, target) -> bool:
    return values is not None and np.array_equal(np.asarray(values).reshape(-1), np.asarray(target).reshape(-1))


def _is_noop(graph: Graph, node: Node) -> bool:
    op, a = node.op_type, node.attrs
    if not node.inputs or not node.outputs or not node.inputs[0]:
        return False
    x, y = node.inputs[0], node.outputs[0]
    xv, yv = graph.values.get(x), graph.values.get(y)
    same_shape = xv is not None and yv is not None and xv.shape == yv.shape and xv.dtype == yv.dtype
    if op == "Identity":
        return True
    if op == "Dropout":  # inference: the data passes through; the mask output must be unused
        used = set(graph.outputs) | {i for n in graph.nodes for i in n.inputs}
        training = graph.const(node.input(2)) if node.input(2) else False
        return not any(o in used for o in node.outputs[1:] if o) and training is not None and not bool(training)
    if op in ("Reshape", "Flatten", "Expand", "Squeeze", "Unsqueeze"):
        return same_shape
    if op == "Cast":
        return xv is not None and np.dtype(xv.dtype) == yv.dtype
    if op == "Transpose":
        perm = a.get("perm")
        rank = len(xv.shape) if xv is not None and xv.shape is not None else None
        return perm is not None and list(perm) == list(range(len(perm))) or (perm is None and rank in (0, 1))
    if op == "Pad":
        pads = graph.const(node.input(1)) if graph.opset >= 11 else a.get("pads")
        return pads is not None and not np.any(np.asarray(pads)) and same_shape
    if op == "Slice":
        # same shape with unit steps means every element is kept in order (a step of -1 would reverse)
        steps = graph.const(node.input(4)) if graph.opset >= 10 and node.input(4) else None
        unit_steps = not node.input(4) if graph.opset >= 10 else True
        return same_shape and (unit_steps or (steps is not None and np.all(np.asarray(steps) == 1)))
    return False


def eliminate_noops(graph: Graph) -> int:
    """Remove nodes that pass their input through unchanged.

    y = Identity(x) / Dropout(x) (inference) / Cast(x, to=x.dtype) / Pad(x, pads=0)
      / Transpose(x, perm=identity) / Reshape|Flatten|Expand|Squeeze|Unsqueeze to x's own shape
      / Slice covering all of x                                  =>   y := x
    y = Where(c, a, b) with c a constant all true (all false), a (b) of y's shape  =>   y := a (b)
      (an inlined If whose condition folded)
    """
    count = 0
    for node in list(graph.nodes):
        if _is_noop(graph, node) and bypass(graph, node, node.inputs[0]):
            count += 1
        elif node.op_type == "Where" and (source := _where_source(graph, node)) and bypass(graph, node, source):
            count += 1
    return count


def _where_source(graph: Graph, node: Node) -> str | None:
    cond = graph.const(node.inputs[0])
    if cond is None or cond.size == 0 or not (cond.all() or not cond.any()):
        return None
    source = node.inputs[1] if cond.reshape(-1)[0] else node.inputs[2]
    sv, yv = graph.values.get(source), graph.values.get(node.outputs[0])
    if sv is None or yv is None or tuple(sv.shape) != tuple(yv.shape) or sv.dtype != yv.dtype:
        return None
    return source


def _constant_key(array: np.ndarray) -> tuple:
    if array.size and all(s == 0 for s in array.strides):  # uniform view: one value, any shape
        return (array.dtype.str, array.shape, "uniform", array.reshape(-1)[:1].tobytes())
    return (array.dtype.str, array.shape, hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest())


def deduplicate_constants(graph: Graph) -> int:
    """Constants with identical dtype, shape and bytes become one.

    W1 = [1,2,3]; W2 = [1,2,3]; Add(x, W1); Mul(y, W2)   =>   Add(x, W1); Mul(y, W1)
    """
    seen: dict[tuple, str] = {}
    rename: dict[str, str] = {}
    for v in sorted(graph.constants(), key=lambda v: v.name):
        key = _constant_key(v.data)
        if key in seen:
            rename[v.name] = seen[key]
        else:
            seen[key] = v.name
    if not rename:
        return 0
    for node in graph.nodes:
        node.inputs = [rename.get(i, i) for i in node.inputs]
    outputs = set(graph.outputs)
    for old in rename:
        if old not in outputs:
            del graph.values[old]
    return len([o for o in rename if o not in outputs])


def _attr_key(value):
    if isinstance(value, (Graph, onnx.GraphProto)):  # If branches: the same node only if the same object
        return ("graph", id(value))
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, list):
        return tuple(_attr_key(v) for v in value)
    return value


def eliminate_common_subexpressions(graph: Graph) -> int:
    """Nodes computing the same op on the same inputs with the same attributes are computed once.

    a = Relu(x); b = Relu(x); Add(a, b)   =>   a = Relu(x); Add(a, a)
    """
    seen: dict[tuple, Node] = {}
    rename: dict[str, str] = {}  # output of a removed node -> the same value of the node kept
    removed: set[int] = set()
    outputs = set(graph.outputs)
    for node in graph.nodes:
        if rename:  # the nodes after a removed one read the kept value (renamed as we go: one pass)
            node.inputs = [rename.get(i, i) for i in node.inputs]
        # Dropout is random in training mode (which the lowering refuses); an inference Dropout that reaches this
        # pass has its mask read (eliminate_noops removed the others): merging two would be exact, but is not done
        if node.op_type in NONDETERMINISTIC or node.op_type == "Dropout":
            continue
        key = (
            node.domain,
            node.op_type,
            tuple(node.inputs),
            len(node.outputs),
            tuple(sorted((k, _attr_key(v)) for k, v in node.attrs.items())),
        )
        first = seen.get(key)
        if first is None:
            seen[key] = node
            continue
        if any(o in outputs for o in node.outputs):
            continue
        removed.add(id(node))
        rename.update((old, new) for old, new in zip(node.outputs, first.outputs, strict=True) if old)
    if removed:
        graph.nodes = [n for n in graph.nodes if id(n) not in removed]
        for n in graph.nodes:  # readers placed before their producer's twin (not in topological order)
            n.inputs = [rename.get(i, i) for i in n.inputs]
    return len(removed)


def canonicalize_sum(graph: Graph) -> int:
    """A two-input Sum is an Add (so residual fusions see it); a one-input Sum is its input.

    y = Sum(a, b)   =>   y = Add(a, b)
    """
    count = 0
    for node in list(graph.nodes):
        if node.op_type != "Sum" or node.domain not in ("", "ai.onnx"):
            continue
        inputs = [i for i in node.inputs if i]
        if len(inputs) == 2:
            node.op_type, node.inputs = "Add", inputs
            count += 1
        elif len(inputs) == 1 and bypass(graph, node, inputs[0]):
            count += 1
    return count
