"""The op registry (wasm_runtime/ops/registry.py) and the layout of wasm_runtime/ops/ that it relies on:
every family that lowers ops is listed, nothing registers itself on import, families import no private names
of each other and form no import cycle."""

from __future__ import annotations

import ast
import importlib
import math
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import wasm_runtime.ops as ops_package
from wasm_runtime import kernels
from wasm_runtime.ir import Graph, Node, Value
from wasm_runtime.lowering import Buf, lower, supported_ops
from wasm_runtime.ops import activation, registry
from wasm_runtime.ops.activation import ACTIVATIONS, CODES
from wasm_runtime.ops.registry import FAMILIES, REGISTRY

OPS_DIR = Path(ops_package.__file__).parent
MODULES = sorted(m.name for m in pkgutil.iter_modules([str(OPS_DIR)]))


def test_every_module_with_lowerings_is_a_listed_family():
    """A family module that is not in FAMILIES would have its ops silently unsupported."""
    listed = {f.__name__.rsplit(".", 1)[1] for f in FAMILIES}
    with_tables = {m for m in MODULES if hasattr(importlib.import_module(f"wasm_runtime.ops.{m}"), "LOWERINGS")}
    assert with_tables == listed


def test_registry_holds_each_family_table():
    for family in FAMILIES:
        for op, lowering in family.LOWERINGS.items():
            assert REGISTRY[op].wasm is lowering, op
            assert REGISTRY[op].spec is getattr(family, "SPECS", {}).get(op), op
    assert {"Conv", "FusedConv", "FusedGemm", "Softmax", "If", "LSTM"} <= set(REGISTRY)


def test_lowering_alone_knows_every_op():
    """lowering.lower() needs no other import (the webgl backend's used to complete the table)."""
    code = (
        "import sys; from wasm_runtime.lowering import supported_ops; from wasm_runtime.ops.registry import REGISTRY;"
        "print(len(supported_ops()), len(REGISTRY), 'wasm_runtime.webgl' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == out[1] and int(out[0]) >= 142 and out[2] == "False"


def _imports(module: str) -> list[tuple[str, list[str]]]:
    """(sibling module, names imported from it) for each `from .x import ...` / `from . import x` of a module."""
    tree = ast.parse((OPS_DIR / f"{module}.py").read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.append((node.module, [a.name for a in node.names]))
            else:
                found += [(a.name, []) for a in node.names]
    return found


def test_families_import_no_private_names_of_each_other():
    private = [(m, src, n) for m in MODULES for src, names in _imports(m) for n in names if n.startswith("_")]
    assert private == []


def test_no_import_cycle_between_families():
    graph = {m: {src for src, _ in _imports(m) if src in MODULES} for m in MODULES}

    def reaches(start: str, goal: str, seen: set) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph[start])

    cycles = [m for m in MODULES if reaches(m, m, {m})]
    assert cycles == []


def test_activation_codes_match_the_kernels_enum():
    """ops/activation.py's codes are the `act` argument of the C epilogues (kernels_wasm/common.h, enum ACT_*)."""
    header = (Path(kernels.KERNELS_DIR) / "common.h").read_text()
    enum = {m[0].replace("_", ""): int(m[1]) for m in re.findall(r"\bACT_(\w+)\s*=\s*(\d+)", header)}
    assert enum == {name.upper() or "NONE": code for name, code in CODES.items()}
    for name, act in ACTIVATIONS.items():
        assert act.kernel == "" or act.kernel in kernels.kernel_signatures(), name


def test_a_new_op_needs_only_a_row_in_its_family_table(monkeypatch):
    """What a newcomer does to add an op to an existing family: a lowering and one LOWERINGS row (no decorator,
    no import elsewhere); the registry and lower() then know it."""

    def toy(ctx, node):  # a Relu under another name, on the Relu kernel
        n = math.prod(ctx.shape(node.outputs[0]))
        ctx.emit("f32_relu", Buf(node.input(0)), Buf(node.outputs[0]), n)

    monkeypatch.setitem(activation.LOWERINGS, "ToyRelu", toy)
    monkeypatch.setattr(registry, "REGISTRY", registry.collect())
    values = {n: Value(n, np.dtype(np.float32), (2, 3)) for n in ("x", "y")}
    graph = Graph("g", [Node("ToyRelu", "toy", ["x"], ["y"])], values, ["x"], ["y"], 13)
    (step,) = lower(graph).steps
    assert (step.kernel, step.args[2], step.op) == ("f32_relu", 6, "ToyRelu")
    assert "ToyRelu" in supported_ops()


def test_webgl_has_glsl_for_exactly_the_activations_of_the_table():
    """A fused node's activation is named by ops/activation.py ACTIVATIONS; the WebGL shaders have GLSL for each
    (and for "", none), so an activation added to one table and not the other fails here, not on a GPU."""
    from wasm_runtime.ops.activation import ACTIVATIONS
    from wasm_runtime.webgl import glsl

    assert set(glsl.ACTIVATIONS) == {"", *ACTIVATIONS}
