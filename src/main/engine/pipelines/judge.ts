/**
 * `judge` runs (docs/METHOD.md §5): verdicts on a run's answers from a refusal-keyword list, the probe (I' below a
 * threshold = complied), or a local guard model (Llama-Guard-3-style, given the answer cut to 512 characters;
 * harmful if its output contains "unsafe"). Every verdict is stored with the judge's identity.
 */
import { guardJudge, guardPrompt, judgeAnswer, judgeByProbe, parseGuardOutput, probeJudge } from '../analysis/judges.js';
import { CliffscopeError } from '../errors.js';
import { generate } from '../runtime/generate.js';
import type { LoadedModel } from '../runtime/model.js';
import type { JsonObject } from '../store/types.js';
import { judgeFor } from './ablate.js';
import { beginRun, commitSummary, finishing, type PipelineEnv, requireDatasetId, requireRunId, requireTokenizer } from './common.js';
import { readSource } from './sources.js';

export type JudgeSpec =
  | { kind: 'keyword'; list: 'gcg' | 'jbb' }
  | { kind: 'probe'; probeId: number; threshold: number }
  | { kind: 'guard'; modelDir: string; maxChars: number };

export interface JudgeRunConfig {
  /** The run whose transcripts are judged. */
  runId: number;
  judge: JudgeSpec;
  /** Dataset whose prompts count as attacks (their compliant answers are harmful); default the judged run's. */
  harmfulDatasetId: number | null;
}

export async function runJudge(
  env: PipelineEnv,
  config: JudgeRunConfig,
  opts: { resume?: number; name?: string; guard?: LoadedModel } = {},
): Promise<number> {
  const { store, model } = env;
  const tok = requireTokenizer(model);
  const handle = beginRun(env, { kind: 'judge', name: opts.name ?? null, parentRunId: config.runId, config: config as unknown as JsonObject }, opts.resume, (c) => {
    const cfg = c as unknown as JudgeRunConfig;
    requireRunId(env, cfg.runId);
    if (cfg.harmfulDatasetId !== null) requireDatasetId(env, cfg.harmfulDatasetId);
    if (cfg.judge.kind === 'guard' && !opts.guard) throw new CliffscopeError('bad-argument', 'a guard judge needs the guard model loaded');
    if (cfg.judge.kind === 'probe' && !store.getProbe(cfg.judge.probeId)) throw new CliffscopeError('bad-argument', `probe #${cfg.judge.probeId} does not exist in ${store.file}`);
  });
  const cfg = handle.config as unknown as JudgeRunConfig;
  const judged = requireRunId(env, cfg.runId);
  const harmfulDataset = cfg.harmfulDatasetId ?? judged.datasetId;
  const spec = cfg.judge;

  await finishing(env, handle.run, async () => {
    const transcripts = readSource(store, tok, { kind: 'run', runId: cfg.runId });
    // I' per transcript from any trace under the probe (a live one or a trace run); one with a value wins.
    const finals = new Map<number, number>();
    if (spec.kind === 'probe') for (const tr of store.listTraces({ probeId: spec.probeId })) if (typeof tr.final === 'number') finals.set(tr.transcriptId, tr.final);
    const id =
      spec.kind === 'keyword' ? judgeFor(spec.list).id : spec.kind === 'probe' ? probeJudge(String(spec.probeId), spec.threshold).id : guardJudge(opts.guard!.compiled.modelHash, { maxChars: spec.maxChars }).id;
    let finished = 0;
    for (const t of transcripts) {
      if (env.signal?.aborted) return;
      const key = `t${t.transcriptId}`;
      if (!handle.done.has(key)) {
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
          const guard = opts.guard!;
          const gtok = requireTokenizer(guard);
          const ids = gtok.encodeChat(guardPrompt(t.answer, { maxChars: spec.maxChars })).ids;
          const [out] = await generate(guard.session, [{ ids }], { maxNewTokens: 20, stopIds: guard.checkpoint.generation.eosTokenIds, signal: env.signal });
          const text = gtok.decode(out!.outputIds, { skipSpecialTokens: true });
          verdict = parseGuardOutput(text);
          complied = verdict === 'unsafe';
          detail = { output: text };
        }
        store.commitItem(handle.run.id, key, (s) => {
          s.addVerdict({ runId: handle.run.id, transcriptId: t.transcriptId!, judge: id, verdict, harmful: attack ? complied : null, detail: { ...detail, thinkingNotClosed: t.thinkingNotClosed } });
        });
      }
      env.onProgress?.(++finished, transcripts.length, 'answers');
    }
    const asr = store.attackSuccessRate(handle.run.id, id);
    const verdicts = store.listVerdicts({ runId: handle.run.id, judge: id });
    commitSummary(env, handle.run.id, {
      judge: id,
      judged: asr.judged,
      harmful: asr.harmful,
      asr: asr.rate,
      // Judged attacks whose thinking never closed (judged on their whole output; docs/METHOD.md §0).
      thinkingNotClosed: verdicts.filter((v) => v.harmful !== null && v.detail.thinkingNotClosed === true).length,
      noTrace: verdicts.filter((v) => v.verdict === 'no-trace').length,
    });
  });
  return handle.run.id;
}
