// @vitest-environment jsdom
import { render, screen, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import JudgeAgreement from '../../src/renderer/src/components/JudgeAgreement.svelte';
import { JUDGES, SWEEP_VIEW } from '../renderer/sweep-fixture.js';

describe('JudgeAgreement', () => {
  it('shows, per cell, the chosen judge’s % agreement, κ and n with each other judge', () => {
    render(JudgeAgreement, { props: { view: SWEEP_VIEW, judge: JUDGES.JBB } });
    const table = screen.getByRole('table');
    expect(within(table).getByText(/Agreement of JailbreakBench keywords/)).toBeTruthy();
    const headers = within(table).getAllByRole('columnheader').map((h) => h.textContent);
    expect(headers).toEqual(['Cell', 'probe #1 (I′ < 0.5)', 'judge run #9: GCG keywords']);
    const row = within(table).getByRole('rowheader', { name: 'top:k2:g0' }).closest('tr')!;
    expect(Array.from(row.querySelectorAll('td'), (td) => td.textContent)).toEqual(['80% · κ 0.60 · n 10', '100% · κ 1.00 · n 10']);
    // κ undefined (both judges gave every answer one verdict) reads as a dash, not 0.
    const baseline = within(table).getByRole('rowheader', { name: 'baseline' }).closest('tr')!;
    expect(baseline.querySelector('td')!.textContent).toBe('80% · κ — · n 10');
  });

  it('explains how to compare judges when the sweep has one', () => {
    const one = { ...SWEEP_VIEW, judges: [SWEEP_VIEW.judges[0]!], cells: SWEEP_VIEW.cells.map((c) => ({ ...c, metrics: c.metrics && { ...c.metrics, agreement: undefined } })) };
    render(JudgeAgreement, { props: { view: one, judge: JUDGES.JBB } });
    expect(screen.queryByRole('table')).toBeNull();
    expect(screen.getByText(/One judge: run the sweep with several/)).toBeTruthy();
  });
});
