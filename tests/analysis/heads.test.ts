/**
 * Direct head attribution (docs/METHOD.md §3) and ablation head sets (§4): the folded readout u = W_O[:, h]^T w against
 * hand values and against the unfolded w·(W_O[:, h] z), each score variant by hand, the final-norm-aware variant's
 * exact additivity through a frozen RMSNorm, ranking, k-of-L·H, the random control and γ matrices.
 */
import { describe, expect, it } from 'vitest';
import { ablationScale, flatHeadScale, validateHeadScale } from '../../src/main/engine/runtime/head-scale.js';
import {
  ABLATION_FRACTIONS,
  attributeHeads,
  attributeHeadsOverTokens,
  averageAttributions,
  buildHeadReadouts,
  headCountForFraction,
  headReadout,
  headsByFraction,
  randomHeads,
  rankHeads,
  rmsOf,
  averageRanks,
  spearman,
} from '../../src/main/engine/analysis/heads.js';
import { expectBadArgument } from '../support/assertions.js';

const f32 = (a: number[]) => Float32Array.from(a);

function lcg(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  });
}

// d = 2, H = 2, D = 2. o_proj weights are [d, H·D] = [out, in], as Hugging Face stores them.
const W0 = f32([1, 0, 0, 1, 0, 1, 1, 0]);
const W1 = f32([1, 0, 0, 0, 0, 0, 0, 1]);
const PROBE = { weights: f32([3, 4]), bias: 0.5 }; // ‖w‖ = 5
const Z = [f32([1, 2, -1, 1]), f32([2, 5, 7, -1])];

describe('headReadout', () => {
  it('computes u = W_O^T w (hand example)', () => {
    // W = [[1,2,3,4],[5,6,7,8]], w = [2,1] → u_c = 2·W[0,c] + W[1,c] = [7, 10, 13, 16].
    expect(Array.from(headReadout(f32([1, 2, 3, 4, 5, 6, 7, 8]), f32([2, 1]), 2, 2, 2))).toEqual([7, 10, 13, 16]);
  });

  it('u_h · z_h equals w · (W_O[:, h] z_h), the head’s direct write scored by the probe', () => {
    const d = 12;
    const H = 3;
    const D = 4;
    const W = lcg(d * H * D, 1);
    const w = lcg(d, 2);
    const z = lcg(H * D, 3);
    const u = headReadout(W, w, H, D, d);
    for (let h = 0; h < H; h++) {
      // Δh_j = Σ_k W[j, hD+k] z[hD+k] (every other head zeroed), then w·Δh.
      let direct = 0;
      for (let j = 0; j < d; j++) {
        let dh = 0;
        for (let k = 0; k < D; k++) dh += W[j * H * D + h * D + k]! * z[h * D + k]!;
        direct += w[j]! * dh;
      }
      let folded = 0;
      for (let k = 0; k < D; k++) folded += u[h * D + k]! * z[h * D + k]!;
      expect(folded).toBeCloseTo(direct, 6);
    }
  });

  it('rejects mismatched shapes', () => {
    expectBadArgument(() => headReadout(new Float32Array(7), f32([1, 1]), 2, 2, 2), /expected d·H·D/);
    expectBadArgument(() => headReadout(new Float32Array(8), f32([1]), 2, 2, 2), /1 weights/);
  });
});

describe('attributeHeads', () => {
  const readouts = (variant: 'code' | 'blog' | 'final-norm-aware', finalNormWeight?: Float32Array) =>
    buildHeadReadouts({ probe: PROBE, oProj: (l) => [W0, W1][l]!, layers: 2, heads: 2, headDim: 2, d: 2, variant, finalNormWeight });

  // Layer 0: u = W0^T [3,4] = [3,4,4,3]; heads: 3·1+4·2 = 11, 4·(−1)+3·1 = −1.
  // Layer 1: u = W1^T [3,4] = [3,0,0,4]; heads: 3·2 = 6, 4·(−1) = −4.
  it("'code' (default) = w·Δh / ‖w‖", () => {
    const r = buildHeadReadouts({ probe: PROBE, oProj: (l) => [W0, W1][l]!, layers: 2, heads: 2, headDim: 2, d: 2 });
    expect(r.variant).toBe('code');
    expect(Array.from(attributeHeads({ readouts: r, zAt: (l) => Z[l]! }))).toEqual(Array.from(f32([2.2, -0.2, 1.2, -0.8])));
  });

  it("'blog' = w·Δh + b", () => {
    expect(Array.from(attributeHeads({ readouts: readouts('blog'), zAt: (l) => Z[l]! }))).toEqual([11.5, -0.5, 6.5, -3.5]);
  });

  it("'code' and 'blog' rank heads identically", () => {
    const a = rankHeads(attributeHeads({ readouts: readouts('code'), zAt: (l) => Z[l]! }), 2, 2).suppression;
    const b = rankHeads(attributeHeads({ readouts: readouts('blog'), zAt: (l) => Z[l]! }), 2, 2).suppression;
    expect(a.map((x) => [x.layer, x.head])).toEqual(b.map((x) => [x.layer, x.head]));
  });

  it("'final-norm-aware' = w·(g ⊙ Δh) / rms (hand example)", () => {
    // w ⊙ g = [6, 2]; layer 0: u = [6,2,2,6]; heads 6+4 = 10, −2+6 = 4; / rms 2 → 5, 2.
    // Layer 1: u = [6,0,0,2]; heads 12, −2 → 6, −1.
    const r = readouts('final-norm-aware', f32([2, 0.5]));
    expect(Array.from(attributeHeads({ readouts: r, zAt: (l) => Z[l]!, rms: 2 }))).toEqual([5, 2, 6, -1]);
    expectBadArgument(() => attributeHeads({ readouts: r, zAt: (l) => Z[l]! }), /rms/);
    expectBadArgument(() => readouts('final-norm-aware'), /final norm weight/);
  });

  it("'final-norm-aware' splits the probe logit on ln_final(h) exactly into per-head terms (+ rest + b)", () => {
    const d = 8;
    const H = 2;
    const D = 3;
    const eps = 1e-6;
    const probe = { weights: lcg(d, 4), bias: 0.3 };
    const g = Float32Array.from(lcg(d, 5), (x) => 1 + x);
    const W = [lcg(d * H * D, 6), lcg(d * H * D, 7)];
    const z = [lcg(H * D, 8), lcg(H * D, 9)];
    const rest = lcg(d, 10); // embeddings + MLPs: everything that is not a head's direct write
    // h = rest + Σ_heads W[:, h] z_h (in float64).
    const h = Float64Array.from(rest);
    for (let l = 0; l < 2; l++)
      for (let j = 0; j < d; j++) for (let c = 0; c < H * D; c++) h[j]! += W[l]![j * H * D + c]! * z[l]![c]!;
    const rms = rmsOf(Float32Array.from(h), eps);
    let logit = probe.bias;
    let restTerm = 0;
    for (let j = 0; j < d; j++) {
      logit += (probe.weights[j]! * g[j]! * h[j]!) / Math.sqrt(h.reduce((s, x) => s + x * x, 0) / d + eps);
      restTerm += (probe.weights[j]! * g[j]! * rest[j]!) / rms;
    }
    const r = buildHeadReadouts({ probe, oProj: (l) => W[l]!, layers: 2, heads: H, headDim: D, d, variant: 'final-norm-aware', finalNormWeight: g });
    const s = attributeHeads({ readouts: r, zAt: (l) => z[l]!, rms });
    const sum = s.reduce((a, x) => a + x, 0);
    expect(sum + restTerm + probe.bias).toBeCloseTo(logit, 5);
  });

  it('over tokens: the same scores at every position, laid out (layer·H + head)·T + t', () => {
    const r = readouts('blog');
    const T = 3;
    const rows = [new Float32Array(T * 4), new Float32Array(T * 4)];
    const perToken = [
      [f32([1, 2, -1, 1]), f32([2, 5, 7, -1])],
      [f32([0, 0, 0, 0]), f32([1, 1, 1, 1])],
      [f32([1, 0, 0, 1]), f32([0, 1, 1, 0])],
    ];
    perToken.forEach((zs, t) => zs.forEach((z, l) => rows[l]!.set(z, t * 4)));
    const out = attributeHeadsOverTokens({ readouts: r, zRows: (l) => rows[l]!, tokens: T });
    perToken.forEach((zs, t) => {
      const at = attributeHeads({ readouts: r, zAt: (l) => zs[l]! });
      for (let i = 0; i < 4; i++) expect(out[i * T + t]).toBe(at[i]);
    });
    const fna = readouts('final-norm-aware', f32([2, 0.5]));
    const withRms = attributeHeadsOverTokens({ readouts: fna, zRows: (l) => rows[l]!, tokens: T, rms: [2, 1, 4] });
    expect(withRms[0 * T + 0]).toBe(5); // layer 0 head 0 at t = 0 as in the hand example
    expectBadArgument(() => attributeHeadsOverTokens({ readouts: fna, zRows: (l) => rows[l]!, tokens: T }), /one rms value per token/);
  });

  it('rmsOf = sqrt(mean(h²) + eps)', () => {
    expect(rmsOf(f32([3, 4]), 0)).toBeCloseTo(Math.sqrt(12.5), 12);
    expect(rmsOf(f32([3, 4]), 0.5)).toBeCloseTo(Math.sqrt(13), 12);
    expect(rmsOf(f32([9, 3, 4]), 0, 1, 2)).toBeCloseTo(Math.sqrt(12.5), 12);
  });

  it('rejects a z of the wrong width and a zero probe for the code variant', () => {
    expectBadArgument(() => attributeHeads({ readouts: readouts('code'), zAt: () => new Float32Array(3) }), /expected H·D = 4/);
    expectBadArgument(
      () => buildHeadReadouts({ probe: { weights: new Float32Array(2), bias: 0 }, oProj: () => W0, layers: 1, heads: 2, headDim: 2, d: 2 }),
      /all zero/,
    );
  });

  it('folds a realistic layer (d 4096, 32 heads × 128) in well under two seconds', () => {
    const d = 4096;
    const W = new Float32Array(d * d);
    for (let i = 0; i < W.length; i++) W[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
    const w = lcg(d, 12);
    const t0 = performance.now();
    const u = headReadout(W, w, 32, 128, d);
    expect(u.length).toBe(d);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

describe('averaging and ranking', () => {
  it('averages attributions elementwise with population std', () => {
    const { mean, std, count } = averageAttributions([f32([1, 2]), f32([3, 6])]);
    expect(Array.from(mean)).toEqual([2, 4]);
    expect(Array.from(std)).toEqual([1, 2]);
    expect(count).toBe(2);
    expectBadArgument(() => averageAttributions([f32([1]), f32([1, 2])]), /attribution 1 has 2 values/);
    expectBadArgument(() => averageAttributions([]), /empty/);
  });

  it('ranks suppression heads most negative first and refusal heads most positive first, ties by (layer, head)', () => {
    const { suppression, refusal } = rankHeads(f32([0.5, -2, -2, 3]), 2, 2);
    expect(suppression).toEqual([
      { layer: 0, head: 1, score: -2 },
      { layer: 1, head: 0, score: -2 },
      { layer: 0, head: 0, score: 0.5 },
      { layer: 1, head: 1, score: 3 },
    ]);
    expect(refusal.map((x) => [x.layer, x.head])).toEqual([
      [1, 1],
      [0, 0],
      [0, 1],
      [1, 0],
    ]);
    expectBadArgument(() => rankHeads(f32([0, NaN]), 1, 2), /NaN/);
    expectBadArgument(() => rankHeads(f32([0, 1, 2]), 1, 2), /L·H = 2/);
  });

  it('k = round(fraction·L·H), at least 1 when fraction > 0 (784 heads: 4 / 12 / 24 / 78)', () => {
    expect(ABLATION_FRACTIONS.map((f) => headCountForFraction(f, 784))).toEqual([0, 4, 12, 24, 78]);
    expect(headCountForFraction(0.005, 16)).toBe(1);
    expect(headCountForFraction(1, 16)).toBe(16);
    const ranking = rankHeads(lcg(28 * 28, 13), 28, 28).suppression;
    expect(headsByFraction(ranking, 0.03, 784)).toEqual(ranking.slice(0, 24));
    expect(headsByFraction(ranking, 0, 784)).toEqual([]);
    expectBadArgument(() => headsByFraction(ranking.slice(0, 3), 0.03, 784), /only 3/);
    expectBadArgument(() => headCountForFraction(1.5, 784), /fraction/);
  });
});

describe('random control and γ matrices', () => {
  it('draws k distinct heads, seeded, never from the excluded set, sorted by (layer, head)', () => {
    const exclude = [
      { layer: 0, head: 0 },
      { layer: 1, head: 3 },
    ];
    const a = randomHeads(5, 3, 4, 42, exclude);
    expect(a).toHaveLength(5);
    expect(randomHeads(5, 3, 4, 42, exclude)).toEqual(a);
    expect(new Set(a.map((x) => x.layer * 4 + x.head)).size).toBe(5);
    expect(a.some((x) => exclude.some((e) => e.layer === x.layer && e.head === x.head))).toBe(false);
    expect(a.map((x) => x.layer * 4 + x.head)).toEqual(a.map((x) => x.layer * 4 + x.head).sort((p, q) => p - q));
    const draws = new Set([0, 1, 2, 3, 4, 5].map((s) => JSON.stringify(randomHeads(5, 3, 4, s, exclude))));
    expect(draws.size).toBeGreaterThan(1);
    // Every non-excluded head when k equals the pool.
    expect(randomHeads(10, 3, 4, 1, exclude)).toHaveLength(10);
    expect(randomHeads(0, 3, 4, 1)).toEqual([]);
    expectBadArgument(() => randomHeads(11, 3, 4, 1, exclude), /only 10 of 12/);
    expectBadArgument(() => randomHeads(1, 3, 4, 1, [{ layer: 3, head: 0 }]), /outside/);
  });

  it('builds γ matrices with 1 elsewhere, in the shape runtime/head-scale.ts validates and flattens', () => {
    const rows = ablationScale(
      [
        { layer: 0, head: 1 },
        { layer: 2, head: 0 },
      ],
      0.01,
      3,
      2,
    );
    expect(rows).toEqual([
      [1, 0.01],
      [1, 1],
      [0.01, 1],
    ]);
    expect(validateHeadScale(rows, 3, 2)).toEqual(rows);
    expect(Array.from(flatHeadScale(rows, 3, 2))).toEqual(Array.from(f32([1, 0.01, 1, 1, 0.01, 1])));
    expectBadArgument(() => ablationScale([{ layer: 0, head: 2 }], 0, 3, 2), /outside/);
    expectBadArgument(() => ablationScale([], NaN, 3, 2), /gamma/);
    expectBadArgument(() => flatHeadScale([[1, 1], [1, 1]], 3, 2), /has 2 rows, the model has 3 layers/);
  });
});

describe('spearman', () => {
  it('is 1 for any increasing relation, −1 for a decreasing one, and handles ties as scipy does', () => {
    expect(spearman([1, 2, 3, 4], [10, 100, 1000, 1e4])).toBeCloseTo(1, 12);
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1, 12);
    // scipy.stats.spearmanr([1, 2, 2, 3], [1, 3, 2, 4]).statistic = 0.9486832980505138
    expect(spearman([1, 2, 2, 3], [1, 3, 2, 4])).toBeCloseTo(0.9486832980505138, 12);
    expect(averageRanks([3, 1, 3, 2])).toEqual([3.5, 1, 3.5, 2]);
  });
  it('is null when it says nothing (one pair, a constant side) and refuses NaN or mismatched lengths', () => {
    expect(spearman([1], [2])).toBeNull();
    expect(spearman([1, 1, 1], [1, 2, 3])).toBeNull();
    expect(() => spearman([1, NaN], [1, 2])).toThrow(/finite/);
    expect(() => spearman([1, 2], [1])).toThrow(/against/);
  });
});
