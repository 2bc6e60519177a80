"""Kernel signatures read from the C sources, and the checks LoweringContext.emit makes with them."""

from __future__ import annotations

import numpy as np
import pytest

from wasm_runtime.ir import Graph, Node, Value
from wasm_runtime.kernels import kernel_index, kernel_signatures
from wasm_runtime.lowering import Buf, LoweringContext


def test_every_exported_kernel_has_a_signature():
    signatures = kernel_signatures()
    assert set(signatures) == set(kernel_index())
    for name, params in signatures.items():
        assert params and len(set(params)) == len(params), name
        assert all(p.isidentifier() and p not in ("int", "float", "void") for p in params), (name, params)


@pytest.mark.parametrize(
    "kernel, params",
    [
        # a plain KERNEL declaration
        ("f32_softmax", ("outer", "axis", "inner", "x", "y")),
        # a macro whose body declares the kernel (f32-vmath-wasmsimd.c's UNARY1_KERNEL)
        ("f32_thresholded_relu", ("x", "y", "n", "a")),
        # a macro expanding another macro with the same name first (binary-walk.h's WALK2_EXPORT)
        ("f32_max", ("layout", "start", "count", "a", "b", "y")),
    ],
    ids=["direct", "macro", "nested-macro"],
)
def test_signature_forms(kernel, params):
    assert kernel_signatures()[kernel] == params


def test_conv2d_signature_names_what_the_thread_split_moves():
    params = kernel_signatures()["f32_conv2d"]
    assert len(params) == 28
    assert {"OH", "PT", "y", "workspace", "residual", "x", "w", "bias"} <= set(params)


def _context() -> LoweringContext:
    values = {n: Value(n, np.dtype(np.float32), (2, 8)) for n in ("x", "y")}
    graph = Graph("g", [Node("Softmax", "soft", ["x"], ["y"])], values, ["x"], ["y"], 13)
    ctx = LoweringContext(graph)
    ctx.node = graph.nodes[0]
    return ctx


def test_emit_names_the_split_arguments():
    ctx = _context()
    ctx.emit("f32_softmax", 2, 8, 1, Buf("x"), Buf("y"), split=(2, "outer", {"x": 32, "y": 32}))
    (step,) = ctx.out.steps
    assert step.split.count == 0 and step.split.deltas == ((3, 32), (4, 32))


@pytest.mark.parametrize(
    "args, split, message",
    [
        ((2, 8, 1, Buf("x")), None, r"node 'soft' \(Softmax\): kernel f32_softmax takes 5 arguments .* passed 4"),
        ((2, 8, 1, Buf("x"), Buf("y"), 0), None, r"kernel f32_softmax takes 5 arguments \(outer, axis, inner"),
        ((2, 8, 1, Buf("x"), Buf("y")), (2, "rows", {"x": 32}), r"kernel f32_softmax has no parameter rows"),
        ((2, 8, 1, Buf("x"), Buf("y")), (2, "outer", {3: 32}), r"has no parameter 3"),
    ],
    ids=["too-few", "too-many", "unknown-count", "positional-delta"],
)
def test_emit_refuses_arguments_that_do_not_fit_the_c_signature(args, split, message):
    with pytest.raises(TypeError, match=message):
        _context().emit("f32_softmax", *args, split=split)


def test_emit_refuses_an_unknown_kernel():
    with pytest.raises(TypeError, match=r"node 'soft' \(Softmax\): no kernel named 'f32_nope'"):
        _context().emit("f32_nope", 1)
