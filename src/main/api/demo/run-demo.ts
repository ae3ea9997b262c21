/**
 * The built-in demo end to end: build (or reuse) the planted-cliff model, open (or create) the demo project, and run
 * probe → transcripts → trace → heads → ablation sweep → selection, each as a stored run, reusing finished runs when
 * the project is reopened. The report puts the ranked heads next to the planted ground truth.
 *
 * The demo model never refuses on its own (that is its cliff), so there are no refusal transcripts to train the
 * paper's answer-boundary probe on; the demo trains the prompt-only (Arditi-style) probe on harmful vs harmless
 * prompts instead, which reads the same refusal feature.
 */
import path from 'node:path';
import type { DemoReport } from '../../../shared/contract.js';
import { describeProvider, type Precision } from '../../../shared/values.js';
import { bestProbe } from '../../../shared/runs/probe.js';
import { type RunInput, type RunKind, type RunSummaryOf, specOf } from '../../../shared/runs/registry.js';
import type { TraceStats } from '../../../shared/runs/trace.js';
import { readDatasetFile } from '../../engine/datasets/import.js';
import { CliffscopeError } from '../../engine/errors.js';
import { defaultCacheRoot } from '../../engine/onnx/compile.js';
import { type PipelineEnv, readSummary } from '../../pipelines/common.js';
import { loadModel } from '../../engine/runtime/model.js';
import type { ProviderChoice } from '../../engine/runtime/providers.js';
import { openProject } from '../../store/open.js';
import type { ProjectStore } from '../../store/project-store.js';
import type { DatasetRow } from '../../store/types.js';
import { executeRun, planRun } from '../runs.js';
import { DEMO_PLANTED_HEADS, demoModelDir, writeDemoModel } from './planted-model.js';
import { demoResourcesDir } from './resources.js';

export type { DemoReport } from '../../../shared/contract.js';

/** Where the demo project lives unless one is named: `<cache>/demo/demo.cliffscope`. */
export function defaultDemoProject(cacheRoot = defaultCacheRoot()): string {
  return path.join(cacheRoot, 'demo', 'demo.cliffscope');
}

export const DEMO_RUN_NAME = 'demo';
const HARMLESS_RUN_NAME = `${DEMO_RUN_NAME}-harmless`;
/** The demo probe's name, which is also its probe run's name. */
export const DEMO_PROBE_NAME = 'demo-refusal';

export interface DemoOptions {
  projectFile: string;
  cacheRoot?: string;
  threads?: number;
  /** Execution provider (default auto) and compute type; `npm run gpu-check` runs the demo on a GPU against the CPU. */
  provider?: ProviderChoice;
  activations?: Precision['activations'];
  signal?: AbortSignal;
  onProgress?: (stage: string, done: number, total: number) => void;
  log?: (message: string) => void;
}

/** Import `name` from a demo resource (optionally only rows with `label`), unless the project already has it. */
function demoDataset(store: ProjectStore, name: string, file: string, label?: string): DatasetRow {
  const existing = store.datasets.find(name);
  if (existing) return existing;
  const read = readDatasetFile(file);
  const items = (label ? read.items.filter((i) => i.label === label) : read.items).map((item, idx) => ({ ...item, idx }));
  return store.datasets.add(name, { ...read, items }, file);
}

/** The latest finished demo run of a kind (and run name), if the project has one. */
function finished(store: ProjectStore, kind: RunKind, name: string): number | null {
  const runs = store.runs.list({ kind, status: 'done' }).filter((r) => r.name === name);
  return runs.length ? runs[runs.length - 1]!.id : null;
}

/** An unfinished demo run of a kind (and run name) to resume (interrupted, failed or cancelled), if any. */
function unfinished(store: ProjectStore, kind: RunKind, name: string): number | undefined {
  return store.runs.list({ kind }).filter((r) => r.name === name && r.status !== 'done' && r.status !== 'running').at(-1)?.id;
}

export async function runDemo(opts: DemoOptions): Promise<DemoReport> {
  const info = writeDemoModel(demoModelDir(opts.cacheRoot));
  const model = await loadModel(info.dir, {
    cacheRoot: opts.cacheRoot,
    threads: opts.threads ?? 1,
    provider: opts.provider,
    precision: opts.activations ? { activations: opts.activations } : undefined,
  });
  const store = openProject(path.resolve(opts.projectFile), { create: true });
  try {
    const resources = demoResourcesDir();
    const harmful = demoDataset(store, 'demo-harmful', path.join(resources, 'prompts.json'), 'harmful');
    const harmless = demoDataset(store, 'demo-harmless', path.join(resources, 'prompts.json'), 'harmless');
    const train = demoDataset(store, 'demo-safety-train', path.join(resources, 'safety-train.json'));

    /**
     * One stage as a stored run named `name`, through the same steps as run.start (defaults and ids resolved by the
     * kind's spec): a finished run of that name is reused, an unfinished one resumed with its stored settings.
     */
    const step = async <K extends RunKind>(kind: K, stage: string, input: RunInput<K>, name: string = DEMO_RUN_NAME): Promise<{ id: number; summary: RunSummaryOf<K> }> => {
      let id = finished(store, kind, name);
      if (id !== null) {
        opts.log?.(`${stage}: reusing run #${id}`);
      } else {
        const resume = unfinished(store, kind, name);
        const config = planRun(store, resume !== undefined ? { kind, resume, name } : { kind, config: input, name });
        const env: PipelineEnv = { store, model, signal: opts.signal, log: opts.log, onProgress: (done, total) => opts.onProgress?.(stage, done, total) };
        id = await executeRun(env, kind, config, { resume, name });
        if (opts.signal?.aborted) throw new CliffscopeError('cancelled', `the demo was cancelled during ${stage}; run it again to continue`);
      }
      const summary = readSummary(store, specOf(kind), id);
      if (!summary) throw new CliffscopeError('bad-project', `demo run #${id} (${stage}) finished without a summary`, { file: store.file });
      return { id, summary };
    };

    // 1. Probe: harmful vs harmless prompts at the last prompt token, on the final-normed hidden state.
    const L = model.config.numLayers;
    const probeRun = await step(
      'probe',
      'probe',
      {
        name: DEMO_PROBE_NAME,
        positive: { kind: 'dataset', datasetId: harmful.id, chat: true },
        negative: { kind: 'dataset', datasetId: harmless.id, chat: true },
        positionRule: 'last-prompt-token',
        residIndices: [L + 1],
        labelRule: 'all',
        // The default fit (L-BFGS to convergence) is calibrated on the demo's small, separable sets as it is.
        train: {},
      },
      DEMO_PROBE_NAME,
    );
    const probeId = probeRun.summary.bestProbeId;
    const best = bestProbe(probeRun.summary);

    // 2. The model's own transcripts for both prompt sets; harmless prompts in their own run, to trace and compare.
    const transcripts = { chat: true, maxNewTokens: 40, seed: 0, batchSize: 16 };
    const generateRun = await step('transcripts', 'transcripts', { datasetId: harmful.id, ...transcripts });
    const harmlessRun = await step('transcripts', 'transcripts (harmless)', { datasetId: harmless.id, ...transcripts }, HARMLESS_RUN_NAME);

    // 3. Trace the transcripts: the plateau through thinking and the cliff at </think>.
    const traceRun = await step('trace', 'trace', { probeId, source: { kind: 'run', runId: generateRun.id } });
    const harmlessTrace = await step('trace', 'trace (harmless)', { probeId, source: { kind: 'run', runId: harmlessRun.id } }, HARMLESS_RUN_NAME);

    // 4. Heads: direct attribution at the answer boundary, averaged over the harmful transcripts.
    const headsRun = await step('heads', 'heads', { probeId, source: { kind: 'run', runId: generateRun.id } });

    // 5. Ablation sweep: top-k heads × γ against random heads, and the planted heads themselves.
    const ablateRun = await step('ablate', 'ablation sweep', {
      headsRunId: headsRun.id,
      probeId,
      harmfulDatasetId: harmful.id,
      harmlessDatasetId: harmless.id,
      fractions: [0, 0.03, 0.1],
      gammas: [0, 0.5],
      randomSeed: 1,
      headSets: [{ name: 'planted', heads: [...DEMO_PLANTED_HEADS] }],
      maxNewTokens: 40,
      batchSize: 32,
    });

    // 6. Cliff-as-a-Judge on the demo safety training set.
    const selectRun = await step('select', 'selection', { datasetId: train.id, probeId, fraction: 0.25 });

    const ranked = headsRun.summary.suppression.slice(0, 6);
    const plantedKeys = new Set(DEMO_PLANTED_HEADS.map((h) => `${h.layer}:${h.head}`));
    return {
      projectFile: store.file,
      modelDir: info.dir,
      provider: model.session.provider,
      providerNotes: [...model.session.providerNotes],
      runs: { probe: probeRun.id, transcripts: generateRun.id, transcriptsHarmless: harmlessRun.id, trace: traceRun.id, traceHarmless: harmlessTrace.id, heads: headsRun.id, ablate: ablateRun.id, select: selectRun.id },
      probe: { id: probeId, residIndex: probeRun.summary.bestResidIndex, valAccuracy: best?.valAccuracy ?? null, valAuroc: best?.valAuroc ?? null },
      trace: { harmful: pickTrace(traceRun.summary), harmless: pickTrace(harmlessTrace.summary) },
      heads: {
        ranked,
        planted: [...DEMO_PLANTED_HEADS],
        topMatchesPlanted: ranked.slice(0, DEMO_PLANTED_HEADS.length).every((h) => plantedKeys.has(`${h.layer}:${h.head}`)),
      },
      ablation: ablateRun.summary.cells.map(({ key, control, k, gamma, asr, overRefusal, meanFinal }) => ({ key, control, k, gamma, asr, overRefusal, meanFinal })),
      selection: { selected: selectRun.summary.selected, total: selectRun.summary.total, threshold: selectRun.summary.threshold },
    };
  } finally {
    store.close();
    await model.session.release();
  }
}

function pickTrace(s: TraceStats): DemoReport['trace']['harmful'] {
  return { transcripts: s.transcripts, meanPlateau: s.meanPlateau, meanFinal: s.meanFinal, meanMs: s.meanMs };
}

const fmt = (v: number | null, d = 3) => (v === null ? '—' : v.toFixed(d));
const pct = (v: number | null) => (v === null ? '—' : `${(v * 100).toFixed(0)}%`);

export function formatDemoReport(r: DemoReport): string {
  const lines = [
    `Cliffscope demo — project ${r.projectFile}`,
    `  model: the planted-cliff demo (${r.modelDir}) on ${describeProvider(r.provider, r.providerNotes)}`,
    '',
    `probe    #${r.probe.id} on residual-stack entry ${r.probe.residIndex} (the final norm): validation accuracy ${pct(r.probe.valAccuracy)}, AUROC ${fmt(r.probe.valAuroc)}`,
    `trace    harmful:  plateau I ${fmt(r.trace.harmful.meanPlateau)}  final I' ${fmt(r.trace.harmful.meanFinal)}  MS ${fmt(r.trace.harmful.meanMs)}`,
    `         harmless: plateau I ${fmt(r.trace.harmless.meanPlateau)}  final I' ${fmt(r.trace.harmless.meanFinal)}  MS ${fmt(r.trace.harmless.meanMs)}`,
    `heads    most negative at the cliff: ${r.heads.ranked.slice(0, 5).map((h) => `L${h.layer}H${h.head} (${h.score.toFixed(3)})`).join(', ')}`,
    `         planted: ${r.heads.planted.map((h) => `L${h.layer}H${h.head}`).join(', ')} — top ${r.heads.planted.length} ${r.heads.topMatchesPlanted ? 'match exactly' : 'DO NOT match'}`,
    'ablation (ASR = harmful prompts answered; over-refusal = harmless prompts refused)',
    ...r.ablation.map((c) => `         ${c.key.padEnd(24)} k=${String(c.k).padStart(2)} γ=${String(c.gamma).padEnd(4)} ASR ${pct(c.asr).padStart(4)}  over-refusal ${pct(c.overRefusal).padStart(4)}  mean I' ${fmt(c.meanFinal)}`),
    `select   Cliff-as-a-Judge kept ${r.selection.selected} of ${r.selection.total} training samples (MS ≥ ${fmt(r.selection.threshold)})`,
    '',
    `runs: ${Object.entries(r.runs).map(([k, v]) => `${k} #${v}`).join(', ')} (cliffscope report ${r.projectFile} RUN)`,
  ];
  return lines.join('\n');
}
