/**
 * Dataset files are untrusted input: only regular files (after links) of bounded size are read, a FIFO or a link to
 * /dev/zero is refused at once instead of hanging or filling memory, bad UTF-8 is reported with its line, and no
 * error or rejected-row reason quotes a file's contents.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDatasetFile } from '../../src/main/engine/datasets/import.js';
import { CliffscopeError } from '../../src/main/engine/errors.js';
import { openProject } from '../../src/main/store/open.js';
import { cli } from '../support/cli.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-hostile-datasets-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const posix = process.platform !== 'win32';

function write(name: string, text: string | Buffer): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

function failure(fn: () => unknown): CliffscopeError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CliffscopeError);
    return e as CliffscopeError;
  }
  throw new Error('expected an error');
}

describe('only regular files of bounded size', () => {
  it.runIf(posix && fs.existsSync('/dev/zero'))('refuses a link to /dev/zero at once (it grew to 3 GB before)', () => {
    const link = path.join(dir, 'zero.csv');
    fs.symlinkSync('/dev/zero', link);
    const err = failure(() => readDatasetFile(link));
    expect(err.code).toBe('bad-dataset');
    expect(err.message).toMatch(/zero\.csv: is a device, not a dataset file/);
  });

  it.runIf(posix)('refuses a FIFO instead of waiting for a writer forever', () => {
    const fifo = path.join(dir, 'pipe.jsonl');
    execFileSync('mkfifo', [fifo]);
    expect(failure(() => readDatasetFile(fifo)).message).toMatch(/is a pipe \(FIFO\)/);
  });

  it('refuses a folder', () => {
    const folder = path.join(dir, 'folder.csv');
    fs.mkdirSync(folder);
    expect(failure(() => readDatasetFile(folder)).message).toMatch(/is a folder/);
  });

  it('follows a link to a regular file', () => {
    const target = write('real.csv', 'prompt\nhello\n');
    const link = path.join(dir, 'link.csv');
    fs.symlinkSync(target, link);
    expect(readDatasetFile(link).items.map((i) => i.prompt)).toEqual(['hello']);
  });

  it('refuses a file over the size limit, saying how to raise it', () => {
    const f = write('big.csv', `prompt\n${'x'.repeat(5000)}\n`);
    const err = failure(() => readDatasetFile(f, { maxBytes: 1000 }));
    expect(err.message).toMatch(/over the limit of 1000 bytes/);
    expect(err.hint).toMatch(/--max-mb/);
    expect(readDatasetFile(f, { maxBytes: 10_000 }).items).toHaveLength(1);
  });

  it('dataset import --max-mb raises the limit; below it the import is refused and the project untouched', async () => {
    const project = path.join(dir, 'limit.cliffscope');
    const f = write('onemb.csv', `prompt\n${Array.from({ length: 12_000 }, (_, i) => `prompt number ${i} ${'y'.repeat(90)}`).join('\n')}\n`);
    const refused = await cli('dataset', 'import', project, f, '--name', 'big', '--max-mb', '1');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/over the limit of 1 MB/);
    const accepted = await cli('dataset', 'import', project, f, '--name', 'big', '--max-mb', '2');
    expect(accepted.code, accepted.stderr).toBe(0);
    const store = openProject(project, { readonly: true });
    try {
      expect(store.datasets.list().map((d) => [d.name, d.itemCount])).toEqual([['big', 12_000]]);
    } finally {
      store.close();
    }
  });

  it.runIf(posix)('dataset import of a FIFO ends with a clear error and no stack', async () => {
    const fifo = path.join(dir, 'cli-pipe.csv');
    execFileSync('mkfifo', [fifo]);
    const r = await cli('dataset', 'import', path.join(dir, 'fifo.cliffscope'), fifo, '--name', 'p');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is a pipe/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('text must be UTF-8', () => {
  it('reports invalid UTF-8 with its line instead of replacing it silently', () => {
    const f = write('latin1.csv', Buffer.concat([Buffer.from('prompt\nok line\ncaf'), Buffer.from([0xe9]), Buffer.from(' au lait\n')]));
    const err = failure(() => readDatasetFile(f));
    expect(err.code).toBe('bad-dataset');
    expect(err.message).toMatch(/latin1\.csv: line 3 is not valid UTF-8/);
    expect(err.hint).toMatch(/save the file as UTF-8/);
  });

  it('recognises UTF-16', () => {
    const f = write('utf16.csv', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('prompt\nhi\n', 'utf16le')]));
    expect(failure(() => readDatasetFile(f)).hint).toMatch(/UTF-16/);
  });

  it('keeps a literal U+FFFD, which is valid UTF-8', () => {
    const f = write('fffd.csv', 'prompt\nreplacement \ufffd char\n');
    expect(readDatasetFile(f).items[0]!.prompt).toBe('replacement \ufffd char');
  });
});

describe('errors never quote the file', () => {
  const environ = 'SECRET_TOKEN=hunter2-abcdef\0PATH=/usr/bin:/bin\0HOME=/home/someone\0';

  it('a process environment read as CSV: the error does not show the variables', () => {
    const f = write('environ.csv', environ);
    const err = failure(() => readDatasetFile(f));
    expect(err.message).toMatch(/no prompt column found \(columns: 1 other column not shown\)/);
    expect(`${err.message} ${err.hint}`).not.toMatch(/hunter2|SECRET_TOKEN|\/usr\/bin/);
  });

  it('as JSON: says where it breaks, not what is there', () => {
    const f = write('environ.json', environ);
    const err = failure(() => readDatasetFile(f));
    expect(err.message).toMatch(/invalid JSON at line 1, column 1/);
    expect(err.message).not.toMatch(/SECRET|hunter2/);
  });

  it('as JSONL: rejected rows give a position, not the text', () => {
    const f = write('environ.jsonl', `{"prompt": "fine"}\nSECRET_TOKEN=hunter2\n{"prompt": 1, x}\n`);
    const r = readDatasetFile(f);
    expect(r.items).toHaveLength(1);
    expect(r.rejected.map((x) => x.line)).toEqual([2, 3]);
    expect(r.rejected[0]!.reason).toBe('not valid JSON (at column 1)');
    expect(r.rejected[1]!.reason).toBe('not valid JSON (at column 15)');
    expect(JSON.stringify(r.rejected)).not.toMatch(/hunter2/);
  });

  it('still lists ordinary column names, which help fix a mapping', () => {
    const f = write('cols.csv', 'question_text,answer,id\nq,a,1\n');
    expect(failure(() => readDatasetFile(f, { mapping: { prompt: 'Question' } })).message).toMatch(/columns: question_text, answer, id/);
  });
});

describe('values nested absurdly deep', () => {
  const deep = '['.repeat(100_000) + ']'.repeat(100_000);

  it('a JSON row with a value nested 100,000 deep is rejected with its line (it overflowed the stack)', () => {
    const f = write('deep.json', `[\n{"prompt": "fine"},\n{"prompt": ${deep}},\n{"prompt": "ok", "x": ${deep}}\n]`);
    const r = readDatasetFile(f);
    expect(r.items.map((i) => i.prompt)).toEqual(['fine']);
    expect(r.rejected).toEqual([
      { line: 3, reason: 'values nested more than 64 levels deep' },
      { line: 4, reason: 'values nested more than 64 levels deep' },
    ]);
  });

  it('the same in JSONL', () => {
    const f = write('deep.jsonl', `{"prompt": "fine"}\n{"prompt": "x", "extra": ${deep}}\n`);
    expect(readDatasetFile(f).rejected).toEqual([{ line: 2, reason: 'values nested more than 64 levels deep' }]);
  });
});

describe('column names that are also JavaScript property names', () => {
  it('a "constructor" column mapped as the prompt: rows without it are rejected (it crashed the import)', () => {
    const f = write('ctor.jsonl', '{"constructor": "hi"}\n{"other": 1}\n');
    const r = readDatasetFile(f, { mapping: { prompt: 'constructor' } });
    expect(r.items.map((i) => i.prompt)).toEqual(['hi']);
    expect(r.rejected).toEqual([{ line: 2, reason: 'missing prompt (column "constructor")' }]);
  });

  it('a "__proto__" column keeps its values (they were silently dropped)', () => {
    const csv = readDatasetFile(write('proto.csv', 'prompt,__proto__\nhi,there\n'));
    expect(JSON.stringify(csv.items[0]!.extra)).toBe('{"__proto__":"there"}');
    const json = readDatasetFile(write('proto.json', '[{"prompt": "hi", "__proto__": {"polluted": 1}}]'));
    expect(JSON.stringify(json.items[0]!.extra)).toBe('{"__proto__":{"polluted":1}}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('a "__proto__" column survives being stored in a project', () => {
    const project = path.join(dir, 'proto.cliffscope');
    const store = openProject(project, { create: true });
    try {
      const { dataset } = store.datasets.importFile('p', write('proto2.csv', 'prompt,__proto__\nhi,there\n'));
      expect(JSON.stringify(store.datasets.items(dataset.id)[0]!.extra)).toBe('{"__proto__":"there"}');
    } finally {
      store.close();
    }
  });

  it('a "toString" column works like any other', () => {
    const r = readDatasetFile(write('tostring.csv', 'toString,x\nhi,1\n'), { mapping: { prompt: 'toString' } });
    expect(r.items[0]!.prompt).toBe('hi');
  });
});

describe('the other files the CLI reads: --prompts and --head-scale', () => {
  it.runIf(posix && fs.existsSync('/dev/zero'))('a prompts file or head-scale file linked to /dev/zero is refused at once', async () => {
    const { readPromptsFile } = await import('../../src/main/cli/verbs/generate.js');
    const { readHeadScaleFile } = await import('../../src/main/engine/runtime/head-scale.js');
    const prompts = path.join(dir, 'prompts.txt');
    const scale = path.join(dir, 'scale.json');
    fs.symlinkSync('/dev/zero', prompts);
    fs.symlinkSync('/dev/zero', scale);
    expect(failure(() => readPromptsFile(prompts)).message).toMatch(/is a device/);
    expect(failure(() => readHeadScaleFile(scale, 2, 2)).message).toMatch(/is a device/);
  });

  it('a head-scale file that is not JSON says where, not what', async () => {
    const { readHeadScaleFile } = await import('../../src/main/engine/runtime/head-scale.js');
    const f = write('scale-bad.json', 'SECRET=hunter2');
    const err = failure(() => readHeadScaleFile(f, 2, 2));
    expect(err.message).toMatch(/invalid JSON at line 1, column 1/);
    expect(err.message).not.toMatch(/hunter2/);
  });
});
