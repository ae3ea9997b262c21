/**
 * Client-side CSV (RFC 4180) from the rows a table shows: a header of column labels, then one line per row in the
 * order shown. Raw values are written, not the formatted text, so a spreadsheet gets full precision.
 */

export interface CsvColumn<Row> {
  /** Header text. */
  label: string;
  /** The cell's value for a row. */
  value: (row: Row) => unknown;
}

/** One CSV field: quoted when it holds a comma, quote, CR or LF (or leading/trailing spaces); quotes doubled. */
export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s: string;
  if (typeof v === 'number') s = Number.isFinite(v) ? String(v) : '';
  else if (typeof v === 'boolean') s = v ? 'true' : 'false';
  else if (v instanceof Date) s = v.toISOString();
  else if (typeof v === 'object') s = JSON.stringify(v);
  else s = String(v);
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The whole table as CSV text, CRLF line ends (what RFC 4180 and Excel expect). */
export function toCsv<Row>(columns: readonly CsvColumn<Row>[], rows: readonly Row[]): string {
  const lines = [columns.map((c) => csvCell(c.label)).join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvCell(c.value(row))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** A file name from a title: lowercase, dashes, no path characters. */
export function safeFileName(title: string, ext: string): string {
  const stem =
    title
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 80) || 'cliffscope';
  return `${stem}.${ext}`;
}
