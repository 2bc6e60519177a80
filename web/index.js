// Browser runtime for wasm-runtime web bundles (see README.md in this directory).
//
//   import { InferenceSession, Tensor } from "/runtime/index.js";
//   const session = await InferenceSession.create("/models/mobilenetv2/");
//   const { logits } = await session.run({ input: new Tensor("float32", data, [1, 3, 224, 224]) });
//
// This module only validates and routes messages; the model is fetched, compiled and run in a module
// worker (worker.js and the modules it imports), off the main thread. No dependencies, no build step.

const TYPED_ARRAYS = {
  float32: Float32Array,
  float64: Float64Array,
  // float16 data is the IEEE half-precision bits in a Uint16Array (as onnxruntime-web takes and returns them)
  float16: Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
};

const fmtDims = (dims) => `[${dims.join(", ")}]`;

export class Tensor {
  /** new Tensor(type, data, dims): data is the typed array of `type` (or a plain array, converted). */
  constructor(type, data, dims) {
    const Ctor = TYPED_ARRAYS[type];
    if (!Ctor) {
      throw new TypeError(`Tensor: unsupported type '${type}' (supported: ${Object.keys(TYPED_ARRAYS).join(", ")})`);
    }
    if (Array.isArray(data)) {
      if (type === "bool") data = Uint8Array.from(data, (v) => (v ? 1 : 0));
      else if (Ctor === BigInt64Array || Ctor === BigUint64Array) data = Ctor.from(data, (v) => BigInt(v));
      else data = Ctor.from(data);
    } else if (!(data instanceof Ctor)) {
      const given = data?.constructor?.name ?? typeof data;
      throw new TypeError(`Tensor: type '${type}' needs a ${Ctor.name} (or a plain array), got ${given}`);
    }
    dims = dims === undefined ? [data.length] : Array.from(dims);
    if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new TypeError(`Tensor: dims must be non-negative integers, got ${fmtDims(dims)}`);
    }
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== data.length) {
      throw new RangeError(`Tensor: dims ${fmtDims(dims)} hold ${size} elements but data has ${data.length}`);
    }
    this.type = type;
    this.data = data;
    this.dims = dims;
    this.size = size;
  }
}

// Smallest modules using a SIMD128 / relaxed-SIMD instruction (as in wasm-feature-detect).
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253, 15,
  253, 128, 2, 11,
]);

function validates(bytes) {
  try {
    return typeof WebAssembly === "object" && WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

function chooseVariant(requested = "auto") {
  if (!["auto", "simd", "relaxed"].includes(requested)) {
    throw new Error(`wasmVariant '${requested}' is not one of "auto", "simd", "relaxed"`);
  }
  if (!validates(SIMD_PROBE)) {
    throw new Error(
      "this browser does not support WebAssembly SIMD (needs Chrome 91+, Firefox 89+, Safari 16.4+); " +
        "update the browser or enable WebAssembly SIMD",
    );
  }
  const relaxed = validates(RELAXED_PROBE);
  if (requested === "relaxed" && !relaxed) {
    throw new Error(
      'this browser does not support WebAssembly relaxed SIMD (needs Chrome 114+); use wasmVariant: "auto" or "simd"',
    );
  }
  return requested === "auto" ? (relaxed ? "relaxed" : "simd") : requested;
}

function chooseThreads(requested) {
  const cores = globalThis.navigator?.hardwareConcurrency || 1;
  if (requested !== undefined && !(Number.isSafeInteger(requested) && requested >= 1)) {
    throw new Error(`numThreads must be a positive integer, got ${requested}`);
  }
  const wanted = requested ?? Math.min(cores, 4);
  if (wanted === 1) return { threads: 1, reason: "" };
  if (globalThis.crossOriginIsolated !== true || typeof SharedArrayBuffer !== "function") {
    return {
      threads: 1,
      reason:
        `${wanted} threads were wanted but the page is not cross-origin isolated, so SharedArrayBuffer is ` +
        "unavailable; serve it with Cross-Origin-Opener-Policy: same-origin and " +
        "Cross-Origin-Embedder-Policy: require-corp (package-for-web serve does)",
    };
  }
  return { threads: wanted, reason: "" };
}

function bundleUrl(url) {
  const base = globalThis.document?.baseURI ?? globalThis.location?.href;
  const resolved = new URL(String(url), base);
  if (!resolved.pathname.endsWith("/")) resolved.pathname += "/";
  return resolved.href;
}

// Steps of a run follow each other within microseconds, so during a run threads poll (spin) up to this long
// for the next one before they block on Atomics.wait; polls that time out back off (threads.js spinWhile), so
// a core busy with other work is left to it. Between runs they poll 0.1 ms at most, and the run wakes them.
// Measured on 2 cores, MobileNetV2 at 2 threads in Chromium (/tmp A/B harnesses, medians):
// - back to back, idle machine: 11.8 ms without polling, 9.6 with 0.1 ms polls, 9.5 with 2 ms (1 thread 17.9);
// - runs 50 ms apart (video frames): 0.1 ms polls 20.9-27.9 ms, no better than 1 thread; these 2 ms polls,
//   which bridge the slow wake-ups of a core that idled between runs, 14.8-18.0 ms (200 ms apart: 23-28 vs
//   21-26);
// - another process busy on one core: 28.5 ms with 0.1 ms polls, 28.9 with these (1 thread 27.7).
const DEFAULT_SPIN_MS = 2;
// Chunks per thread of each split step, claimed by whichever thread is free (web/threads.js runSplit). A/B in
// one page on 2 cores (/tmp A/B harness), 2 threads, against the former fixed one-chunk-per-thread split:
// idle, MobileNetV2 11.6 ms at 1, 2 or 4 chunks per thread (11.6 before); with a process taking half of a
// core, 18.0 / 17.4 / 18.0 (20.4 before). But ResNet-18 went 25.3 -> 30.4 ms at 2: its Winograd and im2col
// steps are split over pixels, and each chunk streams the layer's weights again.
const DEFAULT_CHUNKS_PER_THREAD = 1;
// SharedArrayBuffers a session stages inputs in (cross-origin isolated pages): one per run in flight, so a run
// called while another is still running stages too (a pipeline of two: one running, one waiting). Runs called
// beyond that are cloned, which copies each input at the call as well, without keeping more buffers alive.
const MAX_STAGING_SLOTS = 2;

const isShared = (buffer) => Object.prototype.toString.call(buffer) === "[object SharedArrayBuffer]";

// The error of every call on a session whose worker is gone.
const gone = (why) => new Error(`${why}; the session's worker is gone: create a new session with InferenceSession.create()`);

// weights.bin of the bundle at `base` as a Blob, or null if it cannot be had (the worker then fetches it and
// reports the error)
function prefetchWeights(base) {
  return fetch(new URL("weights.bin", base))
    .then((r) => (r.ok ? r.blob() : null))
    .catch(() => null);
}

// create()'s `integrity` option as a manifest pin ("sha256-" + base64), or null when it is true/false
function pinOf(integrity) {
  if (integrity === true || integrity === false || integrity === undefined) return null;
  if (typeof integrity !== "string" || !/^sha256-[A-Za-z0-9+/]{43}=$/.test(integrity)) {
    throw new Error(`integrity must be true, false or "sha256-<base64 of 32 bytes>" (what package-for-web prints), not ${JSON.stringify(integrity)}`);
  }
  return integrity;
}

export class InferenceSession {
  /**
   * Load the bundle directory at `url` in a new worker.
   * options: {backend: "wasm" (default) | "webgl" | "auto" (webgl when the bundle has a WebGL plan and the
   *           browser can run it, else wasm; session.backendReason says why; nodes without a shader run on
   *           wasm between the GPU's, session.placement says which ran where), wasmVariant: "auto" | "simd" | "relaxed",
   *           integrity: true (check every file against the manifest's sha256) | false | "sha256-<base64>" (also
   *           pin the manifest itself: the value `package-for-web` prints; a page that pins it runs only that bundle),
   *           numThreads: N (default: the cores the browser reports, at most 4),
   *           threadSpinMs: how long threads poll for a run's next step before they sleep (default
   *           DEFAULT_SPIN_MS; 0: sleep at once, which frees the cores between steps but pays a wake-up each),
   *           threadChunks: chunks per thread each split step is cut into, claimed by whichever thread is free
   *           (default DEFAULT_CHUNKS_PER_THREAD; more balances a busy core better, at a cost per chunk)}
   * Threads need a cross-origin isolated page (COOP/COEP headers, as `package-for-web serve` sends); without
   * it the session runs on one thread and says why in `session.threadsReason` and the console.
   */
  static async create(url, options = {}) {
    const t0 = performance.now();
    const { backend = "wasm", wasmVariant = "auto", integrity = true } = options;
    if (!["wasm", "webgl", "auto"].includes(backend)) {
      throw new Error(`backend '${backend}' is not one of "wasm", "webgl", "auto"`);
    }
    // the WebGL backend needs WebAssembly only for the nodes a mixed plan runs on wasm: the worker reports
    // variantError then; "auto" may fall back to wasm, so it checks
    let variant = null;
    let variantError;
    try {
      variant = chooseVariant(wasmVariant);
    } catch (err) {
      if (backend !== "webgl") throw err;
      variantError = err.message;
    }
    const chunks = options.threadChunks ?? DEFAULT_CHUNKS_PER_THREAD;
    if (!Number.isInteger(chunks) || chunks < 1 || chunks > 64) {
      throw new Error(`threadChunks must be an integer from 1 to 64, not ${options.threadChunks}`);
    }
    const { threads, reason } = chooseThreads(options.numThreads);
    const session = new InferenceSession(variant);
    try {
      // weights.bin starts downloading now, while the worker starts (about 30 ms here before its script runs)
      const base = bundleUrl(url);
      const prefetch = backend === "wasm" ? prefetchWeights(base) : null;
      prefetch?.then((blob) => session._worker.postMessage({ op: "weights", blob }));
      const info = await session._call({
        op: "load",
        prefetch: prefetch !== null,
        url: base,
        variant,
        variantError,
        integrity: integrity !== false,
        pin: pinOf(integrity),
        threads,
        spinMs: options.threadSpinMs ?? DEFAULT_SPIN_MS,
        chunksPerThread: chunks,
        backend,
      });
      session._init(info, performance.now() - t0);
      session.backend = info.backend ?? "wasm";
      session.backendReason = info.backendReason ?? "";
      // the wasm kernel build, when wasm runs (the whole model, or a mixed plan's wasm part)
      session.variant = session.backend === "webgl" ? (info.variant ? variant : null) : variant;
      session.threads = info.threads;
      session.threadsReason = info.threadsReason || reason;
      if (session.threadsReason) console.warn(`wasm-runtime: running on ${session.threads} thread(s): ${session.threadsReason}`);
    } catch (err) {
      session._fail(err);
      throw err;
    }
    return session;
  }

  constructor(variant) {
    // Use InferenceSession.create(); the constructor only wires the worker.
    this.backend = "wasm";
    this.variant = variant;
    this.threads = 1;
    this.threadsReason = "";
    this.crossOriginIsolated = globalThis.crossOriginIsolated === true;
    this._pending = new Map();
    this._nextId = 1;
    this._dead = null; // set to an Error once the worker is gone or the session released
    this._slots = []; // staging buffers: {buffer: SharedArrayBuffer, busy}
    this._unwatch = new AbortController();
    this._worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "wasm-runtime" });
    // A worker that ends (the browser ends a crashed one, a helper thread stops) sends no event; so the worker and
    // each helper thread hold a Web Lock for their lifetime, and the page asks for the same lock: the browser
    // grants it when its holder is gone (_watch). Web Locks exist in secure contexts (https, localhost).
    if (globalThis.navigator?.locks && globalThis.crypto?.randomUUID) {
      this._worker.postMessage({ op: "hold", lock: `wasm-runtime session ${crypto.randomUUID()}`, announce: true });
    }
    this._worker.onmessage = (event) => {
      const { id, error, result, held } = event.data;
      if (held) {
        this._watch(held);
        return;
      }
      const call = this._pending.get(id);
      if (!call) return;
      this._pending.delete(id);
      if (error !== undefined) call.reject(new Error(error));
      else call.resolve(result);
    };
    this._worker.onerror = (event) => {
      event.preventDefault();
      const detail = event.message || "the worker script failed to load or threw (see the console)";
      this._fail(gone(`wasm-runtime worker failed: ${detail} (${new URL("./worker.js", import.meta.url)})`));
    };
    this._worker.onmessageerror = () => this._fail(gone("wasm-runtime worker sent a message that could not be read"));
  }

  /** false once the session cannot run any more: its worker is gone (every call then rejects saying so), or
   * release() was called. */
  get ok() {
    return this._dead === null;
  }

  // `lock` is held by the worker or one of its helper threads until it ends
  _watch(lock) {
    navigator.locks
      .request(lock, { signal: this._unwatch.signal }, () =>
        this._fail(gone("wasm-runtime: the session's worker or one of its helper threads ended (the browser ended it, or it stopped)")),
      )
      .catch(() => {}); // aborted: the session ended first (release, or another failure)
  }

  _init(info, createMs) {
    this.model = info.model;
    this.files = info.files;
    this.inputMetadata = info.inputs.map(({ name, dtype, shape }) => ({ name, dtype, shape }));
    this.outputMetadata = info.outputs.map(({ name, dtype, shape }) => ({ name, dtype, shape }));
    this.inputNames = this.inputMetadata.map((m) => m.name);
    this.outputNames = this.outputMetadata.map((m) => m.name);
    this.timings = { ...info.timings, createMs };
    // which backend ran each node: {nodeName: "webgl" | "wasm"}
    this.placement = info.placement ?? {};
    for (const lock of info.helperLocks ?? []) this._watch(lock);
  }

  _fail(err) {
    if (this._dead) return;
    this._dead = err;
    this._unwatch.abort(); // before terminate(), which frees the locks
    this._worker.terminate();
    for (const call of this._pending.values()) call.reject(err);
    this._pending.clear();
  }

  // describe(err): the error to reject with when the message cannot be posted (a buffer that cannot be transferred)
  _call(message, transfer = [], describe = (err) => err) {
    if (this._dead) return Promise.reject(new Error(this._dead.message));
    return new Promise((resolve, reject) => {
      const id = this._nextId++;
      this._pending.set(id, { resolve, reject });
      try {
        this._worker.postMessage({ ...message, id }, transfer);
      } catch (err) {
        this._pending.delete(id);
        reject(describe(err));
      }
    });
  }

  _checkFeeds(feeds) {
    if (feeds === null || typeof feeds !== "object") {
      throw new TypeError(`run() takes an object {inputName: Tensor}; the model's inputs are ${fmtDims(this.inputNames)}`);
    }
    for (const name of Object.keys(feeds)) {
      if (!this.inputNames.includes(name)) {
        throw new Error(`unknown input '${name}'; the model's inputs are ${fmtDims(this.inputNames)}`);
      }
    }
    const out = {};
    const shapes = {};
    for (const { name, dtype, shape } of this.inputMetadata) {
      const t = feeds[name];
      if (t === undefined) throw new Error(`input '${name}' is missing; the model's inputs are ${fmtDims(this.inputNames)}`);
      if (!t || !Array.isArray(t.dims) || !ArrayBuffer.isView(t.data)) {
        throw new TypeError(`input '${name}' must be a Tensor`);
      }
      if (t.type !== dtype) throw new Error(`input '${name}' has dtype ${t.type}, the model expects ${dtype}`);
      // a string dim is symbolic (a dynamic-shape bundle): any size, as long as the inputs agree (the worker checks)
      if (t.dims.length !== shape.length || t.dims.some((d, i) => typeof shape[i] === "number" && d !== shape[i])) {
        throw new Error(`input '${name}' has shape ${fmtDims(t.dims)}, the model expects ${fmtDims(shape)}`);
      }
      const size = t.dims.reduce((a, b) => a * b, 1);
      if (t.data.buffer.detached === true) {
        throw new Error(
          `input '${name}': its ArrayBuffer is detached (it went to the worker with an earlier run(feeds, {transfer: true}), ` +
            "or was transferred elsewhere); pass a new array",
        );
      }
      if (!(t.data instanceof TYPED_ARRAYS[dtype]) || t.data.length !== size) {
        throw new Error(`input '${name}': data must be a ${TYPED_ARRAYS[dtype].name} of ${size} elements`);
      }
      out[name] = t.data;
      shapes[name] = t.dims;
    }
    return { feeds: out, shapes };
  }

  // The message that takes a run's inputs to the worker, made at the call: once run() returns, the caller may
  // refill or reuse its arrays. {message, transfer: buffers to transfer, done: called when the run's reply is in}.
  _pack({ feeds, shapes }, transfer) {
    if (transfer) {
      const out = {};
      const buffers = new Set(); // two inputs may share a buffer; postMessage refuses a buffer listed twice
      for (const [name, data] of Object.entries(feeds)) {
        out[name] = isShared(data.buffer) ? data.slice() : data; // a SharedArrayBuffer cannot be transferred
        buffers.add(out[name].buffer);
      }
      return { message: { feeds: out, shapes }, transfer: [...buffers], done: null };
    }
    const staged = this._stage(feeds);
    if (staged) return { message: { ...staged.message, shapes }, transfer: [], done: staged.done };
    // postMessage's structured clone copies each input now, except one on a SharedArrayBuffer, which it would
    // share: that one is copied here (and the copy transferred)
    const out = {};
    const copies = [];
    for (const [name, data] of Object.entries(feeds)) {
      out[name] = isShared(data.buffer) ? data.slice() : data;
      if (out[name] !== data) copies.push(out[name].buffer);
    }
    return { message: { feeds: out, shapes }, transfer: copies, done: null };
  }

  // In a cross-origin isolated page the inputs go through a SharedArrayBuffer that the session keeps: one copy
  // into memory the worker already has, instead of a structured clone that allocates and copies each input
  // twice per run (MobileNetV2's 588 KB input: 0.67 ms from postMessage to the worker's receipt, 0.3 ms of it
  // the thread hop that a 4 KB reply also takes; measured in Chromium on 2 cores). A buffer is reused once the
  // run that read it has replied; null when none is free (MAX_STAGING_SLOTS) or the page is not isolated.
  _stage(feeds) {
    if (!globalThis.crossOriginIsolated || typeof SharedArrayBuffer !== "function") return null;
    let slot = this._slots.findIndex((s) => !s.busy);
    if (slot < 0) {
      if (this._slots.length >= MAX_STAGING_SLOTS) return null;
      slot = this._slots.push({ buffer: null, busy: false }) - 1;
    }
    const s = this._slots[slot];
    const layout = {};
    let bytes = 0;
    for (const { name, dtype } of this.inputMetadata) {
      const data = feeds[name];
      layout[name] = [bytes, data.length, TYPED_ARRAYS[dtype].name];
      bytes += Math.ceil(data.byteLength / 8) * 8;
    }
    let staging; // sent with the first run that uses this buffer; the worker keeps it by slot
    if (!s.buffer || s.buffer.byteLength < bytes) staging = s.buffer = new SharedArrayBuffer(Math.max(bytes, 8));
    for (const [name, [offset]] of Object.entries(layout)) {
      const data = feeds[name];
      new Uint8Array(s.buffer, offset, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
    s.busy = true;
    return { message: { staged: layout, slot, staging }, done: () => (s.busy = false) };
  }

  /** run({name: Tensor}[, {profile: true, transfer: true}]) -> Promise<{name: Tensor}>. The inputs are read when
   * run() is called (copied, or with transfer their ArrayBuffers moved to the worker: the caller's arrays are
   * then detached). Runs of one session execute one at a time and resolve in call order. With profile (wasm
   * backend), session.profile then holds that run's steps in order: [{node, op, kernel, ms}] (ms of a split
   * step includes waiting for the helper threads' parts). */
  run(feeds, options = {}) {
    if (this._dead) return Promise.reject(new Error(this._dead.message));
    let packed;
    try {
      if (options.transfer !== undefined && typeof options.transfer !== "boolean") {
        throw new TypeError(`run(): options.transfer must be true or false, got ${options.transfer}`);
      }
      packed = this._pack(this._checkFeeds(feeds), options.transfer === true);
    } catch (err) {
      return Promise.reject(err);
    }
    const { message, transfer, done } = packed;
    const describe = (err) => {
      const names = Object.keys(message.feeds ?? {}).map((n) => `'${n}'`).join(", ");
      return new Error(
        `run(feeds, {transfer: true}): the ArrayBuffer of input ${names} cannot be transferred (${err.message}); ` +
          "a WebAssembly.Memory's buffer never can: pass a copy, or run without transfer",
      );
    };
    const reply = this._call({ op: "run", ...message, profile: !!options.profile }, transfer, options.transfer ? describe : undefined);
    if (done) reply.then(done, done);
    return reply.then(({ buffers, shapes, profile }) => {
      if (options.profile) this.profile = profile ?? null;
      const outputs = {};
      for (const { name, dtype } of this.outputMetadata) {
        outputs[name] = new Tensor(dtype, new TYPED_ARRAYS[dtype](buffers[name]), shapes[name]);
      }
      return outputs;
    });
  }

  /** Test hook: lose the WebGL context (WEBGL_lose_context), as a GPU reset would. */
  _loseContext() {
    return this._call({ op: "loseContext" });
  }

  /** Test hook: end the worker as a real failure would. how: "helper" (a helper thread stops in the middle of a
   * split step, which the worker then waits for forever), "throw" (an uncaught error in the worker). */
  _testKill(how) {
    return this._call({ op: "testKill", how });
  }

  /** Terminate the worker and free its memory; runs in flight and later calls reject with "session released".
   * On a session whose worker is gone it rejects with that error. */
  async release() {
    if (this._released) return;
    if (this._dead) throw new Error(this._dead.message);
    this._released = true;
    this._fail(new Error("session released"));
  }
}

export default { InferenceSession, Tensor };
