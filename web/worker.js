// Module worker that loads and runs one bundle (the JS twin of wasm_runtime/host.py).
// Protocol: {id, op: "load", url, variant, integrity, backend} -> {id, result: info} | {id, error}
//           {id, op: "run", feeds: {name: TypedArray}}  -> {id, result: {name: ArrayBuffer}} | {id, error}
//           (or, in a cross-origin isolated page, {staged: {name: [offset, length, type]}, slot, staging?} for
//           inputs written into one of the session's SharedArrayBuffers: unstage())
//           {op: "hold", lock, announce} -> {held: lock} once this worker holds the Web Lock `lock` (it holds it
//           until it ends; a helper thread is sent one too, and index.js watches them all: see holdLock)
//           {id, op: "loseContext"} (tests: lose the WebGL context as a GPU reset would)
//           {id, op: "testKill", how} (tests: end as a real failure would; testKill)
// Messages are handled in the order they arrive and a run has no await, so runs execute and reply in call order.
// backend "webgl" runs the manifest's `webgl` plan (webgl.js) on an OffscreenCanvas; "auto" does when it can
// and otherwise loads the wasm plan, saying why in info.backendReason. A mixed plan (nodes without a shader)
// also loads its wasm part (a bundle of its own in webgl.wasm.dir) and runs the segments in order, moving
// tensors between texture and wasm memory at their boundaries (runMixed).

const FORMAT = "wasm-runtime-bundle";
const FORMAT_VERSION = 1;
const PAGE = 65536;
const ITEM_BYTES = { float32: 4, float64: 8, float16: 2, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8, bool: 1 };

let state = null; // {memory, inputs, outputs, calls} (wasm) or {gl, part?, segments?} (webgl) once loaded

// weights.bin as a Blob that the page started downloading at create() (index.js), while this worker was
// still starting; null if that download failed (this worker then fetches the file itself and says why)
let resolvePrefetched;
const prefetchedWeights = new Promise((resolve) => (resolvePrefetched = resolve));

self.onmessage = async ({ data: msg }) => {
  if (msg.op === "hold") {
    sessionLock = msg.lock;
    held = holdLock(msg.lock);
    if (msg.announce) held.then((ok) => ok && self.postMessage({ held: msg.lock }));
    return;
  }
  if (msg.op === "helper") {
    // returns only if the helper stops: it serves split steps until its session ends
    held.then(() => helperMain(msg));
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
      let result;
      const pool = state?.pool ?? state?.part?.pool; // a mixed plan's wasm part has the threads
      startRun(pool);
      try {
        const feeds = msg.staged ? unstage(msg) : msg.feeds;
        result = state?.segments ? runMixed(feeds) : state?.gl ? state.gl.run(feeds) : run(feeds, msg.shapes, msg.profile);
      } finally {
        endRun(pool);
      }
      self.postMessage({ id: msg.id, result }, Object.values(result.buffers));
    } else if (msg.op === "sha256") {
      self.postMessage({ id: msg.id, result: await sha256(await msg.blob.arrayBuffer()) });
      self.close();
    } else if (msg.op === "loseContext") {
      if (!state?.gl) throw new Error("the session does not run on WebGL");
      state.gl.loseContext();
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

// Inputs staged by the page in one of its SharedArrayBuffers (index.js _stage), each sent once with the first
// run that uses its slot and then reused: {name: [byte offset, length, typed array name]} -> {name: view}.
const stagings = [];
function unstage({ staged, slot = 0, staging: fresh }) {
  if (fresh) stagings[slot] = fresh;
  const buffer = stagings[slot];
  return Object.fromEntries(Object.entries(staged).map(([name, [offset, length, type]]) => [name, new globalThis[type](buffer, offset, length)]));
}

// ---- the end of a worker --------------------------------------------------------------------------------
// A worker that ends without an error (the browser ends it, a helper thread stops) tells nobody. So each holds a
// Web Lock from its start until it ends, and the page asks for the same lock (index.js _watch): the browser
// grants it when the holder is gone, even while this worker waits on a helper thread that will never answer.
let sessionLock = null; // this session worker's lock; its helpers' are named after it
let held = Promise.resolve(false); // this worker's lock is held (true), or cannot be (no Web Locks: false)

function holdLock(name) {
  if (!self.navigator?.locks) return Promise.resolve(false);
  return new Promise((granted) => {
    navigator.locks.request(name, () => {
      granted(true);
      return new Promise(() => {}); // held until this worker ends
    }).catch(() => granted(false));
  });
}

const helperLock = (t) => (sessionLock ? `${sessionLock} helper ${t}` : null);

// A claim word that only a helper takes (the session worker does not claim it): its chunk ends the helper
// (testKill). No split step has index 0x7fff (prepare) and NO_CHUNKS has no chunk, so no run publishes it.
const KILL_CHUNK = (0x7fff << 16) | (1 << 8);

// Tests: end this worker as real failures do, to check that every call on the session settles.
function testKill(how) {
  if (how === "throw") {
    setTimeout(() => {
      throw new Error("test: an uncaught error in the worker");
    });
    return;
  }
  if (how !== "helper") throw new Error(`unknown testKill '${how}'`);
  const pool = state?.pool ?? state?.part?.pool;
  if (!pool) throw new Error("the session has no helper threads");
  // a helper claims the chunk and stops; this worker waits for it as for any chunk of a split step, forever
  const { ctrl } = pool;
  startRun(pool);
  Atomics.store(ctrl, 2, 0);
  Atomics.store(ctrl, CLAIM, KILL_CHUNK);
  Atomics.add(ctrl, 0, 1);
  Atomics.notify(ctrl, 0);
  while (Atomics.load(ctrl, 2) === 0) Atomics.wait(ctrl, 2, 0);
}

const ms = (t0) => Math.round((performance.now() - t0) * 100) / 100;

// `expected` ({bytes, sha256}): the manifest of a wasm part is checked against its parent's hash of it;
// `pin` ("sha256-<base64>", create()'s integrity option): the page pins the manifest itself
async function fetchManifest(url, expected = null, pin = null) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`failed to load model manifest ${url}: ${err.message} (network error — is the server running?)`);
  }
  if (!response.ok) {
    throw new Error(
      `failed to load model manifest ${url}: HTTP ${response.status} ${response.statusText} — is the bundle URL right?`,
    );
  }
  let text;
  if (expected || pin) {
    const bytes = await response.arrayBuffer();
    if (expected) await checkIntegrity(url.split("/").slice(-2).join("/"), url, expected, bytes);
    if (pin) {
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
      const got = `sha256-${btoa(String.fromCharCode(...digest))}`;
      if (got !== pin) {
        throw new Error(
          `${url}: manifest.json does not match the integrity pin (pinned ${pin}, got ${got}); the bundle was changed ` +
            "or re-packaged: pin the new manifest or deploy the one pinned",
        );
      }
    }
    text = new TextDecoder().decode(bytes);
  } else {
    text = await response.text();
  }
  let m;
  try {
    m = JSON.parse(text);
  } catch (err) {
    throw new Error(`model manifest ${url} is not valid JSON (${err.message}); the bundle is corrupt or the URL is wrong`);
  }
  if (!m || typeof m !== "object" || m.format !== FORMAT) {
    throw new Error(`${url} is not a ${FORMAT} manifest (format: ${JSON.stringify(m?.format)})`);
  }
  if (m.version !== FORMAT_VERSION) {
    throw new Error(
      `bundle format version ${m.version} is not supported by this runtime (expects ${FORMAT_VERSION}); ` +
        `re-package the model with this version of package-for-web (${url})`,
    );
  }
  return m;
}

function checkManifest(m, url) {
  const bad = (what) => new Error(`model manifest ${url}: ${what}; re-package the model`);
  const isInt = (v) => Number.isSafeInteger(v) && v >= 0;
  const mem = m.memory ?? {};
  const dynamic = m.dynamic !== undefined;
  const memoryKeys = ["pages", "weights_offset", "weights_file_bytes", "weights_bytes", "arena_offset"];
  for (const key of dynamic ? memoryKeys : [...memoryKeys, "arena_bytes"]) {
    if (!isInt(mem[key])) throw bad(`memory.${key} must be a non-negative integer (got ${JSON.stringify(mem[key])})`);
  }
  const size = mem.pages * PAGE;
  if (mem.pages < 1 || mem.pages > 65536) throw bad(`memory.pages ${mem.pages} is out of range (1..65536)`);
  if (mem.weights_offset + mem.weights_bytes > size || (!dynamic && mem.arena_offset + mem.arena_bytes > size)) {
    throw bad(`weights or arena end past the ${mem.pages}-page memory`);
  }
  if (mem.weights_file_bytes > mem.weights_bytes || mem.weights_offset + mem.weights_bytes > mem.arena_offset) {
    throw bad("the weights region overlaps the arena (memory.weights_offset/weights_bytes/arena_offset)");
  }
  // the same rules, in the same words, as wasm_runtime/manifest_check.py (tests/data/bad_manifests.json)
  const plain = (name) => typeof name === "string" && !["", ".", ".."].includes(name) && !/[/\\]/.test(name);
  if (!m.files || typeof m.files !== "object" || !Object.keys(m.files).length) throw bad("files must be an object naming the bundle's files");
  for (const [name, meta] of Object.entries(m.files)) {
    if (!plain(name)) throw bad(`file name '${name}' points outside the bundle`);
    if (!isInt(meta?.bytes) || typeof meta?.sha256 !== "string") throw bad(`files['${name}'] needs bytes and sha256`);
  }
  if (!m.files["weights.bin"]) throw bad("files has no entry for weights.bin");
  if (m.files["weights.bin"].bytes !== mem.weights_file_bytes) throw bad("weights.bin size disagrees with memory.weights_file_bytes");
  const modules = m.kernels?.modules;
  if (!modules || typeof modules !== "object" || !Object.keys(modules).length) throw bad("kernels.modules must name the kernel builds");
  for (const [variant, name] of Object.entries(modules)) {
    if (!plain(name) || !(name in m.files)) throw bad(`kernel module '${variant}' ('${name}') is not a file of the bundle`);
  }
  if (!Array.isArray(m.init) || !Array.isArray(m.steps)) throw bad("init and steps must be lists");
  for (const key of ["steps", "init"]) {
    if (m.stats && key in m.stats && m.stats[key] !== m[key].length) {
      throw bad(`${key} holds ${m[key].length} entries, the packager wrote ${m.stats[key]}`);
    }
  }
  if (dynamic) {
    const d = m.dynamic;
    const isFormula = (f) => Number.isSafeInteger(f) || (Array.isArray(f) && f.every((t) => Array.isArray(t) && t.length === d.symbols.length + 1 && t.every(Number.isSafeInteger)));
    if (!Array.isArray(d.symbols) || !d.symbols.every((s) => Array.isArray(d.bind?.[s]))) throw bad("dynamic.symbols/bind are malformed");
    if (!Array.isArray(d.arena) || !d.arena.every((a) => isFormula(a.size) && Number.isInteger(a.first) && Number.isInteger(a.last))) {
      throw bad("dynamic.arena is malformed");
    }
    for (const e of [...(m.inputs ?? []), ...(m.outputs ?? [])]) {
      if (!(e.dtype in ITEM_BYTES) || !Array.isArray(e.shape) || !e.shape.every(isFormula)) throw bad(`tensor '${e.name}' is malformed`);
      if (!(Number.isInteger(e.arena) && e.arena < d.arena.length) && !isInt(e.offset)) throw bad(`tensor '${e.name}' has no storage`);
    }
    return;
  }
  for (const [kind, list] of [["inputs", m.inputs], ["outputs", m.outputs]]) {
    if (!Array.isArray(list)) throw bad(`${kind} must be a list`);
    for (const e of list) {
      const n = Array.isArray(e.shape) && e.shape.every(isInt) ? e.shape.reduce((a, b) => a * b, 1) : NaN;
      if (!(e.dtype in ITEM_BYTES)) throw bad(`${kind} '${e.name}' has unsupported dtype ${e.dtype}`);
      if (!isInt(e.offset) || e.bytes !== n * ITEM_BYTES[e.dtype] || e.offset + e.bytes > size) {
        throw bad(`${kind} '${e.name}' has an invalid shape, offset or size`);
      }
    }
  }
}

// Fetch one bundle file. Integrity is checked with crypto.subtle on the downloaded bytes rather than with
// fetch's Subresource Integrity: the same guarantee, measured ~20x faster in Chromium (SRI took ~400 ms to
// hash a 14 MB weights file, crypto.subtle 20 ms), and the error can say exactly what is wrong.
async function fetchFile(base, name) {
  const url = new URL(name, base).href;
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`failed to fetch ${name} (${url}): ${err.message} (network error — is the server running?)`);
  }
  if (!response.ok) throw new Error(`failed to fetch ${name} (${url}): HTTP ${response.status} ${response.statusText}`);
  return response;
}

async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

function checkIntegrity(name, url, meta, bytes) {
  return verifyFile(name, url, meta, bytes.byteLength, () => sha256(bytes));
}

// hash(): a promise of the file's sha256
async function verifyFile(name, url, meta, size, hash) {
  if (!/^[0-9a-f]{64}$/.test(meta?.sha256 ?? "")) {
    throw new Error(`manifest.files has no sha256 for ${name}, so it cannot be checked; re-package the model (or pass integrity: false)`);
  }
  const sha = await hash();
  if (size !== meta.bytes || sha !== meta.sha256) {
    throw new Error(
      `${name} (${url}) failed its integrity check: the manifest expects ${meta.bytes} bytes with sha256 ` +
        `${meta.sha256}, the server sent ${size} bytes with sha256 ${sha}. The file is corrupt ` +
        `or stale (from another packaging run): re-deploy the whole bundle directory together`,
    );
  }
}

// SHA-256 of a large Blob in a short-lived worker (`hasher`, running this script), so that hashing (about
// 70 ms for ResNet-18's 47 MB here) runs on another core while this thread copies the weights in and runs
// the init steps: crypto.subtle.digest held this thread for all of it. Hashes here if that worker fails.
function hashElsewhere(hasher, blob) {
  return new Promise((resolve, reject) => {
    hasher.onmessage = ({ data }) => (data.error ? reject(new Error(data.error)) : resolve(data.result));
    hasher.onerror = (e) => {
      e.preventDefault();
      reject(new Error(e.message));
    };
    hasher.postMessage({ op: "sha256", blob });
  }).catch(async () => sha256(await blob.arrayBuffer()));
}

// Copy a Blob into `dst` (a view of wasm memory) chunk by chunk: measured 74 vs 112 ms for 14 MB in
// Chromium here against blob.arrayBuffer() and a copy (no second 14 MB buffer to allocate and fault in).
async function readInto(blob, dst) {
  const reader = blob.stream().getReader();
  let at = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    dst.set(value, at);
    at += value.byteLength;
  }
  if (at !== dst.byteLength) throw new Error(`read ${at} of ${dst.byteLength} bytes`);
}

async function compileModule(response) {
  const type = response.headers.get("Content-Type") ?? "";
  const isWasm = type.split(";")[0].trim().toLowerCase() === "application/wasm";
  if (isWasm && WebAssembly.compileStreaming) return WebAssembly.compileStreaming(response);
  if (!isWasm) {
    console.warn(`${response.url} is served as '${type}', not application/wasm; compiling without streaming (fix the server's MIME types)`);
  }
  return WebAssembly.compile(await response.arrayBuffer());
}

async function load(msg) {
  const backend = msg.backend ?? "wasm";
  if (backend === "wasm") return { ...(await loadWasmState(msg)), backend: "wasm", backendReason: "" };
  const t0 = performance.now();
  const manifestUrl = new URL("manifest.json", msg.url).href;
  const m = await fetchManifest(manifestUrl, null, msg.pin);
  checkManifest(m, manifestUrl);
  let reason;
  if (!m.webgl) {
    reason = `the bundle has no WebGL plan (package it with --backend webgl or --backend all) (${manifestUrl})`;
  } else if (m.webgl.unsupported && !m.webgl.steps) {
    const nodes = m.webgl.unsupported.map((u) => `'${u.node}' (${u.op}: ${u.reason})`).join(", ");
    reason = `the bundle's WebGL plan is missing because these nodes have no shader: ${nodes}`;
  } else {
    const gl = await import("./webgl.js");
    reason = gl.webglUnavailableReason();
    if (!reason) {
      try {
        return await loadWebGL(m, msg, gl, t0);
      } catch (err) {
        if (backend === "webgl") throw err;
        reason = err.message;
      }
    }
  }
  if (backend === "webgl") throw new Error(`backend "webgl" cannot run this model: ${reason}`);
  console.warn(`wasm-runtime: backend "auto" runs on wasm: ${reason}`);
  return { ...(await loadWasmState(msg)), backend: "wasm", backendReason: reason };
}

async function loadWasmState(msg) {
  const { info, wasmState } = await loadWasm(msg);
  state = wasmState;
  return info;
}

async function loadWebGL(m, msg, gl, t0) {
  const { url: base, integrity } = msg;
  const section = m.webgl;
  if (section.version !== 1) throw new Error(`the bundle's WebGL plan has version ${section.version}, this runtime reads 1; re-package the model`);
  const placement = section.placement ?? {};
  // a mixed plan: the nodes without a shader run on the wasm part, a bundle of its own
  const onWasm = Object.keys(placement).filter((n) => placement[n] === "wasm");
  const why = (section.unsupported ?? []).map((u) => `'${u.node}' (${u.reason})`).join(", ");
  const summary = `${onWasm.length} of ${Object.keys(placement).length} nodes run on wasm` + (why ? `, those without a shader: ${why}` : "");
  if (section.wasm && !msg.variant) throw new Error(`${summary}; but wasm cannot run here: ${msg.variantError ?? "no kernel build chosen"}`);
  // the weights download (and its integrity check) while the GPU compiles and warms every program up
  const name = "webgl-weights.bin";
  let fetchMs = null;
  const weights = (async () => {
    const response = await fetchFile(base, name);
    const bytes = await response.arrayBuffer();
    if (integrity) await checkIntegrity(name, response.url, m.files?.[name], bytes);
    fetchMs = ms(t0);
    return bytes;
  })();
  weights.catch(() => {}); // awaited (and rethrown) by init(); no unhandled rejection meanwhile
  const plan = new gl.WebGLPlan(section);
  let timings;
  try {
    timings = await plan.init(weights);
  } catch (err) {
    try {
      plan.loseContext(); // frees its textures now, not at garbage collection
    } catch {
      // no WEBGL_lose_context: the context goes with the plan
    }
    throw err;
  }
  const info = {
    model: m.model ?? {},
    files: m.files,
    inputs: m.inputs.map(({ name, dtype, shape }) => ({ name, dtype, shape })),
    outputs: m.outputs.map(({ name, dtype, shape }) => ({ name, dtype, shape })),
    threads: 1,
    threadsReason: "",
    variant: null,
    backend: "webgl",
    backendReason: "",
    placement,
    timings: { fetchMs, ...timings },
  };
  if (!section.wasm) {
    state = { gl: plan };
    return info;
  }
  let part;
  try {
    part = await loadWasm({ ...msg, url: new URL(`${section.wasm.dir}/`, base).href, expected: integrity ? section.wasm.manifest : null, pin: null, prefetch: false });
  } catch (err) {
    try {
      plan.loseContext(); // frees its textures now, not at garbage collection
    } catch {
      // no WEBGL_lose_context: the context goes with the plan
    }
    throw new Error(`the wasm part of the mixed plan failed to load: ${err.message}`);
  }
  const modelInputs = new Set(m.inputs.map((e) => e.name));
  const modelOutputs = new Set(m.outputs.map((e) => e.name));
  const p = part.wasmState;
  state = {
    gl: plan,
    part: p,
    segments: section.segments,
    feedInputs: p.inputs.filter((e) => modelInputs.has(e.name)),
    wasmOutputs: p.outputs.filter((e) => modelOutputs.has(e.name)),
  };
  console.info(`wasm-runtime: backend "${msg.backend}" runs a mixed plan: ${summary}`);
  return {
    ...info,
    threads: part.info.threads,
    threadsReason: part.info.threadsReason,
    helperLocks: part.info.helperLocks,
    variant: part.info.variant,
    backendReason: summary,
    timings: { ...info.timings, wasmPart: part.info.timings },
  };
}

// One run of a mixed plan: the graph inputs go to both sides, then each segment runs after the tensors it
// needs from the other backend are moved in (readPixels into wasm memory, or wasm memory into a texture).
function runMixed(feeds) {
  const { gl, part, segments } = state;
  gl.check("run()");
  gl.uploadInputs(feeds);
  writeInputs(part.memory, state.feedInputs, feeds);
  for (const seg of segments) {
    const [from, to] = seg.steps;
    if (seg.backend === "webgl") {
      for (const t of seg.transfers) gl.uploadFrom(t, new Float32Array(part.memory.buffer, t.offset, t.elements));
      gl.execute(from, to);
    } else {
      for (const t of seg.transfers) {
        new Float32Array(part.memory.buffer, t.offset, t.elements).set(gl.readTexture(t).subarray(0, t.elements));
      }
      callAll(part.calls.slice(from, to), null, part.memory);
    }
  }
  const { buffers, shapes } = gl.readOutputs();
  for (const e of state.wasmOutputs) {
    buffers[e.name] = new Uint8Array(part.memory.buffer, e.offset, e.bytes).slice().buffer;
    shapes[e.name] = e.shape;
  }
  gl.check("run()");
  return { buffers, shapes };
}

// Returns {info, wasmState}; the caller installs wasmState as the worker's state.
async function loadWasm({ url: base, variant: baseVariant, integrity, pin = null, threads: wanted = 1, expected = null, spinMs = 0, chunksPerThread = 1, prefetch = false }) {
  const t0 = performance.now();
  const manifestUrl = new URL("manifest.json", base).href;
  // weights.bin downloads alongside the manifest (its name does not depend on it): the page's prefetch, or a
  // fetch from here; awaited only once the manifest is good, so a bad bundle reports its manifest's error
  const weightsUrl = new URL("weights.bin", base).href;
  const weightsBlob = (prefetch ? prefetchedWeights : Promise.resolve(null)).then(
    (blob) =>
      blob ??
      fetchFile(base, "weights.bin").then(async (r) => {
        try {
          // through a Blob: measured 1.4-1.7x faster than response.arrayBuffer() for 14 MB in Chromium here
          // (Chromium 156, /tmp A/B: 90 vs 125-160 ms), the body is not handed over in small chunks
          return await r.blob();
        } catch (err) {
          throw new Error(`failed to download weights.bin (${r.url}): ${err.message}`);
        }
      }),
  );
  weightsBlob.catch(() => {}); // awaited below; this only keeps an early rejection from being reported unhandled
  // the integrity hasher starts now too, so that it is up by the time the weights are in
  const hasher = integrity ? new Worker(new URL(import.meta.url), { type: "module", name: "wasm-runtime integrity" }) : null;
  let m;
  try {
    m = await fetchManifest(manifestUrl, expected, expected ? null : pin);
    checkManifest(m, manifestUrl);
  } catch (err) {
    hasher?.terminate();
    throw err;
  }
  // threads: the shared-memory build of the kernels, if the bundle has one and the page allows it
  let threads = Math.min(wanted, m.threads?.max ?? 1);
  let threadsReason = wanted > threads ? `the bundle supports at most ${threads} thread(s)` : "";
  if (m.dynamic && threads > 1 && !Number.isInteger(m.threads?.descriptor_offset)) {
    threads = 1;
    threadsReason = "the bundle has no step descriptor for threads (re-package it with this version)";
  }
  if (threads > 1 && !m.kernels?.modules?.[`${baseVariant}-mt`]) {
    threadsReason = "the bundle has no shared-memory kernel build (re-package it with this version)";
    threads = 1;
  }
  const variant = threads > 1 ? `${baseVariant}-mt` : baseVariant;
  const moduleName = m.kernels?.modules?.[variant];
  if (!moduleName) {
    hasher?.terminate();
    throw new Error(`bundle ${base} has no '${variant}' kernel build (has: ${Object.keys(m.kernels?.modules ?? {}).join(", ")})`);
  }

  // Helper workers start now: loading their script overlaps the downloads (they get the module and memory later).
  const spawned = threads > 1 ? spawnHelpers(threads) : [];
  if (hasher) spawned.push(hasher); // terminated with the helpers on failure; it closes itself once it has hashed
  try {
    // weights.bin and the kernel module download in parallel; the module compiles while it streams in. The
    // weights' integrity hash (crypto.subtle, off this thread) runs while they are copied in and the init steps
    // run: create() rejects on a mismatch before the session exists, so no run() ever sees unchecked weights.
    let compileMs = 0;
    const weightsMeta = m.files["weights.bin"];
    const moduleMeta = m.files[moduleName];
    const { pages, weights_offset, weights_file_bytes } = m.memory;
    let memory;
    try {
      // a dynamic-shape bundle places its arena per input shape and grows the memory when a shape needs it
      memory = new WebAssembly.Memory({ initial: pages, maximum: m.dynamic ? 65535 : pages, shared: threads > 1 });
    } catch (err) {
      throw new Error(`could not allocate ${(pages * PAGE / 2 ** 20).toFixed(1)} MiB of WebAssembly memory: ${err.message}`);
    }
    const [weightsCheck, module] = await Promise.all([
      weightsBlob.then(async (blob) => {
        const check = integrity ? verifyFile("weights.bin", weightsUrl, weightsMeta, blob.size, () => hashElsewhere(hasher, blob)) : null;
        check?.catch(() => {}); // awaited below; this only keeps an early rejection from being reported unhandled
        if (blob.size !== weights_file_bytes) {
          await check; // a corrupt or stale file: its integrity error says more
          throw new Error(`weights.bin has ${blob.size} bytes, the manifest says ${weights_file_bytes}; re-deploy the bundle`);
        }
        try {
          await readInto(blob, new Uint8Array(memory.buffer, weights_offset, blob.size));
        } catch (err) {
          throw new Error(`failed to read weights.bin (${weightsUrl}): ${err.message}`);
        }
        return check;
      }),
      fetchFile(base, moduleName).then(async (r) => {
        const check = integrity
          ? r.clone().arrayBuffer().then((bytes) => checkIntegrity(moduleName, r.url, moduleMeta, bytes))
          : null;
        const tc = performance.now();
        let compiled;
        try {
          compiled = await compileModule(r);
        } catch (err) {
          await check; // a corrupt file explains a compile error best
          throw new Error(`failed to compile ${moduleName} (${r.url}): ${err.message}`);
        } finally {
          compileMs = ms(tc);
        }
        await check;
        return compiled;
      }),
    ]);
    const fetchMs = ms(t0);

    const ti = performance.now();
    let instance;
    try {
      instance = await WebAssembly.instantiate(module, { env: { memory } });
    } catch (err) {
      throw new Error(`could not instantiate ${moduleName}: ${err.message}`);
    }
    const exports = instance.exports;
    const heapBase = exports.__heap_base?.value;
    if (Number.isInteger(heapBase) && m.memory.weights_offset < heapBase) {
      throw new Error(
        `model manifest ${manifestUrl}: memory.weights_offset ${m.memory.weights_offset} overlaps the kernel module's ` +
          `stack and data (up to ${heapBase}); re-package the model`,
      );
    }
    callAll(prepare(m.init, exports, "init"));
    await weightsCheck;
    const pool = threads > 1 ? await startHelpers(spawned, module, memory, m, threads, { spinMs, chunksPerThread }) : null;
    let wasmState;
    if (m.dynamic) {
      wasmState = { memory, exports, manifest: m, plans: new Map(), pool, kernelIndex: new Map(m.kernels.exports.map((k, i) => [k, i])) };
    } else {
      wasmState = { memory, inputs: m.inputs, outputs: m.outputs, calls: prepare(m.steps, exports, "steps", pool), pool };
    }
    const steps = m.dynamic?.symbols.map((s) => m.dynamic.domain?.[s]?.step ?? 1);
    const shown = (e) => ({ name: e.name, dtype: e.dtype, shape: m.dynamic ? e.shape.map((f) => showFormula(f, m.dynamic.symbols, steps)) : e.shape });
    const info = {
      model: m.model ?? {},
      files: m.files,
      inputs: m.inputs.map(shown),
      outputs: m.outputs.map(shown),
      threads,
      threadsReason,
      variant,
      placement: Object.fromEntries(m.steps.filter((s) => s.node).map((s) => [s.node, "wasm"])),
      timings: { fetchMs, compileMs, initMs: ms(ti) },
      // the page watches these from now on (index.js _watch)
      helperLocks: pool ? pool.workers.map((_, i) => helperLock(i + 1)).filter(Boolean) : [],
    };
    return { info, wasmState };
  } catch (err) {
    for (const w of spawned) w.terminate();
    throw err;
  }
}

// ---- threads ------------------------------------------------------------------------------------------
// A split step (see web/README.md) is cut into `chunksPerThread` chunks per thread, which the session's worker
// and the helper workers (sharing the memory, running the same module on stacks of their own) claim one at a
// time: a thread that a busy core delays leaves its chunks to the others instead of holding the step up.
// Control block int32 words: [0] generation (bumped to start a step), [1] the claim word: split step index << 16
// | chunk count << 8 | next chunk, [2] chunks done, [3] error flag, [4] a run is in progress. Everything a claim
// needs is in that one word, so a helper that wakes late can only claim (compare-exchange) chunks of the step
// running now.
const CLAIM = 1;
const RUNNING = 4;
const CONTROL_WORDS = 5;
// The claim word published at a run's start and end: no chunks (count 0), an index no split step has.
const NO_CHUNKS = 0x7fff << 16;
// Helpers poll for steps only while a run is in progress; between runs for this long at most, then sleep.
const IDLE_SPIN_MS = 0.1;

function chunks(units, align, threads) {
  // same cut as chunks() in wasm_runtime/host.py
  let size = Math.ceil(units / threads);
  size = Math.ceil(size / align) * align;
  const out = [];
  for (let u0 = 0; u0 < units; u0 += size) out.push([u0, Math.min(units, u0 + size)]);
  return out;
}

// The chunks a split step runs as, each [u0, u1); at most 255 (the claim word's field).
function stepChunks(step, threads, perThread) {
  return chunks(step.split.units, step.split.align, Math.min(255, threads * perThread));
}

function chunkArgs(step, [u0, u1]) {
  const args = step.args.map((a) => (typeof a === "string" ? Number(a) : a));
  args[step.split.count] = u1 - u0;
  for (const [i, delta] of step.split.deltas) args[i] += u0 * delta;
  return args;
}

function splitSteps(steps) {
  return steps.filter((s) => s.split);
}

// Claim the next chunk of the published step: the claim word, or -1 when none is left.
function claim(ctrl) {
  for (;;) {
    const w = Atomics.load(ctrl, CLAIM);
    if ((w & 255) >= ((w >> 8) & 255)) return -1;
    if (Atomics.compareExchange(ctrl, CLAIM, w, w + 1) === w) return w;
  }
}

function spawnHelpers(threads) {
  const workers = [];
  for (let t = 1; t < threads; t++) {
    const w = new Worker(new URL(import.meta.url), { type: "module", name: `wasm-runtime helper ${t}` });
    // the lock is taken while the files download; the helper serves steps only once it holds it
    if (helperLock(t)) w.postMessage({ op: "hold", lock: helperLock(t) });
    workers.push(w);
  }
  return workers;
}

async function startHelpers(spawned, module, memory, m, threads, { spinMs = 0, chunksPerThread = 1 } = {}) {
  const { control_offset, stacks_offset, stack_bytes } = m.threads;
  const ctrl = new Int32Array(memory.buffer, control_offset, CONTROL_WORDS);
  ctrl.fill(0);
  // a dynamic plan's arguments change with the input shape: helpers then read each split step from the
  // descriptor block instead of binding the steps once here
  const dynamic = m.dynamic ? { offset: m.threads.descriptor_offset, words: m.threads.descriptor_bytes / 8, kernels: m.kernels.exports } : null;
  const split = dynamic ? [] : splitSteps(m.steps);
  const helpers = [];
  for (let t = 1; t < threads; t++) {
    const w = spawned[t - 1];
    helpers.push(
      new Promise((resolve, reject) => {
        w.onmessage = ({ data }) => (data.error ? reject(new Error(`helper thread ${t}: ${data.error}`)) : resolve(w));
        w.onerror = (e) => reject(new Error(`helper thread ${t} failed to start: ${e.message}`));
        w.postMessage({ op: "helper", module, memory, steps: split, threads, control_offset, dynamic, spinMs,
                        chunksPerThread, stack_top: stacks_offset + t * stack_bytes });
      }),
    );
  }
  const descriptor = dynamic ? new Float64Array(memory.buffer, dynamic.offset, dynamic.words) : null;
  const backoff = { level: 0, skip: 0 };
  return { workers: await Promise.all(helpers), ctrl, threads, chunksPerThread, descriptor, spinMs, backoff };
}

// Descriptor of a split step: [kernel index, arg count, units, count arg, align, delta count, (arg, delta)...,
// args...]; floats and i32 values are both exact in a float64.
function writeDescriptor(d, k, step) {
  const { split, args } = step;
  let p = 0;
  d[p++] = k; d[p++] = args.length; d[p++] = split.units; d[p++] = split.count; d[p++] = split.align;
  d[p++] = split.deltas.length;
  for (const [i, delta] of split.deltas) { d[p++] = i; d[p++] = delta; }
  for (const a of args) d[p++] = typeof a === "string" ? Number(a) : a;
  if (p > d.length) throw new Error(`step ${step.kernel} does not fit the thread descriptor; re-package the model`);
}

function readDescriptor(d, kernels) {
  let p = 0;
  const kernel = kernels[d[p++]];
  const nargs = d[p++];
  const split = { units: d[p++], count: d[p++], align: d[p++], deltas: [] };
  const ndeltas = d[p++];
  for (let i = 0; i < ndeltas; i++) split.deltas.push([d[p++], d[p++]]);
  const args = Array.from(d.subarray(p, p + nargs));
  return { kernel, split, args };
}

// Poll ctrl[index] while it equals `value`, for at most spinMs; true if it changed. A poll that times out
// (the other thread was descheduled: the cores are busy with other work) makes the next polls of this wait
// site skip, 1, 3, 7... up to 63 times, and each poll that succeeds undoes one step of that: on a loaded
// machine the threads fall back to sleeping instead of fighting other processes for the cores.
function spinWhile(ctrl, index, value, spinMs, backoff = null) {
  if (spinMs <= 0) return false;
  if (backoff?.skip > 0) {
    backoff.skip--;
    return false;
  }
  const until = performance.now() + spinMs;
  for (;;) {
    for (let k = 0; k < 64; k++) {
      if (Atomics.load(ctrl, index) !== value) {
        if (backoff) backoff.level = Math.max(0, backoff.level - 1);
        return true;
      }
    }
    if (performance.now() > until) {
      if (!backoff) return false;
      backoff.level = Math.min(6, backoff.level + 1);
      backoff.skip = (1 << backoff.level) - 1;
      return false;
    }
  }
}

function helperMain({ module, memory, steps, threads, control_offset, stack_top, dynamic, spinMs = 0, chunksPerThread = 1 }) {
  let calls;
  let instance;
  try {
    instance = new WebAssembly.Instance(module, { env: { memory } });
    instance.exports.__stack_pointer.value = stack_top;
    calls = steps.map((step) => {
      const fn = instance.exports[step.kernel];
      return stepChunks(step, threads, chunksPerThread).map((c) => fn.bind(null, ...chunkArgs(step, c)));
    });
  } catch (err) {
    self.postMessage({ error: err.message });
    return;
  }
  // read the generation BEFORE saying ready: once the session hears "ready" it may start a step at once,
  // and a helper that read the bumped value as its baseline would sleep through that step (a deadlock)
  const ctrl = new Int32Array(memory.buffer, control_offset, CONTROL_WORDS);
  let generation = Atomics.load(ctrl, 0);
  const backoff = { level: 0, skip: 0 };
  self.postMessage({ ready: true });
  // a helper that leaves this loop (an error outside a kernel, or testKill) no longer serves its chunks: it ends,
  // and with it its lock, which tells the page
  try {
    serve: for (;;) {
      // during a run, poll for its next step; between runs, poll briefly and then sleep until the next run's
      // wake call (startRun): that pause says nothing about how busy the cores are, so it leaves the backoff alone
      const polled = Atomics.load(ctrl, RUNNING)
        ? spinWhile(ctrl, 0, generation, spinMs, backoff)
        : spinWhile(ctrl, 0, generation, Math.min(spinMs, IDLE_SPIN_MS));
      if (!polled) Atomics.wait(ctrl, 0, generation);
      generation = Atomics.load(ctrl, 0);
      for (let w = claim(ctrl); w >= 0; w = claim(ctrl)) {
        if (w === KILL_CHUNK) break serve;
        const count = (w >> 8) & 255;
        try {
          if (dynamic) {
            // the descriptor is read after the claim: the session rewrites it only once every chunk is done
            const step = readDescriptor(new Float64Array(memory.buffer, dynamic.offset, dynamic.words), dynamic.kernels);
            instance.exports[step.kernel](...chunkArgs(step, stepChunks(step, threads, chunksPerThread)[w & 255]));
          } else {
            calls[w >>> 16][w & 255]();
          }
        } catch {
          Atomics.store(ctrl, 3, 1);
        }
        if (Atomics.add(ctrl, 2, 1) + 1 === count) Atomics.notify(ctrl, 2);
      }
    }
  } finally {
    self.close();
  }
}

// Publish a generation without chunks: helpers polling for the next step stop polling, and go round their
// loop again (as a poll that succeeded, so the backoff is not fed).
function publishNoChunks(ctrl) {
  Atomics.store(ctrl, CLAIM, NO_CHUNKS);
  Atomics.add(ctrl, 0, 1);
}

// A run starts by waking the helpers, while it copies its inputs in: they slept since the last run, and a
// thread that slept long is slow to wake here (its core idled: a halted vCPU).
function startRun(pool) {
  if (!pool) return;
  Atomics.store(pool.ctrl, RUNNING, 1);
  publishNoChunks(pool.ctrl);
  Atomics.notify(pool.ctrl, 0);
}

// A run ends by ending the helpers' polls for a next step that will not come: otherwise they would keep their
// cores busy for up to threadSpinMs, and count the poll that timed out as a sign of busy cores.
function endRun(pool) {
  if (!pool) return;
  Atomics.store(pool.ctrl, RUNNING, 0);
  publishNoChunks(pool.ctrl);
}

// Run split step `index` as `calls` (one per chunk) on this worker and the helpers.
function runSplit(pool, index, calls) {
  const { ctrl } = pool;
  const count = calls.length;
  Atomics.store(ctrl, 2, 0);
  Atomics.store(ctrl, CLAIM, (index << 16) | (count << 8));
  Atomics.add(ctrl, 0, 1);
  Atomics.notify(ctrl, 0);
  let err = null;
  for (let w = claim(ctrl); w >= 0; w = claim(ctrl)) {
    try {
      calls[w & 255]();
    } catch (e) {
      err = e;
    }
    Atomics.add(ctrl, 2, 1);
  }
  for (let done = Atomics.load(ctrl, 2); done < count; done = Atomics.load(ctrl, 2)) {
    if (!spinWhile(ctrl, 2, done, pool.spinMs, pool.backoff)) Atomics.wait(ctrl, 2, done);
  }
  if (err) throw err;
  if (Atomics.load(ctrl, 3)) {
    Atomics.store(ctrl, 3, 0);
    throw new Error("a helper thread trapped (memory access out of bounds or similar)");
  }
}

// Resolve each step once: the export, its arguments as numbers, bound together. With a thread pool, a
// split step binds each of its chunks, which this worker and the helpers claim (runSplit).
function prepare(steps, exports, where, pool = null) {
  let splitIndex = 0;
  return steps.map((step, i) => {
    const when = step.when ?? null; // a step of a run-time If's branch: [[condition address, value], ...]
    if (step.fail) {
      // a branch that cannot run with these shapes: reaching it stops the run with the packager's message
      return { call: () => { throw new BranchError(step.fail); }, step, i, when };
    }
    const fn = exports[step.kernel];
    if (typeof fn !== "function") throw new Error(`${where}[${i}] calls kernel '${step.kernel}', which the module does not export`);
    const args = step.args.map((a) => (typeof a === "string" ? Number(a) : a));
    if (args.length !== fn.length) {
      throw new Error(`${where}[${i}] passes ${args.length} args to ${step.kernel}, which takes ${fn.length}`);
    }
    if (pool && step.split) {
      const chunkCalls = stepChunks(step, pool.threads, pool.chunksPerThread).map((c) => fn.bind(null, ...chunkArgs(step, c)));
      const index = splitIndex++;
      if (index >= NO_CHUNKS >>> 16) throw new Error(`${where} has more than ${(NO_CHUNKS >>> 16) - 1} split steps`);
      if (pool.descriptor) {
        const k = state.kernelIndex.get(step.kernel);
        return { call: () => { writeDescriptor(pool.descriptor, k, step); runSplit(pool, index, chunkCalls); }, step, i, when };
      }
      return { call: () => runSplit(pool, index, chunkCalls), step, i, when };
    }
    return { call: fn.bind(null, ...args), step, i, when };
  });
}

class BranchError extends Error {}

// profile: an array that receives {node, op, kernel, ms} per step. `memory` (the wasm memory) is needed by
// plans with run-time Ifs: a guarded step runs only when its conditions (bytes in memory) hold.
function callAll(calls, profile = null, memory = null) {
  let bytes = null;
  for (const { call, step, i, when } of calls) {
    if (when) {
      if (!bytes || bytes.buffer !== memory.buffer) bytes = new Uint8Array(memory.buffer);
      if (!when.every(([address, value]) => (bytes[address] !== 0) === (value !== 0))) continue;
    }
    const t0 = profile ? performance.now() : 0;
    try {
      call();
      if (profile) profile.push({ node: step.node ?? "", op: step.op ?? "", kernel: step.kernel, ms: performance.now() - t0 });
    } catch (err) {
      if (err instanceof BranchError) throw err;
      const node = step.node ? `node '${step.node}' (${step.op})` : `an ${step.op || "init"} step`;
      const why = /unreachable/.test(err.message)
        ? " (a run-time check failed: an index out of range, an integer division by zero, or a data-dependent size such as NonZero's count that differs from the one the plan was made for)"
        : "";
      throw new Error(`kernel ${step.kernel} trapped at ${node}, step ${i}: ${err.message}${why}`);
    }
  }
}

function writeInputs(memory, inputs, feeds) {
  for (const e of inputs) {
    const data = feeds[e.name];
    if (!data || data.byteLength !== e.bytes) throw new Error(`input '${e.name}' must be ${e.bytes} bytes`);
    new Uint8Array(memory.buffer, e.offset, e.bytes).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
}

function run(feeds, shapes, wantProfile = false) {
  if (!state) throw new Error("no model loaded");
  const { memory } = state;
  const { inputs, outputs, calls } = state.manifest ? planFor(shapes) : state;
  writeInputs(memory, inputs, feeds);
  const profile = wantProfile ? [] : null;
  callAll(calls, profile, memory);
  const buffers = {};
  const outShapes = {};
  // a typed-array slice lands in a fresh ArrayBuffer even when the memory is shared, so it can be transferred
  for (const e of outputs) {
    buffers[e.name] = new Uint8Array(memory.buffer, e.offset, e.bytes).slice().buffer;
    outShapes[e.name] = e.shape;
  }
  return { buffers, shapes: outShapes, profile };
}

// ---- dynamic shapes (wasm_runtime/dynamic.py) -----------------------------------------------------------
// Formulas are integers or [[coef, e0, e1, ...], ...]: sum of coef * prod(symbol_i ** e_i).

function evaluate(f, values) {
  if (typeof f === "number") return f;
  let total = 0;
  for (const t of f) {
    let term = t[0];
    for (let i = 0; i < values.length; i++) for (let k = 0; k < t[i + 1]; k++) term *= values[i];
    total += term;
  }
  return total;
}

// A formula for display: its variables are each symbol's size / step, so an input dim reads as the symbol
// (step * k) and other terms as (symbol/step).
function showFormula(f, symbols, steps = symbols.map(() => 1)) {
  if (typeof f === "number") return f;
  if (f.length === 1) {
    const exps = f[0].slice(1);
    const i = exps.indexOf(1);
    if (i >= 0 && exps.every((e, k) => e === (k === i ? 1 : 0)) && f[0][0] === steps[i]) return symbols[i];
  }
  const name = (i) => (steps[i] > 1 ? `(${symbols[i]}/${steps[i]})` : symbols[i]);
  return f.map((t) => [t[0] !== 1 ? t[0] : null, ...symbols.map((s, i) => (t[i + 1] ? (t[i + 1] > 1 ? `${name(i)}^${t[i + 1]}` : name(i)) : null))]
    .filter((x) => x !== null).join("*") || String(t[0])).join(" + ");
}

// greedy by size, the planner's placement (place() in dynamic.py), on this shape's sizes
function place(sizes, lives) {
  const up = (n) => Math.ceil(n / 64) * 64;
  const order = sizes.map((_, k) => k).sort((a, b) => sizes[b] - sizes[a] || lives[a][0] - lives[b][0] || a - b);
  const offsets = new Array(sizes.length).fill(0);
  const placed = [];
  let top = 0;
  for (const k of order) {
    const [first, last] = lives[k];
    const live = placed.filter((p) => lives[p][0] <= last && first <= lives[p][1]).sort((a, b) => offsets[a] - offsets[b]);
    let offset = 0;
    for (const p of live) {
      if (offset + sizes[k] <= offsets[p]) break;
      offset = Math.max(offset, up(offsets[p] + sizes[p]));
    }
    offsets[k] = offset;
    placed.push(k);
    top = Math.max(top, offset + sizes[k]);
  }
  return { offsets, bytes: up(top) };
}

const PARAM_ARRAYS = { int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array, int8: Int8Array, uint32: Uint32Array, float32: Float32Array, float64: Float64Array };

function planFor(shapes) {
  const m = state.manifest;
  const d = m.dynamic;
  const key = JSON.stringify(m.inputs.map((e) => shapes?.[e.name] ?? null));
  let plan = state.plans.get(key);
  if (!plan) {
    // each symbol takes multiples of its step from its minimum (wasm_runtime/domain.py); the formulas are
    // polynomials in size / step
    const values = d.symbols.map((sym) => {
      const [name, axis] = d.bind[sym];
      const v = shapes?.[name]?.[axis];
      const { step, min } = d.domain?.[sym] ?? { step: 1, min: 1 };
      if (!Number.isSafeInteger(v) || v < min || v % step !== 0) {
        const multiple = step > 1 ? `a multiple of ${step} and ` : "";
        throw new Error(`input '${name}' dim ${axis} ('${sym}') must be ${multiple}at least ${min}, got ${v} (the sizes this bundle was planned for)`);
      }
      return v / step;
    });
    const sizes = d.arena.map((a) => evaluate(a.size, values));
    const { offsets, bytes } = place(sizes, d.arena.map((a) => [a.first, a.last]));
    const base = m.memory.arena_offset;
    const tensor = (e) => {
      const shape = e.shape.map((f) => evaluate(f, values));
      const offset = Number.isInteger(e.arena) ? base + offsets[e.arena] : e.offset;
      return { name: e.name, dtype: e.dtype, shape, offset, bytes: shape.reduce((a, b) => a * b, 1) * ITEM_BYTES[e.dtype] };
    };
    const inputs = m.inputs.map(tensor);
    const where = d.symbols.map((s, i) => `${s}=${values[i] * (d.domain?.[s]?.step ?? 1)}`).join(", ");
    for (const e of inputs) {
      const given = shapes?.[e.name] ?? [];
      if (given.length !== e.shape.length || given.some((v, i) => v !== e.shape[i])) {
        throw new Error(`input '${e.name}' has shape [${given.join(", ")}]; with ${where} (bound by the inputs) it must be [${e.shape.join(", ")}]`);
      }
    }
    const arg = (a) => {
      if (typeof a !== "object" || a === null) return a;
      if ("a" in a) return base + offsets[a.a] + evaluate(a.o, values);
      if ("w" in a) return a.w + evaluate(a.o, values);
      return evaluate(a.p, values);
    };
    const steps = m.steps.map((s) => {
      const out = { kernel: s.kernel, args: s.args.map(arg), node: s.node, op: s.op };
      if (s.when) out.when = s.when.map(([a, value]) => [arg(a), value]);
      if (s.fail) out.fail = s.fail;
      if (s.split) {
        out.split = { units: evaluate(s.split.units, values), count: s.split.count, align: s.split.align,
                      deltas: s.split.deltas.map(([i, f]) => [i, evaluate(f, values)]) };
      }
      return out;
    });
    const params = d.params.map((p) => {
      const Ctor = PARAM_ARRAYS[p.dtype];
      if (!Ctor) throw new Error(`unsupported parameter dtype ${p.dtype}; re-package the model`);
      const vals = p.values.map((f) => evaluate(f, values));
      return { offset: p.offset, data: Ctor === BigInt64Array ? BigInt64Array.from(vals, BigInt) : Ctor.from(vals) };
    });
    plan = { inputs, outputs: m.outputs.map(tensor), calls: prepare(steps, state.exports, "steps", state.pool), params, memoryBytes: base + bytes };
    state.plans.set(key, plan);
  }
  const need = Math.ceil(plan.memoryBytes / PAGE);
  const have = state.memory.buffer.byteLength / PAGE;
  if (need > have) {
    try {
      state.memory.grow(need - have);
    } catch (err) {
      throw new Error(`these input shapes need ${(plan.memoryBytes / 2 ** 20).toFixed(0)} MiB of WebAssembly memory: ${err.message}`);
    }
  }
  for (const p of plan.params) new Uint8Array(state.memory.buffer, p.offset, p.data.byteLength).set(new Uint8Array(p.data.buffer));
  return plan;
}
