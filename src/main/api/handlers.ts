/**
 * The handler table: one function per method of the contract (src/shared/contract.ts), answering from the engine.
 * Shared by all three faces — the Electron main process, the CLI and the serve server — so it must never import
 * `electron`. Handlers receive params already validated by `dispatch`, and their results are validated again there.
 */
import path from 'node:path';
import pkg from '../../../package.json' with { type: 'json' };
import type { Method, ParamsOf, ResultOf } from '../../shared/contract.js';
import { openCheckpoint } from '../engine/model/checkpoint.js';
import type { CallContext } from './context.js';
import { filesList } from './files-handler.js';
import { generateRun } from './generate-handler.js';
import { headsHead, headsInspect } from './head-handlers.js';
import { datasetImport, datasetItems, datasetPreview, modelAdd, projectDemo, projectExport, projectImport, projectOpen, projectRecent, projectRemember } from './project-handlers.js';
import { clusterStatus, collectClusterJob, listClusterJobs, planClusterJob, submitClusterJob } from './cluster/jobs.js';
import { mergeShards } from './cluster/sharded-runs.js';
import { runDelete, runReportHandler, runStart, runUpdate } from './run-handlers.js';
import {
  compareRuns,
  headsMap,
  probeGet,
  probeList,
  selectionExport,
  selectionList,
  sweepCellsHandler,
  tableCsv,
  traceAverage,
  traceGet,
  traceList,
  transcriptsList,
} from './view-handlers.js';

export type Handler<M extends Method> = (params: ParamsOf<M>, ctx: CallContext) => Promise<ResultOf<M>>;
export type HandlerTable = { readonly [M in Method]: Handler<M> };

async function appInfo(): Promise<ResultOf<'app.info'>> {
  // Loaded on first use: the native binding is heavy and the window should not wait for it.
  const [ort, { availableProviders }] = await Promise.all([
    import('onnxruntime-node'),
    import('../engine/runtime/providers.js'),
  ]);
  const providers: string[] = availableProviders();
  const listed = ort.listSupportedBackends().map((b) => b.name);
  return {
    name: pkg.name,
    version: pkg.version,
    platform: process.platform,
    arch: process.arch,
    versions: {
      node: process.versions.node,
      electron: process.versions.electron ?? null,
      chrome: process.versions.chrome ?? null,
    },
    onnxruntimeVersion: ort.env.versions.node ?? ort.env.versions.common,
    providers,
    unavailableProviders: listed.filter((name) => !providers.includes(name)),
  };
}

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

async function modelInspect({ dir }: ParamsOf<'model.inspect'>): Promise<ResultOf<'model.inspect'>> {
  const { config, tensors } = openCheckpoint(path.resolve(dir));
  const dtypes = new Set<string>();
  let parameters = 0;
  for (const [name, info] of tensors) {
    // A tied checkpoint may still store lm_head.weight; it is the embedding matrix, so count it once.
    if (config.tieWordEmbeddings && name === 'lm_head.weight') continue;
    dtypes.add(info.dtype);
    parameters += numel(info.shape);
  }
  return {
    architecture: config.architecture,
    family: config.family,
    layers: config.numLayers,
    heads: config.numHeads,
    kvHeads: config.numKvHeads,
    headDim: config.headDim,
    hidden: config.hiddenSize,
    vocab: config.vocabSize,
    dtypes: [...dtypes].sort(),
    parameters,
    tied: config.tieWordEmbeddings,
  };
}

export const handlers: HandlerTable = {
  'app.info': appInfo,
  'model.inspect': modelInspect,
  'generate.run': generateRun,
  'model.add': modelAdd,
  'project.open': projectOpen,
  'project.recent': projectRecent,
  'project.remember': projectRemember,
  'project.demo': projectDemo,
  'project.export': projectExport,
  'project.import': projectImport,
  'dataset.preview': datasetPreview,
  'dataset.import': datasetImport,
  'dataset.items': datasetItems,
  'run.start': runStart,
  'run.report': runReportHandler,
  'run.update': runUpdate,
  'run.delete': runDelete,
  'run.merge': mergeShards,
  'cluster.plan': planClusterJob,
  'cluster.submit': (p) => submitClusterJob(p),
  'cluster.status': (p) => clusterStatus(p),
  'cluster.collect': (p, ctx) => collectClusterJob(p, ctx),
  'cluster.list': listClusterJobs,
  'trace.list': traceList,
  'trace.get': traceGet,
  'trace.average': traceAverage,
  'heads.map': headsMap,
  'heads.head': headsHead,
  'heads.inspect': headsInspect,
  'sweep.cells': sweepCellsHandler,
  'transcripts.list': transcriptsList,
  'selection.list': selectionList,
  'selection.export': selectionExport,
  'probe.list': probeList,
  'probe.get': probeGet,
  'compare.runs': compareRuns,
  'table.csv': tableCsv,
  'files.list': filesList,
};
