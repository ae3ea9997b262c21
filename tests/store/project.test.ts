/**
 * Project files: creation settings, schema, migrations, and refusing (without touching) anything that is not a
 * Cliffscope project of a version we understand.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openProject } from '../../src/main/store/open.js';
import { inspectProjectFile } from '../../src/main/store/project-file.js';
import { APPLICATION_ID, SCHEMA_VERSION } from '../../src/main/store/schema.js';
import { migrate } from '../../src/main/store/project-file.js';
import { MIGRATIONS } from '../../src/main/store/schema.js';
import { expectCliffscopeError, syntheticDataset, tempDir } from './helpers/fixtures.js';

let dir: string;
let n = 0;
const fresh = (ext = '.cliffscope') => path.join(dir, `f${n++}${ext}`);
beforeAll(() => {
  dir = tempDir('project');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A closed project with a few hundred KB of data. */
function makeProject(items = 2000): string {
  const file = fresh();
  const store = openProject(file, { create: true });
  store.datasets.add('d', syntheticDataset(items));
  store.close();
  return file;
}

/** The file's bytes, and the names of files beside it (to see that nothing was added). */
function snapshot(file: string) {
  const base = path.basename(file);
  const sha256 = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  return { sha256, siblings: fs.readdirSync(path.dirname(file)).filter((f) => f.startsWith(base)).sort() };
}

describe('creating and opening', () => {
  it('creates a project with WAL, synchronous=NORMAL, foreign keys, STRICT tables and its own application id', () => {
    const file = fresh();
    const store = openProject(file, { create: true });
    const db = store.db;
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect((db.pragma('application_id', { simple: true }) as number) >>> 0).toBe(APPLICATION_ID);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(store.meta('format')).toBe('cliffscope-project');

    const tables = db.prepare(`SELECT name, strict FROM pragma_table_list WHERE schema = 'main' AND name NOT LIKE 'sqlite_%'`).all() as { name: string; strict: number }[];
    expect(tables.map((t) => t.name).sort()).toEqual(
      ['datasets', 'dataset_items', 'head_maps', 'meta', 'models', 'probes', 'run_items', 'runs', 'selections', 'sweep_cells', 'traces', 'transcripts', 'verdicts'].sort(),
    );
    expect(tables.every((t) => t.strict === 1)).toBe(true);
    store.close();

    // The header on disk already says what the file is (so it is recognisable without its -wal).
    const head = fs.readFileSync(file).subarray(0, 100);
    expect(head.readUInt32BE(68)).toBe(APPLICATION_ID);
    expect(inspectProjectFile(file)).toEqual({ kind: 'project', version: SCHEMA_VERSION });
  });

  it('reopens with the data intact and leaves no -wal/-shm files after close', () => {
    const file = makeProject(10);
    const store = openProject(file);
    expect(store.datasets.list()[0]!.itemCount).toBe(10);
    store.close();
    expect(snapshot(file).siblings).toEqual([path.basename(file)]);
  });

  it('refuses to open a missing file unless asked to create it', () => {
    const file = fresh();
    const e = expectCliffscopeError(() => openProject(file), 'missing-file', /does not exist/);
    expect(e.file).toBe(file);
    expect(fs.existsSync(file)).toBe(false);
    expectCliffscopeError(() => openProject(path.join(dir, 'no-such-dir', 'p.cliffscope'), { create: true }), 'missing-file', /folder .* does not exist/);
  });

  it('turns an empty file into a project only when asked', () => {
    const file = fresh();
    fs.writeFileSync(file, '');
    expectCliffscopeError(() => openProject(file), 'bad-project', /empty/);
    expect(fs.statSync(file).size).toBe(0);
    openProject(file, { create: true }).close();
    expect(inspectProjectFile(file).kind).toBe('project');
  });

  it('opens read-only for viewing; writes fail there', () => {
    const file = makeProject(5);
    const store = openProject(file, { readonly: true });
    expect(store.datasets.list()).toHaveLength(1);
    expect(() => store.models.add({ path: '/m', contentHash: 'h' })).toThrow(/opened read-only/);
    store.close();
  });
});

describe('refusing files that are not projects, leaving them untouched', () => {
  it('random bytes', () => {
    const file = fresh();
    fs.writeFileSync(file, crypto.randomBytes(8192));
    const before = snapshot(file);
    const e = expectCliffscopeError(() => openProject(file, { create: true }), 'bad-project', /not a Cliffscope project: it is not a SQLite database/);
    expect(e.message).toContain(file);
    expect(e.file).toBe(file);
    expect(snapshot(file)).toEqual(before);
  });

  it('a text file that happens to be short', () => {
    const file = fresh('.txt');
    fs.writeFileSync(file, 'hello');
    const before = snapshot(file);
    expectCliffscopeError(() => openProject(file), 'bad-project', /not a SQLite database/);
    expect(snapshot(file)).toEqual(before);
  });

  it('a truncated copy of a project', () => {
    const good = makeProject();
    const bytes = fs.readFileSync(good);
    expect(bytes.length).toBeGreaterThan(64 * 1024);
    for (const keep of [Math.floor(bytes.length / 2), bytes.length - 4096, 4096, 60]) {
      const file = fresh();
      fs.writeFileSync(file, bytes.subarray(0, keep));
      const before = snapshot(file);
      expectCliffscopeError(() => openProject(file), 'bad-project', /truncated/);
      expect(snapshot(file)).toEqual(before);
    }
  });

  it('a project damaged inside (verify runs quick_check)', () => {
    const good = makeProject();
    const bytes = Buffer.from(fs.readFileSync(good));
    crypto.randomBytes(bytes.length - 3 * 4096).copy(bytes, 3 * 4096); // keep the header and schema pages
    const file = fresh();
    fs.writeFileSync(file, bytes);
    const before = snapshot(file);
    expectCliffscopeError(() => openProject(file, { verify: true }), 'bad-project', /damaged|cannot be read/);
    expect(snapshot(file)).toEqual(before);
    // Without verify, damage the schema read runs into is still reported as such, not as a raw SQLite error.
    expectCliffscopeError(() => openProject(file), 'bad-project', /is damaged: database disk image is malformed/);
    expect(snapshot(file)).toEqual(before);
  });

  it('a SQLite database made by another program (no tables are added to it)', () => {
    const file = fresh('.db');
    const other = new Database(file);
    other.exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('keep me');`);
    other.close();
    const before = snapshot(file);
    const e = expectCliffscopeError(() => openProject(file, { create: true }), 'bad-project', /made by another program/);
    expect(e.message).toContain(file);
    expect(snapshot(file)).toEqual(before);
    const check = new Database(file, { readonly: true });
    expect(check.prepare(`SELECT name FROM sqlite_schema`).pluck().all()).toEqual(['notes']);
    check.close();
  });

  it('another program’s WAL database with un-checkpointed changes', () => {
    const file = fresh('.db');
    const other = new Database(file);
    other.pragma('journal_mode = WAL');
    other.pragma('wal_autocheckpoint = 0');
    other.exec(`CREATE TABLE t (x); INSERT INTO t VALUES (1);`);
    const before = snapshot(file).sha256;
    expectCliffscopeError(() => openProject(file), 'bad-project', /another program/);
    expect(snapshot(file).sha256).toBe(before);
    other.close();
  });

  it('a SQLite file with our application id but no format marker', () => {
    const file = fresh();
    const fake = new Database(file);
    fake.pragma(`application_id = ${APPLICATION_ID}`);
    fake.exec('CREATE TABLE x (y)');
    fake.close();
    const before = snapshot(file);
    expectCliffscopeError(() => openProject(file), 'bad-project', /no Cliffscope format marker/);
    expect(snapshot(file)).toEqual(before);
  });

  it('a project from a newer Cliffscope', () => {
    const file = makeProject(3);
    const raw = new Database(file);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    const before = snapshot(file);
    const e = expectCliffscopeError(() => openProject(file), 'bad-project', new RegExp(`newer Cliffscope \\(project format ${SCHEMA_VERSION + 1}`));
    expect(e.hint).toMatch(/update Cliffscope/);
    expect(snapshot(file)).toEqual(before);
  });

  it('a folder', () => {
    expectCliffscopeError(() => openProject(dir), 'bad-project', /is a folder/);
  });
});

describe('migrations', () => {
  it('are numbered 1, 2, … and end at SCHEMA_VERSION', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
  });

  it('each runs in its own transaction: a failing step leaves the previous version intact', () => {
    const file = makeProject(3);
    const db = new Database(file);
    const broken = [
      ...MIGRATIONS,
      { version: SCHEMA_VERSION + 1, description: 'adds a table', sql: 'CREATE TABLE extra (x INTEGER) STRICT;' },
      { version: SCHEMA_VERSION + 2, description: 'fails half-way', sql: 'CREATE TABLE half (x INTEGER) STRICT; INSERT INTO no_such_table VALUES (1);' },
    ];
    expect(() => migrate(db, broken)).toThrow(/no_such_table/);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 1);
    const tables = db.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table'`).pluck().all();
    expect(tables).toContain('extra');
    expect(tables).not.toContain('half');
    db.close();
  });
});

describe('schema constraints', () => {
  it('rejects invalid JSON, wrong types, bad enums and dangling references', () => {
    const store = openProject(fresh(), { create: true });
    const db = store.db;
    expect(() => db.prepare(`INSERT INTO models (path, content_hash, config) VALUES ('/m', 'h', '{not json')`).run()).toThrow(/CHECK constraint/);
    expect(() => db.prepare(`INSERT INTO datasets (name, content_hash, item_count) VALUES ('n', 'h', 'many')`).run()).toThrow(/cannot store TEXT value in INTEGER column/);
    expect(() => db.prepare(`INSERT INTO runs (uid, kind, status) VALUES ('u', 'trace', 'paused')`).run()).toThrow(/CHECK constraint/);
    // Run kinds are the application's (a new one needs no migration): the store refuses the ones it does not know.
    expect(() => store.runs.create({ kind: 'train' as 'trace' })).toThrow(/unknown run kind "train"/);
    expect(() => store.transcripts.add({ runId: 999, prompt: 'p', tokenIds: [1], promptTokens: 1, text: '' })).toThrow(/FOREIGN KEY/);
    const model = store.models.add({ path: '/m', contentHash: 'h' });
    expect(() => store.probes.add({ modelId: model.id, name: 'p', residIndex: 0, positionRule: 'x', weights: [1, 2], bias: 0 })).not.toThrow();
    expect(() => db.prepare(`INSERT INTO probes (uid, model_id, name, version, resid_index, position_rule, dim, weights, bias) VALUES ('u', ?, 'q', 1, 0, 'x', 3, x'00000000', 0)`).run(model.id)).toThrow(/CHECK constraint/);
    store.close();
  });
});
