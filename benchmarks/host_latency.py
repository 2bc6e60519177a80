"""Latency of our bundles in wasmtime (the same .wasm the browser runs) next to native onnxruntime,
measured in the same run on the same seeded models, interleaved so machine noise hits both alike.

    python benchmarks/host_latency.py [--runs 20] [--models mobilenetv2,resnet18,squeezenet1.1] [--write]

This is the wasm-vs-native ratio of issue 2's kernels; the browser side-by-side against onnxruntime-web
is benchmarks/run.py. `--write` replaces this script's section of RESULTS.md (between its markers).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import benchlib
import numpy as np
import onnxruntime as ort

from wasm_runtime import zoo
from wasm_runtime.host import HostSession
from wasm_runtime.package import package

RESULTS = benchlib.RESULTS


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def bench(name: str, runs: int, workdir: Path) -> dict:
    model = zoo.BUILDERS[name]()
    package(model, workdir / name)
    x = {"input": np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    native = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    contenders = {
        "wasm simd": HostSession(workdir / name, "simd"),
        "wasm relaxed": HostSession(workdir / name, "relaxed"),
    }
    calls = {k: (lambda s=s: s.run(x)) for k, s in contenders.items()}
    calls["onnxruntime native 1t"] = lambda: native.run(None, x)
    for fn in calls.values():  # warm-up
        fn()
        fn()
    samples: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(runs):
        for k, fn in calls.items():
            samples[k].append(_time(fn))
    return {k: (statistics.median(v), min(v)) for k, v in samples.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--models", default="mobilenetv2,resnet18,squeezenet1.1")
    p.add_argument("--write", action="store_true", help=f"write {RESULTS.name}")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            r = bench(name, args.runs, Path(tmp))
            native = r["onnxruntime native 1t"][0]
            for k, (med, mn) in r.items():
                ratio = med / native
                rows.append(f"| {name} | {k} | {med:.1f} | {mn:.1f} | {ratio:.2f}x |")
                print(f"{name:14s} {k:24s} median {med:8.1f} ms  min {mn:8.1f} ms  ours/native {ratio:5.2f}x")
    if args.write:
        benchlib.write_section(
            "host-latency",
            "## Host latency: bundle in wasmtime vs native onnxruntime (1 thread), same run\n\n"
            f"Command: `python benchmarks/host_latency.py --runs {args.runs} --write`  \n"
            f"Tree: {benchlib.tree_state()}  \n"
            f"Machine: {benchlib.machine_line()}, onnxruntime {ort.__version__}; seeded models, 1x3x224x224, "
            f"median/min of {args.runs} interleaved runs after 2 warm-ups.\n\n"
            "| model | contender | median ms | min ms | / native |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n",
            RESULTS,
        )


if __name__ == "__main__":
    main()
