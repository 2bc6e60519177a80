"""Precompressed copies (`name.gz`, and `name.br` when the `brotli` package is installed) of a bundle's text and
code files, for a server that picks one by Accept-Encoding (server/app.py, nginx's gzip_static/brotli_static).

Only .json, .js, .mjs and .wasm: weights.bin is float data that gzip shrinks by a few percent at most, not worth
a second copy on disk. A copy is written only when it is smaller than the file. The manifest's sha256 pins stay
those of the uncompressed bytes: a browser undoes Content-Encoding before fetch() hands the body to the runtime.

`python -m wasm_runtime.precompress DIR...` writes the copies for every such file under DIR (e.g. web/ before
deploying behind nginx).
"""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

try:  # optional: not a dependency, so a bundle gets gzip copies only without it
    import brotli
except ImportError:  # pragma: no cover - depends on the environment
    brotli = None

COMPRESSIBLE = frozenset({".json", ".js", ".mjs", ".wasm"})
# (suffix, Content-Encoding token), in the server's order of preference
ENCODINGS = (("br", ".br"), ("gzip", ".gz")) if brotli is not None else (("gzip", ".gz"),)


def compress(encoding: str, data: bytes) -> bytes:
    """`data` under `encoding` ("gzip" or "br")."""
    if encoding == "br":
        return brotli.compress(data, quality=11)
    # mtime 0: the same input gives the same bytes, so a re-package does not change the copies
    return gzip.compress(data, compresslevel=9, mtime=0)


def precompress_file(path: Path) -> list[Path]:
    """Write the compressed copies of one file next to it; the paths written (none when no copy is smaller)."""
    data = path.read_bytes()
    written = []
    for encoding, suffix in ENCODINGS:
        out = path.with_name(path.name + suffix)
        packed = compress(encoding, data)
        if len(packed) >= len(data):
            out.unlink(missing_ok=True)  # a stale copy of an earlier, different file must not be served
            continue
        out.write_bytes(packed)
        written.append(out)
    return written


def precompress_dir(directory: Path, recursive: bool = True) -> list[Path]:
    """Precompress every compressible file in `directory` (and below it); the copies written."""
    written = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            if os.path.splitext(name)[1].lower() in COMPRESSIBLE:
                written += precompress_file(Path(root) / name)
        if not recursive:
            break
    return written


def compressed_names(names) -> set[str]:
    """The names the copies of `names` can have (a bundle directory's expected entries)."""
    return {
        name + suffix
        for name in names
        if os.path.splitext(name)[1].lower() in COMPRESSIBLE
        for _, suffix in (("gzip", ".gz"), ("br", ".br"))
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m wasm_runtime.precompress DIR...", file=sys.stderr)
        return 2
    for arg in args:
        if not Path(arg).is_dir():
            print(f"precompress: error: {arg}: no such directory", file=sys.stderr)
            return 2
        written = precompress_dir(Path(arg))
        print(f"{arg}: {len(written)} compressed copies ({', '.join(e for e, _ in ENCODINGS)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
