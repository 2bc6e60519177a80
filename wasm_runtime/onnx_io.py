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
    # protobuf hands a string field that is not UTF-8 back as bytes (or fails reading it), and fails only
    # when the string is written again: a malformed file either way
    where = "graph"
    try:
        for name, where in _names(model.graph):  # noqa: B007 - read in the except clause
            if isinstance(name, bytes):
                raise UnicodeDecodeError("utf-8", name, 0, len(name), "not UTF-8")
    except UnicodeDecodeError:
        raise PackageError(f"{source}: not a valid ONNX model (a name in {where} is not valid UTF-8)") from None
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


def check_tensor_io(graph: onnx.GraphProto) -> None:
    """Graph inputs and outputs are tensors (an untyped output is inferred later): sequences, maps and
    optionals are not supported."""
    inits = {i.name for i in graph.initializer}
    for kind, infos in (("input", [i for i in graph.input if i.name not in inits]), ("output", graph.output)):
        for info in infos:
            which = info.type.WhichOneof("value")
            if which not in (None, "tensor_type"):
                raise PackageError(f"{kind} {info.name!r} is a {which}; only tensor {kind}s are supported")


def check_model(model: onnx.ModelProto) -> None:
    check_tensor_io(model.graph)
    opset = default_opset(model)
    if opset > MAX_OPSET or (opset < MIN_OPSET and not _same_as_min_opset(model, opset)):
        raise PackageError(f"opset {opset} is not supported (supported: {MIN_OPSET}..{MAX_OPSET})")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0]
        raise PackageError(f"the model is malformed: {first}") from None


# dim_param values exporters write for "unknown" rather than as a name shared between dims (paddle2onnx: "?")
_ANONYMOUS_DIMS = {"", "?", "-1", "None", "none", "unk", "dynamic"}


def name_unknown_dims(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give every unknown dim of the graph inputs a name of its own, so it can stay symbolic: dims declared as -1
    (paddle2onnx), without value or name, or named "?" (which names no shared size). Two dims with the same
    real name keep it: ONNX says they are equal. Returns the model itself when nothing needs a name.

        x: [-1, 3, "?", "?"]   =>   x: ["x_dim0", 3, "x_dim2", "x_dim3"]
    """
    inits = {i.name for i in model.graph.initializer}

    def anonymous(d) -> bool:
        if d.HasField("dim_value"):
            return d.dim_value < 0
        return d.dim_param.strip() in _ANONYMOUS_DIMS

    inputs = [i for i in model.graph.input if i.name not in inits and i.type.HasField("tensor_type")]
    if not any(anonymous(d) for i in inputs for d in i.type.tensor_type.shape.dim):
        return model
    model = onnx.ModelProto.FromString(model.SerializeToString())
    taken = {d.dim_param for i in model.graph.input for d in i.type.tensor_type.shape.dim if d.dim_param}
    for inp in model.graph.input:
        if inp.name in inits or not inp.type.HasField("tensor_type"):
            continue
        for axis, d in enumerate(inp.type.tensor_type.shape.dim):
            if anonymous(d):
                name = f"{inp.name}_dim{axis}"
                while name in taken:
                    name += "_"
                taken.add(name)
                d.dim_param = name  # clears dim_value (a oneof)
    return model


def fix_input_shapes(model: onnx.ModelProto, input_shapes: dict[str, list]) -> onnx.ModelProto:
    """Replace the declared shape of graph inputs (e.g. a symbolic batch) by concrete sizes. A dim given as a
    name instead of a number stays symbolic under that name (`x=1,3,48,width` fixes all but the width)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {i.name for i in model.graph.initializer}
    inputs = {i.name: i for i in model.graph.input if i.name not in inits}
    for name, dims in input_shapes.items():
        if name not in inputs:
            raise PackageError(f"--input-shape names {name!r}, but the model's inputs are {sorted(inputs)}")
        shape = inputs[name].type.tensor_type.shape
        if shape.dim and len(shape.dim) != len(dims):
            raise PackageError(f"--input-shape {name}: the model declares rank {len(shape.dim)}, got {dims}")
        for d in dims:
            if isinstance(d, str) and not d.strip():
                raise PackageError(f"--input-shape {name}: empty dim in {dims}")
            if not isinstance(d, str) and int(d) < 0:
                raise PackageError(f"--input-shape {name}: dims must be >= 0 or a name, got {list(dims)}")
        del shape.dim[:]
        for d in dims:
            if isinstance(d, str):
                shape.dim.add().dim_param = d.strip()
            else:
                shape.dim.add().dim_value = int(d)
    return model


def _attr_value(attr: onnx.AttributeProto):
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, onnx.TensorProto):
        return tensor_array(value, f"attribute {attr.name!r}")
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


def _dtype(elem_type: int, what: str = "a tensor") -> np.dtype:
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, ValueError, TypeError):
        raise PackageError(f"{what} has element type {elem_type}, which is not an ONNX tensor type") from None


def tensor_array(t: onnx.TensorProto, what: str) -> np.ndarray:
    """numpy_helper.to_array, with a PackageError naming `what` when its data does not fit its dims and type."""
    try:
        return numpy_helper.to_array(t)
    except PackageError:
        raise
    except Exception as exc:  # ValueError (bytes vs dims), KeyError (data_type), OverflowError (dims >= 2^63)...
        dims = list(t.dims)
        raise PackageError(
            f"{what}: its data does not match its dims {dims} and element type {t.data_type} ({exc})"
        ) from None


def _names(graph: onnx.GraphProto, where: str = "graph"):
    """Every name in a graph and its subgraphs (read once here so that invalid UTF-8 fails now, not later)."""
    for vi in [*graph.input, *graph.output, *graph.value_info]:
        yield vi.name, f"{where} value"
    for t in graph.initializer:
        yield t.name, f"{where} initializer"
    for i, n in enumerate(graph.node):
        yield n.name, f"{where} node #{i}"
        yield n.op_type, f"{where} node #{i}"
        yield n.domain, f"{where} node #{i}"
        for name in [*n.input, *n.output]:
            yield name, f"{where} node #{i}"
        for a in n.attribute:
            yield a.name, f"{where} node #{i}"
            for g in [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs):
                yield from _names(g, f"{where} node #{i}'s subgraph")


def _shape(type_proto: onnx.TypeProto) -> tuple | None:
    tt = type_proto.tensor_type
    if not tt.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim)


_SHAPE_ONLY = "wasm_runtime: data dropped (shape_only_model)"


def shape_only_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy without the data of large initializers, for imports that only need shapes (the dynamic-shape
    probes import a model dozens of times): to_graph makes them zero-stride views of their dtype and shape.
    Shape arithmetic reads small tensors only (see _SHAPE_ONLY_ELEMENTS)."""
    light = onnx.ModelProto()
    light.CopyFrom(model)
    del light.graph.initializer[:]
    for init in model.graph.initializer:
        t = light.graph.initializer.add()
        if int(np.prod(init.dims, dtype=np.int64)) > _SHAPE_ONLY_ELEMENTS and init.data_location != 1:
            t.name, t.data_type, t.doc_string = init.name, init.data_type, _SHAPE_ONLY
            t.dims.extend(init.dims)
        else:
            t.CopyFrom(init)
    return light


def to_graph(model: onnx.ModelProto) -> Graph:
    """Convert a checked model. Graph inputs that also have an initializer (the IR < 4 convention) are
    constants, as every runtime that ships models treats them."""
    g = model.graph
    opset = default_opset(model)
    values: dict[str, Value] = {}
    for init in g.initializer:
        if init.doc_string == _SHAPE_ONLY:
            dtype = _dtype(init.data_type, f"initializer {init.name!r}")
            data = np.broadcast_to(np.zeros(1, dtype).reshape(()), tuple(init.dims))
        else:
            data = tensor_array(init, f"initializer {init.name!r}")
        values[init.name] = Value(init.name, data.dtype, tuple(data.shape), data)
    inputs = []
    for inp in g.input:
        if inp.name in values:
            continue
        if not inp.type.HasField("tensor_type"):
            raise PackageError(f"input {inp.name!r} is not a tensor; only tensor inputs are supported")
        dtype = _dtype(inp.type.tensor_type.elem_type, f"input {inp.name!r}")
        values[inp.name] = Value(inp.name, dtype, _shape(inp.type))
        inputs.append(inp.name)
    # declared value_info and output shapes are hints that exporters get wrong (a rank-2 output declared for a
    # rank-3 result; onnxruntime only warns): shapes come from inference, and a declared static shape is used
    # only where inference has none (a size that depends on data, see importer.use_declared_shapes)
    for info in g.output:
        if info.name not in values and info.type.HasField("tensor_type"):
            dtype = _dtype(info.type.tensor_type.elem_type, f"output {info.name!r}")
            values[info.name] = Value(info.name, dtype, None)
    declared = {}
    for info in [*g.value_info, *g.output]:
        shape = _shape(info.type) if info.type.HasField("tensor_type") else None
        if info.name not in values or not values[info.name].is_const:
            if shape is not None and is_static(shape):
                declared[info.name] = shape
    nodes = []
    names: set[str] = set()
    for i, n in enumerate(g.node):
        name = n.name or f"{n.op_type}_{i}"
        while name in names:  # exporters sometimes reuse names; the plan and error messages need unique ones
            name += "_"
        names.add(name)
        nodes.append(node_from_proto(n, opset, name))
    metadata = {
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "ir_version": model.ir_version,
        "declared_shapes": declared,
    }
    return Graph(g.name or "model", nodes, values, inputs, [o.name for o in g.output], opset, metadata)


def node_from_proto(n: onnx.NodeProto, opset: int, name: str | None = None) -> Node:
    return Node(n.op_type, name or n.name, list(n.input), list(n.output), _attrs_with_defaults(n, opset), n.domain)


def _attr_for_onnx(value):
    """Tensor attributes are numpy arrays in the IR (ConstantOfShape's value...): back to TensorProto, which
    make_node would otherwise turn into a list of numbers."""
    return numpy_helper.from_array(value) if isinstance(value, np.ndarray) else value


def to_onnx(graph: Graph, shapes_only: bool = False) -> onnx.ModelProto:
    """Rebuild an ONNX model from the IR. With shapes_only, large constants become typed graph inputs
    (enough for shape inference, and zero-stride views are never expanded). A run-time If (its branches planned
    as IR graphs, control.py) is left out and its outputs become typed inputs: this is for shape inference."""
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
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)  # None: any

    nodes = []
    for n in graph.nodes:
        if any(isinstance(v, Graph) for v in n.attrs.values()):
            # a run-time If, whose branches are IR graphs already planned: its outputs' shapes are known, so
            # inference sees them as inputs
            extra_inputs += [info(o) for o in n.outputs if o]
            continue
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


def _inferred(model: onnx.ModelProto, strict: bool) -> tuple[onnx.ModelProto | None, str]:
    """onnx shape inference with data propagation, and without it when that fails: onnx's data propagation
    treats small int tensors as shapes and can trip over real data (a broadcasting Add of a range and a mask),
    which our own constant folding covers. (model or None, the first line of the error)."""
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=strict, data_prop=True), ""
    except Exception as exc:
        try:
            return onnx.shape_inference.infer_shapes(model, strict_mode=strict, data_prop=False), ""
        except Exception:
            return None, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def infer_shapes(graph: Graph, require_static: bool = True, strict: bool = True) -> None:
    """Fill in dtype and shape of every value via onnx shape inference; fail naming the first node whose
    output shape stays unknown (the planner needs every size), unless require_static is False. With strict
    False, nodes whose inference fails are skipped (a branch not taken yet, a node a later fold removes) and
    everything else is still inferred."""
    inferred, error = _inferred(to_onnx(graph, shapes_only=True), strict)
    if inferred is None:
        if strict:
            raise PackageError(f"shape inference failed: {error}")
        return
    g = inferred.graph
    for info in [*g.value_info, *g.output]:
        if not info.type.HasField("tensor_type"):
            continue
        v = graph.values.get(info.name)
        shape = _shape(info.type)
        if v is None:
            graph.values[info.name] = Value(info.name, _dtype(info.type.tensor_type.elem_type), shape)
        elif not v.is_const and shape is not None and (v.shape is None or not is_static(v.shape)):
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
            if out not in used or (v is not None and v.shape is not None and is_static(v.shape)):
                continue
            got = "unknown" if v is None or v.shape is None else list(v.shape)
            where = f"{out!r}, output of node {node.name!r} ({node.op_type})"
            if v is not None and v.shape is not None and any(isinstance(d, int) and d < 0 for d in v.shape):
                raise PackageError(
                    f"{where} would have the shape {got}: the input sizes are too small for this model"
                )
            _, error = _inferred(to_onnx(graph, shapes_only=True), strict=True)
            reason = f" (shape inference: {error})" if error else ""
            raise PackageError(
                f"cannot determine a static shape for {where}: {got}{reason}; "
                "fix symbolic input dims with --input-shape"
            )


def is_static(shape: tuple) -> bool:
    return all(isinstance(d, int) and d >= 0 for d in shape)


def require_static_inputs(graph: Graph) -> None:
    for name in graph.inputs:
        shape = graph.values[name].shape
        if shape is None or not is_static(shape):
            dims = "?" if shape is None else ",".join(str(d) for d in shape)
            raise PackageError(
                f"input {name!r} has shape [{dims}] with symbolic or unknown dims; "
                f"fix it with --input-shape {name}="
                + ",".join(str(d) if isinstance(d, int) else "N" for d in (shape or ["N"]))
            )
