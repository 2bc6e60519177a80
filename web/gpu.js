// The WebGL backend's sessions: a plan that runs wholly on the GPU (WebGLSession), and a mixed plan whose nodes
// without a shader run on the bundle's wasm part between the GPU's segments (MixedSession). The GL plumbing is
// webgl.js (WebGLPlan); this module chooses the backend, loads the plan (and the wasm part) and moves tensors
// between the two at the segments' boundaries. Only the session worker of a "webgl" or "auto" session loads it.

import { fetchFile, checkIntegrity } from "./integrity.js";
import { checkManifest, fetchManifest } from "./manifest.js";
import { loadWasm, ms } from "./wasm.js";
import { callAll, readOutputs, writeInputs } from "./steps.js";
import { WebGLPlan, webglUnavailableReason } from "./webgl.js";

/** backend "webgl" or "auto": {info, session} on the GPU, or {fallback: why} for "auto" when the bundle or the
 * browser cannot run it there (the caller loads the wasm plan and reports why); "webgl" then rejects instead. */
export async function loadGpu(msg) {
  const { backend } = msg;
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
    reason = webglUnavailableReason();
    if (!reason) {
      try {
        return await loadWebGL(m, msg, t0);
      } catch (err) {
        if (backend === "webgl") throw err;
        reason = err.message;
      }
    }
  }
  if (backend === "webgl") throw new Error(`backend "webgl" cannot run this model: ${reason}`);
  console.warn(`wasm-runtime: backend "auto" runs on wasm: ${reason}`);
  return { fallback: reason };
}

// frees a plan's textures now, not at garbage collection
function freePlan(plan) {
  try {
    plan.loseContext();
  } catch {
    // no WEBGL_lose_context: the context goes with the plan
  }
}

async function loadWebGL(m, msg, t0) {
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
  const plan = new WebGLPlan(section);
  let timings;
  try {
    timings = await plan.init(weights);
  } catch (err) {
    freePlan(plan);
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
  if (!section.wasm) return { info, session: new WebGLSession(plan) };
  let part;
  try {
    part = await loadWasm({ ...msg, url: new URL(`${section.wasm.dir}/`, base).href, expected: integrity ? section.wasm.manifest : null, pin: null });
  } catch (err) {
    freePlan(plan);
    throw new Error(`the wasm part of the mixed plan failed to load: ${err.message}`);
  }
  console.info(`wasm-runtime: backend "${msg.backend}" runs a mixed plan: ${summary}`);
  return {
    info: {
      ...info,
      threads: part.info.threads,
      threadsReason: part.info.threadsReason,
      helperLocks: part.info.helperLocks,
      variant: part.info.variant,
      backendReason: summary,
      timings: { ...info.timings, wasmPart: part.info.timings },
    },
    session: new MixedSession(plan, part.session, m, section.segments),
  };
}

/** A plan that runs wholly on the GPU. */
export class WebGLSession {
  constructor(plan) {
    this.gl = plan;
    this.pool = null;
  }

  /** feeds: {name: Float32Array}; returns {buffers: {name: ArrayBuffer}, shapes} (no profile on the GPU). */
  run(feeds) {
    return this.gl.run(feeds);
  }

  loseContext() {
    this.gl.loseContext();
  }
}

/** A mixed plan: GPU segments and the wasm part's, in order (webgl.segments). */
export class MixedSession extends WebGLSession {
  constructor(plan, part, m, segments) {
    super(plan);
    const modelInputs = new Set(m.inputs.map((e) => e.name));
    const modelOutputs = new Set(m.outputs.map((e) => e.name));
    const { inputs, outputs, calls } = part.plans.planFor(); // a mixed plan's wasm part has fixed shapes
    this.part = part;
    this.pool = part.pool; // the wasm part has the threads
    this.calls = calls;
    this.segments = segments;
    this.feedInputs = inputs.filter((e) => modelInputs.has(e.name));
    this.wasmOutputs = outputs.filter((e) => modelOutputs.has(e.name));
  }

  // The graph inputs go to both sides, then each segment runs after the tensors it needs from the other
  // backend are moved in (readPixels into wasm memory, or wasm memory into a texture).
  run(feeds) {
    const { gl } = this;
    const { memory } = this.part;
    gl.check("run()");
    gl.uploadInputs(feeds);
    writeInputs(memory, this.feedInputs, feeds);
    for (const seg of this.segments) {
      const [from, to] = seg.steps;
      if (seg.backend === "webgl") {
        for (const t of seg.transfers) gl.uploadFrom(t, new Float32Array(memory.buffer, t.offset, t.elements));
        gl.execute(from, to);
      } else {
        for (const t of seg.transfers) {
          new Float32Array(memory.buffer, t.offset, t.elements).set(gl.readTexture(t).subarray(0, t.elements));
        }
        callAll(this.calls.slice(from, to), null, memory);
      }
    }
    const { buffers, shapes } = gl.readOutputs();
    readOutputs(memory, this.wasmOutputs, buffers, shapes);
    gl.check("run()");
    return { buffers, shapes };
  }
}
