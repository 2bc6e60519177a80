// A plan's steps bound to the kernels of a wasm instance, and called in order: `when` guards (a run-time If's
// branches), `fail` steps (a branch that cannot run with these shapes), split steps on the thread pool, and a
// trap's error naming the node.

// Resolve each step once: the export, its arguments as numbers, bound together. With a thread pool, a
// split step binds each of its chunks, which this worker and the helpers claim (ThreadPool.splitCall);
// `kernelIndex` (kernel name -> index in kernels.exports) names a dynamic plan's kernels to the helpers.
export function prepare(steps, exports, where, pool = null, kernelIndex = null) {
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
      return { call: pool.splitCall(step, fn, splitIndex++, where, kernelIndex?.get(step.kernel)), step, i, when };
    }
    return { call: fn.bind(null, ...args), step, i, when };
  });
}

export class BranchError extends Error {}

// profile: an array that receives {node, op, kernel, ms} per step. `memory` (the wasm memory) is needed by
// plans with run-time Ifs: a guarded step runs only when its conditions (bytes in memory) hold.
export function callAll(calls, profile = null, memory = null) {
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

export function writeInputs(memory, inputs, feeds) {
  for (const e of inputs) {
    const data = feeds[e.name];
    if (!data || data.byteLength !== e.bytes) throw new Error(`input '${e.name}' must be ${e.bytes} bytes`);
    new Uint8Array(memory.buffer, e.offset, e.bytes).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
}

// A typed-array slice lands in a fresh ArrayBuffer even when the memory is shared, so it can be transferred.
// Fills `buffers` and `shapes` ({name: ...}) with the outputs `entries` of the last run.
export function readOutputs(memory, entries, buffers = {}, shapes = {}) {
  for (const e of entries) {
    buffers[e.name] = new Uint8Array(memory.buffer, e.offset, e.bytes).slice().buffer;
    shapes[e.name] = e.shape;
  }
  return { buffers, shapes };
}
