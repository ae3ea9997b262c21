/**
 * Recognising, creating and migrating project files. A file is checked before anything can write to it: first its
 * raw header (no SQLite involved, so a random or foreign file is never touched), then read-only through SQLite. Only
 * a file that is a Cliffscope project of a version we understand is ever opened read-write.
 *
 * A project file is untrusted data: it may come from a colleague, a download, a damaged disk. So it is never allowed
 * to run code (triggers and views Cliffscope did not create are dropped or refused, `trusted_schema` is off), it is
 * quick-checked before anything is written into it, a read-only file (or folder) is opened read-only, and SQLite's
 * failures on it (damaged pages, a read-only file) become errors that name the file and say how to recover.
 */
import fs from 'node:fs';
import os from 'node:os';
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

const RECOVER_HINT = (file: string) =>
  `copy out what is still readable (cliffscope project export ${file} --run RUN OUT for each run you need, or ` +
  `sqlite3 ${file} .recover | sqlite3 rescued.cliffscope), or restore the file from a backup; nothing was written to it`;

function damaged(file: string, why: string, cause?: unknown): CliffscopeError {
  return new CliffscopeError('bad-project', `${file} is damaged: ${why}`, { file, hint: RECOVER_HINT(file), cause });
}

function readOnlyError(file: string, cause?: unknown): CliffscopeError {
  if (writable(file)) {
    return new CliffscopeError('bad-project', `${file} was opened read-only (for viewing), so it cannot be changed through this connection`, { file, cause });
  }
  return new CliffscopeError('bad-project', `${file} is read-only (the file or its folder cannot be written), so it cannot be changed`, {
    file,
    hint: 'reading it works (report, project info, export); to add to it, copy it somewhere writable (cliffscope project export FILE COPY) or change its permissions',
    cause,
  });
}

/**
 * SQLite's failure on a project file as the error a person can act on: damaged pages and a read-only file are
 * 'bad-project' errors naming the file; anything else is returned as it is.
 */
export function projectFileError(e: unknown, file: string): unknown {
  if (e instanceof CliffscopeError) return e;
  const code = String((e as { code?: unknown }).code ?? '');
  if (/^SQLITE_(CORRUPT|NOTADB)/.test(code)) return damaged(file, (e as Error).message, e);
  if (/^SQLITE_READONLY/.test(code)) return readOnlyError(file, e);
  if (/^SQLITE_(FULL|IOERR)/.test(code)) {
    return new CliffscopeError('bad-project', `${file} could not be written: ${(e as Error).message}`, { file, hint: 'is the disk full or failing? the last committed state is kept', cause: e });
  }
  return e;
}

/**
 * The connection, with every SQLite failure on it translated by projectFileError (prepared statements included),
 * and `onClose` run after it closes. Statement methods that return the statement (pluck, raw…) return the guard.
 */
function guarded(db: DB, file: string, onClose?: () => void): DB {
  const translate = <T>(run: () => T): T => {
    try {
      return run();
    } catch (e) {
      throw projectFileError(e, file);
    }
  };
  const wrapFunction = (fn: (...args: unknown[]) => unknown, self: object, wrapResult: (r: unknown) => unknown) =>
    (...args: unknown[]) => translate(() => wrapResult(fn.apply(self, args)));
  const statement = (st: BetterSqlite3.Statement): BetterSqlite3.Statement => {
    const proxy: BetterSqlite3.Statement = new Proxy(st, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? wrapFunction(v as (...a: unknown[]) => unknown, target, (r) => (r === target ? proxy : r)) : v;
      },
    });
    return proxy;
  };
  const transaction = (fn: (...args: unknown[]) => unknown) => {
    const tx = db.transaction(fn);
    const wrap = (f: (...args: unknown[]) => unknown) => wrapFunction(f, tx, (r) => r);
    return Object.assign(wrap(tx), { deferred: wrap(tx.deferred), immediate: wrap(tx.immediate), exclusive: wrap(tx.exclusive), default: wrap(tx.default) }) as typeof tx;
  };
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'prepare') return (sql: string) => translate(() => statement(target.prepare(sql)));
      if (prop === 'transaction') return transaction;
      if (prop === 'close') {
        return () => {
          target.close();
          onClose?.();
          return target;
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? wrapFunction(v as (...a: unknown[]) => unknown, target, (r) => r) : v;
    },
  });
}

/** Whether this process could write the file and create files beside it (SQLite's -wal and -shm). */
function writable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.W_OK);
    fs.accessSync(path.dirname(path.resolve(file)), fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Temporary copies made to read a project in a read-only folder; removed when closed, or at exit at the latest. */
const snapshots = new Set<string>();
process.once('exit', () => {
  for (const dir of snapshots) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * A read-only connection. A project at rest is in WAL mode, and SQLite reads such a file only where it can create
 * the -shm index beside it; in a read-only folder that is impossible, so the file (and any -wal log) is copied to a
 * private temporary folder and read there. Nothing is ever written next to the original.
 */
export function openReadOnly(file: string): DB {
  const probe = (db: DB) => {
    db.pragma('busy_timeout = 5000');
    db.pragma('trusted_schema = OFF');
    db.prepare('SELECT COUNT(*) FROM sqlite_schema').get();
  };
  const db = openDatabase(file, { readonly: true, fileMustExist: true });
  try {
    probe(db);
    return guarded(db, file);
  } catch (e) {
    db.close();
    const code = String((e as { code?: unknown }).code ?? '');
    if (!/^SQLITE_(READONLY|CANTOPEN)/.test(code)) throw projectFileError(e, file);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-readonly-'));
  snapshots.add(dir);
  const remove = () => {
    snapshots.delete(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const copy = path.join(dir, path.basename(file));
    fs.copyFileSync(file, copy);
    if (fs.existsSync(`${file}-wal`)) fs.copyFileSync(`${file}-wal`, `${copy}-wal`);
    const snap = openDatabase(copy, { readonly: true, fileMustExist: true });
    try {
      probe(snap);
    } catch (e) {
      snap.close();
      throw e;
    }
    return guarded(snap, file, remove);
  } catch (e) {
    remove();
    throw projectFileError(e, file);
  }
}

let expected: Map<string, string> | null = null;

/**
 * Every schema object the migrations create (name → 'table' | 'index' | …), from running them on an empty in-memory
 * database. A project file holding anything else that can run code (a trigger, a view) did not get it from us.
 */
function expectedSchema(): Map<string, string> {
  if (expected) return expected;
  const db = openDatabase(':memory:');
  try {
    migrate(db);
    const rows = db.prepare(`SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'`).all() as { type: string; name: string }[];
    expected = new Map(rows.map((r) => [r.name, r.type]));
  } finally {
    db.close();
  }
  return expected;
}

/**
 * Schema objects this file holds that Cliffscope did not create and that could run code or stand in for a table:
 * every trigger and view, and anything of ours that is not what we made (e.g. a view named `runs`). With `drop` the
 * triggers and views are dropped (in one transaction, before anything else is written); a stand-in for one of our
 * tables is always refused. Read-only connections never fire triggers, and never query views by their own name.
 */
function removeForeignSchema(db: DB, file: string, opts: { drop: boolean }): void {
  const expected = expectedSchema();
  const objects = db.prepare(`SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'`).all() as { type: string; name: string }[];
  for (const o of objects) {
    const ours = expected.get(o.name);
    if (ours !== undefined && ours !== o.type) {
      throw damaged(file, `its "${o.name}" is a ${o.type}, where Cliffscope keeps a ${ours}`);
    }
  }
  for (const [name, type] of expected) {
    if (type === 'table' && !objects.some((o) => o.name === name)) throw damaged(file, `it has no "${name}" table`);
  }
  const foreign = objects.filter((o) => (o.type === 'trigger' || o.type === 'view') && !expected.has(o.name));
  if (!opts.drop || foreign.length === 0) return;
  db.transaction(() => {
    for (const o of foreign) db.exec(`DROP ${o.type === 'trigger' ? 'TRIGGER' : 'VIEW'} IF EXISTS "${o.name.replaceAll('"', '""')}"`);
  }).immediate();
  process.emitWarning(`${file}: dropped ${foreign.map((o) => `${o.type} "${o.name}"`).join(', ')}, which Cliffscope did not create`, { code: 'CLIFFSCOPE_FOREIGN_SCHEMA' });
}

/**
 * The quick check reads the whole file, which for a large project costs seconds on every open for writing. So a file
 * this process checked (or wrote and closed) is not checked again while it is exactly as it was left: same file,
 * size and modification time, log included. Anything else that touched it since makes it look new.
 */
const verifiedStamps = new Set<string>();

function stamp(file: string): string {
  const part = (f: string) => {
    try {
      const st = fs.statSync(f);
      return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return '-';
    }
  };
  return `${path.resolve(file)}|${part(file)}|${part(`${file}-wal`)}`;
}

function rememberVerified(file: string): void {
  if (verifiedStamps.size > 1000) verifiedStamps.clear();
  verifiedStamps.add(stamp(file));
}

/** SQLite's quick_check (or the full integrity_check): ['ok'] or the problems found. Reads the whole file. */
export function integrityProblems(db: DB, full = false): string[] {
  try {
    const rows = db.pragma(full ? 'integrity_check(20)' : 'quick_check(10)') as Record<string, string>[];
    return rows.map((r) => String(Object.values(r)[0]));
  } catch (e) {
    // So damaged that the check itself stops: that is its finding.
    const cause = e instanceof CliffscopeError && e.cause instanceof Error ? e.cause : (e as Error);
    return [cause.message];
  }
}

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
  // A pipe would block SQLite forever and a device is no place for a project (links are followed: the target counts).
  if (!st.isFile()) throw notAProject(file, `it is ${st.isFIFO() ? 'a pipe (FIFO)' : 'a device or socket'}, not a file`, 'a project is a single .cliffscope file');
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
    db = pendingWal ? openReadOnly(file) : openForReading(file);
    const id = (db.pragma('application_id', { simple: true }) as number) >>> 0;
    const version = db.pragma('user_version', { simple: true }) as number;
    if (id !== APPLICATION_ID) throw notAProject(file, 'it is a SQLite database made by another program');
    if (!hasFormatMarker(db)) throw notAProject(file, 'it has no Cliffscope format marker');
    if (version > SCHEMA_VERSION) throw newerVersion(file, version);
    if (opts.verify) {
      const problems = integrityProblems(db);
      if (problems.length !== 1 || problems[0] !== 'ok') throw damaged(file, problems.slice(0, 5).join('; '));
    }
    return { kind: 'project', version };
  } catch (e) {
    if (e instanceof CliffscopeError) throw e;
    throw new CliffscopeError('bad-project', `${file} cannot be read as a Cliffscope project: ${(e as Error).message}`, {
      file,
      hint: `the file is damaged or not a project; ${RECOVER_HINT(file)}`,
      cause: e,
    });
  } finally {
    db?.close();
  }
}

/** Connection settings every project connection uses. */
export function configure(db: DB): void {
  // Views and triggers may not call functions with side effects (a project file is data, not code).
  db.pragma('trusted_schema = OFF');
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

/**
 * Open (creating or migrating as needed) a connection to a file already checked by inspectProjectFile. A project
 * that cannot be written (a read-only file or folder) is opened read-only instead: reads work, and the first write
 * fails with an error that says so. Before anything is written, the file is quick-checked (a damaged file is refused,
 * untouched) and triggers and views Cliffscope did not create are dropped.
 */
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
  if (state.kind === 'project' && !opts.readonly && !writable(file)) return openChecked(file, state, { readonly: true });
  if (opts.readonly) {
    if (state.kind !== 'project') throw new CliffscopeError('bad-argument', `cannot create ${file} read-only`, { file });
    if (state.version < SCHEMA_VERSION) {
      throw new CliffscopeError('bad-project', `${file} uses an older project format (${state.version}) and must be upgraded before it can be read`, {
        file,
        hint: 'open it once read-write to upgrade it',
      });
    }
    const db = openReadOnly(file);
    try {
      if (!hasFormatMarker(db)) throw notAProject(file, 'it has no Cliffscope format marker');
      removeForeignSchema(db, file, { drop: false });
    } catch (e) {
      db.close();
      throw projectFileError(e, file);
    }
    return db;
  }
  let db: DB | undefined;
  let opened = false;
  try {
    const before = stamp(file);
    // Remembered as verified on close only if this open got through its checks.
    db = guarded(openDatabase(file), file, () => opened && rememberVerified(file));
    db.pragma('trusted_schema = OFF');
    if (state.kind === 'project') {
      if (!hasFormatMarker(db)) throw notAProject(file, 'it has no Cliffscope format marker');
      if (!verifiedStamps.has(before)) {
        const problems = integrityProblems(db);
        if (problems.length !== 1 || problems[0] !== 'ok') throw damaged(file, problems.slice(0, 5).join('; '));
      }
      // Before any upgrade: a planted trigger would fire on a migration's own UPDATEs, and a broken planted view
      // would fail its ALTER TABLE. (Format 2 edits the runs table's SQL in sqlite_schema; names stay ours.)
      removeForeignSchema(db, file, { drop: true });
    }
    configure(db);
    migrate(db);
    // Put the header (application id included) into the main file now, so the file is recognisable on its own.
    if (state.kind !== 'project') db.pragma('wal_checkpoint(TRUNCATE)');
    opened = true;
  } catch (e) {
    db?.close();
    throw projectFileError(e, file);
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
  const checked = (db: DB) => {
    try {
      // A view standing in for one of our tables could loop forever when read (a project import reads every table).
      if (hasFormatMarker(db)) removeForeignSchema(db, file, { drop: false });
      return db;
    } catch (e) {
      db.close();
      throw e;
    }
  };
  if (!writable(file)) return checked(openReadOnly(file));
  let db: DB | undefined;
  try {
    db = openDatabase(file, { fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    db.pragma('trusted_schema = OFF');
    if (!opts.allowVacuumInto) db.pragma('query_only = ON');
    db.prepare('SELECT COUNT(*) FROM sqlite_schema').get(); // touch the file: fails here on read-only media
  } catch (e) {
    db?.close();
    const code = String((e as { code?: unknown }).code ?? '');
    if (!/^SQLITE_(READONLY|CANTOPEN|PERM|AUTH)/.test(code)) throw projectFileError(e, file); // e.g. a damaged file
    return checked(openReadOnly(file));
  }
  return checked(guarded(db, file));
}
