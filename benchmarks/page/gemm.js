// Kernel micro-benchmark page: instantiates one kernel module (the same .wasm wasmtime runs) on a
// WebAssembly.Memory and times GEMM calls. benchmarks/gemm_bench.py builds the config: memory layout and the
// exact kernel calls (prep + timed) come from Python, so the call is written in one place only.

// Operand values: the same integer hash as gemm_bench.operand() in numpy, so Python can check C.
function fill(memory, ptr, count, seed) {
  const f = new Float32Array(memory.buffer, ptr, count);
  for (let i = 0; i < count; i++) f[i] = (Math.imul(i + seed, 2654435761) >>> 0) / 4294967296 - 0.5;
}

function toBase64(bytes) {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

window.runGemm = async ({ wasmUrl, pages, sizes, budgetMs, minReps }) => {
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const response = await fetch(wasmUrl);
  if (!response.ok) throw new Error(`${wasmUrl}: HTTP ${response.status}`);
  const { instance } = await WebAssembly.instantiateStreaming(response, { env: { memory } });
  const ex = instance.exports;
  const results = [];
  for (const s of sizes) {
    for (const [ptr, count, seed] of s.fill) fill(memory, ptr, count, seed);
    for (const [name, args] of s.prep) ex[name](...args);
    const [name, args] = s.timed;
    const fn = ex[name];
    fn(...args); // warm-up (tier-up, caches)
    const times = [];
    const end = performance.now() + budgetMs;
    while (times.length < minReps || performance.now() < end) {
      const t0 = performance.now();
      fn(...args);
      times.push(performance.now() - t0);
    }
    const [outPtr, outCount] = s.output;
    results.push({ n: s.n, times, output: toBase64(new Uint8Array(memory.buffer, outPtr, outCount * 4)) });
  }
  return { results, crossOriginIsolated: globalThis.crossOriginIsolated === true };
};
window.gemmReady = true;
