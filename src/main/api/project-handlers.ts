/** `project.*` and `dataset.*`: opening, remembering, exporting and importing projects; previewing and importing datasets. */
import fs from 'node:fs';
import path from 'node:path';
import type { ParamsOf, ResultOf } from '../../shared/contract.js';
import { readDatasetFile, type ColumnMapping, type ReadDatasetOptions } from '../engine/datasets/import.js';
import { CliffscopeError } from '../engine/errors.js';
import { exportProject } from '../store/open.js';
import type { ProjectStore } from '../store/project-store.js';
import { registerModel } from '../pipelines/common.js';
import { runReferences } from '../pipelines/references.js';
import type { CallContext } from './context.js';
import { defaultDemoProject, runDemo } from './demo/run-demo.js';
import { acquireModel } from './model-pool.js';
import { isWriting, recentProjects, rememberProject, resolveFile, withReader, withWriter } from './projects.js';
import { datasetItem, datasetSummary, mappingOf, modelSummary, probeSummary, runSummary } from './shapes.js';

const PREVIEW_ROWS = 20;
const REJECTED_SHOWN = 50;

export function projectSummary(store: ProjectStore): ResultOf<'project.open'> {
  return {
    file: store.file,
    models: store.models.list().map(modelSummary),
    datasets: store.datasets.list().map(datasetSummary),
    probes: store.probes.list().map((p) => probeSummary(p)),
    runs: store.runs.list().map(runSummary),
  };
}

function fileExists(file: string): boolean {
  try {
    return fs.statSync(file).size > 0;
  } catch {
    return false;
  }
}

export async function projectOpen({ file, create }: ParamsOf<'project.open'>): Promise<ResultOf<'project.open'>> {
  const abs = resolveFile(file);
  if (create && !fileExists(abs)) {
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    return withWriter(abs, projectSummary, { create: true });
  }
  return withReader(abs, projectSummary);
}

export async function projectRecent(): Promise<ResultOf<'project.recent'>> {
  return { files: recentProjects() };
}

export async function projectRemember({ file }: ParamsOf<'project.remember'>): Promise<ResultOf<'project.remember'>> {
  // Only project files go on the list: check it opens as one (read-only, nothing changes).
  withReader(file, () => undefined);
  return { files: rememberProject(file) };
}

const demosRunning = new Set<string>();

export async function projectDemo({ file }: ParamsOf<'project.demo'>, ctx: CallContext): Promise<ResultOf<'project.demo'>> {
  const abs = resolveFile(file ?? defaultDemoProject());
  if (demosRunning.has(abs) || isWriting(abs)) {
    throw new CliffscopeError('bad-argument', `${abs} is busy: a demo or a run is writing to it in this session`, { file: abs, hint: 'wait for it to finish, or cancel it' });
  }
  demosRunning.add(abs);
  try {
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    const report = await runDemo({
      projectFile: abs,
      signal: ctx.signal,
      log: (m) => ctx.log('info', m),
      onProgress: (stage, done, total) => ctx.progress(done, total, stage),
    });
    rememberProject(abs);
    return { file: abs, report };
  } finally {
    demosRunning.delete(abs);
  }
}

/** Compile and load a checkpoint (progress: hashing, weights, graph), then record it in the project. */
export async function modelAdd(p: ParamsOf<'model.add'>, ctx: CallContext): Promise<ResultOf<'model.add'>> {
  const started = Date.now();
  const model = await acquireModel(p.model, ctx);
  const row = await withWriter(p.project, (store) => registerModel(store, model), { create: true });
  return {
    modelId: row.id,
    contentHash: model.compiled.modelHash,
    provider: model.session.provider,
    providerNotes: [...model.session.providerNotes],
    compileKey: model.compiled.key,
    cached: model.compiled.cached,
    seconds: (Date.now() - started) / 1000,
  };
}

export async function projectExport({ file, dest, runId }: ParamsOf<'project.export'>): Promise<ResultOf<'project.export'>> {
  const src = resolveFile(file);
  const out = resolveFile(dest);
  if (fs.existsSync(out)) throw new CliffscopeError('bad-argument', `${out} already exists; export writes a new file`, { file: out, hint: 'choose another name or delete it first' });
  if (out === src) throw new CliffscopeError('bad-argument', `cannot export ${src} onto itself`, { file: src });
  if (!fs.existsSync(path.dirname(out))) throw new CliffscopeError('missing-file', `the folder ${path.dirname(out)} does not exist`, { file: out });
  if (runId === undefined) {
    exportProject(src, out);
  } else {
    // Check first with a reader, so an unknown run never opens (or creates) anything for writing.
    withReader(src, (s) => s.runs.require(runId));
    // Copying one run attaches the new file, which a read-only connection cannot write to.
    await withWriter(src, (s) => s.exportRun(runId, out, runReferences));
  }
  return { dest: out, bytes: fs.statSync(out).size };
}

export async function projectImport({ file, src }: ParamsOf<'project.import'>): Promise<ResultOf<'project.import'>> {
  const from = resolveFile(src);
  if (!fs.existsSync(from)) throw new CliffscopeError('missing-file', `${from} does not exist`, { file: from });
  // The source must be a project (checked read-only) before the target is opened for writing.
  withReader(from, () => undefined);
  withReader(file, () => undefined);
  return withWriter(file, (s) => s.importRun(from, runReferences));
}

// ---- datasets -------------------------------------------------------------------------------------------------------

function readOptions(p: { mapping?: ParamsOf<'dataset.preview'>['mapping']; format?: ParamsOf<'dataset.preview'>['format']; label?: string }): ReadDatasetOptions {
  const opts: ReadDatasetOptions = p.label !== undefined ? { label: p.label } : {};
  if (p.mapping) {
    const m: NonNullable<ReadDatasetOptions['mapping']> = {};
    for (const [k, v] of Object.entries(p.mapping)) if (v !== undefined) m[k as keyof typeof m] = v;
    opts.mapping = m;
  }
  if (p.format) opts.format = p.format;
  return opts;
}

/** The dataset file's absolute path, refused early when missing. What kind of file it is readDatasetFile checks. */
function checkDatasetFile(file: string): string {
  const abs = resolveFile(file);
  if (!fs.existsSync(abs)) throw new CliffscopeError('missing-file', `${abs} does not exist`, { file: abs });
  return abs;
}

export async function datasetPreview(p: ParamsOf<'dataset.preview'>): Promise<ResultOf<'dataset.preview'>> {
  const read = readDatasetFile(checkDatasetFile(p.file), readOptions(p));
  return {
    format: read.format,
    columns: read.columns,
    mapping: mappingOf(read.mapping),
    count: read.items.length,
    rows: read.items.slice(0, PREVIEW_ROWS).map(datasetItem),
    rejected: read.rejected.slice(0, REJECTED_SHOWN).map((r) => ({ line: r.line, reason: r.reason })),
    rejectedCount: read.rejected.length,
  };
}

export async function datasetImport(p: ParamsOf<'dataset.import'>): Promise<ResultOf<'dataset.import'>> {
  const file = checkDatasetFile(p.file);
  // A taken name is refused before the file is read or the project opened for writing.
  withReader(p.project, (s) => {
    if (s.datasets.find(p.name)) throw new CliffscopeError('bad-dataset', `${s.file} already has a dataset named "${p.name}"`, { file: s.file, hint: 'choose another name' });
  });
  const opts = readOptions(p);
  return withWriter(p.project, (s) => {
    const { dataset, rejected } = s.datasets.importFile(
      p.name,
      file,
      // null (keep a field unmapped) passes straight through to readDatasetFile, which accepts it.
      opts.mapping as Partial<ColumnMapping> | undefined,
      { format: opts.format, ...(opts.label !== undefined ? { label: opts.label } : {}), ...(p.maxMb !== undefined ? { maxBytes: p.maxMb * 1024 * 1024 } : {}) },
    );
    return { dataset: datasetSummary(dataset), rejected: rejected.slice(0, REJECTED_SHOWN).map((r) => ({ line: r.line, reason: r.reason })) };
  });
}

export async function datasetItems(p: ParamsOf<'dataset.items'>): Promise<ResultOf<'dataset.items'>> {
  const offset = p.offset ?? 0;
  return withReader(p.project, (s) => {
    const ds = s.datasets.require(p.datasetId);
    const search = p.search?.trim() || undefined;
    const items = s.datasets.items(ds.id, { offset, limit: p.limit ?? 100, search });
    return {
      total: search ? s.datasets.countItems(ds.id, search) : ds.itemCount,
      offset,
      items: items.map(datasetItem),
    };
  });
}
