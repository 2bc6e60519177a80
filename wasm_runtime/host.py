"""Run a bundle in Python through wasmtime: the same .wasm and the same plan the browser runs."""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import wasmtime

from .bundle import FORMAT, FORMAT_VERSION, _engine_config
from .dynamic import materialize
from .errors import BundleError
from .manifest_check import check_heap_base, check_manifest, check_pin
from .memory_map import MAX_PAGES, WASM_PAGE, pages_for


def load_manifest(bundle_dir: str | Path, check_integrity: bool = True, integrity: str | None = None) -> dict:
    """The bundle's manifest, checked as every executor checks it (manifest_check.py): its numbers and names,
    its files there and of their recorded sizes, with `check_integrity` their sha256 too, and with `integrity`
    ("sha256-<base64>", what `package-for-web` prints) the manifest itself."""
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / "manifest.json"
    if not path.is_file():
        raise BundleError(f"{bundle_dir}: no manifest.json (is this a bundle directory?)")
    raw = path.read_bytes()
    if integrity is not None:
        check_pin(raw, integrity, str(path))
    try:
        manifest = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: not a {FORMAT} manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise BundleError(
            f"{path}: bundle format version {manifest.get('version')} is not supported "
            f"(this runtime reads version {FORMAT_VERSION}); re-package the model"
        )
    check_manifest(manifest, str(path))
    for name, meta in manifest["files"].items():
        file = bundle_dir / name
        if not file.is_file():
            raise BundleError(f"{bundle_dir}: {name} is missing")
        if file.stat().st_size != meta["bytes"]:
            raise BundleError(
                f"{name} has {file.stat().st_size} bytes, the manifest expects {meta['bytes']}: the file is corrupt "
                "or stale (from another packaging run): re-deploy the whole bundle directory together"
            )
        if check_integrity and hashlib.sha256(file.read_bytes()).hexdigest() != meta["sha256"]:
            raise BundleError(f"{file}: contents do not match the manifest's sha256 (corrupt or stale file)")
    return manifest


def chunks(units: int, align: int, threads: int) -> list[tuple[int, int]]:
    """The [u0, u1) unit ranges of a split step for `threads` workers (web/threads.js cuts the same way:
    tests/data/split_chunks.json): equal chunks rounded up to `align`, the last one shorter, empty ones dropped."""
    size = -(-units // threads)
    size = -(-size // align) * align
    return [(u0, min(units, u0 + size)) for u0 in range(0, units, size)]


def split_args(args: list, split: dict, u0: int, u1: int) -> list:
    out = list(args)
    out[split["count"]] = u1 - u0
    for index, delta in split["deltas"]:
        out[index] += u0 * delta
    return out


def _why(exc) -> str:
    """Kernels stop with `unreachable` when a run-time check fails; say what such checks are."""
    if "unreachable" in str(exc):
        return (
            " (a run-time check failed: an index out of range, an integer division by zero, or a data-dependent "
            "size such as NonZero's count that differs from the one the plan was made for)"
        )
    return ""


def _to_i32(v) -> int:
    v = int(v)
    return v - (1 << 32) if v >= 1 << 31 else v


def _converters(func_type: wasmtime.FuncType):
    convert = []
    for p in func_type.params:
        convert.append(float if p == wasmtime.ValType.f32() else _to_i32)
    return convert


class HostSession:
    """`HostSession(bundle_dir).run({"input": array})` -> {"output": array}."""

    def __init__(
        self,
        bundle_dir: str | Path,
        variant: str = "simd",
        check_integrity: bool = True,
        threads: int = 1,
        integrity: str | None = None,
        compact: bool = False,
    ):
        """`threads` > 1 runs every split step as that many chunks, one after another: the same work
        division the browser's worker pool runs at once (wasmtime-py cannot share memories yet). `integrity`
        pins the manifest ("sha256-<base64>", see load_manifest). `compact` reserves address space for the
        bundle's memory only, not the 4 GiB + guard wasmtime reserves by default to elide bounds checks (runs
        may be slower): for processes under an address-space limit (--verify holds two sessions)."""
        bundle_dir = Path(bundle_dir)
        self.manifest = m = load_manifest(bundle_dir, check_integrity, integrity)
        if variant.endswith("-mt"):
            raise BundleError("the host runs the single-memory builds; use threads=N to run the split plan")
        if variant not in m["kernels"]["modules"]:
            raise BundleError(f"variant {variant!r} not in bundle (has {sorted(m['kernels']['modules'])})")
        self.variant = variant
        config = _engine_config()
        if compact:
            pages = m["memory"]["pages"]
            config.memory_reservation = pages * WASM_PAGE if "dynamic" not in m else 256 << 20
            config.memory_guard_size = 1 << 16
            config.memory_reservation_for_growth = 0 if "dynamic" not in m else 64 << 20
        engine = wasmtime.Engine(config)
        self._store = wasmtime.Store(engine)
        module = wasmtime.Module(engine, (bundle_dir / m["kernels"]["modules"][variant]).read_bytes())
        pages = m["memory"]["pages"]
        self.dynamic = "dynamic" in m  # symbolic input dims: a concrete plan per input shape, memory grows
        limits = wasmtime.Limits(pages, MAX_PAGES if self.dynamic else pages)
        memory = wasmtime.Memory(self._store, wasmtime.MemoryType(limits))
        instance = wasmtime.Instance(self._store, module, [memory])
        exports = instance.exports(self._store)
        heap = exports["__heap_base"] if "__heap_base" in exports else None
        if isinstance(heap, wasmtime.Global):
            check_heap_base(m, int(heap.value(self._store)), str(bundle_dir / "manifest.json"))
        self._memory = memory  # keeps the buffer alive
        self._map_memory()

        offset = m["memory"]["weights_offset"]
        weights = (bundle_dir / "weights.bin").read_bytes()
        self._mem[offset : offset + len(weights)] = np.frombuffer(weights, np.uint8)

        def prepare(steps):
            calls = []
            for step in steps:
                if step.get("fail"):  # a branch that cannot run: reaching it stops the run with its message
                    calls.append((None, [], step))
                    continue
                where = f"kernel {step['kernel']!r} (node {step['node']!r})"
                try:
                    func = exports[step["kernel"]]
                except KeyError:
                    raise BundleError(f"{where} is not exported by the module; re-package the model") from None
                conv = _converters(func.type(self._store))
                if len(conv) != len(step["args"]):
                    raise BundleError(
                        f"{where} takes {len(conv)} arguments, the plan passes {len(step['args'])}; "
                        "re-package the model"
                    )
                split = step.get("split")
                parts = [step["args"]]
                if split and threads > 1:
                    parts = [
                        split_args(step["args"], split, u0, u1)
                        for u0, u1 in chunks(split["units"], split["align"], threads)
                    ]
                for part in parts:
                    args = [c(float(a) if isinstance(a, str) else a) for c, a in zip(conv, part, strict=True)]
                    calls.append((func, args, step))
            return calls

        self._prepare = prepare
        for func, args, _ in prepare(m["init"]):
            func(self._store, *args)
        self._plans: dict[tuple, dict] = {}
        if not self.dynamic:
            self._calls = prepare(m["steps"])

    def _map_memory(self) -> None:
        """A numpy view of the wasm memory; made again after the memory grows (its base may move)."""
        size = self._memory.data_len(self._store)
        ptr = ctypes.cast(self._memory.data_ptr(self._store), ctypes.POINTER(ctypes.c_ubyte))
        self._mem = np.ctypeslib.as_array(ptr, shape=(size,))

    def _plan_for(self, shapes: dict[str, list[int]]) -> dict:
        """The concrete plan of a dynamic bundle for these input shapes (cached per shape); grows the memory
        and writes the shape-dependent layouts."""
        key = tuple((n, tuple(s)) for n, s in sorted(shapes.items()))
        plan = self._plans.get(key)
        if plan is None:
            plan = materialize(self.manifest, shapes)
            plan["calls"] = self._prepare(plan["steps"])
            self._plans[key] = plan
        need = pages_for(plan["memory_bytes"])
        have = self._memory.size(self._store)
        if need > have:
            if need > MAX_PAGES:
                raise MemoryError(f"these input shapes need {plan['memory_bytes'] / 2**20:.0f} MiB of memory (> 4 GiB)")
            self._memory.grow(self._store, need - have)
            self._map_memory()
        for offset, values in plan["params"]:
            self._mem[offset : offset + values.nbytes] = values.view(np.uint8)
        return plan

    @property
    def inputs(self) -> list[dict]:
        return self.manifest["inputs"]

    @property
    def outputs(self) -> list[dict]:
        return self.manifest["outputs"]

    def _view(self, entry: dict) -> np.ndarray:
        dtype = np.dtype(entry["dtype"])
        n = math.prod(entry["shape"])
        return self._mem[entry["offset"] : entry["offset"] + n * dtype.itemsize].view(dtype).reshape(entry["shape"])

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        expected = {e["name"] for e in self.inputs}
        inputs, outputs, calls = self.inputs, self.outputs, None
        missing, unknown = expected - set(feeds), set(feeds) - expected
        if missing or unknown:
            raise ValueError(
                f"inputs must be exactly {sorted(expected)}; missing {sorted(missing)}, unknown {sorted(unknown)}"
            )
        if self.dynamic:
            plan = self._plan_for({e["name"]: list(np.shape(feeds[e["name"]])) for e in self.inputs})
            inputs, outputs, calls = plan["inputs"], plan["outputs"], plan["calls"]
        for entry in inputs:
            data = np.asarray(feeds[entry["name"]])
            if data.dtype != np.dtype(entry["dtype"]):
                raise ValueError(f"input {entry['name']!r} has dtype {data.dtype}, the bundle expects {entry['dtype']}")
            if list(data.shape) != entry["shape"]:
                raise ValueError(
                    f"input {entry['name']!r} has shape {list(data.shape)}, the bundle expects {entry['shape']}"
                )
            self._view(entry)[...] = data
        mem = self._mem
        for func, args, step in calls or self._calls:
            when = step.get("when")
            if when and not all(bool(mem[address]) == bool(value) for address, value in when):
                continue  # a step of the branch of a run-time If that this run does not take
            if func is None:
                raise RuntimeError(step["fail"])
            try:
                func(self._store, *args)
            except wasmtime.Trap as exc:
                where = f"kernel {step['kernel']} trapped at node {step['node']!r}"
                cause = [line.strip() for line in str(exc).splitlines() if line.strip()][-1:] or ["trap"]
                raise RuntimeError(f"{where}: {cause[0]}{_why(exc)}") from None
        return {e["name"]: self._view(e).copy() for e in outputs}
