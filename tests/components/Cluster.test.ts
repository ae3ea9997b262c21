// @vitest-environment jsdom
/**
 * A run on a cluster from the workbench: a run form's "Run on a cluster…" plans the form's own run (its settings,
 * name and tags) with cluster.plan and shows the commands to copy; the Jobs tab lists the project's cluster jobs
 * with each shard's state and merges the finished shards (cluster.collect, without resubmitting from here).
 */
import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import './dom-stubs.js';

const file = '/home/r/study.cliffscope';
const jobDir = '/home/r/study-cluster/trace-1';
const commands = {
  submit: `cliffscope slurm submit ${jobDir}`,
  status: `cliffscope slurm status ${jobDir}`,
  collect: `cliffscope slurm collect ${jobDir}`,
  sbatch: `sbatch ${jobDir}/job.sbatch`,
};
const shard = (index: number, state: string, done: number, over: object = {}) => ({
  index,
  state,
  items: 5,
  done,
  exitCode: state === 'done' ? 0 : state === 'failed' ? 3 : null,
  slurm: null,
  file: `${jobDir}/shards/shard-${index}.cliffscope`,
  log: `${jobDir}/logs/task-${index}.out`,
  ...over,
});
const status = (shards: object[]) => ({ dir: jobDir, project: file, runUid: 'u1', kind: 'trace', shards, submissions: [], notes: ['sacct: accounting is off; states come from squeue'], commands });
const listed = (runId: number | null) => ({
  jobs: [{ dir: jobDir, runUid: 'u1', kind: 'trace', name: 'cluster trace', shards: 2, plannedAt: '2026-12-06T04:00:00.000Z', runId, exists: true }],
});

const clusterPlan = vi.fn(async (p: { shards: number; jobDir: string }) => ({ dir: p.jobDir, runUid: 'u1', kind: 'trace', shards: p.shards, items: [4, 3, 3], commands }));
const clusterList = vi.fn(async (_p: unknown) => listed(null));
const clusterStatus = vi.fn(async (_p: unknown) => status([shard(0, 'done', 5), shard(1, 'failed', 2, { slurm: 'FAILED' })]));
const projectOpen = vi.fn(async () => ({ file, models: [], datasets: [], probes: [], runs: [] }));
const runJob = vi.fn(async (method: string, _params: unknown, _id: string) => {
  expect(method).toBe('cluster.collect');
  clusterList.mockResolvedValueOnce(listed(9));
  return {
    merge: { runId: 9, runUid: 'u1', kind: 'trace', created: true, files: [], items: { expected: 10, done: 7, failed: 0, missing: 3 }, missing: [], complete: false },
    resubmitted: null,
    status: status([shard(0, 'done', 5), shard(1, 'failed', 2, { slurm: 'FAILED' })]),
  };
});

vi.mock('../../src/renderer/src/lib/api.js', async () => ({
  ...(await import('./api-mock.js')),
  api: { 'cluster.plan': clusterPlan, 'cluster.list': clusterList, 'cluster.status': clusterStatus, 'project.open': projectOpen },
  runJob,
  onEvent: () => () => undefined,
  cancel: () => undefined,
  pickPath: undefined,
}));

const { default: ClusterPlan } = await import('../../src/renderer/src/components/ClusterPlan.svelte');
const { default: JobsPanel } = await import('../../src/renderer/src/panels/Jobs.svelte');
const { project } = await import('../../src/renderer/src/lib/project.svelte.js');
const { jobs } = await import('../../src/renderer/src/lib/jobs.svelte.js');
const { RunForm } = await import('../../src/renderer/src/lib/runs.svelte.js');

beforeEach(() => {
  project.file = file;
  project.summary = { file, models: [], datasets: [], probes: [], runs: [] } as never;
  project.modelDir = '/models/tiny';
});
afterEach(() => {
  jobs.list = [];
  vi.clearAllMocks();
});

describe('Run on a cluster…', () => {
  it("plans the form's run with its name and tags, and shows the commands to copy", async () => {
    const form = new RunForm();
    form.name = 'cluster trace';
    form.tags = 'cluster, 7b';
    form.starts(() => ({ kind: 'trace', config: { probeId: 2, source: { kind: 'run', runId: 1 } }, label: 'Trace with probe #2' }));
    render(ClusterPlan, { props: { form, id: 'c' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Run on a cluster…' }));
    const dialog = screen.getByRole('dialog', { name: 'Run on a cluster' });
    const dir = within(dialog).getByLabelText('Job directory (new)') as HTMLInputElement;
    expect(dir.value).toMatch(/^\/home\/r\/study-cluster\/trace-\d{8}-\d{6}$/);
    await fireEvent.input(dir, { target: { value: jobDir } });
    await fireEvent.input(within(dialog).getByLabelText('Shards'), { target: { value: '3' } });
    await fireEvent.input(within(dialog).getByLabelText('Partition'), { target: { value: 'gpu' } });
    await fireEvent.input(within(dialog).getByLabelText('Memory'), { target: { value: '64G' } });
    await fireEvent.submit(dir.form!);
    await waitFor(() => expect(clusterPlan).toHaveBeenCalledTimes(1));
    expect(clusterPlan.mock.calls[0]![0]).toEqual({
      run: { project: file, model: { dir: '/models/tiny' }, kind: 'trace', config: { probeId: 2, source: { kind: 'run', runId: 1 } }, name: 'cluster trace', tags: ['cluster', '7b'] },
      shards: 3,
      jobDir,
      resources: { partition: 'gpu', gpusPerTask: 1, mem: '64G' },
    });
    await waitFor(() => expect(within(dialog).getByRole('status').textContent).toContain('3 shards of 10 items (4, 3, 3 per shard)'));
    const shown = Array.from(dialog.querySelectorAll('code'), (c) => c.textContent);
    expect(shown).toEqual([commands.submit, commands.status, commands.collect, commands.sbatch]);
    // The Jobs tab's list is re-read, so the new job shows there.
    expect(clusterList).toHaveBeenCalledWith({ project: file });
  });

  it('shows why the form cannot run instead of planning it', async () => {
    const form = new RunForm();
    form.starts(() => {
      throw new Error('choose the transcripts to trace');
    });
    render(ClusterPlan, { props: { form, id: 'c' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Run on a cluster…' }));
    const dialog = screen.getByRole('dialog', { name: 'Run on a cluster' });
    expect(within(dialog).getByRole('alert').textContent).toContain('choose the transcripts to trace');
    expect(within(dialog).queryByRole('form', { name: 'Plan the job' })).toBeNull();
    expect(clusterPlan).not.toHaveBeenCalled();
  });
});

describe('cluster jobs in the Jobs tab', () => {
  it("lists the project's cluster jobs with each shard's state, and merges the finished shards", async () => {
    render(JobsPanel);
    const card = await screen.findByRole('article', { name: 'Cluster job cluster trace' });
    const summary = () => card.querySelector('p.summary')?.textContent ?? '';
    await waitFor(() => expect(summary()).toContain('7 of 10 items done · 1 done, 1 failed'));
    const table = within(card).getByRole('table', { name: `Shards of ${jobDir}` });
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows.map((r) => within(r).getAllByRole('cell').slice(0, 4).map((c) => c.textContent?.trim()))).toEqual([
      ['0', 'done', '5 / 5', '—'],
      ['1', 'failed', '2 / 5', 'FAILED'],
    ]);
    expect(card.textContent).toContain('sacct: accounting is off');

    await fireEvent.click(within(card).getByRole('button', { name: 'Merge finished shards' }));
    expect(runJob).toHaveBeenCalledWith('cluster.collect', { jobDir, project: file, resubmit: false }, expect.any(String));
    await waitFor(() => expect(summary()).toContain('merged into run #9'));
    expect(jobs.list[0]!.outcome).toBe('run #9: 7 of 10 items, 3 missing');
  });

  it('opens a job directory planned elsewhere', async () => {
    clusterList.mockResolvedValueOnce({ jobs: [] });
    render(JobsPanel);
    await waitFor(() => expect(screen.getByText(/None yet/)).toBeTruthy());
    const field = screen.getByLabelText('Open a job directory (planned elsewhere)');
    await fireEvent.input(field, { target: { value: jobDir } });
    await fireEvent.submit((field as HTMLInputElement).form!);
    await waitFor(() => expect(clusterStatus).toHaveBeenCalledWith({ jobDir }));
    expect(await screen.findByRole('table', { name: `Shards of ${jobDir}` })).toBeTruthy();
  });
});
