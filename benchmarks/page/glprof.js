// WebGL plan profiling and A/B timing in ONE page (benchmarks/webgl_profile.py drives it).
//
// Query: variants=a,b (URL prefixes; each serves its own webgl.js, runtime/ and the bundle dir `model/`),
//        model=<name>, mode=ab|profile|session, runs=N, backends=webgl,wasm (session). ab and profile run the
//        plans on this page's main thread (OffscreenCanvas), no worker.
// ab: create every variant's plan (timed), then N rounds, each running every variant once in alternating
//     order; returns per-variant run times and each variant's first output.
// profile: per step, draw it alone and read back one texel (which waits for it); min over N runs per step after
//          a first run without warm-up (its times: JIT + draw).

const q = new URLSearchParams(location.search);
const variants = q.get("variants").split(",");
const model = q.get("model");
const mode = q.get("mode");
const runs = Number(q.get("runs") || 3);

function seededInput(n) {
  // xorshift32 -> roughly uniform in [-1, 1): only needs to be the same for every variant
  const out = new Float32Array(n);
  let s = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

async function load(v, warm = true) {
  const gl = await import(`/${v}/webgl.js`);
  const m = await (await fetch(`/${v}/${model}/manifest.json`)).json();
  const w = await (await fetch(`/${v}/${model}/webgl-weights.bin`)).arrayBuffer();
  // a mixed plan's GPU steps can be profiled (they read zeros where wasm results would be), not run
  if (m.webgl.wasm && mode === "ab") throw new Error(`${v}: a mixed plan (ab runs GPU-only plans)`);
  const t0 = performance.now();
  const plan = new gl.WebGLPlan(m.webgl, w);
  if (!warm) plan.execute = () => {}; // profile: the first round's step times then include the shader JIT
  const timings = await plan.init();
  delete plan.execute;
  const createMs = performance.now() - t0;
  const feeds = {};
  for (const e of m.webgl.inputs) feeds[e.name] = seededInput(e.elements);
  return { v, plan, feeds, createMs, timings };
}

function runOnce(p) {
  const t0 = performance.now();
  const { buffers } = p.plan.run(p.feeds);
  return { ms: performance.now() - t0, out: Array.from(new Float32Array(Object.values(buffers)[0])) };
}

async function ab() {
  const loaded = [];
  for (const v of variants) loaded.push(await load(v));
  const result = {};
  for (const p of loaded) {
    const first = runOnce(p);
    result[p.v] = { createMs: p.createMs, timings: p.timings, firstMs: first.ms, runsMs: [], out: first.out };
  }
  for (let r = 0; r < runs; r++) {
    const order = r % 2 ? [...loaded].reverse() : loaded;
    for (const p of order) result[p.v].runsMs.push(runOnce(p).ms);
  }
  return result;
}

async function profile() {
  const p = await load(variants[0], false);
  const { plan } = p;
  const { gl } = plan;
  const steps = plan.section.steps;
  const best = steps.map(() => Infinity);
  const first = steps.map(() => 0);
  const px = new Float32Array(4);
  for (let r = 0; r <= runs; r++) {
    plan.check("profile");
    plan.uploadInputs(p.feeds);
    gl.bindFramebuffer(gl.FRAMEBUFFER, plan.textures[steps[0].output].fbo);
    gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.FLOAT, px);
    for (let k = 0; k < steps.length; k++) {
      const t0 = performance.now();
      plan.execute(k, k + 1);
      gl.bindFramebuffer(gl.FRAMEBUFFER, steps[k].outputs ? plan.mrt.get(k) : plan.textures[steps[k].output].fbo);
      gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.FLOAT, px);
      const dt = performance.now() - t0;
      if (r === 0) first[k] = dt;
      else best[k] = Math.min(best[k], dt);
    }
  }
  return {
    createMs: p.createMs,
    timings: p.timings,
    steps: steps.map((s, k) => ({ node: s.node, op: s.op, program: s.program, ms: best[k], firstMs: first[k], out: plan.section.textures[s.output] })),
  };
}

// session: an InferenceSession (its worker, mixed plans included) per variant x backend, from the variant's
// own runtime/; then N rounds, each running every session once in alternating order.
async function sessions() {
  const backends = (q.get("backends") || "webgl,wasm").split(",");
  const loaded = [];
  const result = {};
  for (const v of variants) {
    const { InferenceSession, Tensor } = await import(`/${v}/runtime/index.js`);
    const m = await (await fetch(`/${v}/${model}/manifest.json`)).json();
    const feeds = {};
    for (const e of m.inputs) {
      if (e.dtype !== "float32") throw new Error(`input '${e.name}' is ${e.dtype}: session mode feeds float32 only`);
      feeds[e.name] = new Tensor("float32", seededInput(e.shape.reduce((a, b) => a * b, 1)), e.shape);
    }
    for (const backend of backends) {
      const key = `${v}/${backend}`;
      try {
        const t0 = performance.now();
        const session = await InferenceSession.create(`/${v}/${model}/`, { backend, numThreads: 1 });
        const createMs = performance.now() - t0;
        const t1 = performance.now();
        const out = await session.run(feeds);
        const firstMs = performance.now() - t1;
        const outputs = {};
        for (const [k, t] of Object.entries(out)) outputs[k] = Array.from(t.data);
        result[key] = { backend: session.backend, createMs, firstMs, runsMs: [], outputs };
        loaded.push({ key, session, feeds });
      } catch (err) {
        result[key] = { error: String(err && err.message) };
      }
    }
  }
  for (let r = 0; r < runs; r++) {
    for (const p of r % 2 ? [...loaded].reverse() : loaded) {
      const t0 = performance.now();
      await p.session.run(p.feeds);
      result[p.key].runsMs.push(performance.now() - t0);
    }
  }
  for (const p of loaded) await p.session.release();
  return result;
}

const modes = { ab, profile, session: sessions };
window.__done = modes[mode]().catch((e) => ({ error: String(e.stack || e) }));
