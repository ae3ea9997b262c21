/**
 * `probe` runs (docs/METHOD.md §1): features at a position rule from refusal and non-refusal transcripts, one
 * logistic probe per requested layer, each stored as a versioned probe with its metrics and provenance. The paper's
 * sample recipe is the default: answer-boundary features, positives = harmful prompts the model refused (keyword in
 * the first 32 characters of the answer), negatives = answers to harmless prompts, the final-normed hidden state.
 * The fit itself defaults to the converged L-BFGS probe (analysis/probe.ts); `train.preset: 'paper-adam'` gives the
 * paper's Adam loop.
 */
import { probeRun, type ProbeRunConfig } from '../../shared/runs/probe.js';
import type { TranscriptSource } from '../../shared/values.js';
import { probeSampleCheck } from '../engine/analysis/judges.js';
import { sweepLayers, trainProbe, type ProbeCalibration, type TrainedProbe } from '../engine/analysis/probe.js';
import { CliffscopeError } from '../engine/errors.js';
import { teacherForce } from '../engine/runtime/teacher-force.js';
import { beginRun, commitSummary, finishing, type PipelineEnv, requireSource, requireTokenizer, type RunOptions } from './common.js';
import { positionOf, readSource, type SourceTranscript } from './sources.js';

export type { LabelRule, ProbeRunConfig } from '../../shared/runs/probe.js';

export interface ProbeRunResult {
  runId: number;
  /** Probe id per residual-stack index, and the best one's probe. */
  probes: { residIndex: number; probeId: number; valAccuracy: number; valAuroc: number; calibration: ProbeCalibration | null }[];
  bestProbeId: number;
}

/** A probe run trains and names its probe after the run: `config.name` (the run's name when resuming). */
export async function runProbeTraining(env: PipelineEnv, config: ProbeRunConfig, opts: Pick<RunOptions, 'resume'> = {}): Promise<ProbeRunResult> {
  const { store, model } = env;
  const tok = requireTokenizer(model);
  const L = model.config.numLayers;
  const handle = beginRun(env, probeRun, config, { resume: opts.resume, name: config.name }, (cfg) => {
    for (const r of cfg.residIndices) {
      if (!Number.isInteger(r) || r < 0 || r > L + 1) throw new CliffscopeError('bad-argument', `residual-stack index ${r} is outside 0..${L + 1} (0 = embeddings, ${L + 1} = the final norm)`);
    }
    requireSource(env, cfg.positive);
    requireSource(env, cfg.negative);
  });
  const cfg = handle.config;
  const residIndices = cfg.residIndices.length ? cfg.residIndices : [L + 1];

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
      const out = await teacherForce(model.session, s.t.ids.slice(0, s.position + 1), { residLayers: residIndices, positions: [s.position] });
      const features: Record<string, string> = {};
      for (const r of residIndices) features[String(r)] = encodeFloats(out.resid.get(r)!);
      store.runs.commitItem(handle.run.id, s.key, () => ({ label: s.label, features }));
      env.onProgress?.(++finished, total, 'features');
    }
    return trainFromFeatures(env, handle.run.id, cfg, residIndices, samples.map((s) => s.t), skipped);
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
  residIndices: number[],
  transcripts: SourceTranscript[],
  skipped: { noPosition: number; notRefusal: number; shortThinking: number },
): ProbeRunResult {
  const { store, model } = env;
  const d = model.config.hiddenSize;
  const items = store.runs.items(runId).filter((i) => i.status === 'done' && i.key !== 'summary');
  const labels = Uint8Array.from(items.map((i) => (i.payload as { label: number }).label));
  const featuresByLayer = new Map<number, Float32Array>();
  for (const l of residIndices) {
    const m = new Float32Array(items.length * d);
    items.forEach((item, r) => m.set(decodeFloats((item.payload as { features: Record<string, string> }).features[String(l)]!), r * d));
    featuresByLayer.set(l, m);
  }
  const trained: { residIndex: number; probe: TrainedProbe }[] =
    residIndices.length === 1
      ? [{ residIndex: residIndices[0]!, probe: trainProbe(featuresByLayer.get(residIndices[0]!)!, labels, d, cfg.train) }]
      : sweepLayers(featuresByLayer, labels, d, cfg.train).layers.map((e) => ({ residIndex: e.layer, probe: e.probe }));
  const modelRow = store.models.findByHash(model.compiled.modelHash)[0]!;
  const probes = trained.map(({ residIndex, probe }) => {
    const row = store.probes.add({
      modelId: modelRow.id,
      runId,
      name: residIndices.length === 1 ? cfg.name : `${cfg.name}/resid-${residIndex}`,
      residIndex,
      positionRule: cfg.positionRule,
      weights: probe.weights,
      bias: probe.bias,
      metrics: { ...probe.metrics },
      provenance: {
        run: runId,
        modelHash: model.compiled.modelHash,
        positive: cfg.positive,
        negative: cfg.negative,
        labelRule: cfg.labelRule,
        options: { ...probe.options },
        samples: items.length,
      },
    });
    return { residIndex, probeId: row.id, valAccuracy: probe.metrics.valAccuracy, valAuroc: probe.metrics.valAuroc, calibration: probe.metrics.calibration ?? null };
  });
  // What was fitted and why (the same for every entry; convergence per entry is in each probe's metrics).
  const training = trained[0]!.probe.metrics.training!;
  const unconverged = trained.filter((t) => t.probe.metrics.training?.converged === false).map((t) => t.residIndex);
  // Best: validation accuracy, then AUROC, then the deeper entry (as sweepLayers ranks them).
  const best = [...probes].sort((a, b) => b.valAccuracy - a.valAccuracy || b.valAuroc - a.valAuroc || b.residIndex - a.residIndex)[0]!;
  commitSummary(env.store, probeRun, runId, {
    samples: items.length,
    positives: labels.reduce((n, v) => n + v, 0),
    negatives: labels.length - labels.reduce((n, v) => n + v, 0),
    skippedNoPosition: skipped.noPosition,
    skippedNotRefusal: skipped.notRefusal,
    skippedShortThinking: skipped.shortThinking,
    transcripts: transcripts.length,
    training: { preset: training.preset, optimizer: training.optimizer, reason: training.reason, kept: training.kept, unconvergedResidIndices: unconverged },
    probes,
    bestProbeId: best.probeId,
    bestResidIndex: best.residIndex,
  });
  return { runId, probes, bestProbeId: best.probeId };
}

/** Float32 vectors inside JSON payloads (the features each item commits, read back to train on resume). */
function encodeFloats(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}
function decodeFloats(s: string): Float32Array {
  const b = Buffer.from(s, 'base64');
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}
