"""Control flow: `If`.

An If whose condition folds to a constant (exporters branch on ranks, shapes, sample rates fixed by the
input shape...) is replaced by the branch it takes, as soon as the condition is known and before strict shape
inference sees the other branch: a branch not taken may not even be valid for these shapes (a Conv for another
rank), and only the branch taken ships.

    If(cond = True, then: {t = Relu(x)}, else: {...}) -> y     =>   If/then/t = Relu(x); y = Identity(If/then/t)

An If whose condition is known only at run time becomes a run-time `If` (`plan_runtime_if`): each branch is a
subgraph of its own, imported, optimized and lowered like a model whose inputs are the outer values it reads,
and the executor runs the steps of the branch the condition picks (guarded steps: lowering.Step.guard). Both
branches must give each output the same dtype and static shape, since the plan after the If has one shape.

    If(cond, then: {...}, else: {...}) -> y   =>   If(cond, x1, x2...; then_graph=Graph, else_graph=Graph) -> y
                                                   (x1, x2...: the outer values the branches read)
"""

from __future__ import annotations

import onnx
from onnx import helper, numpy_helper

from .errors import PackageError
from .ir import Graph, Node, Value

BRANCHES = ("then_branch", "else_branch")
SUBGRAPHS = ("then_graph", "else_graph")  # a run-time If's planned branches (ir.Graph)


def is_if(node: Node) -> bool:
    return node.op_type == "If" and node.domain in ("", "ai.onnx")


def is_runtime_if(node: Node) -> bool:
    return is_if(node) and isinstance(node.attrs.get("then_graph"), Graph)


def _produced(graph: onnx.GraphProto) -> set[str]:
    names = {i.name for i in graph.initializer}
    for n in graph.node:
        names.update(o for o in n.output if o)
    return names


def _subgraphs(node: onnx.NodeProto):
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            yield a.g
        elif a.type == onnx.AttributeProto.GRAPHS:
            yield from a.graphs


def _rename_graph_refs(graph: onnx.GraphProto, mapping: dict[str, str]) -> None:
    """Rename references in a nested subgraph (e.g. an If inside a branch) that point at renamed names,
    except where the subgraph defines the name itself."""
    local = _produced(graph) | {i.name for i in graph.input}
    inner = {k: v for k, v in mapping.items() if k not in local}
    for n in graph.node:
        for i, name in enumerate(n.input):
            if name in inner:
                n.input[i] = inner[name]
        for g in _subgraphs(n):
            _rename_graph_refs(g, inner)
    for o in graph.output:
        if o.name in inner:
            o.name = inner[o.name]


def _inline_branch(branch: onnx.GraphProto, prefix: str, taken: set[str]) -> tuple[list, list[str]]:
    """(nodes, output names) of a branch body with every name it defines (values and node names) made unique
    in the enclosing graph; its initializers become Constant nodes."""
    mapping = {}
    for name in sorted(_produced(branch)):
        new = f"{prefix}{name}"
        while new in taken:
            new += "_"
        taken.add(new)
        mapping[name] = new

    def node_name(base: str) -> str:
        while base in taken:
            base += "_"
        taken.add(base)
        return base

    nodes = []
    for init in branch.initializer:
        nodes.append(
            helper.make_node(
                "Constant",
                [],
                [mapping[init.name]],
                name=node_name(f"{prefix}{init.name}/const"),
                value=numpy_helper.from_array(numpy_helper.to_array(init)),
            )
        )
    for i, n in enumerate(branch.node):
        m = onnx.NodeProto()
        m.CopyFrom(n)
        m.name = node_name(f"{prefix}{n.name or f'{n.op_type}_{i}'}")
        m.input[:] = [mapping.get(x, x) for x in n.input]
        m.output[:] = [mapping.get(x, x) for x in n.output]
        for g in _subgraphs(m):
            _rename_graph_refs(g, mapping)
        nodes.append(m)
    return nodes, [mapping.get(o.name, o.name) for o in branch.output]


def _free_names(nodes, outputs=()) -> list[str]:
    """Names that nodes (and the subgraphs in their attributes) read without defining them, in first-use
    order: what a branch takes from the scopes around it."""
    defined: set[str] = set()
    free: list[str] = []

    def read(name):
        if name and name not in defined and name not in free:
            free.append(name)

    for n in nodes:
        for name in n.input:
            read(name)
        for g in _subgraphs(n):
            inner = {i.name for i in g.initializer} | {i.name for i in g.input}
            for name in _free_names(g.node, [o.name for o in g.output]):
                if name not in inner:
                    read(name)
        defined.update(o for o in n.output if o)
    for name in outputs:
        read(name)
    return free


def _names(graph: Graph) -> set[str]:
    return set(graph.values) | {n.name for n in graph.nodes} | {o for n in graph.nodes for o in n.outputs}


def _branch(node: Node, key: str) -> onnx.GraphProto:
    branch = node.attrs.get(key)
    if not isinstance(branch, onnx.GraphProto):
        raise PackageError(f"node {node.name!r} (If): needs then_branch and else_branch")
    if len(branch.output) != len(node.outputs):
        raise PackageError(
            f"node {node.name!r} (If): its {key} has {len(branch.output)} outputs, the node {len(node.outputs)}"
        )
    return branch


def resolve_constant_ifs(graph: Graph) -> int:
    """Replace each If whose condition is a constant by the nodes of the branch it takes (see the module
    docstring). Returns how many were replaced."""
    from .onnx_io import node_from_proto

    count = 0
    taken = None
    nodes: list[Node] = []
    for node in graph.nodes:
        cond = graph.const(node.input(0)) if is_if(node) and not is_runtime_if(node) else None
        if cond is None:
            nodes.append(node)
            continue
        if cond.size != 1:
            raise PackageError(f"node {node.name!r} (If): the condition has {cond.size} elements; it must have one")
        if taken is None:
            taken = _names(graph)
        key = BRANCHES[0] if bool(cond.reshape(-1)[0]) else BRANCHES[1]
        body, outs = _inline_branch(_branch(node, key), f"{node.name}/{key.split('_')[0]}/", taken)
        nodes.extend(node_from_proto(p, graph.opset) for p in body)
        for k, (src, dst) in enumerate(zip(outs, node.outputs, strict=True)):
            if dst:
                name = f"{node.name}/output{k}"
                while name in taken:
                    name += "_"
                taken.add(name)
                nodes.append(Node("Identity", name, [src], [dst]))
        count += 1
    graph.nodes = nodes
    return count


def branch_model(graph: Graph, node: Node, key: str) -> tuple[onnx.ModelProto, dict[str, Value]]:
    """A branch of a run-time If as a model of its own: the outer values it reads are its inputs, its names
    are prefixed so they stay unique next to the enclosing graph's. Returns the model and the outer constants it
    reads (inputs of the model, to be made constants of the subgraph: they are not copied through protobuf)."""
    body, outs = _inline_branch(_branch(node, key), f"{node.name}/{key.split('_')[0]}/", _names(graph))
    inputs, constants = [], {}
    for name in _free_names(body, outs):
        v = graph.values.get(name)
        if v is None or v.shape is None or not all(isinstance(d, int) and d >= 0 for d in v.shape):
            got = "unknown" if v is None or v.shape is None else list(v.shape)
            raise PackageError(
                f"node {node.name!r} (If): its {key} reads {name!r}, whose shape is not known statically ({got})"
            )
        if v.is_const:
            constants[name] = v
        inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape))
    g = helper.make_graph(body, f"{node.name}/{key}", inputs, [helper.make_empty_tensor_value_info(o) for o in outs])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", graph.opset)])
    model.ir_version = max(int(graph.metadata.get("ir_version", 0) or 0), 4)
    return model, constants


def plan_runtime_if(graph: Graph, node: Node, settle) -> None:
    """Turn an If with a run-time condition into a run-time If (module docstring): each branch is imported by
    `settle` (the importer's fold/infer fixed point) as a subgraph; the outputs must agree in dtype and shape."""
    from .onnx_io import to_graph

    cond = graph.values.get(node.input(0))
    if cond is None or cond.shape is None or _size(cond.shape) != 1:
        got = "unknown" if cond is None or cond.shape is None else list(cond.shape)
        raise PackageError(f"node {node.name!r} (If): the condition must have one element (shape {got})")
    subs, errors = [], []
    for key in BRANCHES:
        model, constants = branch_model(graph, node, key)
        sub = to_graph(model)
        sub.metadata["probe"] = graph.metadata.get("probe", False)
        for name, v in constants.items():
            sub.values[name] = v
            sub.inputs.remove(name)
        try:
            settle(sub)
        except PackageError as exc:
            # a branch may be invalid for these input shapes (silero-vad's 8 kHz model on a 16 kHz-sized
            # input): onnxruntime fails if a run takes it, and so does the plan, with this message
            sub = Graph(sub.name, [], {}, [], [], sub.opset, {"cannot_run": str(exc)})
            errors.append(str(exc))
        subs.append(sub)
    if len(errors) == len(subs):
        raise PackageError(f"node {node.name!r} (If): neither branch can run with these input shapes: {errors[0]}")
    then, other = subs
    for k, y in enumerate(node.outputs):
        if errors:
            valid = then if not then.metadata.get("cannot_run") else other
            v = valid.values[valid.outputs[k]]
            if y:
                graph.values[y] = Value(y, v.dtype, tuple(v.shape))
            continue
        vt, ve = then.values[then.outputs[k]], other.values[other.outputs[k]]
        if tuple(vt.shape) != tuple(ve.shape) or vt.dtype != ve.dtype:
            raise PackageError(
                f"node {node.name!r} (If): the branches give different outputs ({vt.dtype.name} {list(vt.shape)} vs "
                f"{ve.dtype.name} {list(ve.shape)}) and the condition is only known at run time; "
                "outputs whose shape depends on a run-time condition are not supported"
            )
        if y:
            graph.values[y] = Value(y, vt.dtype, tuple(vt.shape))
    for key, sub in zip(BRANCHES, subs, strict=True):
        if sub.metadata.get("cannot_run"):
            graph.metadata.setdefault("warnings", []).append(
                f"node {node.name!r} (If): the {key.split('_')[0]} branch cannot run with these input shapes "
                f"({sub.metadata['cannot_run']}); a run whose condition takes it stops with an error"
            )
    captured = list(dict.fromkeys(name for sub in subs for name in sub.inputs))
    node.inputs = [node.input(0), *captured]
    # the names the branches read, in the order of node.inputs[1:]: passes on the enclosing graph rename its
    # inputs (not the branches), and the lowering renames the branches to match
    node.attrs = {"then_graph": then, "else_graph": other, "captured": captured}


def _size(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
