"""How packaging time grows with graph size: chains of Relu and Add nodes and a Concat of many inputs, each
packaged (import, optimizer, lowering, memory plan, bundle) at several sizes in one run. Near-linear growth
shows as a flat time per node; a quadratic pass shows as time per node growing with the size.

    python benchmarks/packaging_scale.py [--sizes 1000,4000,10000] [--write]

Kernel modules are cached after the first packaging (wasm_runtime/kernels.py), so the times are the tooling's.
`--write` replaces this script's section of RESULTS.md (between its markers).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import benchlib
import numpy as np
from onnx import TensorProto, helper, numpy_helper

from wasm_runtime.package import package


def _model(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def relu_chain(n: int):
    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"]) for i in range(n)]
    return _model(nodes, [_f32("t0", [64])], [_f32(f"t{n}", [64])])


def add_chain(n: int):
    nodes = [helper.make_node("Add", [f"t{i}", "c"], [f"t{i + 1}"]) for i in range(n)]
    inits = [numpy_helper.from_array(np.ones(64, np.float32), "c")]
    return _model(nodes, [_f32("t0", [64])], [_f32(f"t{n}", [64])], inits)


def concat_of(n: int):
    """n inputs computed from x (Relu, Sigmoid in turn), concatenated: each producer writes into its slice."""
    ops = ("Relu", "Sigmoid")
    nodes = [helper.make_node(ops[i % 2], ["x"], [f"r{i}"]) for i in range(n)]
    nodes.append(helper.make_node("Concat", [f"r{i}" for i in range(n)], ["y"], axis=0))
    return _model(nodes, [_f32("x", [4])], [_f32("y", [4 * n])])


GRAPHS = {"Relu chain": relu_chain, "Add chain": add_chain, "Concat of n inputs": concat_of}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,4000,10000", help="graph sizes (nodes) to package")
    p.add_argument("--write", action="store_true", help="write the table into benchmarks/RESULTS.md")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        package(relu_chain(8), Path(tmp) / "warm", variants=("simd",))  # kernel build, off the clock
        for label, build in GRAPHS.items():
            for n in sizes:
                model = build(n)
                t0 = time.perf_counter()
                package(model, Path(tmp) / f"{label}-{n}", variants=("simd",))
                seconds = time.perf_counter() - t0
                rows.append((label, n, seconds))
                print(f"{label:20s} {n:6d} nodes: {seconds:7.2f} s ({seconds / n * 1e3:.2f} ms per node)", flush=True)
    lines = [
        "## Packaging time against graph size (benchmarks/packaging_scale.py)",
        "",
        f"- Command: `python benchmarks/packaging_scale.py --sizes {args.sizes} --write`",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; tree: {benchlib.tree_state()}",
        f"- Machine: {benchlib.machine_line()}",
        "- One packaging per size (import, optimizer at level 2, lowering, memory plan, bundle with one kernel "
        "build, cached); flat ms per node means linear growth.",
        "",
        "| graph | nodes | seconds | ms per node |",
        "|---|---|---|---|",
    ]
    lines += [f"| {label} | {n} | {s:.2f} | {s / n * 1e3:.2f} |" for label, n, s in rows]
    if args.write:
        benchlib.write_section("packaging-scale", "\n".join(lines))


if __name__ == "__main__":
    main()
