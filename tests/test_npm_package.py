"""The npm package of the browser runtime (web/package.json): what `npm pack` puts in it, its hand-written types
(web/index.d.ts, type-checked by `tsc --strict` from tests/npm/, installed by run-tests.sh with `npm ci`), and the
packed runtime itself, unpacked and served alone, and an app built with Vite from it, each running a zoo bundle
in Chromium against onnxruntime."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

from wasm_runtime.verify import reference_outputs

REPO = Path(__file__).resolve().parent.parent
WEB = REPO / "web"
TYPES_TEST = REPO / "tests" / "npm"
TSC = TYPES_TEST / "node_modules" / ".bin" / "tsc"

# What the package must hold: every module of the runtime (index.js, the worker and what they import), the types,
# the README and the LICENSE; npm adds package.json itself.
RUNTIME_MODULES = sorted(p.name for p in WEB.glob("*.js"))
EXPECTED_FILES = sorted([*RUNTIME_MODULES, "index.d.ts", "README.md", "LICENSE", "package.json"])

needs_npm = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed (run-tests.sh needs it)")


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """(npm pack's JSON report, the unpacked package directory) of web/, packed once."""
    out = tmp_path_factory.mktemp("npm-pack")
    proc = subprocess.run(
        ["npm", "pack", "--json", "--pack-destination", str(out), "--loglevel=error"],
        cwd=WEB, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)[0]
    with tarfile.open(out / report["filename"]) as tar:
        tar.extractall(out, filter="data")
    return report, out / "package"


@needs_npm
def test_pack_holds_exactly_the_runtime(packed):
    report, unpacked = packed
    assert sorted(f["path"] for f in report["files"]) == EXPECTED_FILES
    assert sorted(p.name for p in unpacked.iterdir()) == EXPECTED_FILES
    for name in [*RUNTIME_MODULES, "index.d.ts", "README.md"]:
        assert (unpacked / name).read_bytes() == (WEB / name).read_bytes(), name
    # the package's LICENSE is the repository's, not a copy left to drift
    assert (unpacked / "LICENSE").read_bytes() == (REPO / "LICENSE").read_bytes()


def test_package_json_matches_the_runtime_and_pyproject():
    meta = json.loads((WEB / "package.json").read_text())
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M).group(1)
    assert meta["version"] == version
    assert meta["type"] == "module" and meta["sideEffects"] is False and meta["license"] == "MIT"
    assert meta["exports"]["."] == {"types": "./index.d.ts", "default": "./index.js"}
    assert meta["types"] == "./index.d.ts"
    # worker.js is reached by new URL("./worker.js", import.meta.url) and gpu.js by import("./gpu.js"), which no
    # bundler follows from "exports"; they ship as files beside index.js, and every module must be listed
    imported = set()
    for module in WEB.glob("*.js"):
        text = module.read_text()
        imported |= set(re.findall(r'from "\./([\w.]+)"', text))
        imported |= set(re.findall(r'import\("\./([\w.]+)"\)', text))
        imported |= set(re.findall(r'new URL\("\./([\w.]+)", import\.meta\.url\)', text))
    assert imported <= set(meta["files"]), imported - set(meta["files"])
    assert "worker.js" in imported


# Each case: a file that misuses the API, and the TypeScript error it must fail with (on the marked line).
NEGATIVE_CASES = {
    "numthreads_string": ('await InferenceSession.create("/m/", { numThreads: "2" });', "TS2322"),
    "unknown_backend": ('await InferenceSession.create("/m/", { backend: "cpu" });', "TS2322"),
    "wasm_variant_typo": ('await InferenceSession.create("/m/", { wasmVariant: "relaxed-simd" });', "TS2322"),
    "integrity_not_a_pin": ('await InferenceSession.create("/m/", { integrity: "md5-x" });', "TS2322"),
    "unknown_option": ('await InferenceSession.create("/m/", { threads: 2 });', "TS2353"),
    "transfer_number": ('await s.run({ x: new Tensor("float32", [1]) }, { transfer: 1 });', "TS2322"),
    "float16_as_float32": ('new Tensor("float16", new Float32Array(1));', "TS2345"),
    "int64_as_int32": ('new Tensor("int64", new Int32Array(1));', "TS2345"),
    "feeds_not_tensors": ("await s.run({ x: new Float32Array(1) });", "TS2739"),
    "names_readonly": ("s.inputNames = [];", "TS2540"),
    "constructor_private": ('new InferenceSession("simd");', "TS2673"),
}


@needs_npm
def test_types_check_an_example_and_refuse_misuse(packed, tmp_path):
    if not TSC.exists():
        pytest.fail(f"{TSC} is missing: run `npm ci --prefix tests/npm` (run-tests.sh does)")
    _, unpacked = packed
    # the example imports "wasm-runtime-web" as an application would: through the package's "exports" types
    shutil.copytree(unpacked, tmp_path / "node_modules" / "wasm-runtime-web")
    shutil.copy(TYPES_TEST / "example.ts", tmp_path)
    head = 'import { InferenceSession, Tensor } from "wasm-runtime-web";\n'
    for case, (line, _) in NEGATIVE_CASES.items():
        body = f"export async function misuse(s: InferenceSession) {{\n  {line} // wrong\n}}\n"
        (tmp_path / f"bad_{case}.ts").write_text(head + body)
    files = ["example.ts", *(f"bad_{case}.ts" for case in NEGATIVE_CASES)]
    proc = subprocess.run(
        [str(TSC), "--strict", "--noEmit", "--pretty", "false", "--target", "es2022", "--module", "esnext",
         "--moduleResolution", "bundler", "--lib", "es2022,dom", *files],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    errors = re.findall(r"^(\S+\.ts)\((\d+),\d+\): error (TS\d+)", proc.stdout, re.M)
    assert proc.stdout.count("error TS") == len(errors), proc.stdout  # no error outside the files (options)
    assert [e for e in errors if e[0] == "example.ts"] == [], proc.stdout
    for case, (_, code) in NEGATIVE_CASES.items():
        got = {(int(line), c) for f, line, c in errors if f == f"bad_{case}.ts"}
        assert got == {(3, code)}, f"{case}: {got or 'type-checks'}\n{proc.stdout}"
    assert proc.returncode != 0


RUN_FROM_PACKAGE_JS = """
async ({ url, input, dims }) => {
  const { InferenceSession, Tensor } = await import("/runtime/index.js");
  // "auto" loads gpu.js too (no WebGL plan here, so it falls back to wasm); 2 threads start helper workers from
  // threads.js and the hasher from integrity.js: every module and worker URL of the package is resolved
  const session = await InferenceSession.create(url, { backend: "auto", numThreads: 2 });
  const bytes = Uint8Array.from(atob(input), (c) => c.charCodeAt(0));
  const outputs = await session.run({ input: new Tensor("float32", new Float32Array(bytes.buffer), dims) });
  const out = outputs[session.outputNames[0]];
  const facts = { data: Array.from(out.data), dims: out.dims, backend: session.backend, threads: session.threads };
  await session.release();
  return facts;
}
"""


@needs_npm
@pytest.mark.browser
def test_unpacked_package_runs_a_bundle_like_onnxruntime(packed, models_dir, zoo_models, page, tmp_path):
    from server.app import create_app, serving_in_background

    _, unpacked = packed
    # /runtime/ is the unpacked tarball alone: a module missing from "files" fails to load
    app = create_app(models_dir, web_dir=unpacked, demos_dir=tmp_path)
    x = np.random.default_rng(0).standard_normal([1, 3, 224, 224]).astype(np.float32)
    (expected,) = reference_outputs(zoo_models["squeezenet1.1"], {"input": x}).values()
    with serving_in_background(app, "npm-package") as url:
        page.goto(f"{url}/models/index.json")
        facts = page.evaluate(
            RUN_FROM_PACKAGE_JS,
            {"url": "/models/squeezenet1.1/", "input": base64.b64encode(x.tobytes()).decode(), "dims": list(x.shape)},
        )
    assert facts["backend"] == "wasm" and facts["threads"] == 2
    assert facts["dims"] == list(expected.shape)
    np.testing.assert_allclose(np.array(facts["data"], np.float32).reshape(expected.shape), expected,
                               rtol=1e-4, atol=1e-4)


VITE = TYPES_TEST / "node_modules" / ".bin" / "vite"

# An application's entry: it imports the package by name and hands its API to the test page.
VITE_MAIN = 'import { InferenceSession, Tensor } from "wasm-runtime-web";\nwindow.rt = { InferenceSession, Tensor };\n'
# Vite's default worker format, "iife", fails the build ("UMD and IIFE output formats are not supported for
# code-splitting builds"): the worker imports gpu.js lazily. README.md says to set this.
VITE_CONFIG = 'export default { logLevel: "error", worker: { format: "es" } };\n'

RUN_FROM_VITE_BUILD_JS = RUN_FROM_PACKAGE_JS.replace(
    'const { InferenceSession, Tensor } = await import("/runtime/index.js");',
    "await import(entry);\n  const { InferenceSession, Tensor } = window.rt;",
).replace("async ({ url, input, dims })", "async ({ entry, url, input, dims })")


@needs_npm
@pytest.mark.browser
def test_vite_build_of_an_app_runs_a_bundle_like_onnxruntime(packed, models_dir, zoo_models, page, tmp_path):
    """What README.md says about bundlers, done: an app importing the package, built by Vite, in Chromium."""
    from server.app import create_app, serving_in_background

    if not VITE.exists():
        pytest.fail(f"{VITE} is missing: run `npm ci --prefix tests/npm` (run-tests.sh does)")
    _, unpacked = packed
    app_dir = tmp_path / "app"
    shutil.copytree(unpacked, app_dir / "node_modules" / "wasm-runtime-web")
    (app_dir / "index.html").write_text('<!doctype html><script type="module" src="/main.js"></script>\n')
    (app_dir / "main.js").write_text(VITE_MAIN)
    (app_dir / "vite.config.js").write_text(VITE_CONFIG)
    proc = subprocess.run([str(VITE), "build"], cwd=app_dir, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assets = app_dir / "dist" / "assets"
    (entry,) = [p.name for p in assets.glob("index-*.js")]

    # nothing but the build's assets: no /runtime/ to fall back on
    empty = tmp_path / "empty"
    app = create_app(models_dir, web_dir=empty, demos_dir=empty, extra_roots={"assets": assets})
    x = np.random.default_rng(1).standard_normal([1, 3, 224, 224]).astype(np.float32)
    (expected,) = reference_outputs(zoo_models["squeezenet1.1"], {"input": x}).values()
    with serving_in_background(app, "vite-app") as url:
        page.goto(f"{url}/models/index.json")
        facts = page.evaluate(
            RUN_FROM_VITE_BUILD_JS,
            {"entry": f"/assets/{entry}", "url": "/models/squeezenet1.1/",
             "input": base64.b64encode(x.tobytes()).decode(), "dims": list(x.shape)},
        )
    assert facts["backend"] == "wasm" and facts["threads"] == 2
    np.testing.assert_allclose(np.array(facts["data"], np.float32).reshape(expected.shape), expected,
                               rtol=1e-4, atol=1e-4)
