"""Smoke test of the browser benchmark harness: `benchmarks/run.py --quick` end to end (installs onnxruntime-web
from npm when missing, builds SqueezeNet, runs ours / ORT-web / native, the GEMM micro-benchmark), writing into
a temporary results file so benchmarks/RESULTS.md stays as it is."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parent.parent
RTOL = 1e-4
NUM = r"\d+(?:\.\d+)?"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    results, raw = tmp / "RESULTS.md", tmp / "results.json"
    committed = (REPO / "benchmarks" / "RESULTS.md").read_bytes()
    cmd = [sys.executable, "benchmarks/run.py", "--quick", "--write", "--results", str(results), "--json", str(raw),
           "--work", str(tmp / "work")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"run.py failed:\n{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}"
    assert (REPO / "benchmarks" / "RESULTS.md").read_bytes() == committed, "--results must leave RESULTS.md alone"
    return json.loads(raw.read_text()), results.read_text(), proc.stdout, tmp / "work"


def test_outputs_agree_with_native_onnxruntime(quick_run):
    data, _, _, _ = quick_run
    res = data["results"]["squeezenet1.1"]
    assert set(res) == {"ours-1t", "ours-2t", "ours-tuned-1t", "ours-rejected-1t", "ort-wasm-1t", "ort-wasm-2t",
                        "native-1t", "native-2t"}
    for name, r in res.items():
        if r["rounds"] == 0:
            continue  # its page failed: test_failed_pages_are_reported
        assert r["max_rel_err"] <= RTOL, f"{name}: max rel err {r['max_rel_err']:.3g} vs native onnxruntime"


def test_failed_pages_are_reported(quick_run):
    """A page that throws or hangs is a finding of the benchmark, not a crash of it: it is listed in the results
    (and here as a warning). Our pages (both thread counts) and the single-thread ORT-web page must work."""
    data, md, _, _ = quick_run
    res = data["results"]["squeezenet1.1"]
    for name in ("ours-1t", "ours-2t", "ours-tuned-1t", "ours-rejected-1t", "ort-wasm-1t", "native-1t", "native-2t"):
        assert res[name]["rounds"] == 1 and not res[name]["failures"], (name, res[name]["failures"])
    for name, r in res.items():
        for failure in r["failures"]:
            assert failure in md
            warnings.warn(f"benchmark page failed: {name}: {failure}", stacklevel=1)


def test_measurements_are_sane(quick_run):
    data, _, _, _ = quick_run
    res = {k: r for k, r in data["results"]["squeezenet1.1"].items() if r["rounds"]}  # pages that worked
    for name, r in res.items():
        assert 0 < r["min_ms"] <= r["median_ms"], name
        assert r["session_ready_ms"] > 0, name
        assert r["runs_per_round"] == 3 and r["rounds"] == 1, name
        assert all(t in (1, 2) for t in r["threads_used"]), name
    for name in {"ours-1t", "ours-2t", "ort-wasm-1t", "ort-wasm-2t"} & set(res):
        r = res[name]
        assert r["cross_origin_isolated"] == [True], name
        assert r["nav_to_first_result_ms"] > r["session_ready_ms"], name
        if r["revisit_session_ready_ms"] is not None:
            assert r["revisit_nav_to_first_result_ms"] > r["revisit_session_ready_ms"] > 0, name
        d = r["downloads"]
        assert d["js_raw"] > d["js_gzip"] > 0 and d["wasm_raw"] > d["wasm_gzip"] > 0, (name, d)
    # threads are real in ORT-web (cross-origin isolated page) and in native onnxruntime
    assert res["native-2t"]["threads_used"] == [2]
    assert res["ours-2t"]["threads_used"] == [2]
    if "ort-wasm-2t" in res:
        assert res["ort-wasm-2t"]["threads_used"] == [2]
    assert any(f.endswith("/index.js") for f in res["ours-1t"]["downloads"]["files"])
    assert any(f.endswith(".wasm") and f.startswith("/models/") for f in res["ours-1t"]["downloads"]["files"])
    assert any(f.endswith("ort.wasm.min.mjs") for f in res["ort-wasm-1t"]["downloads"]["files"])
    gemm = data["gemm"]["contenders"]
    assert set(gemm) == {"wasmtime simd", "wasmtime relaxed", "chromium simd", "chromium relaxed", "numpy 1t"}
    for name, per_size in gemm.items():
        assert per_size["256"]["best_gflops"] > 0, name


def test_tables_contain_numbers(quick_run):
    data, md, stdout, _ = quick_run
    assert "<!-- begin browser -->" in md and "<!-- end browser -->" in md
    worked = [k for k, r in data["results"]["squeezenet1.1"].items() if r["rounds"]]
    for contender in worked:
        # latency row: threads, median, min, spread; startup row: session-ready (cold, then revisit)
        row = rf"\| squeezenet1\.1 \| {contender} \| \d \(asked \d\) \| {NUM} \| {NUM} \| ±\d+% \|"
        assert re.search(row, md), contender
        assert re.search(rf"\| squeezenet1\.1 \| {contender} \| {NUM} \| ({NUM}|—) \| ({NUM}|—) \|", md), contender
    assert re.search(rf"\| squeezenet1\.1 \| {NUM}x \| ({NUM}x†?|—) \| {NUM}x \| ({NUM}x†?|—) \|", md), "ratio table"
    assert re.search(rf"\| squeezenet1\.1 \| ort-wasm-1t \| {NUM} KiB \| {NUM} KiB \| {NUM} MiB \|", md), "downloads"
    assert re.search(rf"\| chromium relaxed \| {NUM} \(\d+%\) \|", md), "GEMM table"
    target = r"\| latency ≤ 0\.7x ORT-web at 1 thread, all models \| worst " + NUM + r"x .*\| (not )?met \|"
    assert re.search(target, md), "targets"
    for title in ("== latency", "== ratios", "== paired", "== downloads", "== gemm", "== cycles", "== targets"):
        assert title in stdout


def test_paired_ratios_of_one_round_are_the_plain_ones(quick_run):
    """With one round, pairing per round changes nothing: each paired ratio is the ratio of the medians."""
    data, md, _, _ = quick_run
    r = data["ratios"]["squeezenet1.1"]
    assert r["paired"]["ours 2t speedup"] == pytest.approx(r["ours 2t speedup"])
    assert r["paired"]["ours/ort-web 1t"] == pytest.approx(r["ours/ort-web 1t"])
    assert "paired within rounds: squeezenet1.1 " in md


def test_paired_ratio_pairs_pages_of_the_same_round():
    """Rounds where either side has no measurement (a failed page) drop out; the rest pair by round, not by
    position in the list."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import run

    a = {"rounds_measured": [0, 1, 3], "round_medians_ms": [10.0, 30.0, 12.0]}
    b = {"rounds_measured": [0, 2, 3], "round_medians_ms": [5.0, 7.0, 4.0]}
    assert run.paired_ratio(a, b) == pytest.approx((10 / 5 + 12 / 4) / 2)
    assert run.paired_ratio(a, {"rounds_measured": [1], "round_medians_ms": [15.0]}) == pytest.approx(2.0)
    assert run.paired_ratio(a, {"rounds_measured": [2], "round_medians_ms": [1.0]}) is None


def test_cycles_take_turns_in_pages_side_by_side(quick_run):
    """--cycles: the four pages each ran once per cycle, and the ratios are medians of per-cycle ratios."""
    data, md, _, _ = quick_run
    c = data["cycles"]["squeezenet1.1"]
    assert not c["failures"], c["failures"]
    assert c["cycles"] == data["info"]["cycles"] == 3
    assert all(ms > 0 for ms in c["median_ms"].values()), c
    assert set(c["ratios"]) == {"ours/ort-web 1t", "ours/ort-web 2t", "ours 2t speedup", "ort-web 2t speedup"}
    assert all(r > 0 for r in c["ratios"].values()), c
    assert re.search(rf"\| squeezenet1\.1 \| 3 \| {NUM} \| {NUM} \| {NUM} \| {NUM} \| {NUM}x \|", md), "cycles table"


def test_rejected_bundle_plans_what_tune_turned_down(quick_run):
    """ours-rejected is the model with every layer --tune timed planned with the fastest candidate it did not
    pick; the targets compare tuned against it."""
    data, md, _, work = quick_run
    tuned = json.loads((work / "models" / "squeezenet1.1-tuned" / "manifest.json").read_text())["algorithms"]
    rejected = json.loads((work / "models" / "squeezenet1.1-rejected" / "manifest.json").read_text())["algorithms"]
    assert tuned["nodes"] and set(rejected["nodes"]) == set(tuned["nodes"])
    for node, a in tuned["nodes"].items():
        others = {c: ms for c, ms in a["ms"].items() if c != a["choice"]}
        assert rejected["nodes"][node]["choice"] == min(others, key=others.get), node
    assert data["ratios"]["squeezenet1.1"]["tuned/rejected 1t"] > 0
    assert "tuned ≤ rejected choices" in md
