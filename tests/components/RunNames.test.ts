// @vitest-environment jsdom
/**
 * Run names and tags: settable in a run form (RunForm.meta, what startRun sends with run.start) and editable wherever
 * a run is picked (RunPicker's ✎ → run.update, then the project is re-read).
 */
import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import './dom-stubs.js';

const runUpdate = vi.fn(async (p: { runId: number; name: string | null; tags: string[] }) => ({ run: { ...run, name: p.name, tags: p.tags } }));
const projectOpen = vi.fn(async () => ({ ...summary, runs: [{ ...run, name: 'after', tags: ['7b', 'baseline'] }] }));
vi.mock('../../src/renderer/src/lib/api.js', async () => ({ ...(await import('./api-mock.js')), api: { 'run.update': runUpdate, 'project.open': projectOpen }, pickPath: undefined }));

const run = { id: 4, uid: 'u', kind: 'trace' as const, name: 'before', tags: ['old'], status: 'done' as const, error: null, modelId: 1, datasetId: null, parentRunId: null, createdAt: '2026-01-01T00:00:00.000Z', startedAt: null, finishedAt: null };
const summary = { file: '/p/s.cliffscope', models: [], datasets: [], probes: [], runs: [run] };

const { default: RunPicker } = await import('../../src/renderer/src/components/RunPicker.svelte');
const { project } = await import('../../src/renderer/src/lib/project.svelte.js');
const { RunForm } = await import('../../src/renderer/src/lib/runs.svelte.js');

describe('run names and tags', () => {
  it('a run form sends what was typed: the name trimmed, the tags split at commas, each once', () => {
    const form = new RunForm();
    expect(form.meta).toEqual({});
    form.name = '  ablated 7b ';
    form.tags = 'baseline, 7b,, baseline ';
    expect(form.meta).toEqual({ name: 'ablated 7b', tags: ['baseline', '7b'] });
  });

  it('renames and re-tags the picked run, then shows the new name', async () => {
    project.file = summary.file;
    project.summary = structuredClone(summary);
    render(RunPicker, { props: { kind: 'trace', id: 'r', label: 'Trace run', value: 4, onpick: () => undefined } });
    expect(screen.getByRole('option').textContent).toContain('"before" [old]');
    await fireEvent.click(screen.getByRole('button', { name: 'Rename or tag run #4' }));
    const dialog = screen.getByRole('dialog', { name: 'Run #4: name and tags' });
    const name = within(dialog).getByLabelText('Name') as HTMLInputElement;
    expect(name.value).toBe('before');
    await fireEvent.input(name, { target: { value: 'after' } });
    await fireEvent.input(within(dialog).getByLabelText('Tags (comma-separated)'), { target: { value: '7b, baseline' } });
    await fireEvent.submit(name.form!);
    await waitFor(() => expect(runUpdate).toHaveBeenCalledWith({ project: summary.file, runId: 4, name: 'after', tags: ['7b', 'baseline'] }));
    await waitFor(() => expect(screen.getByRole('option').textContent).toContain('"after" [7b, baseline]'));
    expect(dialog.hasAttribute('open')).toBe(false);
  });
});
