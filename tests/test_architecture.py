"""The house rules of issue #17, checked on the whole tree: no Python module of wasm_runtime/ and no JS module of
web/ over ~600 lines, and no import cycle among them (function-level imports included: a cycle hidden in a
function is still one module needing the other)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "wasm_runtime"
WEB = ROOT / "web"
MAX_LINES = 620  # "~600"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def python_imports() -> dict[str, set[str]]:
    """module -> the wasm_runtime modules it imports (a `from . import x` counts as importing the submodule x,
    not the package it is in)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ""
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
                found |= set(subs) if subs or node.module is None else {target}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def js_imports() -> dict[str, set[str]]:
    graph = {}
    for path in WEB.glob("*.js"):
        text = path.read_text()
        targets = re.findall(r"""^\s*(?:import|export)\b[^;]*?from\s+["']\./([\w.-]+)["']""", text, re.M)
        targets += re.findall(r"""import\(\s*["']\./([\w.-]+)["']\s*\)""", text)
        graph[path.name] = set(targets) - {path.name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_in_wasm_runtime():
    graph = python_imports()
    assert graph["wasm_runtime.package"] >= {"wasm_runtime.importer", "wasm_runtime.lowering"}  # the parser works
    assert cycles(graph) == []


def test_no_import_cycle_in_web():
    graph = js_imports()
    assert "threads.js" in graph["worker.js"]  # the parser works
    assert cycles(graph) == []


def test_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_over_600_lines():
    files = [*PACKAGE.rglob("*.py"), *WEB.glob("*.js")]
    long = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
