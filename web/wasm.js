// The wasm executor: a bundle's kernels on one WebAssembly memory (the JS twin of wasm_runtime/host.py).
// loadWasm downloads, checks and instantiates a bundle, copies its weights in and runs its init steps;
// WasmSession.run writes the inputs, calls the plan's steps and reads the outputs.

import { DynamicPlans, showFormula } from "./dynamic.js";
import { fetchFile, checkIntegrity, hashElsewhere, spawnHasher, verifyFile } from "./integrity.js";
import { helperLock } from "./locks.js";
import { checkManifest, fetchManifest, PAGE } from "./manifest.js";
import { callAll, prepare, readOutputs, writeInputs } from "./steps.js";
import { spawnHelpers, startHelpers } from "./threads.js";

export const ms = (t0) => Math.round((performance.now() - t0) * 100) / 100;

/** The plan of a bundle with fixed shapes: bound once, the same for every run. */
class StaticPlan {
  constructor(m, exports, pool) {
    this.plan = { inputs: m.inputs, outputs: m.outputs, calls: prepare(m.steps, exports, "steps", pool) };
  }

  planFor() {
    return this.plan;
  }
}

/** A loaded wasm bundle. `plans`: a StaticPlan or DynamicPlans (planFor(shapes) -> {inputs, outputs, calls}). */
export class WasmSession {
  constructor(memory, pool, plans) {
    this.memory = memory;
    this.pool = pool; // ThreadPool, or null on one thread
    this.plans = plans;
  }

  /** feeds: {name: TypedArray}; shapes: {name: dims}; returns {buffers: {name: ArrayBuffer}, shapes, profile}. */
  run(feeds, shapes, wantProfile = false) {
    const { memory } = this;
    const { inputs, outputs, calls } = this.plans.planFor(shapes);
    writeInputs(memory, inputs, feeds);
    const profile = wantProfile ? [] : null;
    callAll(calls, profile, memory);
    return { ...readOutputs(memory, outputs), profile };
  }

  loseContext() {
    throw new Error("the session does not run on WebGL");
  }
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

// The threads a bundle runs on, and the kernel build that takes: the shared-memory build, if the bundle has one
// and the page allows it (index.js asks for 1 thread when it does not).
function threadsFor(m, wanted, baseVariant) {
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
  return { threads, threadsReason, variant: threads > 1 ? `${baseVariant}-mt` : baseVariant };
}

// Compile the kernel module as it streams in while its bytes are hashed (with `integrity`, against `meta`, its
// files entry); reports the compile time through compiled(ms).
async function compileChecked(r, name, integrity, meta, compiled) {
  const check = integrity ? r.clone().arrayBuffer().then((bytes) => checkIntegrity(name, r.url, meta, bytes)) : null;
  const tc = performance.now();
  let module;
  try {
    module = await compileModule(r);
  } catch (err) {
    await check; // a corrupt file explains a compile error best
    throw new Error(`failed to compile ${name} (${r.url}): ${err.message}`);
  } finally {
    compiled(ms(tc));
  }
  await check;
  return module;
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

/** Load the bundle at `url` (the load message's options) on wasm: {info (for the page), session}. `prefetched`: a
 * promise of weights.bin as a Blob that the page downloads (null if that failed: fetched here then), or null. */
export async function loadWasm({ url: base, variant: baseVariant, integrity, pin = null, threads: wanted = 1, expected = null, spinMs = 0, chunksPerThread = 1 }, prefetched = null) {
  const t0 = performance.now();
  const manifestUrl = new URL("manifest.json", base).href;
  // weights.bin downloads alongside the manifest (its name does not depend on it): the page's prefetch, or a
  // fetch from here; awaited only once the manifest is good, so a bad bundle reports its manifest's error
  const weightsUrl = new URL("weights.bin", base).href;
  const weightsBlob = (prefetched ?? Promise.resolve(null)).then(
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
  const hasher = integrity ? spawnHasher() : null;
  let m;
  try {
    m = await fetchManifest(manifestUrl, expected, expected ? null : pin);
    checkManifest(m, manifestUrl);
  } catch (err) {
    hasher?.terminate();
    throw err;
  }
  const { threads, threadsReason, variant } = threadsFor(m, wanted, baseVariant);
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
      fetchFile(base, moduleName).then((r) => compileChecked(r, moduleName, integrity, moduleMeta, (t) => (compileMs = t))),
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
    const plans = m.dynamic ? new DynamicPlans(m, exports, memory, pool) : new StaticPlan(m, exports, pool);
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
    return { info, session: new WasmSession(memory, pool, plans) };
  } catch (err) {
    for (const w of spawned) w.terminate();
    throw err;
  }
}
