"""A/B of bundles of one model in one Chromium page: did a change to the kernels (or the plan) make it faster?

    python benchmarks/bundle_ab.py dist/before dist/after --threads 1 --variant relaxed --rounds 40
    python benchmarks/bundle_ab.py dist/before dist/after --cold 10     # + session-ready / first run, fresh pages
    python benchmarks/bundle_ab.py dist/before dist/after --profile     # + each kernel's time, fastest per step

The bundles' sessions live in one page (page/ab.js) and take turns, in a seeded random order per round, each
turn `--runs` runs, so a slow phase of the shared machine (seconds long) hits every bundle of a round alike.
Printed per bundle: the median over rounds of the turns' medians, its ratio to the first bundle's, and the
median (and quartiles) of the per-round ratios, which pair runs a fraction of a second apart; then the same
per-round ratio of the turns' fastest runs, which a run slowed by another process affects least. `--cold N`
also opens N fresh pages per bundle, alternating, that create a session and run once. `--profile` times every
step of every run (session.run's profile option) and sums, per kernel, each step's fastest time over all runs:
steps take 0.01-5 ms, so among hundreds of runs most have one that no other process interrupted, which makes
differences of a few percent in one kernel visible on a busy machine (the bundles must have the same plan).
Every bundle gets the same seeded inputs (from its manifest's inputs); how far each output is from the first
bundle's is printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import benchlib  # noqa: E402


def write_feeds(manifest: dict, out: Path, seed: int) -> list[dict]:
    """Seeded inputs for the manifest's inputs as raw files in `out`: floats N(0, 1), integers in [0, 256)."""
    rng = np.random.default_rng(seed)
    feeds = []
    for entry in manifest["inputs"]:
        dtype, shape = np.dtype(entry["dtype"]), entry["shape"]
        if any(not isinstance(d, int) for d in shape):
            raise SystemExit(f"input {entry['name']} has symbolic dims {shape}: package the bundles with --input-shape")
        if dtype.kind == "f":
            data = rng.standard_normal(shape).astype(dtype)
        else:
            data = rng.integers(0, 256, shape).astype(dtype)
        name = f"feed{len(feeds)}.bin"
        (out / name).write_bytes(data.tobytes())
        feeds.append({"name": entry["name"], "dtype": dtype.name, "shape": shape, "url": f"/ab/{name}"})
    return feeds


def run_page(browser, url: str, timeout_s: float) -> dict:
    context = browser.new_context()
    console: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.goto(url)
        result = page.evaluate(
            """(ms) => Promise.race([window.__abDone, new Promise((_, reject) =>
                 setTimeout(() => reject(new Error(`no result after ${ms / 1000} s`)), ms))])""",
            timeout_s * 1e3,
        )
    finally:
        context.close()
    if "error" in result:
        raise SystemExit(f"A/B page failed: {result['error'].splitlines()[0]}; console: {console[-5:]}")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="+", type=Path, help="bundle directories of one model (the first is the base)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--variant", default="auto", choices=["auto", "simd", "relaxed"])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--runs", type=int, default=5, help="runs per turn (the turn's median is kept)")
    ap.add_argument("--warmup-ms", type=float, default=3000)
    ap.add_argument("--cold", type=int, default=0, help="fresh pages per bundle timing session-ready and run 1")
    ap.add_argument("--profile", action="store_true", help="time every step; compare kernels by fastest step times")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the page's raw results here")
    ap.add_argument("--timeout", type=float, default=1800)
    args = ap.parse_args(argv)
    if len(args.bundles) < 2:
        ap.error("give at least two bundles")

    with tempfile.TemporaryDirectory() as tmp:
        models, feeds_dir = Path(tmp) / "models", Path(tmp) / "ab"
        feeds_dir.mkdir()
        for i, bundle in enumerate(args.bundles):
            shutil.copytree(bundle, models / f"b{i}")
        manifest = json.loads((args.bundles[0] / "manifest.json").read_text())
        (feeds_dir / "feeds.json").write_text(json.dumps(write_feeds(manifest, feeds_dir, args.seed)))
        common = {"feeds": "/ab/feeds.json", "threads": args.threads, "variant": args.variant}
        roots = {"bench": benchlib.PAGE_DIR, "ab": feeds_dir}
        with benchlib.serve(models, roots) as base, benchlib.chromium() as browser:
            page = f"{base}/bench/ab.html?"
            query = [("url", f"/models/b{i}/") for i in range(len(args.bundles))]
            query += [*common.items(), ("rounds", args.rounds), ("runs", args.runs)]
            query += [("warmupMs", args.warmup_ms), ("seed", args.seed), ("profile", int(args.profile))]
            result = run_page(browser, page + urlencode(query), args.timeout)
            cold: list[list[dict]] = [[] for _ in args.bundles]
            for k in range(args.cold):
                order = range(len(args.bundles)) if k % 2 == 0 else reversed(range(len(args.bundles)))
                for i in order:
                    url = page + urlencode([("url", f"/models/b{i}/"), *common.items(), ("cold", 1)])
                    cold[i].append(run_page(browser, url, args.timeout))

    if args.json:
        args.json.write_text(json.dumps({"bundles": [str(b) for b in args.bundles], "page": result, "cold": cold}))
    times, mins = np.array(result["times"], np.float64), np.array(result["mins"], np.float64)
    print(f"{len(args.bundles)} bundles, {args.rounds} rounds x {args.runs} runs, {result['threads'][0]} thread(s), "
          f"{result['variant']} build; max |output - base output|: {result['maxDiff']}")
    rows = []
    for i, bundle in enumerate(args.bundles):
        q1, q2, q3 = np.percentile(times[i] / times[0], [25, 50, 75])
        m1, m2, m3 = np.percentile(mins[i] / mins[0], [25, 50, 75])
        row = [bundle, f"{np.median(times[i]):.3f}", f"{np.median(times[i]) / np.median(times[0]):.3f}",
               f"{q2:.3f} ({q1:.3f}-{q3:.3f})", f"{m2:.3f} ({m1:.3f}-{m3:.3f})"]
        if args.cold:
            row += [f"{np.median([c['createMs'][0] for c in cold[i]]):.1f}",
                    f"{np.median([c['firstRunMs'][0] for c in cold[i]]):.1f}"]
        rows.append(row)
    header = ["bundle", "median ms", "ratio of medians", "per-round ratio (quartiles)", "of fastest runs"]
    if args.cold:
        header += [f"session-ready ms (median of {args.cold})", "first run ms"]
    print(benchlib.text_table(header, rows))
    if args.profile:
        print_kernel_times(result["steps"], args.bundles)
    return 0


def print_kernel_times(steps: list[list[dict]], bundles: list[Path]) -> None:
    """Per kernel: the sum over its steps of each step's fastest time, per bundle, and the ratio to the first."""
    kernels = [s["kernel"] for s in steps[0]]
    if any([s["kernel"] for s in b] != kernels for b in steps):
        raise SystemExit("--profile needs bundles with the same plan (the same kernels in the same order)")
    fastest = np.array([[s["min"] for s in b] for b in steps])  # [bundle, step]
    groups = {k: np.array([x == k for x in kernels]) for k in sorted(set(kernels))}
    groups = dict(sorted(groups.items(), key=lambda kv: -fastest[0, kv[1]].sum()))
    groups["all steps"] = np.ones(len(kernels), bool)
    rows = []
    for name, mask in groups.items():
        totals = fastest[:, mask].sum(axis=1)
        ratios = [f"{t / totals[0]:.3f}" if totals[0] > 0 else "-" for t in totals[1:]]
        rows.append([name, int(mask.sum()), *(f"{t:.3f}" for t in totals), *ratios])
    names = [b.name or str(b) for b in bundles]
    header = ["kernel", "steps", *(f"ms {n}" for n in names), *(f"ratio {n}" for n in names[1:])]
    print(benchlib.text_table(header, rows))


if __name__ == "__main__":
    raise SystemExit(main())
