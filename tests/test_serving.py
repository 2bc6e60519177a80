"""Serving a site with its bundles: --static, caching pinned by the manifest's sha256, precompressed copies."""

import gzip
import hashlib
import json
import os

import numpy as np
import pytest

from server.app import IMMUTABLE, SECURITY_HEADERS, create_app, serving_in_background
from wasm_runtime.package import check_output_directory
from wasm_runtime.precompress import precompress_dir

SECRET = b"TOP-SECRET-DO-NOT-SERVE"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def roots(tmp_path):
    (tmp_path / "secret.txt").write_bytes(SECRET)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    bundle = tmp_path / "models" / "m"
    bundle.mkdir(parents=True)
    files = {
        "weights.bin": np.random.default_rng(0).standard_normal(4096).astype(np.float32).tobytes(),
        "kernels-simd.wasm": b"\0asm\1\0\0\0" + bytes(range(256)) * 8,
    }
    for name, data in files.items():
        (bundle / name).write_bytes(data)
    manifest = {
        "format": "wasm-runtime-bundle",
        "files": {n: {"bytes": len(d), "sha256": sha(d)} for n, d in files.items()},
    }
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    precompress_dir(bundle)
    site = tmp_path / "site"
    (site / "app").mkdir(parents=True)
    (site / "index.html").write_text("<h1>my site</h1>")
    (site / "app" / "main.js").write_text("export const answer = 42;\n" * 50)
    (site / "escape.html").symlink_to(tmp_path / "secret.txt")
    (site / "escape_dir").symlink_to(outside, target_is_directory=True)
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.js").write_text("export const runtime = 1;\n" * 40)
    return tmp_path


@pytest.fixture
def client(roots):
    app = create_app(roots / "models", web_dir=roots / "web", static_dir=roots / "site")
    return app.test_client()


def bundle_bytes(roots, name):
    return (roots / "models" / "m" / name).read_bytes()


@pytest.mark.parametrize("name", ["weights.bin", "kernels-simd.wasm"])
def test_pinned_file_is_immutable_only_under_its_own_version(client, roots, name):
    digest = sha(bundle_bytes(roots, name))
    for version, cache in [(digest[:8], IMMUTABLE), (digest, IMMUTABLE), ("", "no-cache"), (digest[:7], "no-cache"),
                           ("0" * 16, "no-cache")]:  # fmt: skip
        response = client.get(f"/models/m/{name}?v={version}")
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == cache, version
        assert response.headers["ETag"] == f'"{digest}"'
        assert response.data == bundle_bytes(roots, name)
    assert client.get(f"/models/m/{name}").headers["Cache-Control"] == "no-cache"


def test_file_that_no_longer_matches_its_pin_is_never_immutable(client, roots):
    """A weights.bin replaced without re-packaging: caching it for a year under the old hash would be a silent bug."""
    old = sha(bundle_bytes(roots, "weights.bin"))
    (roots / "models" / "m" / "weights.bin").write_bytes(b"\0" * 16384)
    response = client.get(f"/models/m/weights.bin?v={old[:16]}")
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["ETag"] == f'"{sha(bytes(16384))}"'


@pytest.mark.parametrize("name", ["weights.bin", "manifest.json", "kernels-simd.wasm"])
def test_etag_revalidates_with_304(client, roots, name):
    first = client.get(f"/models/m/{name}")
    etag = first.headers["ETag"]
    assert not etag.startswith("W/")
    again = client.get(f"/models/m/{name}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["Cache-Control"] == "no-cache"
    for header, value in SECURITY_HEADERS.items():
        assert again.headers[header] == value
    assert client.get(f"/models/m/{name}", headers={"If-None-Match": '"other"'}).status_code == 200


def test_manifest_etag_is_its_sha256(client, roots):
    response = client.get("/models/m/manifest.json?v=whatever")
    assert response.headers["ETag"] == f'"{sha(bundle_bytes(roots, "manifest.json"))}"'
    assert response.headers["Cache-Control"] == "no-cache"  # not pinned by anything: always revalidated


@pytest.mark.parametrize("name", ["manifest.json", "kernels-simd.wasm"])
def test_precompressed_copy_by_accept_encoding(client, roots, name):
    data = bundle_bytes(roots, name)
    plain = client.get(f"/models/m/{name}")
    assert "Content-Encoding" not in plain.headers and plain.data == data
    assert plain.headers["Vary"] == "Accept-Encoding"
    for accept in ["gzip", "gzip, deflate, br;q=0", "deflate, gzip;q=0.5"]:
        packed = client.get(f"/models/m/{name}", headers={"Accept-Encoding": accept})
        assert packed.headers["Content-Encoding"] == "gzip", accept
        assert packed.headers["Vary"] == "Accept-Encoding"
        assert len(packed.data) < len(data)
        assert gzip.decompress(packed.data) == data
        # a different representation: a different strong ETag, revalidated on its own
        assert packed.headers["ETag"] != plain.headers["ETag"]
        etag = packed.headers["ETag"]
        headers = {"Accept-Encoding": accept, "If-None-Match": etag}
        assert client.get(f"/models/m/{name}", headers=headers).status_code == 304
    refused = client.get(f"/models/m/{name}", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers and refused.data == data


def test_weights_are_never_precompressed(client, roots):
    assert not (roots / "models" / "m" / "weights.bin.gz").exists()
    response = client.get("/models/m/weights.bin", headers={"Accept-Encoding": "gzip, br"})
    assert "Content-Encoding" not in response.headers
    assert response.data == bundle_bytes(roots, "weights.bin")


def test_stale_compressed_copy_is_not_served(client, roots):
    """A manifest.json edited after its .gz was written, within the same clock tick (same mtime): the copy would
    serve the old bytes."""
    path = roots / "models" / "m" / "manifest.json"
    text = path.read_text() + " "
    gz_mtime = (roots / "models" / "m" / "manifest.json.gz").stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(gz_mtime, gz_mtime))
    response = client.get("/models/m/manifest.json", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in response.headers and response.data == text.encode()


def test_runtime_precompressed_by_the_build_step(client, roots):
    precompress_dir(roots / "web")
    data = (roots / "web" / "index.js").read_bytes()
    response = client.get("/runtime/index.js", headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip" and gzip.decompress(response.data) == data


def test_static_site_beside_models_and_runtime(client, roots):
    index = client.get("/")
    assert index.status_code == 200 and index.data == b"<h1>my site</h1>" and index.mimetype == "text/html"
    page = client.get("/app/main.js")
    assert page.mimetype == "text/javascript" and page.data.startswith(b"export const answer")
    assert client.get("/runtime/index.js").data.startswith(b"export const runtime")
    assert client.get("/models/index.json").get_json() == ["m"]
    assert client.get("/demos/").status_code == 404  # the site replaces the demos
    for url in ["/", "/app/main.js", "/missing.html"]:
        response = client.get(url)
        for header, value in SECURITY_HEADERS.items():
            assert response.headers[header] == value, url


@pytest.mark.parametrize(
    "attack",
    ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/app/../../secret.txt", "/%252e%252e/secret.txt",
     "/..%5csecret.txt", "/secret.txt%00.html", "/escape.html", "/escape_dir/secret.txt", "/ROOT_ABS"],
)  # fmt: skip
def test_static_site_confinement(client, roots, attack):
    url = attack.replace("/ROOT_ABS", "/" + str(roots / "secret.txt").lstrip("/"))
    response = client.get(url, follow_redirects=True)
    assert response.status_code in (400, 404), url
    assert SECRET not in response.data


def test_without_static_root_is_the_demo(roots):
    client = create_app(roots / "models", web_dir=roots / "web", demos_dir=roots / "site").test_client()
    assert client.get("/").headers["Location"] == "/demos/"
    assert client.get("/app/main.js").status_code == 404


def test_package_writes_gzip_copies_and_can_repackage(tmp_path, zoo_models):
    from wasm_runtime.package import package

    out = tmp_path / "b"
    package(zoo_models["squeezenet1.1"], out, name="squeezenet1.1")
    names = {p.name for p in out.iterdir()}
    assert {"manifest.json.gz", "optimization.json.gz"} <= names
    assert "weights.bin.gz" not in names
    for copy in out.glob("*.gz"):
        assert gzip.decompress(copy.read_bytes()) == copy.with_suffix("").read_bytes()
    check_output_directory(out)  # the copies count as the bundle's: a re-package needs no --force


def test_chromium_session_from_precompressed_bundle_with_integrity(page, models_dir, zoo_models, tmp_path):
    """The sha256 pins are of the uncompressed bytes; the browser decodes Content-Encoding before the runtime hashes
    the body, so integrity holds with gzip-encoded manifest and kernels."""
    import onnxruntime as ort

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>site</title>")
    encodings = {}
    page.on("response", lambda r: encodings.__setitem__(r.url.split("?")[0], r.headers.get("content-encoding")))
    model = zoo_models["squeezenet1.1"]
    x = np.random.default_rng(3).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with serving_in_background(create_app(models_dir, static_dir=site), "serving-test") as url:
        page.goto(f"{url}/")
        out = page.evaluate(
            """async (x) => {
              const { InferenceSession, Tensor } = await import("/runtime/index.js");
              const session = await InferenceSession.create("/models/squeezenet1.1/", { integrity: true });
              const input = new Tensor("float32", new Float32Array(x), [1, 3, 224, 224]);
              const result = await session.run({ [session.inputNames[0]]: input });
              const values = Array.from(result[session.outputNames[0]].data);
              await session.release();
              return values;
            }""",
            x.ravel().tolist(),
        )
    base = f"{url}/models/squeezenet1.1/"
    assert encodings[base + "manifest.json"] == "gzip"
    assert any(u.startswith(base + "kernels") and e == "gzip" for u, e in encodings.items()), encodings
    assert encodings[base + "weights.bin"] is None
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = sess.run(None, {sess.get_inputs()[0].name: x})[0].ravel()
    np.testing.assert_allclose(np.array(out, dtype=np.float32), expected, rtol=1e-3, atol=1e-4)


def test_serve_command_passes_static(monkeypatch, roots, capsys):
    import server
    from wasm_runtime.cli import main

    calls = []
    monkeypatch.setattr(server, "serve", lambda *a, **kw: calls.append((a, kw)))
    assert main(["serve", str(roots / "models"), "--static", str(roots / "site"), "--port", "8123"]) == 0
    assert calls == [((str(roots / "models"),), {"host": "127.0.0.1", "port": 8123, "production": False,
                                                  "static_dir": str(roots / "site")})]  # fmt: skip
    assert main(["serve", str(roots / "models"), "--static", str(roots / "nope")]) == 2
    assert capsys.readouterr().err == f"package-for-web: error: --static {roots / 'nope'}: no such directory\n"
