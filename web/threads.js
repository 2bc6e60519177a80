// Threads: the session worker's pool of helper workers (ThreadPool), the helper-thread loop (helperMain), and
// how a split step is cut into chunks (the same cut as wasm_runtime/host.py: tests/data/split_chunks.json).

import { helperLock } from "./locks.js";

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

// A claim word that only a helper takes (the session worker does not claim it): its chunk ends the helper
// (ThreadPool.killHelper). No split step has index 0x7fff and NO_CHUNKS has no chunk, so no run publishes it.
const KILL_CHUNK = (0x7fff << 16) | (1 << 8);

/** The [u0, u1) unit ranges of a split step for `threads` chunks: equal chunks rounded up to `align`, the last
 * one shorter, empty ones dropped (chunks() in wasm_runtime/host.py cuts the same way). */
export function chunks(units, align, threads) {
  let size = Math.ceil(units / threads);
  size = Math.ceil(size / align) * align;
  const out = [];
  for (let u0 = 0; u0 < units; u0 += size) out.push([u0, Math.min(units, u0 + size)]);
  return out;
}

// The chunks a split step runs as, each [u0, u1); at most 255 (the claim word's field).
export function stepChunks(step, threads, perThread) {
  return chunks(step.split.units, step.split.align, Math.min(255, threads * perThread));
}

export function chunkArgs(step, [u0, u1]) {
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

/** Helper workers 1..threads-1 (this runtime's worker.js); they serve steps once startHelpers sends them the
 * module and memory. */
export function spawnHelpers(threads) {
  const workers = [];
  for (let t = 1; t < threads; t++) {
    const w = new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: `wasm-runtime helper ${t}` });
    // the lock is taken while the files download; the helper serves steps only once it holds it
    if (helperLock(t)) w.postMessage({ op: "hold", lock: helperLock(t) });
    workers.push(w);
  }
  return workers;
}

/** Start the spawned helpers on the module and shared memory; resolves with the pool once all are ready. */
export async function startHelpers(spawned, module, memory, m, threads, { spinMs = 0, chunksPerThread = 1 } = {}) {
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
  return new ThreadPool({ workers: await Promise.all(helpers), ctrl, threads, chunksPerThread, descriptor, spinMs, backoff });
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

// Publish a generation without chunks: helpers polling for the next step stop polling, and go round their
// loop again (as a poll that succeeded, so the backoff is not fed).
function publishNoChunks(ctrl) {
  Atomics.store(ctrl, CLAIM, NO_CHUNKS);
  Atomics.add(ctrl, 0, 1);
}

/** The session worker's side of the threads: the helpers, the control block, and how split steps run on them. */
export class ThreadPool {
  constructor({ workers, ctrl, threads, chunksPerThread, descriptor, spinMs, backoff }) {
    this.workers = workers;
    this.ctrl = ctrl;
    this.threads = threads;
    this.chunksPerThread = chunksPerThread;
    this.descriptor = descriptor; // a dynamic plan's step descriptor block (Float64Array), else null
    this.spinMs = spinMs;
    this.backoff = backoff;
  }

  // A run starts by waking the helpers, while it copies its inputs in: they slept since the last run, and a
  // thread that slept long is slow to wake here (its core idled: a halted vCPU).
  startRun() {
    Atomics.store(this.ctrl, RUNNING, 1);
    publishNoChunks(this.ctrl);
    Atomics.notify(this.ctrl, 0);
  }

  // A run ends by ending the helpers' polls for a next step that will not come: otherwise they would keep their
  // cores busy for up to threadSpinMs, and count the poll that timed out as a sign of busy cores.
  endRun() {
    Atomics.store(this.ctrl, RUNNING, 0);
    publishNoChunks(this.ctrl);
  }

  /** The call that runs split step `step` (the `index`-th split step of its plan) of kernel `fn` as chunks on this
   * worker and the helpers; `kernel`: the kernel's index in kernels.exports, which a dynamic plan's descriptor
   * names (helpers bind a dynamic plan's steps per run, from the descriptor, not once at start). */
  splitCall(step, fn, index, where, kernel) {
    const chunkCalls = stepChunks(step, this.threads, this.chunksPerThread).map((c) => fn.bind(null, ...chunkArgs(step, c)));
    if (index >= NO_CHUNKS >>> 16) throw new Error(`${where} has more than ${(NO_CHUNKS >>> 16) - 1} split steps`);
    if (this.descriptor) {
      return () => {
        writeDescriptor(this.descriptor, kernel, step);
        this.runSplit(index, chunkCalls);
      };
    }
    return () => this.runSplit(index, chunkCalls);
  }

  // Run split step `index` as `calls` (one per chunk) on this worker and the helpers.
  runSplit(index, calls) {
    const { ctrl } = this;
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
      if (!spinWhile(ctrl, 2, done, this.spinMs, this.backoff)) Atomics.wait(ctrl, 2, done);
    }
    if (err) throw err;
    if (Atomics.load(ctrl, 3)) {
      Atomics.store(ctrl, 3, 0);
      throw new Error("a helper thread trapped (memory access out of bounds or similar)");
    }
  }

  /** Tests (testKill "helper"): a helper claims a chunk that makes it stop, and this worker waits for it as for
   * any chunk of a split step, forever: the page must notice through the helper's lock. */
  killHelper() {
    const { ctrl } = this;
    this.startRun();
    Atomics.store(ctrl, 2, 0);
    Atomics.store(ctrl, CLAIM, KILL_CHUNK);
    Atomics.add(ctrl, 0, 1);
    Atomics.notify(ctrl, 0);
    while (Atomics.load(ctrl, 2) === 0) Atomics.wait(ctrl, 2, 0);
  }
}

/** A helper thread: serve chunks of split steps until the session ends (or the helper is killed). */
export function helperMain({ module, memory, steps, threads, control_offset, stack_top, dynamic, spinMs = 0, chunksPerThread = 1 }) {
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

