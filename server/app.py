"""The Flask app serving web bundles, the JS runtime and the demos (server/servers.py runs it).

Browsers only expose SharedArrayBuffer (needed for threaded WASM) to cross-origin-isolated pages,
hence the COOP/COEP headers on every response.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

try:  # optional, as in wasm_runtime/precompress.py: without it .br copies are never sent
    import brotli
except ImportError:  # pragma: no cover - depends on the environment
    brotli = None
from flask import Flask, Response, abort, jsonify, redirect, request, send_file

from wasm_runtime.resources import data_dir

# Fixed table so a stripped-down system mimetypes db (common in containers) cannot turn
# .wasm into text/plain, which breaks WebAssembly.instantiateStreaming.
MIME_TYPES = {
    ".wasm": "application/wasm",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".bin": "application/octet-stream",
    ".html": "text/html",
    ".css": "text/css",
    ".txt": "text/plain",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

SECURITY_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


# URL prefixes of create_app's extra roots: one plain path segment, not one the app already routes.
EXTRA_PREFIX_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
RESERVED_PREFIXES = frozenset({"runtime", "models", "demos"})


def resolve_under(root: str | os.PathLike, subpath: str) -> str | None:
    """Real path of the file `subpath` names inside `root`, or None if it is missing or escapes.

    `subpath` arrives percent-decoded from the WSGI layer, so encoded traversal (`%2e%2e`, `..%2f`)
    shows up here as plain `..` segments.
    """
    if "\x00" in subpath or "\\" in subpath or os.path.isabs(subpath) or ".." in subpath.split("/"):
        return None
    real_root = os.path.realpath(root)
    # realpath follows symlinks, so containment is checked against where the file really lives.
    real = os.path.realpath(os.path.join(real_root, subpath))
    if os.path.commonpath([real_root, real]) != real_root or not os.path.isfile(real):
        return None
    return real


COMPRESSIBLE = frozenset({".json", ".js", ".mjs", ".wasm"})
IMMUTABLE = "public, max-age=31536000, immutable"
MIN_VERSION_HEX = 8  # a shorter ?v= prefix could match a changed file by chance too often


def _accepted(header: str | None) -> set[str]:
    """Content codings the client accepts (q > 0), from Accept-Encoding."""
    accepted = set()
    for part in (header or "").split(","):
        token, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if token and q > 0:
            accepted.add(token.strip().lower())
    return accepted


class _Hashes:
    """sha256 of served files and the pins of bundle manifests, cached by (size, mtime, inode) so a file replaced
    in place is read again."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[tuple, str]] = {}
        self._pins: dict[str, tuple[tuple, dict]] = {}
        self._lock = threading.Lock()

    def of(self, real: str, coding: str | None = None) -> str:
        """sha256 of the file's bytes, decoded first when `coding` names its Content-Encoding."""
        st = os.stat(real)
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        with self._lock:
            hit = self._cache.get((real, coding or ""))
        if hit is not None and hit[0] == key:
            return hit[1]
        with open(real, "rb") as f:
            if coding is None:
                digest = hashlib.sha256()
                while block := f.read(1 << 20):
                    digest.update(block)
                value = digest.hexdigest()
            else:
                value = hashlib.sha256(_decode(coding, f.read())).hexdigest()
        with self._lock:
            self._cache[(real, coding or "")] = (key, value)
        return value

    def pins(self, manifest: str) -> dict:
        """{file name: sha256} of a bundle's manifest.json (its `files`), parsed once per version of the file rather
        than on every request for one of its files; {} when there is none or it cannot be read."""
        try:
            st = os.stat(manifest)
        except OSError:
            return {}
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        with self._lock:
            hit = self._pins.get(manifest)
        if hit is not None and hit[0] == key:
            return hit[1]
        try:
            with open(manifest, "rb") as f:
                files = json.load(f).get("files")
            pins = {name: meta["sha256"] for name, meta in files.items() if isinstance(meta, dict) and "sha256" in meta}
        except (OSError, ValueError, AttributeError, TypeError):
            pins = {}
        with self._lock:
            self._pins[manifest] = (key, pins)
        return pins


def _decode(coding: str, data: bytes) -> bytes:
    try:
        if coding == "gzip":
            return gzip.decompress(data)
        if coding == "br" and brotli is not None:
            return brotli.decompress(data)
    except Exception:  # noqa: BLE001 - a corrupt copy is simply not used
        pass
    return b""


def _pinned_sha(real: str, hashes: _Hashes) -> str | None:
    """The sha256 the manifest.json beside `real` pins it to, or None (no manifest, not listed, unreadable)."""
    sha = hashes.pins(os.path.join(os.path.dirname(real), "manifest.json")).get(os.path.basename(real))
    return sha.lower() if isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha) else None


def _compressed_variant(root, subpath: str, real: str, accept: str | None, hashes: _Hashes) -> tuple[str, str] | None:
    """(path, coding) of a precompressed copy of `real` the client accepts and that decodes to the file's very bytes
    (mtimes cannot tell: a file rewritten within the same clock tick as its copy would look no newer)."""
    if os.path.splitext(subpath)[1].lower() not in COMPRESSIBLE:
        return None
    accepted = _accepted(accept)
    for coding, suffix in (("br", ".br"), ("gzip", ".gz")):
        if coding not in accepted or (coding == "br" and brotli is None):
            continue
        copy = resolve_under(root, subpath + suffix)
        if copy is not None and hashes.of(copy, coding) == hashes.of(real):
            return copy, coding
    return None


def _send(root: str | os.PathLike, subpath: str, hashes: _Hashes, pinned: bool = False) -> Response:
    """The file `subpath` names in `root`. With `pinned` (the bundle root) a file the manifest beside it pins gets a
    strong ETag of its sha256, and immutable caching when asked for as `?v=<sha256 prefix>` of those very bytes;
    manifest.json gets an ETag of its sha256. A precompressed copy (`name.br`, `name.gz`) goes to a client that
    accepts its coding."""
    if "\x00" in subpath or "\\" in subpath:
        abort(400)
    if subpath == "" or subpath.endswith("/"):
        subpath += "index.html"
    real = resolve_under(root, subpath)
    if real is None:
        abort(404)
    # Typed by the requested name, so a symlink serves as the extension the client asked for.
    mimetype = MIME_TYPES.get(os.path.splitext(subpath)[1].lower(), "application/octet-stream")
    etag = immutable = None
    if pinned:
        pin = _pinned_sha(real, hashes)
        if pin is not None or os.path.basename(real) == "manifest.json":
            etag = hashes.of(real)
            version = request.args.get("v", "").lower()
            # The bytes on disk must be the pinned ones: a stale file cached for a year would be a silent bug.
            immutable = pin == etag and MIN_VERSION_HEX <= len(version) <= 64 and etag.startswith(version)
    variant = _compressed_variant(root, subpath, real, request.headers.get("Accept-Encoding"), hashes)
    path, coding = variant if variant is not None else (real, None)
    response = send_file(path, mimetype=mimetype, etag=False, conditional=False)
    if etag is None:
        st = os.stat(path)
        etag = f"{st.st_mtime_ns:x}-{st.st_size:x}"
    if coding is not None:
        response.headers["Content-Encoding"] = coding
        etag += "-" + coding  # each representation has its own strong validator
    response.set_etag(etag)
    if os.path.splitext(subpath)[1].lower() in COMPRESSIBLE:
        response.vary.add("Accept-Encoding")
    if immutable:
        response.headers["Cache-Control"] = IMMUTABLE
    response.make_conditional(request.environ, accept_ranges=True, complete_length=os.path.getsize(path))
    return response


def bundle_names(models_dir: str | os.PathLike) -> list[str]:
    """Names of servable bundles: subdirectories of models_dir holding a manifest.json."""
    if not os.path.isdir(models_dir):
        return []
    return sorted(
        entry.name
        for entry in os.scandir(models_dir)
        if resolve_under(models_dir, f"{entry.name}/manifest.json") is not None
    )


def create_app(
    models_dir: str | os.PathLike,
    web_dir: str | os.PathLike | None = None,
    demos_dir: str | os.PathLike | None = None,
    extra_roots: dict[str, str | os.PathLike] | None = None,
    static_dir: str | os.PathLike | None = None,
) -> Flask:
    """The app. `extra_roots` maps more URL prefixes to directories (e.g. {"bench": "benchmarks/page"} serves
    /bench/<file>), with the same containment checks, MIME types and headers as the built-in roots. `static_dir`
    (the user's site) is served at `/` in place of the demos; /models/ and /runtime/ take precedence over
    same-named directories in it."""
    extra_roots = dict(extra_roots or {})
    for prefix in extra_roots:
        if not isinstance(prefix, str) or not EXTRA_PREFIX_RE.fullmatch(prefix) or prefix in RESERVED_PREFIXES:
            raise ValueError(
                f"extra root prefix {prefix!r} must be one URL segment of letters, digits, '_', '-' or '.' "
                f"(not starting with '.') and not one of {sorted(RESERVED_PREFIXES)}"
            )
    models_dir = Path(models_dir)
    web_dir = Path(web_dir) if web_dir is not None else data_dir("web")
    demos_dir = Path(demos_dir) if demos_dir is not None else data_dir("demos")

    # No static folder: every file goes through resolve_under's containment check.
    app = Flask(__name__, static_folder=None)

    def route(rule: str):
        # OPTIONS is dropped so anything other than GET/HEAD gets 405.
        return app.route(rule, methods=["GET"], provide_automatic_options=False)

    hashes = _Hashes()

    if static_dir is not None:
        site = Path(static_dir)

        @route("/")
        @route("/<path:subpath>")
        def root(subpath: str = ""):
            return _send(site, subpath, hashes)

    else:

        @route("/")
        def root():
            return redirect("/demos/")

        @route("/demos/")
        @route("/demos/<path:subpath>")
        def demos(subpath: str = ""):
            return _send(demos_dir, subpath, hashes)

    @route("/runtime/")
    @route("/runtime/<path:subpath>")
    def runtime(subpath: str = ""):
        return _send(web_dir, subpath, hashes)

    @route("/models/")
    @route("/models/index.json")
    def models_index():
        return jsonify(bundle_names(models_dir))

    @route("/models/<path:subpath>")
    def models(subpath: str):
        return _send(models_dir, subpath, hashes, pinned=True)

    for prefix, directory in extra_roots.items():
        # Bind the directory per prefix; each prefix gets its own endpoint name.
        def extra(subpath: str = "", _root: Path = Path(directory)):
            return _send(_root, subpath, hashes)

        app.add_url_rule(f"/{prefix}/", f"extra:{prefix}", extra, methods=["GET"], provide_automatic_options=False)
        app.add_url_rule(
            f"/{prefix}/<path:subpath>", f"extra:{prefix}", extra, methods=["GET"], provide_automatic_options=False
        )

    @app.after_request
    def add_headers(response: Response) -> Response:
        # after_request also runs for 404/405 and routing redirects, so no response lacks these.
        response.headers.update(SECURITY_HEADERS)
        # revalidate everything unless _send proved the bytes are the ones the URL's ?v= names
        response.headers.setdefault("Cache-Control", "no-cache")
        return response

    return app


def serve(
    models_dir: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int | str = 8000,
    web_dir: str | os.PathLike | None = None,
    demos_dir: str | os.PathLike | None = None,
    production: bool = False,
    static_dir: str | os.PathLike | None = None,
    **limits,
) -> None:
    """Serve until Ctrl-C: werkzeug's development server, or waitress with `production`. `limits` are
    make_server's `timeout`, `connection_limit` and (waitress) `threads`. A host or port that cannot be served
    raises server.servers.ServeError before anything listens."""
    from server.servers import is_wildcard, make_server

    app = create_app(models_dir, web_dir=web_dir, demos_dir=demos_dir, static_dir=static_dir)
    server = make_server(app, host, port, production=production, **limits)
    shown_host = f"[{host}]" if ":" in host else host
    kind = "waitress" if production else "development server (werkzeug); --production serves with waitress"
    where = "Site" if static_dir is not None else "Demos"
    path = "/" if static_dir is not None else "/demos/"
    print(f"{where} at http://{shown_host}:{server.port}{path} ({kind})", flush=True)
    if is_wildcard(host):
        print(f"warning: {host} listens on every interface: anyone who can reach this machine can fetch the files")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@contextlib.contextmanager
def serving_in_background(app: Flask, name: str = "server", production: bool = False, **limits) -> Iterator[str]:
    """Run `app` on a free 127.0.0.1 port in a daemon thread (tests, benchmarks), on the server `serve` would use;
    yields the base URL with no trailing slash and shuts the server down on exit."""
    from server.servers import make_server

    httpd = make_server(app, "127.0.0.1", 0, production=production, **limits)
    thread = threading.Thread(target=httpd.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=5)
        httpd.server_close()
