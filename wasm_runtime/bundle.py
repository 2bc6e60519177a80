"""Write a web bundle: manifest.json (the plan), weights.bin and one kernel module per build variant.

The manifest is data, not code: every executor (the browser worker, the Python host) does the same thing:
instantiate the module on a memory of `memory.pages`, copy weights.bin to `memory.weights_offset`, run the
`init` steps once, then per run write inputs, call each step's kernel with its args, read outputs.
The format is documented in web/README.md.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import wasmtime

from .ir import Graph
from .kernels import VARIANTS, _uleb, build_module
from .lowering import Buf, Const, Derived, Lowered, Scratch
from .memory_map import MAX_THREADS, THREAD_STACK_BYTES, static_map
from .planner import MemoryPlan

FORMAT = "wasm-runtime-bundle"
FORMAT_VERSION = 1
MODULE_FILES = {variant: f"kernels-{variant}.wasm" for variant in VARIANTS}


def heap_base(module_bytes: bytes) -> int:
    """First address the module's stack and data do not use: the init value of its exported `__heap_base`
    global, read from the binary (instantiating a shared-memory module needs a shared memory)."""
    pos, inits, exported = 8, [], None
    while pos < len(module_bytes):
        section, pos = module_bytes[pos], pos + 1
        size, pos = _uleb(module_bytes, pos)
        body, pos = module_bytes[pos : pos + size], pos + size
        if section == 6:  # globals: valtype, mutability, init expr (i32.const n; end)
            count, q = _uleb(body, 0)
            for _ in range(count):
                q += 2
                assert body[q] == 0x41, "global init is not i32.const"
                value, q = _uleb(body, q + 1)  # __heap_base is a positive address: unsigned reads it right
                inits.append(value)
                q += 1  # end
        elif section == 7:  # exports: name, kind, index
            count, q = _uleb(body, 0)
            for _ in range(count):
                n, q = _uleb(body, q)
                name = body[q : q + n].decode()
                kind, (index, q) = body[q + n], _uleb(body, q + n + 1)
                if name == "__heap_base" and kind == 3:
                    exported = index
    if exported is None:
        raise ValueError("module does not export __heap_base")
    return inits[exported]  # no imported globals in these modules, so export index = section index


def _engine_config() -> wasmtime.Config:
    config = wasmtime.Config()
    config.wasm_simd = True
    config.wasm_relaxed_simd = True
    config.wasm_bulk_memory = True
    return config


def _number(x):
    """JSON has no inf/nan; executors read these strings back with Number() / float()."""
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    return x


def _step_json(step, resolve) -> dict:
    out = {"kernel": step.kernel, "args": [resolve(a) for a in step.args], "node": step.node, "op": step.op}
    if step.guard:
        out["when"] = [[resolve(Buf(cond)), int(value)] for cond, value in step.guard]
    if step.fail:
        out["fail"] = step.fail
    if step.split is not None:
        sp = step.split
        out["split"] = {"units": sp.units, "count": sp.count, "align": sp.align, "deltas": [list(d) for d in sp.deltas]}
    return out


def _tensor_entry(graph: Graph, plan: MemoryPlan, name: str, regions: dict[str, int]) -> dict:
    v = graph.values[name]
    region, offset = plan.relative_address(Buf(name))
    return {
        "name": name,
        "dtype": v.dtype.name,
        "shape": list(v.shape),
        "offset": regions[region] + offset,
        "bytes": v.nbytes,
    }


def write_bundle(
    graph: Graph,
    lowered: Lowered,
    plan: MemoryPlan,
    out_dir: Path,
    extra: dict | None = None,
    extra_files: dict[str, bytes] | None = None,
    variants: tuple[str, ...] | None = None,
) -> dict:
    """`variants` limits the kernel builds written (default: all of kernels.VARIANTS)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kernels = sorted(
        {s.kernel for s in lowered.steps if s.kernel}
        | ({"x32_fill"} if any(w.fill for w in plan.weights) else set())
        | {w.derived.kernel for w in plan.weights if w.derived is not None}
    )
    modules = {variant: build_module(kernels, variant) for variant in (variants or VARIANTS)}
    layout = static_map(max(heap_base(m) for m in modules.values()), plan.weights_bytes, plan.arena_bytes)
    base = layout.weights_offset
    regions = {"weights": base, "arena": layout.arena_offset}

    def resolve(arg):
        if isinstance(arg, (Buf, Const, Scratch, Derived)):
            region, offset = plan.relative_address(arg)
            return regions[region] + offset
        if arg is None:
            return 0
        if isinstance(arg, (bool, np.bool_)):
            return int(arg)
        if isinstance(arg, (np.integer, int)):
            return int(arg)
        return _number(float(arg))

    weights = bytearray(plan.weights_file_bytes)
    init = []
    for w in plan.weights:
        if w.fill:
            fill = np.ascontiguousarray(w.array.reshape(-1)[:1]).view(np.uint32)
            init.append(
                {
                    "kernel": "x32_fill",
                    "args": [base + w.offset, int(w.array.size), int(fill[0])],
                    "node": "",
                    "op": "fill",
                }
            )
        elif w.in_file:
            data = np.ascontiguousarray(w.array).tobytes()
            weights[w.offset : w.offset + len(data)] = data
    # after the fills, which a derived weight may read
    for w in plan.weights:
        if w.derived is not None:
            args = [resolve(a) for a in w.derived.args] + [base + w.offset]
            init.append({"kernel": w.derived.kernel, "args": args, "node": "", "op": w.derived.label})
    steps = [_step_json(s, resolve) for s in lowered.steps]

    files = {"weights.bin": bytes(weights)}
    files.update({MODULE_FILES[v]: m for v, m in modules.items()})
    files.update(extra_files or {})
    for name, data in files.items():
        (out_dir / name).write_bytes(data)

    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model": {"name": graph.name, "opset": graph.opset, "producer": graph.metadata.get("producer", "")},
        "inputs": [_tensor_entry(graph, plan, n, regions) for n in graph.inputs],
        "outputs": [_tensor_entry(graph, plan, n, regions) for n in graph.outputs],
        "memory": {
            "pages": layout.pages,
            "weights_offset": regions["weights"],
            "weights_file_bytes": plan.weights_file_bytes,
            "weights_bytes": plan.weights_bytes,
            "arena_offset": regions["arena"],
            "arena_bytes": plan.arena_bytes,
        },
        "threads": {
            "max": MAX_THREADS,
            "control_offset": layout.control_offset,
            "stacks_offset": layout.stacks_offset,
            "stack_bytes": THREAD_STACK_BYTES,
        },
        "kernels": {"exports": kernels, "modules": {v: MODULE_FILES[v] for v in modules}},
        "init": init,
        "steps": steps,
        "files": {
            name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in files.items()
        },
        "stats": {
            "nodes": len(graph.nodes),
            "steps": len(steps),
            "init": len(init),
            "arena_peak_bytes": plan.arena_bytes,
            "arena_unshared_bytes": plan.unshared_bytes,
            "weights_bytes": plan.weights_bytes,
            "weights_file_bytes": plan.weights_file_bytes,
            "op_counts": graph.op_counts(),
        },
    }
    if extra:
        manifest.update(extra)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
