/**
 * Deterministic, seeded splits and samples, so a run's config (which stores the seed) reproduces exactly the same
 * items on any machine.
 *
 * The PRNG, written out so it can be reimplemented elsewhere (all arithmetic on unsigned 32-bit integers):
 *   seeding:  s = seed mod 2^32
 *             s = (s ^ (s >>> 16)) * 0x7feb352d;  s = (s ^ (s >>> 15)) * 0x846ca68b;  s = s ^ (s >>> 16)
 *             (the "lowbias32" integer hash, so nearby seeds 0, 1, 2 start far apart)
 *   next():   s = s + 0x6d2b79f5                       (mulberry32)
 *             t = (s ^ (s >>> 15)) * (s | 1)
 *             t = t ^ (t + (t ^ (t >>> 7)) * (t | 61))
 *             return (t ^ (t >>> 14)) / 2^32            (a float in [0, 1))
 * Shuffle: Fisher–Yates from the end: for i = n-1 down to 1, j = floor(next() * (i + 1)), swap a[i] and a[j].
 */
import { CliffscopeError } from '../errors.js';

export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new CliffscopeError('bad-argument', `seed must be an integer, got ${seed}`);
    let s = Number(BigInt.asUintN(32, BigInt(seed))); // seed mod 2^32, negative seeds included
    s = Math.imul(s ^ (s >>> 16), 0x7feb352d) >>> 0;
    s = Math.imul(s ^ (s >>> 15), 0x846ca68b) >>> 0;
    this.state = (s ^ (s >>> 16)) >>> 0;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    const s = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** The positions 0..n-1 in a seeded random order. */
export function shuffledIndices(n: number, seed: number): number[] {
  const rng = new SeededRandom(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

export interface SplitOptions<T> {
  /** Fraction of items that go to `train` (0..1); the rest go to `test`. */
  train: number;
  seed: number;
  /**
   * Split each group (e.g. by label) separately, so both sides keep the groups' proportions. Groups are visited in
   * first-seen order and each is shuffled with the seed, so the result is still fully determined by the seed.
   */
  stratify?: (item: T) => string;
}

/**
 * Partition items into train and test. Each group of n items sends round(n * train) to train. Both sides keep the
 * input order (the split chooses membership, not order), which keeps exports and diffs readable.
 */
export function splitItems<T>(items: readonly T[], opts: SplitOptions<T>): { train: T[]; test: T[] } {
  if (!(opts.train >= 0 && opts.train <= 1)) throw new CliffscopeError('bad-argument', `train fraction must be within 0..1, got ${opts.train}`);
  const groups = new Map<string, number[]>();
  items.forEach((item, i) => {
    const g = opts.stratify ? opts.stratify(item) : '';
    const list = groups.get(g);
    if (list) list.push(i);
    else groups.set(g, [i]);
  });
  const inTrain = new Uint8Array(items.length);
  let groupNo = 0;
  for (const members of groups.values()) {
    // Each group gets its own stream (seed + group number) so adding a group does not reshuffle the others.
    const order = shuffledIndices(members.length, opts.seed + groupNo++);
    const k = Math.round(members.length * opts.train);
    for (let r = 0; r < k; r++) inTrain[members[order[r]!]!] = 1;
  }
  const train: T[] = [];
  const test: T[] = [];
  items.forEach((item, i) => (inTrain[i] ? train : test).push(item));
  return { train, test };
}

/** n items drawn without replacement (all of them when n ≥ length), in input order. */
export function sampleItems<T>(items: readonly T[], n: number, seed: number): T[] {
  if (!Number.isInteger(n) || n < 0) throw new CliffscopeError('bad-argument', `sample size must be a non-negative integer, got ${n}`);
  const chosen = shuffledIndices(items.length, seed).slice(0, n).sort((a, b) => a - b);
  return chosen.map((i) => items[i]!);
}
