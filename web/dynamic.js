// Dynamic shapes (wasm_runtime/dynamic.py): a bundle planned for every value of its symbolic dims, whose plan is
// resolved per distinct input shape (DynamicPlans.planFor: bind the symbols, check the domain, place the arena,
// resolve the step arguments, write the params blocks). See web/README.md, "Dynamic shapes".
// Formulas are integers or [[coef, e0, e1, ...], ...]: sum of coef * prod(symbol_i ** e_i).

import { ITEM_BYTES, PAGE } from "./manifest.js";
import { prepare } from "./steps.js";

function evaluate(f, values) {
  if (typeof f === "number") return f;
  let total = 0;
  for (const t of f) {
    let term = t[0];
    for (let i = 0; i < values.length; i++) for (let k = 0; k < t[i + 1]; k++) term *= values[i];
    total += term;
  }
  return total;
}

// A formula for display: its variables are each symbol's size / step, so an input dim reads as the symbol
// (step * k) and other terms as (symbol/step).
export function showFormula(f, symbols, steps = symbols.map(() => 1)) {
  if (typeof f === "number") return f;
  if (f.length === 1) {
    const exps = f[0].slice(1);
    const i = exps.indexOf(1);
    if (i >= 0 && exps.every((e, k) => e === (k === i ? 1 : 0)) && f[0][0] === steps[i]) return symbols[i];
  }
  const name = (i) => (steps[i] > 1 ? `(${symbols[i]}/${steps[i]})` : symbols[i]);
  return f.map((t) => [t[0] !== 1 ? t[0] : null, ...symbols.map((s, i) => (t[i + 1] ? (t[i + 1] > 1 ? `${name(i)}^${t[i + 1]}` : name(i)) : null))]
    .filter((x) => x !== null).join("*") || String(t[0])).join(" + ");
}

// greedy by size, the planner's placement (place() in wasm_runtime/planner.py), on this shape's sizes; the two
// must place alike: tests/data/arena_placement.json
export function place(sizes, lives) {
  const up = (n) => Math.ceil(n / 64) * 64;
  const order = sizes.map((_, k) => k).sort((a, b) => sizes[b] - sizes[a] || lives[a][0] - lives[b][0] || a - b);
  const offsets = new Array(sizes.length).fill(0);
  const placed = [];
  let top = 0;
  for (const k of order) {
    const [first, last] = lives[k];
    const live = placed.filter((p) => lives[p][0] <= last && first <= lives[p][1]).sort((a, b) => offsets[a] - offsets[b]);
    let offset = 0;
    for (const p of live) {
      if (offset + sizes[k] <= offsets[p]) break;
      offset = Math.max(offset, up(offsets[p] + sizes[p]));
    }
    offsets[k] = offset;
    placed.push(k);
    top = Math.max(top, offset + sizes[k]);
  }
  return { offsets, bytes: up(top) };
}

const PARAM_ARRAYS = { int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array, int8: Int8Array, uint32: Uint32Array, float32: Float32Array, float64: Float64Array };

/** The plans of a dynamic bundle on one wasm instance, one per distinct input shape, made at its first run. */
export class DynamicPlans {
  constructor(manifest, exports, memory, pool) {
    this.manifest = manifest;
    this.exports = exports;
    this.memory = memory;
    this.pool = pool;
    this.plans = new Map();
    this.kernelIndex = new Map(manifest.kernels.exports.map((k, i) => [k, i]));
  }

  /** {inputs, outputs, calls} for inputs of these shapes ({name: dims}); grows the memory to fit and writes the
   * plan's params blocks, so the plan can run now. */
  planFor(shapes) {
    const m = this.manifest;
    const d = m.dynamic;
    const key = JSON.stringify(m.inputs.map((e) => shapes?.[e.name] ?? null));
    let plan = this.plans.get(key);
    if (!plan) {
      // each symbol takes multiples of its step from its minimum (wasm_runtime/domain.py); the formulas are
      // polynomials in size / step
      const values = d.symbols.map((sym) => {
        const [name, axis] = d.bind[sym];
        const v = shapes?.[name]?.[axis];
        const { step, min } = d.domain?.[sym] ?? { step: 1, min: 1 };
        if (!Number.isSafeInteger(v) || v < min || v % step !== 0) {
          const multiple = step > 1 ? `a multiple of ${step} and ` : "";
          throw new Error(`input '${name}' dim ${axis} ('${sym}') must be ${multiple}at least ${min}, got ${v} (the sizes this bundle was planned for)`);
        }
        return v / step;
      });
      const sizes = d.arena.map((a) => evaluate(a.size, values));
      const { offsets, bytes } = place(sizes, d.arena.map((a) => [a.first, a.last]));
      const base = m.memory.arena_offset;
      const tensor = (e) => {
        const shape = e.shape.map((f) => evaluate(f, values));
        const offset = Number.isInteger(e.arena) ? base + offsets[e.arena] : e.offset;
        return { name: e.name, dtype: e.dtype, shape, offset, bytes: shape.reduce((a, b) => a * b, 1) * ITEM_BYTES[e.dtype] };
      };
      const inputs = m.inputs.map(tensor);
      const where = d.symbols.map((s, i) => `${s}=${values[i] * (d.domain?.[s]?.step ?? 1)}`).join(", ");
      for (const e of inputs) {
        const given = shapes?.[e.name] ?? [];
        if (given.length !== e.shape.length || given.some((v, i) => v !== e.shape[i])) {
          throw new Error(`input '${e.name}' has shape [${given.join(", ")}]; with ${where} (bound by the inputs) it must be [${e.shape.join(", ")}]`);
        }
      }
      const arg = (a) => {
        if (typeof a !== "object" || a === null) return a;
        if ("a" in a) return base + offsets[a.a] + evaluate(a.o, values);
        if ("w" in a) return a.w + evaluate(a.o, values);
        return evaluate(a.p, values);
      };
      const steps = m.steps.map((s) => {
        const out = { kernel: s.kernel, args: s.args.map(arg), node: s.node, op: s.op };
        if (s.when) out.when = s.when.map(([a, value]) => [arg(a), value]);
        if (s.fail) out.fail = s.fail;
        if (s.split) {
          out.split = { units: evaluate(s.split.units, values), count: s.split.count, align: s.split.align,
                        deltas: s.split.deltas.map(([i, f]) => [i, evaluate(f, values)]) };
        }
        return out;
      });
      const params = d.params.map((p) => {
        const Ctor = PARAM_ARRAYS[p.dtype];
        if (!Ctor) throw new Error(`unsupported parameter dtype ${p.dtype}; re-package the model`);
        const vals = p.values.map((f) => evaluate(f, values));
        return { offset: p.offset, data: Ctor === BigInt64Array ? BigInt64Array.from(vals, BigInt) : Ctor.from(vals) };
      });
      plan = { inputs, outputs: m.outputs.map(tensor), calls: prepare(steps, this.exports, "steps", this.pool, this.kernelIndex), params, memoryBytes: base + bytes };
      this.plans.set(key, plan);
    }
    const need = Math.ceil(plan.memoryBytes / PAGE);
    const have = this.memory.buffer.byteLength / PAGE;
    if (need > have) {
      try {
        this.memory.grow(need - have);
      } catch (err) {
        throw new Error(`these input shapes need ${(plan.memoryBytes / 2 ** 20).toFixed(0)} MiB of WebAssembly memory: ${err.message}`);
      }
    }
    for (const p of plan.params) new Uint8Array(this.memory.buffer, p.offset, p.data.byteLength).set(new Uint8Array(p.data.buffer));
    return plan;
  }
}
