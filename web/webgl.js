// WebGL2 executor for the `webgl` section of a bundle manifest (see README.md, "WebGL2 plan").
// Runs inside the session's worker on an OffscreenCanvas context. Every tensor is an RGBA32F texture in the
// flat4 layout (element i = component i & 3 of texel i >> 2, texel t at (t % width, t / width)); every
// step draws one full-screen triangle into its output texture with the node's precompiled program.
//
// Mixed plans (some nodes on wasm): the worker draws the GPU segments' step ranges with execute(from, to)
// and moves tensors with readTexture()/uploadFrom() between them (gpu.js, MixedSession).
//
// new WebGLPlan(section).init(weights) compiles and links every program (in parallel when the driver offers
// KHR_parallel_shader_compile), draws every step once into a 1x1 viewport so the driver has finished its lazy
// work (SwiftShader JITs at the first draw) before the first real run(), and then uploads the constants
// (`weights` may be a promise: the download overlaps all that).

const VERTEX = `#version 300 es
void main() {
  vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
  gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
`;

/** Why this context cannot run plans, or "" if it can. */
export function webglUnavailableReason() {
  if (typeof OffscreenCanvas !== "function") return "this browser has no OffscreenCanvas in workers, which the WebGL backend needs";
  let gl;
  try {
    gl = new OffscreenCanvas(1, 1).getContext("webgl2");
  } catch {
    gl = null;
  }
  if (!gl) return "WebGL2 is not available in this browser (or is disabled)";
  const reason = gl.getExtension("EXT_color_buffer_float") ? "" : "this WebGL2 implementation cannot render to float32 textures (no EXT_color_buffer_float)";
  gl.getExtension("WEBGL_lose_context")?.loseContext();
  return reason;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class WebGLPlan {
  constructor(section, weights = null) {
    this.section = section;
    const canvas = new OffscreenCanvas(1, 1);
    this.lost = false;
    canvas.addEventListener("webglcontextlost", (e) => {
      e.preventDefault();
      this.lost = true;
    });
    const gl = canvas.getContext("webgl2", { antialias: false, depth: false, stencil: false, powerPreference: "high-performance" });
    if (!gl) throw new Error("WebGL backend: WebGL2 is not available in this browser (or is disabled)");
    if (!gl.getExtension("EXT_color_buffer_float")) {
      throw new Error("WebGL backend: this WebGL2 implementation cannot render to float32 textures (no EXT_color_buffer_float)");
    }
    const maxSize = gl.getParameter(gl.MAX_TEXTURE_SIZE);
    const widest = Math.max(...section.textures.flat());
    if (widest > maxSize) throw new Error(`WebGL backend: the plan needs ${widest}-texel textures, this GPU allows ${maxSize}`);
    this.canvas = canvas;
    this.gl = gl;
    this.loseExt = gl.getExtension("WEBGL_lose_context");
    this.parallel = gl.getExtension("KHR_parallel_shader_compile");
    this.weights = weights;
  }

  /** weights: the bytes of webgl-weights.bin, or a promise of them (awaited only after the warm-up, so a
   *  download overlaps the shader compilation and JIT). */
  async init(weights = this.weights) {
    const { gl, section } = this;
    const t0 = performance.now();
    this.textures = section.textures.map(([w, h]) => {
      const tex = gl.createTexture();
      gl.bindTexture(gl.TEXTURE_2D, tex);
      gl.texStorage2D(gl.TEXTURE_2D, 1, gl.RGBA32F, w, h);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
      return { tex, w, h, fbo: null };
    });
    this.weights = null;
    this.vao = gl.createVertexArray();

    // compile everything first, check afterwards: with KHR_parallel_shader_compile the driver works on all
    // programs at once while we poll
    const tc = performance.now();
    const vs = this.shader(gl.VERTEX_SHADER, VERTEX);
    const programs = section.programs.map((p) => {
      const fs = this.shader(gl.FRAGMENT_SHADER, p.source);
      const prog = gl.createProgram();
      gl.attachShader(prog, vs);
      gl.attachShader(prog, fs);
      gl.linkProgram(prog);
      return { prog, fs, inputs: p.inputs };
    });
    if (this.parallel) {
      while (!programs.every(({ prog }) => gl.getProgramParameter(prog, this.parallel.COMPLETION_STATUS_KHR))) await sleep(2);
    }
    this.check("shader compilation");
    for (const [k, p] of programs.entries()) {
      if (!gl.getProgramParameter(p.prog, gl.LINK_STATUS)) {
        const log = (gl.getShaderInfoLog(p.fs) || gl.getProgramInfoLog(p.prog) || "no log").trim();
        const stage = gl.getShaderParameter(p.fs, gl.COMPILE_STATUS) ? "link" : "compile";
        throw new Error(`WebGL backend: ${this.nodeOf(k)}: its shader failed to ${stage}: ${log}`);
      }
      gl.useProgram(p.prog);
      for (let i = 0; i < p.inputs; i++) gl.uniform1i(gl.getUniformLocation(p.prog, `t${i}`), i);
    }
    this.programs = programs.map((p) => p.prog);
    const compileMs = performance.now() - tc;
    this.mrt = new Map(); // step index -> framebuffer of its several outputs (draw buffers 0..n-1)
    for (const [k, s] of section.steps.entries()) {
      const t = this.textures[s.output];
      if (s.outputs) {
        const fbo = gl.createFramebuffer();
        gl.bindFramebuffer(gl.FRAMEBUFFER, fbo);
        s.outputs.forEach((o, j) => gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0 + j, gl.TEXTURE_2D, this.textures[o].tex, 0));
        gl.drawBuffers(s.outputs.map((_, j) => gl.COLOR_ATTACHMENT0 + j));
        const status = gl.checkFramebufferStatus(gl.FRAMEBUFFER);
        if (status !== gl.FRAMEBUFFER_COMPLETE) {
          throw new Error(`WebGL backend: cannot render to ${s.outputs.length} ${t.w}x${t.h} RGBA32F textures at once (framebuffer status 0x${status.toString(16)})`);
        }
        this.mrt.set(k, fbo);
        continue;
      }
      if (!t.fbo) {
        t.fbo = gl.createFramebuffer();
        gl.bindFramebuffer(gl.FRAMEBUFFER, t.fbo);
        gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, t.tex, 0);
        const status = gl.checkFramebufferStatus(gl.FRAMEBUFFER);
        if (status !== gl.FRAMEBUFFER_COMPLETE) {
          throw new Error(`WebGL backend: cannot render to a ${t.w}x${t.h} RGBA32F texture (framebuffer status 0x${status.toString(16)})`);
        }
      }
    }
    for (const o of section.outputs) this.framebuffer(o.texture);
    this.staging = new Map(); // padded upload buffers per input
    // warm-up: every step drawn once into a 1x1 viewport makes the driver finish whatever it deferred to the
    // first draw (SwiftShader JITs each program then, ANGLE initializes the textures) for a fraction of a run.
    // The first draw of each program is where a driver gives up on a shader (SwiftShader lost the context on a
    // 119 KB one): each is waited for and the context checked after it, so the error names its node.
    const tw = performance.now();
    const drawn = new Set();
    for (let k = 0; k < section.steps.length; k++) {
      this.execute(k, k + 1, true);
      const { program } = section.steps[k];
      if (drawn.has(program)) continue;
      drawn.add(program);
      await this.settle(k);
    }
    const last = section.outputs[0] ?? { texture: section.steps.at(-1).output, elements: 1 };
    this.read(last);
    const warmupMs = performance.now() - tw;
    const tu = performance.now();
    const bytes = await weights;
    const waitMs = performance.now() - tu;
    for (const c of section.constants) this.upload(c.texture, new Float32Array(bytes, c.offset, c.elements));
    // the uploads are staged until a draw reads them: one more 1x1 pass (no JIT left) flushes them now
    this.execute(0, section.steps.length, true);
    this.read(last);
    this.check("create()");
    return {
      compileMs: r2(compileMs),
      warmupMs: r2(warmupMs),
      warmedPrograms: drawn.size, // each drawn (and its driver's deferred work done) before create() resolves
      weightsWaitMs: r2(waitMs),
      initMs: r2(performance.now() - t0),
    };
  }

  /** "node 'name' (Op)" of the first step running program k. */
  nodeOf(k) {
    const step = this.section.steps.find((s) => s.program === k);
    return step ? `node '${step.node}' (${step.op})` : `program ${k}`;
  }

  /** Wait until step k has been drawn (read one texel of its output), let the browser deliver a context loss
   *  (a task), and throw naming the step's node if the context was lost or GL reports an error. */
  async settle(k) {
    const { gl } = this;
    const step = this.section.steps[k];
    gl.bindFramebuffer(gl.FRAMEBUFFER, step.outputs ? this.mrt.get(k) : this.textures[step.output].fbo);
    gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.FLOAT, this.texel ?? (this.texel = new Float32Array(4)));
    await new Promise((resolve) => {
      const channel = new MessageChannel(); // a task without setTimeout's clamping
      channel.port1.onmessage = resolve;
      channel.port2.postMessage(null);
    });
    const where = `node '${step.node}' (${step.op}), at the first draw of its shader`;
    if (this.lost || gl.isContextLost()) {
      this.lost = true;
      throw new Error(`WebGL backend: the WebGL context was lost during create() at ${where} (CONTEXT_LOST_WEBGL)`);
    }
    const error = gl.getError();
    if (error !== gl.NO_ERROR) throw new Error(`WebGL backend: GL error ${glErrorName(gl, error)} during create() at ${where}`);
  }

  shader(type, source) {
    const { gl } = this;
    const s = gl.createShader(type);
    gl.shaderSource(s, source);
    gl.compileShader(s);
    return s;
  }

  framebuffer(k) {
    const { gl } = this;
    const t = this.textures[k];
    if (!t.fbo) {
      t.fbo = gl.createFramebuffer();
      gl.bindFramebuffer(gl.FRAMEBUFFER, t.fbo);
      gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, t.tex, 0);
    }
    return t;
  }

  upload(k, data, staging = null) {
    const { gl } = this;
    const t = this.textures[k];
    let buf = data;
    if (data.length !== t.w * t.h * 4) {
      buf = staging ?? new Float32Array(t.w * t.h * 4);
      buf.set(data);
    }
    gl.bindTexture(gl.TEXTURE_2D, t.tex);
    gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, 0, t.w, t.h, gl.RGBA, gl.FLOAT, buf);
  }

  /** Draw steps [from, to) of the plan (all of them by default); `tiny`: only their first texel (warm-up). */
  execute(from = 0, to = this.section.steps.length, tiny = false) {
    const { gl } = this;
    gl.bindVertexArray(this.vao);
    gl.disable(gl.BLEND);
    gl.disable(gl.DEPTH_TEST);
    for (let k = from; k < to; k++) {
      const s = this.section.steps[k];
      const t = this.textures[s.output];
      gl.bindFramebuffer(gl.FRAMEBUFFER, s.outputs ? this.mrt.get(k) : t.fbo);
      gl.viewport(0, 0, tiny ? 1 : t.w, tiny ? 1 : t.h);
      gl.useProgram(this.programs[s.program]);
      for (let i = 0; i < s.inputs.length; i++) {
        gl.activeTexture(gl.TEXTURE0 + i);
        gl.bindTexture(gl.TEXTURE_2D, this.textures[s.inputs[i]].tex);
      }
      gl.drawArrays(gl.TRIANGLES, 0, 3);
    }
  }

  /** The whole texture entry.texture (padded to its texels), read back as float32. */
  readTexture(entry) {
    const { gl } = this;
    const t = this.framebuffer(entry.texture);
    gl.bindFramebuffer(gl.FRAMEBUFFER, t.fbo);
    const buf = new Float32Array(t.w * t.h * 4);
    gl.readPixels(0, 0, t.w, t.h, gl.RGBA, gl.FLOAT, buf);
    return buf;
  }

  /** entry.elements float32 of texture entry.texture, in a fresh ArrayBuffer. */
  read(entry) {
    const buf = this.readTexture(entry);
    return buf.buffer.byteLength === entry.elements * 4 ? buf.buffer : buf.slice(0, entry.elements).buffer;
  }

  /** Upload entry.elements float32 (a view, e.g. into wasm memory) to texture entry.texture, via a padded
   *  staging buffer kept per texture (so a view of shared memory never reaches WebGL). */
  uploadFrom(entry, data) {
    const t = this.textures[entry.texture];
    const key = `texture ${entry.texture}`;
    let staging = this.staging.get(key);
    if (!staging) this.staging.set(key, (staging = new Float32Array(t.w * t.h * 4)));
    staging.set(data);
    this.upload(entry.texture, staging);
  }

  check(where) {
    if (this.lost || this.gl.isContextLost()) {
      this.lost = true;
      throw new Error(
        `WebGL context lost during ${where} (the GPU was reset or reclaimed by the browser); ` +
          "its results are unusable: release this session and create a new one",
      );
    }
  }

  /** feeds: {name: Float32Array}; returns {buffers: {name: ArrayBuffer}, shapes}. */
  run(feeds) {
    this.check("run()");
    this.uploadInputs(feeds);
    this.execute();
    const result = this.readOutputs();
    this.check("run()");
    return result;
  }

  uploadInputs(feeds) {
    for (const e of this.section.inputs) {
      const data = feeds[e.name];
      if (!data || data.length !== e.elements) throw new Error(`input '${e.name}' must have ${e.elements} float32 elements`);
      const t = this.textures[e.texture];
      let staging = this.staging.get(e.name);
      if (!staging && data.length !== t.w * t.h * 4) this.staging.set(e.name, (staging = new Float32Array(t.w * t.h * 4)));
      this.upload(e.texture, data instanceof Float32Array ? data : new Float32Array(data.buffer, data.byteOffset, e.elements), staging);
    }
  }

  readOutputs() {
    const buffers = {};
    const shapes = {};
    for (const e of this.section.outputs) {
      buffers[e.name] = this.read(e);
      shapes[e.name] = e.shape;
    }
    return { buffers, shapes };
  }

  /** Test hook: lose the context as a GPU reset would (WEBGL_lose_context). */
  loseContext() {
    if (!this.loseExt) throw new Error("WEBGL_lose_context is not available");
    this.loseExt.loseContext();
  }
}

const r2 = (x) => Math.round(x * 100) / 100;

function glErrorName(gl, code) {
  const names = ["INVALID_ENUM", "INVALID_VALUE", "INVALID_OPERATION", "INVALID_FRAMEBUFFER_OPERATION", "OUT_OF_MEMORY", "CONTEXT_LOST_WEBGL"];
  const name = names.find((n) => gl[n] === code);
  return name ? `${name} (0x${code.toString(16)})` : `0x${code.toString(16)}`;
}
