"""Evaluate at package time what does not depend on the model's inputs.

Constant nodes become constants; ConstantOfShape with a known shape becomes a zero-stride view (shipped
as a fill, not as bytes); any other node whose inputs are all constant is run once through onnx's
reference evaluator. The browser then never sees shape arithmetic or weight preprocessing.

    Constant(value=t) -> y                      =>  y: constant t
    ConstantOfShape(shape=[64,3,7,7], 0.02) -> w =>  w: constant, one value x 9408 (zero-stride)
    Unsqueeze(const a, axes) -> b                =>  b: constant
    Shape(x) with x's shape known statically    =>  constant (so shape arithmetic folds away)
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper
from onnx.reference import ReferenceEvaluator

from .errors import PackageError
from .ir import Graph, Node, Value, is_uniform
from .onnx_io import _attr_for_onnx

# ops that draw random numbers: their results must differ per run, so they are never folded ahead of time nor
# merged with a twin (passes/cleanup.py). Dropout draws them in training mode only: folding evaluates an
# inference Dropout of constants (_random_dropout), common-subexpression elimination skips every Dropout.
NONDETERMINISTIC = frozenset(
    {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}
)
# no point materializing a large uniform constant just to reshape it; the runtime aliases these for free
def _random_dropout(graph, node) -> bool:
    """A Dropout in training mode with a nonzero ratio draws a new mask every run: folding it would freeze one
    draw into a constant (a silent wrong result); left as a node, the lowering refuses it."""
    if node.op_type != "Dropout" or not node.input(2):
        return False
    training, ratio = graph.const(node.input(2)), graph.const(node.input(1)) if node.input(1) else None
    return bool(training) and (ratio is None or float(ratio) != 0.0)


_VIEW_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"}
_FOLD_LIMIT_ELEMENTS = 1 << 22


def _constant_node_value(node: Node) -> np.ndarray:
    a = node.attrs
    if "value" in a:
        return np.asarray(a["value"])
    for key, dtype in (
        ("value_float", np.float32),
        ("value_floats", np.float32),
        ("value_int", np.int64),
        ("value_ints", np.int64),
    ):
        if key in a:
            return np.asarray(a[key], dtype=dtype)
    raise PackageError(f"Constant node {node.name!r}: unsupported value attribute {sorted(a)}")


def _evaluate(graph: Graph, node: Node) -> list[np.ndarray]:
    inputs = [graph.const(i) if i else None for i in node.inputs]
    proto = helper.make_node(
        node.op_type,
        node.inputs,
        node.outputs,
        name=node.name,
        domain=node.domain or None,
        **{k: _attr_for_onnx(v) for k, v in node.attrs.items() if v is not None},
    )
    # np.array, not np.ascontiguousarray: the latter turns 0-d scalars into shape (1,)
    feeds = {name: np.array(arr, order="C") for name, arr in zip(node.inputs, inputs, strict=True) if name}
    g = helper.make_graph(
        [proto],
        "fold",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in feeds.items()],
        [helper.make_empty_tensor_value_info(o) for o in node.outputs if o],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", graph.opset)])
    try:
        outs = ReferenceEvaluator(model).run(None, feeds)
    except Exception as exc:
        raise PackageError(f"node {node.name!r} ({node.op_type}) failed on its constant inputs: {exc}") from None
    for o in outs:
        if o is None or isinstance(o, (list, tuple, dict)):
            kind = "an optional" if o is None else "a sequence" if isinstance(o, (list, tuple)) else "a map"
            raise PackageError(f"node {node.name!r} ({node.op_type}) makes {kind}; only tensors are supported")
    return [np.asarray(o) for o in outs]


def _static_shape(graph: Graph, name: str) -> tuple[int, ...] | None:
    v = graph.values.get(name)
    if v is None or v.shape is None or not all(isinstance(d, int) and d >= 0 for d in v.shape):
        return None
    return tuple(v.shape)


def _output_size(graph: Graph, node: Node, arrays: list[np.ndarray]) -> int:
    """Elements of the node's first output, as far as is known without computing it: the inferred shape, or
    for the ops that make large tensors from small inputs (Expand, Tile, Range) the size their inputs give;
    0 when unknown. Folding never materializes more than _FOLD_LIMIT_ELEMENTS (a dynamic-shape probe imports
    at sizes like a batch of 512, where Expand(x, Shape(...)) would be gigabytes)."""
    v = graph.values.get(node.outputs[0]) if node.outputs else None
    if v is not None and v.shape is not None and all(isinstance(d, int) and d >= 0 for d in v.shape):
        return int(np.prod(v.shape, dtype=np.float64))
    try:
        if node.op_type == "Expand":
            shape = np.broadcast_shapes(arrays[0].shape, tuple(int(d) for d in arrays[1]))
            return int(np.prod(shape, dtype=np.float64))
        if node.op_type == "Tile":
            return int(np.prod(np.asarray(arrays[0].shape) * arrays[1].astype(np.float64)))
        if node.op_type == "Range":
            start, limit, delta = (float(np.asarray(a).reshape(-1)[0]) for a in arrays[:3])
            return max(0, int(np.ceil((limit - start) / delta))) if delta else 0
    except (ValueError, IndexError, TypeError):
        return 0  # malformed: _evaluate reports it
    return 0


def fold_constants(graph: Graph) -> int:
    """Replace constant-only nodes by their values. Returns how many nodes were folded."""
    kept: list[Node] = []
    folded = 0
    # values that must stay computed at run time (dynamic shapes: their shape depends on a symbolic dim)
    no_fold = graph.metadata.get("no_fold", ())
    for node in graph.nodes:
        results: list[np.ndarray] | None = None
        if no_fold and node.op_type != "Constant" and any(o in no_fold for o in node.outputs):
            kept.append(node)
            continue
        if node.op_type == "Constant":
            results = [_constant_node_value(node)]
        elif node.op_type == "ConstantOfShape" and graph.const(node.input(0)) is not None:
            shape = tuple(int(d) for d in graph.const(node.input(0)))
            value = node.attrs.get("value")
            fill = np.asarray(value).reshape(-1)[:1] if value is not None else np.zeros(1, np.float32)
            results = [np.broadcast_to(fill.reshape(()), shape)]
        elif node.op_type in ("Shape", "Size") and _static_shape(graph, node.input(0)) is not None:
            shape = _static_shape(graph, node.input(0))
            if node.op_type == "Size":
                results = [np.array(int(np.prod(shape, dtype=np.int64)), np.int64)]
            else:
                start, end = node.attrs.get("start", 0), node.attrs.get("end")
                results = [np.array(shape[start:end] if end is not None else shape[start:], np.int64)]
        elif (
            node.op_type not in NONDETERMINISTIC
            and not _random_dropout(graph, node)
            and node.domain in ("", "ai.onnx")
            # If/Loop/Scan read outer values inside their subgraphs: an If with a constant condition is
            # replaced by its branch (control.resolve_constant_ifs), the others run
            and not any(isinstance(v, (onnx.GraphProto, Graph)) for v in node.attrs.values())
            and any(node.inputs)
            and all(graph.const(i) is not None for i in node.inputs if i)
        ):
            arrays = [graph.const(i) for i in node.inputs if i]
            large_view = any(is_uniform(a) and a.size > 4096 for a in arrays)
            too_big = sum(a.size for a in arrays) > _FOLD_LIMIT_ELEMENTS
            if node.op_type in ("Div", "Mod") and arrays[-1].dtype.kind in "iu" and not np.all(arrays[-1]):
                raise PackageError(
                    f"node {node.name!r} ({node.op_type}): its integer divisor holds 0: onnxruntime fails such a "
                    "run (integer division by zero)"
                )
            out_size = _output_size(graph, node, arrays)
            if node.op_type == "Expand" and out_size > _FOLD_LIMIT_ELEMENTS:
                # a large broadcast of a constant: a zero-stride view, shipped once, as ConstantOfShape's
                shape = np.broadcast_shapes(arrays[0].shape, tuple(int(d) for d in arrays[1]))
                results = [np.broadcast_to(arrays[0], shape)]
            elif not (large_view and node.op_type in _VIEW_OPS) and not too_big and out_size <= _FOLD_LIMIT_ELEMENTS:
                results = _evaluate(graph, node)
        if results is None:
            kept.append(node)
            continue
        folded += 1
        for name, arr in zip(node.outputs, results, strict=False):
            if name:
                graph.values[name] = Value(name, arr.dtype, tuple(arr.shape), arr)
    graph.nodes = kept
    return folded
