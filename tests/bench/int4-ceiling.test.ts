/**
 * The bench's int4 ceiling must time what an int4 decode step's linear layers read: one MatMulNBits per stacked
 * qkv / o / gate / up / down of every layer plus the LM head, with the variant's block layout.
 */
import { describe, expect, it } from 'vitest';
import { measureInt4Ceiling } from '../../bench/int4-ceiling.js';
import { QUICK_SHAPE } from '../../bench/checkpoint.js';

const shape = { ...QUICK_SHAPE, layers: 2, vocab: 512 };
const d = shape.hidden;
const qkv = (shape.heads + 2 * shape.kvHeads) * shape.headDim;
const q = shape.heads * shape.headDim;
const I = shape.intermediate;

/** Bytes of one [N, K] weight in MatMulNBits form: codes, float32 scales, and packed zero points when asymmetric. */
function int4Bytes(K: number, N: number, block: number, zeroPoints: boolean): number {
  const blocks = Math.ceil(K / block);
  return N * blocks * (block / 2) + N * blocks * 4 + (zeroPoints ? N * Math.ceil(blocks / 2) : 0);
}

describe('int4 kernel ceiling (bench/int4-ceiling.ts)', () => {
  it('runs the linear layers of one step, with the bytes of the chosen layout', async () => {
    for (const scheme of ['asymmetric', 'symmetric'] as const) {
      const r = await measureInt4Ceiling({ shape, blockSize: 32, scheme, accuracyLevel: 4, quantizeLmHead: true, threads: 1, runs: 2 });
      const zp = scheme === 'asymmetric';
      const perLayer = int4Bytes(d, qkv, 32, zp) + int4Bytes(q, d, 32, zp) + 2 * int4Bytes(d, I, 32, zp) + int4Bytes(I, d, 32, zp);
      expect(r.nodes).toBe(5 * shape.layers + 1);
      expect(r.weightBytes).toBe(shape.layers * perLayer + int4Bytes(d, shape.vocab, 32, zp));
      expect(r.seconds.values).toHaveLength(2);
      expect(r.tokensPerSecond).toBeCloseTo(1 / r.seconds.min, 6);
    }
  });

  it('keeps a float LM head as a float32 Gemm when the variant does', async () => {
    const r = await measureInt4Ceiling({ shape, blockSize: 64, scheme: 'asymmetric', accuracyLevel: 0, quantizeLmHead: false, threads: 1, runs: 1 });
    const perLayer = int4Bytes(d, qkv, 64, true) + int4Bytes(q, d, 64, true) + 2 * int4Bytes(d, I, 64, true) + int4Bytes(I, d, 64, true);
    expect(r.weightBytes).toBe(shape.layers * perLayer + shape.vocab * d * 4);
  });
});
