/**
 * Under Electron the engine host loads a copy of better-sqlite3 built for Electron's ABI, named by
 * CLIFFSCOPE_SQLITE_BINDING (scripts/start.js builds it). Every project open goes through that binding when set.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openProject } from '../../src/main/store/open.js';

const require = createRequire(import.meta.url);
const nodeBuilt = path.join(path.dirname(require.resolve('better-sqlite3/package.json')), 'build', 'Release', 'better_sqlite3.node');

afterEach(() => {
  delete process.env.CLIFFSCOPE_SQLITE_BINDING;
});

describe('native binding override', () => {
  it('opens projects through the addon CLIFFSCOPE_SQLITE_BINDING names', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-binding-'));
    process.env.CLIFFSCOPE_SQLITE_BINDING = nodeBuilt;
    const store = openProject(path.join(dir, 'p.cliffscope'), { create: true });
    expect(store.runs.list()).toEqual([]);
    store.close();
    // A binding that does not exist is an error, not a silent fall-back to another ABI.
    process.env.CLIFFSCOPE_SQLITE_BINDING = path.join(dir, 'missing.node');
    expect(() => openProject(path.join(dir, 'p.cliffscope'))).toThrow(/missing/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
