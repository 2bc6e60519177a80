// Demo page: load a bundle, classify an image, show timings. Query: ?model=NAME (default mobilenetv2;
// empty = only show the picker), &variant=auto|simd|relaxed.
// Tests read window.demoResult and wait for <body data-state="done"> (or "error").
import { InferenceSession, Tensor } from "/runtime/index.js";

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];
const BENCH_RUNS = 10;

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const modelName = params.has("model") ? params.get("model") : "mobilenetv2";
const variant = params.get("variant") || "auto";

let session = null;
let imageInput = null; // {width, height} when the model takes one [1, 3, H, W] float32 image
let busy = Promise.resolve();

const setState = (state, text) => {
  document.body.dataset.state = state;
  if (text !== undefined) $("status").textContent = text;
};
const fmtMs = (x) => `${x.toFixed(1)} ms`;
const fmtBytes = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} MB` : `${(n / 1e3).toFixed(1)} kB`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function showError(err) {
  console.error(err);
  $("error").hidden = false;
  $("error").textContent = String(err?.message ?? err);
  setState("error", "Something went wrong:");
}

// Add a row to the session table, or update the row with this label.
function stat(label, value) {
  const body = $("stats").tBodies[0];
  let row = [...body.rows].find((r) => r.cells[0].textContent === label);
  if (!row) {
    row = body.insertRow();
    const th = document.createElement("th");
    th.textContent = label;
    row.append(th, document.createElement("td"));
  }
  row.cells[1].textContent = value;
}

// --- input image -------------------------------------------------------------------------------------

// The pixels are read back after each draw: ask for a CPU-backed canvas.
const ctx2d = (canvas) => canvas.getContext("2d", { willReadFrequently: true });

function drawSynthetic(canvas) {
  const ctx = ctx2d(canvas);
  const { width: w, height: h } = canvas;
  const sky = ctx.createLinearGradient(0, 0, 0, h);
  sky.addColorStop(0, "#3a7bd5");
  sky.addColorStop(0.65, "#f6d365");
  ctx.fillStyle = sky;
  ctx.fillRect(0, 0, w, h);
  ctx.fillStyle = "#fff3b0";
  ctx.beginPath();
  ctx.arc(w * 0.72, h * 0.3, w * 0.11, 0, 2 * Math.PI);
  ctx.fill();
  ctx.fillStyle = "#2e8b57";
  ctx.beginPath();
  ctx.ellipse(w * 0.3, h * 1.05, w * 0.75, h * 0.38, 0, 0, 2 * Math.PI);
  ctx.fill();
  ctx.fillStyle = "#c0392b";
  ctx.fillRect(w * 0.18, h * 0.52, w * 0.26, h * 0.2);
  ctx.fillStyle = "#5d4037";
  ctx.beginPath();
  ctx.moveTo(w * 0.14, h * 0.53);
  ctx.lineTo(w * 0.31, h * 0.38);
  ctx.lineTo(w * 0.48, h * 0.53);
  ctx.fill();
  ctx.strokeStyle = "#1b1b1b";
  ctx.lineWidth = 3;
  ctx.strokeRect(w * 0.27, h * 0.6, w * 0.08, h * 0.12);
}

async function drawFile(canvas, file) {
  const bitmap = await createImageBitmap(file);
  const ctx = ctx2d(canvas);
  // Center crop to the canvas' aspect ratio, then resize.
  const scale = Math.max(canvas.width / bitmap.width, canvas.height / bitmap.height);
  const sw = canvas.width / scale;
  const sh = canvas.height / scale;
  ctx.drawImage(bitmap, (bitmap.width - sw) / 2, (bitmap.height - sh) / 2, sw, sh, 0, 0, canvas.width, canvas.height);
  bitmap.close();
}

function canvasTensor(canvas) {
  const { width, height } = canvas;
  const rgba = ctx2d(canvas).getImageData(0, 0, width, height).data;
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) data[c * plane + i] = (rgba[4 * i + c] / 255 - MEAN[c]) / STD[c];
  }
  return new Tensor("float32", data, [1, 3, height, width]);
}

// Feeds for the current picture; models that do not take one image get a fixed pseudo-random input.
function makeFeeds() {
  const feeds = {};
  for (const { name, dtype, shape } of session.inputMetadata) {
    if (imageInput && name === session.inputNames[0]) {
      feeds[name] = canvasTensor($("canvas"));
      continue;
    }
    const size = shape.reduce((a, b) => a * b, 1);
    let seed = 1;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
    const values = Array.from({ length: size }, () => (dtype.startsWith("float") ? rand() : 0));
    feeds[name] = new Tensor(dtype, values, shape);
  }
  return feeds;
}

// --- results -----------------------------------------------------------------------------------------

function top5(logits) {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, Number(v));
  const exp = Array.from(logits, (v) => Math.exp(Number(v) - max));
  const sum = exp.reduce((a, b) => a + b, 0);
  return exp
    .map((e, index) => ({ index, score: e / sum }))
    .sort((a, b) => b.score - a.score)
    .slice(0, 5);
}

function showTop5(list) {
  $("top5").replaceChildren(
    ...list.map(({ index, score }) => {
      const li = document.createElement("li");
      li.innerHTML = `<span class="cls">class ${index}</span><span class="bar"><span></span></span><span class="pct"></span>`;
      li.querySelector(".bar > span").style.width = `${(score * 100).toFixed(1)}%`;
      li.querySelector(".pct").textContent = `${(score * 100).toFixed(2)}%`;
      return li;
    }),
  );
}

async function classify() {
  const t0 = performance.now();
  const outputs = await session.run(makeFeeds());
  const ms = performance.now() - t0;
  const list = top5(outputs[session.outputNames[0]].data);
  showTop5(list);
  return { ms, list };
}

async function benchmark() {
  const runsMs = [];
  for (let i = 0; i < BENCH_RUNS; i++) runsMs.push((await classify()).ms);
  return runsMs;
}

// --- page --------------------------------------------------------------------------------------------

async function fillPicker() {
  $("variant-select").value = variant;
  const select = $("model-select");
  let names = [];
  try {
    names = await (await fetch("/models/index.json")).json();
  } catch {
    // The picker is optional; the model named in the URL still loads.
  }
  if (modelName && !names.includes(modelName)) names = [modelName, ...names];
  if (!modelName) select.append(new Option("choose a model…", ""));
  for (const name of names) select.append(new Option(name, name, false, name === modelName));
}

async function main() {
  fillPicker();
  if (!modelName) {
    document.querySelector("main").hidden = true;
    setState("idle", "Choose a model and press Load.");
    return;
  }
  drawSynthetic($("canvas"));
  setState("loading", `Loading ${modelName}…`);
  session = await InferenceSession.create(`/models/${encodeURIComponent(modelName)}/`, { wasmVariant: variant });
  const [input] = session.inputMetadata;
  const s = input.shape;
  if (session.inputMetadata.length === 1 && input.dtype === "float32" && s.length === 4 && s[0] === 1 && s[1] === 3) {
    imageInput = { height: s[2], width: s[3] };
    $("canvas").width = s[3];
    $("canvas").height = s[2];
    drawSynthetic($("canvas"));
  } else {
    $("canvas").hidden = true;
  }

  const files = session.files;
  const total = Object.values(files).reduce((a, f) => a + f.bytes, 0);
  const downloaded = ["weights.bin", `kernels-${session.variant}.wasm`].filter((f) => f in files);
  const { fetchMs, compileMs, initMs, createMs } = session.timings;
  const recorded = session.model.name;
  stat("Model", recorded && recorded !== modelName ? `${modelName} (graph ${recorded})` : modelName);
  stat("Inputs → outputs", `${session.inputMetadata.map((m) => `${m.name} ${m.dtype}[${m.shape}]`).join(", ")} → ${session.outputMetadata.map((m) => `${m.name} ${m.dtype}[${m.shape}]`).join(", ")}`);
  stat("Backend", `${session.backend} / ${session.variant === "relaxed" ? "relaxed SIMD (FMA)" : "SIMD128"} kernels, ${session.threads} thread`);
  stat("crossOriginIsolated", String(session.crossOriginIsolated));
  stat("Bundle files", Object.entries(files).map(([name, f]) => `${name} ${fmtBytes(f.bytes)}`).join(", "));
  stat("Downloaded", `${fmtBytes(downloaded.reduce((a, f) => a + files[f].bytes, 0))} (bundle total ${fmtBytes(total)})`);
  stat("Session create", `${fmtMs(createMs)} (fetch ${fmtMs(fetchMs)}, compile ${fmtMs(compileMs)}, init ${fmtMs(initMs)})`);

  setState("running", "Running…");
  const first = await classify();
  stat("First run", fmtMs(first.ms));
  const runsMs = await benchmark();
  const latencyMs = median(runsMs);
  stat(`Median of ${BENCH_RUNS} runs`, fmtMs(latencyMs));
  const result = (window.demoResult = {
    model: modelName,
    backend: session.backend,
    variant: session.variant,
    crossOriginIsolated: session.crossOriginIsolated,
    threads: session.threads,
    files,
    timings: session.timings,
    createMs,
    firstRunMs: first.ms,
    runsMs,
    latencyMs,
    top5: first.list,
  });
  setState("done", `Done: ${modelName} classified in ${fmtMs(latencyMs)} (median).`);
  $("bench").disabled = false;
  $("file").disabled = $("synthetic").disabled = !imageInput;

  const rerun = (label, work) => {
    busy = busy.then(async () => {
      setState("running", `${label}…`);
      try {
        await work();
        setState("done", `Done: ${label.toLowerCase()}.`);
      } catch (err) {
        showError(err);
      }
    });
  };
  const picture = async (draw) => {
    await draw();
    const { ms, list } = await classify();
    Object.assign(result, { top5: list, lastRunMs: ms });
    stat("Last picture", fmtMs(ms));
  };
  $("file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (file) rerun("Classifying your picture", () => picture(() => drawFile($("canvas"), file)));
  });
  $("synthetic").addEventListener("click", () => rerun("Classifying the built-in image", () => picture(() => drawSynthetic($("canvas")))));
  $("bench").addEventListener("click", () =>
    rerun("Benchmarking", async () => {
      const runs = await benchmark();
      Object.assign(result, { runsMs: runs, latencyMs: median(runs) });
      stat(`Median of ${BENCH_RUNS} runs`, fmtMs(result.latencyMs));
    }),
  );
}

main().catch(showError);
