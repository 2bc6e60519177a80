"""Shared by the benchmark scripts: paths, machine facts, RESULTS.md sections, the onnxruntime-web install,
the server and the headless Chromium."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / "work"  # generated files (gitignored)
PAGE_DIR = BENCH_DIR / "page"
RESULTS = BENCH_DIR / "RESULTS.md"
ORT_WEB_DIR = BENCH_DIR / "node_modules" / "onnxruntime-web"
ORT_WEB_DIST = ORT_WEB_DIR / "dist"

# The system Chromium, launched as tests/conftest.py does (Playwright cannot download browsers here).
CHROMIUM = os.environ.get("BENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


# ---------------------------------------------------------------------------------------------------------
# machine facts


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_line() -> str:
    return (
        f"{cpu_model()}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def tree_state() -> str:
    """The commit measured, and which tracked files outside benchmarks/ differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout

    try:
        head = git("rev-parse", "--short", "HEAD").strip()
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)benchmarks")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    paths = [line[3:] for line in dirty.splitlines()]
    return f"commit {head}" + (f" + uncommitted changes to {', '.join(paths)}" if paths else "")


# ---------------------------------------------------------------------------------------------------------
# RESULTS.md: one file, one section per script, each replaced between its markers


def _markers(key: str) -> tuple[str, str]:
    return f"<!-- begin {key} -->", f"<!-- end {key} -->"


def write_section(key: str, body: str, path: Path = RESULTS) -> None:
    """Replace the section `key` of the results file (between its markers) with `body`; append it when the file
    has no such section yet; create the file when missing. Other sections stay as they are."""
    begin, end = _markers(key)
    block = f"{begin}\n{body.strip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text.rstrip("\n") + "\n")


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(header: list[str], rows: list[list]) -> str:
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    return "\n".join([fmt(cells[0]), fmt(["-" * w for w in widths]), *map(fmt, cells[1:])])


# ---------------------------------------------------------------------------------------------------------
# onnxruntime-web (npm, dev-only)


def pinned_ort_web_version() -> str:
    return json.loads((BENCH_DIR / "package.json").read_text())["devDependencies"]["onnxruntime-web"]


def installed_ort_web_version() -> str | None:
    try:
        return json.loads((ORT_WEB_DIR / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def ensure_ort_web(quiet: bool = True) -> str:
    """Install benchmarks/node_modules (npm ci from the lock file) unless the pinned onnxruntime-web is there."""
    pinned = pinned_ort_web_version()
    if installed_ort_web_version() != pinned:
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is needed to install onnxruntime-web for the benchmark (apt-get install npm)")
        verb = "ci" if (BENCH_DIR / "package-lock.json").exists() else "install"
        cmd = [npm, verb, "--prefix", str(BENCH_DIR), "--no-audit", "--no-fund", "--ignore-scripts"]
        if quiet:
            cmd.append("--loglevel=error")
        print(f"installing onnxruntime-web {pinned}: {' '.join(cmd[1:])}", flush=True)
        subprocess.run(cmd, check=True, cwd=BENCH_DIR, stdout=subprocess.DEVNULL if quiet else None)
    version = installed_ort_web_version()
    if version != pinned:
        raise SystemExit(f"onnxruntime-web {pinned} expected in {ORT_WEB_DIR}, found {version}")
    return version


# ---------------------------------------------------------------------------------------------------------
# server and browser


@contextlib.contextmanager
def serve(models_dir: Path, extra_roots: dict[str, Path]) -> Iterator[str]:
    """server.app on a free loopback port in a thread; yields the base URL (no trailing slash)."""
    from server.app import create_app, serving_in_background

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    with serving_in_background(create_app(models_dir, extra_roots=extra_roots), "bench-server") as url:
        yield url


@contextlib.contextmanager
def chromium() -> Iterator:
    """One headless Chromium (Playwright sync API) for the whole run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# ---------------------------------------------------------------------------------------------------------
# numbers


def errors(ours: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(max |ours - ref|, max |ours - ref| / max |ref|); inf when shapes differ or ours is not finite."""
    ours, ref = np.asarray(ours, np.float64).reshape(-1), np.asarray(ref, np.float64).reshape(-1)
    if ours.shape != ref.shape or not np.isfinite(ours).all():
        return float("inf"), float("inf")
    diff = float(np.abs(ours - ref).max()) if ours.size else 0.0
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    return diff, diff / scale if scale > 0 else diff
