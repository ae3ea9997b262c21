// @vitest-environment jsdom
import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import SweepProgress from '../../src/renderer/src/components/SweepProgress.svelte';
import { SWEEP_VIEW } from '../renderer/sweep-fixture.js';

describe('SweepProgress', () => {
  it('says how far a cancelled sweep got and resumes it', async () => {
    const onresume = vi.fn();
    render(SweepProgress, { props: { view: SWEEP_VIEW, onresume } });
    const status = screen.getByTestId('sweep-unfinished');
    expect(status.textContent).toMatch(/This sweep is cancelled: 60 of 80 answers are finished/);
    expect(status.textContent).toMatch(/ablate PROJECT --resume 3/);
    await fireEvent.click(screen.getByRole('button', { name: 'Resume the sweep' }));
    expect(onresume).toHaveBeenCalledTimes(1);
  });

  it('offers no Resume while the sweep runs, and shows nothing once it is done', () => {
    const { unmount } = render(SweepProgress, { props: { view: { ...SWEEP_VIEW, status: 'running' }, onresume: () => undefined } });
    expect(screen.getByTestId('sweep-unfinished').textContent).toMatch(/is running/);
    expect(screen.queryByRole('button')).toBeNull();
    unmount();
    render(SweepProgress, { props: { view: { ...SWEEP_VIEW, status: 'done' }, onresume: () => undefined } });
    expect(screen.queryByTestId('sweep-unfinished')).toBeNull();
  });
});
