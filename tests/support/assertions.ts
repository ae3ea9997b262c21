/** Small helpers many tests share: comparing tensors, seeded token ids, and asserting an engine error. */
import { expect } from 'vitest';
import { CliffscopeError } from '../../src/main/engine/errors.js';
import { TINY_VOCAB_SIZE } from '../fixtures/tiny-checkpoints.js';

/** Largest |a[i] − b[i]|; the lengths must match. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** `n` token ids below `vocab` from a seeded linear congruential generator: the same ids for the same seed. */
export function seededIds(n: number, seed: number, vocab = TINY_VOCAB_SIZE): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % vocab;
  });
}

/** `fn` throws a CliffscopeError with code bad-argument whose message matches. */
export function expectBadArgument(fn: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(CliffscopeError);
  expect((caught as CliffscopeError).code).toBe('bad-argument');
  expect((caught as CliffscopeError).message).toMatch(message);
}
