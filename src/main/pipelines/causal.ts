/**
 * `causal` runs (docs/METHOD.md §9): causal head ranking. Every transcript of a heads run is teacher-forced to its
 * answer boundary once unscaled and once per scored head with only that head's output multiplied by γ (the paper's
 * code: 0.001), reading the heads run's probe at t_b. One item per transcript holds I' unscaled and under each head;
 * the aggregate is each head's mean drop I'(unscaled) − I'(scaled), ranked and set against its direct score.
 */
import { causalRun, type CausalHead, type CausalRunConfig, TOP_OVERLAP } from '../../shared/runs/causal.js';
import { headsRun, type HeadsRunConfig } from '../../shared/runs/heads.js';
import { type HeadRef, headScaleMatrix } from '../../shared/heads.js';
import { spearman } from '../engine/analysis/heads.js';
import { scoreRows } from '../engine/analysis/probe.js';
import { CliffscopeError } from '../engine/errors.js';
import { teacherForce } from '../engine/runtime/teacher-force.js';
import type { ProjectStore } from '../store/project-store.js';
import { beginRun, commitSummary, finishing, type PipelineEnv, requireProbe, requireTokenizer, type RunOptions, storedConfig, type WorkUnit } from './common.js';
import { atAnswerBoundaries, headsRunRanking, headsUnits, labelled } from './heads.js';
import { readSource } from './sources.js';

export type { CausalRunConfig } from '../../shared/runs/causal.js';

/** What a causal run reads of its heads run: its config (probe, transcripts, label) and the heads it scores, with their direct scores. */
export function causalPlan(store: ProjectStore, cfg: CausalRunConfig): { heads: HeadsRunConfig; candidates: (HeadRef & { direct: number })[]; layers: number; headsPerLayer: number } {
  const heads = storedConfig(store, headsRun, store.runs.require(cfg.headsRunId, 'heads'));
  const { map } = headsRunRanking(store, cfg.headsRunId);
  const all = Array.from(map.scores, (direct, i) => ({ layer: Math.floor(i / map.heads), head: i % map.heads, direct }));
  // The heads whose direct write is largest either way (ties: lower layer, then head), or every head.
  const candidates = cfg.top === null ? all : [...all].sort((a, b) => Math.abs(b.direct) - Math.abs(a.direct) || a.layer - b.layer || a.head - b.head).slice(0, cfg.top).sort((a, b) => a.layer - b.layer || a.head - b.head);
  return { heads, candidates, layers: map.layers, headsPerLayer: map.heads };
}

/** The items of a causal run: the heads run's transcripts, each costing its tokens once per forward pass. */
export function causalUnits(store: ProjectStore, cfg: CausalRunConfig): WorkUnit[] {
  const { heads, candidates } = causalPlan(store, cfg);
  return headsUnits(store, heads).map((u) => ({ key: u.key, cost: u.cost * (candidates.length + 1) }));
}

/** One transcript's item: I' unscaled, and under each candidate head (in causalPlan's order). */
interface CausalItem {
  base: number;
  scaled: number[];
}

export async function runCausal(env: PipelineEnv, config: CausalRunConfig, opts: RunOptions = {}): Promise<number> {
  const { store, model } = env;
  const tok = requireTokenizer(model);
  const { numLayers: L, numHeads: H, hiddenSize: d } = model.config;
  const handle = beginRun(env, causalRun, config, opts, (cfg) => {
    const { heads, headsPerLayer } = causalPlan(store, cfg);
    requireProbe(env, heads.probeId);
    if (headsPerLayer !== H) throw new CliffscopeError('bad-argument', `heads run #${cfg.headsRunId} ranks ${headsPerLayer} heads per layer; this model has ${H}`, { hint: 'use the model the heads run was made with' });
  });
  const cfg = handle.config;
  const { heads: headsCfg, candidates } = causalPlan(store, cfg);
  const probe = requireProbe(env, headsCfg.probeId);
  const scales = candidates.map((h) => headScaleMatrix([h], cfg.scale, L, H));

  await finishing(env, handle.run, async () => {
    const transcripts = readSource(store, tok, headsCfg.source).filter((t) => labelled(headsCfg, t.label));
    await atAnswerBoundaries(env, handle, transcripts, async (t, tb) => {
      const ids = t.ids.slice(0, tb + 1);
      const finalScore = async (headScale?: number[][]) => {
        const out = await teacherForce(model.session, ids, { residLayers: [probe.residIndex], positions: [tb], headScale, signal: env.signal });
        return scoreRows(probe, out.resid.get(probe.residIndex)!, d)[0]!;
      };
      const base = await finalScore();
      const scaled: number[] = [];
      for (const s of scales) {
        if (env.signal?.aborted) return;
        scaled.push(await finalScore(s));
      }
      store.runs.commitItem(handle.run.id, t.key, (): CausalItem => ({ base, scaled }));
    });
    if (!handle.shard) aggregateCausal(store, handle.run.id, cfg);
  });
  return handle.run.id;
}

/** Each head's mean I' drop over the run's items (in item order), its ranking and the comparison with direct scores. */
export function aggregateCausal(store: ProjectStore, runId: number, cfg: CausalRunConfig): void {
  const { heads: headsCfg, candidates } = causalPlan(store, cfg);
  const payloads = new Map(store.runs.items(runId).filter((i) => i.status === 'done').map((i) => [i.key, i.payload as Partial<CausalItem> | null]));
  const items = headsUnits(store, headsCfg)
    .map((u) => payloads.get(u.key))
    .filter((p): p is CausalItem => typeof p?.base === 'number' && Array.isArray(p.scaled) && p.scaled.length === candidates.length);
  if (items.length === 0) throw new CliffscopeError('bad-argument', `heads run #${cfg.headsRunId} has no transcripts with an answer boundary to scale heads on`);
  const scored: CausalHead[] = candidates.map((h, k) => ({
    layer: h.layer,
    head: h.head,
    causal: items.reduce((sum, it) => sum + (it.base - it.scaled[k]!), 0) / items.length,
    direct: h.direct,
  }));
  const byIndex = (a: HeadRef, b: HeadRef) => a.layer - b.layer || a.head - b.head;
  const ranked = [...scored].sort((a, b) => a.causal - b.causal || byIndex(a, b));
  const topDirect = new Set([...scored].sort((a, b) => a.direct - b.direct || byIndex(a, b)).slice(0, TOP_OVERLAP).map((h) => `${h.layer}:${h.head}`));
  commitSummary(store, causalRun, runId, {
    headsRunId: cfg.headsRunId,
    probeId: headsCfg.probeId,
    scale: cfg.scale,
    transcripts: items.length,
    baseFinal: items.reduce((sum, it) => sum + it.base, 0) / items.length,
    heads: ranked,
    spearman: spearman(scored.map((h) => h.causal), scored.map((h) => h.direct)),
    topOverlap: ranked.slice(0, TOP_OVERLAP).filter((h) => topDirect.has(`${h.layer}:${h.head}`)).length,
    suppression: ranked.slice(0, 20).map((h) => ({ layer: h.layer, head: h.head, score: h.causal })),
  });
}
