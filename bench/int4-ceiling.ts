/**
 * The int4 kernel's own ceiling: one decode step's linear layers and nothing else, as MatMulNBits nodes with the
 * model's shapes and the variant's settings (block size, scheme, accuracy level, LM head), on one input row.
 *
 * int4 decoding cannot beat its linear layers, so tokens/s here bounds the int4 decode figure from above the way
 * bandwidth ÷ weight bytes bounds float32's. On a CPU whose int4 kernel is compute-bound (ONNX Runtime's MLAS on
 * 2 cores: about 13–14 G weights/s per core at accuracy level 4), this ceiling, not memory bandwidth, is what an int4
 * step is measured against.
 *
 * Weights are random bytes, distinct per node (ONNX Runtime shares identical initializers, and a shared weight would
 * be read from cache); the kernel's speed does not depend on their values. The whole set is about the size of the
 * model's int4 weights, far beyond the last-level cache, so every run streams it from memory as decoding does.
 */
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/main/engine/onnx/graph.js';
import { DataType, encodeModel } from '../src/main/engine/onnx/proto.js';
import type { BenchShape } from './checkpoint.js';
import { now, stat, type Stat } from './util.js';

export interface Int4CeilingJob {
  shape: BenchShape;
  blockSize: number;
  scheme: 'asymmetric' | 'symmetric';
  accuracyLevel: number;
  quantizeLmHead: boolean;
  threads: number | null;
  runs: number;
}

export interface Int4CeilingResult {
  /** MatMulNBits nodes (and the float LM head's Gemm when it is not quantised). */
  nodes: number;
  /** Bytes of weights one run reads. */
  weightBytes: number;
  seconds: Stat;
  /** 1 / best seconds: the most int4 decode steps per second these layers allow. */
  tokensPerSecond: number;
}

/** xorshift32 bytes: cheap, not constant, different per call. */
function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  const words = new Uint32Array(out.buffer, 0, n >> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return out;
}

export async function measureInt4Ceiling(job: Int4CeilingJob): Promise<Int4CeilingResult> {
  const { shape: s, blockSize } = job;
  const g = new GraphBuilder();
  const inputs = new Map<number, string>();
  const input = (K: number) => {
    if (!inputs.has(K)) inputs.set(K, g.input(`x${K}`, DataType.FLOAT, [1, K]));
    return inputs.get(K)!;
  };
  let weightBytes = 0;
  let seed = 1;
  let nodes = 0;
  const linear = (K: number, N: number) => {
    const blocks = Math.ceil(K / blockSize);
    const id = nodes++;
    const packed = g.rawInitializer(`w${id}.int4`, DataType.UINT8, [N, blocks, blockSize / 2], randomBytes(N * blocks * (blockSize / 2), seed++));
    // Scales of a plausible size (≈ 1e-3): random float bits could be NaN or huge, and the kernel is value-blind anyway.
    const scaleValues = new Float32Array(N * blocks);
    for (let i = 0; i < scaleValues.length; i++) scaleValues[i] = 1e-3 * (1 + ((i * 2654435761) % 997) / 997);
    const scales = g.rawInitializer(`w${id}.scales`, DataType.FLOAT, [N * blocks], new Uint8Array(scaleValues.buffer));
    const ins = [input(K), packed, scales];
    weightBytes += N * blocks * (blockSize / 2) + scaleValues.byteLength;
    if (job.scheme === 'asymmetric') {
      const zp = Math.ceil(blocks / 2) * N;
      ins.push(g.rawInitializer(`w${id}.zero_points`, DataType.UINT8, [zp], randomBytes(zp + 4, seed++).subarray(0, zp)));
      weightBytes += zp;
    }
    const out = g.op('MatMulNBits', ins, { K, N, bits: 4, block_size: blockSize, accuracy_level: job.accuracyLevel }, { domain: 'com.microsoft', name: `w${id}` });
    g.output(`y${id}`, out, DataType.FLOAT, [1, N]);
  };
  const d = s.hidden;
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  for (let i = 0; i < s.layers; i++) {
    linear(d, q + 2 * kv); // stacked q, k, v, as the compiler writes them
    linear(q, d);
    linear(d, s.intermediate);
    linear(d, s.intermediate);
    linear(s.intermediate, d);
  }
  if (job.quantizeLmHead) {
    linear(d, s.vocab);
  } else {
    const w = new Float32Array(s.vocab * d).fill(1e-3);
    const head = g.rawInitializer('lm_head.weight', DataType.FLOAT, [s.vocab, d], new Uint8Array(w.buffer));
    g.output('logits', g.op('Gemm', [input(d), head], { transB: 1 }), DataType.FLOAT, [1, s.vocab]);
    weightBytes += w.byteLength;
    nodes++;
  }

  const options: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], graphOptimizationLevel: 'all', logSeverityLevel: 3 };
  if (job.threads) options.intraOpNumThreads = job.threads;
  const session = await ort.InferenceSession.create(encodeModel(g.build({ producerVersion: 'bench', graphName: 'int4-ceiling' })), options);
  try {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [K, name] of inputs) feeds[name] = new ort.Tensor('float32', Float32Array.from({ length: K }, (_, i) => Math.sin(i)), [1, K]);
    for (let i = 0; i < 2; i++) await session.run(feeds); // warm-up: first runs allocate
    const times: number[] = [];
    for (let i = 0; i < job.runs; i++) {
      const t0 = now();
      await session.run(feeds);
      times.push(now() - t0);
    }
    const seconds = stat(times);
    return { nodes, weightBytes, seconds, tokensPerSecond: 1 / seconds.min };
  } finally {
    await session.release();
  }
}
