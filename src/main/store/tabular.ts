/**
 * Query results as CSV (RFC 4180: comma-separated, CRLF line ends, fields quoted when they hold a comma, a quote,
 * a line break or edge whitespace, quotes doubled) or JSON. Columns are the union of the rows' keys in first-seen
 * order. Vectors (typed arrays) become JSON lists, raw bytes base64, objects JSON text.
 */
import { csvQuote } from '../engine/datasets/csv.js';
import { isNumberArray } from './json.js';

export function columnsOf(rows: readonly Record<string, unknown>[]): string[] {
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) seen.add(k);
  return [...seen];
}

function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  return JSON.stringify(jsonSafe(v));
}

/** CSV text of `rows` (header first). `columns` picks and orders columns; missing values are empty. */
export function toCsv(rows: readonly Record<string, unknown>[], columns: string[] = columnsOf(rows)): string {
  const lines = [columns.map((c) => csvQuote(c)).join(',')];
  for (const r of rows) lines.push(columns.map((c) => csvQuote(cellText(r[c]))).join(','));
  return lines.join('\r\n') + '\r\n';
}

/** JSON-friendly copy: typed arrays → lists, bytes → base64, non-finite numbers → null, bigint → string. */
export function jsonSafe(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'bigint') return v.toString();
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (isNumberArray(v)) return Array.from(v, (x) => (Number.isFinite(x) ? x : null));
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonSafe(x)]));
  return v;
}

/** A JSON array of the rows. */
export function toJson(rows: readonly Record<string, unknown>[], indent = 2): string {
  return JSON.stringify(rows.map(jsonSafe), null, indent) + '\n';
}

/** One JSON object per line. */
export function toJsonl(rows: readonly Record<string, unknown>[]): string {
  return rows.map((r) => JSON.stringify(jsonSafe(r)) + '\n').join('');
}
