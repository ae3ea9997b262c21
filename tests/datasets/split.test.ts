/** Seeded splits and samples: pinned outputs (so a refactor cannot silently change which items a seed picks). */
import { describe, expect, it } from 'vitest';
import { SeededRandom, sampleItems, shuffledIndices, splitItems } from '../../src/main/engine/datasets/split.js';

const letters = [...'abcdefghij'];

describe('SeededRandom', () => {
  it('produces the documented sequence', () => {
    // Values from the algorithm in split.ts's header (also checked against a Python transcription of it).
    const r = new SeededRandom(42);
    expect([r.next(), r.next(), r.next()]).toEqual([0.3662779692094773, 0.18914881837554276, 0.4156319561880082]);
    expect(shuffledIndices(10, 1)).toEqual([5, 2, 6, 1, 8, 7, 3, 4, 9, 0]);
  });

  it('takes seeds modulo 2^32 and refuses non-integers', () => {
    expect(new SeededRandom(-1).next()).toBe(new SeededRandom(2 ** 32 - 1).next());
    expect(() => new SeededRandom(1.5)).toThrow(/integer/);
  });

  it('stays within [0, 1)', () => {
    const r = new SeededRandom(7);
    for (let i = 0; i < 10_000; i++) {
      const x = r.next();
      expect(x >= 0 && x < 1).toBe(true);
    }
  });
});

describe('splitItems', () => {
  it('is a deterministic partition that keeps input order', () => {
    const a = splitItems(letters, { train: 0.8, seed: 3 });
    expect(a).toEqual({ train: ['a', 'b', 'c', 'd', 'e', 'f', 'h', 'j'], test: ['g', 'i'] });
    expect(splitItems(letters, { train: 0.8, seed: 3 })).toEqual(a);
    expect(splitItems(letters, { train: 0.8, seed: 4 })).not.toEqual(a);
  });

  it('sends round(n · train) items to train, covering every item once', () => {
    const items = Array.from({ length: 199 }, (_, i) => i);
    const { train, test } = splitItems(items, { train: 0.8, seed: 11 });
    expect(train).toHaveLength(159);
    expect([...train, ...test].sort((x, y) => x - y)).toEqual(items);
    expect(splitItems(items, { train: 0, seed: 1 }).train).toEqual([]);
    expect(splitItems(items, { train: 1, seed: 1 }).test).toEqual([]);
    expect(() => splitItems(items, { train: 1.2, seed: 1 })).toThrow(/0..1/);
  });

  it('stratifies by a key, keeping each group’s proportion', () => {
    const items = Array.from({ length: 100 }, (_, i) => ({ i, label: i < 30 ? 'refused' : 'complied' }));
    const { train } = splitItems(items, { train: 0.8, seed: 5, stratify: (x) => x.label });
    expect(train.filter((x) => x.label === 'refused')).toHaveLength(24);
    expect(train.filter((x) => x.label === 'complied')).toHaveLength(56);
  });
});

describe('sampleItems', () => {
  it('draws without replacement, in input order, reproducibly', () => {
    expect(sampleItems(letters, 3, 7)).toEqual(['b', 'f', 'i']);
    expect(sampleItems(letters, 3, 7)).toEqual(sampleItems(letters, 3, 7));
    const big = sampleItems(Array.from({ length: 1000 }, (_, i) => i), 200, 1);
    expect(new Set(big).size).toBe(200);
    expect([...big].sort((x, y) => x - y)).toEqual(big);
  });

  it('returns everything when n ≥ the number of items, and refuses bad sizes', () => {
    expect(sampleItems(letters, 50, 1)).toEqual(letters);
    expect(sampleItems(letters, 0, 1)).toEqual([]);
    expect(() => sampleItems(letters, -1, 1)).toThrow(/non-negative/);
  });
});
