/**
 * The study on a real (single-node) Slurm: `slurm plan` a verb as a 3-task array, `slurm submit` it with sbatch,
 * `slurm collect` the shards back: the merged run equals the one-process run, item for item and in every aggregate,
 * for transcripts, an ablation sweep with random controls, and Cliff-as-a-Judge selection. A task killed with
 * scancel shows as cancelled, and collect resubmits only that task; the final run is the same.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo } from '../../src/main/api/demo/run-demo.js';
import { commandRunner, readExitCode, readManifest } from '../../src/main/api/cluster/slurm.js';
import { cli } from '../support/cli.js';
import { runContents } from '../support/run-contents.js';
import { type SlurmStart, startLocalSlurm, waitFor } from '../support/slurm.js';

let root: string;
let project: string;
let model: string;
let runs: Record<string, number>;
let slurm: SlurmStart;
let savedConf: string | undefined;
let n = 0;

beforeAll(async () => {
  slurm = startLocalSlurm();
  if (!slurm.ok) return;
  // The CLI's Slurm commands read SLURM_CONF from the environment, as on a login node.
  savedConf = process.env.SLURM_CONF;
  process.env.SLURM_CONF = slurm.cluster.env.SLURM_CONF;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-slurm-e2e-'));
  project = path.join(root, 'demo.cliffscope');
  const report = await runDemo({ projectFile: project, cacheRoot: path.join(root, 'cache'), threads: 1 });
  model = report.modelDir;
  runs = report.runs;
}, 300_000);

afterAll(() => {
  if (slurm?.ok) slurm.cluster.stop();
  if (savedConf === undefined) delete process.env.SLURM_CONF;
  else process.env.SLURM_CONF = savedConf;
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

const copy = (tag: string) => {
  const f = path.join(root, `${n++}-${tag}.cliffscope`);
  fs.copyFileSync(project, f);
  return f;
};

async function status(dir: string) {
  const r = await cli('slurm', 'status', dir, '--json');
  return JSON.parse(r.stdout) as { shards: { index: number; state: string; done: number; items: number }[]; submissions: { jobId: string; array: string }[] };
}

/** Plan the verb as `shards` tasks against a copy of the project, submit, and wait until every task has ended. */
async function planAndRun(verb: string[], shards = 3) {
  const target = copy('target');
  const dir = path.join(root, `${n++}-job`);
  const plan = await cli('slurm', 'plan', target, ...verb, '--threads', '1', '--shards', String(shards), '--dir', dir, '--cpus-per-task', '1', '--json');
  expect(plan.code, plan.stderr).toBe(0);
  const submit = await cli('slurm', 'submit', dir);
  expect(submit.code, submit.stderr).toBe(0);
  return { target, dir, runUid: (JSON.parse(plan.stdout) as { runUid: string }).runUid };
}

async function finished(dir: string, ms = 150_000) {
  const m = readManifest(dir);
  await waitFor(() => Array.from({ length: m.shards }, (_, i) => readExitCode(dir, i)).every((c) => c !== null), ms, `the tasks of ${dir}`);
}

async function single(verb: string[]) {
  const file = copy('single');
  const r = await cli(verb[0]!, file, ...verb.slice(1), '--threads', '1', '--json');
  expect(r.code, r.stderr).toBe(0);
  return runContents(file, { id: (JSON.parse(r.stdout) as { run: { id: number } }).run.id });
}

describe('a study on a single-node Slurm', () => {
  const skipUnless = (ctx: { skip: (note?: string) => void }) => {
    if (!slurm.ok) ctx.skip(slurm.reason);
  };

  it('transcripts, an ablation sweep with random controls, and select: sbatch, collect, identical to one process', async (ctx) => {
    skipUnless(ctx);
    const verbs = [
      ['transcripts', '--model', model, '--dataset', 'demo-harmful', '--max-new-tokens', '40', '--probe', '1', '--batch', '1'],
      ['ablate', '--model', model, '--heads-run', String(runs.heads), '--harmful', 'demo-harmful', '--harmless', 'demo-harmless', '--probe', '1', '--fractions', '0,0.03', '--gammas', '0', '--max-new-tokens', '40', '--batch', '1'],
      ['select', '--model', model, '--probe', '1', '--dataset', 'demo-safety-train', '--fraction', '0.25'],
    ];
    for (const verb of verbs) {
      const job = await planAndRun(verb);
      await finished(job.dir);
      expect((await status(job.dir)).shards.map((s) => s.state)).toEqual(['done', 'done', 'done']);
      const collect = await cli('slurm', 'collect', job.dir, '--json');
      expect(collect.code, collect.stderr).toBe(0);
      const c = JSON.parse(collect.stdout) as { merge: { complete: boolean; items: { done: number; expected: number } }; resubmitted: unknown };
      expect(c.merge.complete).toBe(true);
      expect(c.resubmitted).toBeNull();
      expect(runContents(job.target, { uid: job.runUid }), verb[0]).toEqual(await single(verb));
    }
  }, 900_000);

  it('a task killed with scancel: status shows it, collect resubmits only it, and the run comes out the same', async (ctx) => {
    skipUnless(ctx);
    // Long enough answers that a task is still running when it is cancelled.
    const verb = ['transcripts', '--model', model, '--dataset', 'demo-harmless', '--max-new-tokens', '400', '--batch', '1'];
    const job = await planAndRun(verb);
    const jobId = readManifest(job.dir).submissions[0]!.jobId;
    // Task 1 is cancelled once it has started (its log has a line), before it can have finished everything.
    const log = path.join(job.dir, 'logs', 'task-1.out');
    await waitFor(() => fs.existsSync(log) && fs.readFileSync(log, 'utf8').length > 0, 120_000, 'task 1 to start');
    const cancel = await commandRunner()('scancel', [`${jobId}_1`]);
    expect(cancel.code, cancel.stderr).toBe(0);
    await finished(job.dir);
    const mid = await status(job.dir);
    expect(mid.shards[1]!.state).toBe('cancelled');
    expect(mid.shards.filter((s) => s.index !== 1).map((s) => s.state)).toEqual(['done', 'done']);

    const first = await cli('slurm', 'collect', job.dir, '--json');
    const c = JSON.parse(first.stdout) as { merge: { complete: boolean; missing: { shard: number }[] } | null; resubmitted: { shards: number[] } | null };
    expect(c.resubmitted?.shards).toEqual([1]);
    if (c.merge) expect(c.merge.missing.every((m) => m.shard === 1)).toBe(true);
    expect((await status(job.dir)).submissions.at(-1)!.array).toBe('1');
    await waitFor(() => readExitCode(job.dir, 1) === 0, 150_000, 'the resubmitted task');
    const last = await cli('slurm', 'collect', job.dir, '--json');
    expect(last.code, last.stderr).toBe(0);
    expect((JSON.parse(last.stdout) as { resubmitted: unknown }).resubmitted).toBeNull();
    expect(runContents(job.target, { uid: job.runUid })).toEqual(await single(verb));
  }, 600_000);
});
