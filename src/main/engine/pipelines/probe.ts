/**
 * `probe` runs (docs/METHOD.md §1): features at a position rule from refusal and non-refusal transcripts, one
 * logistic probe per requested layer, each stored as a versioned probe with its metrics and provenance. The paper's
 * sample recipe is the default: answer-boundary features, positives = harmful prompts the model refused (keyword in
 * the first 32 characters of the answer), negatives = answers to harmless prompts, the final-normed hidden state.
 * The fit itself defaults to the converged L-BFGS probe (analysis/probe.ts); `train.preset: 'paper-adam'` gives the
 * paper's Adam loop.
 */
import { probeSampleCheck, type ProbeLabelRule } from '../analysis/judges.js';
import { sweepLayers, trainProbe, type ProbeCalibration, type ProbeTrainOptions, type TrainedProbe } from '../analysis/probe.js';
import { CliffscopeError } from '../errors.js';
import { teacherForce } from '../runtime/teacher-force.js';
import type { JsonObject } from '../store/types.js';
import { beginRun, commitSummary, decodeFloats, encodeFloats, finishing, type PipelineEnv, readSummary, requireSource, requireTokenizer } from './common.js';
import { type PositionRule, positionOf, readSource, type SourceTranscript, type TranscriptSource } from './sources.js';

/** Which answers count as refusals when labelling positives (analysis/judges.ts). */
export type LabelRule = ProbeLabelRule;

export interface ProbeRunConfig {
  name: string;
  positive: TranscriptSource;
  negative: TranscriptSource;
  positionRule: PositionRule;
  /** Residual-stack entries (0 = embeddings, i+1 = after block i, L+1 = final norm); default [L+1]. */
  layers: number[];
  /** Positives are kept only when the label rule calls their answer a refusal ('all' keeps every one). */
  labelRule: LabelRule;
  train: Partial<ProbeTrainOptions>;
}

export interface ProbeRunResult {
  runId: number;
  /** Probe id per layer, and the best layer's probe. */
  probes: { layer: number; probeId: number; valAccuracy: number; valAuroc: number; calibration: ProbeCalibration | null }[];
  bestProbeId: number;
}

export async function runProbeTraining(env: PipelineEnv, config: ProbeRunConfig, opts: { resume?: number } = {}): Promise<ProbeRunResult> {
  const { store, model } = env;
  const tok = requireTokenizer(model);
  const L = model.config.numLayers;
  const handle = beginRun(env, { kind: 'probe', name: config.name, config: config as unknown as JsonObject }, opts.resume, (c) => {
    const cfg = c as unknown as ProbeRunConfig;
    for (const l of cfg.layers) {
      if (!Number.isInteger(l) || l < 0 || l > L + 1) throw new CliffscopeError('bad-argument', `probe layer ${l} is outside 0..${L + 1}`);
    }
    requireSource(env, cfg.positive);
    requireSource(env, cfg.negative);
  });
  const cfg = handle.config as unknown as ProbeRunConfig;
  const layers = cfg.layers.length ? cfg.layers : [L + 1];

  return finishing(env, handle.run, async () => {
    // Samples: positives filtered to refusals by the label rule, negatives as they are (the paper-code rule also
    // drops both sides' transcripts with 10 characters of thinking or fewer).
    const skipped = { noPosition: 0, notRefusal: 0, shortThinking: 0 };
    const take = (source: TranscriptSource, label: 0 | 1) =>
      readSource(store, tok, source).flatMap((t) => {
        const position = positionOf(t, cfg.positionRule);
        if (position === null) {
          skipped.noPosition++;
          return [];
        }
        const check = probeSampleCheck(cfg.labelRule, label, t);
        if (check !== 'ok') {
          skipped[check === 'not-refusal' ? 'notRefusal' : 'shortThinking']++;
          return [];
        }
        return [{ t, position, label, key: `${label ? 'pos' : 'neg'}:${t.key}` }];
      });
    const samples = [...take(cfg.positive, 1), ...take(cfg.negative, 0)];
    env.log?.(
      `${samples.length} samples (${skipped.noPosition} without a ${cfg.positionRule}, ${skipped.notRefusal} positives that did not refuse` +
        `${skipped.shortThinking ? `, ${skipped.shortThinking} with ≤ 10 characters of thinking` : ''})`,
    );

    // Features: the residual at the rule's position for every requested layer; only the prefix up to it is run.
    const total = samples.length;
    let finished = 0;
    for (const s of samples) {
      if (env.signal?.aborted) return emptyResult(handle.run.id);
      if (handle.done.has(s.key)) {
        env.onProgress?.(++finished, total, 'features');
        continue;
      }
      const out = await teacherForce(model.session, s.t.ids.slice(0, s.position + 1), { residLayers: layers, positions: [s.position] });
      const features: Record<string, string> = {};
      for (const l of layers) features[String(l)] = encodeFloats(out.resid.get(l)!);
      store.commitItem(handle.run.id, s.key, () => ({ label: s.label, features }));
      env.onProgress?.(++finished, total, 'features');
    }
    return trainFromFeatures(env, handle.run.id, cfg, layers, samples.map((s) => s.t), skipped);
  });
}

function emptyResult(runId: number): ProbeRunResult {
  return { runId, probes: [], bestProbeId: -1 };
}

/** Train on the committed features (also what a resumed run does once every feature is in). */
function trainFromFeatures(
  env: PipelineEnv,
  runId: number,
  cfg: ProbeRunConfig,
  layers: number[],
  transcripts: SourceTranscript[],
  skipped: { noPosition: number; notRefusal: number; shortThinking: number },
): ProbeRunResult {
  const { store, model } = env;
  const d = model.config.hiddenSize;
  const items = store.runItems(runId).filter((i) => i.status === 'done' && i.key !== 'summary');
  const labels = Uint8Array.from(items.map((i) => (i.payload as { label: number }).label));
  const featuresByLayer = new Map<number, Float32Array>();
  for (const l of layers) {
    const m = new Float32Array(items.length * d);
    items.forEach((item, r) => m.set(decodeFloats((item.payload as { features: Record<string, string> }).features[String(l)]!), r * d));
    featuresByLayer.set(l, m);
  }
  const options = cfg.train;
  const trained: { layer: number; probe: TrainedProbe }[] =
    layers.length === 1
      ? [{ layer: layers[0]!, probe: trainProbe(featuresByLayer.get(layers[0]!)!, labels, d, options) }]
      : sweepLayers(featuresByLayer, labels, d, options).layers.map((e) => ({ layer: e.layer, probe: e.probe }));
  const modelRow = store.findModelsByHash(model.compiled.modelHash)[0]!;
  const probes = trained.map(({ layer, probe }) => {
    const row = store.addProbe({
      modelId: modelRow.id,
      runId,
      name: layers.length === 1 ? cfg.name : `${cfg.name}/layer-${layer}`,
      layer,
      positionRule: cfg.positionRule,
      weights: probe.weights,
      bias: probe.bias,
      metrics: probe.metrics as unknown as JsonObject,
      provenance: {
        run: runId,
        modelHash: model.compiled.modelHash,
        positive: cfg.positive as unknown as JsonObject,
        negative: cfg.negative as unknown as JsonObject,
        labelRule: cfg.labelRule,
        options: probe.options as unknown as JsonObject,
        samples: items.length,
      },
    });
    return { layer, probeId: row.id, valAccuracy: probe.metrics.valAccuracy, valAuroc: probe.metrics.valAuroc, calibration: probe.metrics.calibration ?? null };
  });
  // What was fitted and why (the same for every layer; convergence per layer is in each probe's metrics).
  const training = trained[0]!.probe.metrics.training!;
  const unconverged = trained.filter((t) => t.probe.metrics.training?.converged === false).map((t) => t.layer);
  // Best: validation accuracy, then AUROC, then the deeper layer (as sweepLayers ranks them).
  const best = [...probes].sort((a, b) => b.valAccuracy - a.valAccuracy || b.valAuroc - a.valAuroc || b.layer - a.layer)[0]!;
  commitSummary(env, runId, {
    samples: items.length,
    positives: labels.reduce((n, v) => n + v, 0),
    negatives: labels.length - labels.reduce((n, v) => n + v, 0),
    skippedNoPosition: skipped.noPosition,
    skippedNotRefusal: skipped.notRefusal,
    skippedShortThinking: skipped.shortThinking,
    transcripts: transcripts.length,
    training: { preset: training.preset, optimizer: training.optimizer, reason: training.reason, kept: training.kept, unconvergedLayers: unconverged },
    probes: probes as unknown as JsonObject[],
    bestProbeId: best.probeId,
    bestLayer: best.layer,
  });
  return { runId, probes, bestProbeId: best.probeId };
}

/** The result of a finished probe run, from its stored summary. */
export function probeRunResult(env: PipelineEnv, runId: number): ProbeRunResult | null {
  const s = readSummary(env.store, runId);
  if (!s) return null;
  return { runId, probes: s.probes as unknown as ProbeRunResult['probes'], bestProbeId: s.bestProbeId as number };
}
