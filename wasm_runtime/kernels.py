"""Compile the C kernels in `kernels_wasm/` to WebAssembly with zig's clang, and link per-bundle modules.

Each source file is compiled once per build variant to an object file cached by the hash of its text,
the shared header and the flags; a bundle's module is linked from those objects exporting only the
kernels its plan calls (`--gc-sections` drops the rest), cached by the hash of objects and export list.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

from .errors import PackageError
from .resources import data_dir

# the checkout root, for dev tools (conformance.py) that write into tests/ and docs/; not present in a wheel
REPO_ROOT = Path(__file__).resolve().parent.parent
KERNELS_DIR = Path(os.environ.get("WASM_RUNTIME_KERNELS") or data_dir("kernels_wasm"))
CACHE_DIR = Path(os.environ.get("WASM_RUNTIME_CACHE", Path.home() / ".cache" / "wasm_runtime"))

# Zig's stack sits at the bottom of memory; kernels keep only small locals on it.
STACK_BYTES = 256 * 1024

COMMON_FLAGS = [
    "--target=wasm32-freestanding",
    "-O3",
    "-msimd128",
    "-mbulk-memory",
    "-fno-exceptions",
    "-ffreestanding",
    "-Wall",
    "-Werror",
]
# "-mt" builds import a shared memory so several workers can run one plan (threads over SharedArrayBuffer);
# each worker's instance then moves its own __stack_pointer to a stack of its own.
VARIANTS = {
    "simd": COMMON_FLAGS,
    "relaxed": COMMON_FLAGS + ["-mrelaxed-simd"],
    "simd-mt": COMMON_FLAGS + ["-matomics"],
    "relaxed-mt": COMMON_FLAGS + ["-mrelaxed-simd", "-matomics"],
}
LINK_FLAGS = [
    "-nostdlib",
    "-Wl,--no-entry",
    "-Wl,--import-memory",
    "-Wl,--export=__heap_base",
    "-Wl,--gc-sections",
    "-Wl,--strip-all",
    f"-Wl,-z,stack-size={STACK_BYTES}",
]
# 65535 pages is the largest maximum wasm-ld accepts; the runtime creates the memory with the bundle's size
SHARED_LINK_FLAGS = ["-Wl,--shared-memory", "-Wl,--max-memory=4294901760", "-Wl,--export=__stack_pointer"]


def is_threaded(variant: str) -> bool:
    return variant.endswith("-mt")


_EXPORT_RE = re.compile(r"^KERNEL\s+void\s+(\w+)\s*\(|^\w+_KERNEL\(\s*(\w+)\s*,", re.M)


def _zig(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "ziglang", "cc", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise PackageError(f"kernel compilation failed: zig cc {' '.join(args)}\n{proc.stderr.strip()}")


def _sources() -> list[Path]:
    return sorted(KERNELS_DIR.glob("*.c"))


def _headers_digest() -> str:
    h = hashlib.sha256()
    for p in sorted(KERNELS_DIR.glob("*.h")):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


@cache
def kernel_index() -> dict[str, str]:
    """Exported kernel name -> source file name, read from the `KERNEL void name(` and
    `XXX_KERNEL(name, ...)` declarations."""
    index: dict[str, str] = {}
    for src in _sources():
        for m in _EXPORT_RE.finditer(src.read_text()):
            index[m.group(1) or m.group(2)] = src.name
    return index


_DEFINE_RE = re.compile(r"^#define\s+(\w+)\(\s*(\w+)\s*,[^)]*\)((?:.*\\\n)*.*)$", re.M)
_COMMENT_RE = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def _param_names(params: str) -> tuple[str, ...]:
    """`int N, const float* x` -> ("N", "x"): the last identifier of each C parameter."""
    params = params.strip()
    if params in ("", "void"):
        return ()
    return tuple(re.findall(r"(\w+)\s*(?:\[\s*\])?\s*$", p)[0] for p in params.split(","))


@cache
def kernel_signatures() -> dict[str, tuple[str, ...]]:
    """Exported kernel name -> its C parameter names, in order, read from the sources: `KERNEL void name(...)`,
    and for kernels a macro defines (`XXX_KERNEL(name, ...)`) the `KERNEL void name(...)` in that macro's
    body or in a macro it expands with the same name first (binary-walk.h's WALK2_EXPORT). Lowerings check
    their arguments against it (LoweringContext.emit), so a kernel that gains a parameter fails at package
    time naming the kernel and the node, not when the browser loads the module."""
    texts = [_COMMENT_RE.sub(" ", p.read_text()) for p in sorted(KERNELS_DIR.glob("*.h")) + _sources()]
    direct = re.compile(r"KERNEL\s+void\s+(\w+)\s*\(([^)]*)\)")
    macros: dict[str, tuple[str, str]] = {}  # macro -> (its name parameter, body)
    for text in texts:
        for m in _DEFINE_RE.finditer(text):
            macros[m.group(1)] = (m.group(2), m.group(3).replace("\\\n", " "))

    def from_macro(macro: str, seen: frozenset = frozenset()) -> tuple[str, ...] | None:
        if macro not in macros or macro in seen:
            return None
        name, body = macros[macro]
        for m in direct.finditer(body):
            if m.group(1) == name:
                return _param_names(m.group(2))
        for inner in re.finditer(r"\b(\w+)\(\s*" + re.escape(name) + r"\s*,", body):
            found = from_macro(inner.group(1), seen | {macro})
            if found is not None:
                return found
        return None

    signatures: dict[str, tuple[str, ...]] = {}
    for text in texts:
        for line in re.finditer(r"^KERNEL\s+void\s+(\w+)\s*\(([^)]*)\)", text, re.M):
            signatures[line.group(1)] = _param_names(line.group(2))
        for use in re.finditer(r"^(\w+_KERNEL)\(\s*(\w+)\s*,", text, re.M):
            params = from_macro(use.group(1))
            if params is not None:
                signatures[use.group(2)] = params
    return signatures


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _object(src: Path, variant: str, headers: str) -> Path:
    flags = VARIANTS[variant]
    key = hashlib.sha256("\0".join([src.read_text(), headers, *flags]).encode()).hexdigest()[:24]
    obj = CACHE_DIR / "obj" / f"{src.stem}.{variant}.{key}.o"
    if not obj.exists():
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "k.o"
            _zig([*flags, f"-I{KERNELS_DIR}", "-c", "-o", str(out), str(src)])
            _atomic_write(obj, out.read_bytes())
    return obj


def build_module(exports: list[str], variant: str, names: bool = False) -> bytes:
    """A wasm module exporting exactly `exports` (plus `__heap_base`), for one build variant. `names` keeps
    the name section (function names, for `code_sizes`); bundles ship without it."""
    index = kernel_index()
    unknown = sorted(set(exports) - set(index))
    if unknown:
        raise PackageError(f"no kernel named {', '.join(unknown)} in {KERNELS_DIR}")
    headers = _headers_digest()
    # Link every object: kernels call each other across files (conv calls gemm) and gc-sections removes
    # whatever no export reaches, so the module holds only this bundle's kernels.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        objects = list(pool.map(lambda s: _object(s, variant, headers), _sources()))
    link = LINK_FLAGS + (SHARED_LINK_FLAGS if is_threaded(variant) else [])
    if names:
        link = [f for f in link if f != "-Wl,--strip-all"]
    key = hashlib.sha256("\0".join([*(o.name for o in objects), *sorted(exports), *link]).encode())
    out = CACHE_DIR / "wasm" / f"{variant}.{key.hexdigest()[:24]}.wasm"
    if not out.exists():
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "m.wasm"
            _zig(
                [
                    *VARIANTS[variant],
                    *link,
                    *(f"-Wl,--export={e}" for e in sorted(exports)),
                    "-o",
                    str(target),
                    *map(str, objects),
                ]
            )
            _atomic_write(out, target.read_bytes())
    return out.read_bytes()


def _sections(module: bytes):
    """(id, body) of each section of a wasm binary."""
    pos = 8
    while pos < len(module):
        section, size, pos = module[pos], *_uleb(module, pos + 1)
        yield section, module[pos : pos + size]
        pos += size


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it) of the unsigned LEB128 number at data[pos] (wasm's integer encoding)."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def code_sizes(module: bytes) -> dict[str, int]:
    """Bytes of each function body of a module built with names=True, by function name (an unnamed
    function is `func[i]`), largest first. The module imports no functions, so code entry i is function i."""
    bodies: list[int] = []
    names: dict[int, str] = {}
    for section, body in _sections(module):
        if section == 10:  # code: count, then (size, body) per function
            count, q = _uleb(body, 0)
            for _ in range(count):
                size, q = _uleb(body, q)
                bodies.append(size)
                q += size
        elif section == 0:  # custom: the "name" section's subsection 1 maps function index -> name
            n, q = _uleb(body, 0)
            if body[q : q + n] != b"name":
                continue
            q += n
            while q < len(body):
                kind, (size, q) = body[q], _uleb(body, q + 1)
                if kind == 1:
                    count, r = _uleb(body, q)
                    for _ in range(count):
                        index, r = _uleb(body, r)
                        length, r = _uleb(body, r)
                        names[index] = body[r : r + length].decode()
                        r += length
                q += size
    sizes = {names.get(i, f"func[{i}]"): size for i, size in enumerate(bodies)}
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


def size_report(exports: list[str], variant: str, top: int = 8) -> str:
    """The module's largest functions, e.g. "f32_gemm_packed 11.2 KB, leftover_rows 7.5 KB, ...": which code
    a bundle's kernels pull in (helpers that are not inlined show under their own names)."""
    sizes = code_sizes(build_module(exports, variant, names=True))
    return ", ".join(f"{name} {size / 1024:.1f} KB" for name, size in list(sizes.items())[:top])
