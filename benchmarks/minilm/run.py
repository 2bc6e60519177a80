"""MiniLM (sentence-transformers all-MiniLM-L6-v2) in Chromium: ours vs onnxruntime-web vs native onnxruntime.

    python benchmarks/minilm/run.py [--runs 10] [--rounds 2] [--write]

Needs the ONNX export (benchmarks/minilm/setup.sh makes it in a separate venv with torch, outside CI).
Ours is ONE bundle with dynamic [batch, seq] inputs (wasm_runtime/dynamic.py); ORT-web loads the same .onnx.
For every round, each contender (ours-1t, ours-2t, ort-wasm-1t, ort-wasm-2t; shuffled) gets a fresh page and
one session that runs every tokenized sample (several sentence lengths and a batch of 3); latency is the median
over rounds of per-page medians. Outputs are compared with native onnxruntime (max abs error).
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import shlex
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import benchlib  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402

from wasm_runtime.package import package  # noqa: E402

NAMES = ("input_ids", "attention_mask", "token_type_ids")
BROWSER = {"ours-1t": ("ours", 1), "ours-2t": ("ours", 2), "ort-wasm-1t": ("ort", 1), "ort-wasm-2t": ("ort", 2)}


def load_samples(export_dir: Path) -> list[dict[str, np.ndarray]]:
    data = np.load(export_dir / "samples.npz")
    return [{n: data[f"{i}/{n}"] for n in NAMES} for i in range(len(data.files) // 3)]


def native(model_path: Path, samples, threads: int, runs: int) -> list[dict]:
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    sess = onnxruntime.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    out = []
    for s in samples:
        first = sess.run(None, s)[0]
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            sess.run(None, s)
            times.append((time.perf_counter() - t0) * 1e3)
        out.append({"runsMs": times, "output": first})
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--export", type=Path, default=benchlib.WORK_DIR / "minilm", help="dir with minilm.onnx")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2, help="warm-up runs per sample, after --warmup-ms")
    p.add_argument("--warmup-ms", type=int, default=2000,
                   help="run the samples in turn for this long first, the same for every runtime (V8 tier-up)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--write", action="store_true", help="replace the MiniLM section of RESULTS.md")
    args = p.parse_args(argv)
    model_path = args.export / "minilm.onnx"
    if not model_path.exists():
        raise SystemExit(f"{model_path} missing: run benchmarks/minilm/setup.sh first")
    command = "python benchmarks/minilm/run.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    ort_web = benchlib.ensure_ort_web()
    work = benchlib.WORK_DIR.resolve()
    samples = load_samples(args.export)
    (work / "minilm-samples.json").write_text(
        json.dumps([{"dims": list(s["input_ids"].shape), **{n: s[n].tolist() for n in NAMES}} for s in samples])
    )
    t0 = time.perf_counter()
    result = package(model_path, work / "models" / "minilm", name="minilm")
    pack_s = time.perf_counter() - t0
    print(f"packaged MiniLM (dynamic [batch, seq]) in {pack_s:.1f} s: {result.manifest['stats']['steps']} steps")
    refs = native(model_path, samples, 1, 0)
    results = {k: [] for k in [*BROWSER, "native-1t", "native-2t"]}
    rng = random.Random(0)
    roots = {"bench": benchlib.PAGE_DIR, "ort": benchlib.ORT_WEB_DIST, "work": work, "minilm": args.export.resolve()}
    with benchlib.serve(work / "models", roots) as base, benchlib.chromium() as browser:
        for rnd in range(args.rounds):
            order = list(BROWSER)
            rng.shuffle(order)
            for k in order:
                runtime, threads = BROWSER[k]
                query = {
                    "runtime": runtime,
                    "url": "/models/minilm/" if runtime == "ours" else f"/minilm/{model_path.name}",
                    "samples": "/work/minilm-samples.json",
                    "threads": threads,
                    "warmup": args.warmup,
                    "warmupMs": args.warmup_ms,
                    "runs": args.runs,
                }
                context = browser.new_context()
                page = context.new_page()
                page.goto(f"{base}/bench/bert.html?{urlencode(query)}")
                r = page.evaluate("window.__benchDone", None)
                context.close()
                if "error" in r:
                    raise SystemExit(f"{k}: {r['error']}")
                for s in r["samples"]:
                    s["output"] = np.frombuffer(base64.b64decode(s["output"]), np.float32)
                results[k].append(r)
                med = ", ".join(f"{statistics.median(s['runsMs']):.1f}" for s in r["samples"])
                print(f"round {rnd + 1} {k:12s} threads {r['threads']}: ready {r['sessionReadyMs']:.0f} ms; "
                      f"median ms per sample {med}", flush=True)
            for threads in (1, 2):
                results[f"native-{threads}t"].append({"samples": native(model_path, samples, threads, args.runs)})
    rows = []
    for i, s in enumerate(samples):
        shape = "x".join(map(str, s["input_ids"].shape))
        med = {
            k: statistics.median(statistics.median(r["samples"][i]["runsMs"]) for r in rs) for k, rs in results.items()
        }
        err = max(benchlib.errors(r["samples"][i]["output"], refs[i]["output"])[0] for r in results["ours-1t"])
        rows.append([shape, *(f"{med[k]:.1f}" for k in results),
                     f"{med['ours-1t'] / med['ort-wasm-1t']:.2f}x", f"{med['ours-2t'] / med['ort-wasm-2t']:.2f}x",
                     f"{err:.1e}"])
    header = ["batch x seq", *(f"{k} ms" for k in results), "ours/ORT-web 1t", "ours/ORT-web 2t", "max abs err"]
    ready = {k: statistics.median(r["sessionReadyMs"] for r in results[k]) for k in BROWSER}
    print("\n" + benchlib.text_table(header, rows))
    print("session-ready ms: " + ", ".join(f"{k} {v:.0f}" for k, v in ready.items()))
    if args.write:
        body = f"""## MiniLM (all-MiniLM-L6-v2, benchmarks/minilm/run.py)

- Command: `{command}`; machine: {benchlib.machine_line()}; tree: {benchlib.tree_state()}
- onnxruntime-web {ort_web} (wasm EP) and ours in the same headless Chromium, native onnxruntime
  {onnxruntime.__version__}; {args.rounds} rounds x {args.runs} runs after {args.warmup_ms} ms of warm-up (all
  samples in turn, as V8 swaps optimized code in) and {args.warmup} more warm-up runs per sample.
- Ours: one bundle with dynamic `[batch, seq]` (packaged in {pack_s:.0f} s), every shape from the same session.
  Errors: max abs difference of `last_hidden_state` from native onnxruntime.

{benchlib.md_table(header, rows)}

Session-ready (create() to ready, ms, median): {', '.join(f'{k} {v:.0f}' for k, v in ready.items())}.
"""
        benchlib.write_section("minilm", body)
        print(f"wrote {benchlib.RESULTS}")
    return {"rows": rows, "ready": ready}


if __name__ == "__main__":
    main()
