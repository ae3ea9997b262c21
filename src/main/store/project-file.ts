/**
 * Recognising, creating and migrating project files. A file is checked before anything can write to it: first its
 * raw header (no SQLite involved, so a random or foreign file is never touched), then read-only through SQLite. Only
 * a file that is a Cliffscope project of a version we understand is ever opened read-write.
 */
import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { CliffscopeError } from '../engine/errors.js';
import { APPLICATION_ID, MIGRATIONS, NOW_SQL, PROJECT_FORMAT, SCHEMA_VERSION, type Migration } from './schema.js';

/**
 * better-sqlite3 is a native addon built for one runtime's ABI. Under Electron the engine host runs on Electron's
 * Node, so `npm start` builds a second copy of the addon for it and names it in CLIFFSCOPE_SQLITE_BINDING; the CLI
 * and the tests keep the one npm built for Node.
 */
function openDatabase(file: string, options: BetterSqlite3.Options = {}): BetterSqlite3.Database {
  const binding = process.env.CLIFFSCOPE_SQLITE_BINDING;
  return new BetterSqlite3(file, binding ? { ...options, nativeBinding: binding } : options);
}

export type DB = BetterSqlite3.Database;

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

export type FileState = { kind: 'missing' } | { kind: 'empty' } | { kind: 'project'; version: number };

function notAProject(file: string, why: string, hint?: string): CliffscopeError {
  return new CliffscopeError('bad-project', `${file} is not a Cliffscope project: ${why}`, { file, hint });
}

function newerVersion(file: string, version: number): CliffscopeError {
  return new CliffscopeError('bad-project', `${file} was written by a newer Cliffscope (project format ${version}; this version reads up to ${SCHEMA_VERSION})`, {
    file,
    hint: 'update Cliffscope to open it',
  });
}

/** The format marker every project's meta table holds; its absence means the file is not (fully) a project. */
function hasFormatMarker(db: DB): boolean {
  const hasMeta = db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'`).get();
  const format = hasMeta ? (db.prepare(`SELECT value FROM meta WHERE key = 'format'`).get() as { value: string } | undefined) : undefined;
  return format?.value === PROJECT_FORMAT;
}

function walSize(file: string): number {
  try {
    return fs.statSync(`${file}-wal`).size;
  } catch {
    return 0;
  }
}

/**
 * What is at `file`: nothing, an empty file, or a project (with its schema version). Anything else throws a
 * 'bad-project' error that names the file. Never writes to the file.
 */
export function inspectProjectFile(file: string, opts: { verify?: boolean } = {}): FileState {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return { kind: 'missing' };
  }
  if (st.isDirectory()) throw notAProject(file, 'it is a folder', 'a project is a single .cliffscope file');
  if (st.size === 0) return { kind: 'empty' };

  // 1. The raw header (the first 100 bytes of every SQLite file).
  const head = Buffer.alloc(100);
  const fd = fs.openSync(file, 'r');
  let got: number;
  try {
    got = fs.readSync(fd, head, 0, 100, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (got < SQLITE_MAGIC.length || !head.subarray(0, 16).equals(SQLITE_MAGIC)) {
    throw notAProject(file, 'it is not a SQLite database (wrong file header)', 'pick the .cliffscope project file itself');
  }
  if (got < 100) throw notAProject(file, `it is truncated (${st.size} bytes, shorter than a SQLite header)`, 'restore the file from a backup or an export');
  const rawPageSize = head.readUInt16BE(16);
  const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
  const changeCounter = head.readUInt32BE(24);
  const pages = head.readUInt32BE(28);
  const validFor = head.readUInt32BE(92);
  const pendingWal = walSize(file) > 0; // an un-checkpointed log: the header on disk may be stale
  // The in-header size counts only when the change counter matches version-valid-for (SQLite's own rule).
  if (!pendingWal && pages > 0 && changeCounter === validFor && st.size < pages * pageSize) {
    throw notAProject(file, `it is truncated (${st.size} bytes; its header says ${pages * pageSize})`, 'restore the file from a backup or an export');
  }
  const appId = head.readInt32BE(68) >>> 0;
  if (appId !== APPLICATION_ID && (appId !== 0 || !pendingWal)) {
    throw notAProject(file, 'it is a SQLite database made by another program', 'pick a .cliffscope project file, or create a new project');
  }
  if (!pendingWal && !opts.verify) {
    // No log: the header on disk is current, so it alone answers. (Opening read-only through SQLite would leave
    // -shm/-wal files beside the project, which a read-only connection cannot remove.)
    const version = head.readUInt32BE(60);
    if (version > SCHEMA_VERSION) throw newerVersion(file, version);
    return { kind: 'project', version };
  }

  // 2. Read-only through SQLite: the header page may live in the log, and the meta table must say what we are.
  let db: DB | undefined;
  try {
    // With a pending log, read-only: closing must not checkpoint someone else's log into their file. Without one
    // (only `verify` gets here), a query_only connection: it removes the -wal/-shm it creates when it closes.
    db = pendingWal ? openDatabase(file, { readonly: true, fileMustExist: true }) : openForReading(file);
    const id = (db.pragma('application_id', { simple: true }) as number) >>> 0;
    const version = db.pragma('user_version', { simple: true }) as number;
    if (id !== APPLICATION_ID) throw notAProject(file, 'it is a SQLite database made by another program');
    if (!hasFormatMarker(db)) throw notAProject(file, 'it has no Cliffscope format marker');
    if (version > SCHEMA_VERSION) throw newerVersion(file, version);
    if (opts.verify) {
      const problems = (db.pragma('quick_check(5)') as { quick_check: string }[]).map((r) => r.quick_check);
      if (problems.length !== 1 || problems[0] !== 'ok') {
        throw new CliffscopeError('bad-project', `${file} is damaged: ${problems.join('; ')}`, { file, hint: 'restore the file from a backup or an export' });
      }
    }
    return { kind: 'project', version };
  } catch (e) {
    if (e instanceof CliffscopeError) throw e;
    throw new CliffscopeError('bad-project', `${file} cannot be read as a Cliffscope project: ${(e as Error).message}`, {
      file,
      hint: 'the file is damaged or not a project; restore it from a backup or an export',
      cause: e,
    });
  } finally {
    db?.close();
  }
}

/** Connection settings every project connection uses. */
export function configure(db: DB): void {
  db.pragma('journal_mode = WAL');
  // WAL makes synchronous read FULL; NORMAL is durable against application crashes and much faster per commit.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
}

/**
 * Bring the schema up to date, one transaction per migration: a failed step leaves the file at the previous
 * version, never half-way. (`migrations` is a parameter for tests.)
 */
export function migrate(db: DB, migrations: readonly Migration[] = MIGRATIONS): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (const m of migrations) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      m.data?.(db);
      if (m.version === 1) {
        const put = db.prepare(`INSERT INTO meta (key, value) VALUES (?, ?)`);
        put.run('format', PROJECT_FORMAT);
        put.run('created_at', (db.prepare(`SELECT ${NOW_SQL} AS t`).get() as { t: string }).t);
      }
      db.pragma(`user_version = ${m.version}`);
    })();
  }
}

/** Open (creating or migrating as needed) a connection to a file already checked by inspectProjectFile. */
export function openChecked(file: string, state: FileState, opts: { create?: boolean; readonly?: boolean } = {}): DB {
  if (state.kind === 'missing' || state.kind === 'empty') {
    if (!opts.create) {
      if (state.kind === 'missing') {
        throw new CliffscopeError('missing-file', `project file ${file} does not exist`, { file, hint: 'create a new project instead' });
      }
      throw notAProject(file, 'the file is empty', 'create a new project instead');
    }
    if (!fs.existsSync(path.dirname(path.resolve(file)))) {
      throw new CliffscopeError('missing-file', `cannot create ${file}: the folder ${path.dirname(path.resolve(file))} does not exist`, { file });
    }
  }
  if (opts.readonly) {
    if (state.kind !== 'project') throw new CliffscopeError('bad-argument', `cannot create ${file} read-only`, { file });
    if (state.version < SCHEMA_VERSION) {
      throw new CliffscopeError('bad-project', `${file} uses an older project format (${state.version}) and must be upgraded before it can be read`, {
        file,
        hint: 'open it once read-write to upgrade it',
      });
    }
    const db = openDatabase(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    if (!hasFormatMarker(db)) {
      db.close();
      throw notAProject(file, 'it has no Cliffscope format marker');
    }
    return db;
  }
  const db = openDatabase(file);
  try {
    if (state.kind === 'project' && !hasFormatMarker(db)) throw notAProject(file, 'it has no Cliffscope format marker');
    configure(db);
    migrate(db);
    // Put the header (application id included) into the main file now, so the file is recognisable on its own.
    if (state.kind !== 'project') db.pragma('wal_checkpoint(TRUNCATE)');
  } catch (e) {
    db.close();
    const code = String((e as { code?: unknown }).code ?? '');
    if (/^SQLITE_(CORRUPT|NOTADB)/.test(code)) {
      throw new CliffscopeError('bad-project', `${file} is damaged: ${(e as Error).message}`, { file, hint: 'restore the file from a backup or an export', cause: e });
    }
    throw e;
  }
  return db;
}

/** Make a new, empty project file (schema only) and close it. Refuses to overwrite anything. */
export function createProjectFile(file: string): void {
  if (fs.existsSync(file)) throw new CliffscopeError('bad-argument', `${file} already exists; it will not be overwritten`, { file, hint: 'choose a new file name' });
  openChecked(file, { kind: 'missing' }, { create: true }).close();
}

/**
 * A connection for reading a checked project without changing it: read-write but query_only (so closing it can
 * checkpoint and remove the -wal/-shm files, unlike a read-only connection), or read-only when the file or its
 * folder cannot be written. `allowVacuumInto` leaves query_only off, which VACUUM INTO needs; the caller then
 * must only read.
 */
export function openForReading(file: string, opts: { allowVacuumInto?: boolean } = {}): DB {
  let db: DB | undefined;
  try {
    db = openDatabase(file, { fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    if (!opts.allowVacuumInto) db.pragma('query_only = ON');
    db.prepare('SELECT COUNT(*) FROM sqlite_schema').get(); // touch the file: fails here on read-only media
    return db;
  } catch (e) {
    db?.close();
    const code = String((e as { code?: unknown }).code ?? '');
    if (!/^SQLITE_(READONLY|CANTOPEN|PERM|AUTH)/.test(code)) throw e; // e.g. a damaged file: report it
    return openDatabase(file, { readonly: true, fileMustExist: true });
  }
}
