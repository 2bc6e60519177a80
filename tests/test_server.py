import http.client
import inspect
import json
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import server
from server import __main__ as cli
from server.app import SECURITY_HEADERS, create_app, resolve_under, serving_in_background
from server.servers import make_server
from wasm_runtime.cli import main as package_for_web

REPO = Path(__file__).resolve().parent.parent

SECRET = b"TOP-SECRET-DO-NOT-SERVE"


@pytest.fixture
def roots(tmp_path):
    """Three roots side by side, with a secret file just outside them."""
    (tmp_path / "secret.txt").write_bytes(SECRET)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)

    web = tmp_path / "web"
    web.mkdir()
    (web / "runtime.js").write_text("export const x = 1;\n")
    (web / "worker.mjs").write_text("export {};\n")
    (web / "style.css").write_text("body {}\n")
    (web / "kernels.wasm").write_bytes(b"\0asm\1\0\0\0")
    (web / "alias.js").symlink_to(web / "runtime.js")
    (web / "escape.js").symlink_to(tmp_path / "secret.txt")
    (web / "escape_dir").symlink_to(outside, target_is_directory=True)

    models = tmp_path / "models"
    for name in ("tiny", "mnist"):
        (models / name).mkdir(parents=True)
        (models / name / "manifest.json").write_text(json.dumps({"name": name}))
        (models / name / "weights.bin").write_bytes(b"\1\2\3\4")
        (models / name / "kernels.wasm").write_bytes(b"\0asm\1\0\0\0")
    (models / "not_a_bundle").mkdir()
    (models / "stray.txt").write_text("x")

    demos = tmp_path / "demos"
    (demos / "mnist").mkdir(parents=True)
    (demos / "index.html").write_text("<h1>demos</h1>")
    (demos / "mnist" / "index.html").write_text("<h1>mnist</h1>")
    (demos / "empty").mkdir()

    extra = tmp_path / "extra"
    (extra / "sub").mkdir(parents=True)
    (extra / "index.html").write_text("<h1>extra</h1>")
    (extra / "ort.min.mjs").write_text("export default {};\n")
    (extra / "sub" / "ort-wasm.wasm").write_bytes(b"\0asm\1\0\0\0")
    (extra / "model.onnx").write_bytes(b"\x08\x08")
    (extra / "escape.js").symlink_to(tmp_path / "secret.txt")
    (extra / "escape_dir").symlink_to(outside, target_is_directory=True)
    return tmp_path


@pytest.fixture
def client(roots):
    app = create_app(
        roots / "models", web_dir=roots / "web", demos_dir=roots / "demos", extra_roots={"extra": roots / "extra"}
    )
    return app.test_client()


def assert_security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, name
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert response.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "url, status",
    [
        ("/runtime/runtime.js", 200),
        ("/models/tiny/manifest.json", 200),
        ("/models/", 200),
        ("/demos/", 200),
        ("/extra/ort.min.mjs", 200),
        ("/extra/missing.js", 404),
        ("/runtime/missing.js", 404),
        ("/nowhere", 404),
        ("/", 302),
        ("/demos", 308),
    ],
)
def test_security_and_cache_headers_on_every_response(client, url, status):
    response = client.get(url)
    assert response.status_code == status
    assert_security_headers(response)
    assert response.headers["Cache-Control"] == "no-cache"


def test_root_redirects_to_demos(client):
    response = client.get("/")
    assert response.headers["Location"] == "/demos/"
    assert client.get("/", follow_redirects=True).data == b"<h1>demos</h1>"


@pytest.mark.parametrize(
    "url, mimetype",
    [
        ("/runtime/kernels.wasm", "application/wasm"),
        ("/runtime/runtime.js", "text/javascript"),
        ("/runtime/worker.mjs", "text/javascript"),
        ("/runtime/style.css", "text/css"),
        ("/models/tiny/manifest.json", "application/json"),
        ("/models/tiny/weights.bin", "application/octet-stream"),
        ("/models/tiny/kernels.wasm", "application/wasm"),
        ("/demos/mnist/index.html", "text/html"),
        ("/demos/mnist/", "text/html"),
        ("/extra/ort.min.mjs", "text/javascript"),
        ("/extra/sub/ort-wasm.wasm", "application/wasm"),
        ("/extra/model.onnx", "application/octet-stream"),
        ("/extra/", "text/html"),
    ],
)
def test_mime_types(client, url, mimetype):
    response = client.get(url)
    assert response.status_code == 200
    assert response.mimetype == mimetype


def test_files_served_with_content_and_etag(client, roots):
    response = client.get("/models/tiny/weights.bin")
    assert response.data == b"\1\2\3\4"
    etag = response.headers["ETag"]
    assert client.get("/models/tiny/weights.bin", headers={"If-None-Match": etag}).status_code == 304


def test_head_has_headers_and_no_body(client):
    response = client.head("/runtime/kernels.wasm")
    assert response.status_code == 200
    assert response.mimetype == "application/wasm"
    assert response.data == b""
    assert_security_headers(response)


@pytest.mark.parametrize("url", ["/models/", "/models/index.json"])
def test_models_index_lists_bundles(client, url):
    response = client.get(url)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == ["mnist", "tiny"]


def test_models_index_with_missing_dir(tmp_path):
    client = create_app(tmp_path / "nope", web_dir=tmp_path, demos_dir=tmp_path).test_client()
    assert client.get("/models/index.json").get_json() == []


def test_directory_index(client):
    assert client.get("/demos/").data == b"<h1>demos</h1>"
    assert client.get("/demos/mnist/").data == b"<h1>mnist</h1>"
    assert client.get("/demos/empty/").status_code == 404
    assert client.get("/runtime/").status_code == 404
    # Without the trailing slash a directory is not a file.
    assert client.get("/demos/mnist").status_code == 404


@pytest.mark.parametrize("prefix", ["/runtime", "/models", "/demos", "/extra"])
@pytest.mark.parametrize(
    "attack",
    [
        "/../secret.txt",
        "/tiny/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/%252e%252e/secret.txt",
        "/./../secret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/secret.txt%00.js",
        "/..%00/secret.txt",
    ],
)
def test_traversal_is_refused(client, prefix, attack):
    response = client.get(prefix + attack)
    assert response.status_code in (400, 404)
    assert SECRET not in response.data
    assert_security_headers(response)


@pytest.mark.parametrize("prefix", ["/runtime", "/models", "/demos", "/extra"])
def test_absolute_paths_are_refused(client, roots, prefix):
    secret = (roots / "secret.txt").as_posix()
    for url in (f"{prefix}/{secret}", f"{prefix}/%2F{secret.lstrip('/')}", f"{prefix}{secret}"):
        response = client.get(url, follow_redirects=True)
        assert response.status_code in (400, 404), url
        assert SECRET not in response.data


@pytest.mark.parametrize(
    "subpath",
    ["../secret.txt", "../web/runtime.js", "./../secret.txt", "SECRET_ABS", "..\\secret.txt", "a.js\x00"],
)
def test_resolve_under_rejects_unsafe_subpaths(roots, subpath):
    # Called directly: URL routing (slash merging, decoding) must not be the only line of defence.
    subpath = subpath.replace("SECRET_ABS", str(roots / "secret.txt"))
    assert resolve_under(roots / "web", subpath) is None


def test_resolve_under_rejects_dotdot_even_when_it_stays_inside(roots):
    (roots / "web" / "sub").mkdir()
    assert resolve_under(roots / "web", "sub/../runtime.js") is None
    assert resolve_under(roots / "web", "runtime.js") == str((roots / "web" / "runtime.js").resolve())


def test_nul_and_backslash_are_bad_requests(client):
    assert client.get("/runtime/runtime.js%00").status_code == 400
    assert client.get("/runtime/a%5cb.js").status_code == 400


def test_symlink_escaping_root_is_refused(client):
    urls = ["/runtime/escape.js", "/runtime/escape_dir/secret.txt", "/extra/escape.js", "/extra/escape_dir/secret.txt"]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 404, url
        assert SECRET not in response.data


def test_symlink_inside_root_is_served(client):
    response = client.get("/runtime/alias.js")
    assert response.status_code == 200
    assert response.data == b"export const x = 1;\n"
    assert response.mimetype == "text/javascript"


def test_escaping_bundle_symlink_is_not_listed(client, roots):
    (roots / "outside" / "manifest.json").write_text("{}")
    (roots / "models" / "evil").symlink_to(roots / "outside", target_is_directory=True)
    assert client.get("/models/index.json").get_json() == ["mnist", "tiny"]
    assert client.get("/models/evil/manifest.json").status_code == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("url", ["/runtime/runtime.js", "/extra/ort.min.mjs"])
def test_only_get_and_head_allowed(client, method, url):
    response = client.open(url, method=method)
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD"}
    assert_security_headers(response)


def test_extra_roots_serve_files_with_headers(client):
    response = client.get("/extra/sub/ort-wasm.wasm")
    assert response.status_code == 200
    assert response.data == b"\0asm\1\0\0\0"
    assert response.headers["Cache-Control"] == "no-cache"
    assert_security_headers(response)
    assert client.get("/extra/").data == b"<h1>extra</h1>"
    assert client.get("/extra/sub/").status_code == 404  # no index.html there
    # The built-in roots are unchanged by an extra root.
    assert client.get("/runtime/runtime.js").data == b"export const x = 1;\n"


def test_several_extra_roots_are_independent(roots):
    app = create_app(
        roots / "models",
        web_dir=roots / "web",
        demos_dir=roots / "demos",
        extra_roots={"bench": roots / "demos", "ort": roots / "extra", "work.1": roots / "web"},
    )
    client = app.test_client()
    assert client.get("/bench/mnist/").data == b"<h1>mnist</h1>"
    assert client.get("/ort/ort.min.mjs").status_code == 200
    assert client.get("/work.1/runtime.js").data == b"export const x = 1;\n"
    assert client.get("/ort/runtime.js").status_code == 404
    assert client.get("/bench/../web/runtime.js").status_code in (400, 404)


def test_no_extra_roots_means_no_extra_routes(roots):
    client = create_app(roots / "models", web_dir=roots / "web", demos_dir=roots / "demos").test_client()
    assert client.get("/extra/ort.min.mjs").status_code == 404


@pytest.mark.parametrize(
    "prefix", ["", "runtime", "models", "demos", "a/b", "..", ".hidden", "sp ace", "%2e%2e", "x\\y", "<p>", 3]
)
def test_bad_extra_root_prefixes_are_rejected(roots, prefix):
    with pytest.raises(ValueError, match="extra root prefix"):
        create_app(roots / "models", web_dir=roots / "web", demos_dir=roots / "demos", extra_roots={prefix: roots})


def test_default_host_is_loopback():
    assert inspect.signature(server.serve).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(server.serve).parameters["port"].default == 8000


def test_cli_passes_arguments(monkeypatch, roots):
    calls = []
    monkeypatch.setattr(cli, "serve", lambda *a, **kw: calls.append((a, kw)))
    assert cli.main([str(roots / "models")]) == 0
    assert cli.main([str(roots / "models"), "--host", "0.0.0.0", "--port", "9000", "--production"]) == 0
    assert calls == [
        ((str(roots / "models"),), {"host": "127.0.0.1", "port": 8000, "production": False}),
        ((str(roots / "models"),), {"host": "0.0.0.0", "port": 9000, "production": True}),
    ]
    assert cli.main([str(roots / "missing")]) == 2


@pytest.fixture(params=[False, True], ids=["dev", "production"])
def production(request):
    return request.param


@pytest.fixture
def live(roots, production):
    """Base URL of the app on the server `serve` runs (werkzeug's or waitress), in a thread."""
    app = create_app(
        roots / "models", web_dir=roots / "web", demos_dir=roots / "demos", extra_roots={"extra": roots / "extra"}
    )

    @app.route("/boom")
    def boom():
        raise RuntimeError("a bug in a view")

    with serving_in_background(app, production=production) as url:
        yield url


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def raw_exchange(port: int, data: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send `data` as is (http.client cannot send a malformed request) and read one response: status, headers
    (lower-case names, each once), body (by Content-Length, else up to the close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except ConnectionResetError:  # the server may answer and close before reading all of a huge request
            pass
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError(f"no complete response head, got {buf[:200]!r}")
            buf += chunk
        head, body = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1."), f"no status line: {lines[0]!r}"
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            assert name.lower() not in headers, f"{name} sent twice"
            headers[name.lower()] = value.strip()
        length = int(headers.get("content-length", -1))
        while length < 0 or len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return int(lines[0].split()[1]), headers, body


def assert_raw_security_headers(headers: dict[str, str]) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name.lower()) == value, f"{name}: {headers}"


GET = b"GET /runtime/runtime.js HTTP/1.1\r\nHost: 127.0.0.1\r\n"
# (request, status from werkzeug's server, status from waitress): the answers the servers make themselves (bad
# syntax, limits) never reach the app, so its after_request cannot add the headers to them
MALFORMED = {
    "bad-request-line": (b"HELLO\r\n\r\n", 400, 400),
    "http-0.9": (b"GET /runtime/runtime.js\r\n\r\n", 505, 200),
    "http-2.0-in-http-1": (b"GET /runtime/runtime.js HTTP/2.0\r\n\r\n", 505, 200),
    "bad-version": (b"GET /runtime/runtime.js HTTP/x\r\n\r\n", 400, 400),
    "lower-case-method": (b"get /runtime/runtime.js HTTP/1.1\r\nHost: x\r\n\r\n", 200, 400),
    "uri-70kB": (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, 404),
    "120-headers": (GET + b"".join(b"X-%d: y\r\n" % i for i in range(120)) + b"\r\n", 431, 200),
    "header-line-300kB": (GET + b"X: " + b"a" * 300_000 + b"\r\n\r\n", 431, 431),
    "body-100kB": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"a" * 100_000, 405, 413),
    "unknown-transfer-encoding": (GET + b"Transfer-Encoding: gzip\r\n\r\n", 200, 501),
    "not-found": (b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 404, 404),
    "method-not-allowed": (b"DELETE /runtime/runtime.js HTTP/1.1\r\nHost: x\r\n\r\n", 405, 405),
    "view-raises": (b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n", 500, 500),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_security_headers_on_the_servers_own_answers(live, production, case):
    request, dev_status, production_status = MALFORMED[case]
    status, headers, body = raw_exchange(port_of(live), request)
    assert status == (production_status if production else dev_status), body[:300]
    assert_raw_security_headers(headers)
    assert SECRET not in body


def test_security_headers_when_the_wsgi_app_itself_fails(production):
    """An exception out of the WSGI callable (past Flask's own handling) gets the server's 500, with the headers."""

    def broken_app(environ, start_response):
        raise RuntimeError("broken before start_response")

    httpd = make_server(broken_app, "127.0.0.1", 0, production=production)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        status, headers, body = raw_exchange(httpd.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 500
        assert_raw_security_headers(headers)
        assert b"broken before start_response" not in body  # no traceback to the client
    finally:
        httpd.shutdown()
        thread.join(timeout=5)
        httpd.server_close()


def test_live_server(live, production):
    with urllib.request.urlopen(f"{live}/models/tiny/kernels.wasm") as response:
        assert response.status == 200
        assert response.read() == b"\0asm\1\0\0\0"
        assert response.headers.get_content_type() == "application/wasm"
        assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        assert response.headers["Cross-Origin-Resource-Policy"] == "same-origin"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["Server"].startswith("waitress" if production else "Werkzeug")

    with urllib.request.urlopen(f"{live}/extra/sub/ort-wasm.wasm") as response:
        assert response.read() == b"\0asm\1\0\0\0"
        assert response.headers.get_content_type() == "application/wasm"
        assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"

    # Raw request lines: urllib and the test client could normalise these before sending. One keep-alive
    # connection for all of them where the server keeps it open (waitress).
    conn = http.client.HTTPConnection("127.0.0.1", port_of(live), timeout=5)
    raws = ["/runtime/../secret.txt", "/runtime/%2e%2e/secret.txt", "/runtime/..%2fsecret.txt"]
    for raw in [*raws, "/extra/../secret.txt", "/extra/%2e%2e/secret.txt", "/extra/..%2fsecret.txt"]:
        conn.request("GET", raw)
        response = conn.getresponse()
        assert response.status == 404, raw
        assert SECRET not in response.read()
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    conn.request("HEAD", "/models/tiny/weights.bin")
    response = conn.getresponse()
    assert (response.status, response.read(), response.headers["Content-Length"]) == (200, b"", "4")
    conn.close()


def test_large_file_and_range_served_exactly(live, roots):
    """A file of several of the servers' write blocks (werkzeug's here: 256 KiB), whole and in a byte range."""
    data = random.Random(1).randbytes(700_001)
    (roots / "models" / "tiny" / "large.bin").write_bytes(data)
    with urllib.request.urlopen(f"{live}/models/tiny/large.bin") as response:
        assert response.read() == data
    request = urllib.request.Request(f"{live}/models/tiny/large.bin", headers={"Range": "bytes=262000-524400"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == "bytes 262000-524400/700001"
        assert response.read() == data[262000:524401]


def open_idle(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]


def wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed `sock` (EOF or reset); an answer it sent first is read and discarded."""
    sock.settimeout(0.01)
    try:
        while chunk := sock.recv(65536):
            del chunk
        return True
    except TimeoutError:
        return False
    except OSError:
        return True


def test_dev_server_times_out_idle_connections_and_caps_threads(roots):
    """Idle connections used to get a thread each, for ever (500 sockets: 500 threads). Now each thread ends after
    `timeout` idle, and past `connection_limit` a connection gets an immediate 503 instead of a thread."""
    app = create_app(roots / "models", web_dir=roots / "web", demos_dir=roots / "demos")
    base = threading.active_count()
    with serving_in_background(app, timeout=1.0, connection_limit=8) as url:
        serving = threading.active_count()
        idle = open_idle(port_of(url), 8)
        assert wait_for(lambda: threading.active_count() == serving + 8, 5), threading.active_count() - serving
        # the 9th and 10th connections: a 503 with the headers, and no thread
        for _ in range(2):
            status, headers, _ = raw_exchange(port_of(url), GET + b"\r\n")
            assert status == 503
            assert headers["retry-after"] == "1"
            assert_raw_security_headers(headers)
        assert threading.active_count() == serving + 8
        # idle past the timeout: every thread gone, every idle socket closed by the server
        assert wait_for(lambda: threading.active_count() == serving, 5), threading.active_count() - serving
        assert all(wait_for(lambda s=s: closed_by_server(s), 2) for s in idle)
        for s in idle:
            s.close()
        with urllib.request.urlopen(f"{url}/runtime/runtime.js") as response:
            assert response.read() == b"export const x = 1;\n"
    assert wait_for(lambda: threading.active_count() == base, 5)


def test_production_server_holds_idle_connections_without_threads(roots):
    app = create_app(roots / "models", web_dir=roots / "web", demos_dir=roots / "demos")
    with serving_in_background(app, production=True, timeout=1.0, threads=2) as url:
        serving = threading.active_count()
        idle = open_idle(port_of(url), 30)
        time.sleep(0.5)
        assert threading.active_count() == serving  # a fixed pool: no thread per connection
        with urllib.request.urlopen(f"{url}/runtime/runtime.js") as response:  # still served meanwhile
            assert response.read() == b"export const x = 1;\n"
        # channel_timeout 1 s, looked for every second
        assert all(wait_for(lambda s=s: closed_by_server(s), 5) for s in idle)
        for s in idle:
            s.close()


def test_production_server_stops_accepting_at_the_connection_limit(roots):
    app = create_app(roots / "models", web_dir=roots / "web", demos_dir=roots / "demos")
    # waitress counts its listening socket and its wake-up pipe among the connections: 6 leaves 4 for clients
    with serving_in_background(app, production=True, timeout=30, connection_limit=6) as url:
        idle = open_idle(port_of(url), 4)
        time.sleep(0.5)
        waiting = socket.create_connection(("127.0.0.1", port_of(url)), timeout=1)
        waiting.sendall(GET + b"Connection: close\r\n\r\n")
        with pytest.raises(TimeoutError):
            waiting.recv(1)  # queued in the listen backlog, not answered
        idle[0].close()  # one slot frees: the queued connection is taken and answered
        waiting.settimeout(5)
        assert waiting.recv(12).startswith(b"HTTP/1.1 200")
        for s in [waiting, *idle[1:]]:
            s.close()


@pytest.fixture
def never_serve(monkeypatch):
    """A server that got as far as serving fails the test at once instead of serving for ever."""
    import server.servers as servers

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"a server was started on port {self.port}")

    for cls in (servers.DevServer, servers.ProductionServer):
        monkeypatch.setattr(cls, "serve_forever", refuse)


@pytest.mark.usefixtures("never_serve")
@pytest.mark.parametrize("port", ["99999", "65536", "0", "-1", "abc", "80.0", "", " 80", "8_000"])
def test_bad_port_is_one_line_and_exit_2(roots, capsys, port):
    """--port 99999 used to listen on some other port (getaddrinfo takes it modulo 65536); 0 would be a random one."""
    for main, prog in [(package_for_web, "package-for-web"), (cli.main, "python -m server")]:
        args = ["serve"] if main is package_for_web else []
        assert main([*args, str(roots / "models"), "--port", port]) == 2
        err = capsys.readouterr().err
        assert err == f"{prog}: error: port must be a number from 1 to 65535, not {port!r}\n"


@pytest.mark.parametrize(
    "host, message",
    [
        ("", "host must be an IP address or a host name"),
        (" 127.0.0.1", "host must be an IP address or a host name"),
        ("unix:///tmp/pfw.sock", "is not an IP address or a host name"),  # werkzeug would bind a socket file
        ("127.0.0.1:8000", "is not an IP address or a host name (give the port with --port)"),
        ("192.0.2.1", "cannot listen on 192.0.2.1:8000: 192.0.2.1 is not an address of this machine"),
    ],
)
@pytest.mark.usefixtures("never_serve")
def test_bad_host_is_one_line_and_exit_2(roots, capsys, host, message):
    assert package_for_web(["serve", str(roots / "models"), "--host", host]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("package-for-web: error: ") and message in err, err


@pytest.mark.usefixtures("never_serve")
def test_port_in_use_is_one_line_and_exit_2(roots, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert package_for_web(["serve", str(roots / "models"), "--port", str(port), "--production"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"package-for-web: error: cannot listen on 127.0.0.1:{port}: port {port} is in use by another program; "
        "pick another with --port\n"
    )


@pytest.mark.usefixtures("never_serve")
def test_demo_refuses_a_bad_port_before_packaging(tmp_path, capsys):
    assert package_for_web(["demo", "--dist", str(tmp_path), "--port", "99999"]) == 2
    assert "port must be a number from 1 to 65535" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("production", [False, True], ids=["dev", "production"])
def test_serve_command_end_to_end(roots, production):
    """`package-for-web serve DIR [--production]` in a process of its own: the URL line, the files with their
    headers, Ctrl-C ends it with 0."""
    port = free_port()
    cmd = [sys.executable, "-m", "wasm_runtime.cli", "serve", str(roots / "models"), "--port", str(port)]
    # SIGINT restored: a child of a non-interactive shell may inherit it ignored
    proc = subprocess.Popen(
        cmd + (["--production"] if production else []),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"Demos at http://127.0.0.1:{port}/demos/ ("), line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/models/tiny/weights.bin", timeout=10) as response:
            assert response.read() == b"\1\2\3\4"
            assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
            assert response.headers["Server"].startswith("waitress" if production else "Werkzeug")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_load_test_smoke(tmp_path):
    """benchmarks/load_test.py for a few seconds on both servers: every request answered with the file's bytes.
    Reports speed, asserts none."""
    bundle = tmp_path / "models" / "tiny"
    bundle.mkdir(parents=True)
    rng = random.Random(0)
    files = {"weights.bin": rng.randbytes(2_000_000), "manifest.json": b'{"name": "tiny"}', "kernels.wasm": b"\0asm"}
    for name, data in files.items():
        (bundle / name).write_bytes(data)
    out = tmp_path / "load.json"
    cmd = [sys.executable, "benchmarks/load_test.py", "--clients", "3", "--seconds", "1.5", "--bundle", str(bundle),
           "--json", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())["results"]
    assert [r["server"] for r in results] == ["dev", "production"]
    for res in results:
        assert res["errors"] == 0 and res["stuck_clients"] == 0, res
        paths = [f["path"] for f in res["files"]]
        assert paths == ["/runtime/index.js", "/runtime/worker.js", "/models/tiny/manifest.json",
                         "/models/tiny/kernels.wasm", "/models/tiny/weights.bin"]  # fmt: skip
        assert all(f["requests"] > 0 for f in res["files"]), res
        assert res["files"][-1]["bytes"] == 2_000_000
