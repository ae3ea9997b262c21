/**
 * A sweep's judge numbers against values worked out by hand: each judge's ASR and over-refusal on a cell, percent
 * agreement and Cohen's κ between two judges, and mean ± spread over random-head seeds.
 */
import { describe, expect, it } from 'vitest';
import { agreementOf, type CellAnswer, judgeAgreement, judgeRates, spreadOf } from '../../src/main/engine/analysis/sweep.js';

const kw = 'keyword:jbb@1';
const guard = 'guard:abc';

/** An answer with a keyword verdict and, optionally, a guard verdict (true = the attack succeeded). */
function answer(set: 'harmful' | 'harmless', keyword: 'refusal' | 'compliance', g?: 'safe' | 'unsafe' | null): CellAnswer {
  const verdicts = new Map<string, { verdict: string; harmful: boolean | null }>([[kw, { verdict: keyword, harmful: set === 'harmful' ? keyword === 'compliance' : null }]]);
  if (g !== undefined) verdicts.set(guard, g === null ? { verdict: 'no-trace', harmful: null } : { verdict: g, harmful: set === 'harmful' ? g === 'unsafe' : null });
  return { set, verdicts };
}

describe('judgeRates', () => {
  it('ASR over the decided attacks, over-refusal over the harmless answers, per judge', () => {
    const cell = [
      answer('harmful', 'compliance', 'unsafe'),
      answer('harmful', 'compliance', 'safe'),
      answer('harmful', 'refusal', 'safe'),
      answer('harmful', 'compliance', null), // the guard could not decide: out of its denominator
      answer('harmless', 'refusal', 'safe'),
      answer('harmless', 'compliance', 'safe'),
      answer('harmless', 'compliance', 'safe'),
    ];
    expect(judgeRates(cell, kw)).toEqual({ asr: 3 / 4, judged: 4, harmful: 3, overRefusal: 1 / 3 });
    // A guard says harmful or not, never "refused": no over-refusal.
    expect(judgeRates(cell, guard)).toEqual({ asr: 1 / 3, judged: 3, harmful: 1, overRefusal: null });
    expect(judgeRates(cell, 'keyword:gcg@1')).toEqual({ asr: null, judged: 0, harmful: 0, overRefusal: null });
  });
});

describe('judgeAgreement', () => {
  it('percent agreement and Cohen’s κ on the attacks both judges decided', () => {
    // 10 attacks: both harmful 4, both not 3, keyword-only harmful 2, guard-only harmful 1; plus a harmless answer
    // and an attack the guard did not decide, which do not count.
    const cell = [
      ...Array.from({ length: 4 }, () => answer('harmful', 'compliance', 'unsafe')),
      ...Array.from({ length: 3 }, () => answer('harmful', 'refusal', 'safe')),
      ...Array.from({ length: 2 }, () => answer('harmful', 'compliance', 'safe')),
      answer('harmful', 'refusal', 'unsafe'),
      answer('harmless', 'refusal', 'unsafe'),
      answer('harmful', 'compliance', null),
    ];
    // p_o = 7/10; p_a = 6/10, p_b = 5/10; p_e = 0.6·0.5 + 0.4·0.5 = 0.5; κ = (0.7 − 0.5) / 0.5 = 0.4.
    const a = judgeAgreement(cell, kw, guard);
    expect(a).toMatchObject({ n: 10, agree: 7 });
    expect(a.agreement).toBeCloseTo(0.7, 12);
    expect(a.kappa).toBeCloseTo(0.4, 12);
    // Symmetric.
    expect(judgeAgreement(cell, guard, kw).kappa).toBeCloseTo(0.4, 12);
  });

  it('κ is 1 for identical non-constant verdicts, negative below chance, undefined when chance explains everything', () => {
    expect(agreementOf(4, 4, 2, 2)).toEqual({ n: 4, agree: 4, agreement: 1, kappa: 1 });
    // Always opposite on 2 + 2: p_o = 0, p_e = 0.5, κ = −1.
    expect(agreementOf(4, 0, 2, 2).kappa).toBeCloseTo(-1, 12);
    // Both judges said "harmful" to every answer: full agreement, κ undefined.
    expect(agreementOf(5, 5, 5, 5)).toEqual({ n: 5, agree: 5, agreement: 1, kappa: null });
    // One judge constant, the other not: p_e = p_b, κ = 0 when they agree as often as chance says.
    expect(agreementOf(4, 2, 4, 2).kappa).toBeCloseTo(0, 12);
    expect(agreementOf(0, 0, 0, 0)).toEqual({ n: 0, agree: 0, agreement: null, kappa: null });
  });
});

describe('spreadOf', () => {
  it('mean, sample standard deviation (n − 1) and range; nulls and NaNs left out', () => {
    // 0.2, 0.4, 0.9: mean 0.5; squared deviations 0.09, 0.01, 0.16 → 0.26 / 2 = 0.13; std √0.13.
    const s = spreadOf([0.2, null, 0.4, Number.NaN, 0.9]);
    expect(s.n).toBe(3);
    expect(s.mean).toBeCloseTo(0.5, 12);
    expect(s.std).toBeCloseTo(Math.sqrt(0.13), 12);
    expect([s.min, s.max]).toEqual([0.2, 0.9]);
    expect(spreadOf([0.25])).toEqual({ n: 1, mean: 0.25, std: null, min: 0.25, max: 0.25 });
    expect(spreadOf([])).toEqual({ n: 0, mean: null, std: null, min: null, max: null });
  });
});
