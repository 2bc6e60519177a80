"""WebGL plan timing in headless Chromium (SwiftShader here): build variants, A/B them in one page, profile steps.

    python benchmarks/webgl_profile.py build /tmp/gl-a --models mobilenetv2,resnet18
    python benchmarks/webgl_profile.py build /tmp/gl-b --models conv7x7,conv1d256 --set COLUMNS_UNROLLED=0
    python benchmarks/webgl_profile.py build /tmp/gl-c --file rec=model.onnx --input-shape x=1,3,48,320
    python benchmarks/webgl_profile.py ab /tmp/gl-a /tmp/gl-b --model mobilenetv2 --runs 6
    python benchmarks/webgl_profile.py profile /tmp/gl-b --model resnet18 --runs 2 [--top 25]
    python benchmarks/webgl_profile.py session /tmp/gl-a /tmp/gl-c --model rec --backends webgl,wasm --runs 4

`build` packages models with --backend webgl into DIR/<model>/ (and DIR/<model>.onnx): the seeded zoo models
(224x224), the small single-layer models of MICRO, or ONNX files (`--file name=path`, `--input-shape` fixing
their symbolic dims); `--set NAME=VALUE` overrides a tuning constant of wasm_runtime/webgl/tuning.py first (e.g.
COLUMNS_UNROLLED), so one tree builds both sides of an A/B. It copies this tree's web/ to DIR/runtime/ and
web/webgl.js to DIR/webgl.js, so a variant is the generator and the executor of one tree, frozen. `ab`
creates every variant's plan in ONE page and alternates their runs (the machine is shared and noisy: both
see the same noise), prints create time and per-run median/min per variant and each output's error against
onnxruntime. `profile` draws each step alone and reads back one texel (which waits for it), min over the
runs after a first run without warm-up (JIT + draw), and prints the time per op type and the slowest steps
(for a mixed plan, its GPU steps, reading zeros where wasm results would be). These two run the plans on the
page's main thread. `session` runs whole sessions (InferenceSession in its worker, mixed plans included)
of every variant x backend in one page, alternating runs, and prints per-run times, the ratio of each to
the first and each output's error against onnxruntime.
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
from onnx import helper

from wasm_runtime import webgl, zoo
from wasm_runtime.package import package


def _conv(x, w, **attrs) -> onnx.ModelProto:
    """One Conv (+ bias) on input x, seeded weights of shape w."""
    rng = np.random.default_rng(0)
    inits = [
        onnx.numpy_helper.from_array(rng.standard_normal(w).astype(np.float32) * 0.1, "w"),
        onnx.numpy_helper.from_array(rng.standard_normal(w[0]).astype(np.float32), "b"),
    ]
    y_dims = [None] * len(x)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", **attrs)],
        "micro",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(x))],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, y_dims)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = zoo.IR_VERSION  # what onnxruntime loads
    return model


def _softmax(x) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["y"], name="softmax", axis=-1)],
        "micro",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(x))],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, list(x))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = zoo.IR_VERSION
    return model


# single layers for shader choices: conv_c4's unrolled taps vs loops, Softmax in one step or two
MICRO = {
    "softmax4": lambda: _softmax((1, 8, 64, 4)),
    "softmax8": lambda: _softmax((1, 8, 64, 8)),
    "softmax16": lambda: _softmax((1, 8, 64, 16)),
    "softmax40": lambda: _softmax((1, 8, 40, 40)),
    "conv5x5": lambda: _conv((1, 32, 56, 56), (32, 32, 5, 5), pads=[2, 2, 2, 2]),
    "conv7x7": lambda: _conv((1, 32, 56, 56), (32, 32, 7, 7), pads=[3, 3, 3, 3]),
    "conv9x9": lambda: _conv((1, 16, 56, 56), (16, 16, 9, 9), pads=[4, 4, 4, 4]),
    "conv15x15": lambda: _conv((1, 8, 56, 56), (8, 8, 15, 15), pads=[7, 7, 7, 7]),
    "conv31x31": lambda: _conv((1, 4, 64, 64), (8, 4, 31, 31), pads=[15, 15, 15, 15]),
    "dw7x7": lambda: _conv((1, 64, 56, 56), (64, 1, 7, 7), pads=[3, 3, 3, 3], group=64),
    "dw31x31": lambda: _conv((1, 64, 56, 56), (64, 1, 31, 31), pads=[15, 15, 15, 15], group=64),
    "conv1d256": lambda: _conv((4, 1, 16000), (258, 1, 256), strides=[128]),
    "conv1d512": lambda: _conv((1, 1, 16000), (257, 1, 512), strides=[160]),
}


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


def build(out: Path, models: list[str], files: list[str], input_shapes: dict, settings: list[str]) -> None:
    for setting in settings:
        key, value = setting.split("=", 1)
        if not hasattr(webgl.tuning, key):
            sys.exit(f"wasm_runtime.webgl.tuning has no {key}")
        setattr(webgl.tuning, key, type(getattr(webgl.tuning, key))(value))
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(benchlib.REPO / "web" / "webgl.js", out / "webgl.js")
    shutil.copytree(benchlib.REPO / "web", out / "runtime", dirs_exist_ok=True)
    todo = [(name, zoo.BUILDERS[name]() if name in zoo.BUILDERS else MICRO[name](), None) for name in models if name]
    for spec in files:
        name, path = spec.split("=", 1)
        todo.append((name, onnx.load(path), input_shapes))
    for name, model, shapes in todo:
        onnx.save(model, out / f"{name}.onnx")
        package(model, out / name, name=name, input_shapes=shapes, backend="webgl")
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


def reference(directory: Path, model: str) -> dict[str, np.ndarray]:
    """onnxruntime's outputs (flattened) for the pages' inputs: every input seededInput(its size)."""
    import json

    manifest = json.loads((directory / model / "manifest.json").read_text())
    feeds = {e["name"]: seeded_input(int(np.prod(e["shape"]))).reshape(e["shape"]) for e in manifest["inputs"]}
    sess = onnxruntime.InferenceSession(str(directory / f"{model}.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return {k: v.reshape(-1) for k, v in zip(names, sess.run(names, feeds), strict=True)}


def max_rel_err(out, ref: np.ndarray) -> float:
    out = np.asarray(out, np.float64)[: ref.size]
    return float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-30))


def ab(dirs: list[Path], model: str, runs: int, timeout_s: float) -> None:
    names = [f"v{chr(ord('a') + k)}" for k in range(len(dirs))]
    ref = next(iter(reference(dirs[0], model).values()))
    result = open_page(
        dict(zip(names, dirs, strict=True)), f"variants={','.join(names)}&model={model}&mode=ab&runs={runs}", timeout_s
    )
    for name, d in zip(names, dirs, strict=True):
        r = result[name]
        err = max_rel_err(r["out"], ref)
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


def session(dirs: list[Path], model: str, backends: list[str], runs: int, timeout_s: float) -> None:
    names = [f"v{chr(ord('a') + k)}" for k in range(len(dirs))]
    query = f"variants={','.join(names)}&model={model}&mode=session&runs={runs}&backends={','.join(backends)}"
    ref = reference(dirs[0], model)
    result = open_page(dict(zip(names, dirs, strict=True)), query, timeout_s)
    base = None
    for name, d in zip(names, dirs, strict=True):
        for backend in backends:
            r = result[f"{name}/{backend}"]
            if "error" in r:
                print(f"{model} {d} {backend}: {r['error']}")
                continue
            t = r["runsMs"]
            median = statistics.median(t)
            base = base or median
            errs = ", ".join(f"{k} {max_rel_err(r['outputs'][k], v):.1e}" for k, v in ref.items())
            print(
                f"{model} {d} {backend} ({r['backend']}): create {r['createMs']:.0f} ms, "
                f"first run {r['firstMs']:.0f} ms, "
                f"runs median {median:.1f} min {min(t):.1f} ms ({', '.join(f'{x:.0f}' for x in t)}), "
                f"{median / base:.2f}x the first; max rel err {errs}"
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("out", type=Path)
    b.add_argument("--models", default="mobilenetv2,resnet18", help=f"zoo models or {', '.join(MICRO)}")
    b.add_argument("--file", action="append", default=[], help="name=path.onnx (repeatable)")
    b.add_argument("--input-shape", action="append", default=[], help="input=1,3,48,320 (repeatable)")
    b.add_argument("--set", action="append", default=[], help="NAME=VALUE: a wasm_runtime.webgl constant")
    a = sub.add_parser("ab")
    a.add_argument("dirs", type=Path, nargs="+")
    a.add_argument("--model", default="mobilenetv2")
    a.add_argument("--runs", type=int, default=4)
    f = sub.add_parser("profile")
    f.add_argument("dir", type=Path)
    f.add_argument("--model", default="mobilenetv2")
    f.add_argument("--runs", type=int, default=2)
    f.add_argument("--top", type=int, default=20)
    e = sub.add_parser("session")
    e.add_argument("dirs", type=Path, nargs="+")
    e.add_argument("--model", required=True)
    e.add_argument("--backends", default="webgl,wasm")
    e.add_argument("--runs", type=int, default=4)
    for s in (a, f, e):
        s.add_argument("--timeout", type=float, default=1800)
    args = p.parse_args()
    if args.cmd == "build":
        shapes = {k: [int(d) for d in v.split(",")] for k, v in (spec.split("=", 1) for spec in args.input_shape)}
        build(args.out, args.models.split(","), args.file, shapes, args.set)
    elif args.cmd == "ab":
        ab(args.dirs, args.model, args.runs, args.timeout)
    elif args.cmd == "session":
        session(args.dirs, args.model, args.backends.split(","), args.runs, args.timeout)
    else:
        profile(args.dir, args.model, args.runs, args.top, args.timeout)


if __name__ == "__main__":
    main()
