/**
 * Project format 3 on a format-2 project: runs gain tags (an empty list for every run there was), kept as a JSON
 * list of strings the store refuses anything else for; names and tags can then be changed, and a damaged tags value
 * reads as no tags rather than failing the project.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openProject } from '../../src/main/store/open.js';
import { configure, migrate } from '../../src/main/store/project-file.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/main/store/schema.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-migrate-v3-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function formatTwoProject(file: string): void {
  const db = new BetterSqlite3(file);
  configure(db);
  migrate(db, MIGRATIONS.slice(0, 2));
  db.prepare(`INSERT INTO models (path, content_hash) VALUES ('/m', 'h')`).run();
  db.prepare(`INSERT INTO runs (uid, kind, name, model_id, status) VALUES ('r1', 'trace', 'before', 1, 'done')`).run();
  db.prepare(`INSERT INTO runs (uid, kind, model_id, status) VALUES ('r2', 'heads', 1, 'interrupted')`).run();
  expect(db.pragma('user_version', { simple: true })).toBe(2);
  db.close();
}

describe('project format 3', () => {
  it('upgrades a format-2 project: every run gets no tags, and keeps its name and status', () => {
    expect(SCHEMA_VERSION).toBe(3);
    const file = path.join(dir, 'v2.cliffscope');
    formatTwoProject(file);
    const store = openProject(file);
    try {
      expect(store.db.pragma('user_version', { simple: true })).toBe(3);
      expect(store.runs.list().map((r) => [r.uid, r.name, r.status, r.tags])).toEqual([
        ['r1', 'before', 'done', []],
        ['r2', null, 'interrupted', []],
      ]);
      expect(store.runs.tags()).toEqual([]);
    } finally {
      store.close();
    }
  });

  it('keeps tags set on a new run and by update, lists every tag once, and refuses a value that is not a list', () => {
    const file = path.join(dir, 'v3.cliffscope');
    formatTwoProject(file);
    const store = openProject(file);
    try {
      const run = store.runs.create({ kind: 'trace', name: 'n', tags: ['baseline', '7b'] });
      expect(store.runs.get(run.id)!.tags).toEqual(['baseline', '7b']);
      expect(store.runs.update(1, { tags: ['7b', 'after'] })).toMatchObject({ name: 'before', tags: ['7b', 'after'] });
      expect(store.runs.update(1, { name: null })).toMatchObject({ name: null, tags: ['7b', 'after'] });
      expect(store.runs.tags()).toEqual(['7b', 'after', 'baseline']);
      expect(() => store.db.prepare(`UPDATE runs SET tags = '{"a": 1}' WHERE id = 1`).run()).toThrow(/CHECK/);
      expect(() => store.db.prepare(`UPDATE runs SET tags = 'not json' WHERE id = 1`).run()).toThrow(/CHECK/);
      // A list holding other things than strings (a file written elsewhere) reads as its strings only.
      store.db.prepare(`UPDATE runs SET tags = '["ok", 3, null, ""]' WHERE id = 1`).run();
      expect(store.runs.get(1)!.tags).toEqual(['ok']);
    } finally {
      store.close();
    }
  });
});
