/**
 * Sharded runs without a scheduler: each verb with --shard I/N writes its share into a file of its own, and
 * `cliffscope merge` brings the shards back into one run that equals the single-process run — every item, every
 * stored number and every aggregate (ASR per cell, mean MS, head means, the selection). Merging is idempotent, says
 * what is missing, and refuses shards of another run; a partly merged run resumes here.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo } from '../../src/main/api/demo/run-demo.js';
import { cli } from '../support/cli.js';
import { runContents, type RunContents } from '../support/run-contents.js';

let root: string;
let project: string;
let model: string;
let runs: Record<string, number>;
let n = 0;
const copy = (tag: string) => {
  const f = path.join(root, `${n++}-${tag}.cliffscope`);
  fs.copyFileSync(project, f);
  return f;
};

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-sharded-'));
  project = path.join(root, 'demo.cliffscope');
  const report = await runDemo({ projectFile: project, cacheRoot: path.join(root, 'cache'), threads: 1 });
  model = report.modelDir;
  runs = report.runs;
}, 300_000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** The verb run in one process on a copy of the project, and the same verb split into `count` shards merged into another copy. */
async function singleAndMerged(verb: string[], count = 3) {
  const single = copy('single');
  const one = await cli(...verb.slice(0, 1), single, ...verb.slice(1), '--threads', '1', '--json');
  expect(one.code, one.stderr).toBe(0);
  const singleId = (JSON.parse(one.stdout) as { run: { id: number } }).run.id;
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const out = path.join(root, `${n++}-shard-${i}.cliffscope`);
    const r = await cli(...verb.slice(0, 1), project, ...verb.slice(1), '--threads', '1', '--shard', `${i}/${count}`, '--shard-out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    const shard = (JSON.parse(r.stdout) as { shard: { items: number; done: number } }).shard;
    expect(shard.done).toBe(shard.items);
    files.push(out);
  }
  const target = copy('merged');
  const m = await cli('merge', target, ...files, '--json');
  expect(m.code, m.stderr).toBe(0);
  const merged = JSON.parse(m.stdout) as { runUid: string; complete: boolean; items: { missing: number } };
  expect(merged.complete).toBe(true);
  return { single: runContents(single, { id: singleId }), merged: runContents(target, { uid: merged.runUid }), files, target, uid: merged.runUid };
}

/** Transcripts, items, verdicts and selections equal; every float equal within `tol` (0: bit for bit). */
function expectSameRun(a: RunContents, b: RunContents, tol = 0): void {
  expect(b.status).toBe('done');
  const { traces: ta, headMaps: ha, ...restA } = a;
  const { traces: tb, headMaps: hb, ...restB } = b;
  if (tol === 0) {
    expect(b).toEqual(a);
    return;
  }
  expect(restB.transcripts).toEqual(restA.transcripts);
  expect(restB.verdicts).toEqual(restA.verdicts);
  expect(restB.selections).toEqual(restA.selections);
  expect(tb.map((t) => t.of)).toEqual(ta.map((t) => t.of));
  tb.forEach((t, i) =>
    t.scores.forEach((s, j) => {
      const r = ta[i]!.scores[j]!;
      // A position no probe read is NaN in both.
      if (Number.isNaN(r)) expect(s).toBeNaN();
      else expect(Math.abs(s - r)).toBeLessThanOrEqual(tol);
    }),
  );
  expect(hb.length).toBe(ha.length);
}

describe('a verb split with --shard and merged', () => {
  it('transcripts with a live probe: the merged run equals the one-process run, bit for bit at batch 1', async () => {
    const { single, merged } = await singleAndMerged(['transcripts', '--model', model, '--dataset', 'demo-harmful', '--max-new-tokens', '40', '--probe', '1', '--batch', '1']);
    expect(single.transcripts).toHaveLength(30);
    expectSameRun(single, merged);
  });

  it('transcripts batched: the same tokens, items and summary; live scores equal to float32 rounding', async () => {
    const { single, merged } = await singleAndMerged(['transcripts', '--model', model, '--dataset', 'demo-harmful', '--max-new-tokens', '40', '--probe', '1', '--batch', '16']);
    expectSameRun(single, merged, 1e-5);
    expect(merged.items.find((i) => i.key === 'summary')).toEqual(single.items.find((i) => i.key === 'summary'));
  });

  it('an ablation sweep with two judges and two random seeds: every cell, verdict, ASR, κ and spread', async () => {
    const { single, merged } = await singleAndMerged([
      'ablate', '--model', model, '--heads-run', String(runs.heads), '--harmful', 'demo-harmful', '--harmless', 'demo-harmless', '--probe', '1',
      '--fractions', '0,0.03', '--gammas', '0', '--max-new-tokens', '40', '--batch', '1', '--judge', 'jbb,probe', '--random-seeds', '2',
    ]);
    expect(single.cells.length).toBeGreaterThanOrEqual(4);
    expect(single.verdicts.length).toBe(2 * single.transcripts.length);
    const summary = JSON.stringify(single.items.find((i) => i.key === 'summary')!.payload);
    expect(summary).toContain('"randomSpread"');
    expect(summary).toContain('"kappa"');
    expectSameRun(single, merged);
  });

  it("a thinking truncation: every answer, verdict, I' and the per-fraction summary", async () => {
    const { single, merged } = await singleAndMerged(['truncate', '--model', model, '--run', String(runs.transcripts), '--probe', '1', '--fractions', '1,0.5,0', '--max-new-tokens', '20', '--batch', '1']);
    expect(single.transcripts).toHaveLength(90);
    expect(single.verdicts.length).toBe(90);
    expectSameRun(single, merged);
  });

  it("a causal head ranking: every transcript's scaled I′ and the ranking", async () => {
    const { single, merged } = await singleAndMerged(['causal', '--model', model, '--heads-run', String(runs.heads), '--top', '6']);
    expect(single.items.filter((i) => i.key !== 'summary')).toHaveLength(30);
    expectSameRun(single, merged);
  });

  it("select over the model's own transcripts: the same scores and selection", async () => {
    const { single, merged } = await singleAndMerged(['select', '--model', model, '--probe', '1', '--dataset', 'demo-harmful', '--transcripts-run', String(runs.transcripts), '--fraction', '0.25']);
    expect(single.selections.length).toBe(30);
    expectSameRun(single, merged);
  });

  it('select, trace, heads and judge: the same items and aggregates', async () => {
    const verbs = [
      ['select', '--model', model, '--probe', '1', '--dataset', 'demo-safety-train', '--fraction', '0.25'],
      ['trace', '--model', model, '--probe', '1', '--run', String(runs.transcripts)],
      ['heads', '--model', model, '--probe', '1', '--run', String(runs.transcripts)],
      ['judge', '--model', model, '--run', String(runs.transcripts), '--keywords', 'jbb'],
    ];
    for (const verb of verbs) {
      const { single, merged } = await singleAndMerged(verb);
      expect(single.items.length, verb[0]).toBeGreaterThan(1);
      expectSameRun(single, merged);
    }
  });
});

describe('merging', () => {
  it('is safe to repeat, lists what is missing, and a partly merged run resumes here to the same result', async () => {
    const verb = ['transcripts', '--model', model, '--dataset', 'demo-harmless', '--max-new-tokens', '30', '--batch', '1'];
    const { single, files, target, uid } = await singleAndMerged(verb);
    const again = await cli('merge', target, ...files, '--json');
    const r = JSON.parse(again.stdout) as { created: boolean; files: { added: number; identical: number }[] };
    expect(r.created).toBe(false);
    expect(r.files.every((f) => f.added === 0 && f.identical > 0)).toBe(true);

    // Two of three shards: the run is interrupted, names the missing items and their shard, and resumes here.
    const partial = copy('partial');
    const two = await cli('merge', partial, files[0]!, files[2]!);
    expect(two.code).toBe(3);
    expect(two.stdout).toMatch(/items\s+\d+ of 30 done, \d+ missing/);
    expect(two.stdout).toMatch(/from shard 1/);
    const status = runContents(partial, { uid });
    expect(status.status).toBe('interrupted');
    const id = Number(/into run #(\d+)/.exec(two.stdout)![1]);
    const resumed = await cli('transcripts', partial, '--resume', String(id), '--model', model, '--threads', '1');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(runContents(partial, { uid })).toEqual(single);
  });

  it('refuses a shard of another config or run, naming why, and changes nothing', async () => {
    const uid = '0b5e6c1e-0000-4000-8000-0000000000aa';
    const base = ['transcripts', project, '--model', model, '--dataset', 'demo-harmful', '--batch', '1', '--threads', '1', '--run-uid', uid];
    const a = path.join(root, 'clash-a.cliffscope');
    const b = path.join(root, 'clash-b.cliffscope');
    expect((await cli(...base, '--max-new-tokens', '20', '--shard', '0/2', '--shard-out', a)).code).toBe(0);
    expect((await cli(...base, '--max-new-tokens', '25', '--shard', '1/2', '--shard-out', b)).code).toBe(0);
    const target = copy('clash');
    const before = fs.readFileSync(target);
    const r = await cli('merge', target, a, b);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not a shard of the same run: its config differs/);
    expect(fs.readFileSync(target).equals(before)).toBe(true);
    const notShard = await cli('merge', target, project);
    expect(notShard.stderr).toMatch(/a project, not a shard file/);
  });

  it('--shard auto takes the shard from a Slurm array task, and an index past the count is refused', async () => {
    const out = path.join(root, 'auto.cliffscope');
    const saved = { ...process.env };
    Object.assign(process.env, { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '2', SLURM_ARRAY_TASK_MIN: '0' });
    try {
      const r = await cli('transcripts', project, '--model', model, '--dataset', 'demo-harmless', '--max-new-tokens', '10', '--threads', '1', '--shard', 'auto', '--shard-out', out, '--json');
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as { shard: { index: number; count: number } }).shard).toMatchObject({ index: 1, count: 2 });
    } finally {
      process.env = saved;
    }
    const bad = await cli('transcripts', project, '--model', model, '--dataset', 'demo-harmless', '--shard', '2/2');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--shard/);
    const probe = await cli('probe', 'train', project, '--model', model, '--positive-run', '2', '--negative-run', '3', '--shard', '0/2');
    expect(probe.code).toBe(2);
    expect(probe.stderr).toMatch(/shard/);
  });
});
