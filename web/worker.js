// The worker entry of the browser runtime: it only dispatches messages. One script serves three kinds of worker,
// told apart by their first work message:
//   - the session worker (index.js starts it; `load`, then `run`s): it loads one bundle and runs it, on wasm
//     (wasm.js), or on WebGL, wholly or as a mixed plan with a wasm part (gpu.js, webgl.js);
//   - a helper thread (`helper`, started by the session worker for a threaded bundle: threads.js helperMain):
//     it serves chunks of split steps on the shared memory until the session ends;
//   - the hasher (`sha256`, started by the session worker: integrity.js): it hashes one Blob and ends.
//
// Protocol (page -> session worker, and back):
//   {op: "hold", lock, announce}  -> {held: lock} once this worker holds the Web Lock `lock` (it holds it until
//       it ends; a helper thread is sent one too, and index.js watches them all: locks.js)
//   {op: "weights", blob}         weights.bin as a Blob the page started downloading at create() (or null if that
//       failed: the worker then fetches the file itself), for a `load` with `prefetch`
//   {id, op: "load", ...LoadRequest}  -> {id, result: LoadInfo} | {id, error}
//   {id, op: "run", ...RunRequest}    -> {id, result: RunResult} (its buffers transferred) | {id, error}
//   {id, op: "loseContext"}       -> {id, result: null} (tests: lose the WebGL context as a GPU reset would)
//   {id, op: "testKill", how}     (tests: end as a real failure would; testKill)
// Session worker -> helper: {op: "hold", lock}, then {op: "helper", ...HelperStart} -> {ready: true} | {error}.
// Session worker -> hasher: {op: "sha256", blob} -> {result: hex digest} | {error}; the hasher then closes.
// Messages are handled in the order they arrive and a run has no await, so runs execute and reply in call order.

import { sha256 } from "./integrity.js";
import { holdLock, lockHeld } from "./locks.js";
import { helperMain } from "./threads.js";
import { loadWasm } from "./wasm.js";

/**
 * @typedef {object} LoadRequest
 * @property {string} url the bundle directory, ending in "/"
 * @property {"wasm" | "webgl" | "auto"} backend
 * @property {string | null} variant the kernel build ("simd" | "relaxed"), null when WebAssembly SIMD is missing
 * @property {string} [variantError] why there is no variant (a mixed plan's wasm part then cannot load)
 * @property {boolean} integrity check every file's size and SHA-256 against the manifest
 * @property {string | null} pin "sha256-<base64>" the manifest itself must hash to, or null
 * @property {number} threads threads wanted (1: no helpers)
 * @property {number} spinMs how long threads poll for a run's next step before they sleep
 * @property {number} chunksPerThread chunks per thread each split step is cut into
 * @property {boolean} prefetch the page sends weights.bin in a `weights` message
 */
/**
 * @typedef {object} LoadInfo
 * @property {object} model the manifest's model section
 * @property {object} files the manifest's files
 * @property {{name: string, dtype: string, shape: Array<number | string>}[]} inputs symbolic dims by name
 * @property {{name: string, dtype: string, shape: Array<number | string>}[]} outputs
 * @property {number} threads threads the session runs on
 * @property {string} threadsReason why fewer than wanted, or ""
 * @property {string | null} variant the kernel build that runs (with "-mt" on threads), null on the GPU alone
 * @property {"wasm" | "webgl"} backend
 * @property {string} backendReason why "auto" runs on wasm, or what a mixed plan runs on wasm, or ""
 * @property {Object<string, "wasm" | "webgl">} placement the backend of each node
 * @property {object} timings milliseconds of the load's phases
 * @property {string[]} [helperLocks] the helper threads' Web Locks, for the page to watch
 */
/**
 * @typedef {object} RunRequest
 * @property {Object<string, ArrayBufferView>} [feeds] the inputs, copied or transferred
 * @property {Object<string, [number, number, string]>} [staged] or the inputs in a staging buffer:
 *   {name: [byte offset, length, typed array name]} (a cross-origin isolated page: unstage)
 * @property {number} [slot] which of the session's staging buffers
 * @property {SharedArrayBuffer} [staging] that buffer, sent with the first run that uses the slot
 * @property {Object<string, number[]>} shapes the inputs' dims (a dynamic bundle plans for them)
 * @property {boolean} profile time every step (wasm)
 */
/**
 * @typedef {object} RunResult
 * @property {Object<string, ArrayBuffer>} buffers each output's data
 * @property {Object<string, number[]>} shapes each output's dims
 * @property {{node: string, op: string, kernel: string, ms: number}[] | null} [profile]
 */
/**
 * @typedef {object} HelperStart
 * @property {WebAssembly.Module} module the shared-memory kernel build
 * @property {WebAssembly.Memory} memory the session's shared memory
 * @property {object[]} steps a fixed plan's split steps, in order (empty for a dynamic plan)
 * @property {number} threads
 * @property {number} control_offset the control block (threads.js)
 * @property {number} stack_top this helper's stack
 * @property {{offset: number, words: number, kernels: string[]} | null} dynamic a dynamic plan's step descriptor
 * @property {number} spinMs
 * @property {number} chunksPerThread
 */

// The loaded bundle: a WasmSession (wasm.js), WebGLSession or MixedSession (gpu.js). Each has run(feeds, shapes,
// profile), loseContext() and `pool` (its ThreadPool, or null).
let session = null;

// weights.bin as a Blob that the page started downloading at create() (index.js), while this worker was
// still starting; null if that download failed (this worker then fetches the file itself and says why)
let resolvePrefetched;
const prefetchedWeights = new Promise((resolve) => (resolvePrefetched = resolve));

self.onmessage = async ({ data: msg }) => {
  if (msg.op === "hold") {
    const held = holdLock(msg.lock);
    if (msg.announce) held.then((ok) => ok && self.postMessage({ held: msg.lock }));
    return;
  }
  if (msg.op === "helper") {
    // returns only if the helper stops: it serves split steps until its session ends
    lockHeld().then(() => helperMain(msg));
    return;
  }
  if (msg.op === "weights") {
    resolvePrefetched(msg.blob ?? null);
    return;
  }
  try {
    if (msg.op === "load") {
      self.postMessage({ id: msg.id, result: await load(msg) });
    } else if (msg.op === "run") {
      const result = run(msg);
      self.postMessage({ id: msg.id, result }, Object.values(result.buffers));
    } else if (msg.op === "sha256") {
      self.postMessage({ id: msg.id, result: await sha256(await msg.blob.arrayBuffer()) });
      self.close();
    } else if (msg.op === "loseContext") {
      if (!session) throw new Error("the session does not run on WebGL");
      session.loseContext();
      self.postMessage({ id: msg.id, result: null });
    } else if (msg.op === "testKill") {
      testKill(msg.how);
    } else {
      throw new Error(`unknown request '${msg.op}'`);
    }
  } catch (err) {
    self.postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) });
  }
};

/** @param {LoadRequest} msg @returns {Promise<LoadInfo>} */
async function load(msg) {
  const backend = msg.backend ?? "wasm";
  let backendReason = "";
  if (backend !== "wasm") {
    // the GPU code loads only for sessions that may use it
    const loaded = await (await import("./gpu.js")).loadGpu({ ...msg, backend });
    if (loaded.session) {
      session = loaded.session;
      return loaded.info;
    }
    backendReason = loaded.fallback;
  }
  const loaded = await loadWasm(msg, msg.prefetch ? prefetchedWeights : null);
  session = loaded.session;
  return { ...loaded.info, backend: "wasm", backendReason };
}

/** @param {RunRequest} msg @returns {RunResult} */
function run(msg) {
  const pool = session?.pool;
  pool?.startRun();
  try {
    const feeds = msg.staged ? unstage(msg) : msg.feeds;
    if (!session) throw new Error("no model loaded");
    return session.run(feeds, msg.shapes, msg.profile);
  } finally {
    pool?.endRun();
  }
}

// Inputs staged by the page in one of its SharedArrayBuffers (index.js _stage), each sent once with the first
// run that uses its slot and then reused: {name: [byte offset, length, typed array name]} -> {name: view}.
const stagings = [];
function unstage({ staged, slot = 0, staging: fresh }) {
  if (fresh) stagings[slot] = fresh;
  const buffer = stagings[slot];
  return Object.fromEntries(Object.entries(staged).map(([name, [offset, length, type]]) => [name, new globalThis[type](buffer, offset, length)]));
}

// Tests: end this worker as real failures do, to check that every call on the session settles.
function testKill(how) {
  if (how === "throw") {
    setTimeout(() => {
      throw new Error("test: an uncaught error in the worker");
    });
    return;
  }
  if (how !== "helper") throw new Error(`unknown testKill '${how}'`);
  if (!session?.pool) throw new Error("the session has no helper threads");
  session.pool.killHelper();
}
