"""What run() promises about its inputs, its order and a session whose worker is gone (web/index.js, web/README.md
"Session semantics"), in headless Chromium against onnxruntime.

- run() reads its inputs when it is called: a caller that refills one array before each of many calls it has not
  awaited gets each call's own answer (staged through the session's SharedArrayBuffers, cloned, or transferred
  with {transfer: true});
- runs of one session resolve in call order, also at 2 threads and on the WebGL backend;
- a worker that is gone (ended from outside, a helper thread that stops mid-step, an uncaught error) rejects every
  pending and later call with an error saying so, and session.ok turns false.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_webgl_mixed import gpu_wasm_gpu
from wasm_runtime.package import package
from wasm_runtime.verify import reference_outputs

pytestmark = pytest.mark.browser

RTOL = 1e-4
GL_RTOL = 1e-3  # the WebGL plan (SwiftShader), as tests/test_webgl.py
COUNT = 20


def fill(shape, i: int) -> np.ndarray:
    """The input of call i, exactly as FILL_JS writes it (integer arithmetic, one division, rounded to float32)."""
    n = int(np.prod(shape))
    return ((((np.arange(n) * 7 + i * 13) % 97) / 97 - 0.5).astype(np.float32)).reshape(shape)


FILL_JS = """
  const fill = (x, i) => {
    for (let j = 0; j < x.length; j++) x[j] = ((j * 7 + i * 13) % 97) / 97 - 0.5;
    return x;
  };
"""

# COUNT runs issued without awaiting, ONE array refilled before each call (and poisoned after the last); then
# each input run alone. Returns both sets of outputs and the order in which the queued runs resolved. With
# `depth`, a call waits for the one `depth` calls before it (a pipeline: buffers are reused while runs are queued).
QUEUED_JS = (
    """
async ({ url, options, count, shared, transfer, depth = 0 }) => {
  const { InferenceSession, Tensor } = await import("/runtime/index.js");
  """
    + FILL_JS
    + """
  const session = await InferenceSession.create(url, options);
  const [{ name, shape }] = session.inputMetadata;
  const out = session.outputNames[0];
  const n = shape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(shared ? new SharedArrayBuffer(4 * n) : new ArrayBuffer(4 * n));
  const order = [];
  const runs = [];
  const lengths = [];
  for (let i = 0; i < count; i++) {
    if (depth && i >= depth) await runs[i - depth];
    // with transfer each call needs its own array: a transferred one is detached (length 0)
    const data = transfer ? fill(new Float32Array(n), i) : fill(x, i);
    runs.push(session.run({ [name]: new Tensor("float32", data, shape) }, { transfer }).then((o) => {
      order.push(i);
      return Array.from(o[out].data);
    }));
    lengths.push(data.length);
  }
  x.fill(NaN);
  const queued = await Promise.all(runs);
  const alone = [];
  for (let i = 0; i < count; i++) {
    const own = new Tensor("float32", fill(new Float32Array(n), i), shape);
    alone.push(Array.from((await session.run({ [name]: own }))[out].data));
  }
  const facts = { order, queued, alone, lengths, threads: session.threads, backend: session.backend,
                  isolated: crossOriginIsolated, ok: session.ok };
  await session.release();
  return facts;
}
"""
)


def open_page(page, server: str, isolated: bool):
    if not isolated:
        # the runtime decides from crossOriginIsolated: pretend the page lacks the COOP/COEP headers
        page.add_init_script("Object.defineProperty(globalThis, 'crossOriginIsolated', { value: false })")
    page.goto(f"{server}/demos/?model=")
    page.wait_for_selector("body[data-state=idle]")
    return page


def rel(ours, ref) -> float:
    ours, ref = np.asarray(ours, np.float64).ravel(), np.asarray(ref, np.float64).ravel()
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


def check_queued(facts, model, shape, rtol, count=COUNT):
    """Each queued run gave its own input's answer: bit for bit the run of that input alone, and onnxruntime's."""
    assert facts["order"] == list(range(count)), "runs resolved out of call order"
    name = model.graph.input[0].name
    refs = [next(iter(reference_outputs(model, {name: fill(shape, i)}).values())) for i in range(count)]
    # the inputs are far enough apart that a run reading another call's input cannot pass
    assert min(rel(refs[i], refs[i + 1]) for i in range(count - 1)) > 10 * rtol
    wrong = [i for i in range(count) if facts["queued"][i] != facts["alone"][i]]
    assert not wrong, f"{len(wrong)} of {count} queued runs differ from the same input run alone: calls {wrong}"
    errors = [rel(facts["queued"][i], refs[i]) for i in range(count)]
    assert max(errors) <= rtol, errors


@pytest.mark.parametrize(
    "isolated, threads, shared, depth",
    [(True, 1, False, 0), (True, 2, False, 0), (True, 2, False, 3), (True, 1, True, 0), (False, 1, False, 0)],
    ids=["isolated-1t", "isolated-2t", "isolated-2t-pipelined", "shared-array-buffer-input", "not-isolated"],
)
def test_queued_runs_read_their_inputs_at_call_time(page, live_server, zoo_models, isolated, threads, shared, depth):
    """20 calls not awaited, one Float32Array refilled before each: each gets its own input's answer, in call
    order (staged through the session's SharedArrayBuffers in an isolated page, the extra ones cloned; cloned
    otherwise). An input on the caller's own SharedArrayBuffer is copied too, not shared with the worker.
    Pipelined (3 in flight, the next call made as the oldest resolves), staging buffers are reused between calls
    while other runs are still queued."""
    open_page(page, live_server, isolated)
    facts = page.evaluate(
        QUEUED_JS,
        {"url": "/models/squeezenet1.1/", "options": {"numThreads": threads}, "count": COUNT, "shared": shared,
         "transfer": False, "depth": depth},
    )
    assert facts["isolated"] is isolated and facts["threads"] == threads
    check_queued(facts, zoo_models["squeezenet1.1"], [1, 3, 224, 224], RTOL)
    assert facts["ok"] is True


@pytest.mark.parametrize("isolated", [True, False], ids=["isolated", "not-isolated"])
def test_transfer_moves_inputs_to_the_worker(page, live_server, zoo_models, isolated):
    """run(feeds, {transfer: true}) hands each input's ArrayBuffer to the worker: the caller's array is detached
    at the call (length 0), and every queued run still gets its own answer."""
    open_page(page, live_server, isolated)
    facts = page.evaluate(
        QUEUED_JS,
        {"url": "/models/squeezenet1.1/", "options": {}, "count": 6, "shared": False, "transfer": True},
    )
    check_queued(facts, zoo_models["squeezenet1.1"], [1, 3, 224, 224], RTOL, count=6)
    assert facts["lengths"] == [0] * 6


TRANSFER_LIMITS_JS = (
    """
async ({ url }) => {
  const { InferenceSession, Tensor } = await import("/runtime/index.js");
  """
    + FILL_JS
    + """
  const session = await InferenceSession.create(url);
  const dims = [1, 3, 224, 224], n = 3 * 224 * 224;
  const attempt = async (feeds, options) => {
    try { return { output: Array.from((await session.run(feeds, options)).logits.data) }; }
    catch (err) { return { error: err.message }; }
  };
  const out = {};
  // a view into a larger buffer: the whole buffer is transferred, the run reads its view
  const big = new Float32Array(n + 8);
  fill(big.subarray(5, 5 + n), 0);
  out.view = await attempt({ input: new Tensor("float32", big.subarray(5, 5 + n), dims) }, { transfer: true });
  out.bigDetached = big.length === 0;
  // a tensor whose buffer went with an earlier transfer
  const t = new Tensor("float32", fill(new Float32Array(n), 1), dims);
  out.first = await attempt({ input: t }, { transfer: true });
  out.again = await attempt({ input: t });
  // wasm memory cannot be detached
  const memory = new WebAssembly.Memory({ initial: 64 });
  const onMemory = fill(new Float32Array(memory.buffer, 0, n), 2);
  out.memory = await attempt({ input: new Tensor("float32", onMemory, dims) }, { transfer: true });
  out.memoryKept = onMemory.length === n;
  // the caller's SharedArrayBuffer cannot be transferred: it is copied, and the caller keeps it
  if (crossOriginIsolated) {
    const shared = fill(new Float32Array(new SharedArrayBuffer(4 * n)), 3);
    out.shared = await attempt({ input: new Tensor("float32", shared, dims) }, { transfer: true });
    out.sharedKept = shared.length === n && shared[1] === fill(new Float32Array(2), 3)[1];
  }
  out.after = await attempt({ input: new Tensor("float32", fill(new Float32Array(n), 4), dims) });
  out.ok = session.ok;
  await session.release();
  return out;
}
"""
)


@pytest.mark.parametrize("isolated", [True, False], ids=["isolated", "not-isolated"])
def test_transfer_limits(page, live_server, zoo_models, isolated):
    """Transfer takes a view's whole buffer; a tensor whose buffer was transferred, or a buffer that cannot be
    detached (a WebAssembly.Memory's), is refused with a message saying so, and the session keeps working; the
    caller's SharedArrayBuffer is copied (it cannot be transferred) and stays the caller's."""
    open_page(page, live_server, isolated)
    got = page.evaluate(TRANSFER_LIMITS_JS, {"url": "/models/squeezenet1.1/"})
    model = zoo_models["squeezenet1.1"]
    shape = [1, 3, 224, 224]

    def check(entry, i):
        assert "error" not in entry, entry.get("error")
        assert rel(entry["output"], reference_outputs(model, {"input": fill(shape, i)})["logits"]) <= RTOL

    check(got["view"], 0)
    assert got["bigDetached"]
    check(got["first"], 1)
    assert "detached" in got["again"]["error"] and "transfer" in got["again"]["error"], got["again"]
    assert "'input'" in got["memory"]["error"] and "cannot be transferred" in got["memory"]["error"], got["memory"]
    assert got["memoryKept"]
    if isolated:
        check(got["shared"], 3)
        assert got["sharedKept"]
    check(got["after"], 4)
    assert got["ok"] is True


@pytest.fixture(scope="module")
def mixed_bundle(models_dir):
    """A WebGL plan with a node on wasm between its GPU segments (conv -> Erf -> conv), beside the zoo bundles."""
    model = gpu_wasm_gpu()
    package(model, models_dir / "runtime-mixed", backend="webgl", variants=("simd",))
    return model


def test_queued_runs_on_a_mixed_webgl_plan(page, live_server, mixed_bundle):
    """The WebGL backend (its GPU segments and its wasm part) gets the same guarantees."""
    open_page(page, live_server, True)
    facts = page.evaluate(
        QUEUED_JS,
        {"url": "/models/runtime-mixed/", "options": {"backend": "webgl", "wasmVariant": "simd"}, "count": COUNT,
         "shared": False, "transfer": False},
    )
    assert facts["backend"] == "webgl"
    check_queued(facts, mixed_bundle, [1, 4, 6, 6], GL_RTOL)


# A session whose worker goes away with runs in flight: `how` ends it. Every call made before and after must
# settle (rejected) within `waitMs`, not hang.
DEAD_JS = """
async ({ url, threads, how, waitMs }) => {
  const { InferenceSession, Tensor } = await import("/runtime/index.js");
  const session = await InferenceSession.create(url, { numThreads: threads });
  const input = new Tensor("float32", new Float32Array(3 * 224 * 224).fill(0.25), [1, 3, 224, 224]);
  await session.run({ input });
  const okBefore = session.ok;
  const settle = (p) => Promise.race([
    p.then(() => "resolved", (err) => `rejected: ${err.message}`),
    new Promise((resolve) => setTimeout(() => resolve("never settled"), waitMs)),
  ]);
  const calls = [];
  if (how === "terminate") {
    // as the browser ending the worker: the session is not told
    calls.push(session.run({ input }), session.run({ input }));
    session._worker.terminate();
  } else {
    calls.push(session._testKill(how));
  }
  calls.push(session.run({ input }), session.run({ input }));
  const pending = await Promise.all(calls.map(settle));
  const okAfter = session.ok;
  const later = await settle(session.run({ input }));
  const release = await settle(session.release());
  return { okBefore, okAfter, pending, later, release, threads: session.threads };
}
"""


@pytest.mark.parametrize(
    "how, threads",
    [("terminate", 1), ("terminate", 2), ("helper", 2), ("throw", 1)],
    ids=["worker-terminated", "worker-terminated-2t", "helper-stops-mid-step", "uncaught-error"],
)
def test_dead_worker_rejects_pending_and_later_calls(rt_page_isolated, how, threads):
    """Whether the worker is ended from outside (as the browser ends a crashed one), one of its helper threads
    stops in the middle of a split step (the worker then waits for it forever), or the worker throws an uncaught
    error: the runs in flight and every later run() and release() reject saying the worker is gone and to create a
    new session, and session.ok is false. (A worker out of JS heap here takes the whole page down, so it has no
    test of its own: Chromium 156 reports the tab crashed.)"""
    got = rt_page_isolated.evaluate(
        DEAD_JS, {"url": "/models/mobilenetv2/", "threads": threads, "how": how, "waitMs": 15_000}
    )
    assert got["threads"] == threads
    pending = got["pending"]
    if how == "throw":
        # the worker still answers the runs it had before the page hears of the error: those may resolve
        assert "test: an uncaught error in the worker" in pending[0]
        pending = [pending[0]] + [p for p in pending[1:] if p != "resolved"]
    for outcome in [*pending, got["later"], got["release"]]:
        assert outcome.startswith("rejected: "), got
        assert "worker is gone" in outcome and "create a new session" in outcome, outcome
    assert got["okBefore"] is True and got["okAfter"] is False


@pytest.fixture
def rt_page_isolated(page, live_server):
    return open_page(page, live_server, True)


def test_release_rejects_pending_runs_and_turns_ok_false(rt_page_isolated):
    """release() is the session's own end: runs in flight reject with "session released", later ones too, a
    second release() is a no-op, and session.ok is false."""
    got = rt_page_isolated.evaluate(
        """async () => {
          const { InferenceSession, Tensor } = await import("/runtime/index.js");
          const session = await InferenceSession.create("/models/squeezenet1.1/");
          const input = new Tensor("float32", new Float32Array(3 * 224 * 224), [1, 3, 224, 224]);
          const settle = (p) => p.then(() => "resolved", (err) => `rejected: ${err.message}`);
          const inFlight = [session.run({ input }), session.run({ input })].map(settle);
          const okBefore = session.ok;
          await session.release();
          return { okBefore, okAfter: session.ok, inFlight: await Promise.all(inFlight),
                   later: await settle(session.run({ input })), again: await settle(session.release()) };
        }"""
    )
    assert got["okBefore"] is True and got["okAfter"] is False
    assert got["inFlight"] == ["rejected: session released"] * 2
    assert got["later"] == "rejected: session released"
    assert got["again"] == "resolved"
