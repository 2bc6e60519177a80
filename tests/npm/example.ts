// Uses every part of the runtime's public API as a page would; tests/test_npm_package.py type-checks it with
// `tsc --strict --noEmit` against the packed package (resolved through its package.json "exports").
import runtime, { InferenceSession, Tensor } from "wasm-runtime-web";
import type { ProfileStep, RunOptions, SessionOptions, TensorType, ValueMetadata } from "wasm-runtime-web";

export async function main(frame: Float32Array): Promise<number> {
  const options: SessionOptions = {
    backend: "auto",
    wasmVariant: "relaxed",
    integrity: "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    numThreads: 2,
    threadSpinMs: 0,
    threadChunks: 4,
  };
  const session = await InferenceSession.create("/models/mobilenetv2/", options);
  const other = await runtime.InferenceSession.create(new URL("https://example.org/m/"), { integrity: false });
  await other.release();

  const names: string[] = [...session.inputNames, ...session.outputNames];
  const meta: ValueMetadata[] = [...session.inputMetadata, ...session.outputMetadata];
  const firstType: TensorType = meta[0].dtype;
  const dims: Array<number | string> = meta[0].shape;
  const where: "wasm" | "webgl" | undefined = session.placement["conv1"];
  const facts: string = [
    session.backend,
    session.backendReason,
    session.variant ?? "gpu only",
    session.threads.toFixed(0),
    session.threadsReason,
    String(session.crossOriginIsolated),
    String(session.ok),
    session.timings.createMs.toFixed(1),
    String(session.timings.fetchMs ?? 0),
    names.join(),
    firstType,
    dims.join(),
    where ?? "",
  ].join(" ");

  const input = new Tensor("float32", frame, [1, 3, 224, 224]);
  const data: Float32Array = input.data;
  const half = new Tensor("float16", new Uint16Array([0x3c00]), [1]);
  const bits: Uint16Array = half.data;
  const ids = new Tensor("int64", [1n, 2, 3], [3]);
  const big: BigInt64Array = ids.data;
  const mask = new Tensor("bool", [true, false]);
  const size: number = mask.size + input.size + bits.length + big.length + data.length;

  const runOptions: RunOptions = { profile: true, transfer: false };
  const outputs = await session.run({ input }, runOptions);
  await session.run({ input: new Tensor("float32", frame.slice(), input.dims) }, { transfer: true });
  const logits: Tensor = outputs["logits"];
  const steps: ProfileStep[] = session.profile ?? [];
  const slowest = steps.reduce((a, s) => Math.max(a, s.ms), 0);
  await session.release();
  return logits.dims.length + size + slowest + facts.length + steps.map((s) => s.node + s.op + s.kernel).length;
}
