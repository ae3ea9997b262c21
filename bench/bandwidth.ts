/**
 * This machine's memory bandwidth, measured with ONNX Runtime itself so that it is the ceiling the decoder can reach:
 *
 *  - GEMV: y[1, N] = x[1, K] · W[N, K]ᵀ, a float32 Gemm (transB = 1, K = the model's hidden size) over ~1 GiB of
 *    weights: the op, layout, session settings and kernel (MLAS SGEMM over a prepacked B) of every linear layer of a
 *    decode step. W is an external initializer in a weights file, as in a compiled model.
 *  - ReduceSum over a float32 tensor of the same size, shaped [rows, 4096] and reduced along its rows: a plain
 *    streaming read split across the threads (reduced to one scalar, ONNX Runtime would use a single thread). The
 *    operand is a graph input fed from a JS buffer (inputs are not copied), so it cannot be constant-folded.
 *
 * Each is its own model and session: ONNX Runtime runs every node of a graph whatever outputs are fetched, so one
 * graph holding both would time both at once. bandwidth = bytes / best time over several runs: other processes only
 * ever slow a run down, so the best run is the closest to what the memory can do. Files are reused when present.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/main/engine/onnx/graph.js';
import { DataType, encodeModel } from '../src/main/engine/onnx/proto.js';
import { median } from './util.js';

const REDUCE_ROW = 4096;

interface Timing {
  bytes: number;
  bestSeconds: number;
  medianSeconds: number;
  bytesPerSecond: number;
}

export interface BandwidthResult {
  gemv: Timing & { K: number; N: number };
  reduceSum: Timing & { elements: number };
  /** The better of the two: what the machine's memory delivers to ONNX Runtime. */
  bytesPerSecond: number;
  /** GEMV bandwidth as a fraction of it. */
  gemvFraction: number;
  threads: number | null;
  sessionSeconds: number;
}

/** Write gemv.onnx + its weights file and reduce.onnx into `dir` unless already there. */
function writeModels(dir: string, K: number, N: number): void {
  const stamp = path.join(dir, `complete-gemv-reduce-${K}x${N}`);
  if (fs.existsSync(stamp)) return;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const elements = K * N;

  // Values do not matter for bandwidth; a cheap non-constant pattern avoids any zero-page shortcut.
  const chunk = patterned(16 << 20);
  const fd = fs.openSync(path.join(dir, 'gemv.weights'), 'w');
  try {
    for (let done = 0; done < elements; done += chunk.length) {
      const n = Math.min(chunk.length, elements - done);
      fs.writeSync(fd, new Uint8Array(chunk.buffer, 0, n * 4), 0, n * 4, done * 4);
    }
  } finally {
    fs.closeSync(fd);
  }
  const gemv = new GraphBuilder();
  const x = gemv.input('x', DataType.FLOAT, [1, K]);
  const w = gemv.externalInitializer('w', [N, K], 'gemv.weights', 0, elements * 4);
  gemv.output('y', gemv.op('Gemm', [x, w], { transB: 1 }), DataType.FLOAT, [1, N]);
  fs.writeFileSync(path.join(dir, 'gemv.onnx'), encodeModel(gemv.build({ producerVersion: 'bench', graphName: 'gemv' })));

  const reduce = new GraphBuilder();
  const r = reduce.input('r', DataType.FLOAT, ['rows', REDUCE_ROW]);
  reduce.output('s', reduce.op('ReduceSum', [r, reduce.int64([1])], { keepdims: 0 }), DataType.FLOAT, ['rows']);
  fs.writeFileSync(path.join(dir, 'reduce.onnx'), encodeModel(reduce.build({ producerVersion: 'bench', graphName: 'reduce' })));
  fs.writeFileSync(stamp, '');
}

function patterned(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = ((i % 1021) - 510) / 1e4;
  return a;
}

/** Best and median seconds of `runs` calls after two warm-up calls. */
async function time(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, runs: number, bytes: number): Promise<Timing> {
  const times: number[] = [];
  for (let i = 0; i < runs + 2; i++) {
    const start = performance.now();
    await session.run(feeds);
    if (i >= 2) times.push((performance.now() - start) / 1000);
  }
  const best = Math.min(...times);
  return { bytes, bestSeconds: best, medianSeconds: median(times), bytesPerSecond: bytes / best };
}

export async function measureBandwidth(opts: {
  dir: string;
  bytes: number;
  /** Inner dimension of the GEMV: the model's hidden size. */
  K: number;
  threads: number | null;
  runs: number;
  log: (msg: string) => void;
}): Promise<BandwidthResult> {
  const { K } = opts;
  // N a multiple of 16 (MLAS packs B in 16-column panels) and of REDUCE_ROW, so both operands hold K·N floats.
  const N = Math.max(REDUCE_ROW, Math.floor(opts.bytes / (4 * K) / REDUCE_ROW) * REDUCE_ROW);
  const elements = K * N;
  writeModels(opts.dir, K, N);
  // The decoder's session settings (DecoderSession.create).
  const options: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], graphOptimizationLevel: 'all', logSeverityLevel: 3 };
  if (opts.threads) options.intraOpNumThreads = opts.threads;

  const t0 = performance.now();
  const gemvSession = await ort.InferenceSession.create(path.join(opts.dir, 'gemv.onnx'), options);
  const sessionSeconds = (performance.now() - t0) / 1000;
  let gemv: BandwidthResult['gemv'];
  try {
    const x = new ort.Tensor('float32', new Float32Array(K).fill(0.5), [1, K]);
    gemv = { K, N, ...(await time(gemvSession, { x }, opts.runs, elements * 4)) };
  } finally {
    await gemvSession.release();
  }

  const reduceSession = await ort.InferenceSession.create(path.join(opts.dir, 'reduce.onnx'), options);
  let reduceSum: BandwidthResult['reduceSum'];
  try {
    const r = new ort.Tensor('float32', patterned(elements), [elements / REDUCE_ROW, REDUCE_ROW]);
    reduceSum = { elements, ...(await time(reduceSession, { r }, opts.runs, elements * 4)) };
  } finally {
    await reduceSession.release();
  }

  const bytesPerSecond = Math.max(gemv.bytesPerSecond, reduceSum.bytesPerSecond);
  opts.log(`bandwidth: GEMV ${(gemv.bytesPerSecond / 1e9).toFixed(2)} GB/s, ReduceSum ${(reduceSum.bytesPerSecond / 1e9).toFixed(2)} GB/s`);
  return { gemv, reduceSum, bytesPerSecond, gemvFraction: gemv.bytesPerSecond / bytesPerSecond, threads: opts.threads, sessionSeconds };
}
