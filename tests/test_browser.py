"""The browser runtime (web/) and the demo (demos/) in headless Chromium, against onnxruntime.

Bundles are packaged once per session (conftest.py) and served by server.app with its COOP/COEP headers.
Test pages are the demo page in its idle mode (`/demos/?model=`), which loads nothing by itself; each test
imports /runtime/index.js there with page.evaluate.
"""

from __future__ import annotations

import base64
import json
import shutil
import struct
import zlib

import numpy as np
import pytest

from server.app import SECURITY_HEADERS
from wasm_runtime.verify import reference_outputs

pytestmark = pytest.mark.browser

RTOL = 1e-4
IMAGE_SHAPE = [1, 3, 224, 224]

# Create a session, run it once on base64 float32 bytes, return the output as base64 plus session facts.
RUN_JS = """
async ({ url, variant, input, dims, threads = 1 }) => {
  const { InferenceSession, Tensor } = await import("/runtime/index.js");
  const session = await InferenceSession.create(url, { wasmVariant: variant, numThreads: threads });
  const bytes = Uint8Array.from(atob(input), (c) => c.charCodeAt(0));
  const outputs = await session.run({ input: new Tensor("float32", new Float32Array(bytes.buffer), dims) });
  const out = outputs[session.outputNames[0]];
  const raw = new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength);
  let bin = "";
  for (let i = 0; i < raw.length; i += 0x8000) bin += String.fromCharCode(...raw.subarray(i, i + 0x8000));
  const facts = {
    output: btoa(bin), type: out.type, dims: out.dims, outputKeys: Object.keys(outputs),
    backend: session.backend, variant: session.variant, threads: session.threads,
    threadsReason: session.threadsReason,
    crossOriginIsolated: session.crossOriginIsolated, inputNames: session.inputNames,
    outputNames: session.outputNames, inputMetadata: session.inputMetadata,
    outputMetadata: session.outputMetadata, timings: session.timings,
  };
  await session.release();
  return facts;
}
"""

# The message create() rejects with, or null if it resolved.
CREATE_ERROR_JS = """
async ({ url, options }) => {
  const { InferenceSession } = await import("/runtime/index.js");
  try {
    const session = await InferenceSession.create(url, options);
    await session.release();
    return null;
  } catch (err) {
    return String(err && err.message);
  }
}
"""


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()


@pytest.fixture(scope="session")
def seeded_input():
    return np.random.default_rng(0).standard_normal(IMAGE_SHAPE).astype(np.float32)


@pytest.fixture(scope="session")
def references(zoo_models, seeded_input):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = reference_outputs(zoo_models[name], {"input": seeded_input})
        return cache[name]

    return get


@pytest.fixture
def rt_page(page, live_server):
    """A page on the server's origin (cross-origin isolated by its headers) that has loaded nothing."""
    page.goto(f"{live_server}/demos/?model=")
    page.wait_for_selector("body[data-state=idle]")
    return page


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("variant", ["simd", "relaxed"])
@pytest.mark.parametrize("model", ["squeezenet1.1", "mobilenetv2"])
def test_matches_onnxruntime(rt_page, references, seeded_input, model, variant, threads):
    facts = rt_page.evaluate(
        RUN_JS,
        {"url": f"/models/{model}", "variant": variant, "input": b64(seeded_input), "dims": IMAGE_SHAPE,
         "threads": threads},
    )
    ref = references(model)["logits"]
    ours = np.frombuffer(base64.b64decode(facts["output"]), np.float32).reshape(facts["dims"])
    assert ours.shape == ref.shape == (1, 1000)
    err = float(np.abs(ours.astype(np.float64) - ref).max() / np.abs(ref).max())
    assert err <= RTOL, f"{model}/{variant}: max|ours-ref|/max|ref| = {err:.3g}"

    assert facts["variant"] == variant
    assert facts["backend"] == "wasm"
    assert facts["threads"] == threads and facts["threadsReason"] == ""
    assert facts["crossOriginIsolated"] is True
    assert facts["type"] == "float32"
    assert facts["inputNames"] == ["input"] and facts["outputNames"] == ["logits"] == facts["outputKeys"]
    assert facts["inputMetadata"] == [{"name": "input", "dtype": "float32", "shape": IMAGE_SHAPE}]
    assert facts["outputMetadata"] == [{"name": "logits", "dtype": "float32", "shape": [1, 1000]}]
    timings = facts["timings"]
    assert set(timings) == {"fetchMs", "compileMs", "initMs", "createMs"}
    assert all(v >= 0 for v in timings.values()) and timings["createMs"] > 0


PROFILE_JS = """
async ({ url, threads }) => {
  const { InferenceSession, Tensor } = await import("/runtime/index.js");
  const session = await InferenceSession.create(url, { numThreads: threads });
  const feeds = { input: new Tensor("float32", new Float32Array(3 * 224 * 224), [1, 3, 224, 224]) };
  await session.run(feeds);
  const before = session.profile ?? null;
  await session.run(feeds, { profile: true });
  const profile = session.profile;
  await session.release();
  return { before, profile };
}
"""


@pytest.mark.parametrize("threads", [1, 2])
def test_run_profile_lists_every_step(rt_page, models_dir, threads):
    """run(feeds, {profile: true}) times each step of the plan, in order, named by node and kernel."""
    manifest = json.loads((models_dir / "squeezenet1.1" / "manifest.json").read_text())
    got = rt_page.evaluate(PROFILE_JS, {"url": "/models/squeezenet1.1/", "threads": threads})
    assert got["before"] is None  # only a profiled run fills it
    steps = manifest["steps"]
    assert [(p["node"], p["kernel"]) for p in got["profile"]] == [(s["node"], s["kernel"]) for s in steps]
    assert all(p["ms"] >= 0 for p in got["profile"]) and sum(p["ms"] for p in got["profile"]) > 0


CHUNKS_JS = """
async ({ url, configs }) => {
  const { InferenceSession, Tensor } = await import("/runtime/index.js");
  const x = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i * 0.37));
  const out = [];
  for (const { pauseMs = 0, ...options } of configs) {
    try {
      const session = await InferenceSession.create(url, options);
      const feeds = { input: new Tensor("float32", x, [1, 3, 224, 224]) };
      const runs = [];
      for (let r = 0; r < 3; r++) {
        if (r && pauseMs) await new Promise((resolve) => setTimeout(resolve, pauseMs));
        runs.push(Array.from((await session.run(feeds)).logits.data));
      }
      out.push({ threads: session.threads, runs });
      await session.release();
    } catch (err) {
      out.push({ error: String(err && err.message) });
    }
  }
  return out;
}
"""


def test_split_steps_claimed_in_chunks_give_the_one_thread_bits(rt_page):
    """Each split step is cut into threadChunks chunks per thread that the threads claim as they come free.
    Any cut and any claim order give the 1-thread output bit for bit, also with more threads than cores
    (helpers then often wake late and the session's worker claims their chunks), with runs apart (helpers asleep
    between runs, woken by the run) and with threads that never poll; bad counts are refused."""
    configs = [{"numThreads": 1}]
    configs += [{"numThreads": t, "threadChunks": c} for t, c in ((2, 1), (2, 2), (2, 7), (4, 3), (3, 64))]
    configs += [{"numThreads": 2, "pauseMs": 50}, {"numThreads": 3, "threadSpinMs": 0, "pauseMs": 20}]
    configs += [{"numThreads": 2, "threadChunks": c} for c in (0, 1.5, 65)]
    got = rt_page.evaluate(CHUNKS_JS, {"url": "/models/mobilenetv2/", "configs": configs})
    base = got[0]["runs"][0]
    for options, result in zip(configs, got, strict=True):
        if options.get("threadChunks") in (0, 1.5, 65):
            assert "threadChunks must be an integer from 1 to 64" in result["error"], result
            continue
        assert "error" not in result, (options, result)
        assert result["threads"] == options["numThreads"], options
        for run in result["runs"]:
            assert run == base, options


def test_not_cross_origin_isolated_runs_one_thread_and_says_why(page, live_server, references, seeded_input):
    # the runtime decides from crossOriginIsolated; pretend the page lacks the COOP/COEP headers
    page.add_init_script("Object.defineProperty(globalThis, 'crossOriginIsolated', { value: false })")
    page.goto(f"{live_server}/demos/?model=")
    page.wait_for_selector("body[data-state=idle]")
    warnings = []
    page.on("console", lambda msg: warnings.append(msg.text) if msg.type == "warning" else None)
    facts = page.evaluate(
        RUN_JS,
        {"url": "/models/squeezenet1.1", "variant": "simd", "input": b64(seeded_input), "dims": IMAGE_SHAPE,
         "threads": 2},
    )
    assert facts["threads"] == 1
    assert "not cross-origin isolated" in facts["threadsReason"]
    assert any("running on 1 thread" in w and "Cross-Origin-Opener-Policy" in w for w in warnings), warnings
    ours = np.frombuffer(base64.b64decode(facts["output"]), np.float32).reshape(facts["dims"])
    ref = references("squeezenet1.1")["logits"]
    assert np.abs(ours - ref).max() / np.abs(ref).max() <= RTOL


def test_auto_variant_and_session_semantics(rt_page):
    """auto picks relaxed SIMD on Chromium; runs queue in order; outputs are copies; Tensor validates."""
    result = rt_page.evaluate(
        """async () => {
          const { InferenceSession, Tensor } = await import("/runtime/index.js");
          const session = await InferenceSession.create("/models/squeezenet1.1/", { backend: "auto" });
          const dims = [1, 3, 224, 224];
          const inputs = [0.5, -1, 2].map((v) => new Tensor("float32", new Float32Array(3 * 224 * 224).fill(v), dims));
          const sequential = [];
          for (const x of inputs) sequential.push((await session.run({ input: x })).logits.data);
          const before = Array.from(sequential[0]);
          // Three runs in flight at once: each must get its own input's answer.
          const concurrent = await Promise.all(inputs.map((x) => session.run({ input: x })));
          const same = concurrent.every((o, i) => o.logits.data.every((v, j) => v === sequential[i][j]));
          const unchanged = sequential[0].every((v, j) => v === before[j]);
          const distinct = sequential[0].some((v, j) => v !== sequential[1][j]);
          const inputKept = inputs[0].data.length === 3 * 224 * 224 && inputs[0].data[7] === 0.5;
          const errors = [];
          for (const make of [
            () => new Tensor("float32", new Float32Array(5), [2, 3]),
            () => new Tensor("float32", new Int32Array(6), [2, 3]),
            () => new Tensor("complex64", new Float32Array(2), [2]),
          ]) {
            try { make(); errors.push(null); } catch (err) { errors.push(err.message); }
          }
          const converted = new Tensor("int64", [1, 2, 3], [3]);
          const boolT = new Tensor("bool", [true, false], [2]);
          await session.release();
          return { variant: session.variant, same, unchanged, distinct, inputKept, errors,
                   int64: converted.data instanceof BigInt64Array && converted.size === 3,
                   bool: boolT.data instanceof Uint8Array && boolT.data[0] === 1 };
        }"""
    )
    assert result["variant"] == "relaxed"
    assert result["same"] and result["unchanged"] and result["distinct"] and result["inputKept"]
    assert result["int64"] and result["bool"]
    length, mismatch, unknown = result["errors"]
    assert "[2, 3]" in length and "6 elements" in length and "5" in length
    assert "Float32Array" in mismatch and "Int32Array" in mismatch
    assert "complex64" in unknown


INPUT_PATHS_JS = """
async ({ url }) => {
  const { InferenceSession, Tensor } = await import("/runtime/index.js");
  const session = await InferenceSession.create(url);
  const n = 3 * 224 * 224, dims = [1, 3, 224, 224];
  const x = new Float32Array(n).map((_, i) => Math.cos(i * 0.011));
  const big = new Float32Array(n + 5);
  big.set(x, 3);
  const plain = (await session.run({ input: new Tensor("float32", x, dims) })).logits.data;
  const view = (await session.run({ input: new Tensor("float32", big.subarray(3, 3 + n), dims) })).logits.data;
  big.fill(7);  // the run copied its input: changing the caller's buffer afterwards changes nothing
  const again = (await session.run({ input: new Tensor("float32", x, dims) })).logits.data;
  await session.release();
  return { isolated: crossOriginIsolated, plain: Array.from(plain), view: Array.from(view), again: Array.from(again) };
}
"""


@pytest.mark.parametrize("isolated", [True, False])
def test_inputs_reach_the_worker_staged_or_cloned(page, live_server, isolated):
    """Cross-origin isolated pages pass inputs through a SharedArrayBuffer the session reuses, others by
    structured clone; either way an input that is a view into a larger buffer (byteOffset != 0) gives the
    same bits as a fresh array, and runs after it are unaffected."""
    if not isolated:
        page.add_init_script("Object.defineProperty(globalThis, 'crossOriginIsolated', { value: false })")
    page.goto(f"{live_server}/demos/?model=")
    page.wait_for_selector("body[data-state=idle]")
    got = page.evaluate(INPUT_PATHS_JS, {"url": "/models/squeezenet1.1/"})
    assert got["isolated"] is isolated
    assert got["view"] == got["plain"] == got["again"]


def test_weights_download_once_started_by_create(rt_page):
    """create() starts weights.bin's download itself, before the worker has started, and the worker uses that
    Blob instead of fetching the file again."""
    requests = []
    rt_page.on("request", lambda r: requests.append(r.url))
    ok = rt_page.evaluate(
        """async () => {
          const { InferenceSession } = await import("/runtime/index.js");
          const session = await InferenceSession.create("/models/squeezenet1.1/");
          await session.release();
          return true;
        }"""
    )
    assert ok
    weights = [u for u in requests if u.endswith("/models/squeezenet1.1/weights.bin")]
    assert len(weights) == 1, requests


def test_runs_off_the_main_thread(page, live_server):
    """While runs are in flight, main-thread timers keep firing; the work happens in a module worker."""
    page.add_init_script(
        """(() => {
          const Native = Worker;
          window.__workers = [];
          window.Worker = class extends Native {
            constructor(url, options) {
              super(url, options);
              window.__workers.push({ url: String(url), type: options?.type });
            }
          };
        })()"""
    )
    page.goto(f"{live_server}/demos/?model=")
    page.wait_for_selector("body[data-state=idle]")
    result = page.evaluate(
        """async () => {
          const { InferenceSession, Tensor } = await import("/runtime/index.js");
          const session = await InferenceSession.create("/models/mobilenetv2/");
          const x = new Tensor("float32", new Float32Array(3 * 224 * 224).fill(0.1), [1, 3, 224, 224]);
          await session.run({ input: x });  // warm-up
          let ticks = 0, last = performance.now(), maxGap = 0;
          const timer = setInterval(() => {
            const now = performance.now();
            maxGap = Math.max(maxGap, now - last);
            last = now;
            ticks++;
          }, 1);
          const t0 = performance.now();
          const runs = Array.from({ length: 6 }, () => session.run({ input: x }));
          const submitMs = performance.now() - t0;
          await Promise.all(runs);
          const totalMs = performance.now() - t0;
          clearInterval(timer);
          await session.release();
          return { ticks, maxGap, submitMs, totalMs, workers: window.__workers };
        }"""
    )
    assert result["workers"] and all(w["type"] == "module" for w in result["workers"])
    assert result["workers"][0]["url"] == f"{live_server}/runtime/worker.js"
    # Six MobileNetV2 runs take a while; if they ran on the main thread no timer could fire in between.
    assert result["submitMs"] < result["totalMs"] / 4, result
    assert result["ticks"] >= 5, result
    assert result["maxGap"] < result["totalMs"] / 2, result


@pytest.fixture(scope="session")
def broken_bundles(models_dir):
    """Bundles that must be refused, next to the good ones."""
    good = models_dir / "squeezenet1.1"
    manifest = json.loads((good / "manifest.json").read_text())

    (models_dir / "bad-json").mkdir(exist_ok=True)
    (models_dir / "bad-json" / "manifest.json").write_text('{"format": "wasm-runtime-bundle", "version": 1,')

    future = models_dir / "future-version"
    shutil.copytree(good, future, dirs_exist_ok=True)
    (future / "manifest.json").write_text(json.dumps({**manifest, "version": 2}))

    tampered = models_dir / "tampered"
    shutil.copytree(good, tampered, dirs_exist_ok=True)
    weights = bytearray((tampered / "weights.bin").read_bytes())
    weights[1000] ^= 0xFF
    (tampered / "weights.bin").write_bytes(bytes(weights))

    no_weights = models_dir / "no-weights"
    shutil.copytree(good, no_weights, dirs_exist_ok=True)
    (no_weights / "weights.bin").unlink()

    trap = models_dir / "trap"
    shutil.copytree(good, trap, dirs_exist_ok=True)
    bad_steps = json.loads(json.dumps(manifest["steps"]))
    first = bad_steps[0]
    first["args"] = [
        manifest["memory"]["pages"] * 65536 if a == manifest["inputs"][0]["offset"] else a for a in first["args"]
    ]
    (trap / "manifest.json").write_text(json.dumps({**manifest, "steps": bad_steps}))
    return {"trap_node": first["node"], "trap_kernel": first["kernel"]}


@pytest.mark.parametrize(
    "case, url, options, expected",
    [
        ("404", "/models/no-such-model/", {}, ["HTTP 404", "/models/no-such-model/manifest.json", "http://"]),
        ("not json", "/models/bad-json", {}, ["/models/bad-json/manifest.json", "not valid JSON"]),
        ("version", "/models/future-version/", {}, ["format version 2 is not supported", "expects 1", "re-package"]),
        ("tampered", "/models/tampered/", {}, ["weights.bin", "integrity", "sha256"]),
        ("no weights", "/models/no-weights/", {}, ["weights.bin", "HTTP 404", "/models/no-weights/weights.bin"]),
        ("webgl", "/models/squeezenet1.1/", {"backend": "webgl"}, ["no WebGL plan", "--backend webgl"]),
        ("backend", "/models/squeezenet1.1/", {"backend": "gpu"}, ["backend 'gpu' is not one of"]),
        ("variant", "/models/squeezenet1.1/", {"wasmVariant": "sse"}, ["wasmVariant 'sse'"]),
    ],
)
def test_create_rejects_with_actionable_message(rt_page, broken_bundles, case, url, options, expected):
    message = rt_page.evaluate(CREATE_ERROR_JS, {"url": url, "options": options})
    assert message is not None, f"{case}: create() resolved"
    for part in expected:
        assert part in message, f"{case}: {part!r} not in {message!r}"


def test_tampered_bundle_loads_without_integrity(rt_page, broken_bundles):
    """integrity: false skips SRI (the flipped weight byte then goes unnoticed, as documented)."""
    assert rt_page.evaluate(CREATE_ERROR_JS, {"url": "/models/tampered/", "options": {"integrity": False}}) is None


def test_wrong_wasm_mime_type_falls_back_with_warning(page, live_server):
    """A server sending .wasm as octet-stream breaks compileStreaming; the worker warns and compiles the bytes."""
    warnings = []
    page.on("console", lambda msg: warnings.append(msg.text) if msg.type == "warning" else None)

    def octet_stream(route):
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "content-type": "application/octet-stream"})

    page.route("**/*.wasm", octet_stream)
    page.goto(f"{live_server}/demos/?model=")
    page.wait_for_selector("body[data-state=idle]")
    assert page.evaluate(CREATE_ERROR_JS, {"url": "/models/squeezenet1.1/", "options": {}}) is None
    assert any("not application/wasm" in w and "kernels-" in w for w in warnings), warnings


def test_kernel_trap_names_kernel_and_node(rt_page, broken_bundles):
    message = rt_page.evaluate(
        """async () => {
          const { InferenceSession, Tensor } = await import("/runtime/index.js");
          const session = await InferenceSession.create("/models/trap/", { integrity: true });
          const input = new Tensor("float32", new Float32Array(3 * 224 * 224), [1, 3, 224, 224]);
          try { await session.run({ input }); return null; } catch (err) { return err.message; }
          finally { await session.release(); }
        }"""
    )
    assert message is not None
    assert broken_bundles["trap_kernel"] in message and repr(broken_bundles["trap_node"]) in message
    assert "trapped" in message and "out of bounds" in message


def test_browser_without_simd_is_refused(page, live_server):
    page.add_init_script("WebAssembly.validate = () => false;")
    page.goto(f"{live_server}/demos/?model=")
    page.wait_for_selector("body[data-state=idle]")
    message = page.evaluate(CREATE_ERROR_JS, {"url": "/models/squeezenet1.1/", "options": {}})
    assert message and "does not support WebAssembly SIMD" in message and "Chrome 91+" in message


def test_browser_without_relaxed_simd_falls_back(page, live_server):
    """auto picks the SIMD128 build when relaxed SIMD does not validate; asking for relaxed is refused."""
    page.add_init_script(
        """(() => {
          const validate = WebAssembly.validate;
          // relaxed-SIMD opcodes (0xfd 0x80 0x02 = f32x4.relaxed_madd) do not validate in this "browser".
          WebAssembly.validate = (bytes) => !Array.from(bytes).join(",").includes("253,128,2") && validate(bytes);
        })()"""
    )
    page.goto(f"{live_server}/demos/?model=")
    page.wait_for_selector("body[data-state=idle]")
    variant = page.evaluate(
        """async () => {
          const { InferenceSession } = await import("/runtime/index.js");
          const session = await InferenceSession.create("/models/squeezenet1.1/", { wasmVariant: "auto" });
          await session.release();
          return session.variant;
        }"""
    )
    assert variant == "simd"
    message = page.evaluate(CREATE_ERROR_JS, {"url": "/models/squeezenet1.1/", "options": {"wasmVariant": "relaxed"}})
    assert message and "relaxed SIMD" in message and "simd" in message


def test_broken_worker_rejects_pending_create(page, live_server):
    """A worker `error` event (here: worker.js fails to parse) rejects the pending call instead of hanging."""
    page.route(
        "**/runtime/worker.js",
        lambda route: route.fulfill(
            status=200, content_type="text/javascript", body="this is not ( javascript", headers=dict(SECURITY_HEADERS)
        ),
    )
    page.goto(f"{live_server}/demos/?model=")
    page.wait_for_selector("body[data-state=idle]")
    message = page.evaluate(CREATE_ERROR_JS, {"url": "/models/squeezenet1.1/", "options": {}})
    assert message and "worker failed" in message and "worker.js" in message


def test_run_rejects_bad_feeds_and_release(rt_page):
    messages = rt_page.evaluate(
        """async () => {
          const { InferenceSession, Tensor } = await import("/runtime/index.js");
          const session = await InferenceSession.create("/models/squeezenet1.1/");
          const good = new Tensor("float32", new Float32Array(3 * 224 * 224), [1, 3, 224, 224]);
          const attempt = async (feeds) => {
            try { await session.run(feeds); return null; } catch (err) { return err.message; }
          };
          const out = {
            name: await attempt({ image: good }),
            extra: await attempt({ input: good, mask: good }),
            missing: await attempt({}),
            shape: await attempt({ input: new Tensor("float32", new Float32Array(3 * 100 * 100), [1, 3, 100, 100]) }),
            dtype: await attempt({ input: new Tensor("int32", new Int32Array(3 * 224 * 224), [1, 3, 224, 224]) }),
            stillWorks: await attempt({ input: good }),
          };
          const inFlight = session.run({ input: good }).then(() => null, (err) => err.message);
          await session.release();
          out.inFlight = await inFlight;
          out.afterRelease = await attempt({ input: good });
          return out;
        }"""
    )
    assert "'image'" in messages["name"] and "input" in messages["name"]
    assert "'mask'" in messages["extra"]
    assert "'input' is missing" in messages["missing"]
    assert "'input'" in messages["shape"] and "[1, 3, 100, 100]" in messages["shape"]
    assert "[1, 3, 224, 224]" in messages["shape"]
    assert "int32" in messages["dtype"] and "float32" in messages["dtype"]
    assert messages["stillWorks"] is None
    assert messages["inFlight"] in (None, "session released")
    assert messages["afterRelease"] == "session released"


def _png(width: int, height: int) -> bytes:
    """A small RGB gradient PNG, encoded by hand (no imaging library needed)."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 96)], axis=-1).astype(np.uint8)
    raw = b"".join(b"\0" + row.tobytes() for row in rgb)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_demo_page(page, live_server, tmp_path):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_viewport_size({"width": 1100, "height": 1000})
    page.goto(f"{live_server}/demos/")
    page.wait_for_selector("body[data-state=done], body[data-state=error]", timeout=60_000)
    assert page.evaluate("document.body.dataset.state") == "done", page.inner_text("#error")
    result = page.evaluate("window.demoResult")
    assert result["model"] == "mobilenetv2"
    assert result["crossOriginIsolated"] is True and result["variant"] in ("simd", "relaxed")
    top5 = result["top5"]
    assert len(top5) == 5 and all(0 <= t["index"] < 1000 for t in top5)
    scores = [t["score"] for t in top5]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1
    assert result["latencyMs"] > 0 and result["firstRunMs"] > 0 and result["createMs"] > 0
    assert len(result["runsMs"]) == 10
    assert page.locator("#top5 li").count() == 5
    assert "seeded random" in page.inner_text(".note")
    text = page.inner_text("#stats")
    assert "weights.bin" in text and "MB" in text and "Median of 10 runs" in text
    page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)

    # The visitor's own picture goes through the file picker.
    page.set_input_files("#file", files=[{"name": "mine.png", "mimeType": "image/png", "buffer": _png(320, 200)}])
    page.wait_for_function("window.demoResult.lastRunMs > 0 && document.body.dataset.state === 'done'")
    after = page.evaluate("window.demoResult.top5")
    assert len(after) == 5 and after != top5
    assert not errors


def test_demo_page_shows_errors(page, live_server):
    page.goto(f"{live_server}/demos/?model=no-such-model")
    page.wait_for_selector("body[data-state=error]", timeout=30_000)
    assert "HTTP 404" in page.inner_text("#error")


@pytest.mark.parametrize("dtype", ["float16", "uint8", "int64"])
def test_non_float32_inputs_and_outputs(page, live_server, models_dir, dtype):
    """A bundle whose input and output are float16 (IEEE half bits in a Uint16Array, as onnxruntime-web), uint8 or
    int64 takes and returns that type's typed array, bit for bit as onnxruntime transposes it."""
    from tests.oputil import single
    from wasm_runtime.package import package

    np_type = np.dtype(dtype)
    model = single("Transpose", {"x": ([3, 5], np_type)}, {"perm": [1, 0]})
    package(model, models_dir / f"transpose-{dtype}", variants=("simd",))
    x = (np.arange(15).reshape(3, 5) * 3 - 7).astype(np_type)
    if dtype == "float16":
        x = (x / 4).astype(np.float16)
    page.goto(f"{live_server}/demos/?model=")
    page.wait_for_selector("body[data-state=idle]")
    got = page.evaluate(
        """async ({ url, dtype, bits }) => {
          const { InferenceSession, Tensor } = await import("/runtime/index.js");
          const session = await InferenceSession.create(url, { wasmVariant: "simd" });
          const Ctor = { float16: Uint16Array, uint8: Uint8Array, int64: BigInt64Array }[dtype];
          const data = Ctor === BigInt64Array ? BigInt64Array.from(bits, BigInt) : Ctor.from(bits);
          const { y } = await session.run({ x: new Tensor(dtype, data, [3, 5]) });
          await session.release();
          return { type: y.type, ctor: y.data.constructor.name, dims: y.dims, bits: Array.from(y.data, Number),
                   meta: session.inputMetadata[0].dtype };
        }""",
        {"url": f"/models/transpose-{dtype}/", "dtype": dtype,
         "bits": (x.view(np.uint16) if dtype == "float16" else x).ravel().tolist()},
    )
    want = reference_outputs(model, {"x": x})["y"]
    assert got["type"] == dtype and got["meta"] == dtype and got["dims"] == [5, 3]
    assert got["ctor"] == {"float16": "Uint16Array", "uint8": "Uint8Array", "int64": "BigInt64Array"}[dtype]
    assert got["bits"] == (want.view(np.uint16) if dtype == "float16" else want).ravel().tolist()
