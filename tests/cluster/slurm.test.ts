import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type JobManifest,
  jobPaths,
  parseSacct,
  parseSqueue,
  readExitCode,
  readManifest,
  commandRunner,
  type Runner,
  sbatchScript,
  shardState,
  shellQuote,
  slurmTaskStates,
  submitJob,
  taskScript,
  writeJobDir,
} from '../../src/main/api/cluster/slurm.js';
import { CliffscopeError } from '../../src/main/engine/errors.js';
import { expectBadArgument } from '../support/assertions.js';
import { type SlurmStart, startLocalSlurm, waitFor } from '../support/slurm.js';

function manifest(over: Partial<JobManifest> = {}): JobManifest {
  return {
    format: 'cliffscope-slurm-job',
    version: 1,
    createdAt: '2026-12-06T00:00:00.000Z',
    project: '/data/study.cliffscope',
    run: { uid: 'abcdef0123456789', kind: 'generate', name: null },
    modelHash: 'f00d',
    verb: ['transcripts', '--model', '/models/R1 distill', '--dataset', "it's"],
    shards: 3,
    items: [['a'], ['b'], ['c']],
    resources: {},
    command: { node: 'node', cliffscope: '/opt/cliffscope/bin/cliffscope.js' },
    setup: null,
    submissions: [],
    ...over,
  };
}

describe('job scripts', () => {
  it('quotes words only where a shell needs it', () => {
    expect(shellQuote('/a/b-c_d.txt')).toBe('/a/b-c_d.txt');
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('$(rm -rf /)')).toBe("'$(rm -rf /)'");
  });

  it('writes the array, per-task logs and each resource given, nothing else', () => {
    const s = sbatchScript(manifest({ resources: { partition: 'gpu', gpusPerTask: 1, cpusPerTask: 8, mem: '64G', time: '04:00:00', account: 'safety', maxParallel: 2 } }), '/jobs/j1');
    expect(s).toContain('#SBATCH --array=0-2%2');
    expect(s).toContain('#SBATCH --output=/jobs/j1/logs/task-%a.out');
    for (const line of ['--partition=gpu', '--gpus-per-task=1', '--cpus-per-task=8', '--mem=64G', '--time=04:00:00', '--account=safety']) expect(s).toContain(`#SBATCH ${line}`);
    const plain = sbatchScript(manifest(), '/jobs/j1');
    expect(plain).toContain('#SBATCH --array=0-2\n');
    expect(plain).not.toMatch(/--partition|--gpus|--mem|--time|--account/);
  });

  it('refuses resource values that would inject into the script', () => {
    expectBadArgument(() => sbatchScript(manifest({ resources: { partition: 'gpu\n#SBATCH --uid=0' } }), '/j'), /--partition/);
    expectBadArgument(() => sbatchScript(manifest({ resources: { mem: 'lots' } }), '/j'), /--mem/);
    expectBadArgument(() => sbatchScript(manifest({ resources: { time: '4h' } }), '/j'), /--time/);
    expectBadArgument(() => sbatchScript(manifest({ resources: { cpusPerTask: 0 } }), '/j'), /--cpus-per-task/);
  });

  it('runs the verb on its shard with every argument quoted, and includes the setup lines', () => {
    const t = taskScript(manifest({ setup: 'module load cuda/12\nsource ~/venv/bin/activate\n' }), '/jobs/j 1');
    expect(t).toContain(`node /opt/cliffscope/bin/cliffscope.js transcripts --model '/models/R1 distill' --dataset 'it'\\''s' '/jobs/j 1/input.cliffscope' --shard "$i/3" --shard-out '/jobs/j 1/shards'/shard-$i.cliffscope`);
    expect(t).toContain('module load cuda/12');
    expect(t).toContain('export CLIFFSCOPE_SHARD_COUNT=3');
  });
});

describe('reading Slurm', () => {
  const ids = new Set(['41']);

  it('squeue -r lines give one state per task of our job only', () => {
    const s = parseSqueue('41_0|RUNNING\n41_2|PENDING\n77_0|RUNNING\n\n', ids);
    expect([...s]).toEqual([
      [0, 'RUNNING'],
      [2, 'PENDING'],
    ]);
  });

  it('sacct lines expand pending ranges and drop the "by uid" of CANCELLED', () => {
    const s = parseSacct('41_0|COMPLETED\n41_1|CANCELLED by 0\n41_[2-4%2]|PENDING\n41_5|TIMEOUT\n', ids);
    expect(Object.fromEntries(s)).toEqual({ 0: 'COMPLETED', 1: 'CANCELLED', 2: 'PENDING', 3: 'PENDING', 4: 'PENDING', 5: 'TIMEOUT' });
  });

  it('a shard is done only with exit code 0; a live task wins over an old exit file', () => {
    expect(shardState(0, undefined, true)).toBe('done');
    expect(shardState(1, undefined, true)).toBe('failed');
    expect(shardState(143, undefined, true)).toBe('cancelled');
    expect(shardState(1, 'PENDING', true)).toBe('pending');
    expect(shardState(null, 'RUNNING', true)).toBe('running');
    expect(shardState(null, 'CANCELLED', true)).toBe('cancelled');
    expect(shardState(null, 'OUT_OF_MEMORY', true)).toBe('failed');
    expect(shardState(null, undefined, true)).toBe('lost');
    expect(shardState(null, undefined, false)).toBe('not-submitted');
  });

  it('without accounting, states come from squeue and a note says so', async () => {
    const fake: Runner = async (cmd) =>
      cmd === 'sacct' ? { code: 1, stdout: '', stderr: 'Slurm accounting storage is disabled\n' } : { code: 0, stdout: '41_1|RUNNING\n', stderr: '' };
    const { states, notes } = await slurmTaskStates(['41'], fake);
    expect(Object.fromEntries(states)).toEqual({ 1: 'RUNNING' });
    expect(notes.join()).toMatch(/accounting storage is disabled/);
  });

  it('a failing sbatch is an error that says what sbatch said', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-job-'));
    try {
      writeJobDir(dir, manifest());
      const fake: Runner = async () => ({ code: 1, stdout: '', stderr: 'sbatch: error: invalid partition specified: gpu\n' });
      const err = await submitJob(dir, fake).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CliffscopeError);
      expect((err as CliffscopeError).message).toMatch(/invalid partition/);
      expect(readManifest(dir).submissions).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to plan over an existing job and to read a directory that is not one', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-job-'));
    try {
      expect(() => readManifest(dir)).toThrow(/no such file/);
      writeJobDir(dir, manifest());
      expectBadArgument(() => writeJobDir(dir, manifest()), /already holds a job/);
      fs.writeFileSync(jobPaths(dir).manifest, '{"format":"something else"}');
      expectBadArgument(() => readManifest(dir), /not a Cliffscope job manifest/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The job directory against a real Slurm: the array runs every shard, a failed and a cancelled task are told apart
// from finished ones, and a resubmission runs only the tasks named.
describe('a job directory on a real single-node Slurm', () => {
  let start: SlurmStart;
  let dir: string;
  beforeAll(() => {
    start = startLocalSlurm();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-job-'));
  });
  afterAll(() => {
    if (start?.ok) start.cluster.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs the array, tells failed and cancelled shards apart, and resubmits only them', async (ctx) => {
    if (!start.ok) return ctx.skip(start.reason);
    const env = start.cluster.env;
    const run = commandRunner(start.cluster.env);
    // A stand-in for cliffscope: shard 1 fails on its first attempt, shard 2 sleeps until cancelled on its first.
    const fake = path.join(dir, 'fake-cliffscope.js');
    fs.writeFileSync(
      fake,
      `const fs = require('fs');
const args = process.argv.slice(2);
const [i] = args[args.indexOf('--shard') + 1].split('/');
const out = args[args.indexOf('--shard-out') + 1];
const tries = out + '.tries';
const n = fs.existsSync(tries) ? Number(fs.readFileSync(tries, 'utf8')) + 1 : 1;
fs.writeFileSync(tries, String(n));
if (i === '1' && n === 1) { console.error('shard 1: simulated failure'); process.exit(3); }
if (i === '2' && n === 1) { setTimeout(() => {}, 600000); }
else fs.writeFileSync(out, 'shard ' + i + ' of ' + process.env.CLIFFSCOPE_SHARD_COUNT);
`,
    );
    const jobDir = path.join(dir, 'job');
    writeJobDir(jobDir, manifest({ command: { node: process.execPath, cliffscope: fake } }));
    const p = jobPaths(jobDir);
    const first = await submitJob(jobDir, run);
    expect(readManifest(jobDir).submissions).toEqual([first]);

    const states = async () => (await slurmTaskStates([first.jobId], run)).states;
    // Shard 2 is cancelled only once its stand-in has started (counted its try), so its rerun is the second try.
    const started2 = () => fs.existsSync(`${p.shardFile(2)}.tries`);
    await waitFor(async () => readExitCode(jobDir, 0) !== null && readExitCode(jobDir, 1) !== null && started2() && (await states()).get(2) === 'RUNNING', 60_000, 'shards 0 and 1 to end, 2 to run');
    const cancel = await run('scancel', [`${first.jobId}_2`]);
    expect(cancel.code).toBe(0);
    await waitFor(() => readExitCode(jobDir, 2) !== null, 30_000, 'shard 2 to record its cancellation');

    const after = await states();
    const stateOf = (i: number) => shardState(readExitCode(jobDir, i), after.get(i), true);
    expect([0, 1, 2].map(stateOf)).toEqual(['done', 'failed', 'cancelled']);
    expect(fs.readFileSync(p.log(1), 'utf8')).toMatch(/simulated failure/);

    const again = await submitJob(jobDir, run, [1, 2]);
    expect(again.array).toBe('1,2');
    await waitFor(() => readExitCode(jobDir, 1) === 0 && readExitCode(jobDir, 2) === 0, 60_000, 'the resubmitted shards');
    for (const i of [0, 1, 2]) expect(fs.readFileSync(p.shardFile(i), 'utf8')).toBe(`shard ${i} of 3`);
    // Shard 0 ran once: the resubmission touched only 1 and 2.
    expect(fs.readFileSync(`${p.shardFile(0)}.tries`, 'utf8')).toBe('1');
    expect(readManifest(jobDir).submissions.map((s) => s.jobId)).toEqual([first.jobId, again.jobId]);
  }, 180_000);
});
