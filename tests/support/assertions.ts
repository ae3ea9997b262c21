/** Small helpers many tests share: comparing tensors and taps, seeded token ids, and asserting an engine error. */
import { expect } from 'vitest';
import { CliffscopeError } from '../../src/main/engine/errors.js';
import type { TeacherForceResult } from '../../src/main/engine/runtime/teacher-force.js';
import { TINY_VOCAB_SIZE } from '../fixtures/tiny-checkpoints.js';
import type { ReferenceResult } from './reference-forward.js';

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

/** Logits, every residual-stack entry and every layer's hook_z within `tol` of the reference forward pass. */
export function expectTapsMatchReference(got: TeacherForceResult, ref: ReferenceResult, layers: number, tol: number): void {
  expect(maxAbsDiff(got.logits, ref.logits)).toBeLessThanOrEqual(tol);
  expect(maxAbsDiff(got.resid.get(0)!, ref.embed)).toBeLessThanOrEqual(tol);
  for (let i = 0; i < layers; i++) {
    expect(maxAbsDiff(got.resid.get(i + 1)!, ref.residPost[i]!), `blocks.${i}.hook_resid_post`).toBeLessThanOrEqual(tol);
    expect(maxAbsDiff(got.z.get(i)!, ref.z[i]!), `blocks.${i}.attn.hook_z`).toBeLessThanOrEqual(tol);
  }
  expect(maxAbsDiff(got.resid.get(layers + 1)!, ref.lnFinal)).toBeLessThanOrEqual(tol);
}

/**
 * hook_pattern taps [heads, positions, T] of `layers` within `tol` of the reference's [H, T, T] pattern, and each
 * query's probabilities summing to 1.
 */
export function expectPatternMatchesReference(
  got: TeacherForceResult,
  ref: ReferenceResult,
  sel: { layers: number[]; heads: number[]; positions: number[] },
  H: number,
  tol: number,
): void {
  for (const layer of sel.layers) {
    const tap = got.pattern.get(layer)!;
    const full = ref.pattern[layer]!;
    const T = Math.round(Math.sqrt(full.length / H));
    expect(tap.length, `blocks.${layer}.attn.hook_pattern size`).toBe(sel.heads.length * sel.positions.length * T);
    sel.heads.forEach((head, hi) => {
      sel.positions.forEach((q, qi) => {
        const row = tap.subarray((hi * sel.positions.length + qi) * T, (hi * sel.positions.length + qi + 1) * T);
        const want = full.subarray((head * T + q) * T, (head * T + q + 1) * T);
        expect(maxAbsDiff(row, want), `blocks.${layer}.attn.hook_pattern head ${head} query ${q}`).toBeLessThanOrEqual(tol);
        expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      });
    });
  }
}
