// @vitest-environment jsdom
import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import { ApiError } from '../../src/shared/client.js';
import ErrorBox from '../../src/renderer/src/components/ErrorBox.svelte';

vi.mock('../../src/renderer/src/lib/api.js', () => import('./api-mock.js'));

/** The alert's paragraphs, whitespace collapsed. */
function lines(alert: HTMLElement): string[] {
  return Array.from(alert.querySelectorAll('p'), (p) => (p.textContent ?? '').replace(/\s+/g, ' ').trim());
}

describe('ErrorBox', () => {
  it('shows what went wrong, the file at fault and how to fix it', () => {
    const error = new ApiError({
      code: 'bad_config',
      message: 'The model config is not valid JSON',
      file: '/models/qwen/config.json',
      hint: 'Re-download the checkpoint',
    });
    render(ErrorBox, { props: { error, title: 'Could not open the model' } });
    const alert = screen.getByRole('alert');
    expect(alert.querySelector('strong')?.textContent).toBe('Could not open the model');
    expect(lines(alert)).toEqual(['The model config is not valid JSON', 'file /models/qwen/config.json', 'fix Re-download the checkpoint']);
  });

  it('does not repeat a file the message already names', () => {
    const error = new ApiError({ code: 'io', message: 'Cannot read /data/set.jsonl: permission denied', file: '/data/set.jsonl' });
    render(ErrorBox, { props: { error } });
    const alert = screen.getByRole('alert');
    expect(lines(alert)).toEqual(['Cannot read /data/set.jsonl: permission denied']);
    expect(alert.querySelector('strong')).toBeNull();
  });

  it('lists each field at fault of a rejected form', () => {
    const error = new ApiError({
      code: 'invalid_params',
      message: 'Invalid parameters',
      issues: [
        { path: 'layers', message: 'must not be empty' },
        { path: '', message: 'expected an object' },
      ],
    });
    render(ErrorBox, { props: { error } });
    const items = screen.getAllByRole('listitem').map((li) => li.textContent);
    expect(items).toEqual(['layers: must not be empty', '(value): expected an object']);
  });

  it('shows a plain Error or a thrown string as its message', async () => {
    const { rerender } = render(ErrorBox, { props: { error: new Error('socket hang up') } });
    expect(lines(screen.getByRole('alert'))).toEqual(['socket hang up']);
    await rerender({ error: 'something odd' });
    expect(lines(screen.getByRole('alert'))).toEqual(['something odd']);
  });

  it('offers a dismiss button only when it can be dismissed', async () => {
    const ondismiss = vi.fn();
    const { rerender } = render(ErrorBox, { props: { error: new Error('x') } });
    expect(screen.queryByRole('button', { name: 'Dismiss this error' })).toBeNull();
    await rerender({ error: new Error('x'), ondismiss });
    await fireEvent.click(screen.getByRole('button', { name: 'Dismiss this error' }));
    expect(ondismiss).toHaveBeenCalledTimes(1);
  });
});
