/**
 * Number, time and label formatting for the panels (head names: src/shared/heads.ts). Pure functions (unit-tested in node): every number the UI
 * shows goes through here, so the e2e test can compute the same text from the store's values.
 */

const intFormat = new Intl.NumberFormat('en-US');
const compactFormat = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 2 });

/** A value the UI shows as "—" (missing, not computed, not a finite number). */
function missing(v: unknown): v is null | undefined {
  return v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v));
}

/** A score or metric with fixed decimals (default 3); "—" when missing. */
export function fmtNum(v: number | null | undefined, digits = 3): string {
  if (missing(v)) return '—';
  return v.toFixed(digits);
}

/** An integer with thousands separators. */
export function fmtInt(v: number | null | undefined): string {
  if (missing(v)) return '—';
  return intFormat.format(v);
}

/** A large count, compact: 1.54B. */
export function fmtCompact(v: number | null | undefined): string {
  if (missing(v)) return '—';
  return compactFormat.format(v);
}

/** A fraction in [0, 1] as a percentage with `digits` decimals (default 1): 0.0833 → "8.3%". */
export function fmtPct(v: number | null | undefined, digits = 1): string {
  if (missing(v)) return '—';
  return `${(v * 100).toFixed(digits)}%`;
}

/** Bytes as B / KiB / MiB / GiB. */
export function fmtBytes(v: number | null | undefined): string {
  if (missing(v)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let x = v;
  let u = 0;
  while (Math.abs(x) >= 1024 && u < units.length - 1) {
    x /= 1024;
    u++;
  }
  return u === 0 ? `${x} B` : `${x.toFixed(x >= 100 ? 0 : 1)} ${units[u]}`;
}

/** A duration in milliseconds as "850 ms", "12 s", "3 min 05 s", "1 h 02 min". */
export function fmtDuration(ms: number | null | undefined): string {
  if (missing(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** An ISO timestamp (the store's `createdAt`) as local "YYYY-MM-DD HH:MM". */
export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso.includes('T') || iso.endsWith('Z') ? iso : `${iso.replace(' ', 'T')}Z`);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/**
 * Estimated time left from progress so far, assuming a steady rate since the job started. Null until there is
 * something to go on (no total, nothing done yet, or under half a second of history).
 */
export function eta(startedAt: number, now: number, done: number, total: number | null): number | null {
  if (total === null || total <= 0 || done <= 0) return null;
  const elapsed = now - startedAt;
  if (elapsed < 500) return null;
  if (done >= total) return 0;
  return (elapsed / done) * (total - done);
}

/** An item's number as people count (1, 2, …): the store keeps 0-based positions (`idx`). */
export function itemNumber(idx: number): number {
  return idx + 1;
}

/** A path's last segment (a project or model name in lists). */
export function baseName(p: string): string {
  const parts = p.split(/[\\/]+/).filter(Boolean);
  return parts[parts.length - 1] ?? p;
}

/** A run as lists show it: `#4 trace "demo" (done)`. */
export function runLabel(run: { id: number; kind: string; name: string | null; status?: string }, opts: { kind?: boolean } = {}): string {
  const parts = [`#${run.id}`];
  if (opts.kind !== false) parts.push(run.kind);
  if (run.name) parts.push(`"${run.name}"`);
  if (run.status && run.status !== 'done') parts.push(`(${run.status})`);
  return parts.join(' ');
}

/** A compared metric: integers as they are, other numbers to 4 decimals. */
export function fmtMetric(v: number | null | undefined): string {
  if (missing(v)) return '—';
  return Number.isInteger(v) ? String(v) : v.toFixed(4);
}

/** A compared headline number in its unit (src/shared/compare.ts): 0.4 percent → "40.0%", a count → "1,024". */
export function fmtHeadline(v: number | null | undefined, unit: 'percent' | 'count' | 'tokens' | 'number'): string {
  if (missing(v)) return '—';
  if (unit === 'percent') return fmtPct(v, 1);
  if (unit === 'count') return fmtInt(v);
  if (unit === 'tokens') return `${v.toFixed(1)} tok`;
  return fmtMetric(v);
}

/** A difference in a headline's unit: percentage points for percentages ("−60.0 pp"), else as fmtDelta. */
export function fmtHeadlineDelta(v: number | null | undefined, unit: 'percent' | 'count' | 'tokens' | 'number'): string {
  if (missing(v)) return '';
  const sign = v >= 0 ? '+' : '−';
  if (unit === 'percent') return `${sign}${(Math.abs(v) * 100).toFixed(1)} pp`;
  if (unit === 'count') return `${sign}${fmtInt(Math.abs(v))}`;
  if (unit === 'tokens') return `${sign}${Math.abs(v).toFixed(1)} tok`;
  return fmtDelta(v);
}

/** A signed difference for "Δ" columns: +0.1234 / −0.0500; empty when there is none. */
export function fmtDelta(v: number | null | undefined): string {
  if (missing(v)) return '';
  return `${v >= 0 ? '+' : '−'}${fmtMetric(Math.abs(v))}`;
}

/** A form's list of numbers ("1, 0.8 0.6"); throws, naming `what`, when an entry is not a number or there is none. */
export function parseNumberList(text: string, what: string): number[] {
  const list = text.split(/[\s,]+/).filter(Boolean).map(Number);
  if (!list.length || list.some((x) => !Number.isFinite(x))) throw new Error(`${what}: write numbers separated by commas`);
  return list;
}
