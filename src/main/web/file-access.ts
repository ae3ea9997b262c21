/**
 * Which files a face lets a request touch. The engine reads and writes files as the user, so a page that can call it
 * (a browser tab holding serve's token, or a renderer in the desktop app) must not be able to name any file it likes
 * — `/proc/self/environ`, `~/.ssh/id_ed25519`, or a file to overwrite. Both faces check every path in a request
 * before it reaches the engine:
 *
 * - serve: paths must lie inside the user's own folders (home, the temp folder, the folder serve started in, the
 *   cache, and any `--allow-dir`), never in system folders or credential folders, after resolving links;
 * - Electron: paths must be what the user picked in a native dialog (a picked folder grants what is inside it), a
 *   project's own folder, or what the engine itself named (the demo project, the recent list).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ApiErrorInfo } from '../../shared/contract.js';

/**
 * Request fields that name a file or folder (or a list of them), wherever they appear in a request's params: every
 * field the contract types as a path (tests/electron/file-grants.test.ts holds the two in step). `cache` is the
 * compiled-model cache a model reference may name, which the engine writes into; `out` a shard's file, `files` the
 * shard files a merge reads, `jobDir` a Slurm job directory.
 */
export const PATH_FIELDS: ReadonlySet<string> = new Set(['dir', 'file', 'project', 'dest', 'src', 'outDir', 'modelDir', 'cache', 'out', 'files', 'setupFile', 'jobDir']);

/** Fields that name a checkpoint folder: read only (config.json, tokenizer and weights inside it). */
const MODEL_FIELDS: ReadonlySet<string> = new Set(['dir', 'modelDir']);

export interface RequestPath {
  field: string;
  path: string;
}

/** Every path a request names: the string values of PATH_FIELDS keys, at any depth, with their field. */
export function requestPaths(params: unknown): RequestPath[] {
  const found: RequestPath[] = [];
  const walk = (v: unknown, depth: number) => {
    if (depth > 8 || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) return v.forEach((x) => walk(x, depth + 1));
    for (const [k, x] of Object.entries(v)) {
      if (PATH_FIELDS.has(k) && typeof x === 'string') found.push({ field: k, path: x });
      else if (PATH_FIELDS.has(k) && Array.isArray(x) && x.every((e) => typeof e === 'string')) for (const e of x) found.push({ field: k, path: e });
      else walk(x, depth + 1);
    }
  };
  walk(params, 0);
  return found;
}

/**
 * The absolute path with every link resolved, for a path that may not exist yet (an output file): the longest
 * existing ancestor is resolved and the rest appended.
 */
export function canonicalPath(p: string, base = process.cwd()): string {
  let head = path.resolve(base, p);
  const tail: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync.native(head), ...tail.reverse());
    } catch {
      const parent = path.dirname(head);
      if (parent === head) return path.join(head, ...tail.reverse());
      tail.push(path.basename(head));
      head = parent;
    }
  }
}

function within(p: string, root: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Never reachable through a face, whatever the roots: the kernel's and the system's own files. */
const SYSTEM_DIRS = ['/proc', '/sys', '/dev', '/etc', '/boot', '/run', '/var/run'];
/** Credential and key folders inside a home folder. */
const SECRET_DIRS = ['.ssh', '.gnupg', '.aws', '.azure', '.kube', '.docker', '.password-store', '.config/gcloud', '.local/share/keyrings'];
const SECRET_FILES = ['.netrc', '.git-credentials', '.npmrc', '.pypirc', '.pgpass'];

export interface FileAccessPolicy {
  /** null when `p` may be used in request field `field`; otherwise why not. */
  check(p: string, field?: string): string | null;
}

/** serve's policy: inside one of `roots`, outside system and credential folders. */
export class RootsPolicy implements FileAccessPolicy {
  readonly roots: string[];
  private readonly denied: string[];

  constructor(roots: readonly string[], private readonly base = process.cwd()) {
    // A root of "/" would allow everything; a folder serve happened to start in must not do that.
    this.roots = [...new Set(roots.map((r) => canonicalPath(r, base)))].filter((r) => path.dirname(r) !== r);
    const home = canonicalPath(os.homedir());
    this.denied = [
      ...(process.platform === 'win32' ? [] : SYSTEM_DIRS.map((d) => canonicalPath(d))),
      ...SECRET_DIRS.map((d) => path.join(home, d)),
      ...SECRET_FILES.map((f) => path.join(home, f)),
    ];
  }

  /** The default roots: home, the temp folder, the folder serve started in, and the Cliffscope cache. */
  static defaults(extra: readonly string[] = [], cacheRoot?: string): RootsPolicy {
    return new RootsPolicy([os.homedir(), os.tmpdir(), process.cwd(), ...(cacheRoot ? [cacheRoot] : []), ...extra]);
  }

  check(p: string): string | null {
    const real = canonicalPath(p, this.base);
    if (this.denied.some((d) => within(real, d))) return `${p} is in a system or credential folder, which Cliffscope never opens for a page`;
    if (!this.roots.some((r) => within(real, r))) {
      return `${p} is outside the folders this server may use (${this.roots.join(', ')})`;
    }
    return null;
  }
}

/** The desktop app's policy: what the user picked in a dialog, projects' own folders, and what the engine named. */
export class GrantsPolicy implements FileAccessPolicy {
  private readonly files = new Set<string>();
  private readonly trees = new Set<string>();
  private readonly modelDirs = new Set<string>();

  /**
   * Allow this folder as a checkpoint to read (model fields only). The models a project lists come from the project
   * file, which is not trusted to name anything else: such a path is never a place to write to.
   */
  grantModelDir(p: string): void {
    this.modelDirs.add(canonicalPath(p));
  }

  /** Allow exactly this file (or folder). */
  grantFile(p: string): void {
    this.files.add(canonicalPath(p));
  }

  /** Allow this folder and everything in it. */
  grantTree(p: string): void {
    this.trees.add(canonicalPath(p));
  }

  /** A project file and its own folder (its exports, selections and datasets usually sit beside it). */
  grantProject(file: string): void {
    this.grantFile(file);
    this.grantTree(path.dirname(canonicalPath(file)));
  }

  check(p: string, field?: string): string | null {
    const real = canonicalPath(p);
    if (this.files.has(real) || [...this.trees].some((t) => within(real, t))) return null;
    if (field !== undefined && MODEL_FIELDS.has(field) && this.modelDirs.has(real)) return null;
    return `${p} was not chosen in a file dialog`;
  }
}

/** The first path of a request that `policy` refuses, as the error a face answers with; null when all pass. */
export function refusedPath(policy: FileAccessPolicy, params: unknown, hint: string): ApiErrorInfo | null {
  for (const { field, path: p } of requestPaths(params)) {
    const why = policy.check(p, field);
    if (why) return { code: 'forbidden', message: why, hint };
  }
  return null;
}

/** What a native dialog of `kind` grants: a project and its folder, a picked folder's contents, or one file. */
export function grantPicked(grants: GrantsPolicy, kind: string, picked: string): void {
  if (kind === 'project-open' || kind === 'project-save') grants.grantProject(picked);
  else if (kind === 'model-folder' || kind === 'folder') grants.grantTree(picked);
  else grants.grantFile(picked);
}

/**
 * Paths the engine itself named in a reply, which the page may then use: the recent projects (the list only ever
 * holds projects that were opened), the demo project, and — to read only — the checkpoint folders of an opened
 * project's models and of the demo.
 */
export function grantFromResult(grants: GrantsPolicy, method: string, result: unknown): void {
  const r = (result ?? {}) as { files?: unknown; file?: unknown; models?: unknown; report?: { modelDir?: unknown } };
  if ((method === 'project.recent' || method === 'project.remember') && Array.isArray(r.files)) {
    for (const f of r.files) if (typeof f === 'string') grants.grantProject(f);
  } else if (method === 'project.demo') {
    if (typeof r.file === 'string') grants.grantProject(r.file);
    if (typeof r.report?.modelDir === 'string') grants.grantModelDir(r.report.modelDir);
  } else if (method === 'project.open' && Array.isArray(r.models)) {
    for (const m of r.models as { path?: unknown }[]) if (typeof m?.path === 'string') grants.grantModelDir(m.path);
  }
}
