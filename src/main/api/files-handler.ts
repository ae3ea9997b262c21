/**
 * `files.list`: one folder's entries for the browser's file chooser (serve mode; the desktop app has native dialogs).
 * The face has already checked `dir` against its file-access policy (src/main/web/file-access.ts), so this lists only
 * folders the page may use; it reads names and sizes, never file contents.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FileEntry, ParamsOf, ResultOf } from '../../shared/contract.js';
import { CliffscopeError } from '../engine/errors.js';

/** At most this many entries are listed (a folder of 100,000 shards should not freeze the page). */
export const MAX_ENTRIES = 5000;

const DATASET_EXT = /\.(csv|tsv|json|jsonl)$/i;

function looksLike(full: string, name: string, folder: boolean): FileEntry['looksLike'] {
  if (folder) return fs.existsSync(path.join(full, 'config.json')) ? 'model' : 'other';
  if (name.endsWith('.cliffscope')) return 'project';
  return DATASET_EXT.test(name) ? 'dataset' : 'other';
}

export async function filesList({ dir, hidden }: ParamsOf<'files.list'>): Promise<ResultOf<'files.list'>> {
  let real: string;
  try {
    real = fs.realpathSync.native(path.resolve(dir));
  } catch {
    throw new CliffscopeError('missing-file', `${dir} does not exist`, { file: dir, hint: 'go up a folder, or type the path' });
  }
  if (!fs.statSync(real).isDirectory()) throw new CliffscopeError('bad-argument', `${real} is a file, not a folder`, { file: real });
  let names: fs.Dirent[];
  try {
    names = fs.readdirSync(real, { withFileTypes: true });
  } catch (e) {
    throw new CliffscopeError('missing-file', `cannot list ${real}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: real, hint: 'check the folder’s permissions' });
  }
  const entries: FileEntry[] = [];
  for (const d of names) {
    if (!hidden && d.name.startsWith('.')) continue;
    const full = path.join(real, d.name);
    let st: fs.Stats;
    try {
      st = fs.statSync(full); // follows links; a broken link is left out
    } catch {
      continue;
    }
    const folder = st.isDirectory();
    if (!folder && !st.isFile()) continue; // sockets, devices, pipes: nothing to open
    entries.push({ name: d.name, path: full, kind: folder ? 'folder' : 'file', looksLike: looksLike(full, d.name, folder), size: folder ? null : st.size, modified: st.mtime.toISOString() });
  }
  entries.sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name, undefined, { numeric: true }) : a.kind === 'folder' ? -1 : 1));
  const parent = path.dirname(real);
  return { dir: real, parent: parent === real ? null : parent, home: os.homedir(), entries: entries.slice(0, MAX_ENTRIES), truncated: entries.length > MAX_ENTRIES };
}
