// A/B of several bundles of one model in one page (benchmarks/bundle_ab.py drives it).
//
// Query: url=<bundle dir> (repeated, one per bundle), feeds=<feeds.json>, threads=T, variant=auto|simd|relaxed,
//        rounds=R, runs=N (runs per turn; the turn's median is kept), warmupMs=M (every session runs in turn
//        until each has run for M ms, so V8's optimized tier is in), seed=S (the order of turns per round),
//        cold=1 (only create the first bundle's session and run it once: session-ready and first-run times),
//        profile=1 (every run also times each step, session.run's profile option).
// Result (the promise window.__abDone): {createMs[], firstRunMs[], maxDiff[] (max |output - bundle 0's| per
// bundle, first output), times[bundle][round] (the turn's median, ms), mins[bundle][round] (its fastest run)}
// steps[bundle] ({kernel, min} per step: its fastest time over all runs, with profile=1) or {error}.

import { InferenceSession, Tensor } from "/runtime/index.js";

const q = new URLSearchParams(location.search);
const opt = {
  urls: q.getAll("url"),
  feeds: q.get("feeds"),
  threads: Number(q.get("threads") ?? 1),
  variant: q.get("variant") ?? "auto",
  rounds: Number(q.get("rounds") ?? 20),
  runs: Number(q.get("runs") ?? 5),
  warmupMs: Number(q.get("warmupMs") ?? 3000),
  seed: Number(q.get("seed") ?? 1),
  cold: q.get("cold") === "1",
  profile: q.get("profile") === "1",
};

const ARRAYS = { float32: Float32Array, int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array, int8: Int8Array };

async function loadFeeds() {
  const list = await (await fetch(opt.feeds)).json();
  const feeds = {};
  for (const { name, dtype, shape, url } of list) {
    const Arr = ARRAYS[dtype];
    if (!Arr) throw new Error(`feed ${name}: dtype ${dtype} not handled by ab.js`);
    feeds[name] = new Tensor(dtype, new Arr(await (await fetch(url)).arrayBuffer()), shape);
  }
  return feeds;
}

// a small seeded generator (mulberry32), so the order of turns is reproducible
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const feedsP = loadFeeds();
  const urls = opt.cold ? opt.urls.slice(0, 1) : opt.urls;
  const sessions = [];
  const createMs = [];
  for (const url of urls) {
    const t0 = performance.now();
    sessions.push(await InferenceSession.create(url, { numThreads: opt.threads, wasmVariant: opt.variant }));
    createMs.push(performance.now() - t0);
  }
  const feeds = await feedsP;
  const outName = sessions[0].outputNames[0];
  const firstRunMs = [];
  const outputs = [];
  for (const s of sessions) {
    const t0 = performance.now();
    outputs.push((await s.run(feeds))[outName].data);
    firstRunMs.push(performance.now() - t0);
  }
  const maxDiff = outputs.map((o) => {
    let d = 0;
    for (let i = 0; i < o.length; i++) d = Math.max(d, Math.abs(Number(o[i]) - Number(outputs[0][i])));
    return d;
  });
  const info = { createMs, firstRunMs, maxDiff, threads: sessions.map((s) => s.threads), variant: sessions[0].variant };
  if (opt.cold) return info;
  const ran = sessions.map(() => 0);
  while (ran.some((ms) => ms < opt.warmupMs)) {
    for (let i = 0; i < sessions.length; i++) {
      const t0 = performance.now();
      await sessions[i].run(feeds);
      ran[i] += performance.now() - t0;
    }
  }
  const random = rng(opt.seed);
  const times = sessions.map(() => []);
  const mins = sessions.map(() => []);
  const steps = sessions.map(() => null);
  for (let r = 0; r < opt.rounds; r++) {
    const order = sessions.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (const i of order) {
      const turn = [];
      for (let k = 0; k < opt.runs; k++) {
        const t0 = performance.now();
        await sessions[i].run(feeds, { profile: opt.profile });
        turn.push(performance.now() - t0);
        if (opt.profile) {
          const prof = sessions[i].profile;
          steps[i] ??= prof.map(({ kernel }) => ({ kernel, min: Infinity }));
          prof.forEach(({ ms }, s) => (steps[i][s].min = Math.min(steps[i][s].min, ms)));
        }
      }
      times[i].push(median(turn));
      mins[i].push(Math.min(...turn));
    }
  }
  return { ...info, times, mins, steps };
}

window.__abDone = main().then(
  (result) => {
    document.getElementById("out").textContent = JSON.stringify(result, null, 1);
    return result;
  },
  (err) => {
    const error = String(err?.stack ?? err);
    document.getElementById("out").textContent = error;
    return { error };
  },
);
