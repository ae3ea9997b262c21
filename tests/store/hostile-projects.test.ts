/**
 * Project files are untrusted data. A planted trigger or view never runs; a damaged file is refused for writing with
 * a way to recover and reads fail with a clear error, not an internal one; a read-only project (file or folder) can
 * still be read by every read verb while writes say why they cannot; and a run whose process was killed shows as
 * interrupted without a writer having opened the file since.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { checkProject, openProject } from '../../src/main/store/open.js';
import { configure, migrate } from '../../src/main/store/project-file.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/main/store/schema.js';
import { cli } from '../support/cli.js';
import { expectCliffscopeError, populate, syntheticDataset, tempDir } from './helpers/fixtures.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let dir: string;
let counter = 0;
beforeAll(() => {
  dir = tempDir('hostile-projects');
});
afterAll(() => {
  spawnSync('chmod', ['-R', 'u+w', dir]);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A project with a dataset of `n` prompts and the miniature pipeline's runs, closed. */
function makeProject(n = 6): string {
  const file = path.join(dir, `p${counter++}.cliffscope`);
  const store = openProject(file, { create: true });
  populate(store);
  if (n > 6) store.datasets.add('big', syntheticDataset(n, 'a longer prompt with some words to fill pages'), '/data/big.csv');
  store.close();
  return file;
}

/** Change the file with a plain SQLite connection, as someone planting things in it would. */
function tamper(file: string, sql: string): void {
  const db = new BetterSqlite3(file);
  db.exec(sql);
  db.close();
}

const digest = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const noStack = (stderr: string) => expect(stderr).not.toMatch(/\n\s+at |internal error/);

describe('schema objects Cliffscope did not create never run', () => {
  it('drops a planted trigger before the first write (it deleted every transcript before)', () => {
    const file = makeProject();
    tamper(file, `CREATE TRIGGER wipe AFTER INSERT ON runs BEGIN DELETE FROM transcripts; DELETE FROM dataset_items; END;
                  CREATE VIEW innocent AS SELECT 1;`);
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const store = openProject(file);
    const before = { transcripts: store.transcripts.list(1).length, items: store.datasets.items(1).length };
    expect(before.transcripts).toBeGreaterThan(0);
    store.runs.start({ kind: 'transcripts', config: {} });
    expect(store.transcripts.list(1)).toHaveLength(before.transcripts);
    expect(store.datasets.items(1)).toHaveLength(before.items);
    expect(store.query(`SELECT name FROM sqlite_schema WHERE type IN ('trigger', 'view')`)).toEqual([]);
    store.close();
    expect(String(warn.mock.calls[0]?.[0])).toMatch(/dropped trigger "wipe", view "innocent", which Cliffscope did not create/);
    warn.mockRestore();
  });

  it('the trigger does not fire through the CLI either: dataset import keeps the other dataset', async () => {
    const file = makeProject();
    tamper(file, `CREATE TRIGGER wipe AFTER INSERT ON datasets BEGIN DELETE FROM dataset_items; END;`);
    const csv = path.join(dir, 'more.csv');
    fs.writeFileSync(csv, 'prompt\none\ntwo\n');
    const r = await cli('dataset', 'import', file, csv, '--name', 'more');
    expect(r.code, r.stderr).toBe(0);
    const store = openProject(file, { readonly: true });
    expect(store.datasets.list().map((d) => store.datasets.items(d.id).length)).toEqual([6, 2]);
    store.close();
  });

  it('a format-1 file (written before format 2) with planted objects: they are dropped before the upgrade runs', async () => {
    // As format 1's code wrote it: a generate run with transcripts. A trigger on the upgrade's own UPDATE of runs would
    // wipe the transcripts if it were still there when the upgrade runs, and a view naming a column that does not
    // exist would make the upgrade's RENAME COLUMN fail ("error in view").
    const file = path.join(dir, `v1-${counter++}.cliffscope`);
    const db = new BetterSqlite3(file);
    configure(db);
    migrate(db, MIGRATIONS.slice(0, 1));
    db.prepare(`INSERT INTO datasets (name, content_hash, item_count) VALUES ('d', 'x', 2)`).run();
    for (const i of [0, 1]) db.prepare(`INSERT INTO dataset_items (dataset_id, idx, prompt) VALUES (1, ?, 'p')`).run(i);
    db.prepare(`INSERT INTO runs (uid, kind, dataset_id, config, status) VALUES ('g1', 'generate', 1, '{}', 'done')`).run();
    for (const i of [1, 2]) db.prepare(`INSERT INTO transcripts (uid, run_id, item_id, prompt, token_ids, prompt_tokens, text) VALUES (?, 1, ?, 'p', x'01000000', 1, '')`).run(`t${i}`, i);
    db.exec(`CREATE TRIGGER wipe AFTER UPDATE ON runs BEGIN DELETE FROM transcripts; DELETE FROM dataset_items; END;
             CREATE TRIGGER wipe_new AFTER INSERT ON runs BEGIN DELETE FROM transcripts; END;
             CREATE VIEW broken AS SELECT nosuch FROM probes;`);
    db.close();
    const copy = path.join(dir, `v1-${counter++}.cliffscope`);
    fs.copyFileSync(file, copy);

    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const store = openProject(file);
      try {
        expect(String(warn.mock.calls[0]?.[0])).toMatch(/dropped trigger "wipe", trigger "wipe_new", view "broken", which Cliffscope did not create/);
        expect(store.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
        expect(store.runs.list().map((r) => r.kind)).toEqual(['transcripts']);
        expect(store.transcripts.list(1)).toHaveLength(2);
        expect(store.datasets.items(1)).toHaveLength(2);
        expect(store.query(`SELECT name FROM sqlite_schema WHERE type IN ('trigger', 'view')`)).toEqual([]);
        // Format 2's own edit of sqlite_schema (the runs table without its CHECK on kind) is kept, not taken for foreign.
        expect(String(store.query(`SELECT sql FROM sqlite_schema WHERE name = 'runs'`)[0]!.sql)).not.toMatch(/CHECK \(kind IN/);
        store.runs.start({ kind: 'transcripts', config: {} });
        expect(store.transcripts.list(1)).toHaveLength(2);
        expect(store.checkIntegrity()).toEqual(['ok']);
      } finally {
        store.close();
      }
      // Opened again, the upgraded file has nothing left to drop.
      openProject(file).close();
      expect(warn).toHaveBeenCalledTimes(1);
    } finally {
      warn.mockRestore();
    }

    // A read verb on such a file upgrades it first, the same way.
    const r = await cli('report', copy, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { kind: string }[]).map((x) => x.kind)).toEqual(['transcripts']);
    const upgraded = openProject(copy, { readonly: true });
    try {
      expect(upgraded.transcripts.list(1)).toHaveLength(2);
    } finally {
      upgraded.close();
    }
  });

  it('refuses a view standing in for one of its tables, read-only or not', () => {
    const file = makeProject();
    tamper(file, `PRAGMA foreign_keys = OFF; DROP TABLE verdicts; CREATE VIEW verdicts AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c;`);
    expectCliffscopeError(() => openProject(file, { readonly: true }), 'bad-project', /"verdicts" is a view, where Cliffscope keeps a table/);
    expectCliffscopeError(() => openProject(file), 'bad-project', /"verdicts" is a view/);
  });
});

describe('damaged project files', () => {
  /** Overwrite pages [from, to) (4096 bytes each) with random bytes, keeping the 100-byte header of page 1. */
  function garble(file: string, from: number, to: number): void {
    const fd = fs.openSync(file, 'r+');
    for (let p = from; p < to; p++) {
      const start = p === 0 ? 100 : p * 4096;
      fs.writeSync(fd, crypto.randomBytes(4096 - (start % 4096)), 0, 4096 - (start % 4096), start);
    }
    fs.closeSync(fd);
  }

  it('garbage over early pages: report says the file is damaged and how to recover (it was an internal error)', async () => {
    const file = makeProject();
    garble(file, 0, 3);
    const r = await cli('report', file);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is damaged/);
    expect(r.stderr).toMatch(/\.recover|project export/);
    noStack(r.stderr);
  });

  it('garbage over middle pages: writing is refused and the file left as it was; info --check lists the problems', async () => {
    const file = makeProject(3000);
    const pages = fs.statSync(file).size / 4096;
    expect(pages).toBeGreaterThan(20);
    garble(file, Math.floor(pages / 2), Math.floor(pages / 2) + 4);
    const before = digest(file);
    const csv = path.join(dir, 'x.csv');
    fs.writeFileSync(csv, 'prompt\nhello\n');
    const r = await cli('dataset', 'import', file, csv, '--name', 'x');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is damaged.*\n.*nothing was written to it/);
    noStack(r.stderr);
    expect(digest(file)).toBe(before);
    expectCliffscopeError(() => openProject(file), 'bad-project', /is damaged/);

    const check = await cli('project', 'info', file, '--check', '--json');
    expect(check.code).toBe(1);
    const out = JSON.parse(check.stdout) as { ok: boolean; problems: string[] };
    expect(out.ok).toBe(false);
    expect(out.problems.length).toBeGreaterThan(0);
    expect(checkProject(makeProject())).toEqual(['ok']);
  });
});

describe('a killed run shows as interrupted without a writer', () => {
  it('report (read-only) shows interrupted once the owner process is gone', async () => {
    const file = makeProject();
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    const store = openProject(file);
    const run = store.runs.start({ kind: 'transcripts', config: {} });
    store.db.prepare(`UPDATE runs SET owner_pid = ?, owner_token = 'gone' WHERE id = ?`).run(dead, run.id);
    // Close without the store's own bookkeeping (a kill -9 leaves no chance for it).
    store.db.close();
    const r = await cli('report', file, '--json');
    expect(r.code, r.stderr).toBe(0);
    const listed = (JSON.parse(r.stdout) as { id: number; status: string }[]).find((x) => x.id === run.id);
    expect(listed?.status).toBe('interrupted');
  });
});

/**
 * Read-only files and folders. Root writes through permissions, so when the tests run as root the CLI is run as
 * `nobody` (uid 65534); otherwise as this user after chmod.
 */
describe('read-only projects', () => {
  const asRoot = process.getuid?.() === 0;
  const canTest = process.platform !== 'win32';
  const cliAsReader = (...args: string[]) => {
    const env = { PATH: process.env.PATH ?? '', HOME: dir, CLIFFSCOPE_CACHE: path.join(dir, 'cache-ro') };
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin/cliffscope.js'), ...args], {
      cwd: dir,
      env,
      encoding: 'utf8',
      ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
    });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };

  let lastRun = 0;
  function readOnlyProject(folderToo: boolean): string {
    const folder = path.join(dir, `ro${counter++}`);
    fs.mkdirSync(folder);
    const file = path.join(folder, 'p.cliffscope');
    fs.copyFileSync(makeProject(), file);
    // A run whose stored config is what a transcripts run stores, for `report FILE RUN` to read back.
    const store = openProject(file);
    const run = store.runs.start({ kind: 'transcripts', datasetId: 1, config: { datasetId: 1, chat: true, maxNewTokens: 8, seed: 0, batchSize: 8, settings: [{ key: 'baseline' }] } });
    store.runs.finish(run.id, 'cancelled');
    store.close();
    lastRun = run.id;
    fs.chmodSync(dir, 0o755);
    fs.mkdirSync(path.join(dir, 'cache-ro'), { recursive: true, mode: 0o777 });
    fs.chmodSync(path.join(dir, 'cache-ro'), 0o777);
    fs.chmodSync(file, 0o444);
    fs.chmodSync(folder, folderToo ? 0o555 : asRoot ? 0o755 : 0o755);
    return file;
  }

  it.runIf(canTest).each([
    ['a read-only file', false],
    ['a read-only folder', true],
  ])('%s: report, project info and export work; dataset import says it is read-only', (_label, folderToo) => {
    const file = readOnlyProject(folderToo as boolean);
    const report = cliAsReader('report', file);
    expect(report.code, report.stderr).toBe(0);
    expect(report.stdout).toMatch(/#1 transcripts/);
    const info = cliAsReader('project', 'info', file, '--json');
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout).datasets).toHaveLength(1);
    const run = cliAsReader('report', file, String(lastRun));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/cancelled/);
    const copy = path.join(dir, 'cache-ro', `copy${counter++}.cliffscope`);
    const exported = cliAsReader('project', 'export', file, copy);
    expect(exported.code, exported.stderr).toBe(0);
    expect(openProject(copy, { readonly: true }).runs.list().length).toBeGreaterThan(0);
    const csv = path.join(dir, 'ro.csv');
    fs.writeFileSync(csv, 'prompt\nhello\n');
    fs.chmodSync(csv, 0o644);
    const write = cliAsReader('dataset', 'import', file, csv, '--name', 'new');
    expect(write.code).toBe(1);
    expect(write.stderr).toMatch(/is read-only/);
    noStack(write.stderr);
    // Nothing was left beside the project by the readers.
    expect(fs.readdirSync(path.dirname(file)).filter((f) => f !== 'p.cliffscope')).toEqual(folderToo ? [] : expect.any(Array));
  });
});

describe('project export destinations', () => {
  it('a destination in a missing folder is a clear error (it was an internal SQLite error)', async () => {
    const file = makeProject();
    const dest = path.join(dir, 'no-such-folder', 'copy.cliffscope');
    const r = await cli('project', 'export', file, dest);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the folder .*no-such-folder does not exist/);
    noStack(r.stderr);
  });
});

describe('importing a planted project', () => {
  it('refuses a source whose table was replaced by a view (one that could loop forever), with a clear error', async () => {
    const target = makeProject();
    const src = makeProject();
    tamper(src, `PRAGMA foreign_keys = OFF; DROP TABLE verdicts; CREATE VIEW verdicts AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x AS id FROM c;`);
    const r = await cli('project', 'import', target, src);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/"verdicts" is a view/);
    noStack(r.stderr);
  });
});

describe('project paths that are not files', () => {
  it.runIf(process.platform !== 'win32')('a FIFO or a link to /dev/zero is refused, not opened (a FIFO blocked SQLite)', async () => {
    const fifo = path.join(dir, `pipe${counter++}.cliffscope`);
    spawnSync('mkfifo', [fifo]);
    expectCliffscopeError(() => openProject(fifo, { create: true }), 'bad-project', /is a pipe \(FIFO\), not a file/);
    const zero = path.join(dir, `zero${counter++}.cliffscope`);
    fs.symlinkSync('/dev/zero', zero);
    expectCliffscopeError(() => openProject(zero, { create: true }), 'bad-project', /is a device or socket, not a file/);
  });
});
