/**
 * Refusal traces (docs/METHOD.md §2): plateau / final / MS, the steepest drop and the cliff width on a transcript worked
 * by hand, the robust plateau rules, NaN handling, the no-thinking fallbacks, tail-aligned averaging and the
 * layers × tokens map.
 */
import { describe, expect, it } from 'vitest';
import { averageHasCliff, CLIFF_RULE, cliffStats, hasCliff, layerTokenMap, percentileOf, tailAlignedAverage, traceMetrics } from '../../src/main/engine/analysis/trace.js';
import { expectBadArgument } from '../support/assertions.js';

// Tokens 0–2 prompt, 3–7 thinking, 8 "</think>", 9 "\n\n" = t_b, 10–11 answer.
const R = [0.1, 0.1, 0.2, 0.5, 0.8, 0.9, 0.85, 0.7, 0.6, 0.2, 0.1, 0.1];
const SPAN = { thinkingStart: 3, thinkingEnd: 8, answerBoundary: 9 };
const f32 = (a: number[]) => Float32Array.from(a);
/** The float32 value the engine would hand us. */
const q = (x: number) => Math.fround(x);

describe('traceMetrics', () => {
  it('plateau = max over thinking, final = r at t_b, MS = I − I′', () => {
    const m = traceMetrics(f32(R), SPAN);
    expect(m.plateau).toBe(q(0.9));
    expect(m.plateauPos).toBe(5);
    expect(m.plateauSpan).toBe('thinking');
    expect(m.final).toBe(q(0.2));
    expect(m.ms).toBeCloseTo(0.7, 6);
    expect(m.answerBoundary).toBe(9);
  });

  it('steepest one-step drop in [thinkingStart, t_b]: r8 − r9 = 0.4', () => {
    // Steps: 3→4 −0.3, 4→5 −0.1, 5→6 0.05, 6→7 0.15, 7→8 0.1, 8→9 0.4.
    const m = traceMetrics(f32(R), SPAN);
    expect(m.steepestDrop).toBeCloseTo(0.4, 6);
    expect(m.steepestDropPos).toBe(8);
    expect(m.steepestDropEnd).toBe(9);
  });

  it('windowed drop r_t − r_{t+2}: largest is r7 − r9 = 0.5', () => {
    // t=3 −0.4, 4 −0.05, 5 0.2, 6 0.25, 7 0.5.
    const m = traceMetrics(f32(R), SPAN, { dropWindow: 2 });
    expect(m.steepestDrop).toBeCloseTo(0.5, 6);
    expect(m.steepestDropPos).toBe(7);
    expect(m.steepestDropEnd).toBe(9);
  });

  it('drop width: last position within 10 % of Δ of the plateau to the first within 10 % of the final', () => {
    // Δ = 0.7: high = 0.83 → last t < 9 with r ≥ 0.83 is 6 (0.85); low = 0.27 → first t > 6 with r ≤ 0.27 is 9.
    const m = traceMetrics(f32(R), SPAN);
    expect([m.dropStart, m.dropEnd, m.dropWidth]).toEqual([6, 9, 3]);
    // A one-step cliff has width 1.
    const sharp = traceMetrics(f32([0.1, 0.9, 0.9, 0.9, 0.1]), { thinkingStart: 1, thinkingEnd: 3, answerBoundary: 4 });
    expect([sharp.dropStart, sharp.dropEnd, sharp.dropWidth]).toEqual([3, 4, 1]);
  });

  it('drop width thresholds sit exactly at 10 % of Δ from each end', () => {
    // Plateau 1.0, final 0.0, Δ = 1: high = 0.9, low = 0.1. 0.95 ≥ 0.9 but 0.88 is not → dropStart 2;
    // 0.12 > 0.1 is not yet "at the final" → dropEnd is t_b = 6.
    const m = traceMetrics(f32([0.2, 1.0, 0.95, 0.88, 0.5, 0.12, 0.0]), { thinkingStart: 1, thinkingEnd: 5, answerBoundary: 6 });
    expect([m.dropStart, m.dropEnd, m.dropWidth]).toEqual([2, 6, 4]);
  });

  it('equal drops: the earliest is reported', () => {
    const m = traceMetrics(f32([0.9, 0.5, 0.9, 0.5]), { thinkingStart: 0, thinkingEnd: 3, answerBoundary: 3 });
    expect([m.steepestDropPos, m.steepestDropEnd]).toEqual([0, 1]);
  });

  it('moving-average plateau: best trailing mean of `window` tokens inside thinking', () => {
    // Windows of 3 ending at 5: 0.7333, at 6: 0.85, at 7: 0.8167.
    const m = traceMetrics(f32(R), SPAN, { plateau: 'moving-average-max', window: 3 });
    expect(m.plateau).toBeCloseTo(0.85, 6);
    expect(m.plateauPos).toBe(6);
    expect(m.ms).toBeCloseTo(0.65, 6);
    // A window longer than the span averages the whole span: (0.5+0.8+0.9+0.85+0.7)/5 = 0.75.
    const wide = traceMetrics(f32(R), SPAN, { plateau: 'moving-average-max', window: 50 });
    expect(wide.plateau).toBeCloseTo(0.75, 6);
    expect(wide.plateauPos).toBe(7);
  });

  it('percentile plateau interpolates linearly between order statistics', () => {
    // Thinking sorted: 0.5, 0.7, 0.8, 0.85, 0.9. p50 = 0.8; p90: rank 3.6 → 0.85 + 0.6·0.05 = 0.88.
    const p50 = traceMetrics(f32(R), SPAN, { plateau: 'percentile', percentile: 50 });
    expect(p50.plateau).toBeCloseTo(0.8, 6);
    expect(p50.plateauPos).toBe(4);
    const p90 = traceMetrics(f32(R), SPAN, { plateau: 'percentile', percentile: 90 });
    expect(p90.plateau).toBeCloseTo(0.88, 6);
    expect(p90.plateauPos).toBe(5);
    expect(percentileOf([1, 2, 3, 4], 25)).toBe(1.75);
  });

  it('skips NaN positions everywhere', () => {
    const a = R.slice();
    a[5] = NaN;
    const m = traceMetrics(f32(a), SPAN);
    expect(m.plateau).toBe(q(0.85));
    expect(m.plateauPos).toBe(6);
    const b = R.slice();
    b[8] = NaN; // the drop is then measured between the neighbouring finite positions 7 and 9
    const n = traceMetrics(f32(b), SPAN);
    expect(n.steepestDrop).toBeCloseTo(0.5, 6);
    expect([n.steepestDropPos, n.steepestDropEnd]).toEqual([7, 9]);
    const c = R.slice();
    c[9] = NaN;
    const o = traceMetrics(f32(c), SPAN);
    expect(o.final).toBeNull();
    expect(o.ms).toBeNull();
    expect(o.dropWidth).toBeNull();
    const mean = traceMetrics(f32(a), SPAN, { plateau: 'moving-average-max', window: 2 });
    // Windows (finite values only): [0.5,0.8] 0.65, [0.8] 0.8, [0.85] 0.85, [0.85,0.7] 0.775.
    expect(mean.plateau).toBeCloseTo(0.85, 6);
  });

  it('no thinking: the plateau falls back to [generatedStart, t_b], else null', () => {
    const none = { thinkingStart: null, thinkingEnd: null, answerBoundary: 9 };
    const g = traceMetrics(f32(R), { ...none, generatedStart: 3 });
    expect(g.plateau).toBe(q(0.9));
    expect(g.plateauSpan).toBe('generated');
    expect(g.ms).toBeCloseTo(0.7, 6);
    const nothing = traceMetrics(f32(R), none);
    expect(nothing.plateau).toBeNull();
    expect(nothing.ms).toBeNull();
    expect(nothing.final).toBe(q(0.2));
    // The drop range starts at 0 then: the largest step over 0..9 is still 8 → 9.
    expect(nothing.steepestDropPos).toBe(8);
    const empty = traceMetrics(f32(R), { thinkingStart: 3, thinkingEnd: 3, answerBoundary: 9, generatedStart: 3 });
    expect(empty.plateauSpan).toBe('generated');
    const emptyNoGen = traceMetrics(f32(R), { thinkingStart: 3, thinkingEnd: 3, answerBoundary: 9 });
    expect(emptyNoGen.plateau).toBeNull();
  });

  it('unclosed thinking runs to the end; no t_b means no final, MS or cliff', () => {
    const m = traceMetrics(f32([0.1, 0.3, 0.95, 0.2]), { thinkingStart: 1, thinkingEnd: null, answerBoundary: null });
    expect(m.plateau).toBe(q(0.95));
    expect(m.final).toBeNull();
    expect(m.ms).toBeNull();
    expect(m.steepestDrop).toBeNull();
  });

  it('a rising trace has a negative steepest drop and no cliff width', () => {
    const m = traceMetrics(f32([0.1, 0.2, 0.3, 0.5]), { thinkingStart: 0, thinkingEnd: 3, answerBoundary: 3 });
    expect(m.ms).toBeCloseTo(-0.2, 6);
    expect(m.steepestDrop).toBeCloseTo(-0.1, 6);
    expect(m.steepestDropPos).toBe(0);
    expect(m.dropWidth).toBeNull();
  });

  it('rejects inconsistent spans', () => {
    expectBadArgument(() => traceMetrics(f32(R), { thinkingStart: 3, thinkingEnd: 10, answerBoundary: 9 }), /before the end of thinking/);
    expectBadArgument(() => traceMetrics(f32(R), { thinkingStart: 3, thinkingEnd: 8, answerBoundary: 12 }), /answerBoundary = 12/);
    expectBadArgument(() => traceMetrics(f32(R), { thinkingStart: 5, thinkingEnd: 4, answerBoundary: 9 }), /ends before it starts/);
    expectBadArgument(() => traceMetrics(f32(R), { thinkingStart: 2.5, thinkingEnd: 8, answerBoundary: 9 }), /thinkingStart/);
    expectBadArgument(() => traceMetrics(f32(R), { thinkingStart: null, thinkingEnd: 8, answerBoundary: 9 }), /thinkingStart is not/);
    expectBadArgument(() => traceMetrics(f32(R), SPAN, { dropWindow: 0 }), /dropWindow/);
  });

  it('handles an 8k-token transcript quickly', () => {
    const T = 8192;
    const s = new Float32Array(T);
    for (let t = 0; t < T; t++) s[t] = t < 8180 ? 0.9 - 0.1 * Math.sin(t / 50) : 0.05;
    const t0 = performance.now();
    for (const plateau of ['max', 'moving-average-max', 'percentile'] as const) {
      const m = traceMetrics(s, { thinkingStart: 20, thinkingEnd: 8178, answerBoundary: 8181 }, { plateau, window: 64 });
      expect(m.final).toBe(q(0.05));
      expect(m.steepestDropPos).toBe(8179);
    }
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe('tailAlignedAverage', () => {
  it('resamples each trace linearly onto normalised positions and averages (population std)', () => {
    // 5 points at x = 0, .25, .5, .75, 1. [0,1] → 0, .25, .5, .75, 1. [1,0,1] (source x·2) → 1, .5, 0, .5, 1.
    const avg = tailAlignedAverage([f32([0, 1]), f32([1, 0, 1])], { points: 5 });
    expect(Array.from(avg.positions)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(Array.from(avg.mean)).toEqual([0.5, 0.375, 0.25, 0.625, 1]);
    expect(Array.from(avg.std)).toEqual([0.5, 0.125, 0.25, 0.125, 0]);
    expect(Array.from(avg.count)).toEqual([2, 2, 2, 2, 2]);
    expect(avg.traces).toBe(2);
  });

  it('a trace already on the grid comes back unchanged; a one-token trace is constant', () => {
    const same = tailAlignedAverage([f32([0.1, 0.2, 0.3, 0.4, 0.5])], { points: 5 });
    expect(Array.from(same.mean)).toEqual(Array.from(f32([0.1, 0.2, 0.3, 0.4, 0.5])));
    const one = tailAlignedAverage([f32([0.7])], { points: 3 });
    expect(Array.from(one.mean)).toEqual([q(0.7), q(0.7), q(0.7)]);
  });

  it('a point whose interpolation touches NaN is left out for that trace; empty traces are skipped', () => {
    const avg = tailAlignedAverage([f32([NaN, 1, 1]), f32([0, 0, 0]), new Float32Array(0)], { points: 5 });
    expect(Array.from(avg.count)).toEqual([1, 1, 2, 2, 2]);
    expect(Array.from(avg.mean)).toEqual([0, 0, 0.5, 0.5, 0.5]);
    expect(avg.traces).toBe(2);
    const none = tailAlignedAverage([], { points: 3 });
    expect(Array.from(none.mean).every(Number.isNaN)).toBe(true);
  });

  it('defaults to 100 points with the last 5 % shaded as the cliff region', () => {
    const avg = tailAlignedAverage([f32([1, 2, 3])]);
    expect(avg.mean.length).toBe(100);
    expect(avg.positions[99]).toBe(1);
    expect(avg.mean[99]).toBe(3); // position 1 is t_b
    expect(avg.cliffRegion).toEqual({ from: 0.95, to: 1, firstIndex: 95 });
    expect(tailAlignedAverage([f32([1])], { points: 11, tailFraction: 0.2 }).cliffRegion.firstIndex).toBe(8);
    expect(() => tailAlignedAverage([], { points: 1 })).toThrow(/points/);
  });
});

describe('layerTokenMap', () => {
  it('stacks per-layer traces row-major [L × T]', () => {
    const m = layerTokenMap([f32([1, 2, 3]), [4, 5, 6]]);
    expect(m.layers).toBe(2);
    expect(m.tokens).toBe(3);
    expect(Array.from(m.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => layerTokenMap([f32([1, 2]), f32([1])])).toThrow(/layer row 1 has 1 tokens/);
  });
});

describe('the cliff rule', () => {
  it('calls a fall from refusal in the thinking to compliance at t_b, by at least a quarter, a cliff', () => {
    expect(CLIFF_RULE).toEqual({ threshold: 0.5, minFall: 0.25 });
    expect(hasCliff({ plateau: 0.98, final: 0.04 })).toBe(true);
    expect(hasCliff({ plateau: 0.5, final: 0.25 })).toBe(true); // exactly at both bounds
    // A harmless prompt: never refused, MS ≈ 0.01.
    expect(hasCliff({ plateau: 0.03, final: 0.02 })).toBe(false);
    // Refuses to the end: no fall at the boundary.
    expect(hasCliff({ plateau: 0.97, final: 0.9 })).toBe(false);
    // Hovers around the threshold: crosses 0.5 but falls by less than a quarter.
    expect(hasCliff({ plateau: 0.6, final: 0.45 })).toBe(false);
    expect(hasCliff({ plateau: null, final: 0.1 })).toBe(false);
    expect(hasCliff({ plateau: NaN, final: 0.1 })).toBe(false);
  });

  it('counts cliffs and averages the width of those only', () => {
    expect(cliffStats([
      { plateau: 0.9, final: 0.1, width: 2 },
      { plateau: 0.9, final: 0.1, width: 4 },
      { plateau: 0.05, final: 0.04, width: 40 },
    ])).toEqual({ traces: 3, withCliff: 2, meanWidth: 3 });
    expect(cliffStats([{ plateau: 0.05, final: 0.04, width: 1 }])).toEqual({ traces: 1, withCliff: 0, meanWidth: null });
  });

  it('applies the same rule to a tail-aligned average: I before the cliff region, I′ at its end', () => {
    const cliff = tailAlignedAverage([Float32Array.from([0.9, 0.95, 0.92, 0.1]), Float32Array.from([0.8, 0.9, 0.05])]);
    expect(averageHasCliff(cliff)).toBe(true);
    const flat = tailAlignedAverage([Float32Array.from([0.02, 0.03, 0.02]), Float32Array.from([0.01, 0.02])]);
    expect(averageHasCliff(flat)).toBe(false);
    expect(averageHasCliff(tailAlignedAverage([]))).toBe(false);
  });
});
