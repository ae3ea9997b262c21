/**
 * Fuzzing the dataset readers (CSV / TSV, JSON, JSONL, the UTF-8 check) and the JSON error locator: whatever the
 * text, a read either yields items with a non-empty prompt and a line inside the file, or a CliffscopeError; and the
 * locator agrees with JSON.parse about what is valid.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDataset, readDatasetFile, type DatasetFormat } from '../../src/main/engine/datasets/import.js';
import { CliffscopeError } from '../../src/main/engine/errors.js';
import { firstJsonError } from '../../src/main/engine/io/json-syntax.js';
import { fuzz, type Rand } from './fuzz.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-fuzz-ds-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const COLUMNS = ['prompt', 'goal', 'response', 'label', 'category', 'x', '', 'Prompt', 'a,b', 'q"uote'];

function cell(r: Rand): string {
  const v = r.text(20);
  return r.bool(0.3) ? `"${v.replaceAll('"', r.bool(0.8) ? '""' : '"')}"` : v;
}

function csvText(r: Rand, d: string): string {
  const cols = Array.from({ length: r.int(0, 4) }, () => r.pick(COLUMNS));
  const lines = [cols.map((c) => (r.bool(0.2) ? `"${c}"` : c)).join(d)];
  for (let k = r.int(0, 8); k > 0; k--) lines.push(Array.from({ length: r.int(0, cols.length + 1) }, () => cell(r)).join(d));
  return lines.join(r.pick(['\n', '\r\n', '\r'])) + (r.bool() ? '\n' : '');
}

function jsonValue(r: Rand, depth: number): unknown {
  const k = r.int(0, depth > 2 ? 3 : 5);
  if (k === 0) return r.text(10);
  if (k === 1) return r.pick([null, true, 0, -1.5, 1e300]);
  if (k === 2) return r.bool(0.8) ? r.text(30) : r.int(0, 9);
  if (k === 3) return Array.from({ length: r.int(0, 3) }, () => r.text(5));
  if (k === 4) return Object.fromEntries(Array.from({ length: r.int(0, 3) }, () => [r.pick(COLUMNS), jsonValue(r, depth + 1)]));
  return Array.from({ length: r.int(0, 3) }, () => jsonValue(r, depth + 1));
}

function jsonRows(r: Rand): unknown[] {
  return Array.from({ length: r.int(0, 6) }, () => (r.bool(0.85) ? Object.fromEntries(Array.from({ length: r.int(0, 3) }, () => [r.pick(COLUMNS), jsonValue(r, 1)])) : jsonValue(r, 1)));
}

/** Break valid text the way a bad export or an editor would. */
function damage(r: Rand, text: string): string {
  if (text.length === 0 || r.bool(0.6)) return text;
  const at = r.int(0, text.length - 1);
  return r.bool() ? text.slice(0, at) : text.slice(0, at) + r.pick(['"', '{', ',', '\n', ']', 'x']) + text.slice(at);
}

function input(r: Rand): { format: DatasetFormat; text: string } {
  const format = r.pick<DatasetFormat>(['csv', 'tsv', 'json', 'jsonl']);
  if (format === 'csv' || format === 'tsv') return { format, text: damage(r, csvText(r, format === 'tsv' ? '\t' : ',')) };
  if (format === 'jsonl') return { format, text: jsonRows(r).map((v) => (r.bool(0.9) ? JSON.stringify(v) : r.text(20))).join('\n') };
  const rows = jsonRows(r);
  const doc = r.bool(0.7) ? rows : r.bool() ? { data: rows } : { a: rows, b: rows };
  return { format, text: damage(r, JSON.stringify(doc, null, r.bool() ? 2 : undefined)) };
}

describe('dataset readers under fuzzing', () => {
  it('parseDataset: items with a prompt and a line in the file, or a CliffscopeError', async () => {
    let accepted = 0;
    const runs = await fuzz('parseDataset', input, ({ format, text }) => {
      let read: ReturnType<typeof parseDataset>;
      try {
        read = parseDataset(text, format);
      } catch (e) {
        if (!(e instanceof CliffscopeError)) throw e;
        return;
      }
      accepted++;
      const lines = text.split(/\r\n|\n|\r/).length;
      read.items.forEach((item, i) => {
        expect(item.idx).toBe(i);
        expect(item.prompt.trim()).not.toBe('');
        expect(item.line).toBeGreaterThanOrEqual(1);
        expect(item.line).toBeLessThanOrEqual(lines);
      });
      for (const rej of read.rejected) expect(rej.line).toBeGreaterThanOrEqual(1);
    });
    expect(runs).toBeGreaterThan(100);
    expect(accepted).toBeGreaterThan(10);
  });

  it('readDatasetFile on random bytes: UTF-8 is checked, nothing but CliffscopeErrors escape', async () => {
    const file = path.join(dir, 'f.csv');
    await fuzz(
      'readDatasetFile',
      (r) => (r.bool() ? Buffer.from(r.bytes(r.int(0, 200))) : Buffer.from(csvText(r, ','), 'utf8')),
      (bytes) => {
        fs.writeFileSync(file, bytes);
        try {
          readDatasetFile(file);
        } catch (e) {
          if (!(e instanceof CliffscopeError)) throw e;
          expect(e.message).toContain(file);
        }
      },
      { describe: (b) => b.toString('base64') },
    );
  });

  it('firstJsonError agrees with JSON.parse about validity, and points inside the text', async () => {
    await fuzz(
      'firstJsonError',
      (r) => (r.bool(0.5) ? damage(r, JSON.stringify(jsonValue(r, 0), null, r.bool() ? 1 : undefined) ?? 'null') : r.text(40)),
      (text) => {
        let valid = true;
        try {
          JSON.parse(text);
        } catch {
          valid = false;
        }
        const at = firstJsonError(text);
        if (valid) expect(at).toBe(-1);
        else {
          expect(at).toBeGreaterThanOrEqual(0);
          expect(at).toBeLessThanOrEqual(text.length);
        }
      },
    );
  });
});
