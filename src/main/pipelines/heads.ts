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
import { beginRun, commitSummary, finishing, type PipelineEnv, requireProbe, requireSource, requireTokenizer, type RunHandle, type RunOptions, type WorkUnit } from './common.js';
import { ensureTranscriptRow, readSource, type SourceTranscript, sourceUnits } from './sources.js';

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
    const transcripts = readSource(store, tok, cfg.source).filter((t) => labelled(cfg, t.label));
    await atAnswerBoundaries(env, handle, transcripts, async (t, tb) => {
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
    });
    if (!handle.shard) aggregateHeads(store, handle.run.id, cfg);
  });
  return handle.run.id;
}

/**
 * Hand each transcript this process owns and has not done to `work` with its answer boundary t_b, between cancel
 * checks, with progress. One without a t_b is committed as skipped, so a sharded run knows it is complete. Heads
 * runs and causal runs read transcripts this way.
 */
export async function atAnswerBoundaries<Cfg>(env: PipelineEnv, handle: RunHandle<Cfg>, transcripts: SourceTranscript[], work: (t: SourceTranscript, tb: number) => Promise<void>): Promise<void> {
  const mine = transcripts.filter((t) => handle.owns(t.key));
  let finished = 0;
  for (const t of mine) {
    if (env.signal?.aborted) return;
    if (handle.todo(t.key)) {
      if (t.answerBoundary === null) env.store.runs.commitItem(handle.run.id, t.key, () => ({ skipped: 'no answer boundary (a prompt without a response)' }));
      else await work(t, t.answerBoundary);
    }
    env.onProgress?.(++finished, mine.length, 'transcripts');
  }
}

/** Whether a transcript of `label` is one a heads run (and a causal run over it) reads. */
export const labelled = (cfg: Pick<HeadsRunConfig, 'label'>, label: string | null) => cfg.label === undefined || label === cfg.label;

/** The items of a heads run: every transcript of its source (with the run's label), costing its tokens. */
export function headsUnits(store: ProjectStore, cfg: HeadsRunConfig): WorkUnit[] {
  return sourceUnits(store, cfg.source)
    .filter((u) => labelled(cfg, u.label))
    .map(({ key, cost }) => ({ key, cost }));
}

/** The averaged map over the run's transcripts, its ranking and the run's summary, from the per-transcript maps. */
export function aggregateHeads(store: ProjectStore, runId: number, cfg: HeadsRunConfig): void {
  // In item order (not the order they were made in), so a merged sharded run averages as one process does.
  const order = (id: number) => {
    const t = store.transcripts.get(id)!;
    return [t.itemId ?? 0, t.headScaleKey ?? '', t.id] as const;
  };
  const maps = store.headMaps
    .list(runId)
    .filter((m) => m.transcriptId !== null)
    .map((m) => ({ m, o: order(m.transcriptId!) }))
    .sort((a, b) => a.o[0] - b.o[0] || (a.o[1] < b.o[1] ? -1 : a.o[1] > b.o[1] ? 1 : 0) || a.o[2] - b.o[2])
    .map(({ m }) => m);
  const first = maps[0];
  if (!first) throw new CliffscopeError('bad-argument', 'no transcripts with an answer boundary to attribute (did the model close its thinking?)');
  const { layers, heads } = first;
  const { mean, std, count } = averageAttributions(maps.map((m) => m.scores));
  if (!store.runs.resumableItems(runId).has('average')) {
    store.runs.commitItem(runId, 'average', (s) => {
      s.headMaps.add({ runId, transcriptId: null, probeId: cfg.probeId, positionRule: 'answer-boundary', layers, heads, scores: mean });
    });
  }
  const ranking = rankHeads(mean, layers, heads);
  commitSummary(store, headsRun, runId, {
    probeId: cfg.probeId,
    variant: cfg.variant,
    transcripts: count,
    layers,
    heads,
    suppression: ranking.suppression.slice(0, TOP_HEADS),
    refusal: ranking.refusal.slice(0, TOP_HEADS),
    std: Array.from(std),
  });
}

/** The averaged [layers × heads] map of a finished heads run, and its ranking. */
export function headsRunRanking(store: ProjectStore, runId: number) {
  const avg = store.headMaps.list(runId, { transcriptId: null })[0];
  if (!avg) throw new CliffscopeError('bad-argument', `run #${runId} has no averaged head map (is it a finished heads run?)`);
  return { map: avg, ranking: rankHeads(avg.scores, avg.layers, avg.heads) };
}
