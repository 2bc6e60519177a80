"""Winograd F(2x2, 3x3) (`f32_conv2d_winograd_f23`) against im2col + GEMM (`f32_conv2d`) in wasmtime, on
ResNet-18's 3x3 stride-1 convolutions (batch 1, pad 1, bias + ReLU epilogue), both build variants.

    python benchmarks/winograd_bench.py [--runs 15] [--variants simd,relaxed] [--shapes resnet18|sweep|all]

Each kernel is called directly on one module instance (the same .wasm code the browser runs); the two
contenders are interleaved run by run so machine noise hits both alike. Times are medians with the cost of an
empty call of the same signature subtracted (wasmtime-py spends ~15 us per argument converting them, ~0.25 ms for
these 18-25 argument calls, which the browser does not pay). `--shapes sweep` times other shapes (C, M, size),
the ones `winograd.applicable`'s bounds come from. "rel diff" is max |winograd - im2col| / max |im2col|.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from oputil import KernelModule, max_rel  # noqa: E402

from wasm_runtime.ops import winograd  # noqa: E402

# ResNet-18's 3x3 stride-1 convolutions: (C, M, H = W)
RESNET18 = [(64, 64, 56), (128, 128, 28), (256, 256, 14), (512, 512, 7)]
SWEEP = [
    (8, 8, 56),
    (8, 16, 112),
    (16, 16, 56),
    (16, 8, 56),
    (32, 32, 28),
    (8, 64, 56),
    (64, 8, 56),
    (3, 64, 112),
    (64, 64, 8),
    (64, 64, 4),
    (256, 256, 4),
    (512, 512, 3),
    (512, 512, 2),
    (256, 256, 2),
    (256, 256, 1),
    (1, 8, 112),
    (4, 4, 112),
    (3, 16, 224),
    (8, 1, 112),
    (2, 2, 56),
]
ACT_RELU = 1


def bench_layer(k: KernelModule, C: int, M: int, S: int, runs: int) -> dict:
    k.reset()
    H = W = S
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, C, H, W)).astype(np.float32)
    w = (rng.standard_normal((M, C, 3, 3)) / np.sqrt(9 * C)).astype(np.float32)
    b = rng.standard_normal(M).astype(np.float32)
    xa, wa, ba = k.put(x), k.put(w), k.put(b)
    ua = k.put(winograd.transform_weights(w))
    y1, y2 = k.alloc(M * H * W * 4), k.alloc(M * H * W * 4)
    ws_gemm = k.alloc(C * 9 * H * W * 4)
    ws_wino = k.alloc(winograd.workspace_bytes(C, M, H, W))

    def im2col(n=1):
        k.call(
            "f32_conv2d",
            n,
            C,
            H,
            W,
            M,
            H,
            W,
            3,
            3,
            1,
            1,
            1,
            1,
            1,
            1,
            1,
            xa,
            wa,
            ba,
            y1,
            ws_gemm,
            ACT_RELU,
            0,
            0,
            0,
            H * W,
            H * W,
        )

    def wino(n=1):
        k.call(winograd.KERNEL, n, C, H, W, M, H, W, 1, 1, xa, ua, ba, y2, ws_wino, ACT_RELU, 0, 0, 0, H * W)

    calls = {"im2col": im2col, "winograd": wino}
    for fn in calls.values():
        fn()
    err = max_rel(k.get(y2, (M, H, W)), k.get(y1, (M, H, W)))
    samples: dict[str, list[float]] = {name: [] for name in calls}
    empty: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, fn in calls.items():
            samples[name].append(_ms(fn))
            empty[name].append(_ms(lambda fn=fn: fn(0)))  # N = 0: the kernel returns at once
    out = {name: statistics.median(samples[name]) - statistics.median(empty[name]) for name in calls}
    out["err"] = err
    return out


def _ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--variants", default="simd,relaxed")
    p.add_argument("--shapes", choices=("resnet18", "sweep", "all"), default="resnet18")
    args = p.parse_args()
    shapes = {"resnet18": RESNET18, "sweep": SWEEP, "all": RESNET18 + SWEEP}[args.shapes]
    print(
        f"{'variant':8s} {'C -> M @ HxW':18s} {'GFLOP':>6s} {'im2col ms':>10s} {'winograd ms':>12s} "
        f"{'speedup':>8s} {'rel diff':>9s} applicable"
    )
    for variant in args.variants.split(","):
        k = KernelModule(["f32_conv2d", winograd.KERNEL], variant, pages=2048)
        params = len(k.exports["f32_conv2d"].type(k.store).params)
        if params != 27:
            raise SystemExit(f"f32_conv2d now takes {params} arguments; update this benchmark to its signature")
        for C, M, S in shapes:
            r = bench_layer(k, C, M, S, args.runs)
            gflop = 2 * M * C * 9 * S * S / 1e9
            ok = winograd.applicable((1, C, S, S), (M, C, 3, 3), {"pads": [1, 1, 1, 1]})
            print(
                f"{variant:8s} {f'{C} -> {M} @ {S}x{S}':18s} {gflop:6.3f} {r['im2col']:10.3f} {r['winograd']:12.3f} "
                f"{r['im2col'] / r['winograd']:7.2f}x {r['err']:9.1e} {ok}"
            )


if __name__ == "__main__":
    main()
