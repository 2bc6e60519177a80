"""`package-for-web`: package an ONNX model into a web bundle, verify it, or serve bundles.

Exit codes: 0 ok; 1 `--verify` found outputs beyond tolerance; 2 the model, the bundle, the command line or
the verify inputs are at fault (one message on stderr); 3 an internal error (one line on stderr naming a log
file that holds the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

from .errors import BundleError, PackageError, VerifyError
from .progress import phase

DEMO_MODEL = "mobilenetv2"


def _dim(text: str) -> int | str:
    """A size, or a name that keeps the dim symbolic."""
    text = text.strip()
    try:
        value = int(text)
    except ValueError:
        if not text or text[0].isdigit() or text[0] == "-":
            raise
        return text
    if value < 0:
        raise ValueError
    return value


def _bytes(text: str) -> int:
    """512MiB, 2GiB, 1.5GB, 300000000 -> bytes (argparse type: ValueError becomes a usage error)."""
    units = {"": 1, "b": 1, "kb": 10**3, "kib": 2**10, "mb": 10**6, "mib": 2**20, "gb": 10**9, "gib": 2**30}
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in units or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 512MiB or 2GiB")
    return int(float(match.group(1)) * units[match.group(2).lower()])


def _parse_shapes(specs: list[str]) -> dict[str, list]:
    shapes = {}
    for spec in specs or []:
        name, sep, dims = spec.rpartition("=")
        try:
            if not sep or not name:
                raise ValueError
            shapes[name] = [_dim(d) for d in dims.split(",")]
        except ValueError:
            raise PackageError(
                f"--input-shape {spec!r}: expected NAME=D1,D2,... with sizes >= 0 or names for dims to keep "
                "symbolic, e.g. input=1,3,224,224 or input=1,3,48,width"
            ) from None
    return shapes


def _check_paths(model: str, output: str) -> None:
    """Path mistakes found before any work (packaging a large model takes minutes), each as one line."""
    path = Path(model)
    if path.is_dir():
        raise PackageError(f"{model}: is a directory; give the .onnx model file")
    if not path.exists():
        raise PackageError(f"{model}: no such model file")
    try:
        path.open("rb").close()
    except OSError as exc:
        raise PackageError(f"{model}: cannot read the model file ({exc.strerror})") from None
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise PackageError(f"-o {output}: exists and is not a directory; give a directory for the bundle")
    # the bundle is staged next to -o and missing parents are created, so the nearest existing ancestor must
    # be a writable directory
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise PackageError(f"-o {output}: {parent} is not a directory")
    try:  # a real write, not os.access: root passes access checks where the filesystem still refuses
        tempfile.TemporaryDirectory(prefix=".package-for-web.", dir=parent).cleanup()
    except OSError as exc:
        raise PackageError(f"-o {output}: cannot write in {parent} ({exc.strerror})") from None


def _package(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="package-for-web",
        description="Package an ONNX model into a web bundle. "
        "Other commands: `package-for-web serve DIR`, `package-for-web demo`.",
    )
    p.add_argument("model", help="path to the .onnx model")
    p.add_argument("-o", "--output", required=True, help="bundle directory to write (e.g. dist/mymodel)")
    p.add_argument(
        "--input-shape",
        action="append",
        metavar="NAME=D1,D2,...",
        help="fix an input's shape (symbolic dims); a name instead of a size keeps that dim symbolic; repeatable",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace the -o directory even if it holds more than a previous bundle (by default only a previous "
        "bundle and nothing else is replaced)",
    )
    p.add_argument(
        "--max-memory",
        type=_bytes,
        default=None,
        metavar="SIZE",
        help="refuse a plan needing more memory than this (e.g. 512MiB, 2GiB; default and upper bound: 4GiB, "
        "what a WebAssembly memory holds)",
    )
    p.add_argument("--name", help="model name recorded in the manifest (default: the graph's name)")
    p.add_argument(
        "--opt-level",
        type=int,
        choices=[0, 1, 2],
        default=None,
        help="0: fold constants only, 1: + exact cleanups, 2: + fusions (default: 2, the highest exact in float32)",
    )
    p.add_argument("--report", action="store_true", help="print the optimizer's per-pass report")
    p.add_argument(
        "--tune",
        action="store_true",
        help="time each layer's candidate kernels (e.g. im2col vs Winograd) in wasmtime and plan the fastest",
    )
    p.add_argument(
        "--backend",
        choices=["wasm", "webgl", "all"],
        default="wasm",
        help="webgl/all: also emit the WebGL2 plan (GLSL shaders per node; nodes without one run on wasm between "
        "the GPU's); webgl fails if no node can run on the GPU",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="run the bundle in wasmtime against onnxruntime (exit 1 beyond tolerance, 2 if it cannot be verified)",
    )
    p.add_argument(
        "--inputs",
        action="append",
        metavar="FILE.npz",
        help="--verify on these inputs (arrays named as the model's inputs; for a dynamic bundle each file's shapes "
        "are a setting verified); repeatable. Default: seeded inputs made to fit the model",
    )
    p.add_argument(
        "--rtol",
        type=float,
        default=None,
        help="--verify relative tolerance: |ours - ref| <= atol + rtol*|ref| elementwise, atol = max(rtol*max|ref|, "
        "16 x onnxruntime's own noise, 2.4e-7); default 1e-4",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the generated --verify inputs")
    p.add_argument(
        "-q", "--quiet", action="store_true", help="print only errors and verification failures (no summary, progress)"
    )
    args = p.parse_args(argv)
    with contextlib.redirect_stdout(io.StringIO()) if args.quiet else contextlib.nullcontext():
        return _package_and_verify(args)


def _package_and_verify(args: argparse.Namespace) -> int:
    from . import onnx_io
    from .manifest_check import manifest_integrity
    from .package import MAX_MEMORY, package
    from .passes import DEFAULT_LEVEL
    from .verify import DEFAULT_RTOL, verify

    if args.inputs and not args.verify:
        raise PackageError("--inputs is for --verify; add --verify")
    _check_paths(args.model, args.output)
    t0 = time.perf_counter()
    shapes = _parse_shapes(args.input_shape)
    level = DEFAULT_LEVEL if args.opt_level is None else args.opt_level
    # compiling kernels (a cold cache: minutes), probing dynamic shapes and tuning all happen in here
    with phase("packaging" + (" and tuning" if args.tune else ""), enabled=not args.quiet):
        result = package(
            args.model, args.output, shapes, args.name, opt_level=level, tune=args.tune, backend=args.backend,
            force=args.force, max_memory=min(args.max_memory or MAX_MEMORY, MAX_MEMORY),
        )
    m = result.manifest
    if args.report:
        print(result.report.format())
    for node, a in m["algorithms"]["nodes"].items():
        if args.tune or args.report:
            timing = ", ".join(f"{k} {v:.3f} ms" for k, v in a.get("ms", {}).items())
            print(f"  {node}: {a['choice']} (of {', '.join(a['candidates'])}){'; ' + timing if timing else ''}")
    st = m["stats"]
    print(f"packaged {args.model} -> {result.out_dir} in {time.perf_counter() - t0:.2f} s")
    for warning in result.graph.metadata.get("warnings", []):
        print(f"  warning: {warning}")
    if "dynamic" in m:
        for sym, d in m["dynamic"]["domain"].items():
            multiple = f"multiples of {d['step']} from " if d["step"] > 1 else "sizes from "
            print(f"  dynamic dim {sym!r}: {multiple}{d['min']}")
    print(f"  {st['nodes']} nodes -> {st['steps']} kernel calls; kernels: {', '.join(m['kernels']['exports'])}")
    weights = (
        f"  weights {st['weights_file_bytes'] / 1e6:.2f} MB in weights.bin "
        f"({st['weights_bytes'] / 1e6:.2f} MB in memory); "
    )
    if "dynamic" in m:
        symbols = ", ".join(m["dynamic"]["symbols"])
        print(weights + f"dynamic dims ({symbols}): the arena is placed per input shape at run time")
    else:
        print(
            weights + f"arena peak {st['arena_peak_bytes'] / 1e6:.2f} MB vs {st['arena_unshared_bytes'] / 1e6:.2f} MB "
            "with no buffer reuse"
        )
    for name, f in m["files"].items():
        print(f"  {name}: {f['bytes']} bytes")
    pin = manifest_integrity((result.out_dir / "manifest.json").read_bytes())
    print(f"  manifest pin (InferenceSession.create(url, {{integrity: ...}}) runs only this bundle): {pin}")
    if not args.verify:
        return 0
    rtol = args.rtol if args.rtol is not None else DEFAULT_RTOL
    # the reference is the model as given: onnxruntime takes its symbolic dims, while a shape-fixed copy can
    # fail its type inference (silero-vad's 8 kHz branch at 16 kHz sizes) where the model itself runs
    model = onnx_io.load_model(args.model)
    with phase("verifying", enabled=not args.quiet):
        report = verify(result.out_dir, model, args.seed, inputs=args.inputs, rtol=rtol)
    print(f"  verify inputs: {report.inputs}")
    for name, how in report.generators.items():
        print(f"    {name}: {how}")
    for run in report.runs:
        if run.trap:
            print(f"  verify [{run.label}] the bundle failed where onnxruntime ran: {run.trap} FAIL")
        for check in run.checks:
            print(f"  verify [{run.label}] {check.format()}")
    for message in report.rejected:
        print(f"package-for-web: cannot verify: {message}", file=sys.stderr)
    if report.failed:
        print("verification failed: the bundle's outputs differ from onnxruntime beyond tolerance", file=sys.stderr)
        return 1
    return 2 if report.rejected else 0


def _serve(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="package-for-web serve", description="Serve bundles, the JS runtime and the demo")
    p.add_argument("models_dir", nargs="?", default="dist", help="directory of bundles (default: dist)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", default="8000", help="1 to 65535 (default: %(default)s)")
    p.add_argument("--production", action="store_true", help="serve with waitress instead of werkzeug's server")
    p.add_argument("--static", metavar="SITE", help="serve your own pages from SITE at / (instead of the demos)")
    args = p.parse_args(argv)
    from server import serve
    from server.servers import ServeError, check_host, check_port

    if not Path(args.models_dir).is_dir():
        raise PackageError(f"{args.models_dir}: no such directory of bundles")
    if args.static is not None and not Path(args.static).is_dir():
        raise PackageError(f"--static {args.static}: no such directory")
    try:
        serve(
            args.models_dir,
            host=check_host(args.host),
            port=check_port(args.port),
            production=args.production,
            static_dir=args.static,
        )
    except ServeError as exc:
        raise PackageError(str(exc)) from None
    return 0


def _demo(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="package-for-web demo",
        description="Build the default demo model (seeded MobileNetV2), package it, serve the demo",
    )
    p.add_argument("--dist", default="dist")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", default="8000", help="1 to 65535 (default: %(default)s)")
    p.add_argument("--production", action="store_true", help="serve with waitress instead of werkzeug's server")
    p.add_argument("--no-serve", action="store_true", help="only build the bundle")
    args = p.parse_args(argv)
    from server.servers import ServeError, check_host, check_port

    from . import zoo
    from .package import package

    try:  # before the packaging, which takes seconds
        host, port = check_host(args.host), check_port(args.port)
    except ServeError as exc:
        raise PackageError(str(exc)) from None
    dist = Path(args.dist)
    model = zoo.BUILDERS[DEMO_MODEL]()
    result = package(model, dist / DEMO_MODEL, name=DEMO_MODEL)
    print(f"demo bundle: {result.out_dir} ({result.manifest['stats']['steps']} kernel calls)")
    if args.no_serve:
        return 0
    from server import serve

    try:
        serve(str(dist), host=host, port=port, production=args.production)
    except ServeError as exc:
        raise PackageError(str(exc)) from None
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"serve": _serve, "demo": _demo}
    try:
        if argv and argv[0] in commands:
            return commands[argv[0]](argv[1:])
        return _package(argv)
    except (PackageError, BundleError, VerifyError) as exc:
        print(f"package-for-web: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("package-for-web: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug of ours: the user gets one line, the traceback goes to a file to report
        log = _write_log(argv)
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        print(
            f"package-for-web: internal error: {type(exc).__name__}: {first} "
            f"(traceback in {log}; please report it with that file)",
            file=sys.stderr,
        )
        return 3


def _write_log(argv: list[str]) -> str:
    """The current exception's traceback in a new file of the temp dir (the output dir may not exist yet)."""
    fd, path = tempfile.mkstemp(prefix="package-for-web-", suffix=".log")
    with open(fd, "w") as log:
        log.write(f"package-for-web {' '.join(argv)}\n\n{traceback.format_exc()}")
    return path


if __name__ == "__main__":
    sys.exit(main())
