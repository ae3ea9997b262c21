/// <reference path="../../src/renderer/src/global.d.ts" />
// @vitest-environment jsdom
/**
 * A failed job shows its error — message, file, what to do, the fields at fault — where it was started (JobInline)
 * and in the Jobs tab, never "[object Object]": a job keeps its error as plain data, which ErrorBox reads.
 */
import { render, screen } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import JobInline from '../../src/renderer/src/components/JobInline.svelte';
import { jobs } from '../../src/renderer/src/lib/jobs.svelte.js';
import { newJob, settleJob, type JobError } from '../../src/renderer/src/lib/jobs.js';
import JobsPanel from '../../src/renderer/src/panels/Jobs.svelte';

vi.mock('../../src/renderer/src/lib/api.js', () => import('./api-mock.js'));

function failedJob(id: string, error: JobError) {
  return settleJob(newJob(id, 'run.start', 'Train probe "refusal"', 0), { ok: false, error }, 30);
}

const probeError: JobError = {
  code: 'bad-argument',
  message: 'layer 0: a probe needs at least 4 samples, got 0',
  hint: 'pick sources with refusals and non-refusals, or the label rule "all"',
};

afterEach(() => {
  jobs.list = [];
});

describe('a failed job', () => {
  it('shows its message and what to do under the form that started it', () => {
    jobs.list = [failedJob('j1', probeError)];
    render(JobInline, { props: { id: 'j1' } });
    const alert = screen.getByRole('alert');
    expect(alert.textContent).toContain('Train probe "refusal" failed');
    expect(alert.textContent).toContain('layer 0: a probe needs at least 4 samples, got 0');
    expect(alert.textContent).toContain('pick sources with refusals and non-refusals');
    expect(alert.textContent).not.toContain('[object Object]');
  });

  it('shows its message, the fields at fault and a fix in the Jobs tab', () => {
    jobs.list = [
      failedJob('j2', { code: 'bad-params', message: 'invalid params for run.start: config.epochs: too big', issues: [{ path: 'config.epochs', message: 'too big' }] }),
    ];
    render(JobsPanel);
    const alert = screen.getByRole('alert');
    expect(alert.textContent).toContain('invalid params for run.start');
    expect(alert.querySelector('li')?.textContent).toBe('config.epochs: too big');
    // No hint of its own: the one for its code says what to do.
    expect(alert.textContent).toContain('correct the fields listed');
    expect(alert.textContent).not.toContain('[object Object]');
  });
});
