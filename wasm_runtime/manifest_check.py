"""The checks every executor makes on a bundle before running it: the Python host (host.py) here, the browser
worker in web/manifest.js (checkManifest, and the heap-base check after instantiation). Both reject the same
bad bundles with the same words: tests/data/bad_manifests.json lists them (tests/test_manifest_checks.py runs
each fixture through both). web/README.md ("Checks before a run") states the rules.

A manifest is plain data that says where everything lives in one wasm memory, so a wrong number in it is a
wrong result, not an error, unless something checks it: offsets and sizes inside the memory and in their own
regions, file names inside the bundle, the weights file the size the plan expects, every file hashed, the
counts of steps and init steps as the packager wrote them. A page that pins the manifest's own sha256
(`create(url, {integrity: "sha256-..."})`, HostSession(..., integrity=...)) trusts nothing it did not
package.
"""

from __future__ import annotations

import base64
import hashlib
import math

from .errors import BundleError

PAGE = 65536
ITEM_BYTES = {
    "float32": 4, "float64": 8, "float16": 2, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4,
    "int64": 8, "uint64": 8, "bool": 1,
}  # fmt: skip


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def plain_file_name(name) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name


def manifest_integrity(manifest_bytes: bytes) -> str:
    """The pin a page gives create(url, {integrity}) for this manifest: "sha256-" + base64 of its sha256."""
    return "sha256-" + base64.b64encode(hashlib.sha256(manifest_bytes).digest()).decode()


def check_pin(manifest_bytes: bytes, integrity: str, where: str) -> None:
    got = manifest_integrity(manifest_bytes)
    if integrity != got:
        raise BundleError(
            f"{where}: manifest.json does not match the integrity pin (pinned {integrity}, got {got}); the bundle "
            "was changed or re-packaged: pin the new manifest or deploy the one pinned"
        )


def check_manifest(m: dict, where: str) -> None:
    """Raise BundleError for a manifest no executor should run (module docstring). `where` names it."""

    def bad(what: str) -> BundleError:
        return BundleError(f"model manifest {where}: {what}; re-package the model")

    mem = m.get("memory")
    if not isinstance(mem, dict):
        raise bad("memory must be an object")
    dynamic = "dynamic" in m
    keys = ["pages", "weights_offset", "weights_file_bytes", "weights_bytes", "arena_offset"]
    for key in keys if dynamic else [*keys, "arena_bytes"]:
        if not _is_count(mem.get(key)):
            raise bad(f"memory.{key} must be a non-negative integer (got {mem.get(key)!r})")
    if not 1 <= mem["pages"] <= 65536:
        raise bad(f"memory.pages {mem['pages']} is out of range (1..65536)")
    size = mem["pages"] * PAGE
    weights_end = mem["weights_offset"] + mem["weights_bytes"]
    if weights_end > size or (not dynamic and mem["arena_offset"] + mem["arena_bytes"] > size):
        raise bad(f"weights or arena end past the {mem['pages']}-page memory")
    if mem["weights_file_bytes"] > mem["weights_bytes"] or weights_end > mem["arena_offset"]:
        raise bad("the weights region overlaps the arena (memory.weights_offset/weights_bytes/arena_offset)")

    files = m.get("files")
    if not isinstance(files, dict) or not files:
        raise bad("files must be an object naming the bundle's files")
    for name, meta in files.items():
        if not plain_file_name(name):
            raise bad(f"file name {name!r} points outside the bundle")
        if not isinstance(meta, dict) or not _is_count(meta.get("bytes")) or not isinstance(meta.get("sha256"), str):
            raise bad(f"files[{name!r}] needs bytes and sha256")
    if "weights.bin" not in files:
        raise bad("files has no entry for weights.bin")
    if files["weights.bin"]["bytes"] != mem["weights_file_bytes"]:
        raise bad("weights.bin size disagrees with memory.weights_file_bytes")
    modules = (m.get("kernels") or {}).get("modules")
    if not isinstance(modules, dict) or not modules:
        raise bad("kernels.modules must name the kernel builds")
    for variant, name in modules.items():
        if not plain_file_name(name) or name not in files:
            raise bad(f"kernel module {variant!r} ({name!r}) is not a file of the bundle")

    for kind in ("inputs", "outputs"):
        entries = m.get(kind)
        if not isinstance(entries, list):
            raise bad(f"{kind} must be a list")
        for e in entries:
            if not isinstance(e, dict) or e.get("dtype") not in ITEM_BYTES:
                raise bad(f"{kind} {e.get('name') if isinstance(e, dict) else e!r} has an unsupported dtype")
            if dynamic:
                continue
            shape = e.get("shape")
            if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
                raise bad(f"{kind} '{e.get('name')}' has an invalid shape, offset or size")
            nbytes = math.prod(shape) * ITEM_BYTES[e["dtype"]]
            if not _is_count(e.get("offset")) or e.get("bytes") != nbytes or e["offset"] + nbytes > size:
                raise bad(f"{kind} '{e.get('name')}' has an invalid shape, offset or size")
    if not isinstance(m.get("init"), list) or not isinstance(m.get("steps"), list):
        raise bad("init and steps must be lists")
    stats = m.get("stats") if isinstance(m.get("stats"), dict) else {}
    for key in ("steps", "init"):
        if key in stats and stats[key] != len(m[key]):
            raise bad(f"{key} holds {len(m[key])} entries, the packager wrote {stats[key]}")


def check_heap_base(m: dict, heap_base: int, where: str) -> None:
    """After instantiation: the weights must start above the module's own stack and data (`__heap_base`)."""
    if m["memory"]["weights_offset"] < heap_base:
        raise BundleError(
            f"model manifest {where}: memory.weights_offset {m['memory']['weights_offset']} overlaps the kernel "
            f"module's stack and data (up to {heap_base}); re-package the model"
        )
