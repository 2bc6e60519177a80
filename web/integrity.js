// Bundle files and their integrity: every file is fetched with a clear error, and its size and SHA-256 are
// compared with the manifest's `files` entry, so a corrupt or stale file rejects the session instead of producing
// wrong numbers. The hasher is a short-lived worker (this runtime's worker.js, message `sha256`).

// Fetch one bundle file. Integrity is checked with crypto.subtle on the downloaded bytes rather than with
// fetch's Subresource Integrity: the same guarantee, measured ~20x faster in Chromium (SRI took ~400 ms to
// hash a 14 MB weights file, crypto.subtle 20 ms), and the error can say exactly what is wrong.
export async function fetchFile(base, name) {
  const url = new URL(name, base).href;
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`failed to fetch ${name} (${url}): ${err.message} (network error — is the server running?)`);
  }
  if (!response.ok) throw new Error(`failed to fetch ${name} (${url}): HTTP ${response.status} ${response.statusText}`);
  return response;
}

export async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function checkIntegrity(name, url, meta, bytes) {
  return verifyFile(name, url, meta, bytes.byteLength, () => sha256(bytes));
}

// hash(): a promise of the file's sha256
export async function verifyFile(name, url, meta, size, hash) {
  if (!/^[0-9a-f]{64}$/.test(meta?.sha256 ?? "")) {
    throw new Error(`manifest.files has no sha256 for ${name}, so it cannot be checked; re-package the model (or pass integrity: false)`);
  }
  const sha = await hash();
  if (size !== meta.bytes || sha !== meta.sha256) {
    throw new Error(
      `${name} (${url}) failed its integrity check: the manifest expects ${meta.bytes} bytes with sha256 ` +
        `${meta.sha256}, the server sent ${size} bytes with sha256 ${sha}. The file is corrupt ` +
        `or stale (from another packaging run): re-deploy the whole bundle directory together`,
    );
  }
}

/** A worker that hashes one Blob (hashElsewhere) and then ends; it starts loading while the files download. */
export function spawnHasher() {
  return new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "wasm-runtime integrity" });
}

// SHA-256 of a large Blob in a short-lived worker (`hasher`, spawnHasher), so that hashing (about
// 70 ms for ResNet-18's 47 MB here) runs on another core while this thread copies the weights in and runs
// the init steps: crypto.subtle.digest held this thread for all of it. Hashes here if that worker fails.
export function hashElsewhere(hasher, blob) {
  return new Promise((resolve, reject) => {
    hasher.onmessage = ({ data }) => (data.error ? reject(new Error(data.error)) : resolve(data.result));
    hasher.onerror = (e) => {
      e.preventDefault();
      reject(new Error(e.message));
    };
    hasher.postMessage({ op: "sha256", blob });
  }).catch(async () => sha256(await blob.arrayBuffer()));
}
