/**
 * Memory bandwidth of the device a provider runs on (a GPU's HBM; the host's memory for the CPU provider), measured
 * through ONNX Runtime on that provider with float16 data, the way a float16 decode step reads its weights:
 *
 *  - GEMV: y = x · W_i summed over pieces W_i [K, Np] (K = the model's hidden size), MatMul as in every linear layer;
 *  - ReduceSum over pieces R_i [rows, 4096] along the rows: a plain streaming read.
 *
 * The data are initializers, so they live on the device for the session's life and each run reads them there (a graph
 * input would be copied from the host every run and measure PCIe instead). The pieces are distinct initializers of at
 * most 256 MiB (within every WebGPU buffer limit), several per run so that a run's fixed cost (launch, copying the tiny
 * result back) is small next to its reads. Graph optimizations are off: constant folding would precompute the sums.
 * bandwidth = bytes read per run / best run.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { f16BitsToFloat, float32ToF16 } from '../src/main/engine/model/safetensors.js';
import { GraphBuilder } from '../src/main/engine/onnx/graph.js';
import { DataType, encodeModel } from '../src/main/engine/onnx/proto.js';
import { openSession, type ProviderChoice } from '../src/main/engine/runtime/providers.js';
import { median } from './util.js';

const ROW = 4096;
const MAX_PIECE_BYTES = 256 << 20;

export interface DeviceBandwidthTiming {
  bytesPerRun: number;
  bestSeconds: number;
  medianSeconds: number;
  bytesPerSecond: number;
}

export interface DeviceBandwidthResult {
  provider: string;
  providerNotes: string[];
  gemv: DeviceBandwidthTiming & { K: number; N: number; pieces: number };
  reduceSum: DeviceBandwidthTiming & { rows: number; pieces: number };
  /** The better of the two: what the device's memory delivers to ONNX Runtime. */
  bytesPerSecond: number;
}

/** The values every piece holds, as float16 bits: a cheap non-constant pattern (no zero-page or compression shortcut). */
function pattern(elements: number): Uint16Array {
  const a = new Float32Array(elements);
  for (let i = 0; i < elements; i++) a[i] = ((i % 1021) - 510) / 1e4;
  return float32ToF16(a);
}

/** Sizes for about `bytes` in pieces of at most 256 MiB: both models read the same bytes per run. */
export function bandwidthLayout(bytes: number, K: number) {
  const pieces = Math.max(1, Math.ceil(bytes / MAX_PIECE_BYTES));
  // A piece is [K, Np] for the GEMV and [rows, ROW] for the reduction: the same element count when Np·K = rows·ROW.
  const Np = Math.max(ROW, Math.floor(bytes / pieces / 2 / K / ROW) * ROW);
  const rows = (Np * K) / ROW;
  return { pieces, K, Np, rows, pieceElements: K * Np, bytesPerRun: pieces * K * Np * 2 };
}

/** Write the weights file (every piece's bytes, one after another) and both models into `dir` unless there already. */
export function writeBandwidthModels(dir: string, bytes: number, K: number): ReturnType<typeof bandwidthLayout> {
  const layout = bandwidthLayout(bytes, K);
  const { pieces, Np, rows, pieceElements } = layout;
  const stamp = path.join(dir, `complete-f16-${pieces}x${K}x${Np}`);
  if (fs.existsSync(stamp)) return layout;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const piece = pattern(pieceElements);
  const fd = fs.openSync(path.join(dir, 'pieces.weights'), 'w');
  try {
    for (let p = 0; p < pieces; p++) fs.writeSync(fd, new Uint8Array(piece.buffer), 0, piece.byteLength, p * piece.byteLength);
  } finally {
    fs.closeSync(fd);
  }
  const pieceBytes = pieceElements * 2;
  const build = (name: 'gemv' | 'reduce', dims: number[], read: (g: GraphBuilder, w: string) => string, input: string, inputShape: number[], outShape: number[]) => {
    const g = new GraphBuilder();
    g.input(input, DataType.FLOAT16, inputShape);
    const parts = Array.from({ length: pieces }, (_, p) => read(g, g.externalInitializer(`w${p}`, dims, 'pieces.weights', p * pieceBytes, pieceBytes, DataType.FLOAT16)));
    g.output('y', g.op('Sum', name === 'reduce' ? [...parts, input] : parts), DataType.FLOAT16, outShape);
    fs.writeFileSync(path.join(dir, `${name}.onnx`), encodeModel(g.build({ producerVersion: 'bench', graphName: name })));
  };
  // GEMV: Sum over pieces of x · W_i.
  build('gemv', [K, Np], (g, w) => g.op('MatMul', ['x', w]), 'x', [1, K], [1, Np]);
  // ReduceSum: Sum over pieces of the row sums, plus an input z so that nothing in the graph is constant.
  build('reduce', [rows, ROW], (g, w) => g.op('ReduceSum', [w, g.int64([1])], { keepdims: 0 }), 'z', [rows], [rows]);
  fs.writeFileSync(stamp, '');
  return layout;
}

async function timeRuns(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, runs: number, bytesPerRun: number): Promise<DeviceBandwidthTiming & { output: Float32Array }> {
  const times: number[] = [];
  let output = new Float32Array(0);
  for (let i = 0; i < runs + 2; i++) {
    const start = performance.now();
    const out = await session.run(feeds);
    if (i >= 2) times.push((performance.now() - start) / 1000);
    if (i === 0) {
      const y = out.y as ort.Tensor;
      // float16 outputs come back as Uint16 bits (or Float16Array where the runtime has it)
      output = Float32Array.from(y.data as ArrayLike<number>, (v) => v);
      if (y.type === 'float16' && y.data instanceof Uint16Array) output = Float32Array.from(y.data, f16BitsToFloat);
    }
  }
  const best = Math.min(...times);
  return { bytesPerRun, bestSeconds: best, medianSeconds: median(times), bytesPerSecond: bytesPerRun / best, output };
}

export async function measureDeviceBandwidth(opts: {
  dir: string;
  bytes: number;
  /** Inner dimension of the GEMV: the model's hidden size. */
  K: number;
  provider: ProviderChoice;
  runs: number;
  log?: (msg: string) => void;
}): Promise<DeviceBandwidthResult & { check: { gemvFirst: number; reduceFirst: number } }> {
  const layout = writeBandwidthModels(opts.dir, opts.bytes, opts.K);
  const { pieces, K, Np, rows, bytesPerRun } = layout;
  const open = (file: string) => openSession(path.join(opts.dir, file), opts.provider, { optimization: 'disabled' });

  const g = await open('gemv.onnx');
  let gemv;
  try {
    const ones = float32ToF16(new Float32Array(K).fill(1));
    const t = await timeRuns(g.session, { x: new ort.Tensor('float16', ones, [1, K]) }, opts.runs, bytesPerRun);
    gemv = { ...t, K, N: Np, pieces };
  } finally {
    await g.session.release();
  }
  const r = await open('reduce.onnx');
  let reduceSum;
  try {
    const t = await timeRuns(r.session, { z: new ort.Tensor('float16', new Uint16Array(rows), [rows]) }, opts.runs, bytesPerRun);
    reduceSum = { ...t, rows, pieces };
  } finally {
    await r.session.release();
  }
  const bytesPerSecond = Math.max(gemv.bytesPerSecond, reduceSum.bytesPerSecond);
  opts.log?.(
    `device bandwidth on ${g.provider}: GEMV ${(gemv.bytesPerSecond / 1e9).toFixed(1)} GB/s, ReduceSum ${(reduceSum.bytesPerSecond / 1e9).toFixed(1)} GB/s ` +
      `(${(bytesPerRun / 2 ** 20).toFixed(0)} MiB float16 per run)`,
  );
  const { output: gemvOut, ...gemvTiming } = gemv;
  const { output: reduceOut, ...reduceTiming } = reduceSum;
  return {
    provider: g.provider,
    providerNotes: g.notes,
    gemv: gemvTiming,
    reduceSum: reduceTiming,
    bytesPerSecond,
    // First output values, so a test can check that the runs really read the data.
    check: { gemvFirst: gemvOut[0] ?? NaN, reduceFirst: reduceOut[0] ?? NaN },
  };
}
