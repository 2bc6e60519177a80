// One benchmark measurement in a fresh page (benchmarks/run.py opens one per contender, model and round).
//
// Query: runtime=ours|ort, url=<bundle dir or .onnx>, input=<raw float32 file>, dims=1,3,224,224,
//        threads=T, warmup=W (>= 1; the first warm-up run gives the first result), warmupMs=M (warm-up also
//        lasts at least M ms, so the browser's background tier-up of wasm code has finished), runs=N (may be 0:
//        run.py then times runs one at a time through window.__benchRun).
// Result (the promise window.__benchDone): timestamps are performance.now(), i.e. ms since navigation start
// (performance.timeOrigin), so `firstResult` is the time from navigation to the first output.

const q = new URLSearchParams(location.search);
const opt = {
  runtime: q.get("runtime"),
  url: q.get("url"),
  input: q.get("input"),
  dims: q.get("dims").split(",").map(Number),
  threads: Number(q.get("threads")),
  warmup: Math.max(1, Number(q.get("warmup"))),
  warmupMs: Number(q.get("warmupMs") ?? 0),
  runs: Number(q.get("runs")),
};

// Where the page is, for run.py's error message when a page never finishes.
window.__benchProgress = { phase: "start", at: 0 };
const progress = (phase) => (window.__benchProgress = { phase, at: Math.round(performance.now()) });

function toBase64(typed) {
  const raw = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  let bin = "";
  for (let i = 0; i < raw.length; i += 0x8000) bin += String.fromCharCode(...raw.subarray(i, i + 0x8000));
  return btoa(bin);
}

// Each contender: import its JS, create a session, and return {run(): Promise<Float32Array>, facts}.
const CONTENDERS = {
  async ours(t, inputP) {
    const { InferenceSession, Tensor } = await import("/runtime/index.js");
    t.importEnd = performance.now();
    progress("create");
    t.createStart = performance.now();
    const session = await InferenceSession.create(opt.url, { backend: q.get("backend") || "wasm", numThreads: opt.threads });
    t.createEnd = performance.now();
    const feeds = { [session.inputNames[0]]: new Tensor("float32", new Float32Array(await inputP), opt.dims) };
    const outName = session.outputNames[0];
    return {
      run: async () => (await session.run(feeds))[outName].data,
      facts: {
        threads: session.threads, // what the runtime actually uses, not what was asked for
        variant: session.backend === "webgl" ? "webgl" : session.variant,
        sessionCrossOriginIsolated: session.crossOriginIsolated,
        runtimeTimings: session.timings,
      },
    };
  },

  async "ort-webgl"(t, inputP) {
    const ort = await import("/ort/ort.webgl.min.mjs");
    t.importEnd = performance.now();
    progress("create");
    t.createStart = performance.now();
    const session = await ort.InferenceSession.create(opt.url, { executionProviders: ["webgl"] });
    t.createEnd = performance.now();
    const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", new Float32Array(await inputP), opt.dims) };
    const outName = session.outputNames[0];
    return {
      run: async () => (await session.run(feeds))[outName].data,
      facts: { threads: 1, variant: "webgl", ortVersion: ort.env.versions?.web ?? null },
    };
  },

  async ort(t, inputP) {
    const ort = await import("/ort/ort.wasm.min.mjs");
    t.importEnd = performance.now();
    ort.env.wasm.numThreads = opt.threads;
    ort.env.wasm.wasmPaths = new URL("/ort/", location.href).href;
    progress("create");
    t.createStart = performance.now();
    const session = await ort.InferenceSession.create(opt.url, { executionProviders: ["wasm"] });
    t.createEnd = performance.now();
    const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", new Float32Array(await inputP), opt.dims) };
    const outName = session.outputNames[0];
    return {
      run: async () => (await session.run(feeds))[outName].data,
      facts: {
        // ORT-web falls back to 1 thread (and says so on the console) without cross-origin isolation.
        threads: ort.env.wasm.numThreads,
        ortVersion: ort.env.versions?.web ?? ort.env.versions?.common ?? null,
        variant: "simd-threaded",
      },
    };
  },
};

async function main() {
  const t = { importStart: performance.now() };
  const contender = CONTENDERS[opt.runtime];
  if (!contender) throw new Error(`unknown runtime ${opt.runtime}`);
  // The input downloads while the runtime loads, as an application would do it.
  const inputP = fetch(opt.input).then((r) => {
    if (!r.ok) throw new Error(`input ${opt.input}: HTTP ${r.status}`);
    return r.arrayBuffer();
  });
  progress("import");
  const { run, facts } = await contender(t, inputP);
  progress("first run");
  const first = await run();
  t.firstResult = performance.now();
  const warmupMs = [t.firstResult - t.createEnd];
  for (let i = 1; i < opt.warmup || performance.now() - t.firstResult < opt.warmupMs; i++) {
    progress(`warm-up run ${i + 1}`);
    const t0 = performance.now();
    await run();
    warmupMs.push(performance.now() - t0);
  }
  const runsMs = [];
  for (let i = 0; i < opt.runs; i++) {
    progress(`timed run ${i + 1}`);
    const t0 = performance.now();
    await run();
    runsMs.push(performance.now() - t0);
  }
  // run.py's cycles (measure_cycles) time further runs here, one at a time, alternating with other pages
  window.__benchRun = async () => {
    const t0 = performance.now();
    await run();
    return performance.now() - t0;
  };
  progress("done");
  return {
    ...facts,
    requestedThreads: opt.threads,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    hardwareConcurrency: navigator.hardwareConcurrency,
    userAgent: navigator.userAgent,
    marks: t,
    sessionReadyMs: t.createEnd - t.createStart,
    navToFirstResultMs: t.firstResult,
    warmupMs,
    runsMs,
    output: toBase64(first),
    outputLength: first.length,
  };
}

// Resolves to the result or to {error}; run.py awaits it.
window.__benchDone = main().then(
  (result) => {
    document.getElementById("out").textContent = JSON.stringify({ ...result, output: "..." }, null, 1);
    return result;
  },
  (err) => {
    const error = String(err?.stack ?? err);
    document.getElementById("out").textContent = error;
    return { error };
  },
);
