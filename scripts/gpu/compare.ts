/**
 * The comparisons `npm run gpu-check` judges a provider by, as plain functions over arrays: how far its logits and taps
 * are from the CPU float32 reference, and whether its greedy choices agree except where the reference itself is at a
 * near-tie (where float16 rounding may legitimately pick the other token).
 */

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`cannot compare arrays of ${a.length} and ${b.length} values`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = d; // NaN propagates: a NaN anywhere is a failed comparison
  }
  return m;
}

/** max |a − b| ÷ max |b|: the error relative to the reference's scale, so one threshold fits every tensor. */
export function relativeDiff(test: ArrayLike<number>, ref: ArrayLike<number>): number {
  return maxAbsDiff(test, ref) / Math.max(maxAbs(ref), 1e-12);
}

/** Index of the largest value in row `r` of a [rows, width] array, and its lead over the runner-up. */
export function rowTop(values: ArrayLike<number>, width: number, r: number): { index: number; margin: number } {
  let best = -Infinity;
  let second = -Infinity;
  let index = 0;
  for (let v = 0; v < width; v++) {
    const x = values[r * width + v]!;
    if (x > best) {
      second = best;
      best = x;
      index = v;
    } else if (x > second) second = x;
  }
  return { index, margin: best - second };
}

export interface ArgmaxAgreement {
  positions: number;
  agree: number;
  /** Positions where the argmax differs, with the reference's top-2 margin there. */
  disagreements: { position: number; referenceMargin: number }[];
  /** Disagreements where the reference was not at a near-tie: each one is a real error. */
  realDisagreements: number;
}

/**
 * Greedy agreement under teacher forcing: at every position, does the tested run pick the reference's most likely next
 * token? A differing pick counts as real only if the reference's lead was more than `nearTie` logits.
 */
export function argmaxAgreement(test: ArrayLike<number>, ref: ArrayLike<number>, width: number, nearTie: number): ArgmaxAgreement {
  if (test.length !== ref.length || ref.length % width !== 0) throw new Error('logits of different shapes');
  const rows = ref.length / width;
  const disagreements: ArgmaxAgreement['disagreements'] = [];
  for (let r = 0; r < rows; r++) {
    const a = rowTop(test, width, r);
    const b = rowTop(ref, width, r);
    if (a.index !== b.index) disagreements.push({ position: r, referenceMargin: b.margin });
  }
  return {
    positions: rows,
    agree: rows - disagreements.length,
    disagreements,
    realDisagreements: disagreements.filter((d) => d.referenceMargin > nearTie).length,
  };
}

/** The first index where two token sequences differ (their common length when one is a prefix), or null when equal. */
export function firstDivergence(a: readonly number[], b: readonly number[]): number | null {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? null : n;
}

export interface Check {
  name: string;
  model: string;
  description: string;
  measured: number | null;
  comparison: '<=' | '>=' | '==';
  threshold: number;
  pass: boolean;
  detail: string;
}

export function check(name: string, model: string, description: string, measured: number | null, comparison: Check['comparison'], threshold: number, detail = ''): Check {
  const ok =
    measured !== null &&
    Number.isFinite(measured) &&
    (comparison === '<=' ? measured <= threshold : comparison === '>=' ? measured >= threshold : measured === threshold);
  return { name, model, description, measured: measured !== null && Number.isFinite(measured) ? measured : null, comparison, threshold, pass: ok, detail };
}
