// Module worker that loads and runs one bundle (the JS twin of wasm_runtime/host.py).
// Protocol: {id, op: "load", url, variant, integrity} -> {id, result: info} | {id, error}
//           {id, op: "run", feeds: {name: TypedArray}}  -> {id, result: {name: ArrayBuffer}} | {id, error}

const FORMAT = "wasm-runtime-bundle";
const FORMAT_VERSION = 1;
const PAGE = 65536;
const ITEM_BYTES = { float32: 4, float64: 8, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8, bool: 1 };

let state = null; // {memory, inputs, outputs, calls} once loaded

self.onmessage = async ({ data: msg }) => {
  try {
    if (msg.op === "load") {
      self.postMessage({ id: msg.id, result: await load(msg) });
    } else if (msg.op === "run") {
      const result = run(msg.feeds);
      self.postMessage({ id: msg.id, result }, Object.values(result));
    } else {
      throw new Error(`unknown request '${msg.op}'`);
    }
  } catch (err) {
    self.postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) });
  }
};

const ms = (t0) => Math.round((performance.now() - t0) * 100) / 100;

function hexToBase64(hex) {
  let bin = "";
  for (let i = 0; i < hex.length; i += 2) bin += String.fromCharCode(parseInt(hex.slice(i, i + 2), 16));
  return btoa(bin);
}

async function fetchManifest(url) {
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
  const text = await response.text();
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
  for (const key of ["pages", "weights_offset", "weights_file_bytes", "weights_bytes", "arena_offset", "arena_bytes"]) {
    if (!isInt(mem[key])) throw bad(`memory.${key} must be a non-negative integer (got ${JSON.stringify(mem[key])})`);
  }
  const size = mem.pages * PAGE;
  if (mem.pages < 1 || mem.pages > 65536) throw bad(`memory.pages ${mem.pages} is out of range (1..65536)`);
  if (mem.weights_offset + mem.weights_bytes > size || mem.arena_offset + mem.arena_bytes > size) {
    throw bad(`weights or arena end past the ${mem.pages}-page memory`);
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
  if (!Array.isArray(m.init) || !Array.isArray(m.steps)) throw bad("init and steps must be lists");
  if (!m.files?.["weights.bin"]) throw bad("files has no entry for weights.bin");
  if (m.files["weights.bin"].bytes !== mem.weights_file_bytes) throw bad("weights.bin size disagrees with memory.weights_file_bytes");
}

// Fetch one bundle file, with Subresource Integrity from manifest.files when asked. On failure, find out
// why (HTTP status, or bytes that do not match the manifest) so the error says what to fix.
async function fetchFile(base, name, meta, integrity) {
  const url = new URL(name, base).href;
  if (integrity && !/^[0-9a-f]{64}$/.test(meta?.sha256 ?? "")) {
    throw new Error(`manifest.files has no sha256 for ${name}, so it cannot be checked; re-package the model (or pass integrity: false)`);
  }
  const init = integrity ? { integrity: `sha256-${hexToBase64(meta.sha256)}` } : {};
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw await explainFetchFailure(url, name, meta, err);
  }
  if (!response.ok) throw new Error(`failed to fetch ${name} (${url}): HTTP ${response.status} ${response.statusText}`);
  return response;
}

async function explainFetchFailure(url, name, meta, err) {
  try {
    const retry = await fetch(url, { cache: "no-store" });
    if (!retry.ok) return new Error(`failed to fetch ${name} (${url}): HTTP ${retry.status} ${retry.statusText}`);
    const bytes = await retry.arrayBuffer();
    let sha = "";
    if (crypto?.subtle) {
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
      sha = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    }
    if (meta && (bytes.byteLength !== meta.bytes || (sha && sha !== meta.sha256))) {
      return new Error(
        `${name} (${url}) failed its integrity check: the manifest expects ${meta.bytes} bytes with sha256 ` +
          `${meta.sha256}, the server sent ${bytes.byteLength} bytes with sha256 ${sha || "?"}. The file is corrupt ` +
          `or stale (from another packaging run): re-deploy the whole bundle directory together`,
      );
    }
  } catch {
    // fall through to the original error
  }
  return new Error(`failed to fetch ${name} (${url}): ${err.message} (network error or integrity check failure)`);
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

async function load({ url: base, variant, integrity }) {
  const t0 = performance.now();
  const manifestUrl = new URL("manifest.json", base).href;
  const m = await fetchManifest(manifestUrl);
  checkManifest(m, manifestUrl);
  const moduleName = m.kernels?.modules?.[variant];
  if (!moduleName) {
    throw new Error(`bundle ${base} has no '${variant}' kernel build (has: ${Object.keys(m.kernels?.modules ?? {}).join(", ")})`);
  }

  // weights.bin and the kernel module download in parallel; the module compiles while it streams in.
  let compileMs = 0;
  const [weights, module] = await Promise.all([
    fetchFile(base, "weights.bin", m.files["weights.bin"], integrity).then((r) =>
      r.arrayBuffer().catch((err) => {
        throw new Error(`failed to download weights.bin (${r.url}): ${err.message}`);
      }),
    ),
    fetchFile(base, moduleName, m.files[moduleName], integrity).then(async (r) => {
      const tc = performance.now();
      try {
        return await compileModule(r);
      } catch (err) {
        throw new Error(`failed to compile ${moduleName} (${r.url}): ${err.message}`);
      } finally {
        compileMs = ms(tc);
      }
    }),
  ]);
  const fetchMs = ms(t0);
  if (weights.byteLength !== m.memory.weights_file_bytes) {
    throw new Error(`weights.bin has ${weights.byteLength} bytes, the manifest says ${m.memory.weights_file_bytes}; re-deploy the bundle`);
  }

  const ti = performance.now();
  const { pages, weights_offset } = m.memory;
  let memory;
  try {
    memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  } catch (err) {
    throw new Error(`could not allocate ${(pages * PAGE / 2 ** 20).toFixed(1)} MiB of WebAssembly memory: ${err.message}`);
  }
  let instance;
  try {
    instance = await WebAssembly.instantiate(module, { env: { memory } });
  } catch (err) {
    throw new Error(`could not instantiate ${moduleName}: ${err.message}`);
  }
  new Uint8Array(memory.buffer, weights_offset, weights.byteLength).set(new Uint8Array(weights));
  const exports = instance.exports;
  callAll(prepare(m.init, exports, "init"));
  state = { memory, inputs: m.inputs, outputs: m.outputs, calls: prepare(m.steps, exports, "steps") };
  return {
    model: m.model ?? {},
    files: m.files,
    inputs: m.inputs,
    outputs: m.outputs,
    timings: { fetchMs, compileMs, initMs: ms(ti) },
  };
}

// Resolve each step once: the export, its arguments as numbers, bound together.
function prepare(steps, exports, where) {
  return steps.map((step, i) => {
    const fn = exports[step.kernel];
    if (typeof fn !== "function") throw new Error(`${where}[${i}] calls kernel '${step.kernel}', which the module does not export`);
    const args = step.args.map((a) => (typeof a === "string" ? Number(a) : a));
    if (args.length !== fn.length) {
      throw new Error(`${where}[${i}] passes ${args.length} args to ${step.kernel}, which takes ${fn.length}`);
    }
    return { call: fn.bind(null, ...args), step, i };
  });
}

function callAll(calls) {
  for (const { call, step, i } of calls) {
    try {
      call();
    } catch (err) {
      const node = step.node ? `node '${step.node}' (${step.op})` : `an ${step.op || "init"} step`;
      throw new Error(`kernel ${step.kernel} trapped at ${node}, step ${i}: ${err.message}`);
    }
  }
}

function run(feeds) {
  if (!state) throw new Error("no model loaded");
  const { memory, inputs, outputs, calls } = state;
  for (const e of inputs) {
    const data = feeds[e.name];
    if (!data || data.byteLength !== e.bytes) throw new Error(`input '${e.name}' must be ${e.bytes} bytes`);
    new Uint8Array(memory.buffer, e.offset, e.bytes).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  callAll(calls);
  const result = {};
  for (const e of outputs) result[e.name] = memory.buffer.slice(e.offset, e.offset + e.bytes);
  return result;
}
