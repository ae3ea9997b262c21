/**
 * Which share of a run's items one process takes when a run is split over a job array (Slurm, Kubernetes indexed
 * jobs, or by hand): `--shard I/N`, or `--shard auto` from the scheduler's environment.
 *
 * The split is deterministic (the same items, costs and N give the same shards on every machine) and balanced by
 * cost, not by index: items are taken longest first and each goes to the shard with the least work so far (the LPT
 * rule, within 4/3 of the best possible makespan), so one shard does not get every long prompt.
 */
import { CliffscopeError } from '../../engine/errors.js';

export interface ShardSpec {
  /** 0-based. */
  index: number;
  count: number;
}

/** The most shards one run may be split into (a Slurm array's default MaxArraySize is 1001). */
export const MAX_SHARDS = 10_000;

const bad = (message: string, hint?: string) => new CliffscopeError('bad-argument', message, { hint });

/**
 * `I/N` (0 ≤ I < N), or `auto`: Slurm's `SLURM_ARRAY_TASK_ID` / `SLURM_ARRAY_TASK_COUNT` (the array must start at 0
 * and have no gaps, as `cliffscope slurm plan` writes it), else a Kubernetes indexed job's `JOB_COMPLETION_INDEX`
 * with the count from `CLIFFSCOPE_SHARD_COUNT`.
 */
export function parseShard(text: string, env: NodeJS.ProcessEnv = process.env): ShardSpec {
  if (text === 'auto') return shardFromEnvironment(env);
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw bad(`--shard must be I/N (e.g. 0/4) or auto, got "${text}"`);
  return checkShard(Number(m[1]), Number(m[2]), `--shard ${text}`);
}

function checkShard(index: number, count: number, what: string): ShardSpec {
  if (!(Number.isSafeInteger(count) && count >= 1 && count <= MAX_SHARDS)) throw bad(`${what}: the shard count must be 1..${MAX_SHARDS}`);
  if (!(Number.isSafeInteger(index) && index >= 0 && index < count)) throw bad(`${what}: the shard index must be 0..${count - 1} (shards count from 0)`);
  return { index, count };
}

function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw bad(`--shard auto: ${name} is "${v}", not a whole number`);
  return Number(v);
}

function shardFromEnvironment(env: NodeJS.ProcessEnv): ShardSpec {
  const slurmId = envInt(env, 'SLURM_ARRAY_TASK_ID');
  if (slurmId !== undefined) {
    // A resubmission of some tasks only (--array=2,5) has its own count and minimum: a planned job states its count.
    const planned = envInt(env, 'CLIFFSCOPE_SHARD_COUNT');
    if (planned !== undefined) return checkShard(slurmId, planned, 'SLURM_ARRAY_TASK_ID');
    const count = envInt(env, 'SLURM_ARRAY_TASK_COUNT');
    const min = envInt(env, 'SLURM_ARRAY_TASK_MIN') ?? 0;
    if (count === undefined) throw bad('--shard auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not', 'run it as an array job (sbatch --array=0-N)');
    if (min !== 0) throw bad(`--shard auto: the array starts at ${min}; shards are numbered from 0`, 'submit with --array=0-(N-1), set CLIFFSCOPE_SHARD_COUNT, or give --shard I/N');
    return checkShard(slurmId, count, 'SLURM_ARRAY_TASK_ID');
  }
  const k8s = envInt(env, 'JOB_COMPLETION_INDEX');
  if (k8s !== undefined) {
    const count = envInt(env, 'CLIFFSCOPE_SHARD_COUNT');
    if (count === undefined) throw bad('--shard auto: JOB_COMPLETION_INDEX is set but CLIFFSCOPE_SHARD_COUNT is not', "set it to the job's completions");
    return checkShard(k8s, count, 'JOB_COMPLETION_INDEX');
  }
  throw bad('--shard auto: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set', 'give --shard I/N, or run inside an array job');
}

export interface ShardUnit {
  /** The item key (unique within the run). */
  key: string;
  /** Relative work, e.g. prompt tokens + tokens to generate. Must be finite and ≥ 0. */
  cost: number;
}

/**
 * Split units into `count` shards, balanced by cost (longest first to the least-loaded shard; ties by key, then by
 * shard index). Each shard lists its keys in the input order.
 */
export function assignShards(units: readonly ShardUnit[], count: number): string[][] {
  checkShard(0, count, 'shards');
  const order = units.map((u, i) => ({ ...u, i }));
  for (const u of order) if (!(Number.isFinite(u.cost) && u.cost >= 0)) throw bad(`item ${u.key}: cost ${u.cost} is not a finite number ≥ 0`);
  order.sort((a, b) => b.cost - a.cost || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const load = new Array<number>(count).fill(0);
  const members: { key: string; i: number }[][] = Array.from({ length: count }, () => []);
  for (const u of order) {
    let best = 0;
    for (let s = 1; s < count; s++) if (load[s]! < load[best]!) best = s;
    load[best]! += u.cost;
    members[best]!.push(u);
  }
  return members.map((m) => m.sort((a, b) => a.i - b.i).map((u) => u.key));
}

/** The keys of one shard. */
export function shardKeys(units: readonly ShardUnit[], shard: ShardSpec): Set<string> {
  return new Set(assignShards(units, shard.count)[shard.index]!);
}
