/**
 * A small seeded fuzzing harness: each run draws inputs from a generator for a bounded time (a few seconds), checks
 * an invariant on each, and on failure names the seed and the iteration so the case can be replayed exactly
 * (CLIFFSCOPE_FUZZ_SEED=N npx vitest run tests/fuzz). CI runs the default seed; set CLIFFSCOPE_FUZZ_MS to fuzz longer.
 */
import { mulberry32 } from '../fixtures/tiny-checkpoints.js';

export const FUZZ_SEED = Number(process.env.CLIFFSCOPE_FUZZ_SEED ?? 20261205);
export const FUZZ_MS = Number(process.env.CLIFFSCOPE_FUZZ_MS ?? 2500);

export class Rand {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  float(): number {
    return this.next();
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  bytes(n: number): Uint8Array {
    return Uint8Array.from({ length: n }, () => Math.floor(this.next() * 256));
  }
  /** Mostly printable text with the occasional control or multi-byte character. */
  text(max: number): string {
    const n = this.int(0, max);
    let s = '';
    for (let i = 0; i < n; i++) {
      const r = this.next();
      s += r < 0.8 ? String.fromCharCode(32 + Math.floor(this.next() * 95)) : r < 0.9 ? this.pick(['\n', '\r\n', '\t', '"', ',', '\\', '{', '}', '[', ']']) : this.pick(['é', '中', '😀', '\u0000', '\ufeff', '\ufffd']);
    }
    return s;
  }
}

/**
 * Run `check` on `generate`d inputs for `ms` (at least `min` iterations). Returns how many ran. A failing input is
 * rethrown with the seed, iteration and a description of the input.
 */
export async function fuzz<T>(
  name: string,
  generate: (r: Rand, i: number) => T,
  check: (input: T, i: number) => void | Promise<void>,
  opts: { ms?: number; min?: number; max?: number; seed?: number; describe?: (input: T) => string } = {},
): Promise<number> {
  const seed = opts.seed ?? FUZZ_SEED;
  const rand = new Rand(seed);
  const deadline = Date.now() + (opts.ms ?? FUZZ_MS);
  let i = 0;
  for (; i < (opts.max ?? Infinity) && (Date.now() < deadline || i < (opts.min ?? 20)); i++) {
    const input = generate(rand, i);
    try {
      await check(input, i);
    } catch (e) {
      const shown = (opts.describe ?? ((x) => JSON.stringify(x)?.slice(0, 2000)))(input);
      throw new Error(`${name}: seed ${seed}, iteration ${i} failed: ${(e as Error).message}\ninput: ${shown}`, { cause: e });
    }
  }
  return i;
}
