"""ONNX <-> IR. Loading validates the file (checker, opset, symbolic dims) and reports problems as
PackageError; shapes come from onnx's own shape inference, re-run after constants are folded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .errors import PackageError
from .ir import Graph, Node, Value

MIN_OPSET = 7
MAX_OPSET = onnx.defs.onnx_opset_version()

# Constants above this many elements go to shape inference as typed inputs, not data: inference only
# needs the values of small shape-like tensors, and a zero-stride 400 MB weight must not be materialized.
_SHAPE_ONLY_ELEMENTS = 4096


def load_model(source: str | Path | bytes | onnx.ModelProto) -> onnx.ModelProto:
    if isinstance(source, onnx.ModelProto):
        return source
    try:
        if isinstance(source, bytes):
            model = onnx.load_from_string(source)
        else:
            path = Path(source)
            if not path.is_file():
                raise PackageError(f"{path}: no such model file")
            model = onnx.load(str(path))
    except PackageError:
        raise
    except Exception as exc:  # protobuf raises DecodeError, RuntimeWarning, ValueError... depending on damage
        raise PackageError(f"{source}: not a valid ONNX model ({type(exc).__name__}: {exc})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise PackageError(f"{source}: not a valid ONNX model (no graph or no nodes)")
    return model


def default_opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    raise PackageError("the model imports no ai.onnx opset")


def _same_as_min_opset(model: onnx.ModelProto, opset: int) -> bool:
    """True when every node of an older-opset model means what it means at MIN_OPSET (no op of it was
    redefined in between), so the model can be read as a MIN_OPSET one (Not, And... are unchanged since 1)."""
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or any(a.g.node or a.graphs for a in node.attribute):
            return False
        try:
            if onnx.defs.get_schema(node.op_type, opset).since_version != onnx.defs.get_schema(
                node.op_type, MIN_OPSET
            ).since_version:
                return False
        except onnx.defs.SchemaError:
            return False
    return True


def check_model(model: onnx.ModelProto) -> None:
    opset = default_opset(model)
    if opset > MAX_OPSET or (opset < MIN_OPSET and not _same_as_min_opset(model, opset)):
        raise PackageError(f"opset {opset} is not supported (supported: {MIN_OPSET}..{MAX_OPSET})")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0]
        raise PackageError(f"the model is malformed: {first}") from None


def fix_input_shapes(model: onnx.ModelProto, input_shapes: dict[str, list[int]]) -> onnx.ModelProto:
    """Replace the declared shape of graph inputs (e.g. a symbolic batch) by concrete sizes."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {i.name for i in model.graph.initializer}
    inputs = {i.name: i for i in model.graph.input if i.name not in inits}
    for name, dims in input_shapes.items():
        if name not in inputs:
            raise PackageError(f"--input-shape names {name!r}, but the model's inputs are {sorted(inputs)}")
        shape = inputs[name].type.tensor_type.shape
        if shape.dim and len(shape.dim) != len(dims):
            raise PackageError(f"--input-shape {name}: the model declares rank {len(shape.dim)}, got {dims}")
        del shape.dim[:]
        for d in dims:
            shape.dim.add().dim_value = int(d)
    return model


def _attr_value(attr: onnx.AttributeProto):
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode() for v in value]
    return value


def _attrs_with_defaults(node: onnx.NodeProto, opset: int) -> dict:
    attrs = {a.name: _attr_value(a) for a in node.attribute}
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, node.domain)
    except onnx.defs.SchemaError:
        return attrs
    for name, spec in schema.attributes.items():
        if name not in attrs and spec.default_value.name:
            attrs[name] = _attr_value(spec.default_value)
    return attrs


def _dtype(elem_type: int) -> np.dtype:
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))


def _shape(type_proto: onnx.TypeProto) -> tuple | None:
    tt = type_proto.tensor_type
    if not tt.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim)


def to_graph(model: onnx.ModelProto) -> Graph:
    """Convert a checked model. Graph inputs that also have an initializer (the IR < 4 convention) are
    constants, as every runtime that ships models treats them."""
    g = model.graph
    opset = default_opset(model)
    values: dict[str, Value] = {}
    for init in g.initializer:
        data = numpy_helper.to_array(init)
        values[init.name] = Value(init.name, data.dtype, tuple(data.shape), data)
    inputs = []
    for inp in g.input:
        if inp.name in values:
            continue
        if not inp.type.HasField("tensor_type"):
            raise PackageError(f"input {inp.name!r} is not a tensor; only tensor inputs are supported")
        values[inp.name] = Value(inp.name, _dtype(inp.type.tensor_type.elem_type), _shape(inp.type))
        inputs.append(inp.name)
    for info in [*g.value_info, *g.output]:
        if info.name not in values and info.type.HasField("tensor_type"):
            values[info.name] = Value(info.name, _dtype(info.type.tensor_type.elem_type), _shape(info.type))
    nodes = []
    names: set[str] = set()
    for i, n in enumerate(g.node):
        name = n.name or f"{n.op_type}_{i}"
        while name in names:  # exporters sometimes reuse names; the plan and error messages need unique ones
            name += "_"
        names.add(name)
        nodes.append(Node(n.op_type, name, list(n.input), list(n.output), _attrs_with_defaults(n, opset), n.domain))
    metadata = {"producer": f"{model.producer_name} {model.producer_version}".strip(), "ir_version": model.ir_version}
    return Graph(g.name or "model", nodes, values, inputs, [o.name for o in g.output], opset, metadata)


def _attr_for_onnx(value):
    """Tensor attributes are numpy arrays in the IR (ConstantOfShape's value...): back to TensorProto, which
    make_node would otherwise turn into a list of numbers."""
    return numpy_helper.from_array(value) if isinstance(value, np.ndarray) else value


def to_onnx(graph: Graph, shapes_only: bool = False) -> onnx.ModelProto:
    """Rebuild an ONNX model from the IR. With shapes_only, large constants become typed graph inputs
    (enough for shape inference, and zero-stride views are never expanded)."""
    initializers, extra_inputs = [], []
    for v in graph.constants():
        if shapes_only and v.data.size > _SHAPE_ONLY_ELEMENTS:
            extra_inputs.append(
                helper.make_tensor_value_info(v.name, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            )
        else:
            initializers.append(numpy_helper.from_array(np.array(v.data, order="C"), v.name))

    def info(name):
        v = graph.values.get(name)
        if v is None:
            return helper.make_empty_tensor_value_info(name)
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)

    nodes = []
    for n in graph.nodes:
        nodes.append(
            helper.make_node(
                n.op_type,
                n.inputs,
                n.outputs,
                name=n.name,
                domain=n.domain or None,
                **{k: _attr_for_onnx(v) for k, v in n.attrs.items() if v is not None},
            )
        )
    g = helper.make_graph(
        nodes,
        graph.name,
        [info(i) for i in graph.inputs] + extra_inputs,
        [info(o) for o in graph.outputs],
        initializers,
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", graph.opset)])
    model.ir_version = max(int(graph.metadata.get("ir_version", 0) or 0), 4)
    return model


def infer_shapes(graph: Graph, require_static: bool = True) -> None:
    """Fill in dtype and shape of every value via onnx shape inference; fail naming the first node whose
    output shape stays unknown (the planner needs every size), unless require_static is False."""
    model = to_onnx(graph, shapes_only=True)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:
        # onnx's data propagation treats small int tensors as shapes and can trip over real data (a
        # broadcasting Add of a range and a mask): our own constant folding does that job, so retry without
        try:
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=False)
        except Exception:
            raise PackageError(f"shape inference failed: {str(exc).strip().splitlines()[0]}") from None
    g = inferred.graph
    for info in [*g.value_info, *g.output]:
        if not info.type.HasField("tensor_type"):
            continue
        v = graph.values.get(info.name)
        shape = _shape(info.type)
        if v is None:
            graph.values[info.name] = Value(info.name, _dtype(info.type.tensor_type.elem_type), shape)
        elif not v.is_const and shape is not None and (v.shape is None or not _is_static(v.shape)):
            v.shape = shape
            v.dtype = _dtype(info.type.tensor_type.elem_type)
    if require_static:
        require_static_shapes(graph)


def require_static_shapes(graph: Graph) -> None:
    used = set(graph.outputs) | {i for n in graph.nodes for i in n.inputs}
    for node in graph.nodes:
        for out in node.outputs:
            v = graph.values.get(out) if out else None
            # unused optional outputs (Dropout's mask, ...) may stay unknown: nothing is planned for them
            if out in used and (v is None or v.shape is None or not _is_static(v.shape)):
                got = "unknown" if v is None or v.shape is None else list(v.shape)
                raise PackageError(
                    f"cannot determine a static shape for {out!r}, output of node {node.name!r} "
                    f"({node.op_type}): {got}; fix symbolic input dims with --input-shape"
                )


def _is_static(shape: tuple) -> bool:
    return all(isinstance(d, int) and d >= 0 for d in shape)


def require_static_inputs(graph: Graph) -> None:
    for name in graph.inputs:
        shape = graph.values[name].shape
        if shape is None or not _is_static(shape):
            dims = "?" if shape is None else ",".join(str(d) for d in shape)
            raise PackageError(
                f"input {name!r} has shape [{dims}] with symbolic or unknown dims; "
                f"fix it with --input-shape {name}="
                + ",".join(str(d) if isinstance(d, int) else "N" for d in (shape or ["N"]))
            )
