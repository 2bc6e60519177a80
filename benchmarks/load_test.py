"""Load test of the server on loopback: N clients fetch a model's files for T seconds from the development server
(werkzeug) and from `--production` (waitress), one after the other in the same run.

    python benchmarks/load_test.py [--clients 50] [--seconds 30] [--rounds 2] [--servers dev,production] [--write]

Each client is a thread with one keep-alive connection (opened again whenever the server closes it, as werkzeug's
does after every response) that fetches, again and again, what a page fetches to run a model: the runtime's
index.js and worker.js, then the bundle's manifest.json, kernels .wasm and weights.bin. The bundle is the seeded
MobileNetV2 of `package-for-web demo` (13.9 MB of weights), packaged into benchmarks/work/load/, or `--bundle DIR`.
Every body is compared with the file on disk: a short or wrong body counts as an error, as does any status but 200.

Each server runs as `python -m server` in a process of its own (from `--server-root`, default this checkout, so an
older tree's server can be measured with the same clients); the clients share the machine's cores with it. Server
CPU is the server process's user + system time over the timed window. No speed is asserted anywhere: this only
reports. `--write` replaces this script's section of RESULTS.md; `--json FILE` saves every number.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import benchlib

REPO = benchlib.REPO
KEY = "load-test"
SERVER_ARGS = {"dev": [], "production": ["--production"]}
RUNTIME_FILES = ["index.js", "worker.js"]  # what a page loads from /runtime/ before the bundle


def bundle_files(bundle: Path, web_dir: Path) -> dict[str, Path]:
    """URL path -> file, in the order a page fetches them."""
    kernels = sorted(bundle.glob("kernels*.wasm"))
    # the one a browser with relaxed SIMD and threads picks, or whichever the bundle has
    wasm = next((k for k in kernels if k.name == "kernels-relaxed-mt.wasm"), kernels[0] if kernels else None)
    files = {f"/runtime/{name}": web_dir / name for name in RUNTIME_FILES}
    files[f"/models/{bundle.name}/manifest.json"] = bundle / "manifest.json"
    if wasm is not None:
        files[f"/models/{bundle.name}/{wasm.name}"] = wasm
    files[f"/models/{bundle.name}/weights.bin"] = bundle / "weights.bin"
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise SystemExit(f"load_test: missing files: {', '.join(missing)}")
    return files


def package_demo_bundle(work: Path) -> Path:
    """The seeded MobileNetV2 bundle of `package-for-web demo`, packaged once into work/models/mobilenetv2."""
    from wasm_runtime import zoo
    from wasm_runtime.cli import DEMO_MODEL
    from wasm_runtime.package import package

    out = work / "models" / DEMO_MODEL
    if not (out / "manifest.json").is_file():
        package(zoo.BUILDERS[DEMO_MODEL](), out, name=DEMO_MODEL)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class Server:
    """`python -m server MODELS_DIR --port P [...]` from `root`, until stop()."""

    def __init__(self, root: Path, models_dir: Path, args: list[str]) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-m", "server", str(models_dir), "--port", str(self.port), *args]
        # werkzeug logs a line per request to stderr: discarded, not left to fill a pipe nobody reads
        self.proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"load_test: {shlex.join(cmd)} exited with {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit(f"load_test: {shlex.join(cmd)} did not listen within 30 s") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def client(port: int, files: dict[str, bytes], start: float, deadline: float, out: list, errors: list) -> None:
    """Fetch `files` in order, over and over, until `deadline`; a request begun before it is finished."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    while time.perf_counter() < deadline:
        for path, expected in files.items():
            if time.perf_counter() >= deadline:
                break
            t0 = time.perf_counter()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    raise ValueError(f"status {response.status}")
                if body != expected:
                    raise ValueError(f"{len(body)} bytes that differ from the file's {len(expected)}")
            except (OSError, http.client.HTTPException, ValueError) as exc:
                errors.append((path, f"{type(exc).__name__}: {exc}"))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                continue
            out.append((path, t0 - start, time.perf_counter() - t0))
    conn.close()


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil
    return sorted_values[int(rank) - 1]


def run_once(root: Path, models_dir: Path, args: list[str], files: dict[str, bytes], clients: int, seconds: float):
    """One timed window of `clients` on a fresh server process: the raw records."""
    server = Server(root, models_dir, args)
    try:
        done: list[list] = [[] for _ in range(clients)]
        errors: list[tuple[str, str]] = []
        load0 = os.getloadavg()[0]
        cpu0, own0 = cpu_seconds(server.proc.pid), cpu_seconds(os.getpid())
        start = time.perf_counter()
        deadline = start + seconds
        threads = [
            threading.Thread(target=client, args=(server.port, files, start, deadline, done[i], errors), daemon=True)
            for i in range(clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.perf_counter()) + 300)
        elapsed = time.perf_counter() - start
        cpu, own = cpu_seconds(server.proc.pid) - cpu0, cpu_seconds(os.getpid()) - own0
        stuck = sum(t.is_alive() for t in threads)
    finally:
        server.stop()
    return {
        "records": [r for per_client in done for r in per_client],
        "errors": errors,
        "elapsed_s": elapsed,
        "server_cpu_s": cpu,
        "client_cpu_s": own,
        "stuck_clients": stuck,
        "load_avg": [load0, os.getloadavg()[0]],
    }


def summarize(kind: str, runs: list[dict], files: dict[str, bytes], clients: int, seconds: float) -> dict:
    """The rounds of one server pooled: per file counts and latency percentiles, totals, CPU."""
    records = [r for run in runs for r in run["records"]]
    errors = [e for run in runs for e in run["errors"]]
    elapsed = sum(run["elapsed_s"] for run in runs)
    rows = []
    for path, body in files.items():
        times = sorted(d for p, _, d in records if p == path)
        rows.append(
            {
                "path": path,
                "bytes": len(body),
                "requests": len(times),
                "errors": sum(p == path for p, _ in errors),
                "req_per_s": len(times) / elapsed,
                "p50_ms": percentile(times, 50) * 1e3,
                "p99_ms": percentile(times, 99) * 1e3,
                "max_ms": (times[-1] if times else float("nan")) * 1e3,
            }
        )
    server_cpu = sum(run["server_cpu_s"] for run in runs)
    return {
        "server": kind,
        "clients": clients,
        "seconds": seconds,
        "rounds": len(runs),
        "elapsed_s": elapsed,
        "requests": len(records),
        "errors": len(errors),
        "error_samples": sorted({m for _, m in errors})[:10],
        "stuck_clients": max(run["stuck_clients"] for run in runs),
        "req_per_s": len(records) / elapsed,
        "mb_per_s": sum(len(files[p]) for p, _, _ in records) / elapsed / 1e6,
        "server_cpu_s": server_cpu,
        "server_cpu_ms_per_request": server_cpu / max(1, len(records)) * 1e3,
        "client_cpu_s": sum(run["client_cpu_s"] for run in runs),
        "load_avg": [x for run in runs for x in run["load_avg"]],
        "files": rows,
    }


def table(results: list[dict]) -> tuple[list[str], list[list]]:
    header = ["server", "file", "size", "requests", "req/s", "p50 ms", "p99 ms", "max ms", "errors"]
    rows = []
    for res in results:
        for f in res["files"]:
            size = f"{f['bytes'] / 1e6:.1f} MB" if f["bytes"] >= 1e6 else f"{f['bytes'] / 1e3:.0f} KB"
            rows.append(
                [res["server"], f["path"].rsplit("/", 1)[1], size, f["requests"], f"{f['req_per_s']:.1f}",
                 f"{f['p50_ms']:.0f}", f"{f['p99_ms']:.0f}", f"{f['max_ms']:.0f}", f["errors"]]
            )  # fmt: skip
        rows.append(
            [res["server"], "**all**", f"{res['mb_per_s']:.0f} MB/s", res["requests"], f"{res['req_per_s']:.1f}",
             "", "", "", res["errors"]]
        )  # fmt: skip
    return header, rows


def summary_lines(results: list[dict]) -> list[str]:
    lines = []
    for res in results:
        cores = res["server_cpu_s"] / res["elapsed_s"]
        line = (
            f"{res['server']}: {res['requests']} requests in {res['elapsed_s']:.1f} s ({res['rounds']} rounds), "
            f"{res['errors']} errors; server CPU {res['server_cpu_s']:.1f} s = {cores:.2f} "
            f"cores = {res['server_cpu_ms_per_request']:.2f} ms per request; clients' CPU "
            f"{res['client_cpu_s'] / res['elapsed_s']:.2f} cores; load average "
            f"{min(res['load_avg']):.1f}-{max(res['load_avg']):.1f}"
        )
        if res["stuck_clients"]:
            line += f"; {res['stuck_clients']} clients still waiting at the end"
        if res["error_samples"]:
            line += "; errors: " + "; ".join(res["error_samples"])
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=30.0, help="per server and round")
    p.add_argument("--rounds", type=int, default=2, help="the servers take turns, each for --seconds per round")
    p.add_argument("--servers", default="dev,production", help="comma-separated: dev, production")
    p.add_argument("--bundle", type=Path, help="bundle directory to serve (default: package the demo MobileNetV2)")
    p.add_argument("--server-root", type=Path, default=REPO, help="tree whose `server` package runs (default: this)")
    p.add_argument(
        "--baseline-root",
        type=Path,
        help="also measure the development server of this tree (e.g. an older commit's `git archive REV server web "
        "demos`), as 'dev-baseline', in the same rounds",
    )
    p.add_argument("--work", type=Path, default=benchlib.WORK_DIR / "load")
    p.add_argument("--write", action="store_true", help="replace this script's section of RESULTS.md")
    p.add_argument("--results", type=Path, default=benchlib.RESULTS, help="the results file --write updates")
    p.add_argument("--json", type=Path, help="write every number to this file")
    args = p.parse_args(argv)
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in SERVER_ARGS]
    if unknown or not kinds:
        p.error(f"--servers takes dev and/or production, not {args.servers!r}")
    if args.clients < 1 or args.seconds <= 0 or args.rounds < 1:
        p.error("--clients, --seconds and --rounds must be positive")

    contenders = {kind: (args.server_root.resolve(), SERVER_ARGS[kind]) for kind in kinds}
    if args.baseline_root:
        contenders["dev-baseline"] = (args.baseline_root.resolve(), [])
        kinds.append("dev-baseline")
    bundle = (args.bundle or package_demo_bundle(args.work)).resolve()
    files = bundle_files(bundle, args.server_root.resolve() / "web")
    bodies = {path: file.read_bytes() for path, file in files.items()}
    if args.baseline_root:
        theirs = bundle_files(bundle, args.baseline_root.resolve() / "web")
        if any(bodies[path] != file.read_bytes() for path, file in theirs.items()):
            raise SystemExit("load_test: the baseline tree's web/ files differ from this one's; compare like with like")
    runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for round_ in range(args.rounds):
        for kind in kinds:
            print(f"round {round_ + 1}/{args.rounds}, {kind}: {args.clients} clients, {args.seconds:g} s", flush=True)
            root, server_args = contenders[kind]
            # the bundle's parent is the models directory (a symlink to the bundle would be refused as escaping it)
            runs[kind].append(run_once(root, bundle.parent, server_args, bodies, args.clients, args.seconds))
    results = [summarize(kind, runs[kind], bodies, args.clients, args.seconds) for kind in kinds]

    header, rows = table(results)
    print(benchlib.text_table(header, rows))
    for line in summary_lines(results):
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"machine": benchlib.machine_line(), "results": results}, indent=1))
    if args.write:
        command = "python benchmarks/load_test.py " + shlex.join(argv if argv is not None else sys.argv[1:])
        body = "\n".join(
            [
                "## Server load test on loopback (benchmarks/load_test.py)",
                "",
                f"Command: `{command.strip()}`  ",
                f"Tree: {benchlib.tree_state()}"
                + ("" if args.server_root.resolve() == REPO else f"; server from {args.server_root}")
                + (f"; dev-baseline: the development server of {args.baseline_root}" if args.baseline_root else "")
                + "  ",
                f"Machine: {benchlib.machine_line()}; clients and server share these cores.",
                "",
                f"{args.clients} clients (threads of one process), each one keep-alive connection fetching "
                f"{', '.join(files)} in turn; each server {args.rounds} x {args.seconds:g} s, the servers taking "
                "turns; every body compared with the file. p50/p99/max: from sending the request to the last byte "
                "of the body. A server's CPU per request is the number the machine's load disturbs least.",
                "",
                benchlib.md_table(header, rows),
                "",
                *[f"- {line}" for line in summary_lines(results)],
            ]
        )
        benchlib.write_section(KEY, body, args.results)
    return 1 if any(r["errors"] or r["stuck_clients"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
