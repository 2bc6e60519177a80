// Types of the browser runtime's public API (index.js). Hand-written: index.js is plain JavaScript with no
// build step, so these declarations are kept next to it and checked by tests/test_npm_package.py.

/** The element types a Tensor can hold, as in a bundle's manifest. */
export type TensorType =
  | "float32"
  | "float64"
  | "float16"
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64"
  | "bool";

/**
 * The typed array holding each type's data. `float16` is the IEEE half-precision bits in a Uint16Array (as
 * onnxruntime-web takes and returns them); `bool` is a Uint8Array of 0 and 1; the 64-bit integers are BigInt arrays.
 */
export interface TensorDataTypes {
  float32: Float32Array;
  float64: Float64Array;
  float16: Uint16Array;
  int8: Int8Array;
  uint8: Uint8Array;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
  int64: BigInt64Array;
  uint64: BigUint64Array;
  bool: Uint8Array;
}

/** The plain-array form a Tensor's data may be given in (converted to the typed array of its type). */
export interface TensorArrayTypes {
  float32: number[];
  float64: number[];
  float16: number[];
  int8: number[];
  uint8: number[];
  int16: number[];
  uint16: number[];
  int32: number[];
  uint32: number[];
  int64: Array<bigint | number>;
  uint64: Array<bigint | number>;
  bool: Array<boolean | number>;
}

/** A tensor: its type, its data (the typed array of its type, row-major) and its dims. */
export class Tensor<T extends TensorType = TensorType> {
  /**
   * new Tensor(type, data, dims). `data` is the typed array of `type` (TensorDataTypes) or a plain array,
   * converted; `dims` defaults to `[data.length]`.
   * @throws {TypeError} an unsupported type, data of another typed array, or dims that are not non-negative integers
   * @throws {RangeError} dims whose element count differs from data's length
   */
  constructor(type: T, data: TensorDataTypes[T] | TensorArrayTypes[T], dims?: readonly number[]);
  /** The element type. */
  readonly type: T;
  /** The elements, row-major. */
  readonly data: TensorDataTypes[T];
  /** The shape. */
  readonly dims: number[];
  /** The element count (the product of dims). */
  readonly size: number;
}

/** A dim of a bundle's input or output: a number, or a symbol's name (a dynamic-shape bundle). */
export type Dim = number | string;

/** An input or output of the model, as the bundle's manifest declares it. */
export interface ValueMetadata {
  /** The tensor's name in the model. */
  name: string;
  /** Its element type. */
  dtype: TensorType;
  /** Its shape; a string dim is symbolic: any size, as long as the inputs agree. */
  shape: Dim[];
}

/** Options of InferenceSession.create(). Each one is checked: a bad value rejects create() with an Error. */
export interface SessionOptions {
  /**
   * Which backend runs the model. "wasm" (default): the WebAssembly SIMD kernels. "webgl": the bundle's WebGL2
   * plan (packaged with `--backend webgl`) on an OffscreenCanvas in the worker. "auto": webgl when the bundle has
   * a WebGL plan and the browser can run it, else wasm (session.backendReason says why).
   */
  backend?: "wasm" | "webgl" | "auto";
  /**
   * The wasm kernel build. "auto" (default): relaxed SIMD when the browser validates it, else SIMD128.
   * "relaxed" rejects on a browser without relaxed SIMD; every value rejects on a browser without WebAssembly SIMD.
   */
  wasmVariant?: "auto" | "simd" | "relaxed";
  /**
   * true (default): check every bundle file against the manifest's SHA-256. false: skip the checks.
   * "sha256-<base64>": also pin the manifest itself (the value `package-for-web` prints), so the page runs only
   * that bundle.
   */
  integrity?: boolean | `sha256-${string}`;
  /**
   * Threads to run on (a positive integer; default: the cores the browser reports, at most 4). More than one
   * needs a cross-origin isolated page; without it the session runs on one thread (session.threadsReason says why).
   */
  numThreads?: number;
  /**
   * Milliseconds threads poll for a run's next step before they sleep (default 2; 0 sleeps at once, which frees
   * the cores between steps but pays a wake-up for each).
   */
  threadSpinMs?: number;
  /**
   * Chunks per thread each split step is cut into, claimed by whichever thread is free: an integer from 1 to 64
   * (default 1; more balances a busy core better, at a cost per chunk).
   */
  threadChunks?: number;
}

/** Options of session.run(). */
export interface RunOptions {
  /**
   * true: move each input's ArrayBuffer to the worker instead of copying it; the caller's arrays are detached at
   * the call (a SharedArrayBuffer is copied; a WebAssembly.Memory's buffer rejects the run). Must be a boolean.
   */
  transfer?: boolean;
  /** true: time every step of this run (wasm backend); session.profile then holds them. */
  profile?: boolean;
}

/** One step of a profiled run (session.profile). */
export interface ProfileStep {
  /** The ONNX node the step belongs to. */
  node: string;
  /** Its op type. */
  op: string;
  /** The kernel the step called. */
  kernel: string;
  /** Milliseconds; a split step's includes waiting for the helper threads' parts. */
  ms: number;
}

/** Milliseconds of create()'s phases; which phases appear depends on the backend. */
export interface SessionTimings {
  /** From create()'s call to its resolution. */
  createMs: number;
  /** Fetching the bundle's files. */
  fetchMs?: number;
  /** Compiling the kernels (wasm). */
  compileMs?: number;
  /** Setting up memory and weights (wasm). */
  initMs?: number;
  /** Other phases reported by the backend (WebGL's, a mixed plan's wasm part as `wasmPart`). */
  [phase: string]: unknown;
}

/** The inputs of a run: a Tensor per input name. */
export type Feeds = Record<string, Tensor>;
/** The outputs of a run: a fresh Tensor per output name, owned by the caller. */
export type Results = Record<string, Tensor>;

/**
 * A loaded bundle, running in its own module worker. Errors: create() and run() reject with an Error (TypeError
 * for feeds that are not an object of Tensors or a non-boolean `transfer`) whose message names the file, tensor,
 * node or option involved; once the worker is gone or the session released, every call rejects saying so.
 */
export class InferenceSession {
  /**
   * Load the bundle directory at `url` (resolved against the page's base URL) in a new worker.
   * Rejects with an Error for a bad option, a browser without WebAssembly SIMD, an HTTP error, a corrupt, stale
   * or unpinned file (integrity), an unknown bundle version, or a backend that cannot run the bundle.
   */
  static create(url: string | URL, options?: SessionOptions): Promise<InferenceSession>;

  /** Use InferenceSession.create(); the constructor only wires the worker. */
  private constructor(variant: string | null);

  /** The model's input names, in the manifest's order. */
  readonly inputNames: string[];
  /** The model's output names, in the manifest's order. */
  readonly outputNames: string[];
  /** Name, dtype and shape of each input. */
  readonly inputMetadata: ValueMetadata[];
  /** Name, dtype and shape of each output. */
  readonly outputMetadata: ValueMetadata[];
  /** The backend that runs the model ("webgl" includes a mixed plan whose nodes without a shader run on wasm). */
  readonly backend: "wasm" | "webgl";
  /** Why "auto" runs on wasm, or what a mixed plan runs on wasm, or "". */
  readonly backendReason: string;
  /** The wasm kernel build that runs, or null when WebGL runs the whole model. */
  readonly variant: "simd" | "relaxed" | null;
  /** Threads the session runs on. */
  readonly threads: number;
  /** Why the session runs on fewer threads than wanted (e.g. the page is not cross-origin isolated), or "". */
  readonly threadsReason: string;
  /** Whether the page was cross-origin isolated when the session was made (SharedArrayBuffer available). */
  readonly crossOriginIsolated: boolean;
  /** Milliseconds of create()'s phases. */
  readonly timings: SessionTimings;
  /** The backend that runs each node: {nodeName: "webgl" | "wasm"}. */
  readonly placement: Record<string, "wasm" | "webgl">;
  /** The steps of the last run called with {profile: true}, in order (null when the backend gave none). */
  readonly profile?: ProfileStep[] | null;
  /** The manifest's model section. */
  readonly model: Record<string, unknown>;
  /** The manifest's files section. */
  readonly files: Record<string, unknown>;
  /**
   * false once the session cannot run any more: release() was called, or its worker is gone (every call then
   * rejects saying so).
   */
  readonly ok: boolean;

  /**
   * Run the model. The inputs are read at the call (copied, or moved with `transfer`), so the caller may reuse
   * its arrays at once. Runs of one session execute one at a time and resolve in call order. Rejects at once for
   * bad feeds (unknown or missing name, dtype, shape, data that is not the type's typed array, a detached buffer);
   * a run that fails in the worker (a kernel trap) rejects that run only.
   */
  run(feeds: Feeds, options?: RunOptions): Promise<Results>;

  /**
   * Terminate the worker and free its memory; runs in flight and later calls reject with "session released".
   * A second release() does nothing; on a session whose worker is gone it rejects with that error.
   */
  release(): Promise<void>;
}

declare const _default: { InferenceSession: typeof InferenceSession; Tensor: typeof Tensor };
export default _default;
