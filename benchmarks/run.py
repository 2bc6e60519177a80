"""Browser benchmark: our runtime vs onnxruntime-web vs native onnxruntime, one command, one run.

    python benchmarks/run.py [--runs 20] [--warmup 3] [--rounds 3] [--models mobilenetv2,resnet18,squeezenet1.1]
                             [--write] [--quick]

Builds the seeded zoo models (224x224) and our bundles under benchmarks/work, serves them with server.app, and
in one headless Chromium measures, for every round, model and contender (ours-1t, ours-2t, ours-tuned-1t (the
bundle packaged with --tune), ours-rejected-1t (every layer --tune chose for planned with the best candidate it
rejected; only for models with such layers), ort-wasm-1t, ort-wasm-2t, native-1t, native-2t; shuffled per round
by a seeded RNG, so machine noise hits everyone alike):

* latency of `--runs` timed runs after `--warmup` runs (median, min), same seeded input for everyone;
* session-ready time: create() until the session can run;
* navigation start (performance.timeOrigin) to the first result, in a fresh browser context (cold cache), and
  both again on a revisit of the page in the same context (files in the HTTP cache);
* bytes of runtime JS + wasm the page downloaded (raw and gzip -9), model files excluded;
* the first output against native onnxruntime (max abs and max |err| / max |ref|).

Browser contenders each get a fresh page in a fresh context: ORT-web fixes env.wasm.numThreads at its first
session, and a warm HTTP cache would hide download time. Rounds aggregate as median of medians and min of
mins; "spread" is the range of the per-round medians relative to their median. The thread count in the tables
is the one each runtime reports it used (session.threads / ort.env.wasm.numThreads), not the one asked for.
A page that throws or does not finish within --page-timeout is reported (table column "pages ok" and a
"Failed pages" list) instead of ending the run. Then the GEMM micro-benchmark (gemm_bench.py) runs, and
`--write` replaces the browser section of RESULTS.md (--results elsewhere; every raw number goes to --json).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import gzip
import json
import random
import shlex
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode, urlparse

import benchlib
import gemm_bench
import numpy as np
import onnx
import onnxruntime

from wasm_runtime import zoo
from wasm_runtime.package import package

ALL_MODELS = ("mobilenetv2", "resnet18", "squeezenet1.1")
IMAGE_SHAPE = (1, 3, 224, 224)
# ours-tuned: the bundle packaged with --tune (per-layer algorithms timed in wasmtime), and ours-rejected: the
# same model with each of those layers planned with the fastest candidate --tune rejected; tuned vs rejected
# shows whether wasmtime's choices are also the fast ones in Chromium (when --tune picks what the lowering
# would have, tuned vs untuned compares two identical plans)
BROWSER = {
    "ours-1t": ("ours", 1),
    "ours-2t": ("ours", 2),
    "ours-tuned-1t": ("ours-tuned", 1),
    "ours-rejected-1t": ("ours-rejected", 1),
    "ort-wasm-1t": ("ort", 1),
    "ort-wasm-2t": ("ort", 2),
}
NATIVE = {"native-1t": 1, "native-2t": 2}
# --cycles: these pages open side by side and take turns, one run each per cycle (measure_cycles)
CYCLED = ["ours-1t", "ours-2t", "ort-wasm-1t", "ort-wasm-2t"]
# latency ratios also taken pairwise: per cycle (--cycles) and per round (paired_ratio)
LATENCY_PAIRS = {"ours/ort-web 1t": ("ours-1t", "ort-wasm-1t"), "ours/ort-web 2t": ("ours-2t", "ort-wasm-2t"),
                "ours 2t speedup": ("ours-1t", "ours-2t"), "ort-web 2t speedup": ("ort-wasm-1t", "ort-wasm-2t")}
CONTENDERS = [*BROWSER, *NATIVE]
# --webgl adds the GPU backends (SwiftShader here, so this measures shader efficiency, not a GPU): ours
# (the bundle packaged with --backend webgl) and ORT-web's webgl backend, with --webgl-runs timed runs
BROWSER_GL = {"ours-webgl": ("ours-webgl", 1), "ort-webgl": ("ort-webgl", 1)}


class PageFailure(RuntimeError):
    """A browser measurement that did not finish: its page threw, or never produced a result."""

# --------------------------------------------------------------------------------------------------------------
# preparation


def prepare(models: list[str], work: Path, webgl: bool = False) -> dict:
    """Seeded ONNX models, our bundles and the shared input under `work`; returns {name: {"onnx", "bundle"}}."""
    (work / "onnx").mkdir(parents=True, exist_ok=True)
    (work / "models").mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(0).standard_normal(IMAGE_SHAPE).astype(np.float32)
    (work / "input.bin").write_bytes(x.tobytes())
    out = {}
    for name in models:
        t0 = time.perf_counter()
        model = zoo.BUILDERS[name]()
        onnx_path = work / "onnx" / f"{name}.onnx"
        onnx.save(model, onnx_path)
        plain = package(model, work / "models" / name, name=name).manifest
        tuned = package(model, work / "models" / f"{name}-tuned", name=name, tune=True).manifest
        rejected = rejected_choices(tuned)
        if rejected:
            package(model, work / "models" / f"{name}-rejected", name=name, algorithms=rejected)
        if webgl:
            package(model, work / "models" / f"{name}-webgl", name=name, backend="webgl")
        out[name] = {
            "onnx": onnx_path,
            "bundle": work / "models" / name,
            "tuning": tuning_summary(plain, tuned),
            "rejected": len(rejected),
        }
        mib = onnx_path.stat().st_size / 2**20
        print(f"built {name}: {mib:.1f} MiB onnx + bundle ({time.perf_counter() - t0:.1f}s)")
    return out


def rejected_choices(tuned: dict) -> dict[str, str]:
    """For each layer --tune timed: the fastest candidate (in wasmtime) other than the one it chose."""
    out = {}
    for node, a in tuned["algorithms"]["nodes"].items():
        others = {c: ms for c, ms in a.get("ms", {}).items() if c != a["choice"]}
        if others:
            out[node] = min(others, key=others.get)
    return out


def tuning_summary(plain: dict, tuned: dict) -> str:
    """Which algorithms --tune picked, against the lowering's defaults."""
    default = {n: a["choice"] for n, a in plain["algorithms"]["nodes"].items()}
    picked = {n: a["choice"] for n, a in tuned["algorithms"]["nodes"].items()}
    if not picked:
        return "no layer has more than one algorithm"
    changed = sorted(n for n in picked if picked[n] != default.get(n))
    counts = ", ".join(f"{c} {sum(v == c for v in picked.values())}" for c in sorted(set(picked.values())))
    return f"{len(picked)} layers with a choice; tuned picks {counts}; {len(changed)} differ from the default"


# --------------------------------------------------------------------------------------------------------------
# downloads: which responses are "the runtime" (JS + wasm), and their sizes


def runtime_file_kind(path: str) -> str | None:
    """'js' / 'wasm' for runtime files of either contender, None for the page, the input and the model
    (bundle manifest and weights, .onnx), which are not the runtime."""
    if path.startswith("/runtime/") or path.startswith("/ort/"):
        if path.endswith((".js", ".mjs")):
            return "js"
        if path.endswith(".wasm"):
            return "wasm"
    if path.startswith("/models/") and path.endswith(".wasm"):
        return "wasm"  # our kernels: part of every bundle, but they are the runtime's compute code
    return None


_SIZE_CACHE: dict[str, tuple[int, int]] = {}  # path -> (raw, gzip); files do not change during a run


def downloads(responses) -> dict:
    files = {}
    for r in responses:
        path = urlparse(r.url).path
        kind = runtime_file_kind(path)
        if kind is None or path in files or r.status != 200:
            continue
        if path not in _SIZE_CACHE:
            body = r.body()
            _SIZE_CACHE[path] = (len(body), len(gzip.compress(body, 9)))
        files[path] = (kind, *_SIZE_CACHE[path])
    total = {f"{k}_{m}": sum(f[1 + i] for f in files.values() if f[0] == k) for k in ("js", "wasm") for i, m in
             enumerate(("raw", "gzip"))}
    return {**total, "files": sorted(files)}


# --------------------------------------------------------------------------------------------------------------
# measurements


def _page_result(page, what: str, console: list[str], timeout_s: float) -> dict:
    """The page's result; PageFailure (saying where the page was) when it threw or timed out."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        result = page.evaluate(
            """(ms) => Promise.race([window.__benchDone, new Promise((_, reject) =>
                 setTimeout(() => reject(new Error(`no result after ${ms / 1000} s`)), ms))])""",
            timeout_s * 1e3,
        )
    except PlaywrightError as err:
        try:
            where = page.evaluate("window.__benchProgress")
            where = f"at {where['phase']} ({where['at'] / 1e3:.1f} s after navigation)"
        except PlaywrightError:
            where = "at an unknown point"
        message = str(err.message).splitlines()[0].removeprefix("Error: ")
        raise PageFailure(f"{what}: {message}, {where}; console: {console[-5:]}") from None
    if "error" in result:
        raise PageFailure(f"{what}: {result['error'].splitlines()[0]}; console: {console[-5:]}")
    return result


def _query(model: str, runtime: str, threads: int, warmup: int, runs: int, warmup_ms: float) -> dict:
    """bench.html's query for one contender (see page/bench.js)."""
    bundle = {"ours-tuned": f"{model}-tuned", "ours-rejected": f"{model}-rejected", "ours-webgl": f"{model}-webgl"}
    bundle = bundle.get(runtime, model)
    return {
        "runtime": "ours" if runtime.startswith("ours") else runtime,
        "backend": "webgl" if runtime == "ours-webgl" else "wasm",
        "url": f"/models/{bundle}/" if runtime.startswith("ours") else f"/work/onnx/{model}.onnx",
        "input": "/work/input.bin",
        "dims": ",".join(map(str, IMAGE_SHAPE)),
        "threads": threads,
        "warmup": warmup,
        "warmupMs": warmup_ms,
        "runs": runs,
    }


def measure_cycles(
    browser, base_url: str, model: str, contenders: list[str], cycles: int, warmup: int, timeout_s: float,
    warmup_ms: float, rng: random.Random,
) -> dict[str, list[float]]:
    """The contenders' pages open side by side (each in a fresh context, warmed up as in measure_browser),
    then `cycles` cycles each run every page once, in a new shuffled order per cycle: {contender: ms per
    cycle}. The runs of a cycle are a tenth of a second apart, so they see the same machine."""
    contexts, pages = [], {}
    try:
        for k in contenders:
            runtime, threads = BROWSER[k]
            context = browser.new_context()
            contexts.append(context)
            page = context.new_page()
            console: list[str] = []
            page.on("console", lambda m, console=console: console.append(f"{m.type}: {m.text}"))
            page.goto(f"{base_url}/bench/bench.html?{urlencode(_query(model, runtime, threads, warmup, 0, warmup_ms))}")
            _page_result(page, f"{k} {model} (cycles)", console, timeout_s)
            pages[k] = page
        times: dict[str, list[float]] = {k: [] for k in contenders}
        for _ in range(cycles):
            order = contenders[:]
            rng.shuffle(order)
            for k in order:
                times[k].append(pages[k].evaluate("window.__benchRun()"))
        return times
    finally:
        for context in contexts:
            context.close()


def measure_browser(
    browser,
    base_url: str,
    model: str,
    runtime: str,
    threads: int,
    warmup: int,
    runs: int,
    timeout_s: float,
    warmup_ms: float = 0.0,
) -> dict:
    """One fresh context: the measured visit (cold HTTP cache), then a revisit of the same page in the same
    context (files in the HTTP cache, revalidated) that only creates the session and runs once."""
    query = _query(model, runtime, threads, warmup, runs, warmup_ms)
    what = f"{runtime} {model} {threads}t"
    context = browser.new_context()  # fresh: cold HTTP cache, no ORT-web state from an earlier page
    responses, console = [], []
    context.on("response", lambda r: responses.append(r))
    try:
        page = context.new_page()
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        page.goto(f"{base_url}/bench/bench.html?{urlencode(query)}")
        result = _page_result(page, what, console, timeout_s)
        result["workers"] = len(page.workers)
        result["downloads"] = downloads(responses)
        page.close()
        page = context.new_page()
        page.goto(f"{base_url}/bench/bench.html?{urlencode({**query, 'warmup': 1, 'warmupMs': 0, 'runs': 0})}")
        try:
            revisit = _page_result(page, f"{what} (revisit)", console, timeout_s)
            result["revisit"] = {k: revisit[k] for k in ("sessionReadyMs", "navToFirstResultMs")}
        except PageFailure as err:  # the measured visit stands; the revisit's failure is reported
            result["revisit"], result["revisit_error"] = {}, str(err)
    finally:
        context.close()
    result["output"] = np.frombuffer(base64.b64decode(result["output"]), np.float32)
    result["console"] = [line for line in console if not line.startswith(("debug", "log"))][:20]
    return result


def measure_native(model_bytes: bytes, x: np.ndarray, threads: int, warmup: int, runs: int) -> dict:
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    t0 = time.perf_counter()
    session = onnxruntime.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    ready = (time.perf_counter() - t0) * 1e3
    feeds = {session.get_inputs()[0].name: x}
    first = session.run(None, feeds)[0]
    for _ in range(warmup - 1):
        session.run(None, feeds)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - t) * 1e3)
    return {"threads": threads, "requestedThreads": threads, "sessionReadyMs": ready, "navToFirstResultMs": None,
            "runsMs": times, "output": first.reshape(-1)}


# --------------------------------------------------------------------------------------------------------------
# aggregation and tables


def _median_or_none(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


EMPTY = {  # what a contender whose every page failed reports
    "median_ms": None, "min_ms": None, "round_medians_ms": [], "rounds_measured": [], "spread": None,
    "session_ready_ms": None,
    "nav_to_first_result_ms": None, "revisit_session_ready_ms": None, "revisit_nav_to_first_result_ms": None,
    "threads_used": [], "cross_origin_isolated": [], "variant": None, "runtime_timings": None, "workers": [],
    "max_abs_err": None, "max_rel_err": None, "downloads": None, "console": [], "runs_per_round": 0, "rounds": 0,
}


def aggregate(samples: list[dict], ref: np.ndarray, failures: list[str], requested: int) -> dict:
    pages = {"failures": failures, "ok": f"{len(samples)}/{len(samples) + len(failures)}",
             "threads_requested": requested}
    failures = failures + [s["revisit_error"] for s in samples if "revisit_error" in s]
    pages["failures"] = failures
    if not samples:
        return {**EMPTY, **pages}
    medians = [statistics.median(s["runsMs"]) for s in samples]
    med = statistics.median(medians)
    errs = [benchlib.errors(s["output"], ref) for s in samples]
    nav = [s["navToFirstResultMs"] for s in samples if s["navToFirstResultMs"] is not None]
    return {
        "median_ms": med,
        "min_ms": min(min(s["runsMs"]) for s in samples),
        "round_medians_ms": medians,
        "rounds_measured": [s.get("round") for s in samples],  # which round each of round_medians_ms is from
        "spread": (max(medians) - min(medians)) / med if med else 0.0,
        "session_ready_ms": statistics.median(s["sessionReadyMs"] for s in samples),
        "nav_to_first_result_ms": statistics.median(nav) if nav else None,
        "revisit_session_ready_ms": _median_or_none(s.get("revisit", {}).get("sessionReadyMs") for s in samples),
        "revisit_nav_to_first_result_ms": _median_or_none(
            s.get("revisit", {}).get("navToFirstResultMs") for s in samples
        ),
        "threads_used": sorted({s["threads"] for s in samples}),
        "cross_origin_isolated": sorted({s.get("crossOriginIsolated") for s in samples if "crossOriginIsolated" in s}),
        "variant": samples[0].get("variant"),
        "runtime_timings": {  # our runtime's own split of create(), median over rounds
            key: statistics.median(s["runtimeTimings"][key] for s in samples)
            for key in ("fetchMs", "compileMs", "initMs")
        }
        if all(s.get("runtimeTimings") for s in samples)
        else None,
        "workers": sorted({s["workers"] for s in samples if "workers" in s}),
        "max_abs_err": max(e[0] for e in errs),
        "max_rel_err": max(e[1] for e in errs),
        "downloads": samples[0].get("downloads"),
        "console": samples[0].get("console", []),
        "runs_per_round": len(samples[0]["runsMs"]),
        "rounds": len(samples),
        **pages,
    }


def _f(v, fmt="{:.1f}") -> str:
    return "—" if v is None else fmt.format(v)


def _kb(n: int) -> str:
    return f"{n / 1024:,.1f} KiB" if n < 2**20 else f"{n / 2**20:,.2f} MiB"


def paired_ratio(a: dict, b: dict) -> float | None:
    """Median over rounds of a's round median / b's in the same round (rounds where both measured): a model's
    pages of one round run within about a minute, its rounds minutes apart, so machine-wide slow phases cancel
    out more than in a ratio of the overall medians."""
    rb = dict(zip(b["rounds_measured"], b["round_medians_ms"], strict=True))
    pairs = [m / rb[r] for r, m in zip(a["rounds_measured"], a["round_medians_ms"], strict=True) if r in rb and rb[r]]
    return statistics.median(pairs) if pairs else None


def ratios(res: dict) -> dict:
    """Per model: the ratios the issue asks for (below 1 means ours is faster / smaller); None where a
    contender has no measurement (all its pages failed)."""
    out = {}
    for model, r in res.items():
        med = {k: v["median_ms"] for k, v in r.items()}
        gz = {k: r[k]["downloads"] and r[k]["downloads"]["js_gzip"] + r[k]["downloads"]["wasm_gzip"] for k in BROWSER}

        def startup(key, k1="ours-1t", k2="ort-wasm-1t", r=r):
            return _div(r[k1][key], r[k2][key])

        out[model] = {
            "ours/ort-web 1t": _div(med["ours-1t"], med["ort-wasm-1t"]),
            "ours/ort-web 2t": _div(med["ours-2t"], med["ort-wasm-2t"]),
            "ours/native 1t": _div(med["ours-1t"], med["native-1t"]),
            "ours/native 2t": _div(med["ours-2t"], med["native-2t"]),
            "ours 2t speedup": _div(med["ours-1t"], med["ours-2t"]),
            "tuned/untuned 1t": _div(med["ours-tuned-1t"], med["ours-1t"]),
            "tuned/rejected 1t": _div(med["ours-tuned-1t"], med["ours-rejected-1t"]),
            **({"ours/ort-web webgl": _div(med["ours-webgl"], med["ort-webgl"])} if "ours-webgl" in med else {}),
            "ort-web 2t speedup": _div(med["ort-wasm-1t"], med["ort-wasm-2t"]),
            "native 2t speedup": _div(med["native-1t"], med["native-2t"]),
            "session-ready ours/ort-web 1t": startup("session_ready_ms"),
            "session-ready ours/ort-web 2t": startup("session_ready_ms", "ours-2t", "ort-wasm-2t"),
            "session-ready ours/ort-web 1t revisit": startup("revisit_session_ready_ms"),
            "nav-to-first ours/ort-web 1t": startup("nav_to_first_result_ms"),
            "download gzip ours/ort-web": _div(gz["ours-1t"], gz["ort-wasm-1t"]),
            "paired": {name: paired_ratio(r[a], r[b]) for name, (a, b) in LATENCY_PAIRS.items()},
        }
    return out


def cycle_stats(times: dict[str, list[float]], failures: list[str]) -> dict:
    """Medians of the cycled runs, and each ratio as the median of its per-cycle ratios (the two runs of one
    cycle are a fraction of a second apart)."""
    n = len(times[CYCLED[0]])
    return {
        "cycles": n,
        "median_ms": {k: statistics.median(v) if v else None for k, v in times.items()},
        "ratios": {name: statistics.median(times[a][i] / times[b][i] for i in range(n)) if n else None
                   for name, (a, b) in LATENCY_PAIRS.items()},
        "failures": failures,
    }


def cycle_table(cyc: dict) -> tuple[list[str], list[list]]:
    header = ["model", "cycles", *(f"{k} median ms" for k in CYCLED), *LATENCY_PAIRS]
    rows = [[m, c["cycles"], *(_f(c["median_ms"][k]) for k in CYCLED),
             *(_f(c["ratios"][r], "{:.2f}x") for r in LATENCY_PAIRS)] for m, c in cyc.items()]
    return header, rows


def latency_table(res: dict) -> tuple[list[str], list[list]]:
    header = ["model", "contender", "threads used", "median ms", "min ms", "spread", "max abs err", "max rel err",
              "pages ok"]
    rows = []
    for model, r in res.items():
        for k in CONTENDERS:
            a = r[k]
            used = ",".join(map(str, a["threads_used"])) or "—"
            spread = None if a["spread"] is None else a["spread"] / 2
            rows.append([model, k, f"{used} (asked {a['threads_requested']})", _f(a["median_ms"]), _f(a["min_ms"]),
                         _f(spread, "±{:.0%}"), _f(a["max_abs_err"], "{:.2g}"), _f(a["max_rel_err"], "{:.2g}"),
                         a["ok"] if k in BROWSER else "—"])
    return header, rows


def startup_table(res: dict) -> tuple[list[str], list[list]]:
    header = ["model", "contender", "session-ready ms", "nav→first result ms", "session-ready ms (revisit)",
              "nav→first result ms (revisit)", "our create() breakdown (fetch / compile / init ms)"]
    rows = []
    for model, r in res.items():
        for k in CONTENDERS:
            a = r[k]
            t = a.get("runtime_timings") or {}
            breakdown = " / ".join(_f(t.get(x)) for x in ("fetchMs", "compileMs", "initMs")) if t else "—"
            rows.append([model, k, _f(a["session_ready_ms"]), _f(a["nav_to_first_result_ms"], "{:.0f}"),
                         _f(a["revisit_session_ready_ms"]), _f(a["revisit_nav_to_first_result_ms"], "{:.0f}"),
                         breakdown])
    return header, rows


RATIO_KEYS = ["ours/ort-web 1t", "ours/ort-web 2t", "ours/native 1t", "ours/native 2t", "ours 2t speedup",
              "tuned/untuned 1t", "tuned/rejected 1t",
              "ort-web 2t speedup", "native 2t speedup", "session-ready ours/ort-web 1t",
              "session-ready ours/ort-web 1t revisit", "nav-to-first ours/ort-web 1t", "download gzip ours/ort-web"]
# ratios that involve ours-2t: meaningless as thread scaling while ours-2t really ran on one thread
OURS_2T_KEYS = ("ours/ort-web 2t", "ours/native 2t", "ours 2t speedup")


def ratio_table(res: dict, rat: dict) -> tuple[list[str], list[list]]:
    """Ratios per model; the last column says how many threads ours-2t really ran (1 while threads are not
    implemented: its 2-thread ratios then compare ours on 1 thread)."""
    rows = []
    for m, r in rat.items():
        one_thread = res[m]["ours-2t"]["threads_used"] == [1]
        mark = {k: "†" if one_thread and k in OURS_2T_KEYS else "" for k in RATIO_KEYS}
        fmt = [_f(r[k], "{:.4f}x") if k.startswith("download") else _f(r[k], "{:.2f}x" + mark[k]) for k in RATIO_KEYS]
        rows.append([m, *fmt, ",".join(map(str, res[m]["ours-2t"]["threads_used"])) or "—"])
    return ["model", *RATIO_KEYS, "ours-2t threads used"], rows


def paired_table(rat: dict) -> tuple[list[str], list[list]]:
    rows = [[m, *(_f(r["paired"][k], "{:.2f}x") for k in LATENCY_PAIRS)] for m, r in rat.items()]
    return ["model", *LATENCY_PAIRS], rows


def download_table(res: dict) -> tuple[list[str], list[list]]:
    header = ["model", "contender", "JS raw", "JS gzip", "wasm raw", "wasm gzip", "total raw", "total gzip", "files"]
    rows = []
    for model, r in res.items():
        for k in BROWSER:
            d = r[k]["downloads"]
            if d is None:
                rows.append([model, k, *["—"] * 7])
                continue
            files = ", ".join(Path(f).name for f in d["files"])
            rows.append([model, k, _kb(d["js_raw"]), _kb(d["js_gzip"]), _kb(d["wasm_raw"]), _kb(d["wasm_gzip"]),
                         _kb(d["js_raw"] + d["wasm_raw"]), _kb(d["js_gzip"] + d["wasm_gzip"]), files])
    return header, rows


def targets(res: dict, rat: dict, gemm: dict | None) -> list[list[str]]:
    """The issue's targets: [target, measured, status]."""

    def check_in(subset, name, key, limit):
        vals = {m: r[key] for m, r in subset.items()}
        if not vals or any(v is None for v in vals.values()):
            return [name, "not measured", "not met"]
        detail = ", ".join(f"{m} {v:.2f}x" for m, v in vals.items())
        worst = max(vals.values())
        return [name, f"worst {worst:.2f}x ({detail})", "met" if worst <= limit else "not met"]

    def check(name, key, limit, fmt="{:.2f}x", note="", higher=False):
        vals = {m: r[key] for m, r in rat.items()}
        detail = ", ".join(f"{m} {_f(v, fmt)}" for m, v in vals.items()) + note
        missing = [m for m, v in vals.items() if v is None]
        if missing:
            return [name, f"not measured for {', '.join(missing)} ({detail})", "not met"], False
        w = min(vals.values()) if higher else max(vals.values())
        ok = w >= limit if higher else w <= limit
        return [name, f"worst {fmt.format(w)} ({detail})", "met" if ok else "not met"], ok

    def used(k):
        return sorted({u for r in res.values() for u in r[k]["threads_used"]})

    rows = []
    rows.append(check("latency ≤ 0.7x ORT-web at 1 thread, all models", "ours/ort-web 1t", 0.7)[0])
    rows.append(check("latency ≤ 0.7x ORT-web at 2 threads, all models", "ours/ort-web 2t", 0.7,
                      note=f"; ours-2t used {used('ours-2t')} thread(s)")[0])
    paired = ", ".join(f"{m} {_f(r['paired']['ours 2t speedup'], '{:.2f}x')}" for m, r in rat.items())
    row, _ = check("2-thread speedup ≥ 1.8x (ours 1t / ours 2t)", "ours 2t speedup", 1.8, higher=True,
                   note=f"; ours-2t used {used('ours-2t')} thread(s); paired within rounds: {paired}")
    if row[2] == "met" and used("ours-2t") != [2]:
        row[2] = "not met"
    rows.append(row)
    revisit = ", ".join(f"{m} {_f(r['session-ready ours/ort-web 1t revisit'], '{:.2f}x')}" for m, r in rat.items())
    rows.append(check("session-ready ≤ 0.1x ORT-web (cold cache)", "session-ready ours/ort-web 1t", 0.1, "{:.3f}x",
                      note=f"; on a revisit with files cached: {revisit}")[0])
    rows.append(check("runtime download (gzip) ≤ 1/20 of ORT-web", "download gzip ours/ort-web", 1 / 20, "{:.4f}x")[0])
    # models where --tune had a choice: its picks against the best ones it rejected (the rejected bundle)
    chose = {m: r for m, r in rat.items() if res[m]["ours-rejected-1t"]["ok"] != "0/0"}
    row = check_in(chose, "--tune's wasmtime choices also fast in Chromium: tuned ≤ rejected choices (1t)",
                   "tuned/rejected 1t", 1.0)
    if not chose:
        row = [row[0], "no model has a layer with more than one algorithm", "not measured"]
    row[1] += "; tuned/untuned: " + ", ".join(f"{m} {_f(r['tuned/untuned 1t'], '{:.2f}x')}" for m, r in rat.items())
    rows.append(row)
    if any("ours/ort-web webgl" in r for r in rat.values()):
        gl = {m: r for m, r in rat.items() if m in ("mobilenetv2", "resnet18")}
        rows.append(check_in(gl, "WebGL latency ≤ 0.5x ORT-web webgl (MobileNetV2, ResNet-18; SwiftShader)",
                             "ours/ort-web webgl", 0.5))
    if gemm and 512 in gemm["sizes"]:
        c = gemm["contenders"]
        share = c["chromium relaxed"][512]["best_gflops"] / c["numpy 1t"][512]["best_gflops"]
        simd = c["chromium simd"][512]["best_gflops"] / c["numpy 1t"][512]["best_gflops"]
        rows.append(["GEMM in Chromium ≥ 40% of numpy 1t at n=512",
                     f"{share:.0%} (relaxed build, what create() picks here; SIMD128 build {simd:.0%})",
                     "met" if share >= 0.4 else "not met"])
    else:
        rows.append(["GEMM in Chromium ≥ 40% of numpy 1t at n=512", "not measured (n=512 not run)", "—"])
    return rows


# --------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20, help="timed runs per measurement (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up runs, the first result included (default 3)")
    p.add_argument(
        "--warmup-ms",
        type=float,
        default=2000,
        help="browser wasm contenders also warm up at least this long (default 2000): V8 runs new wasm code in its "
        "baseline tier and compiles the optimized tier in the background, which takes ~10 runs here",
    )
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--cycles", type=int, default=20,
                   help="per round and model, cycles of ours and ORT-web (1 and 2 threads) taking turns in pages "
                        "open side by side, one run each per cycle (default 20; 0: none)")
    p.add_argument("--models", default=",".join(ALL_MODELS))
    p.add_argument("--gemm-sizes", default="256,512,1024")
    p.add_argument("--seed", type=int, default=0, help="seed of the contender order")
    p.add_argument("--page-timeout", type=float, help="seconds before a page counts as failed (120; --quick: 60)")
    p.add_argument("--quick", action="store_true", help="smoke mode: 1 round, 3 runs, SqueezeNet only, GEMM n=256")
    p.add_argument("--webgl", action="store_true", help="add ours-webgl vs ORT-web webgl (slow: SwiftShader)")
    p.add_argument("--webgl-runs", type=int, default=3, help="timed runs of the webgl contenders (default 3)")
    p.add_argument("--write", action="store_true", help="replace the browser section of --results")
    p.add_argument("--results", type=Path, default=benchlib.RESULTS, help="file --write updates (RESULTS.md)")
    p.add_argument("--json", type=Path, help="raw results (JSON; default WORK/results.json)")
    p.add_argument("--work", type=Path, default=benchlib.WORK_DIR, help="generated files (default benchmarks/work)")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.runs, args.models, args.gemm_sizes, args.cycles = 1, 3, "squeezenet1.1", "256", 3
    if args.page_timeout is None:
        args.page_timeout = 60 if args.quick else 120
    models = args.models.split(",")
    unknown = sorted(set(models) - set(zoo.BUILDERS))
    if unknown:
        p.error(f"unknown model(s) {unknown}; known: {sorted(zoo.BUILDERS)}")
    if args.warmup < 1 or args.runs < 1 or args.rounds < 1:
        p.error("--warmup, --runs and --rounds must be >= 1")
    command = "python benchmarks/run.py " + shlex.join(argv if argv is not None else sys.argv[1:])

    ort_web_version = benchlib.ensure_ort_web()
    work = args.work.resolve()
    args.json = args.json or work / "results.json"
    if args.webgl:
        BROWSER.update(BROWSER_GL)
        CONTENDERS[:] = [*BROWSER, *NATIVE]
        RATIO_KEYS.append("ours/ort-web webgl")
    built = prepare(models, work, args.webgl)
    x = np.fromfile(work / "input.bin", np.float32).reshape(IMAGE_SHAPE)
    model_bytes = {m: built[m]["onnx"].read_bytes() for m in models}
    refs = {m: measure_native(model_bytes[m], x, 1, 1, 0)["output"] for m in models}  # the reference outputs

    rng = random.Random(args.seed)
    samples: dict[str, dict[str, list[dict]]] = {m: {k: [] for k in CONTENDERS} for m in models}
    failures: dict[str, dict[str, list[str]]] = {m: {k: [] for k in CONTENDERS} for m in models}
    roots = {"bench": benchlib.PAGE_DIR, "ort": benchlib.ORT_WEB_DIST, "work": work}
    t_start = time.perf_counter()
    with benchlib.serve(work / "models", roots) as base_url, benchlib.chromium() as browser:
        chromium_version = browser.version
        print(f"Chromium {chromium_version}, onnxruntime-web {ort_web_version}, onnxruntime {onnxruntime.__version__}")

        def measure(k: str, rnd: int, model: str) -> None:
            if k == "ours-rejected-1t" and not built[model]["rejected"]:
                return  # --tune had no choice to make in this model
            if k in BROWSER:
                runtime, threads = BROWSER[k]
                gl = k in BROWSER_GL
                warmup, runs = (1, args.webgl_runs) if gl else (args.warmup, args.runs)
                warmup_ms = 0.0 if gl else args.warmup_ms
                timeout = max(args.page_timeout, 900) if gl else args.page_timeout
                try:
                    s = measure_browser(browser, base_url, model, runtime, threads, warmup, runs, timeout, warmup_ms)
                except PageFailure as err:
                    failures[model][k].append(f"round {rnd + 1}: {err}")
                    print(f"round {rnd + 1}/{args.rounds} {model:13s} {k:11s} FAILED: {err}", flush=True)
                    return
            else:
                s = measure_native(model_bytes[model], x, NATIVE[k], args.warmup, args.runs)
            s["round"] = rnd
            samples[model][k].append(s)
            _, rel = benchlib.errors(s["output"], refs[model])
            print(f"round {rnd + 1}/{args.rounds} {model:13s} {k:11s} threads {s['threads']}: median "
                  f"{statistics.median(s['runsMs']):7.1f} ms, min {min(s['runsMs']):7.1f} ms, session-ready "
                  f"{s['sessionReadyMs']:7.1f} ms, rel err {rel:.1e}", flush=True)

        def cycle(rnd: int, model: str) -> None:
            try:
                times = measure_cycles(browser, base_url, model, CYCLED, args.cycles, args.warmup, args.page_timeout,
                                       args.warmup_ms, rng)
            except PageFailure as err:
                cycle_failures[model].append(f"round {rnd + 1}: {err}")
                print(f"round {rnd + 1}/{args.rounds} {model:13s} cycles FAILED: {err}", flush=True)
                return
            for k, ms in times.items():
                cycles[model][k] += ms
            print(f"round {rnd + 1}/{args.rounds} {model:13s} cycles: "
                  + ", ".join(f"{k} {statistics.median(ms):.1f}" for k, ms in times.items()) + " ms", flush=True)

        cycles: dict[str, dict[str, list[float]]] = {m: {k: [] for k in CYCLED} for m in models}
        cycle_failures: dict[str, list[str]] = {m: [] for m in models}
        # the CPU contenders first, then the GEMM micro-benchmark, then the WebGL ones: SwiftShader keeps the
        # browser's GPU process busy for a while after a WebGL page closes, which slowed the next CPU pages
        cpu = [k for k in CONTENDERS if k not in BROWSER_GL]
        for rnd in range(args.rounds):
            for model in models:
                order = cpu[:]
                rng.shuffle(order)
                for k in order:
                    measure(k, rnd, model)
                if args.cycles:
                    cycle(rnd, model)
        print("GEMM micro-benchmark ...", flush=True)
        gemm_sizes = [int(n) for n in args.gemm_sizes.split(",")]
        budget = 100 if args.quick else 300
        gemm = gemm_bench.run(browser, base_url, gemm_sizes, args.rounds, budget_ms=budget, work=work)
        gl_contenders = [k for k in CONTENDERS if k in BROWSER_GL]
        for rnd in range(args.rounds if gl_contenders else 0):
            for model in models:
                order = gl_contenders[:]
                rng.shuffle(order)
                for k in order:
                    measure(k, rnd, model)
    elapsed = time.perf_counter() - t_start

    requested = {**{k: t for k, (_, t) in BROWSER.items()}, **NATIVE}
    res = {m: {k: aggregate(samples[m][k], refs[m], failures[m][k], requested[k]) for k in CONTENDERS} for m in models}
    rat = ratios(res)
    cyc = {m: cycle_stats(cycles[m], cycle_failures[m]) for m in models} if args.cycles else {}
    tables = {
        "latency": latency_table(res),
        "startup": startup_table(res),
        "ratios": ratio_table(res, rat),
        "paired": paired_table(rat),
        "downloads": download_table(res),
        "cycles": cycle_table(cyc),
        "gemm": gemm_bench.table(gemm),
    }
    tgt = targets(res, rat, gemm)
    for title, (header, rows) in tables.items():
        print(f"\n== {title}\n{benchlib.text_table(header, rows)}")
    print(f"\n== targets\n{benchlib.text_table(['target', 'measured', ''], tgt)}")
    notes = sorted({line for r in res.values() for a in r.values() for line in a["console"]})
    if notes:
        print("\nconsole messages:\n  " + "\n  ".join(notes))
    failed = [f"{m} {k} {f}" for m, r in res.items() for k, a in r.items() for f in a["failures"]]
    failed += [f"{m} cycles {f}" for m, c in cyc.items() for f in c["failures"]]
    if failed:
        print("\nFAILED pages:\n  " + "\n  ".join(failed))

    info = {
        "command": command,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": benchlib.machine_line(),
        "tree": benchlib.tree_state(),
        "chromium": chromium_version,
        "onnxruntime_web": ort_web_version,
        "onnxruntime": onnxruntime.__version__,
        "runs": args.runs,
        "warmup": args.warmup,
        "warmup_ms": args.warmup_ms,
        "rounds": args.rounds,
        "cycles": args.cycles,
        "models": models,
        "tuning": {m: built[m]["tuning"] for m in models},
        "elapsed_s": elapsed,
    }
    raw = {"info": info, "results": res, "ratios": rat, "cycles": cyc, "gemm": gemm, "targets": tgt}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(raw, indent=1, default=float))
    if args.write:
        benchlib.write_section("browser", markdown(info, tables, tgt, res, gemm, failed, notes), args.results)
        print(f"\nwrote {args.results}")
    print(f"\nraw results: {args.json} ({elapsed:.0f} s)")
    return raw


def markdown(
    info: dict, tables: dict, tgt: list, res: dict, gemm: dict, failed: list[str], notes: list[str]
) -> str:
    coi = sorted({str(c) for r in res.values() for k in BROWSER for c in r[k]["cross_origin_isolated"]})
    variants = sorted({f"{k.split('-')[0]}: {a['variant']}" for r in res.values() for k, a in r.items()
                       if a["variant"]})
    md = benchlib.md_table
    used = sorted({t for r in res.values() for t in r["ours-2t"]["threads_used"]})
    footnote = (
        f"† ours-2t ran on {'/'.join(map(str, used))} thread(s), as `session.threads` reports: these ratios compare "
        "ours at that thread count, and \"ours 2t speedup\" is then only noise around 1.\n"
        if used == [1]
        else ""
    )
    cycles_md = "Not measured (`--cycles 0`).\n" if not info["cycles"] else f"""In each round, per model, the pages of
{', '.join(CYCLED)} open side by side (fresh contexts, warmed up as above), then take turns for {info['cycles']}
cycles: each cycle runs every page once, in a shuffled order, so the runs of one cycle are a fraction of a second
apart and see the same machine, while each page idles between its own runs (~0.1 s). Ratios are medians of the
per-cycle ratios. This is the regime of a page that runs a model per video frame, not back to back: it tells how
the runtimes cope with threads that sleep between runs.

{benchlib.md_table(*tables['cycles'])}
"""
    problems = ""
    if failed:
        problems += "\n### Failed pages\n\n" + "\n".join(f"- {f}" for f in failed) + "\n"
    if notes:
        problems += "\n### Console messages\n\n" + "\n".join(f"- `{n}`" for n in notes) + "\n"
    return f"""## Browser: our runtime vs onnxruntime-web vs native onnxruntime (benchmarks/run.py)

- Command: `{info['command']}` ({info['elapsed_s']:.0f} s)
- Date: {info['date']}; tree: {info['tree']}
- Machine: {info['machine']}
- Chromium {info['chromium']} (headless, Playwright); onnxruntime-web {info['onnxruntime_web']} (npm,
  `ort.wasm.min.mjs`, wasm EP); onnxruntime {info['onnxruntime']} (native, CPU EP)
- crossOriginIsolated in every page: {', '.join(coi)}; kernel builds: {'; '.join(variants)}

How it is measured:

- Seeded zoo models (`wasm_runtime/zoo.py`), input 1x3x224x224 from `default_rng(0)`, the same bytes for all.
- Rounds: {info['rounds']}; in each round every model, and per model every contender in a shuffled order
  (the WebGL contenders in rounds of their own after all CPU ones: SwiftShader's work outlives their pages).
  Each browser measurement is a fresh page in a fresh context (cold cache): {info['warmup']} warm-up runs (the
  first gives the first result; wasm contenders keep warming up for at least {info.get('warmup_ms', 0):.0f} ms, the
  same for both runtimes, since V8 starts new wasm code in its baseline tier and swaps in the optimized code
  compiled in the background: here the first ~10 runs are up to 2x slower), then {info['runs']} timed runs.
- Latency: median of the per-round medians, min of all runs; spread: ± half the range of the per-round medians.
- Session-ready: `InferenceSession.create()` start to resolve (fetch + compile + weights; for ORT-web also its
  wasm backend init). Native: the `InferenceSession(...)` constructor.
- Nav→first result: `performance.now()` at the first output, i.e. since navigation start, imports and
  downloads included.
- Native: `intra_op_num_threads` = threads, `inter_op_num_threads` = 1.
- Errors: first output against native onnxruntime on 1 thread (max abs, max |err| / max |ref|).
- "threads used" is what the runtime reports it used (`session.threads`, `ort.env.wasm.numThreads`), not what
  was asked for.

### Latency

{md(*tables['latency'])}

### Startup

Session-ready and navigation-to-first-result on the measured (first) visit with a cold cache, and on a revisit
of the same page in the same context (HTTP cache warm, files revalidated: the model's bytes are not downloaded
again). For ours, the worker's own split of create(): download (manifest, weights with their integrity check,
kernels), kernel compile, memory setup and weights copy.

{md(*tables['startup'])}

### Ratios (< 1: ours faster / smaller)

ours-tuned is the same model packaged with `--tune` (each layer's candidate algorithms timed in wasmtime at
package time): {'; '.join(f"{m}: {t}" for m, t in info['tuning'].items())}. ours-rejected plans each of
those layers with the fastest candidate `--tune` rejected (`package(..., algorithms=...)`); tuned/rejected
below 1 means wasmtime's choices are also the faster ones in Chromium. Models without such layers have no
ours-rejected pages.

{md(*tables['ratios'])}

{footnote}
The same latency ratios paired within rounds: per round, one page's median over the other's, then the median of
those over the rounds. A round's pages run within a minute of each other, so the machine's slow phases, which
last seconds to minutes, hit both sides of a pair more alike than they hit the overall medians above (the targets
below use those).

{md(*tables['paired'])}

### Pages taking turns (runs spaced out, as for video frames)

{cycles_md}
### Runtime download (JS + wasm fetched by the page; model files, page and input excluded)

Ours: `index.js`, `worker.js` and the bundle's kernels `.wasm` (only the kernels the model calls);
ORT-web: `ort.wasm.min.mjs`, `ort-wasm-simd-threaded.mjs` and `.wasm`. gzip is `gzip -9` of the same bytes.

{md(*tables['downloads'])}

### f32 GEMM kernel micro-benchmark (benchmarks/gemm_bench.py)

Our `f32_gemm` in wasmtime and in Chromium (the same `.wasm`, SIMD128 and relaxed-SIMD builds) vs numpy
{np.__version__} float32 matmul on 1 thread ({gemm.get('numpy_threads')}); best of {gemm['rounds']} interleaved
rounds, GFLOP/s = 2n³ / time of one call; outputs checked against numpy.

{md(*tables['gemm'])}

### Targets (issue)

{md(['target', 'measured', 'status'], tgt)}
{problems}"""


if __name__ == "__main__":
    main()
