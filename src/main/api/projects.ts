/**
 * Project files as the workbench handlers use them: a fresh read-only connection per query (closed when the query
 * is answered), and at most one writable connection per project file in this process, shared by every call that
 * writes (run.start, dataset.import, run.delete…) and closed when the last of them is done. better-sqlite3 is
 * synchronous and the store's transactions never span an await, so calls interleaving on one connection is safe.
 *
 * Also here: the recent-projects list kept in the cache root, and a small cache of tokenizers for hover text.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CliffscopeError } from '../engine/errors.js';
import { defaultCacheRoot } from '../engine/onnx/compile.js';
import { openProject } from '../store/open.js';
import { inspectProjectFile } from '../store/project-file.js';
import { SCHEMA_VERSION } from '../store/schema.js';
import type { ProjectStore } from '../store/project-store.js';
import type { RunRow } from '../store/types.js';
import { Tokenizer } from '../engine/tokenizer/tokenizer.js';

export const resolveFile = (file: string) => path.resolve(file);

// ---- connections ---------------------------------------------------------------------------------------------------

/**
 * Run `fn` on a read-only connection to `file`, closed afterwards. A project of an older format is upgraded first
 * (once, read-write), so opening a project made by an earlier Cliffscope just works.
 */
export function withReader<T>(file: string, fn: (store: ProjectStore) => T): T {
  const abs = resolveFile(file);
  if (isOlderProject(abs) && !isWriting(abs)) openProject(abs).close();
  const store = openProject(abs, { readonly: true });
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

function isOlderProject(file: string): boolean {
  try {
    const state = inspectProjectFile(file);
    return state.kind === 'project' && state.version < SCHEMA_VERSION;
  } catch {
    return false; // not a project: opening it says so
  }
}

interface Writer {
  store: ProjectStore;
  users: number;
}
const writers = new Map<string, Writer>();

/**
 * Run `fn` (possibly async) with the process's writable connection to `file`, opening it on first use and closing it
 * when its last user is done. `create` makes the project when the file does not exist.
 */
export async function withWriter<T>(file: string, fn: (store: ProjectStore) => T | Promise<T>, opts: { create?: boolean } = {}): Promise<T> {
  const key = resolveFile(file);
  let w = writers.get(key);
  if (!w) {
    w = { store: openProject(key, { create: opts.create }), users: 0 };
    writers.set(key, w);
  }
  w.users++;
  try {
    return await fn(w.store);
  } finally {
    w.users--;
    if (w.users === 0) {
      writers.delete(key);
      w.store.close();
    }
  }
}

/** Whether a call in this process is writing to `file` right now. */
export function isWriting(file: string): boolean {
  return writers.has(resolveFile(file));
}

/** Close every writable connection (engine host shutdown). Runs still in progress are marked interrupted. */
export function closeAllWriters(): void {
  for (const w of writers.values()) w.store.close();
  writers.clear();
}

// ---- recent projects ------------------------------------------------------------------------------------------------

const MAX_RECENT = 10;

function recentFile(): string {
  return path.join(defaultCacheRoot(), 'recent-projects.json');
}

function readRecentRaw(): string[] {
  try {
    const parsed = JSON.parse(fs.readFileSync(recentFile(), 'utf8')) as unknown;
    const list = Array.isArray(parsed) ? parsed : Array.isArray((parsed as { files?: unknown })?.files) ? (parsed as { files: unknown[] }).files : [];
    return list.filter((f): f is string => typeof f === 'string' && f.length > 0);
  } catch {
    // Missing or damaged: start over (the list is a convenience, not data).
    return [];
  }
}

function existingFile(f: string): boolean {
  try {
    return fs.statSync(f).isFile();
  } catch {
    return false;
  }
}

/** Recent project files, most recent first; files that no longer exist are left out. */
export function recentProjects(): string[] {
  return [...new Set(readRecentRaw())].filter(existingFile).slice(0, MAX_RECENT);
}

/** Put `file` first in the recent list (written atomically). Returns the new list. */
export function rememberProject(file: string): string[] {
  const abs = resolveFile(file);
  if (!existingFile(abs)) throw new CliffscopeError('missing-file', `${abs} does not exist, so it cannot be remembered`, { file: abs });
  const files = [abs, ...recentProjects().filter((f) => f !== abs)].slice(0, MAX_RECENT);
  const dest = recentFile();
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify({ files }, null, 2)}\n`);
  fs.renameSync(tmp, dest);
  return files;
}

// ---- tokenizers for display text ------------------------------------------------------------------------------------

const MAX_TOKENIZERS = 4;
const tokenizers = new Map<string, Promise<Tokenizer | null>>();

/** The tokenizer of a checkpoint folder (cached, a few at a time), or null when it cannot be loaded. */
export function tokenizerFor(dir: string): Promise<Tokenizer | null> {
  const key = path.resolve(dir);
  const hit = tokenizers.get(key);
  if (hit) {
    // Most recently used last.
    tokenizers.delete(key);
    tokenizers.set(key, hit);
    return hit;
  }
  const loading = Tokenizer.fromDir(key).catch(() => {
    // Not cached: the folder may come back (a remounted disk, a re-downloaded model).
    tokenizers.delete(key);
    return null;
  });
  tokenizers.set(key, loading);
  while (tokenizers.size > MAX_TOKENIZERS) tokenizers.delete(tokenizers.keys().next().value!);
  return loading;
}

/** The checkpoint folder of the model a run used, or null. */
export function modelDirOf(store: ProjectStore, run: RunRow): string | null {
  return run.modelId === null ? null : (store.models.get(run.modelId)?.path ?? null);
}

/** Display strings for token ids: the tokenizer's pieces, or `#id` without one. */
export function displayTokens(tok: Tokenizer | null, ids: readonly number[]): { tokens: string[]; tokensFrom: 'tokenizer' | 'ids' } {
  if (tok) {
    try {
      return { tokens: tok.tokenStrings(ids), tokensFrom: 'tokenizer' };
    } catch {
      // fall through to ids
    }
  }
  return { tokens: ids.map((id) => `#${id}`), tokensFrom: 'ids' };
}
