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
import { readDatasetFile } from '../datasets/import.js';
import { CliffscopeError } from '../errors.js';
import type { AblateRunConfig } from '../pipelines/ablate.js';
import { runAblation } from '../pipelines/ablate.js';
import type { PipelineEnv } from '../pipelines/common.js';
import { readSummary } from '../pipelines/common.js';
import { runHeads } from '../pipelines/heads.js';
import { runProbeTraining } from '../pipelines/probe.js';
import { runSelect } from '../pipelines/select.js';
import { runTrace } from '../pipelines/trace.js';
import { BASELINE_SETTING, runGenerate } from '../pipelines/transcripts.js';
import { loadModel } from '../runtime/model.js';
import { openProject } from '../store/open.js';
import type { ProjectStore } from '../store/project-store.js';
import type { DatasetRow, JsonObject, RunKind } from '../store/types.js';
import { DEMO_PLANTED_HEADS, demoModelDir, writeDemoModel } from './planted-model.js';
import { demoResourcesDir } from './resources.js';

export const DEMO_RUN_NAME = 'demo';
const HARMLESS_RUN_NAME = `${DEMO_RUN_NAME}-harmless`;
/** The demo probe's name, which is also its probe run's name. */
export const DEMO_PROBE_NAME = 'demo-refusal';

export interface DemoOptions {
  projectFile: string;
  cacheRoot?: string;
  threads?: number;
  signal?: AbortSignal;
  onProgress?: (stage: string, done: number, total: number) => void;
  log?: (message: string) => void;
}

export interface DemoReport {
  projectFile: string;
  modelDir: string;
  runs: Record<string, number>;
  probe: { id: number; layer: number; valAccuracy: number; valAuroc: number };
  trace: { harmful: JsonObject; harmless: JsonObject };
  heads: { ranked: { layer: number; head: number; score: number }[]; planted: { layer: number; head: number }[]; topMatchesPlanted: boolean };
  ablation: { key: string; control: string; k: number; gamma: number; asr: number | null; overRefusal: number | null; meanFinal: number | null }[];
  selection: { selected: number; total: number; threshold: number | null };
}

/** Import `name` from a demo resource (optionally only rows with `label`), unless the project already has it. */
function demoDataset(store: ProjectStore, name: string, file: string, label?: string): DatasetRow {
  const existing = store.findDataset(name);
  if (existing) return existing;
  const read = readDatasetFile(file);
  const items = (label ? read.items.filter((i) => i.label === label) : read.items).map((item, idx) => ({ ...item, idx }));
  return store.addDataset(name, { ...read, items }, file);
}

/** The latest finished demo run of a kind (and run name), if the project has one. */
function finished(store: ProjectStore, kind: RunKind, name: string): number | null {
  const runs = store.listRuns({ kind, status: 'done' }).filter((r) => r.name === name);
  return runs.length ? runs[runs.length - 1]!.id : null;
}

/** An unfinished demo run of a kind (and run name) to resume (interrupted, failed or cancelled), if any. */
function unfinished(store: ProjectStore, kind: RunKind, name: string): number | undefined {
  return store.listRuns({ kind }).filter((r) => r.name === name && r.status !== 'done' && r.status !== 'running').at(-1)?.id;
}

export async function runDemo(opts: DemoOptions): Promise<DemoReport> {
  const info = writeDemoModel(demoModelDir(opts.cacheRoot));
  const model = await loadModel(info.dir, { cacheRoot: opts.cacheRoot, threads: opts.threads ?? 1 });
  const store = openProject(path.resolve(opts.projectFile), { create: true });
  try {
    const resources = demoResourcesDir();
    const harmful = demoDataset(store, 'demo-harmful', path.join(resources, 'prompts.json'), 'harmful');
    const harmless = demoDataset(store, 'demo-harmless', path.join(resources, 'prompts.json'), 'harmless');
    const train = demoDataset(store, 'demo-safety-train', path.join(resources, 'safety-train.json'));

    const stageEnv = (stage: string): PipelineEnv => ({
      store,
      model,
      signal: opts.signal,
      log: opts.log,
      onProgress: (done, total) => opts.onProgress?.(stage, done, total),
    });
    // `name` is the run's stored name: DEMO_RUN_NAME, or the probe's name for the probe run (runProbeTraining names
    // its run after the probe), or `demo-harmless` for the harmless-prompt runs.
    const step = async (kind: RunKind, stage: string, run: (env: PipelineEnv, resume?: number) => Promise<number>, name: string = DEMO_RUN_NAME) => {
      const done = finished(store, kind, name);
      if (done !== null) {
        opts.log?.(`${stage}: reusing run #${done}`);
        return done;
      }
      const id = await run(stageEnv(stage), unfinished(store, kind, name));
      if (opts.signal?.aborted) throw new CliffscopeError('cancelled', `the demo was cancelled during ${stage}; run it again to continue`);
      return id;
    };

    // 1. Probe: harmful vs harmless prompts at the last prompt token, on the final-normed hidden state.
    const L = model.config.numLayers;
    const probeRun = await step('probe', 'probe', async (env, resume) =>
      (
        await runProbeTraining(
          env,
          {
            name: DEMO_PROBE_NAME,
            positive: { kind: 'dataset', datasetId: harmful.id, chat: true },
            negative: { kind: 'dataset', datasetId: harmless.id, chat: true },
            positionRule: 'last-prompt-token',
            layers: [L + 1],
            labelRule: 'all',
            // The default fit (L-BFGS to convergence) is calibrated on the demo's small, separable sets as it is.
            train: {},
          },
          { resume },
        )
      ).runId,
      DEMO_PROBE_NAME,
    );
    const probeSummary = readSummary(store, probeRun)!;
    const probeId = probeSummary.bestProbeId as number;
    const probe = store.getProbe(probeId)!;

    // 2. The model's own transcripts for both prompt sets.
    const generateRun = await step('generate', 'transcripts', async (env, resume) => {
      return runGenerate(env, { datasetId: harmful.id, chat: true, maxNewTokens: 40, seed: 0, batchSize: 16, settings: [BASELINE_SETTING] }, { resume, name: DEMO_RUN_NAME });
    });
    // Harmless prompts go into their own generate run so each set can be traced and compared.
    const harmlessRun = await step(
      'generate',
      'transcripts (harmless)',
      (env, resume) => runGenerate(env, { datasetId: harmless.id, chat: true, maxNewTokens: 40, seed: 0, batchSize: 16, settings: [BASELINE_SETTING] }, { resume, name: HARMLESS_RUN_NAME }),
      HARMLESS_RUN_NAME,
    );

    // 3. Trace the harmful transcripts: the plateau through thinking and the cliff at </think>.
    const traceRun = await step('trace', 'trace', (env, resume) => runTrace(env, { probeId, extraProbeIds: [], source: { kind: 'run', runId: generateRun }, options: {} }, { resume, name: DEMO_RUN_NAME }));
    const harmlessTrace = await step(
      'trace',
      'trace (harmless)',
      (env, resume) => runTrace(env, { probeId, extraProbeIds: [], source: { kind: 'run', runId: harmlessRun }, options: {} }, { resume, name: HARMLESS_RUN_NAME }),
      HARMLESS_RUN_NAME,
    );

    // 4. Heads: direct attribution at the answer boundary, averaged over the harmful transcripts.
    const headsRun = await step('heads', 'heads', (env, resume) => runHeads(env, { probeId, source: { kind: 'run', runId: generateRun }, variant: 'code', perToken: false }, { resume, name: DEMO_RUN_NAME }));

    // 5. Ablation sweep: top-k heads × γ against random heads, and the planted heads themselves.
    const sweep: AblateRunConfig = {
      headsRunId: headsRun,
      probeId,
      harmfulDatasetId: harmful.id,
      harmlessDatasetId: harmless.id,
      fractions: [0, 0.03, 0.1],
      gammas: [0, 0.5],
      randomControl: true,
      randomSeed: 1,
      headSets: [{ name: 'planted', heads: [...DEMO_PLANTED_HEADS] }],
      judge: 'jbb',
      chat: true,
      maxNewTokens: 40,
      batchSize: 32,
      seed: 0,
    };
    const ablateRun = await step('ablate', 'ablation sweep', (env, resume) => runAblation(env, sweep, { resume, name: DEMO_RUN_NAME }));

    // 6. Cliff-as-a-Judge on the demo safety training set.
    const selectRun = await step('select', 'selection', async (env, resume) => (await runSelect(env, { datasetId: train.id, probeId, chat: true, variant: 'top-ms', fraction: 0.25, seed: 0 }, { resume, name: DEMO_RUN_NAME })).runId);

    const heads = readSummary(store, headsRun)!;
    const ranked = (heads.suppression as { layer: number; head: number; score: number }[]).slice(0, 6);
    const plantedKeys = new Set(DEMO_PLANTED_HEADS.map((h) => `${h.layer}:${h.head}`));
    const traceSummary = readSummary(store, traceRun)!;
    const harmlessSummary = readSummary(store, harmlessTrace)!;
    const sel = readSummary(store, selectRun)!;
    const bestProbe = (probeSummary.probes as JsonObject[]).find((p) => p.probeId === probeId)!;
    return {
      projectFile: store.file,
      modelDir: info.dir,
      runs: { probe: probeRun, generate: generateRun, generateHarmless: harmlessRun, trace: traceRun, traceHarmless: harmlessTrace, heads: headsRun, ablate: ablateRun, select: selectRun },
      probe: { id: probeId, layer: probe.layer, valAccuracy: bestProbe.valAccuracy as number, valAuroc: bestProbe.valAuroc as number },
      trace: { harmful: pickTrace(traceSummary), harmless: pickTrace(harmlessSummary) },
      heads: {
        ranked,
        planted: [...DEMO_PLANTED_HEADS],
        topMatchesPlanted: ranked.slice(0, DEMO_PLANTED_HEADS.length).every((h) => plantedKeys.has(`${h.layer}:${h.head}`)),
      },
      ablation: (readSummary(store, ablateRun)!.cells as JsonObject[]).map((c) => ({
        key: c.key as string,
        control: c.control as string,
        k: c.k as number,
        gamma: c.gamma as number,
        asr: (c.asr as number | null) ?? null,
        overRefusal: (c.overRefusal as number | null) ?? null,
        meanFinal: (c.meanFinal as number | null) ?? null,
      })),
      selection: { selected: sel.selected as number, total: sel.total as number, threshold: (sel.threshold as number | null) ?? null },
    };
  } finally {
    store.close();
    await model.session.release();
  }
}

function pickTrace(s: JsonObject): JsonObject {
  return { transcripts: s.transcripts ?? null, meanPlateau: s.meanPlateau ?? null, meanFinal: s.meanFinal ?? null, meanMs: s.meanMs ?? null };
}

const fmt = (v: number | null, d = 3) => (v === null ? '—' : v.toFixed(d));
const pct = (v: number | null) => (v === null ? '—' : `${(v * 100).toFixed(0)}%`);

export function formatDemoReport(r: DemoReport): string {
  const lines = [
    `Cliffscope demo — project ${r.projectFile}`,
    `  model: the planted-cliff demo (${r.modelDir})`,
    '',
    `probe    #${r.probe.id} on layer ${r.probe.layer} (final norm): validation accuracy ${pct(r.probe.valAccuracy)}, AUROC ${fmt(r.probe.valAuroc)}`,
    `trace    harmful:  plateau I ${fmt(r.trace.harmful.meanPlateau as number | null)}  final I' ${fmt(r.trace.harmful.meanFinal as number | null)}  MS ${fmt(r.trace.harmful.meanMs as number | null)}`,
    `         harmless: plateau I ${fmt(r.trace.harmless.meanPlateau as number | null)}  final I' ${fmt(r.trace.harmless.meanFinal as number | null)}  MS ${fmt(r.trace.harmless.meanMs as number | null)}`,
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
