"""WebGL plan timing in headless Chromium (SwiftShader here): build variants, A/B them in one page, profile steps.

    python benchmarks/webgl_profile.py build /tmp/gl-a --models mobilenetv2,resnet18
    python benchmarks/webgl_profile.py ab /tmp/gl-a /tmp/gl-b --model mobilenetv2 --runs 6
    python benchmarks/webgl_profile.py profile /tmp/gl-b --model resnet18 --runs 2 [--top 25]

`build` packages the seeded zoo models (224x224) with --backend webgl into DIR/<model>/ and copies this tree's
web/webgl.js to DIR/webgl.js, so a variant is the generator and the executor of one tree, frozen. `ab` creates
every variant's plan in ONE page and alternates their runs (the machine is shared and noisy: both see the
same noise), prints create time and per-run median/min per variant and each output's error against
onnxruntime. `profile` draws each step alone and reads back one texel (which waits for it), min over the
runs after a first run without warm-up (JIT + draw), and prints the time per op type and the slowest steps.
The plans run on the page's main thread.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import benchlib
import numpy as np
import onnx
import onnxruntime

from wasm_runtime import zoo
from wasm_runtime.package import package

IMAGE_SHAPE = (1, 3, 224, 224)


def seeded_input(n: int) -> np.ndarray:
    """The page's xorshift32 input (glprof.js, seededInput)."""
    out = np.empty(n, np.float32)
    s = 0x9E3779B9
    for i in range(n):
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        out[i] = np.float32(s / 4294967296 * 2 - 1)
    return out


def build(out: Path, models: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(benchlib.REPO / "web" / "webgl.js", out / "webgl.js")
    for name in models:
        model = zoo.BUILDERS[name]()
        onnx.save(model, out / f"{name}.onnx")
        package(model, out / name, name=name, backend="webgl")
        print(f"built {out / name}")


def open_page(roots: dict[str, Path], query: str, timeout_s: float) -> dict:
    extra = {**{k: str(v) for k, v in roots.items()}, "bench": str(benchlib.PAGE_DIR)}
    with benchlib.serve(benchlib.WORK_DIR, extra) as url, benchlib.chromium() as browser:
        page = browser.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        page.goto(f"{url}/bench/glprof.html?{query}")
        result = page.evaluate(
            "(ms) => Promise.race([window.__done, new Promise((r) => setTimeout(() => r({error: 'timeout'}), ms))])",
            timeout_s * 1e3,
        )
    if "error" in result:
        sys.exit(f"page failed: {result['error']}\nconsole: {console[-10:]}")
    return result


def reference(directory: Path, model: str) -> np.ndarray:
    sess = onnxruntime.InferenceSession(str(directory / f"{model}.onnx"), providers=["CPUExecutionProvider"])
    x = seeded_input(int(np.prod(IMAGE_SHAPE))).reshape(IMAGE_SHAPE)
    return sess.run(None, {sess.get_inputs()[0].name: x})[0].reshape(-1)


def ab(dirs: list[Path], model: str, runs: int, timeout_s: float) -> None:
    names = [f"v{chr(ord('a') + k)}" for k in range(len(dirs))]
    result = open_page(
        dict(zip(names, dirs, strict=True)), f"variants={','.join(names)}&model={model}&mode=ab&runs={runs}", timeout_s
    )
    ref = reference(dirs[0], model)
    for name, d in zip(names, dirs, strict=True):
        r = result[name]
        out = np.asarray(r["out"], np.float64)[: ref.size]
        err = float(np.abs(out - ref).max() / np.abs(ref).max())
        t = r["runsMs"]
        print(
            f"{model} {d}: create {r['createMs']:.0f} ms {r['timings']}, first run {r['firstMs']:.0f} ms, "
            f"runs median {statistics.median(t):.0f} min {min(t):.0f} ms ({', '.join(f'{x:.0f}' for x in t)}), "
            f"max rel err {err:.1e}"
        )


def profile(directory: Path, model: str, runs: int, top: int, timeout_s: float) -> None:
    result = open_page({"va": directory}, f"variants=va&model={model}&mode=profile&runs={runs}", timeout_s)
    steps = result["steps"]
    total = sum(s["ms"] for s in steps)
    print(
        f"{model} {directory}: create (no warm-up) {result['createMs']:.0f} ms {result['timings']}; "
        f"{len(steps)} steps, sum of step minima {total:.0f} ms, first run {sum(s['firstMs'] for s in steps):.0f} ms"
    )
    by_op: dict[str, list[float]] = defaultdict(list)
    for s in steps:
        by_op[s["op"]].append(s["ms"])
    for op, ts in sorted(by_op.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {op:20s} {len(ts):4d} steps {sum(ts):9.1f} ms {100 * sum(ts) / total:5.1f}%")
    print(f"  slowest {top}:")
    for s in sorted(steps, key=lambda s: -s["ms"])[:top]:
        print(
            f"  {s['ms']:8.1f} ms (first {s['firstMs']:7.1f})  {s['op']:12s} {s['node']:32s} program {s['program']} "
            f"out {s['out']}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("out", type=Path)
    b.add_argument("--models", default="mobilenetv2,resnet18")
    a = sub.add_parser("ab")
    a.add_argument("dirs", type=Path, nargs="+")
    a.add_argument("--model", default="mobilenetv2")
    a.add_argument("--runs", type=int, default=4)
    f = sub.add_parser("profile")
    f.add_argument("dir", type=Path)
    f.add_argument("--model", default="mobilenetv2")
    f.add_argument("--runs", type=int, default=2)
    f.add_argument("--top", type=int, default=20)
    for s in (a, f):
        s.add_argument("--timeout", type=float, default=1800)
    args = p.parse_args()
    if args.cmd == "build":
        build(args.out, args.models.split(","))
    elif args.cmd == "ab":
        ab(args.dirs, args.model, args.runs, args.timeout)
    else:
        profile(args.dir, args.model, args.runs, args.top, args.timeout)


if __name__ == "__main__":
    main()
