/**
 * A head's page: `heads.head` (read-only: the head's average, rank and score in every transcript of a heads run) and
 * `heads.inspect` (a job: the head on one transcript, teacher-forced again with the run's probe and variant — its
 * write along the probe at every token, docs/METHOD.md §3).
 */
import type { ParamsOf, ResultOf } from '../../shared/contract.js';
import { summaryOf } from '../../shared/contract.js';
import { buildHeadReadouts, headScoreOverTokens, rmsOf, type AttributionVariant } from '../engine/analysis/heads.js';
import { CliffscopeError } from '../engine/errors.js';
import { readTensorAsFloat32 } from '../engine/model/safetensors.js';
import { teacherForce } from '../engine/runtime/teacher-force.js';
import { readTranscript } from '../engine/runtime/transcript.js';
import type { ProjectStore } from '../store/project-store.js';
import type { CallContext } from './context.js';
import { acquireModel } from './model-pool.js';
import { displayTokens, withReader } from './projects.js';
import { runReport } from './runs.js';
import { int, scores, truncate } from './shapes.js';

const PROMPT_CHARS = 300;

/** The heads run's averaged map and shape; a clear error for a head outside it. */
function headOfRun(s: ProjectStore, runId: number, layer: number, head: number) {
  const run = s.runs.require(runId, 'heads');
  const avg = s.headMaps.list(runId, { transcriptId: null })[0] ?? s.headMaps.list(runId)[0];
  if (!avg) throw new CliffscopeError('bad-argument', `heads run #${runId} has no head maps yet (it is ${run.status})`, { file: s.file, hint: 'resume or finish the run' });
  if (layer >= avg.layers || head >= avg.heads) {
    throw new CliffscopeError('bad-argument', `L${layer}H${head} is outside heads run #${runId}'s ${avg.layers} layers × ${avg.heads} heads`, {
      file: s.file,
      hint: 'a heads run scores only the layers upstream of its probe',
    });
  }
  return { run, avg };
}

export async function headsHead({ project, runId, layer, head }: ParamsOf<'heads.head'>): Promise<ResultOf<'heads.head'>> {
  return withReader(project, (s) => {
    const { run, avg } = headOfRun(s, runId, layer, head);
    const index = layer * avg.heads + head;
    const mean = avg.transcriptId === null && Number.isFinite(avg.scores[index]!) ? avg.scores[index]! : null;
    const summary = run.status === 'done' ? summaryOf(runReport(s, runId), 'heads') : null;
    const std = summary && summary.std.length === avg.scores.length ? (summary.std[index] ?? null) : null;
    // Rank among the run's heads by the averaged score, most negative first (ties: lower layer, then head).
    const order = Array.from(avg.scores, (v, i) => ({ v: Number.isFinite(v) ? v : Infinity, i })).sort((a, b) => a.v - b.v || a.i - b.i);
    const rank = mean === null ? null : order.findIndex((o) => o.i === index) + 1;
    const rows = s.views.headScores(runId, layer, head).sort((a, b) => (a.score ?? Infinity) - (b.score ?? Infinity) || a.transcriptId - b.transcriptId);
    return {
      runId,
      layer,
      head,
      mean,
      std,
      rank,
      of: avg.scores.length,
      transcripts: rows.map((r) => ({ ...r, prompt: truncate(r.prompt, PROMPT_CHARS) })),
    };
  });
}

export async function headsInspect(p: ParamsOf<'heads.inspect'>, ctx: CallContext): Promise<ResultOf<'heads.inspect'>> {
  const { layer, head } = p;
  const plan = withReader(p.project, (s) => {
    const { run } = headOfRun(s, p.runId, layer, head);
    const maps = s.headMaps.list(p.runId, { transcriptId: p.transcriptId });
    if (!maps.length) {
      throw new CliffscopeError('bad-argument', `heads run #${p.runId} did not attribute transcript #${p.transcriptId}`, { file: s.file, hint: 'pick one of the run’s transcripts' });
    }
    const probeId = int(run.config.probeId);
    const probe = probeId !== null ? s.probes.get(probeId) : null;
    if (!probe) throw new CliffscopeError('bad-project', `heads run #${p.runId}'s probe is missing from the project`, { file: s.file });
    const model = run.modelId !== null ? s.models.get(run.modelId) : null;
    const t = s.transcripts.require(p.transcriptId);
    const variant = (typeof run.config.variant === 'string' ? run.config.variant : 'code') as AttributionVariant;
    return { probe, modelHash: model?.contentHash ?? null, transcript: t, variant };
  });
  const model = await acquireModel(p.model, ctx);
  if (plan.modelHash !== null && model.compiled.modelHash !== plan.modelHash) {
    throw new CliffscopeError('model-mismatch', `heads run #${p.runId} was made with model ${plan.modelHash}; ${p.model.dir} has content hash ${model.compiled.modelHash}`, {
      hint: 'inspect the head with the checkpoint the run used',
    });
  }
  const tok = model.tokenizer;
  if (!tok) throw new CliffscopeError('missing-file', `${model.checkpoint.dir} has no tokenizer.json`, { file: model.checkpoint.dir });
  const { numLayers: L, numHeads: H, headDim: D, hiddenSize: d, rmsNormEps } = model.config;
  // The transcript as the probe reads it (docs/METHOD.md §0: the closing marker appended when thinking did not close).
  const t = plan.transcript;
  const reading = readTranscript(tok, Array.from(t.tokenIds), t.promptTokens).probe;
  const tb = reading.answerBoundary;
  if (tb === null) throw new CliffscopeError('bad-argument', `transcript #${t.id} has no answer boundary`);
  const ids = reading.ids.slice(0, tb + 1);
  const weight = (name: string) => {
    const info = model.checkpoint.tensors.get(name);
    if (!info) throw new CliffscopeError('missing-tensor', `${name} is missing from ${model.checkpoint.dir}`);
    return readTensorAsFloat32(info);
  };
  const readouts = buildHeadReadouts({
    probe: plan.probe,
    oProj: (l) => weight(`model.layers.${l}.self_attn.o_proj.weight`),
    layers: Math.min(L, plan.probe.residIndex),
    heads: H,
    headDim: D,
    d,
    variant: plan.variant,
    finalNormWeight: plan.variant === 'final-norm-aware' ? weight('model.norm.weight') : undefined,
    onlyLayers: [layer],
  });
  ctx.progress(0, ids.length, 'teacher forcing');
  const out = await teacherForce(model.session, ids, {
    zLayers: [layer],
    residLayers: plan.variant === 'final-norm-aware' ? [L] : [],
    // blocks.{layer}.attn.hook_pattern of this head with its query at t_b: [1, 1, t_b + 1], the keys 0..t_b.
    pattern: { layers: [layer], heads: [head], positions: [tb] },
    signal: ctx.signal,
    onProgress: (done, total) => ctx.progress(done, total, 'teacher forcing'),
  });
  const rms = plan.variant === 'final-norm-aware' ? ids.map((_, k) => rmsOf(out.resid.get(L)!, rmsNormEps, k * d, d)) : undefined;
  const perToken = headScoreOverTokens({ readouts, layer, head, zRows: out.z.get(layer)!, tokens: ids.length, rms });
  return {
    transcriptId: t.id,
    layer,
    head,
    variant: plan.variant,
    tokens: displayTokens(tok, ids).tokens,
    scores: scores(perToken),
    promptTokens: t.promptTokens,
    thinkingStart: t.thinkingStart,
    thinkingEnd: t.thinkingEnd,
    answerBoundary: tb,
    attention: scores(out.pattern.get(layer)!),
  };
}
