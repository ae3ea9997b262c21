// @vitest-environment jsdom
import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../../src/shared/client.js';
import DataTable from '../../src/renderer/src/components/DataTable.svelte';
import { downloadText } from '../../src/renderer/src/lib/download.js';

// The browser download is replaced by a spy; the CSV text itself comes from the real lib/csv.ts.
vi.mock('../../src/renderer/src/lib/download.js', () => ({ downloadText: vi.fn() }));
vi.mock('../../src/renderer/src/lib/api.js', () => import('./api-mock.js'));

const download = vi.mocked(downloadText);

/**
 * DataTable's exported `Column<Row>` (the part these tests use). tsc sees .svelte files only through svelte's
 * ambient `*.svelte` module, which has no named exports, so it is restated here.
 */
interface Column<Row> {
  key: string;
  label: string;
  value: (row: Row) => unknown;
  format?: (row: Row) => string;
  align?: 'left' | 'right';
}

interface Model {
  id: number;
  name: string;
  score: number | null;
  refuses: boolean;
}

const ROWS: Model[] = [
  { id: 1, name: 'qwen-7b', score: 0.5, refuses: true },
  { id: 2, name: 'llama-3, 8b', score: null, refuses: false },
  { id: 3, name: 'model 10', score: 0.125, refuses: true },
  { id: 4, name: 'model 9', score: 0.75, refuses: false },
];

const COLUMNS: Column<Model>[] = [
  { key: 'name', label: 'Model', value: (r) => r.name },
  { key: 'score', label: 'Score', value: (r) => r.score, format: (r) => (r.score === null ? 'n/a' : r.score.toFixed(2)), align: 'right' },
  { key: 'refuses', label: 'Refuses', value: (r) => r.refuses },
];

type Props = {
  rows: readonly Model[];
  columns?: readonly Column<Model>[];
  caption?: string;
  rowKey?: (row: Model) => string | number;
} & Record<string, unknown>;

function setup(props: Partial<Props> = {}) {
  const result = render(DataTable, { props: { rows: ROWS, columns: COLUMNS, caption: 'Model scores', rowKey: (r: Model) => r.id, ...props } });
  const table = screen.getByRole('table', { name: props.caption ?? 'Model scores' });
  return { ...result, table };
}

/** The body's cells, row by row, as shown. */
function bodyCells(table: HTMLElement): string[][] {
  const [, body] = within(table).getAllByRole('rowgroup');
  return within(body!)
    .queryAllByRole('row')
    .map((tr) => within(tr).getAllByRole('cell').map((td) => td.textContent ?? ''));
}

/** The first column of the body, i.e. the row order. */
function names(table: HTMLElement): string[] {
  return bodyCells(table).map((cells) => cells[0]!);
}

function header(name: string): HTMLElement {
  return screen.getByRole('columnheader', { name: new RegExp(`^${name}`) });
}

beforeEach(() => download.mockReset());

describe('DataTable', () => {
  it('renders a header per column and a row per item, formatted', () => {
    const { table } = setup();
    expect(within(table).getAllByRole('columnheader').map((th) => th.textContent)).toEqual(['Model', 'Score', 'Refuses']);
    expect(bodyCells(table)).toEqual([
      ['qwen-7b', '0.50', 'yes'],
      ['llama-3, 8b', 'n/a', 'no'],
      ['model 10', '0.13', 'yes'],
      ['model 9', '0.75', 'no'],
    ]);
    expect(screen.getByText('4 rows')).toBeTruthy();
    for (const th of within(table).getAllByRole('columnheader')) expect(th.getAttribute('aria-sort')).toBe('none');
  });

  it('shows "—" for a missing value without a formatter', () => {
    const { table } = setup({ columns: [COLUMNS[0]!, { key: 'score', label: 'Score', value: (r: Model) => r.score }] });
    expect(bodyCells(table).map((c) => c[1])).toEqual(['0.5', '—', '0.125', '0.75']);
  });

  it('clicking a header sorts by it; clicking again reverses; missing values stay last', async () => {
    const { table } = setup();
    await fireEvent.click(within(header('Score')).getByRole('button'));
    expect(header('Score').getAttribute('aria-sort')).toBe('ascending');
    expect(header('Model').getAttribute('aria-sort')).toBe('none');
    expect(names(table)).toEqual(['model 10', 'qwen-7b', 'model 9', 'llama-3, 8b']);

    await fireEvent.click(within(header('Score')).getByRole('button'));
    expect(header('Score').getAttribute('aria-sort')).toBe('descending');
    expect(names(table)).toEqual(['model 9', 'qwen-7b', 'model 10', 'llama-3, 8b']);

    await fireEvent.click(within(header('Score')).getByRole('button'));
    expect(header('Score').getAttribute('aria-sort')).toBe('ascending');
    expect(names(table)).toEqual(['model 10', 'qwen-7b', 'model 9', 'llama-3, 8b']);
  });

  it('sorts text naturally (9 before 10), and a new column starts ascending', async () => {
    const { table } = setup();
    await fireEvent.click(within(header('Score')).getByRole('button'));
    await fireEvent.click(within(header('Score')).getByRole('button')); // Score descending
    await fireEvent.click(within(header('Model')).getByRole('button'));
    expect(header('Model').getAttribute('aria-sort')).toBe('ascending');
    expect(header('Score').getAttribute('aria-sort')).toBe('none');
    expect(names(table)).toEqual(['llama-3, 8b', 'model 9', 'model 10', 'qwen-7b']);
    await fireEvent.click(within(header('Model')).getByRole('button'));
    expect(names(table)).toEqual(['qwen-7b', 'model 10', 'model 9', 'llama-3, 8b']);
  });

  it('CSV saves the rows in the order shown, raw values, under a name from the caption', async () => {
    setup();
    await fireEvent.click(within(header('Score')).getByRole('button'));
    await fireEvent.click(within(header('Score')).getByRole('button')); // descending
    await fireEvent.click(screen.getByRole('button', { name: 'CSV' }));
    expect(download).toHaveBeenCalledTimes(1);
    const [name, text] = download.mock.calls[0]!;
    expect(name).toBe('model-scores.csv');
    expect(text).toBe(
      ['Model,Score,Refuses', 'model 9,0.75,false', 'qwen-7b,0.5,true', 'model 10,0.125,true', '"llama-3, 8b",,false', ''].join('\r\n'),
    );
  });

  it('CSV uses the given filename and includes rows past the display limit', async () => {
    const { table } = setup({ filename: 'scores.csv', limit: 2 });
    expect(names(table)).toEqual(['qwen-7b', 'llama-3, 8b']);
    await fireEvent.click(screen.getByRole('button', { name: 'CSV' }));
    const [name, text] = download.mock.calls[0]!;
    expect(name).toBe('scores.csv');
    expect(text.split('\r\n').slice(1, -1).map((l) => l.split(',')[0])).toEqual(['qwen-7b', '"llama-3', 'model 10', 'model 9']);
  });

  it('shows the first `limit` rows, and all of them on request', async () => {
    const { table } = setup({ limit: 3 });
    expect(names(table)).toEqual(['qwen-7b', 'llama-3, 8b', 'model 10']);
    await fireEvent.click(screen.getByRole('button', { name: 'Show all 4 rows' }));
    expect(names(table)).toHaveLength(4);
    await fireEvent.click(screen.getByRole('button', { name: 'Show the first 3' }));
    expect(names(table)).toHaveLength(3);
  });

  it('disables CSV when there are no rows', () => {
    const { table } = setup({ rows: [] });
    expect((screen.getByRole('button', { name: 'CSV' }) as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByText('0 rows')).toBeTruthy();
    expect(bodyCells(table)).toEqual([]);
  });

  it('picks a row by click or Enter when onrowclick is given, and marks the selected one', async () => {
    const onrowclick = vi.fn();
    const { table } = setup({ onrowclick, selectedKey: 3 });
    const [, body] = within(table).getAllByRole('rowgroup');
    const rows = within(body!).getAllByRole('row');
    expect(rows.map((r) => r.getAttribute('aria-selected'))).toEqual(['false', 'false', 'true', 'false']);
    expect(rows.every((r) => r.tabIndex === 0)).toBe(true);
    await fireEvent.click(within(rows[1]!).getByText('n/a'));
    expect(onrowclick).toHaveBeenLastCalledWith(ROWS[1]);
    await fireEvent.keyDown(rows[3]!, { key: 'Enter' });
    expect(onrowclick).toHaveBeenLastCalledWith(ROWS[3]);
    expect(onrowclick).toHaveBeenCalledTimes(2);
  });

  it('rows are not interactive without onrowclick', () => {
    const { table } = setup();
    const [, body] = within(table).getAllByRole('rowgroup');
    for (const r of within(body!).getAllByRole('row')) {
      expect(r.hasAttribute('tabindex')).toBe(false);
      expect(r.hasAttribute('aria-selected')).toBe(false);
    }
  });

  it('Full CSV saves what the engine returns, and shows its error when it fails', async () => {
    const serverCsv = vi
      .fn<() => Promise<{ csv: string; filename: string }>>()
      .mockResolvedValueOnce({ csv: 'a,b\r\n1,2\r\n', filename: 'table.csv' })
      .mockRejectedValueOnce(new ApiError({ code: 'not_found', message: 'Run 7 has no table', hint: 'Run it again' }));
    setup({ serverCsv });
    await fireEvent.click(screen.getByRole('button', { name: 'Full CSV' }));
    await waitFor(() => expect(download).toHaveBeenCalledWith('table.csv', 'a,b\r\n1,2\r\n'));
    expect(screen.queryByRole('alert')).toBeNull();

    await fireEvent.click(screen.getByRole('button', { name: 'Full CSV' }));
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toBe('Run 7 has no table\nfix: Run it again');
    expect(download).toHaveBeenCalledTimes(1);
  });
});
