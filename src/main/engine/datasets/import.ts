/**
 * Prompt datasets from CSV / TSV, JSON (an array of objects, or an object holding one) and JSONL, mapped onto
 * Cliffscope's item shape {prompt, response?, label?, category?, extra}. Rows that cannot become an item (no prompt,
 * a malformed JSONL line, a CSV row with too many fields) are reported with their line number rather than failing
 * the import: public datasets are messy and losing a whole file over one row helps nobody.
 */
import path from 'node:path';
import { CliffscopeError } from '../errors.js';
import { jsonSyntaxProblem } from '../io/json-syntax.js';
import { readUntrustedText } from '../io/untrusted-file.js';
import { parseCsv } from './csv.js';

export type DatasetFormat = 'csv' | 'tsv' | 'json' | 'jsonl';

/** Which source column feeds each item field. Only `prompt` is required. */
export interface ColumnMapping {
  prompt: string;
  response?: string;
  label?: string;
  category?: string;
  /** A safe answer (Cliff-as-a-Judge exports it after the thinking): kept in the item's extra fields as `safe_response`. */
  safe_response?: string;
  /** One label given to every item of the file on import, in place of a label column (e.g. "harmful"). */
  fileLabel?: string;
}

/** The extra field an item's mapped safe answer is kept under (select --safe-response reads it by this name). */
export const SAFE_RESPONSE_FIELD = 'safe_response';

export interface DatasetItem {
  /** 0-based position among the accepted items. */
  idx: number;
  /** 1-based line in the source where the row starts (for JSON: where the array element starts). */
  line: number;
  prompt: string;
  response: string | null;
  label: string | null;
  category: string | null;
  /** Every source column not mapped above, with its original value. */
  extra: Record<string, unknown>;
}

export interface RejectedRow {
  line: number;
  reason: string;
}

export interface DatasetReadResult {
  format: DatasetFormat;
  /** Source column names in first-seen order (unnamed CSV columns become "column_N"). */
  columns: string[];
  /** The mapping actually used (explicit, or detected). */
  mapping: ColumnMapping;
  items: DatasetItem[];
  rejected: RejectedRow[];
}

export interface ReadDatasetOptions {
  /** Explicit mapping; fields left out are auto-detected (pass `null` to keep a field unmapped). */
  mapping?: Partial<Record<keyof ColumnMapping, string | null>>;
  /** Overrides detection by file extension. */
  format?: DatasetFormat;
  /** For a JSON object holding several arrays: the key of the one to read. */
  listField?: string;
  /** Refuse files larger than this many bytes (default DEFAULT_MAX_DATASET_BYTES). */
  maxBytes?: number;
  /**
   * One label for every item of the file (a file of harmful prompts: "harmful"), in place of a label column: a
   * label column the mapping names or detects stays unmapped (its values are kept with the item's other columns).
   */
  label?: string;
}

/**
 * Largest dataset file read unless raised (`dataset import --max-mb`). Prompt sets are megabytes; this bounds what a
 * mistaken or hostile path (a log file, a disk image) can cost before anything is stored.
 */
export const DEFAULT_MAX_DATASET_BYTES = 512 * 1024 * 1024;

/** The item fields a column can be mapped to. */
const FIELDS = ['prompt', 'response', 'label', 'category', 'safe_response'] as const;

/**
 * Column names tried, in order and case-insensitively, when a field is not mapped explicitly. `goal` comes before
 * `behavior` because JailbreakBench's Behavior column is a short title ("Defamation"), its Goal the request.
 */
export const AUTO_COLUMNS: Readonly<Record<(typeof FIELDS)[number], readonly string[]>> = {
  prompt: ['goal', 'prompt', 'instruction', 'question', 'behavior', 'forbidden_prompt'],
  response: ['target', 'response', 'output'],
  label: ['label'],
  category: ['category'],
  safe_response: ['safe_response'],
};

export function detectFormat(file: string): DatasetFormat {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.tsv' || ext === '.tab') return 'tsv';
  if (ext === '.json') return 'json';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  throw new CliffscopeError('bad-dataset', `cannot tell the format of ${file} from its extension "${ext}"`, {
    file,
    hint: 'use a .csv, .tsv, .json or .jsonl file, or pass the format explicitly',
  });
}

/** Read and map a dataset file. Throws only for problems with the whole file (unreadable, no prompt column…). */
export function readDatasetFile(file: string, opts: ReadDatasetOptions = {}): DatasetReadResult {
  const format = opts.format ?? detectFormat(file);
  const text = readUntrustedText(file, {
    maxBytes: opts.maxBytes ?? DEFAULT_MAX_DATASET_BYTES,
    what: 'dataset file',
    code: 'bad-dataset',
    raiseHint: 'to import it anyway, raise the limit (cliffscope dataset import … --max-mb N)',
  });
  return parseDataset(text, format, { ...opts, source: file });
}

/**
 * Column names for an error message. Only names that look like column names are quoted: the "header" of a file that
 * is not a dataset at all (say /proc/self/environ) is its content, and errors never echo file contents.
 */
function shownColumns(columns: string[]): string {
  const plain = columns.filter((c) => /^[\p{L}\p{N}_ .()-]{1,64}$/u.test(c)).slice(0, 30);
  const hidden = columns.length - plain.length;
  if (columns.length === 0) return 'none';
  return [plain.join(', '), hidden > 0 ? `${hidden} other${plain.length ? '' : ' column'}${hidden === 1 ? '' : 's'} not shown` : ''].filter(Boolean).join('; ');
}

/** Raw rows from a source before mapping: each an object of column → value, with its line. */
interface RawRows {
  columns: string[];
  rows: { line: number; values: Record<string, unknown> }[];
  rejected: RejectedRow[];
}

export function parseDataset(text: string, format: DatasetFormat, opts: ReadDatasetOptions & { source?: string } = {}): DatasetReadResult {
  const source = opts.source ?? '(text)';
  const raw =
    format === 'csv' || format === 'tsv'
      ? rowsFromCsv(text, format === 'tsv' ? '\t' : ',', source)
      : format === 'jsonl'
        ? rowsFromJsonl(text)
        : rowsFromJson(text, source, opts.listField);
  const fileLabel = opts.label?.trim();
  if (opts.label !== undefined && !fileLabel) throw new CliffscopeError('bad-dataset', 'the label for the whole file is empty', { hint: 'give a label such as harmful, or leave it out' });
  const mapping: ColumnMapping = resolveMapping(raw.columns, fileLabel ? { ...opts.mapping, label: null } : (opts.mapping ?? {}), source);
  if (fileLabel) mapping.fileLabel = fileLabel;

  const items: DatasetItem[] = [];
  const rejected = [...raw.rejected];
  const mapped = new Set(Object.values(mapping));
  for (const { line, values } of raw.rows) {
    const prompt = asText(own(values, mapping.prompt));
    if (prompt === null || prompt.trim() === '') {
      rejected.push({ line, reason: `${prompt === null ? 'missing' : 'empty'} prompt (column "${mapping.prompt}")` });
      continue;
    }
    const extra: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(values)) if (!mapped.has(k)) setOwn(extra, k, v);
    // No column of its own in the project: the safe answer travels with the item's extra fields, under one name.
    const safe = optionalText(values, mapping.safe_response);
    if (safe !== null) setOwn(extra, SAFE_RESPONSE_FIELD, safe);
    items.push({
      idx: items.length,
      line,
      prompt,
      response: optionalText(values, mapping.response),
      label: fileLabel ?? optionalText(values, mapping.label),
      category: optionalText(values, mapping.category),
      extra,
    });
  }
  rejected.sort((a, b) => a.line - b.line);
  return { format, columns: raw.columns, mapping, items, rejected };
}

/** Explicit choices first; then the first AUTO_COLUMNS name present for each field not chosen. */
function resolveMapping(columns: string[], given: Partial<Record<keyof ColumnMapping, string | null>>, source: string): ColumnMapping {
  const byLower = new Map<string, string>();
  for (const c of columns) if (!byLower.has(c.toLowerCase())) byLower.set(c.toLowerCase(), c);
  const out: Partial<ColumnMapping> = {};
  const used = new Set<string>();
  for (const field of FIELDS) {
    const want = given[field];
    if (want === null) continue;
    if (want !== undefined) {
      if (!columns.includes(want)) {
        throw new CliffscopeError('bad-dataset', `${source}: the ${field} column "${want}" is not in the file (columns: ${shownColumns(columns)})`, {
          file: source,
          hint: 'column names are case-sensitive; pick one of the listed columns',
        });
      }
      out[field] = want;
      used.add(want);
    }
  }
  for (const field of FIELDS) {
    if (field in given) continue;
    const found = AUTO_COLUMNS[field].map((name) => byLower.get(name)).find((c) => c !== undefined && !used.has(c));
    if (found !== undefined) {
      out[field] = found;
      used.add(found);
    }
  }
  if (out.prompt === undefined) {
    throw new CliffscopeError('bad-dataset', `${source}: no prompt column found (columns: ${shownColumns(columns)})`, {
      file: source,
      hint: `name the prompt column in the mapping (e.g. prompt=COLUMN); recognised names are ${AUTO_COLUMNS.prompt.join(', ')}`,
    });
  }
  return out as ColumnMapping;
}

/** A cell as text: strings as they are, numbers/booleans printed, a list of strings joined, other JSON serialised. */
function asText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v.join(', '); // e.g. STAR-1's ["Self-Harm"]
  return JSON.stringify(v);
}

/** Optional fields: an empty value counts as absent (a CSV cannot tell "" from missing). */
function optionalText(values: Record<string, unknown>, column: string | undefined): string | null {
  if (column === undefined) return null;
  const t = asText(own(values, column));
  return t === null || t === '' ? null : t;
}

function rowsFromCsv(text: string, delimiter: string, source: string): RawRows {
  const { records, problems } = parseCsv(text, delimiter);
  const rejected: RejectedRow[] = problems.map((p) => ({ ...p }));
  const header = records.shift();
  if (!header) throw new CliffscopeError('bad-dataset', `${source} is empty (no header row)`, { file: source });
  const columns = uniqueColumnNames(header.fields);
  const rows: RawRows['rows'] = [];
  for (const r of records) {
    if (r.fields.length > columns.length) {
      // Usually an unquoted delimiter inside a value: the row's columns are shifted, so its values cannot be trusted.
      rejected.push({ line: r.line, reason: `${r.fields.length} fields, the header has ${columns.length}` });
      continue;
    }
    const values: Record<string, unknown> = {};
    columns.forEach((c, i) => setOwn(values, c, r.fields[i] ?? '')); // short rows: missing trailing fields are empty, as in pandas
    rows.push({ line: r.line, values });
  }
  return { columns, rows, rejected };
}

/** Unnamed header cells become column_N (1-based); repeats get a _2, _3 suffix, so every column keeps its data. */
function uniqueColumnNames(header: string[]): string[] {
  const seen = new Set<string>();
  return header.map((h, i) => {
    const base = h.trim() === '' ? `column_${i + 1}` : h;
    let name = base;
    for (let k = 2; seen.has(name); k++) name = `${base}_${k}`;
    seen.add(name);
    return name;
  });
}

function rowsFromJsonl(text: string): RawRows {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const columns = new ColumnList();
  const rows: RawRows['rows'] = [];
  const rejected: RejectedRow[] = [];
  text.split(/\r\n|\n|\r/).forEach((l, i) => {
    if (l.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch {
      rejected.push({ line: i + 1, reason: `not valid JSON (${jsonSyntaxProblem(l).replace(/^invalid JSON at line 1, /, 'at ')})` });
      return;
    }
    if (!isPlainObject(v)) {
      rejected.push({ line: i + 1, reason: `a JSON ${jsonKind(v)}, not an object` });
      return;
    }
    if (nestedTooDeep(v)) {
      rejected.push({ line: i + 1, reason: TOO_DEEP });
      return;
    }
    columns.addAll(v);
    rows.push({ line: i + 1, values: v });
  });
  return { columns: columns.list, rows, rejected };
}

function rowsFromJson(text: string, source: string, listField?: string): RawRows {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new CliffscopeError('bad-json', `${source} is not valid JSON: ${jsonSyntaxProblem(text)}`, {
      file: source,
      hint: 'if it holds one JSON object per line, give it a .jsonl extension',
    });
  }
  let list: unknown[];
  let key: string | null = null;
  if (Array.isArray(doc)) {
    list = doc;
  } else if (isPlainObject(doc)) {
    const candidates = Object.keys(doc).filter((k) => Array.isArray(doc[k]));
    if (listField !== undefined) {
      if (!candidates.includes(listField)) {
        throw new CliffscopeError('bad-dataset', `${source}: there is no list field "${listField}" (lists: ${shownColumns(candidates)})`, { file: source });
      }
      key = listField;
    } else if (candidates.length === 1) {
      key = candidates[0]!;
    } else {
      throw new CliffscopeError(
        'bad-dataset',
        candidates.length === 0 ? `${source}: the JSON object holds no list of rows` : `${source}: the JSON object holds several lists (${shownColumns(candidates)})`,
        { file: source, hint: candidates.length === 0 ? 'expected an array of objects, or an object with one array field' : 'say which one to read (listField)' },
      );
    }
    list = doc[key] as unknown[];
  } else {
    throw new CliffscopeError('bad-dataset', `${source}: a JSON ${jsonKind(doc)}, not a list of rows`, { file: source });
  }

  const lines = arrayElementLines(text, key);
  const columns = new ColumnList();
  const rows: RawRows['rows'] = [];
  const rejected: RejectedRow[] = [];
  list.forEach((v, i) => {
    const line = lines[i] ?? 1;
    if (!isPlainObject(v)) {
      rejected.push({ line, reason: `element ${i + 1} is a JSON ${jsonKind(v)}, not an object` });
      return;
    }
    if (nestedTooDeep(v)) {
      rejected.push({ line, reason: TOO_DEEP });
      return;
    }
    columns.addAll(v);
    rows.push({ line, values: v });
  });
  return { columns: columns.list, rows, rejected };
}

/**
 * The 1-based line where each element of the row array starts: the top-level array, or the array under top-level
 * key `key`. A plain scan over already-valid JSON (strings skipped, nesting tracked), so rejected rows can point at a
 * line in a pretty-printed file.
 */
export function arrayElementLines(text: string, key: string | null): number[] {
  const lines: number[] = [];
  let line = 1;
  let depth = 0;
  let targetDepth = key === null ? 1 : -1; // depth inside the target array, once found
  let lastKey: string | null = null; // most recent string at depth 1 of the top-level object
  let expectElement = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\n') {
      line++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') continue;
    if (expectElement && c !== ']') {
      lines.push(line);
      expectElement = false;
    } else if (expectElement) {
      expectElement = false; // empty array
    }
    if (c === '"') {
      let j = i + 1;
      let s = '';
      while (j < text.length && text[j] !== '"') {
        if (text[j] === '\\') j++;
        s += text[j];
        j++;
      }
      if (depth === 1 && key !== null) lastKey = s; // close enough for keys: escapes only matter for odd names
      i = j;
      continue;
    }
    if (c === '[' || c === '{') {
      depth++;
      if (c === '[' && key !== null && depth === 2 && lastKey === key && targetDepth === -1) targetDepth = 2;
      if (c === '[' && depth === targetDepth) expectElement = true;
    } else if (c === ']' || c === '}') {
      if (c === ']' && depth === targetDepth && key !== null) targetDepth = -2; // done with it
      depth--;
    } else if (c === ',' && depth === targetDepth) {
      expectElement = true;
    }
  }
  return lines;
}

class ColumnList {
  readonly list: string[] = [];
  private readonly seen = new Set<string>();
  addAll(o: Record<string, unknown>): void {
    for (const k of Object.keys(o)) {
      if (!this.seen.has(k)) {
        this.seen.add(k);
        this.list.push(k);
      }
    }
  }
}

/**
 * Column names are data: "__proto__", "constructor" or "toString" must read and write the row's own value, never
 * what every object inherits (which dropped a "__proto__" column and crashed a mapping onto "constructor").
 */
function own(o: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

function setOwn(o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Rows are flat records; a value nested this deep is not data, and serialising it would overflow the stack. */
const MAX_NESTING = 64;
const TOO_DEEP = `values nested more than ${MAX_NESTING} levels deep`;

/** Whether `v` nests arrays/objects deeper than MAX_NESTING (checked without recursion). */
function nestedTooDeep(v: unknown): boolean {
  const stack: [unknown, number][] = [[v, 0]];
  while (stack.length > 0) {
    const [x, depth] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    if (depth >= MAX_NESTING) return true;
    for (const child of Object.values(x)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function jsonKind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}
