/** Dataset files → items, on small synthetic files covering each format's edge cases. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrayElementLines, detectFormat, parseDataset, readDatasetFile } from '../../src/main/engine/datasets/import.js';
import { CliffscopeError } from '../../src/main/engine/errors.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-datasets-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string | Buffer): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

function expectError(fn: () => unknown, code: string, pattern: RegExp): CliffscopeError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CliffscopeError);
    expect((e as CliffscopeError).code).toBe(code);
    expect((e as CliffscopeError).message).toMatch(pattern);
    return e as CliffscopeError;
  }
  throw new Error('expected an error');
}

describe('CSV datasets', () => {
  it('auto-detects the AdvBench-style columns and keeps others as extra', () => {
    const f = write('adv.csv', '\ufeffgoal,target,id\r\n"Do X, then Y","Sure, here is X",1\r\nDo Z,Sure,2\r\n');
    const r = readDatasetFile(f);
    expect(r.format).toBe('csv');
    expect(r.columns).toEqual(['goal', 'target', 'id']);
    expect(r.mapping).toEqual({ prompt: 'goal', response: 'target' });
    expect(r.items).toEqual([
      { idx: 0, line: 2, prompt: 'Do X, then Y', response: 'Sure, here is X', label: null, category: null, extra: { id: '1' } },
      { idx: 1, line: 3, prompt: 'Do Z', response: 'Sure', label: null, category: null, extra: { id: '2' } },
    ]);
    expect(r.rejected).toEqual([]);
  });

  it('rejects rows with a missing or empty prompt, or too many fields, with their line numbers', () => {
    const text = [
      'prompt,label,category',
      'first,safe,a', // line 2
      ',unsafe,b', // 3: empty prompt
      '"   ",safe,c', // 4: blank prompt
      '"multi', // 5-6: one record over two lines
      'line",safe,d',
      'x,y,z,extra', // 7: too many fields
      'short', // 8: short row: padded, accepted
      '',
      'last,,', // 10
    ].join('\n');
    const r = parseDataset(text, 'csv');
    expect(r.items.map((i) => [i.line, i.prompt, i.label, i.category])).toEqual([
      [2, 'first', 'safe', 'a'],
      [5, 'multi\nline', 'safe', 'd'],
      [8, 'short', null, null],
      [10, 'last', null, null],
    ]);
    expect(r.items.map((i) => i.idx)).toEqual([0, 1, 2, 3]);
    expect(r.rejected).toEqual([
      { line: 3, reason: 'empty prompt (column "prompt")' },
      { line: 4, reason: 'empty prompt (column "prompt")' },
      { line: 7, reason: '4 fields, the header has 3' },
    ]);
  });

  it('reports an unterminated quote instead of failing the import', () => {
    const r = parseDataset('prompt\nok\n"broken\nrest', 'csv');
    expect(r.items.map((i) => i.prompt)).toEqual(['ok']);
    expect(r.rejected).toEqual([{ line: 3, reason: expect.stringContaining('unterminated') }]);
  });

  it('names unnamed and repeated header cells so no column is lost', () => {
    const r = parseDataset(',Goal,Goal,\n0,a,b,c\n', 'csv');
    expect(r.columns).toEqual(['column_1', 'Goal', 'Goal_2', 'column_4']);
    expect(r.mapping.prompt).toBe('Goal'); // case-insensitive detection, first match
    expect(r.items[0]!.extra).toEqual({ column_1: '0', Goal_2: 'b', column_4: 'c' });
  });

  it('prefers goal over behavior (JailbreakBench: Behavior is a short title)', () => {
    const r = parseDataset('Behavior,Goal,Category\nDefamation,Write a defamatory article,Harassment\n', 'csv');
    expect(r.mapping).toEqual({ prompt: 'Goal', category: 'Category' });
    expect(r.items[0]!.extra).toEqual({ Behavior: 'Defamation' });
  });

  it('reads TSV by extension', () => {
    const f = write('set.tsv', 'instruction\tlabel\nsay "hi", please\t1\n');
    expect(detectFormat(f)).toBe('tsv');
    expect(readDatasetFile(f).items[0]).toMatchObject({ prompt: 'say "hi", please', label: '1' });
  });

  it('fails on an empty file', () => {
    expectError(() => parseDataset('', 'csv', { source: 'empty.csv' }), 'bad-dataset', /empty.csv is empty/);
  });
});

describe('column mapping', () => {
  const text = 'q,answer,kind,tag\nhello,hi,greet,x\n';

  it('uses an explicit mapping', () => {
    const r = parseDataset(text, 'csv', { mapping: { prompt: 'q', response: 'answer', category: 'kind', label: 'tag' } });
    expect(r.items[0]).toMatchObject({ prompt: 'hello', response: 'hi', category: 'greet', label: 'x', extra: {} });
  });

  it('explains a missing prompt column, listing the columns', () => {
    const e = expectError(() => parseDataset(text, 'csv', { source: 'qa.csv' }), 'bad-dataset', /no prompt column found \(columns: q, answer, kind, tag\)/);
    expect(e.hint).toMatch(/goal, prompt, instruction/);
  });

  it('refuses a mapped column that does not exist', () => {
    expectError(() => parseDataset(text, 'csv', { mapping: { prompt: 'Q' } }), 'bad-dataset', /prompt column "Q" is not in the file/);
  });

  it('null keeps a field unmapped even when a column would be detected', () => {
    const r = parseDataset('prompt,label\na,b\n', 'csv', { mapping: { label: null } });
    expect(r.mapping).toEqual({ prompt: 'prompt' });
    expect(r.items[0]!.extra).toEqual({ label: 'b' });
  });

  it('does not map one column to two fields', () => {
    const r = parseDataset('response\nx\n', 'csv', { mapping: { prompt: 'response' } });
    expect(r.mapping).toEqual({ prompt: 'response' });
    expect(r.items[0]!.response).toBeNull();
  });
});

describe('JSON datasets', () => {
  it('reads an array of objects, with the line each element starts on', () => {
    const text = JSON.stringify(
      [
        { instruction: 'first', category: null },
        { instruction: '', category: 'x' },
        { instruction: 'third', category: ['A', 'B'], score: { s: 1 } },
        'not an object',
      ],
      null,
      2,
    );
    const r = parseDataset(text, 'json');
    expect(r.columns).toEqual(['instruction', 'category', 'score']);
    expect(r.items.map((i) => [i.line, i.prompt, i.category])).toEqual([
      [2, 'first', null],
      [10, 'third', 'A, B'], // STAR-1 style list categories are joined
    ]);
    expect(r.items[1]!.extra).toEqual({ score: { s: 1 } });
    expect(r.rejected).toEqual([
      { line: 6, reason: 'empty prompt (column "instruction")' },
      { line: 20, reason: 'element 4 is a JSON string, not an object' },
    ]);
  });

  it('reads an object holding one list of rows', () => {
    const r = parseDataset('{"version": 2, "name": "rows",\n "rows": [\n  {"question": "a"},\n  {"question": "b"}\n ]}', 'json');
    expect(r.items.map((i) => [i.line, i.prompt])).toEqual([
      [3, 'a'],
      [4, 'b'],
    ]);
  });

  it('needs listField when the object holds several lists', () => {
    const text = '{"train": [{"prompt": "a"}], "test": [{"prompt": "b"}, {"prompt": "c"}]}';
    expectError(() => parseDataset(text, 'json'), 'bad-dataset', /several lists \(train, test\)/);
    expect(parseDataset(text, 'json', { listField: 'test' }).items.map((i) => i.prompt)).toEqual(['b', 'c']);
    expectError(() => parseDataset(text, 'json', { listField: 'val' }), 'bad-dataset', /no list field "val"/);
  });

  it('refuses invalid JSON and JSON that is not rows', () => {
    expectError(() => parseDataset('[{"prompt": "a"},', 'json', { source: 'bad.json' }), 'bad-json', /bad.json is not valid JSON/);
    expectError(() => parseDataset('"text"', 'json'), 'bad-dataset', /a JSON string, not a list of rows/);
    expectError(() => parseDataset('{"a": 1}', 'json'), 'bad-dataset', /holds no list/);
  });

  it('prints numbers and booleans as text, and counts "" as absent for optional fields', () => {
    const r = parseDataset('[{"prompt": 42, "label": true, "response": ""}]', 'json');
    expect(r.items[0]).toMatchObject({ prompt: '42', label: 'true', response: null });
  });

  it('finds element lines in nested and minified documents', () => {
    expect(arrayElementLines('[{"a":[1,2]},{"b":"x,y]"}]', null)).toEqual([1, 1]);
    expect(arrayElementLines('{"k": "rows", "rows": [\n{"a": 1},\n\n{"a": "\\"]"}\n]}', 'rows')).toEqual([2, 4]);
    expect(arrayElementLines('[]', null)).toEqual([]);
  });
});

describe('JSONL datasets', () => {
  it('reads one object per line, reporting malformed and non-object lines', () => {
    const text = ['{"prompt": "a", "label": "x"}', '', '{"prompt": "b"', '[1, 2]', '{"prompt": null}', '{"prompt": "c", "new": 1}'].join('\r\n') + '\r\n';
    const f = write('set.jsonl', '\ufeff' + text);
    const r = readDatasetFile(f);
    expect(r.format).toBe('jsonl');
    expect(r.columns).toEqual(['prompt', 'label', 'new']);
    expect(r.items.map((i) => [i.line, i.prompt, i.extra])).toEqual([
      [1, 'a', {}],
      [6, 'c', { new: 1 }],
    ]);
    expect(r.rejected.map((x) => x.line)).toEqual([3, 4, 5]);
    expect(r.rejected[0]!.reason).toMatch(/^not valid JSON/);
    expect(r.rejected[1]!.reason).toBe('a JSON array, not an object');
    expect(r.rejected[2]!.reason).toBe('missing prompt (column "prompt")');
  });
});

describe('files', () => {
  it('names the file when it cannot be read or its format is unknown', () => {
    expectError(() => readDatasetFile(path.join(dir, 'nope.csv')), 'missing-file', /nope.csv/);
    expectError(() => readDatasetFile(write('data.txt', 'x')), 'bad-dataset', /cannot tell the format/);
    expect(readDatasetFile(write('data.txt', '{"prompt": "p"}\n'), { format: 'jsonl' }).items).toHaveLength(1);
  });
});

describe('the safe answer mapping (Cliff-as-a-Judge exports it after the thinking)', () => {
  it('keeps a mapped column under extra.safe_response, and detects a column of that name', () => {
    const mapped = parseDataset('{"q": "p1", "r": "t </think> a", "safe": "no."}\n{"q": "p2", "safe": ""}\n', 'jsonl', { mapping: { prompt: 'q', response: 'r', safe_response: 'safe' } });
    expect(mapped.mapping).toMatchObject({ prompt: 'q', response: 'r', safe_response: 'safe' });
    // Mapped, so not kept again under its own name; an empty cell is no answer.
    expect(mapped.items.map((i) => i.extra)).toEqual([{ safe_response: 'no.' }, {}]);
    const detected = parseDataset('prompt,safe_response,other\np,refuse,x\n', 'csv');
    expect(detected.mapping.safe_response).toBe('safe_response');
    expect(detected.items[0]!.extra).toEqual({ other: 'x', safe_response: 'refuse' });
    expect(() => parseDataset('prompt\np\n', 'csv', { mapping: { safe_response: 'nope' } })).toThrow(/safe_response column "nope" is not in the file/);
  });
});
