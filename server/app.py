"""The Flask app serving web bundles, the JS runtime and the demos (server/servers.py runs it).

Browsers only expose SharedArrayBuffer (needed for threaded WASM) to cross-origin-isolated pages,
hence the COOP/COEP headers on every response.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

from flask import Flask, Response, abort, jsonify, redirect, send_file

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


def _send(root: str | os.PathLike, subpath: str) -> Response:
    if "\x00" in subpath or "\\" in subpath:
        abort(400)
    if subpath == "" or subpath.endswith("/"):
        subpath += "index.html"
    real = resolve_under(root, subpath)
    if real is None:
        abort(404)
    # Typed by the requested name, so a symlink serves as the extension the client asked for.
    mimetype = MIME_TYPES.get(os.path.splitext(subpath)[1].lower(), "application/octet-stream")
    return send_file(real, mimetype=mimetype)


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
) -> Flask:
    """The app. `extra_roots` maps more URL prefixes to directories (e.g. {"bench": "benchmarks/page"} serves
    /bench/<file>), with the same containment checks, MIME types and headers as the built-in roots."""
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

    @route("/")
    def root():
        return redirect("/demos/")

    @route("/runtime/")
    @route("/runtime/<path:subpath>")
    def runtime(subpath: str = ""):
        return _send(web_dir, subpath)

    @route("/models/")
    @route("/models/index.json")
    def models_index():
        return jsonify(bundle_names(models_dir))

    @route("/models/<path:subpath>")
    def models(subpath: str):
        return _send(models_dir, subpath)

    @route("/demos/")
    @route("/demos/<path:subpath>")
    def demos(subpath: str = ""):
        return _send(demos_dir, subpath)

    for prefix, directory in extra_roots.items():
        # Bind the directory per prefix; each prefix gets its own endpoint name.
        def extra(subpath: str = "", _root: Path = Path(directory)):
            return _send(_root, subpath)

        app.add_url_rule(f"/{prefix}/", f"extra:{prefix}", extra, methods=["GET"], provide_automatic_options=False)
        app.add_url_rule(
            f"/{prefix}/<path:subpath>", f"extra:{prefix}", extra, methods=["GET"], provide_automatic_options=False
        )

    @app.after_request
    def add_headers(response: Response) -> Response:
        # after_request also runs for 404/405 and routing redirects, so no response lacks these.
        response.headers.update(SECURITY_HEADERS)
        response.headers["Cache-Control"] = "no-cache"
        return response

    return app


def serve(
    models_dir: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int | str = 8000,
    web_dir: str | os.PathLike | None = None,
    demos_dir: str | os.PathLike | None = None,
    production: bool = False,
    **limits,
) -> None:
    """Serve until Ctrl-C: werkzeug's development server, or waitress with `production`. `limits` are
    make_server's `timeout`, `connection_limit` and (waitress) `threads`. A host or port that cannot be served
    raises server.servers.ServeError before anything listens."""
    from server.servers import is_wildcard, make_server

    app = create_app(models_dir, web_dir=web_dir, demos_dir=demos_dir)
    server = make_server(app, host, port, production=production, **limits)
    shown_host = f"[{host}]" if ":" in host else host
    kind = "waitress" if production else "development server (werkzeug); --production serves with waitress"
    print(f"Demos at http://{shown_host}:{server.port}/demos/ ({kind})", flush=True)
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
