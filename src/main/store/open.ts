/** Opening projects, and copying a closed (or open) project file without opening it for writing. */
import { CliffscopeError } from '../engine/errors.js';
import { inspectProjectFile, integrityProblems, openChecked, openForReading, openReadOnly } from './project-file.js';
import { ProjectStore } from './project-store.js';
import { exportProjectFile } from './transfer.js';

export interface OpenProjectOptions {
  /** Make a new project when the file does not exist (or is empty). */
  create?: boolean;
  /**
   * Read-only: for viewing, or a file on read-only media. Nothing is migrated or recovered. A project that cannot be
   * written (file or folder) is opened read-only even without it; its first write then fails with a clear error.
   */
  readonly?: boolean;
  /** Run SQLite's quick_check before opening (reads the whole file; catches damage inside it). */
  verify?: boolean;
}

/**
 * Open a project file. The file is checked read-only first: something that is not a SQLite file, a SQLite file that
 * is not a Cliffscope project, a truncated file, or a project from a newer Cliffscope is refused with a
 * 'bad-project' error naming the file, and left exactly as it was. Opening upgrades an older project in place (one
 * transaction per step) and marks runs whose process died as interrupted.
 */
export function openProject(file: string, opts: OpenProjectOptions = {}): ProjectStore {
  const state = inspectProjectFile(file, { verify: opts.verify });
  const db = openChecked(file, state, opts);
  const store = new ProjectStore(db, file);
  if (!db.readonly) store.runs.recoverInterrupted();
  return store;
}

/**
 * SQLite's full integrity_check of a project (`project info --check`): ['ok'] or the problems found. Reads the whole
 * file through a read-only connection; opening for writing runs the faster quick_check on its own.
 */
export function checkProject(file: string): string[] {
  const state = inspectProjectFile(file);
  if (state.kind !== 'project') throw new CliffscopeError('bad-project', `${file} is not a Cliffscope project (${state.kind === 'missing' ? 'no such file' : 'empty file'})`, { file });
  const db = openReadOnly(file);
  try {
    return integrityProblems(db, true);
  } finally {
    db.close();
  }
}

/** Copy a project to `dest` as one self-contained file (VACUUM INTO), without writing to the source. */
export function exportProject(file: string, dest: string): void {
  const state = inspectProjectFile(file);
  if (state.kind !== 'project') throw new CliffscopeError('bad-project', `${file} is not a Cliffscope project (${state.kind === 'missing' ? 'no such file' : 'empty file'})`, { file });
  const db = openForReading(file, { allowVacuumInto: true });
  try {
    exportProjectFile(db, file, dest);
  } finally {
    db.close();
  }
}
