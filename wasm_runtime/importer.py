"""ONNX file -> IR graph with every shape static: the front end every packaging starts with.

    load + check  ->  name unknown input dims  ->  fix --input-shape  ->  IR
      ->  fixed point of { resolve Ifs with constant conditions; fold constants; infer shapes }
      ->  plan the Ifs left (run-time conditions) as subgraphs  ->  every used value has a static shape

One round is not enough: shape arithmetic (Shape -> Gather -> Concat -> Reshape, Range lengths) folds once the
shapes it reads are inferred, the shapes after it are inferred once it has folded, and an If's condition often
depends on both. Rounds go on until a round changes nothing. Inference runs non-strict inside the loop (a node
that cannot be inferred yet, e.g. in a branch a later round removes, must not stop the others) and the reason
of any shape still unknown at the end comes from a strict run, in the error.
"""

from __future__ import annotations

import onnx

from . import control, onnx_io, validate
from .errors import PackageError
from .fold import fold_constants
from .ir import Graph
from .lowering import unsupported_listing

MAX_ROUNDS = 50


def check_domains(model: onnx.ModelProto) -> None:
    """Ops of other domains cannot even be shape-inferred: report them before trying."""
    foreign = [
        (f"{n.domain}.{n.op_type}", n.name or f"#{i}")
        for i, n in enumerate(model.graph.node)
        if n.domain not in ("", "ai.onnx")
    ]
    message = unsupported_listing(foreign)
    if message:
        raise PackageError(message)


def import_model(
    source,
    input_shapes: dict[str, list] | None = None,
    no_fold: set[str] | None = None,
    check: bool = True,
    probe: bool = False,
) -> tuple[onnx.ModelProto, Graph]:
    """Load, validate and convert; returns the (shape-fixed) ONNX model and its IR with static shapes.
    Values named in `no_fold` are never replaced by constants (see package._package_dynamic). `check` False
    skips the checker, for a model already checked (the dynamic-shape probes import one model many times).
    `probe`: only the shapes matter (domain.py imports at sizes no bundle would run at, a batch of 512 among
    them), so no tensor is held to the size a plan can have."""
    model = onnx_io.load_model(source)
    if check:
        onnx_io.check_model(model)
        check_domains(model)
    model = onnx_io.name_unknown_dims(model)
    if input_shapes:
        model = onnx_io.fix_input_shapes(model, input_shapes)
    graph = onnx_io.to_graph(model)
    if no_fold:
        graph.metadata["no_fold"] = set(no_fold)
    if probe:
        graph.metadata["probe"] = True
    onnx_io.require_static_inputs(graph)
    settle(graph)
    return model, graph


def _state(graph: Graph) -> tuple:
    known = sum(1 for v in graph.values.values() if v.shape is not None and onnx_io.is_static(v.shape))
    return len(graph.nodes), known, sum(1 for _ in graph.constants())


def fixed_point(graph: Graph) -> None:
    """Resolve constant Ifs, fold and infer (non-strict) until a round changes nothing."""
    for _ in range(MAX_ROUNDS):
        before = _state(graph)
        control.resolve_constant_ifs(graph)
        fold_constants(graph)
        onnx_io.infer_shapes(graph, require_static=False, strict=False)
        if _state(graph) == before:
            return
    raise PackageError(f"constant folding and shape inference did not settle after {MAX_ROUNDS} rounds")


def use_declared_shapes(graph: Graph) -> int:
    """Values inference leaves unknown (an output whose size depends on data: CenterCropPad to a run-time shape,
    NonZero) take the static shape the model declares for them, if any; kernels of such ops check the size
    they get at run time. Declared shapes never override inferred ones. Returns how many were used."""
    used = 0
    produced = {o for n in graph.nodes for o in n.outputs if o}
    for name, shape in graph.metadata.get("declared_shapes", {}).items():
        v = graph.values.get(name)
        if name not in produced or v is None or v.is_const:
            continue
        if v.shape is None or not onnx_io.is_static(v.shape):
            v.shape = tuple(shape)
            used += 1
    return used


def _declared_shape_warnings(graph: Graph) -> list[str]:
    out = []
    for name, shape in graph.metadata.get("declared_shapes", {}).items():
        v = graph.values.get(name)
        if v is not None and v.shape is not None and tuple(v.shape) != tuple(shape):
            out.append(f"the model declares {name!r} as {list(shape)}; shape inference gives {list(v.shape)}, used")
    return out


def settle(graph: Graph) -> None:
    """Bring an IR graph whose inputs have static shapes to static shapes everywhere (module docstring)."""
    while True:
        fixed_point(graph)
        if use_declared_shapes(graph):
            fixed_point(graph)
        pending = [n for n in graph.nodes if control.is_if(n) and not control.is_runtime_if(n)]
        if not pending:
            break
        for node in pending:
            control.plan_runtime_if(graph, node, settle)
    onnx_io.require_static_shapes(graph)
    # what onnxruntime refuses and shape inference lets through
    validate.check_graph(graph, None if graph.metadata.get("probe") else validate.MAX_TENSOR_BYTES)
    graph.metadata.setdefault("warnings", []).extend(_declared_shape_warnings(graph))
