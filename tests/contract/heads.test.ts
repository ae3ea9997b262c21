/** Heads and γ matrices (src/shared/heads.ts): the names, the typed lists and the one γ-matrix builder every face uses. */
import { describe, expect, it } from 'vitest';
import { headLabel, headScaleMatrix, parseHeads } from '../../src/shared/heads.js';

describe('heads', () => {
  it('names heads the paper’s way', () => {
    expect(headLabel({ layer: 1, head: 5 })).toBe('L1H5');
  });

  it('parses typed head lists in either notation, dropping duplicates', () => {
    expect(parseHeads('L1H5, l2h2;3:6  L1H5')).toEqual({
      heads: [
        { layer: 1, head: 5 },
        { layer: 2, head: 2 },
        { layer: 3, head: 6 },
      ],
      error: null,
    });
    expect(parseHeads('')).toEqual({ heads: [], error: null });
  });

  it('names the token that is not a head, and heads outside the model', () => {
    expect(parseHeads('L1H5, head7').error).toBe('"head7" is not a head (write L1H5 or 1:5)');
    expect(parseHeads('L4H0', { layers: 4, heads: 8 }).error).toBe("L4H0 is outside the model's 4 layers × 8 heads");
  });

  it('builds a γ matrix of ones with γ on the chosen heads', () => {
    expect(headScaleMatrix([{ layer: 0, head: 1 }, { layer: 1, head: 0 }], 0, 2, 3)).toEqual([
      [1, 0, 1],
      [0, 1, 1],
    ]);
  });

  it('refuses heads outside the model and a γ that is not finite', () => {
    expect(() => headScaleMatrix([{ layer: 2, head: 0 }], 0, 2, 3)).toThrow(/L2H0 is outside a model with 2 layers × 3 heads/);
    expect(() => headScaleMatrix([], Number.NaN, 2, 3)).toThrow(/gamma must be a finite number/);
  });
});
