/**
 * `judge` runs (docs/METHOD.md §5): verdicts on a run's answers from a refusal-keyword list, the probe (I' below a
 * threshold = complied), or a local guard model (Llama-Guard-3-style, given the answer cut to 512 characters;
 * harmful if its output contains "unsafe"). Every verdict is stored with the judge's identity.
 */
import { judgeRun, type JudgeRunConfig, type JudgeRunSummary } from '../../shared/runs/judge.js';
import { guardJudge, judgeAnswer, judgeByProbe, parseGuardOutput, probeJudge } from '../engine/analysis/judges.js';
import { type CellAnswer, judgeRates } from '../engine/analysis/sweep.js';
import { CliffscopeError } from '../engine/errors.js';
import type { LoadedModel } from '../engine/runtime/model.js';
import type { JsonObject } from '../store/types.js';
import type { ProjectStore } from '../store/project-store.js';
import { askGuard, judgeFor } from './answer-judges.js';
import { beginRun, commitSummary, finishing, type PipelineEnv, requireTokenizer, type RunOptions, type WorkUnit } from './common.js';
import { readSource, sourceUnits } from './sources.js';

export type { JudgeRunConfig } from '../../shared/runs/judge.js';

/** `opts.guard`: the guard model, when the caller has it loaded; otherwise it comes from `env.loadModel`. */
export async function runJudge(env: PipelineEnv, config: JudgeRunConfig, opts: RunOptions & { guard?: LoadedModel } = {}): Promise<number> {
  const { store, model } = env;
  const tok = requireTokenizer(model);
  const handle = beginRun(env, judgeRun, config, opts, (cfg) => {
    store.runs.require(cfg.runId);
    if (cfg.harmfulDatasetId !== null) store.datasets.require(cfg.harmfulDatasetId);
    if (cfg.judge.kind === 'guard' && !opts.guard && !env.loadModel) throw new CliffscopeError('bad-argument', 'a guard judge needs the guard model loaded');
    if (cfg.judge.kind === 'probe') store.probes.require(cfg.judge.probeId);
  });
  const cfg = handle.config;
  const guardModel = cfg.judge.kind === 'guard' ? (opts.guard ?? (await env.loadModel!(cfg.judge.modelDir))) : undefined;
  const judged = store.runs.require(cfg.runId);
  const harmfulDataset = cfg.harmfulDatasetId ?? judged.datasetId;
  const spec = cfg.judge;

  await finishing(env, handle.run, async () => {
    const transcripts = readSource(store, tok, { kind: 'run', runId: cfg.runId });
    // I' per transcript from any trace under the probe (a live one or a trace run); one with a value wins.
    const finals = new Map<number, number>();
    if (spec.kind === 'probe') for (const tr of store.traces.list({ probeId: spec.probeId })) if (typeof tr.final === 'number') finals.set(tr.transcriptId, tr.final);
    const id =
      spec.kind === 'keyword' ? judgeFor(spec.list).id : spec.kind === 'probe' ? probeJudge(String(spec.probeId), spec.threshold).id : guardJudge(guardModel!.compiled.modelHash, { maxChars: spec.maxChars }).id;
    let finished = 0;
    for (const t of transcripts.filter((x) => handle.owns(x.key))) {
      if (env.signal?.aborted) return;
      const key = t.key;
      if (handle.todo(key)) {
        const attack = harmfulDataset !== null && t.item?.datasetId === harmfulDataset;
        let verdict: string;
        let complied: boolean | null;
        let detail: JsonObject = {};
        if (spec.kind === 'keyword') {
          const v = judgeAnswer(t.answer, judgeFor(spec.list));
          verdict = v.verdict;
          complied = v.verdict === 'compliance';
          detail = { matched: v.matched ?? null };
        } else if (spec.kind === 'probe') {
          const final = finals.get(t.transcriptId!);
          if (final === undefined) {
            // Not judged (and not counted in ASR): this transcript has no I' under the probe yet.
            verdict = 'no-trace';
            complied = null;
            detail = { reason: `no trace of transcript #${t.transcriptId} under probe #${spec.probeId}; run cliffscope trace on run #${cfg.runId} first` };
          } else {
            verdict = judgeByProbe(final, probeJudge(String(spec.probeId), spec.threshold)).verdict;
            complied = verdict === 'compliance';
            detail = { final };
          }
        } else {
          const text = await askGuard(guardModel!, t.answer, spec.maxChars, env.signal);
          verdict = parseGuardOutput(text);
          complied = verdict === 'unsafe';
          detail = { output: text };
        }
        store.runs.commitItem(handle.run.id, key, (s) => {
          s.verdicts.add({ runId: handle.run.id, transcriptId: t.transcriptId!, judge: id, verdict, harmful: attack ? complied : null, detail: { ...detail, set: attack ? 'harmful' : 'harmless', thinkingNotClosed: t.thinkingNotClosed } });
        });
      }
      env.onProgress?.(++finished, transcripts.length, 'answers');
    }
    if (!handle.shard) aggregateJudge(store, handle.run.id, id);
  });
  return handle.run.id;
}

/** The items of a judge run: every transcript of the judged run (a guard reads up to maxChars of its answer). */
export function judgeUnits(store: ProjectStore, cfg: JudgeRunConfig): WorkUnit[] {
  return sourceUnits(store, { kind: 'run', runId: cfg.runId }).map(({ key, cost }) => ({ key, cost: cfg.judge.kind === 'guard' ? Math.min(cost, cfg.judge.maxChars) : 1 }));
}

/**
 * A judged ablation sweep's verdicts per cell (never pooled over cells: each cell is its own setting), in the sweep's
 * cell order; nothing for a run of one setting. Harmless answers count for over-refusal.
 */
function perCell(store: ProjectStore, runId: number, judge: string): { cells?: JudgeRunSummary['cells'] } {
  const run = store.runs.require(runId);
  const judgedRunId = (run.config as { runId?: unknown }).runId;
  if (typeof judgedRunId !== 'number') return {};
  const cells = store.sweeps.cells(judgedRunId);
  if (cells.length === 0) return {};
  const verdicts = new Map(store.verdicts.list({ runId, judge }).map((v) => [v.transcriptId, v]));
  return {
    cells: cells.map((cell) => {
      const answers: (CellAnswer & { notClosed: boolean })[] = store.transcripts.list(judgedRunId, { headScaleKey: cell.headScaleKey }).flatMap((t) => {
        const v = verdicts.get(t.id);
        // Verdicts name the set they answer; older ones only say it through harmful (null = not an attack).
        const set = v && (v.detail.set === 'harmful' || v.detail.set === 'harmless') ? v.detail.set : v?.harmful === null ? 'harmless' : 'harmful';
        return v ? [{ set, verdicts: new Map([[judge, v]]), notClosed: v.harmful !== null && v.detail.thinkingNotClosed === true }] : [];
      });
      const r = judgeRates(answers, judge);
      return { key: cell.headScaleKey, control: cell.control, k: cell.k, gamma: cell.gamma, ...r, thinkingNotClosed: answers.filter((a) => a.notClosed).length };
    }),
  };
}

/**
 * The run's summary from its verdicts. `judge` names the judge (its verdicts carry the same name; a merged run
 * passes null and reads it from them, since the guard's name holds its model's hash).
 */
export function aggregateJudge(store: ProjectStore, runId: number, judge: string | null): void {
  const id = judge ?? store.verdicts.list({ runId })[0]?.judge ?? 'none';
  const asr = store.verdicts.attackSuccessRate(runId, id);
  const verdicts = store.verdicts.list({ runId, judge: id });
  commitSummary(store, judgeRun, runId, {
    judge: id,
    ...perCell(store, runId, id),
    judged: asr.judged,
    harmful: asr.harmful,
    asr: asr.rate,
    // Judged attacks whose thinking never closed (judged on their whole output; docs/METHOD.md §0).
    thinkingNotClosed: verdicts.filter((v) => v.harmful !== null && v.detail.thinkingNotClosed === true).length,
    noTrace: verdicts.filter((v) => v.verdict === 'no-trace').length,
  });
}
