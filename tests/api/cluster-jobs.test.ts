/**
 * The workbench's side of a cluster run, through the API: a run planned on a cluster (`cluster.plan`) is recorded in
 * the project, `cluster.list` lists it with the run its merge made, each shard's state comes from `cluster.status`,
 * "Merge finished shards" (`cluster.collect`) brings the run into the project, and Compare takes the merged run like
 * any other. The shards run here as a node of the array would run them: `task.sh I` of the job directory (no Slurm
 * needed). A damaged list in a hostile project file is skipped, never thrown.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobPaths } from '../../src/main/api/cluster/slurm.js';
import { closeAllWriters } from '../../src/main/api/projects.js';
import { CLUSTER_JOBS_KEY } from '../../src/main/store/cluster-jobs.js';
import { openProject } from '../../src/main/store/open.js';
import { call, callError, disposeFixture, makeDemoFixture, type Fixture } from './demo-fixture.js';

const run = promisify(execFile);

let fx: Fixture;
beforeAll(async () => {
  fx = await makeDemoFixture('cluster-jobs');
});
afterAll(() => disposeFixture(fx));

const traceRequest = () => ({
  project: fx.file,
  model: { dir: fx.demo.report.modelDir },
  kind: 'trace' as const,
  config: { probeId: fx.demo.report.probe.id, source: { kind: 'run' as const, runId: fx.demo.report.runs.transcripts! } },
  name: 'trace on the cluster',
  tags: ['cluster'],
});

describe('a cluster run from the workbench', () => {
  it('is listed once planned, shows its shards, merges into a run Compare takes like any other', async () => {
    const jobDir = path.join(fx.dir, 'jobs', 'trace-1');
    const plan = await call('cluster.plan', { run: traceRequest(), shards: 2, jobDir });
    expect(plan.commands.submit).toBe(`cliffscope slurm submit ${jobDir}`);

    let list = await call('cluster.list', { project: fx.file });
    expect(list.jobs).toEqual([{ dir: jobDir, runUid: plan.runUid, kind: 'trace', name: 'trace on the cluster', shards: 2, plannedAt: expect.any(String), runId: null, exists: true }]);

    let status = await call('cluster.status', { jobDir });
    expect(status.shards.map((s) => s.state)).toEqual(['not-submitted', 'not-submitted']);

    // Shard 0 runs as an array task would; shard 1 has not run yet.
    await run('bash', [jobPaths(jobDir).task, '0'], { env: process.env });
    status = await call('cluster.status', { jobDir });
    expect(status.shards.map((s) => [s.state, s.done === s.items])).toEqual([
      ['done', true],
      ['not-submitted', false],
    ]);
    const partial = await call('cluster.collect', { jobDir, resubmit: false });
    expect(partial.merge?.complete).toBe(false);
    expect(partial.resubmitted).toBeNull();

    await run('bash', [jobPaths(jobDir).task, '1'], { env: process.env });
    const collected = await call('cluster.collect', { jobDir, resubmit: false });
    expect(collected.merge?.complete).toBe(true);
    const mergedId = collected.merge!.runId;

    list = await call('cluster.list', { project: fx.file });
    expect(list.jobs[0]!.runId).toBe(mergedId);

    // The merged run carries the plan's name and tags, and compares with the demo's one-process trace run.
    const cmp = await call('compare.runs', { project: fx.file, runIds: [fx.demo.report.runs.trace!, mergedId] });
    const merged = cmp.runs[1]!;
    expect(merged.run).toMatchObject({ id: mergedId, kind: 'trace', status: 'done', name: 'trace on the cluster', tags: ['cluster'] });
    expect(merged.average?.mean.length).toBeGreaterThan(0);
    // Same transcripts, same probe: every headline number equal, and shown as a difference of 0 from the first run.
    expect(merged.headline.map((h) => [h.key, h.value])).toEqual(cmp.runs[0]!.headline.map((h) => [h.key, h.value]));
    expect(merged.headline.every((h) => h.value === null || h.delta === 0)).toBe(true);
  });

  it('does not record a plan that was refused', async () => {
    const before = (await call('cluster.list', { project: fx.file })).jobs.length;
    const jobDir = path.join(fx.dir, 'jobs', 'trace-1'); // holds a job already
    const err = await callError('cluster.plan', { run: traceRequest(), shards: 2, jobDir });
    expect(err.message).toContain('already holds a job');
    expect((await call('cluster.list', { project: fx.file })).jobs).toHaveLength(before);
  });

  it('says when a job directory is gone, and skips a damaged list instead of failing', async () => {
    const jobDir = path.join(fx.dir, 'jobs', 'trace-gone');
    await call('cluster.plan', { run: traceRequest(), shards: 1, jobDir });
    fs.rmSync(jobDir, { recursive: true });
    const gone = (await call('cluster.list', { project: fx.file })).jobs.find((j) => j.dir === jobDir);
    expect(gone?.exists).toBe(false);

    closeAllWriters();
    const store = openProject(fx.file);
    const good = JSON.parse(store.meta(CLUSTER_JOBS_KEY)!) as unknown[];
    store.setMeta(CLUSTER_JOBS_KEY, JSON.stringify([...good, { dir: 7 }, { ...(good[0] as object), kind: 'no-such-kind' }, null]));
    store.close();
    expect((await call('cluster.list', { project: fx.file })).jobs).toHaveLength(good.length);

    const again = openProject(fx.file);
    again.setMeta(CLUSTER_JOBS_KEY, '{not json');
    again.close();
    expect((await call('cluster.list', { project: fx.file })).jobs).toEqual([]);
  });
});
