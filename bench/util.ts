/** Small helpers shared by the bench's parent and worker processes. */
import fs from 'node:fs';

export const log = (msg: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

export const now = (): number => performance.now() / 1000;

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface Stat {
  median: number;
  min: number;
  max: number;
  values: number[];
}

export function stat(values: number[]): Stat {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), values };
}

/** Peak resident set size of this process so far, in bytes (Linux reports kilobytes). */
export function maxRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

export interface MemorySnapshot {
  /** Resident now. */
  rssBytes: number;
  /** Peak resident so far. */
  peakRssBytes: number;
  /** Anonymous (heap, prepacked weights) and file-backed (mmapped weights) parts of rssBytes; Linux only. */
  rssAnonBytes: number | null;
  rssFileBytes: number | null;
}

/** Current memory of this process, split by kind where /proc says. */
export function memorySnapshot(): MemorySnapshot {
  const snap: MemorySnapshot = { rssBytes: process.memoryUsage().rss, peakRssBytes: maxRssBytes(), rssAnonBytes: null, rssFileBytes: null };
  try {
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const kb = (key: string) => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
      return m ? Number(m[1]) * 1024 : null;
    };
    snap.rssAnonBytes = kb('RssAnon');
    snap.rssFileBytes = kb('RssFile');
  } catch {
    // Not Linux: rss and peak only.
  }
  return snap;
}

/** Deterministic token ids in [0, vocab). */
export function randomIds(count: number, vocab: number, seed: number): number[] {
  let a = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out.push(((t ^ (t >>> 14)) >>> 0) % vocab);
  }
  return out;
}

export const gb = (bytes: number): string => `${(bytes / 1e9).toFixed(2)} GB`;
