"""Kernel micro-benchmark: f32 GEMM GFLOP/s of our `f32_gemm_packed` kernel (B packed beforehand, as weights
are at package time) in wasmtime and in Chromium (the same .wasm, SIMD128 and relaxed-SIMD builds) next to
numpy single-threaded, square sizes.

    python benchmarks/gemm_bench.py [--sizes 256,512,1024] [--rounds 3] [--budget-ms 300]

run.py runs this too and puts the table in RESULTS.md. GFLOP/s = 2 n^3 / time of one call; the table shows the
best call of all rounds (the machine is shared: the best call is the one least disturbed), the JSON also has
medians. Contenders are interleaved round by round in a shuffled order.
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import benchlib
import numpy as np
import wasmtime

from wasm_runtime.bundle import heap_base as module_heap_base
from wasm_runtime.kernels import build_module

VARIANTS = ("simd", "relaxed")
SIZES = (256, 512, 1024)
ALIGN = 64
PAGE = 65536


# ---------------------------------------------------------------------------------------------------------
# The kernel contract, in ONE place: which exports the module needs and the calls for C = A @ B.
# (kernels_wasm/f32-gemm-4x8-wasmsimd.c; update here when the signature changes or a packed variant appears:
# `prep` calls run once before timing, e.g. to pack B into scratch, `timed` is the call that is timed.)

GEMM_EXPORTS = ["f32_gemm_packed", "f32_pack_b"]
TILE_ROWS = 4  # the default register tile, 4x8 (wasm_runtime/ops/gemm.py TILES)


def gemm_calls(n: int, a: int, b: int, c: int, scratch: int) -> dict:
    """Kernel calls computing C[n,n] = A[n,n] @ B[n,n] (row-major float32 at byte addresses a, b, c; `scratch`
    is free memory of scratch_bytes(n)), no epilogue: {"prep": [(export, args)], "timed": (export, args)}.
    B is packed into 8-column panels once, untimed, as a model's weights are at package time."""
    M = N = K = n
    args = [M, N, K, a, K, scratch, c, N, 1.0, 0, 0, 0, 0.0, 0, 0.0, 0.0, 0, 0, TILE_ROWS]
    return {"prep": [("f32_pack_b", [K, N, b, N, scratch])], "timed": ("f32_gemm_packed", args)}


def scratch_bytes(n: int) -> int:
    return 4 * n * (-(-n // 8) * 8)


# ---------------------------------------------------------------------------------------------------------


def operand(count: int, seed: int) -> np.ndarray:
    """Deterministic values in [-0.5, 0.5): the same integer hash as fill() in page/gemm.js."""
    i = np.arange(count, dtype=np.uint32) + np.uint32(seed)
    return ((i * np.uint32(2654435761)).astype(np.float64) / 2.0**32 - 0.5).astype(np.float32)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def layout(n: int, heap_base: int) -> dict:
    """Addresses of A, B, C and scratch above the module's stack/data, and the memory pages they need."""
    a = _align(heap_base)
    b = _align(a + 4 * n * n)
    c = _align(b + 4 * n * n)
    scratch = _align(c + 4 * n * n)
    end = scratch + scratch_bytes(n)
    calls = gemm_calls(n, a, b, c, scratch)
    return {
        "n": n,
        "fill": [[a, n * n, 1], [b, n * n, 2]],
        "prep": [[name, list(args)] for name, args in calls["prep"]],
        "timed": [calls["timed"][0], list(calls["timed"][1])],
        "output": [c, n * n],
        "pages": -(-end // PAGE),
    }


def reference(n: int) -> np.ndarray:
    a = operand(n * n, 1).reshape(n, n).astype(np.float64)
    b = operand(n * n, 2).reshape(n, n).astype(np.float64)
    return a @ b


def check(n: int, c: np.ndarray, where: str) -> float:
    _, rel = benchlib.errors(c, reference(n))
    if rel > 1e-4:
        raise AssertionError(f"{where}: GEMM {n} differs from numpy (max rel err {rel:.3g})")
    return rel


def module_bytes(variant: str) -> bytes:
    """The kernel module exporting GEMM_EXPORTS (wasm_runtime.kernels builds and caches it)."""
    return build_module(GEMM_EXPORTS, variant)


def module_file(variant: str, work: Path) -> Path:
    """module_bytes(variant) as a file under work/gemm, for the browser (the server serves work/ as /work/)."""
    path = work / "gemm" / f"gemm-{variant}.wasm"
    data = module_bytes(variant)
    if not path.exists() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return path


def _engine() -> wasmtime.Engine:
    try:  # the Python host's own configuration, when it is still there
        from wasm_runtime.bundle import _engine_config

        return wasmtime.Engine(_engine_config())
    except ImportError:
        config = wasmtime.Config()
        config.wasm_simd = config.wasm_relaxed_simd = config.wasm_bulk_memory = True
        return wasmtime.Engine(config)


def heap_base(variant: str) -> int:
    """First free byte of the module's memory (above its stack and data)."""
    return module_heap_base(module_bytes(variant))


def _timed(fn, budget_s: float, min_reps: int) -> list[float]:
    fn()  # warm-up
    times: list[float] = []
    end = time.perf_counter() + budget_s
    while len(times) < min_reps or time.perf_counter() < end:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


class WasmtimeGemm:
    """The kernel module instantiated in wasmtime on a memory large enough for the biggest size."""

    def __init__(self, variant: str, sizes: list[int]):
        engine = _engine()
        self.store = wasmtime.Store(engine)
        module = wasmtime.Module(engine, module_bytes(variant))
        self.layouts = {n: layout(n, heap_base(variant)) for n in sizes}
        pages = max(lay["pages"] for lay in self.layouts.values())
        self.memory = wasmtime.Memory(self.store, wasmtime.MemoryType(wasmtime.Limits(pages, pages)))
        self.exports = wasmtime.Instance(self.store, module, [self.memory]).exports(self.store)
        ptr = ctypes.cast(self.memory.data_ptr(self.store), ctypes.POINTER(ctypes.c_ubyte))
        self.mem = np.ctypeslib.as_array(ptr, shape=(self.memory.data_len(self.store),))

    def _bind(self, name: str, args: list):
        func = self.exports[name]
        params = func.type(self.store).params
        if len(params) != len(args):
            raise TypeError(f"{name} takes {len(params)} arguments, gemm_calls passes {len(args)}: update gemm_calls")
        conv = [float(a) if p == wasmtime.ValType.f32() else int(a) for p, a in zip(params, args, strict=True)]
        return lambda: func(self.store, *conv)

    def run(self, n: int, budget_s: float, min_reps: int) -> dict:
        lay = self.layouts[n]
        for ptr, count, seed in lay["fill"]:
            self.mem[ptr : ptr + 4 * count] = operand(count, seed).view(np.uint8)
        for name, args in lay["prep"]:
            self._bind(name, args)()
        times = _timed(self._bind(*lay["timed"]), budget_s, min_reps)
        c_ptr, count = lay["output"]
        c = self.mem[c_ptr : c_ptr + 4 * count].view(np.float32).reshape(n, n)
        return {"times": times, "err": check(n, c, "wasmtime")}


def browser_gemm(
    browser, base_url: str, variant: str, sizes: list[int], budget_ms: float, min_reps: int, work: Path
) -> dict:
    """The same module in a fresh Chromium page: {"sizes": {n: {"times", "err"}}, "crossOriginIsolated"}."""
    base = heap_base(variant)
    lays = [layout(n, base) for n in sizes]
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{base_url}/bench/gemm.html")
        page.wait_for_function("window.gemmReady === true")
        config = {
            "wasmUrl": f"/work/gemm/{module_file(variant, work).name}",
            "pages": max(lay["pages"] for lay in lays),
            "sizes": lays,
            "budgetMs": budget_ms,
            "minReps": min_reps,
        }
        got = page.evaluate("(config) => window.runGemm(config)", config)
    finally:
        context.close()
    out = {}
    for lay, r in zip(lays, got["results"], strict=True):
        n = lay["n"]
        c = np.frombuffer(base64.b64decode(r["output"]), np.float32).reshape(n, n)
        out[n] = {"times": r["times"], "err": check(n, c, f"chromium {variant}")}
    return {"sizes": out, "crossOriginIsolated": got["crossOriginIsolated"]}


NUMPY_SCRIPT = r"""
import json, sys, time
try:
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    limiter = "threadpoolctl"
except ImportError:
    limiter = "OPENBLAS/OMP/MKL_NUM_THREADS=1"
import numpy as np
sys.path.insert(0, sys.argv[1])
from gemm_bench import operand, _timed
sizes, budget_s, min_reps = json.loads(sys.argv[2])
out = {}
for n in sizes:
    a = operand(n * n, 1).reshape(n, n)
    b = operand(n * n, 2).reshape(n, n)
    c = np.empty((n, n), np.float32)
    out[n] = _timed(lambda: np.matmul(a, b, out=c), budget_s, min_reps)
print(json.dumps({"times": out, "limiter": limiter, "numpy": np.__version__}))
"""


def numpy_gemm(sizes: list[int], budget_s: float, min_reps: int) -> dict:
    """numpy float32 matmul on one thread, in a subprocess whose BLAS thread count is fixed before import."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", NUMPY_SCRIPT, str(benchlib.BENCH_DIR), json.dumps([sizes, budget_s, min_reps])],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(proc.stdout)
    return {"sizes": {int(n): {"times": t} for n, t in got["times"].items()}, "limiter": got["limiter"]}


def gflops(n: int, ms: float) -> float:
    return 2.0 * n**3 / (ms * 1e-3) / 1e9


def run(
    browser,
    base_url: str,
    sizes: list[int],
    rounds: int,
    budget_ms: float = 300,
    min_reps: int = 5,
    seed: int = 0,
    work: Path = benchlib.WORK_DIR,
) -> dict:
    """All contenders, `rounds` times in a shuffled order each: {"contenders": {name: {n: {...}}}, ...}."""
    rng = random.Random(seed)
    engines = {v: WasmtimeGemm(v, sizes) for v in VARIANTS}
    names = [*(f"wasmtime {v}" for v in VARIANTS), *(f"chromium {v}" for v in VARIANTS), "numpy 1t"]
    times: dict[str, dict[int, list[float]]] = {k: {n: [] for n in sizes} for k in names}
    errs: dict[str, dict[int, float]] = {k: {} for k in names}
    facts: dict = {}
    for _ in range(rounds):
        order = names[:]
        rng.shuffle(order)
        for name in order:
            kind, what = name.split(" ", 1)
            if kind == "wasmtime":
                got = {n: engines[what].run(n, budget_ms / 1e3, min_reps) for n in sizes}
            elif kind == "chromium":
                r = browser_gemm(browser, base_url, what, sizes, budget_ms, min_reps, work)
                facts["crossOriginIsolated"] = r["crossOriginIsolated"]
                got = r["sizes"]
            else:
                r = numpy_gemm(sizes, budget_ms / 1e3, min_reps)
                facts["numpy_threads"] = r["limiter"]
                got = r["sizes"]
            for n, g in got.items():
                times[name][n].extend(g["times"])
                if "err" in g:
                    errs[name][n] = max(errs[name].get(n, 0.0), g["err"])
    contenders = {
        name: {
            n: {
                "best_gflops": gflops(n, min(t)),
                "median_gflops": gflops(n, statistics.median(t)),
                "calls": len(t),
                "max_rel_err": errs[name].get(n),
            }
            for n, t in per_size.items()
        }
        for name, per_size in times.items()
    }
    return {"sizes": sizes, "rounds": rounds, "contenders": contenders, **facts}


def table(result: dict) -> tuple[list[str], list[list]]:
    """Header and rows: per contender, best GFLOP/s at each size and (for ours) the share of numpy's."""
    c = result["contenders"]
    ref = c["numpy 1t"]
    rows = []
    for name, per_size in c.items():
        cells = [name]
        for n in result["sizes"]:
            g = per_size[n]["best_gflops"]
            cells.append(f"{g:.1f}" if name == "numpy 1t" else f"{g:.1f} ({g / ref[n]['best_gflops']:.0%})")
        rows.append(cells)
    return ["GFLOP/s (share of numpy 1t)", *(f"n={n}" for n in result["sizes"])], rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default=",".join(map(str, SIZES)))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--budget-ms", type=float, default=300, help="time per contender, size and round")
    p.add_argument("--json", type=Path, help="write the raw results here")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    roots = {"bench": benchlib.PAGE_DIR, "work": benchlib.WORK_DIR}
    with benchlib.serve(benchlib.WORK_DIR / "models", roots) as base_url, benchlib.chromium() as browser:
        result = run(browser, base_url, sizes, args.rounds, args.budget_ms)
    print(benchlib.text_table(*table(result)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
