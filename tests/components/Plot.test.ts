// @vitest-environment jsdom
/**
 * Plot: what plotly is handed (plotly itself is replaced by a recorder — jsdom cannot lay out SVG): plain colours of
 * the theme showing (never CSS `light-dark(…)`), a redraw when the theme changes, no online action and no logo in
 * the mode bar; and the figure's numbers as a keyboard-reachable table whose rows do what a click on the point does.
 */
import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { beforeEach, describe, expect, it, vi } from 'vitest';

const plotly = vi.hoisted(() => ({
  react: vi.fn(async (el: HTMLElement) => Object.assign(el, { on: () => undefined })),
  purge: vi.fn(),
  toImage: vi.fn(async () => 'data:image/png;base64,'),
  Plots: { resize: vi.fn() },
}));
vi.mock('plotly.js-cartesian-dist-min', () => ({ default: plotly }));
vi.mock('../../src/renderer/src/lib/api.js', () => import('./api-mock.js'));

{
  // What jsdom lacks and the theme store reads at import.
  window.matchMedia ??= ((query: string) => ({ matches: false, media: query, addEventListener: () => undefined, removeEventListener: () => undefined })) as unknown as typeof window.matchMedia;
  // The app's stylesheet declares every colour as light-dark(light, dark).
  const style = document.createElement('style');
  style.textContent = ':root { --fg: light-dark(#1b1f24, #e3e7ec); --bg: light-dark(#ffffff, #15181d); --border: light-dark(#d6dbe1, #343b45); --field: light-dark(#f6f8fa, #1e232a); }';
  document.head.append(style);
}

const { default: Plot } = await import('../../src/renderer/src/components/Plot.svelte');
const { theme } = await import('../../src/renderer/src/lib/theme.svelte.js');

const figure = {
  data: [
    { type: 'scatter', mode: 'lines', name: 'refusal score', x: [0, 1, 2], y: [0.9, 0.8, 0.1], text: ['a', 'b', '&lt;/think&gt;'] },
    { type: 'scatter', mode: 'lines', x: [0, 1], y: [1, 1], hoverinfo: 'skip', showlegend: false },
  ],
  layout: { xaxis: { title: { text: 'token position' } }, yaxis: { title: { text: 'refusal score r<sub>t</sub>' } } },
};

type Call = [HTMLElement, Record<string, unknown>[], Record<string, unknown>, Record<string, unknown>];
const lastCall = () => plotly.react.mock.calls.at(-1) as unknown as Call;

beforeEach(() => {
  plotly.react.mockClear();
  theme.set('light');
});

describe('Plot', () => {
  it('hands plotly plain colours of the theme showing, and redraws in the other theme’s when it changes', async () => {
    render(Plot, { props: { figure, title: 'Refusal score per token' } });
    await waitFor(() => expect(plotly.react).toHaveBeenCalled());
    const light = lastCall()[2];
    expect(JSON.stringify(light)).not.toMatch(/light-dark|var\(/);
    expect((light.font as { color: string }).color).toBe('#1b1f24');
    theme.set('dark');
    await waitFor(() => expect((lastCall()[2].font as { color: string }).color).toBe('#e3e7ec'));
    expect((lastCall()[2].xaxis as { gridcolor: string }).gridcolor).toBe('#343b45');
    expect(JSON.stringify(lastCall()[2])).not.toMatch(/light-dark|var\(/);
  });

  it('offers no online action and no plotly logo', async () => {
    render(Plot, { props: { figure, title: 'x' } });
    await waitFor(() => expect(plotly.react).toHaveBeenCalled());
    const config = lastCall()[3];
    expect(config).toMatchObject({ displaylogo: false, showSendToCloud: false, showEditInChartStudio: false, showLink: false });
    expect(config.modeBarButtonsToRemove).toEqual(expect.arrayContaining(['sendDataToCloud', 'editInChartStudio', 'toImage']));
  });

  it('shows its numbers as a table (bands left out, rich text as plain text), whose rows act like a click on the point', async () => {
    const onclick = vi.fn();
    render(Plot, { props: { figure, title: 'Refusal score per token', onclick } });
    const fig = screen.getByRole('figure', { name: 'Refusal score per token' });
    expect(document.getElementById(fig.getAttribute('aria-describedby')!)?.textContent).toContain('1 series, 3 points');
    const toggle = screen.getByRole('button', { name: 'Show the numbers of "Refusal score per token" as a table' });
    expect(toggle.getAttribute('aria-expanded')).toBe('false');
    await fireEvent.click(toggle);
    const table = screen.getByRole('table', { name: 'Refusal score per token: the numbers' });
    const headers = within(table).getAllByRole('columnheader').map((h) => h.textContent?.trim());
    expect(headers).toEqual(['token position', 'refusal score rt', 'Label']);
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows.map((r) => Array.from(r.querySelectorAll('td'), (td) => td.textContent))).toEqual([
      ['0', '0.9000', 'a'],
      ['1', '0.8000', 'b'],
      ['2', '0.1000', '</think>'],
    ]);
    rows[2]!.focus();
    await fireEvent.keyDown(rows[2]!, { key: 'Enter' });
    expect(onclick).toHaveBeenCalledWith(expect.objectContaining({ x: 2, y: 0.1, pointIndex: 2, curveNumber: 0 }));
  });
});
