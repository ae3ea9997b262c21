/**
 * Writing fine-tuning files into a LLaMA-Factory data folder. That folder usually already holds the user's other
 * datasets, registered in its `dataset_info.json`: our entries are merged into that file (every other entry kept), a
 * name or file that is already there is refused unless `force`, and every file appears whole or not at all (written
 * beside its final name, then renamed), so an interrupted export never leaves a half-written registry.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CliffscopeError } from '../errors.js';
import { jsonSyntaxProblem } from '../io/json-syntax.js';
import { readUntrustedText } from '../io/untrusted-file.js';

export const DATASET_INFO = 'dataset_info.json';
/** LLaMA-Factory's own dataset_info.json is tens of KB. */
const MAX_DATASET_INFO_BYTES = 64 * 1024 * 1024;

export interface LlamaFactoryExport {
  /** Data and sidecar files: name inside the folder → contents. */
  files: { name: string; text: string }[];
  /** Entries for dataset_info.json, by dataset name. */
  datasetInfo: Record<string, unknown>;
}

function readDatasetInfo(file: string): Record<string, unknown> {
  if (!fs.existsSync(file)) return {};
  const text = readUntrustedText(file, { maxBytes: MAX_DATASET_INFO_BYTES, what: DATASET_INFO, code: 'bad-json' });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CliffscopeError('bad-json', `${file} is not valid JSON (${jsonSyntaxProblem(text)}); it was left as it is`, {
      file,
      hint: 'fix it, or export into another folder',
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CliffscopeError('bad-json', `${file} must hold a JSON object of dataset entries; it was left as it is`, { file });
  }
  return value as Record<string, unknown>;
}

/** Write `text` to `file` through a temporary file beside it, renamed into place once complete. */
export function writeFileAtomically(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliffscopeError('bad-argument', `cannot write ${file}: ${code === 'EISDIR' ? 'a folder of that name is in the way' : (code ?? (e as Error).message)}`, {
      file,
      cause: e,
    });
  }
}

function ensureFolder(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliffscopeError('bad-argument', `cannot create the output folder ${dir} (${code === 'EEXIST' || code === 'ENOTDIR' ? 'a file is in the way' : (code ?? (e as Error).message)})`, {
      file: dir,
      hint: 'choose a folder for the export',
    });
  }
}

/**
 * Refuse (before any work) an export that would replace dataset entries or files in `outDir`, unless `force`. Also
 * checks that the folder can be made and that an existing dataset_info.json is readable.
 */
export function checkLlamaFactoryTarget(outDir: string, target: { names: string[]; files: string[] }, opts: { force?: boolean } = {}): void {
  const dir = path.resolve(outDir);
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) {
    throw new CliffscopeError('bad-argument', `the output ${dir} is a file, not a folder`, { file: dir, hint: 'choose a folder for the export' });
  }
  const infoFile = path.join(dir, DATASET_INFO);
  const existing = readDatasetInfo(infoFile);
  if (opts.force) return;
  const names = target.names.filter((n) => Object.prototype.hasOwnProperty.call(existing, n));
  const files = target.files.filter((n) => fs.existsSync(path.join(dir, n)));
  if (names.length === 0 && files.length === 0) return;
  const what = [names.length ? `${infoFile} already has ${names.map((n) => `"${n}"`).join(', ')}` : '', files.length ? `${dir} already holds ${files.join(', ')}` : '']
    .filter(Boolean)
    .join('; ');
  throw new CliffscopeError('bad-argument', `${what}; nothing was written`, {
    file: names.length ? infoFile : dir,
    hint: 'pass --force to replace them (every other dataset entry is kept), or export into another folder',
  });
}

/**
 * Write `exp` into `outDir` and merge its entries into `outDir/dataset_info.json`. Nothing is written when a dataset
 * name or file would be replaced and `force` is not set. Returns the paths written, dataset_info.json last.
 */
export function writeLlamaFactoryExport(outDir: string, exp: LlamaFactoryExport, opts: { force?: boolean } = {}): string[] {
  const dir = path.resolve(outDir);
  checkLlamaFactoryTarget(dir, { names: Object.keys(exp.datasetInfo), files: exp.files.map((f) => f.name) }, opts);
  ensureFolder(dir);
  const infoFile = path.join(dir, DATASET_INFO);
  const existing = readDatasetInfo(infoFile);
  const written: string[] = [];
  for (const f of exp.files) {
    const p = path.join(dir, f.name);
    writeFileAtomically(p, f.text);
    written.push(p);
  }
  // Our entries go last, after every entry the user had (JSON object order is kept).
  writeFileAtomically(infoFile, `${JSON.stringify({ ...existing, ...exp.datasetInfo }, null, 2)}\n`);
  written.push(infoFile);
  return written;
}
