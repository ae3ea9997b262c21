import { describe, expect, it } from 'vitest';
import * as formatModule from '../../src/renderer/src/lib/format.js';
import {
  baseName,
  eta,
  fmtBytes,
  fmtDuration,
  fmtInt,
  fmtNum,
  fmtPct,
  fmtTime,
  runLabel,
} from '../../src/renderer/src/lib/format.js';

describe('number formatting', () => {
  it('shows fixed decimals and a dash for missing values', () => {
    expect(fmtNum(0.98384913)).toBe('0.984');
    expect(fmtNum(0.05, 1)).toBe('0.1');
    expect(fmtNum(null)).toBe('—');
    expect(fmtNum(undefined)).toBe('—');
    expect(fmtNum(Number.NaN)).toBe('—');
    expect(fmtNum(Number.POSITIVE_INFINITY)).toBe('—');
  });

  it('formats percentages, integers and bytes', () => {
    expect(fmtPct(1)).toBe('100.0%');
    expect(fmtPct(0.0833, 1)).toBe('8.3%');
    expect(fmtPct(0.5, 0)).toBe('50%');
    expect(fmtPct(null)).toBe('—');
    expect(fmtInt(1234567)).toBe('1,234,567');
    expect(fmtBytes(512)).toBe('512 B');
    expect(fmtBytes(1536)).toBe('1.5 KiB');
    expect(fmtBytes(3 * 1024 ** 3)).toBe('3.0 GiB');
  });

  it('formats durations at a readable resolution', () => {
    expect(fmtDuration(850)).toBe('850 ms');
    expect(fmtDuration(12_400)).toBe('12 s');
    expect(fmtDuration(185_000)).toBe('3 min 05 s');
    expect(fmtDuration(3_720_000)).toBe('1 h 02 min');
    expect(fmtDuration(null)).toBe('—');
  });

  it('reads the store’s timestamps (ISO or SQLite text, UTC)', () => {
    const local = fmtTime('2026-01-02T03:04:05Z');
    expect(local).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$/);
    expect(fmtTime('2026-01-02 03:04:05')).toBe(local);
    expect(fmtTime(null)).toBe('—');
    expect(fmtTime('not a date')).toBe('not a date');
  });
});

describe('eta', () => {
  it('extrapolates the rate so far', () => {
    expect(eta(0, 10_000, 25, 100)).toBe(30_000);
    expect(eta(0, 10_000, 100, 100)).toBe(0);
  });
  it('is unknown without a total, before any progress, or in the first half second', () => {
    expect(eta(0, 10_000, 5, null)).toBeNull();
    expect(eta(0, 10_000, 0, 100)).toBeNull();
    expect(eta(0, 200, 5, 100)).toBeNull();
  });
});

describe('labels', () => {
  it('names runs and files', () => {
    expect(runLabel({ id: 4, kind: 'trace', name: 'demo', status: 'done' })).toBe('#4 trace "demo"');
    expect(runLabel({ id: 5, kind: 'probe', name: null, status: 'failed' }, { kind: false })).toBe('#5 (failed)');
    expect(baseName('/a/b/demo.cliffscope')).toBe('demo.cliffscope');
    expect(baseName('C:\\x\\y.cliffscope')).toBe('y.cliffscope');
  });
});

describe('compared metrics', () => {
  it('keep integers, round the rest to 4 decimals, and sign deltas', () => {
    const { fmtMetric, fmtDelta } = formatModule;
    expect(fmtMetric(30)).toBe('30');
    expect(fmtMetric(0.93024715979894)).toBe('0.9302');
    expect(fmtMetric(null)).toBe('—');
    expect(fmtDelta(-0.9194)).toBe('−0.9194');
    expect(fmtDelta(0.5)).toBe('+0.5000');
    expect(fmtDelta(0)).toBe('+0');
    expect(fmtDelta(null)).toBe('');
  });

  it('show each headline in its unit: ASR and accuracies in %, differences of them in percentage points', () => {
    const { fmtHeadline, fmtHeadlineDelta, itemNumber } = formatModule;
    expect(fmtHeadline(0.4, 'percent')).toBe('40.0%');
    expect(fmtHeadlineDelta(-0.6, 'percent')).toBe('−60.0 pp');
    expect(fmtHeadline(1024, 'count')).toBe('1,024');
    expect(fmtHeadlineDelta(-2, 'count')).toBe('−2');
    expect(fmtHeadline(3.25, 'tokens')).toBe('3.3 tok');
    expect(fmtHeadline(0.93024715979894, 'number')).toBe('0.9302');
    expect(fmtHeadline(null, 'percent')).toBe('—');
    expect(fmtHeadlineDelta(null, 'percent')).toBe('');
    expect(itemNumber(0)).toBe(1);
  });
});
