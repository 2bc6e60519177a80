// WebGL plan profiling and A/B timing in ONE page (benchmarks/webgl_profile.py drives it).
//
// Query: variants=a,b (URL prefixes; each serves its own webgl.js and the bundle dir `model/`), model=<name>,
//        mode=ab|profile, runs=N. The plans run on this page's main thread (OffscreenCanvas), no worker.
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
  if (m.webgl.wasm) throw new Error(`${v}: a mixed plan (this page runs GPU-only plans)`);
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

window.__done = (mode === "ab" ? ab() : profile()).catch((e) => ({ error: String(e.stack || e) }));
