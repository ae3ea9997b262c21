/**
 * The int4 quantiser on its own: every value comes back within half a quantisation step, values on the grid come back
 * exactly, and the bytes are laid out the way MatMulNBits reads them (checked by hand on small examples).
 */
import { describe, expect, it } from 'vitest';
import { f16BitsToFloat, float32ToF16 } from '../../src/main/engine/model/safetensors.js';
import {
  dequantizeInt4,
  INT4_BLOCK_SIZES,
  int4Code,
  int4ZeroPoint,
  type Int4Scheme,
  quantizeInt4,
} from '../../src/main/engine/onnx/quantize.js';

function seeded(n: number, seed: number, scale = 1): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648 - 0.5) * scale;
  });
}

const SCHEMES: Int4Scheme[] = ['asymmetric', 'symmetric'];

describe('int4 quantiser', () => {
  describe.each(SCHEMES)('%s', (scheme) => {
    it.each(INT4_BLOCK_SIZES.flatMap((bs) => [
      [bs, 64],
      [bs, 172], // not a multiple of any block size: a padded last block
      [bs, 8], // shorter than one block
    ]))('round-trips within half a step (block %i, K = %i)', (blockSize, K) => {
      const N = 5;
      const w = seeded(N * K, blockSize + K, 0.2);
      // A block of one sign only, and an all-zero block, are the edge cases of the range logic.
      for (let k = 0; k < Math.min(K, blockSize); k++) w[k] = Math.abs(w[k]!) + 0.01;
      for (let k = 0; k < Math.min(K, blockSize); k++) w[K + k] = 0;
      for (const float16Scales of [false, true]) {
        const q = quantizeInt4(w, N, K, { blockSize, scheme, float16Scales });
        expect(q.blocks).toBe(Math.ceil(K / blockSize));
        expect(q.packed.length).toBe(N * q.blocks * (blockSize / 2));
        expect(q.scales.length).toBe(N * q.blocks);
        expect(q.zeroPoints?.length ?? null).toBe(scheme === 'asymmetric' ? N * Math.ceil(q.blocks / 2) : null);
        const d = dequantizeInt4(q);
        for (let n = 0; n < N; n++) {
          for (let k = 0; k < K; k++) {
            const step = q.scales[n * q.blocks + Math.floor(k / blockSize)]!;
            const err = Math.abs(d[n * K + k]! - w[n * K + k]!);
            // float16 scales are rounded before the codes are chosen; allow the rounding of the scale itself.
            expect(err).toBeLessThanOrEqual(step / 2 + (float16Scales ? step * 8 * 2 ** -11 : 1e-7 * step) + 1e-12);
          }
        }
        if (float16Scales) for (const s of q.scales) expect(f16BitsToFloat(float32ToF16(Float32Array.of(s))[0]!)).toBe(s);
        // The all-zero block dequantises to exact zeros.
        for (let k = 0; k < Math.min(K, blockSize); k++) expect(d[K + k]).toBe(0);
      }
    });
  });

  it('is exact on values that lie on the grid (asymmetric)', () => {
    // Block of 32: codes 0..15 twice, zero point 5, scale 0.125 → values (code - 5) * 0.125, min -0.625, max 1.25.
    const codes = Array.from({ length: 32 }, (_, i) => (i * 7) % 16);
    const w = Float32Array.from(codes, (c) => (c - 5) * 0.125);
    const q = quantizeInt4(w, 1, 32, { blockSize: 32, scheme: 'asymmetric' });
    expect(q.scales[0]).toBe(0.125);
    expect(int4ZeroPoint(q, 0, 0)).toBe(5);
    expect(Array.from(dequantizeInt4(q))).toEqual(Array.from(w));
    expect(codes.map((_, k) => int4Code(q, 0, k))).toEqual(codes);
  });

  it('is exact on values that lie on the grid (symmetric)', () => {
    // scale = max|w| / 7: with max|w| = 7 * 0.25 the grid is multiples of 0.25 from -1.75 to 1.75.
    const w = Float32Array.from({ length: 16 }, (_, i) => ((i % 15) - 7) * 0.25);
    const q = quantizeInt4(w, 1, 16, { blockSize: 16, scheme: 'symmetric' });
    expect(q.scales[0]).toBe(0.25);
    expect(q.zeroPoints).toBeNull();
    expect(Array.from(dequantizeInt4(q))).toEqual(Array.from(w));
  });

  it('packs the first value of each pair into the low nibble, and zero points likewise per row', () => {
    // K = 48, block 16: three blocks per row.
    //  block 0: 0..15            → scale 1, zero point 0,  codes 0..15
    //  block 1: -1..14           → scale 1, zero point 1,  codes 0..15
    //  block 2: -15..0           → scale 1, zero point 15, codes 0..15
    const w = new Float32Array(48);
    for (let i = 0; i < 16; i++) {
      w[i] = i;
      w[16 + i] = i - 1;
      w[32 + i] = i - 15;
    }
    const q = quantizeInt4(w, 1, 48, { blockSize: 16, scheme: 'asymmetric' });
    const block = [0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe];
    expect(Array.from(q.packed)).toEqual([...block, ...block, ...block]);
    expect(Array.from(q.scales)).toEqual([1, 1, 1]);
    // Zero points 0, 1, 15: byte 0 = zp0 | zp1 << 4, byte 1 = zp2 (high nibble unused).
    expect(Array.from(q.zeroPoints!)).toEqual([0x10, 0x0f]);
  });

  it('pads a short last block with the zero-point code, so padding dequantises to 0', () => {
    // K = 20, block 16: the second block holds 4 values and 12 padding codes.
    const w = Float32Array.from({ length: 20 }, (_, i) => i - 3);
    const q = quantizeInt4(w, 1, 20, { blockSize: 16, scheme: 'asymmetric' });
    const zp = int4ZeroPoint(q, 0, 1);
    const second = q.packed.subarray(8, 16);
    for (let i = 4; i < 16; i++) expect(i & 1 ? second[i >> 1]! >> 4 : second[i >> 1]! & 0x0f, `padding code ${i}`).toBe(zp);
    const sym = quantizeInt4(w, 1, 20, { blockSize: 16, scheme: 'symmetric' });
    expect(Array.from(sym.packed.subarray(10, 16))).toEqual(new Array(6).fill(0x88));
  });

  it('rejects block sizes MatMulNBits does not take', () => {
    expect(() => quantizeInt4(new Float32Array(24), 1, 24, { blockSize: 24, scheme: 'asymmetric' })).toThrow(/block size/);
    expect(() => quantizeInt4(new Float32Array(10), 1, 24, { blockSize: 32, scheme: 'asymmetric' })).toThrow(/values/);
  });
});
