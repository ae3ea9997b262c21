/**
 * Exporting a selection into a LLaMA-Factory data folder merges into its dataset_info.json: every other entry is
 * kept, a name (or file) already there is refused unless forced, and files appear whole or not at all.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeLlamaFactoryExport } from '../../src/main/engine/datasets/llama-factory.js';
import { CliffscopeError } from '../../src/main/engine/errors.js';
import { call, callError, disposeFixture, makeDemoFixture, type Fixture } from '../api/demo-fixture.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-llama-factory-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const USER_INFO = {
  alpaca_en_demo: { file_name: 'alpaca_en_demo.json' },
  identity: { file_name: 'identity.json' },
  my_sharegpt: { file_name: 'mine.jsonl', formatting: 'sharegpt', columns: { messages: 'conversations' } },
};

function folderWithInfo(name: string, info: unknown = USER_INFO): string {
  const d = path.join(dir, name);
  fs.mkdirSync(d);
  fs.writeFileSync(path.join(d, 'dataset_info.json'), typeof info === 'string' ? info : JSON.stringify(info, null, 2));
  return d;
}

const ours = (n = 1) => ({
  files: [{ name: 'sel.json', text: `[${n}]\n` }],
  datasetInfo: { sel: { file_name: 'sel.json' } },
});

const readInfo = (d: string) => JSON.parse(fs.readFileSync(path.join(d, 'dataset_info.json'), 'utf8')) as Record<string, unknown>;
const leftovers = (d: string) => fs.readdirSync(d).filter((f) => f.endsWith('.tmp'));

describe('writeLlamaFactoryExport', () => {
  it('merges into an existing dataset_info.json, keeping every other entry', () => {
    const d = folderWithInfo('merge');
    writeLlamaFactoryExport(d, ours());
    expect(readInfo(d)).toEqual({ ...USER_INFO, sel: { file_name: 'sel.json' } });
    expect(leftovers(d)).toEqual([]);
  });

  it('refuses a name clash without --force and writes nothing; with force replaces only that entry', () => {
    const d = folderWithInfo('clash', { ...USER_INFO, sel: { file_name: 'theirs.json' } });
    const before = fs.readFileSync(path.join(d, 'dataset_info.json'), 'utf8');
    let err: unknown;
    try {
      writeLlamaFactoryExport(d, ours());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CliffscopeError);
    expect((err as CliffscopeError).message).toMatch(/already has "sel"; nothing was written/);
    expect((err as CliffscopeError).hint).toMatch(/--force/);
    expect(fs.readFileSync(path.join(d, 'dataset_info.json'), 'utf8')).toBe(before);
    expect(fs.existsSync(path.join(d, 'sel.json'))).toBe(false);

    writeLlamaFactoryExport(d, ours(2), { force: true });
    expect(readInfo(d)).toEqual({ ...USER_INFO, sel: { file_name: 'sel.json' } });
    expect(fs.readFileSync(path.join(d, 'sel.json'), 'utf8')).toBe('[2]\n');
  });

  it('refuses to overwrite a data file of the same name', () => {
    const d = folderWithInfo('file-clash', {});
    fs.writeFileSync(path.join(d, 'sel.json'), 'precious');
    expect(() => writeLlamaFactoryExport(d, ours())).toThrow(/already holds sel\.json/);
    expect(fs.readFileSync(path.join(d, 'sel.json'), 'utf8')).toBe('precious');
  });

  it('leaves a dataset_info.json it cannot read exactly as it was', () => {
    const d = folderWithInfo('broken', '{"alpaca_en_demo": {"file_name": "a.json"},');
    expect(() => writeLlamaFactoryExport(d, ours(), { force: true })).toThrow(/dataset_info\.json is not valid JSON .*left as it is/);
    expect(fs.readFileSync(path.join(d, 'dataset_info.json'), 'utf8')).toBe('{"alpaca_en_demo": {"file_name": "a.json"},');
    expect(fs.readdirSync(d)).toEqual(['dataset_info.json']);
  });

  it('creates the folder, and refuses a file in its place', () => {
    const fresh = path.join(dir, 'new', 'nested');
    writeLlamaFactoryExport(fresh, ours());
    expect(readInfo(fresh)).toEqual({ sel: { file_name: 'sel.json' } });
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, 'x');
    expect(() => writeLlamaFactoryExport(file, ours())).toThrow(/is a file, not a folder/);
  });
});

describe('selection.export into a LLaMA-Factory data folder', () => {
  let fx: Fixture | undefined;
  beforeAll(async () => {
    fx = await makeDemoFixture('llama-factory');
  });
  afterAll(() => disposeFixture(fx));

  it('keeps the user’s other datasets (they were deleted before) and needs force the second time', async () => {
    const runId = fx!.demo.report.runs.select!;
    const d = folderWithInfo('api');
    const first = await call('selection.export', { project: fx!.file, runId, outDir: d });
    expect(first.files.at(-1)).toBe(path.join(d, 'dataset_info.json'));
    const info = readInfo(d);
    expect(Object.keys(info)).toEqual([...Object.keys(USER_INFO), 'cliffscope_selection', 'cliffscope_selection_messages']);
    expect(await callError('selection.export', { project: fx!.file, runId, outDir: d })).toMatchObject({ code: 'bad-argument' });
    await call('selection.export', { project: fx!.file, runId, outDir: d, force: true });
    expect(Object.keys(readInfo(d))).toEqual(Object.keys(info));
    expect(leftovers(d)).toEqual([]);
  });
});
