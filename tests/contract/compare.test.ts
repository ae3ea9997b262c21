import { describe, expect, it } from 'vitest';
import { configDiff, flattenConfig, headlineUnit } from '../../src/shared/compare.js';

describe('config diff', () => {
  it('flattens nested settings to dotted paths, lists as values', () => {
    expect([...flattenConfig({ probeId: 3, source: { kind: 'run', runId: 7 }, fractions: [0, 0.5], options: {} })]).toEqual([
      ['probeId', 3],
      ['source.kind', 'run'],
      ['source.runId', 7],
      ['fractions', [0, 0.5]],
    ]);
  });

  it('keeps only what differs, with each run’s value (a missing path is null)', () => {
    const diff = configDiff([
      { probeId: 3, source: { kind: 'run', runId: 7 }, gammas: [0, 0.5], seed: 1 },
      { probeId: 3, source: { kind: 'run', runId: 8 }, gammas: [0, 0.5] },
      { probeId: 3, source: { kind: 'dataset', datasetId: 2, chat: true }, gammas: [0] },
    ]);
    expect(diff).toEqual([
      { key: 'gammas', values: [[0, 0.5], [0, 0.5], [0]] },
      { key: 'seed', values: [1, null, null] },
      { key: 'source.chat', values: [null, null, true] },
      { key: 'source.datasetId', values: [null, null, 2] },
      { key: 'source.kind', values: ['run', 'run', 'dataset'] },
      { key: 'source.runId', values: [7, 8, null] },
    ]);
    expect(configDiff([{ a: 1 }, { a: 1 }])).toEqual([]);
  });

  it('gives ASR and accuracies as percentages, counts as counts, scores as numbers', () => {
    expect(headlineUnit('ablate', 'baselineAsr')).toBe('percent');
    expect(headlineUnit('ablate', 'asr:top:k3:g0')).toBe('percent');
    expect(headlineUnit('judge', 'asr')).toBe('percent');
    expect(headlineUnit('probe', 'valAccuracy')).toBe('percent');
    expect(headlineUnit('probe', 'valAuroc')).toBe('number');
    expect(headlineUnit('trace', 'transcripts')).toBe('count');
    expect(headlineUnit('trace', 'meanMs')).toBe('number');
  });
});
