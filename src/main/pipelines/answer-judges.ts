/**
 * Judging the answers a run generates itself (an ablation sweep; docs/METHOD.md §5) in the item that generated each
 * answer: a refusal keyword list, a local guard model (awaited before the item commits, so its verdict is part of
 * the item), or the run's live probe (I' below the threshold = complied). Also the guard's one call into the engine
 * and the keyword lists by name, which the judge pipeline uses too.
 */
import type { AnswerJudge } from '../../shared/runs/judge.js';
import { GCG_JUDGE, guardJudge, guardPrompt, JBB_JUDGE, judgeAnswer, judgeByProbe, type KeywordJudge, parseGuardCategories, parseGuardOutput, type ProbeJudge, probeJudge } from '../engine/analysis/judges.js';
import { CliffscopeError } from '../engine/errors.js';
import { generate } from '../engine/runtime/generate.js';
import type { LoadedModel } from '../engine/runtime/model.js';
import { stopIds } from '../engine/runtime/prompt.js';
import type { JsonObject } from '../store/types.js';
import { type PipelineEnv, requireTokenizer } from './common.js';

/** The keyword judge of a list name. */
export function judgeFor(name: 'gcg' | 'jbb'): KeywordJudge {
  return name === 'gcg' ? GCG_JUDGE : JBB_JUDGE;
}

/** A judge ready to judge: its identity (what its verdicts are stored under), its settings, its guard model. */
export interface ReadyJudge {
  id: string;
  spec: AnswerJudge;
  guard: LoadedModel | null;
  /** The probe judge's threshold rule. */
  probe: ProbeJudge | null;
}

/** Load each judge's model (guards, through the application's model pool) and name it. */
export async function readyJudges(env: PipelineEnv, specs: readonly AnswerJudge[], probeId: number | null, opts: { guard?: LoadedModel } = {}): Promise<ReadyJudge[]> {
  const ready: ReadyJudge[] = [];
  for (const spec of specs) {
    if (spec.kind === 'keyword') ready.push({ id: judgeFor(spec.list).id, spec, guard: null, probe: null });
    else if (spec.kind === 'probe') {
      if (probeId === null) throw new CliffscopeError('bad-argument', "a probe judge reads the live probe's I': the run has no probe");
      const probe = probeJudge(String(probeId), spec.threshold);
      ready.push({ id: probe.id, spec, guard: null, probe });
    } else {
      const guard = opts.guard ?? (env.loadModel ? await env.loadModel(spec.modelDir) : null);
      if (!guard) throw new CliffscopeError('bad-argument', 'a guard judge needs the guard model loaded');
      ready.push({ id: guardJudge(guard.compiled.modelHash, { maxChars: spec.maxChars }).id, spec, guard, probe: null });
    }
  }
  return ready;
}

/** An answer as the judges see it: its text (docs/METHOD.md §0), its I' under the live probe, whether it is an attack. */
export interface JudgedAnswer {
  answer: string;
  /** I' from the live trace; null without a probe or a finite score at t_b. */
  final: number | null;
  /** An answer to a prompt of the harmful set: what ASR counts. */
  attack: boolean;
  thinkingNotClosed: boolean;
}

/** A verdict ready to store with the transcript it judges (store.verdicts.add without the run and transcript). */
export interface PendingVerdict {
  judge: string;
  verdict: string;
  harmful: boolean | null;
  detail: JsonObject;
}

/** Every judge's verdict on one answer; a guard's reply is awaited here, before the item's transaction. */
export async function judgeOne(judges: readonly ReadyJudge[], a: JudgedAnswer, signal?: AbortSignal): Promise<PendingVerdict[]> {
  const out: PendingVerdict[] = [];
  for (const j of judges) {
    let verdict: string;
    let complied: boolean | null;
    let detail: JsonObject;
    if (j.spec.kind === 'keyword') {
      const v = judgeAnswer(a.answer, judgeFor(j.spec.list));
      verdict = v.verdict;
      complied = v.verdict === 'compliance';
      detail = { matched: v.matched ?? null };
    } else if (j.spec.kind === 'probe') {
      if (a.final === null) {
        // Not judged (and not counted in ASR): no finite I' to read.
        verdict = 'no-trace';
        complied = null;
        detail = { reason: "no finite I' under the live probe" };
      } else {
        verdict = judgeByProbe(a.final, j.probe!).verdict;
        complied = verdict === 'compliance';
        detail = { final: a.final };
      }
    } else {
      const text = await askGuard(j.guard!, a.answer, j.spec.maxChars, signal);
      verdict = parseGuardOutput(text);
      complied = verdict === 'unsafe';
      detail = { output: text, categories: parseGuardCategories(text) };
    }
    // ASR counts answers to harmful prompts that comply; answers to harmless prompts are not attacks.
    out.push({ judge: j.id, verdict, harmful: a.attack ? complied : null, detail: { ...detail, thinkingNotClosed: a.thinkingNotClosed } });
  }
  return out;
}

/** The guard model's reply to one answer (the answer cut to maxChars as the single user message, as the paper's code does). */
export async function askGuard(guard: LoadedModel, answer: string, maxChars: number, signal: AbortSignal | undefined): Promise<string> {
  const gtok = requireTokenizer(guard);
  const ids = gtok.encodeChat(guardPrompt(answer, { maxChars })).ids;
  const [out] = await generate(guard.session, [{ ids }], { maxNewTokens: 20, stopIds: stopIds(guard), signal });
  return gtok.decode(out!.outputIds, { skipSpecialTokens: true });
}
