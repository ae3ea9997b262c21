/**
 * The study bench's pieces (bench/study.ts): the seeded heavy-tailed length mix, the ideal schedule a run's
 * occupancy is read against, and — on a tiny model — that a transcripts run generates exactly the forced lengths
 * and that continuous batching follows the ideal schedule step for step.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admissionOrder, lengthMix, scheduleOccupancy, transcriptsRun } from '../../bench/study.js';
import { loadModel, type LoadedModel } from '../../src/main/engine/runtime/model.js';
import { writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';

describe('length mix', () => {
  it('is seeded, bounded and heavy-tailed', () => {
    const spec = { count: 400, min: 8, max: 4096, alpha: 1.2, seed: 1 };
    const a = lengthMix(spec);
    expect(lengthMix(spec)).toEqual(a);
    expect(lengthMix({ ...spec, seed: 2 })).not.toEqual(a);
    expect(a.every((n) => Number.isInteger(n) && n >= 8 && n <= 4096)).toBe(true);
    const sorted = [...a].sort((x, y) => x - y);
    const median = sorted[200]!;
    const mean = a.reduce((x, y) => x + y, 0) / a.length;
    // Most answers short, a few very long: the mean well above the median, the longest far above both.
    expect(median).toBeLessThan(20);
    expect(mean).toBeGreaterThan(1.5 * median);
    expect(sorted.at(-1)!).toBeGreaterThan(20 * median);
  });
});

describe('ideal schedule', () => {
  it('continuous batching refills a row as soon as its answer ends', () => {
    // Decode steps per answer: length - 1 (the first token comes from the prefill).
    expect(scheduleOccupancy([3, 1, 2], [0, 1, 2], 2, 'continuous')).toEqual({ decodeSteps: 2, occupancy: 3 / 4 });
    expect(scheduleOccupancy([5, 5, 5, 5], [0, 1, 2, 3], 2, 'continuous')).toEqual({ decodeSteps: 8, occupancy: 1 });
    // One long answer holds the last steps alone.
    expect(scheduleOccupancy([9, 2, 2, 2], [0, 1, 2, 3], 2, 'continuous')).toEqual({ decodeSteps: 8, occupancy: 11 / 16 });
  });

  it('static batching runs each group to its longest answer', () => {
    expect(scheduleOccupancy([9, 2, 2, 2], [0, 1, 2, 3], 2, 'static')).toEqual({ decodeSteps: 9, occupancy: 11 / 18 });
    expect(scheduleOccupancy([9, 2, 2, 2], [1, 2, 0, 3], 2, 'static')).toEqual({ decodeSteps: 9, occupancy: 11 / 18 });
  });

  it('admits the shortest prompts first, as generate does', () => {
    expect(admissionOrder([30, 10, 20, 10])).toEqual([1, 3, 2, 0]);
  });
});

describe('transcripts run on a tiny model', () => {
  let root: string;
  let model: LoadedModel;
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-study-'));
    writeTinyCheckpoint(path.join(root, 'm'), 'llama-gqa', { seed: 2 });
    model = await loadModel(path.join(root, 'm'), { cacheRoot: path.join(root, 'cache') });
  });
  afterAll(async () => {
    await model?.session.release();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('generates exactly the forced lengths and decodes on the ideal schedule', async () => {
    const lengths = lengthMix({ count: 12, min: 2, max: 40, alpha: 1.2, seed: 3 });
    const promptLengths = lengths.map((_, i) => 3 + ((i * 5) % 7));
    for (const batching of ['continuous', 'static'] as const) {
      const r = await transcriptsRun(model.session, { lengths, promptLengths, batch: 4, batching, probe: null, seed: 1 });
      const ideal = scheduleOccupancy(lengths, admissionOrder(promptLengths), 4, batching);
      expect(r.usefulTokens).toBe(lengths.reduce((a, b) => a + b, 0));
      expect(r.decodeSteps, batching).toBe(ideal.decodeSteps);
      expect(r.occupancy).toBeCloseTo(ideal.occupancy, 10);
      expect(r.scheduleOccupancy).toBeCloseTo(ideal.occupancy, 10);
    }
  });
});
