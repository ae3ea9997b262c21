/** The comparisons gpu-check judges a provider by: they pass what float16 rounding explains and fail real errors. */
import { describe, expect, it } from 'vitest';
import { argmaxAgreement, check, firstDivergence, maxAbsDiff, relativeDiff, rowTop } from '../../scripts/gpu/compare.js';

describe('gpu-check comparisons', () => {
  it('measures differences relative to the reference scale, and a NaN is never within tolerance', () => {
    expect(relativeDiff([10.1, -20], [10, -20])).toBeCloseTo(0.005, 10);
    expect(maxAbsDiff([1, NaN], [1, 2])).toBeNaN();
    expect(check('x', 'm', '', maxAbsDiff([1, NaN], [1, 2]), '<=', 1).pass).toBe(false);
    expect(() => maxAbsDiff([1], [1, 2])).toThrow(/1 and 2/);
  });

  it('forgives argmax flips only at the reference’s near-ties', () => {
    const ref = Float32Array.from([0, 5, 4.99, /* row 1 */ 3, 0, 0]);
    const tieFlip = Float32Array.from([0, 4.98, 4.99, 3, 0, 0]);
    expect(rowTop(ref, 3, 0)).toEqual({ index: 1, margin: expect.closeTo(0.01, 5) });
    expect(argmaxAgreement(tieFlip, ref, 3, 0.1)).toMatchObject({ positions: 2, agree: 1, realDisagreements: 0 });
    const wrong = Float32Array.from([0, 5, 4.99, 0, 0, 3]);
    expect(argmaxAgreement(wrong, ref, 3, 0.1)).toMatchObject({ agree: 1, realDisagreements: 1, disagreements: [{ position: 1, referenceMargin: 3 }] });
  });

  it('finds where two transcripts part, a shorter one included', () => {
    expect(firstDivergence([1, 2, 3], [1, 2, 3])).toBeNull();
    expect(firstDivergence([1, 2, 3], [1, 5, 3])).toBe(1);
    expect(firstDivergence([1, 2], [1, 2, 3])).toBe(2);
  });

  it('judges each comparison the way it is written', () => {
    expect(check('a', 'm', '', 0.01, '<=', 0.02).pass).toBe(true);
    expect(check('a', 'm', '', 0.03, '<=', 0.02).pass).toBe(false);
    expect(check('a', 'm', '', 16, '>=', 15).pass).toBe(true);
    expect(check('a', 'm', '', 1, '==', 0).pass).toBe(false);
    expect(check('a', 'm', '', null, '==', 0)).toMatchObject({ pass: false, measured: null });
  });
});
