/**
 * `heads` runs (docs/METHOD.md §3): each attention head's direct write into the probe's direction at the answer
 * boundary, per transcript and averaged over the set, ranked into refusal suppression heads (most negative) and
 * refusal heads (most positive). Optionally the same score at every token (heads × tokens).
 */
import { headsRun, TOP_HEADS, type HeadsRunConfig } from '../../shared/runs/heads.js';
import { attributeHeads, attributeHeadsOverTokens, averageAttributions, buildHeadReadouts, rankHeads, rmsOf } from '../engine/analysis/heads.js';
import { CliffscopeError } from '../engine/errors.js';
import { readTensorAsFloat32 } from '../engine/model/safetensors.js';
import { teacherForce } from '../engine/runtime/teacher-force.js';
import type { ProjectStore } from '../store/project-store.js';
import { beginRun, commitSummary, finishing, type PipelineEnv, requireProbe, requireSource, requireTokenizer, type RunOptions } from './common.js';
import { ensureTranscriptRow, readSource } from './sources.js';

export type { HeadsRunConfig } from '../../shared/runs/heads.js';

export async function runHeads(env: PipelineEnv, config: HeadsRunConfig, opts: RunOptions = {}): Promise<number> {
  const { store, model } = env;
  const tok = requireTokenizer(model);
  const cfgModel = model.config;
  const { numLayers: L, numHeads: H, headDim: D, hiddenSize: d } = cfgModel;
  const handle = beginRun(env, headsRun, config, opts, (cfg) => {
    const probe = requireProbe(env, cfg.probeId);
    if (probe.residIndex === 0) throw new CliffscopeError('bad-argument', `probe #${probe.id} reads the embeddings; no head writes upstream of it`);
    if (cfg.variant === 'final-norm-aware' && probe.residIndex !== L + 1) {
      throw new CliffscopeError('bad-argument', 'final-norm-aware attribution applies to probes on the final norm (ln_final.hook_normalized)');
    }
    requireSource(env, cfg.source);
  });
  const cfg = handle.config;
  const probe = requireProbe(env, cfg.probeId);
  // Heads upstream of the probe's layer: block i writes into stack entry i+1, so a probe on entry k sees blocks < k.
  const layers = Math.min(L, probe.residIndex);
  const weight = (name: string) => {
    const info = model.checkpoint.tensors.get(name);
    if (!info) throw new CliffscopeError('missing-tensor', `${name} is missing from ${model.checkpoint.dir}`);
    return readTensorAsFloat32(info);
  };
  const zLayers = Array.from({ length: layers }, (_, i) => i);

  await finishing(env, handle.run, async () => {
    const readouts = buildHeadReadouts({
      probe,
      oProj: (l) => weight(`model.layers.${l}.self_attn.o_proj.weight`),
      layers,
      heads: H,
      headDim: D,
      d,
      variant: cfg.variant,
      finalNormWeight: cfg.variant === 'final-norm-aware' ? weight('model.norm.weight') : undefined,
    });
    const transcripts = readSource(store, tok, cfg.source).filter((t) => t.answerBoundary !== null && (cfg.label === undefined || t.label === cfg.label));
    if (transcripts.length === 0) throw new CliffscopeError('bad-argument', 'no transcripts with an answer boundary to attribute (did the model close its thinking?)');
    let finished = 0;
    for (const t of transcripts) {
      if (env.signal?.aborted) return;
      if (!handle.done.has(t.key)) {
        const tb = t.answerBoundary!;
        const positions = cfg.perToken ? Array.from({ length: tb + 1 }, (_, i) => i) : [tb];
        // The pre-norm residual (after the last block) gives rms(h) for the final-norm-aware variant.
        const out = await teacherForce(model.session, t.ids.slice(0, tb + 1), { zLayers, residLayers: [L], positions });
        const at = positions.length - 1; // tb is the last tapped position
        const w = H * D;
        const rmsAll = positions.map((_, k) => rmsOf(out.resid.get(L)!, cfgModel.rmsNormEps, k * d, d));
        const scores = attributeHeads({ readouts, zAt: (l) => out.z.get(l)!.subarray(at * w, (at + 1) * w), rms: rmsAll[at] });
        const perToken = cfg.perToken ? attributeHeadsOverTokens({ readouts, zRows: (l) => out.z.get(l)!, tokens: positions.length, rms: rmsAll }) : null;
        store.runs.commitItem(handle.run.id, t.key, (s) => {
          const transcriptId = ensureTranscriptRow(s, handle.run.id, t, tok);
          s.headMaps.add({ runId: handle.run.id, transcriptId, probeId: probe.id, positionRule: 'answer-boundary', layers, heads: H, scores, tokens: perToken ? positions.length : null, perToken });
          return { transcriptId };
        });
      }
      env.onProgress?.(++finished, transcripts.length, 'transcripts');
    }
    const maps = store.headMaps.list(handle.run.id).filter((m) => m.transcriptId !== null);
    const { mean, std, count } = averageAttributions(maps.map((m) => m.scores));
    if (!store.runs.resumableItems(handle.run.id).has('average')) {
      store.runs.commitItem(handle.run.id, 'average', (s) => {
        s.headMaps.add({ runId: handle.run.id, transcriptId: null, probeId: probe.id, positionRule: 'answer-boundary', layers, heads: H, scores: mean });
      });
    }
    const ranking = rankHeads(mean, layers, H);
    commitSummary(env, headsRun, handle.run.id, {
      probeId: probe.id,
      variant: cfg.variant,
      transcripts: count,
      layers,
      heads: H,
      suppression: ranking.suppression.slice(0, TOP_HEADS),
      refusal: ranking.refusal.slice(0, TOP_HEADS),
      std: Array.from(std),
    });
  });
  return handle.run.id;
}

/** The averaged [layers × heads] map of a finished heads run, and its ranking. */
export function headsRunRanking(store: ProjectStore, runId: number) {
  const avg = store.headMaps.list(runId, { transcriptId: null })[0];
  if (!avg) throw new CliffscopeError('bad-argument', `run #${runId} has no averaged head map (is it a finished heads run?)`);
  return { map: avg, ranking: rankHeads(avg.scores, avg.layers, avg.heads) };
}
