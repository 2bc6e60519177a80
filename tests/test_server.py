import http.client
import inspect
import json
import threading
import urllib.request

import pytest
from werkzeug.serving import make_server

import server
from server import __main__ as cli
from server.app import SECURITY_HEADERS, create_app, resolve_under

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
    cli.main([str(roots / "models")])
    cli.main([str(roots / "models"), "--host", "0.0.0.0", "--port", "9000"])
    assert calls == [
        ((str(roots / "models"),), {"host": "127.0.0.1", "port": 8000}),
        ((str(roots / "models"),), {"host": "0.0.0.0", "port": 9000}),
    ]
    with pytest.raises(SystemExit):
        cli.main([str(roots / "missing")])


def test_live_server(roots):
    app = create_app(
        roots / "models", web_dir=roots / "web", demos_dir=roots / "demos", extra_roots={"extra": roots / "extra"}
    )
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{httpd.server_port}"
        with urllib.request.urlopen(f"{base}/models/tiny/kernels.wasm") as response:
            assert response.status == 200
            assert response.read() == b"\0asm\1\0\0\0"
            assert response.headers.get_content_type() == "application/wasm"
            assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
            assert response.headers["Cross-Origin-Resource-Policy"] == "same-origin"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Cache-Control"] == "no-cache"

        # Raw request line: urllib and the test client could normalise these before sending.
        with urllib.request.urlopen(f"{base}/extra/sub/ort-wasm.wasm") as response:
            assert response.read() == b"\0asm\1\0\0\0"
            assert response.headers.get_content_type() == "application/wasm"
            assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"

        raws = ["/runtime/../secret.txt", "/runtime/%2e%2e/secret.txt", "/runtime/..%2fsecret.txt"]
        for raw in [*raws, "/extra/../secret.txt", "/extra/%2e%2e/secret.txt", "/extra/..%2fsecret.txt"]:
            conn = http.client.HTTPConnection("127.0.0.1", httpd.server_port, timeout=5)
            conn.request("GET", raw)
            response = conn.getresponse()
            assert response.status == 404, raw
            assert SECRET not in response.read()
            conn.close()
    finally:
        httpd.shutdown()
        thread.join(timeout=5)
