// One MiniLM measurement in a fresh page (benchmarks/minilm/run.py opens one per contender and round).
// Query: runtime=ours|ort, url=<bundle dir or .onnx>, samples=<json>, threads=T, warmup=W, runs=N, warmupMs=MS.
// One session serves every sample (several [batch, seq] shapes): our bundle has dynamic shapes, and so does
// the .onnx ORT-web loads. Result: window.__benchDone -> {sessionReadyMs, samples: [{runsMs, output}], ...}.

const q = new URLSearchParams(location.search);
const opt = {
  runtime: q.get("runtime"),
  url: q.get("url"),
  samples: q.get("samples"),
  threads: Number(q.get("threads")),
  warmup: Math.max(1, Number(q.get("warmup"))),
  runs: Number(q.get("runs")),
  warmupMs: Number(q.get("warmupMs") ?? 0),
};
const NAMES = ["input_ids", "attention_mask", "token_type_ids"];

function toBase64(typed) {
  const raw = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  let bin = "";
  for (let i = 0; i < raw.length; i += 0x8000) bin += String.fromCharCode(...raw.subarray(i, i + 0x8000));
  return btoa(bin);
}

const CONTENDERS = {
  async ours() {
    const { InferenceSession, Tensor } = await import("/runtime/index.js");
    const t0 = performance.now();
    const session = await InferenceSession.create(opt.url, { backend: "wasm", numThreads: opt.threads });
    const readyMs = performance.now() - t0;
    return {
      readyMs,
      threads: session.threads,
      run: async (s) => {
        const feeds = {};
        for (const n of NAMES) feeds[n] = new Tensor("int64", BigInt64Array.from(s[n].flat(), BigInt), s.dims);
        return (await session.run(feeds)).last_hidden_state.data;
      },
    };
  },
  async ort() {
    const ort = await import("/ort/ort.wasm.min.mjs");
    ort.env.wasm.numThreads = opt.threads;
    ort.env.wasm.wasmPaths = new URL("/ort/", location.href).href;
    const t0 = performance.now();
    const session = await ort.InferenceSession.create(opt.url, { executionProviders: ["wasm"] });
    const readyMs = performance.now() - t0;
    return {
      readyMs,
      threads: ort.env.wasm.numThreads,
      run: async (s) => {
        const feeds = {};
        for (const n of NAMES) feeds[n] = new ort.Tensor("int64", BigInt64Array.from(s[n].flat(), BigInt), s.dims);
        return (await session.run(feeds)).last_hidden_state.data;
      },
    };
  },
};

async function main() {
  const samples = await (await fetch(opt.samples)).json();
  const c = await CONTENDERS[opt.runtime]();
  // V8 first runs wasm in its baseline tier and swaps in optimized code compiled in the background: every
  // sample keeps running, in turn, until warmupMs have passed, so that no sample is timed on baseline code
  for (const t0 = performance.now(); performance.now() - t0 < opt.warmupMs; ) for (const s of samples) await c.run(s);
  const out = [];
  for (const s of samples) {
    let first;
    for (let i = 0; i < opt.warmup; i++) {
      const r = await c.run(s);
      if (i === 0) first = r;
    }
    const runsMs = [];
    for (let i = 0; i < opt.runs; i++) {
      const t0 = performance.now();
      await c.run(s);
      runsMs.push(performance.now() - t0);
    }
    out.push({ dims: s.dims, runsMs, output: toBase64(first) });
  }
  return { sessionReadyMs: c.readyMs, threads: c.threads, samples: out };
}

window.__benchDone = main().then(
  (r) => r,
  (err) => ({ error: String(err?.stack ?? err) }),
);
