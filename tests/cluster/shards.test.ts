import { describe, expect, it } from 'vitest';
import { assignShards, parseShard, shardKeys } from '../../src/main/api/cluster/shards.js';
import { expectBadArgument } from '../support/assertions.js';

describe('parseShard', () => {
  it('reads I/N', () => {
    expect(parseShard('0/4')).toEqual({ index: 0, count: 4 });
    expect(parseShard('3/4')).toEqual({ index: 3, count: 4 });
  });

  it('refuses indexes outside 0..N-1, zero shards and junk, naming the fix', () => {
    for (const bad of ['4/4', '1/0', '-1/3', '1.5/3', 'a/b', '', '2']) expectBadArgument(() => parseShard(bad), /--shard/);
  });

  it('auto reads a Slurm array task, and the planned count when a resubmission runs only some tasks', () => {
    expect(parseShard('auto', { SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_COUNT: '3', SLURM_ARRAY_TASK_MIN: '0' })).toEqual({ index: 2, count: 3 });
    // sbatch --array=1,2 of a 3-shard plan: Slurm says count 2, min 1; the job script states the plan's count.
    expect(parseShard('auto', { SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_COUNT: '2', SLURM_ARRAY_TASK_MIN: '1', CLIFFSCOPE_SHARD_COUNT: '3' })).toEqual({ index: 2, count: 3 });
    expectBadArgument(() => parseShard('auto', { SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_COUNT: '2', SLURM_ARRAY_TASK_MIN: '1' }), /starts at 1/);
  });

  it('auto reads a Kubernetes indexed job with its count, and says what is missing otherwise', () => {
    expect(parseShard('auto', { JOB_COMPLETION_INDEX: '1', CLIFFSCOPE_SHARD_COUNT: '5' })).toEqual({ index: 1, count: 5 });
    expectBadArgument(() => parseShard('auto', { JOB_COMPLETION_INDEX: '1' }), /CLIFFSCOPE_SHARD_COUNT/);
    expectBadArgument(() => parseShard('auto', {}), /SLURM_ARRAY_TASK_ID/);
  });
});

describe('assignShards', () => {
  const units = Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, cost: i < 4 ? 1000 : 10 + (i % 7) }));

  it('puts every item in exactly one shard, each shard in input order', () => {
    const shards = assignShards(units, 3);
    expect(shards.flat().sort()).toEqual(units.map((u) => u.key).sort());
    for (const s of shards) {
      const positions = s.map((k) => units.findIndex((u) => u.key === k));
      expect(positions).toEqual([...positions].sort((a, b) => a - b));
    }
  });

  it('balances by cost: the four long prompts do not land in one shard', () => {
    const shards = assignShards(units, 4);
    for (const s of shards) expect(s.filter((k) => Number(k.slice(1)) < 4)).toHaveLength(1);
    const loads = shards.map((s) => s.reduce((a, k) => a + units.find((u) => u.key === k)!.cost, 0));
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(16);
  });

  it('is deterministic and independent of the input order', () => {
    const reversed = [...units].reverse();
    const a = assignShards(units, 3).map((s) => [...s].sort());
    const b = assignShards(reversed, 3).map((s) => [...s].sort());
    expect(a).toEqual(b);
    expect(shardKeys(units, { index: 1, count: 3 })).toEqual(new Set(assignShards(units, 3)[1]));
  });

  it('gives empty shards when there are more shards than items', () => {
    const shards = assignShards(units.slice(0, 2), 4);
    expect(shards.map((s) => s.length).sort()).toEqual([0, 0, 1, 1]);
  });

  it('refuses a cost that is not a finite number', () => {
    expectBadArgument(() => assignShards([{ key: 'a', cost: NaN }], 2), /cost/);
  });
});
