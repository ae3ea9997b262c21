// @vitest-environment jsdom
import { render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import ProgressBar from '../../src/renderer/src/components/ProgressBar.svelte';

/** The visible text line under the bar (count, percent, ETA), whitespace collapsed. */
function textLine(container: HTMLElement): string {
  return (container.querySelector('.text')?.textContent ?? '').replace(/\s+/g, ' ').trim();
}

/** The determinate bar's width in percent (jsdom normalises "25.0%" to "25%"). */
function barWidth(container: HTMLElement): number {
  const width = (container.querySelector('.bar') as HTMLElement).style.width;
  expect(width.endsWith('%')).toBe(true);
  return Number.parseFloat(width);
}

describe('ProgressBar', () => {
  it('exposes progress to assistive tech and shows count, percent and ETA', () => {
    const { container } = render(ProgressBar, { props: { name: 'Scoring prompts', done: 3, total: 12, label: 'scoring', etaMs: 90_000 } });
    const bar = screen.getByRole('progressbar', { name: 'Scoring prompts' });
    expect(bar.getAttribute('aria-valuenow')).toBe('3');
    expect(bar.getAttribute('aria-valuemin')).toBe('0');
    expect(bar.getAttribute('aria-valuemax')).toBe('12');
    expect(bar.getAttribute('aria-valuetext')).toBe('scoring: 3 of 12');
    expect(textLine(container)).toBe('scoring 3 / 12 25% about 1 min 30 s left');
    expect(barWidth(container)).toBe(25);
    expect(container.querySelector('.indeterminate')).toBeNull();
  });

  it('follows new values on rerender', async () => {
    const { container, rerender } = render(ProgressBar, { props: { done: 1, total: 4, etaMs: 5_000 } });
    const bar = screen.getByRole('progressbar', { name: 'Progress' });
    expect(bar.getAttribute('aria-valuenow')).toBe('1');
    expect(textLine(container)).toBe('1 / 4 25% about 5 s left');
    await rerender({ done: 3, total: 4, etaMs: 1_500 });
    expect(bar.getAttribute('aria-valuenow')).toBe('3');
    expect(textLine(container)).toBe('3 / 4 75% about 2 s left');
    expect(barWidth(container)).toBe(75);
  });

  it('floors the percent and clamps it at 100%', async () => {
    const { container, rerender } = render(ProgressBar, { props: { done: 2, total: 3 } });
    expect(textLine(container)).toBe('2 / 3 66%');
    await rerender({ done: 5, total: 3 });
    expect(textLine(container)).toBe('5 / 3 100%');
    expect(barWidth(container)).toBe(100);
  });

  it('is indeterminate while the total is unknown: no valuenow, no percent', () => {
    const { container } = render(ProgressBar, { props: { done: 7, total: null, label: 'loading' } });
    const bar = screen.getByRole('progressbar');
    expect(bar.hasAttribute('aria-valuenow')).toBe(false);
    expect(bar.hasAttribute('aria-valuemax')).toBe(false);
    expect(bar.getAttribute('aria-valuetext')).toBe('loading: 7');
    expect(container.querySelector('.indeterminate')).not.toBeNull();
    expect(textLine(container)).toBe('loading 7');
  });

  it('shows no ETA when there is none (null or zero) and no count before anything is done', () => {
    const { container } = render(ProgressBar, { props: { done: 0, total: null, etaMs: 0 } });
    expect(textLine(container)).toBe('');
    expect(screen.getByRole('progressbar').hasAttribute('aria-valuetext')).toBe(false);
  });
});
