// The bundle's manifest: fetched (checked against its pin or its parent's hash of it), parsed, and checked before
// anything of the bundle runs (checkManifest: the rules of wasm_runtime/manifest_check.py).

import { checkIntegrity } from "./integrity.js";

export const FORMAT = "wasm-runtime-bundle";
export const FORMAT_VERSION = 1;
export const PAGE = 65536;
export const ITEM_BYTES = { float32: 4, float64: 8, float16: 2, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8, bool: 1 };

// `expected` ({bytes, sha256}): the manifest of a wasm part is checked against its parent's hash of it;
// `pin` ("sha256-<base64>", create()'s integrity option): the page pins the manifest itself
export async function fetchManifest(url, expected = null, pin = null) {
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
  let text;
  if (expected || pin) {
    const bytes = await response.arrayBuffer();
    if (expected) await checkIntegrity(url.split("/").slice(-2).join("/"), url, expected, bytes);
    if (pin) {
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
      const got = `sha256-${btoa(String.fromCharCode(...digest))}`;
      if (got !== pin) {
        throw new Error(
          `${url}: manifest.json does not match the integrity pin (pinned ${pin}, got ${got}); the bundle was changed ` +
            "or re-packaged: pin the new manifest or deploy the one pinned",
        );
      }
    }
    text = new TextDecoder().decode(bytes);
  } else {
    text = await response.text();
  }
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

export function checkManifest(m, url) {
  const bad = (what) => new Error(`model manifest ${url}: ${what}; re-package the model`);
  const isInt = (v) => Number.isSafeInteger(v) && v >= 0;
  const mem = m.memory ?? {};
  const dynamic = m.dynamic !== undefined;
  const memoryKeys = ["pages", "weights_offset", "weights_file_bytes", "weights_bytes", "arena_offset"];
  for (const key of dynamic ? memoryKeys : [...memoryKeys, "arena_bytes"]) {
    if (!isInt(mem[key])) throw bad(`memory.${key} must be a non-negative integer (got ${JSON.stringify(mem[key])})`);
  }
  const size = mem.pages * PAGE;
  if (mem.pages < 1 || mem.pages > 65536) throw bad(`memory.pages ${mem.pages} is out of range (1..65536)`);
  if (mem.weights_offset + mem.weights_bytes > size || (!dynamic && mem.arena_offset + mem.arena_bytes > size)) {
    throw bad(`weights or arena end past the ${mem.pages}-page memory`);
  }
  if (mem.weights_file_bytes > mem.weights_bytes || mem.weights_offset + mem.weights_bytes > mem.arena_offset) {
    throw bad("the weights region overlaps the arena (memory.weights_offset/weights_bytes/arena_offset)");
  }
  // the same rules, in the same words, as wasm_runtime/manifest_check.py (tests/data/bad_manifests.json)
  const plain = (name) => typeof name === "string" && !["", ".", ".."].includes(name) && !/[/\\]/.test(name);
  if (!m.files || typeof m.files !== "object" || !Object.keys(m.files).length) throw bad("files must be an object naming the bundle's files");
  for (const [name, meta] of Object.entries(m.files)) {
    if (!plain(name)) throw bad(`file name '${name}' points outside the bundle`);
    if (!isInt(meta?.bytes) || typeof meta?.sha256 !== "string") throw bad(`files['${name}'] needs bytes and sha256`);
  }
  if (!m.files["weights.bin"]) throw bad("files has no entry for weights.bin");
  if (m.files["weights.bin"].bytes !== mem.weights_file_bytes) throw bad("weights.bin size disagrees with memory.weights_file_bytes");
  const modules = m.kernels?.modules;
  if (!modules || typeof modules !== "object" || !Object.keys(modules).length) throw bad("kernels.modules must name the kernel builds");
  for (const [variant, name] of Object.entries(modules)) {
    if (!plain(name) || !(name in m.files)) throw bad(`kernel module '${variant}' ('${name}') is not a file of the bundle`);
  }
  if (!Array.isArray(m.init) || !Array.isArray(m.steps)) throw bad("init and steps must be lists");
  for (const key of ["steps", "init"]) {
    if (m.stats && key in m.stats && m.stats[key] !== m[key].length) {
      throw bad(`${key} holds ${m[key].length} entries, the packager wrote ${m.stats[key]}`);
    }
  }
  if (dynamic) {
    const d = m.dynamic;
    const isFormula = (f) => Number.isSafeInteger(f) || (Array.isArray(f) && f.every((t) => Array.isArray(t) && t.length === d.symbols.length + 1 && t.every(Number.isSafeInteger)));
    if (!Array.isArray(d.symbols) || !d.symbols.every((s) => Array.isArray(d.bind?.[s]))) throw bad("dynamic.symbols/bind are malformed");
    if (!Array.isArray(d.arena) || !d.arena.every((a) => isFormula(a.size) && Number.isInteger(a.first) && Number.isInteger(a.last))) {
      throw bad("dynamic.arena is malformed");
    }
    for (const e of [...(m.inputs ?? []), ...(m.outputs ?? [])]) {
      if (!(e.dtype in ITEM_BYTES) || !Array.isArray(e.shape) || !e.shape.every(isFormula)) throw bad(`tensor '${e.name}' is malformed`);
      if (!(Number.isInteger(e.arena) && e.arena < d.arena.length) && !isInt(e.offset)) throw bad(`tensor '${e.name}' has no storage`);
    }
    return;
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
}
