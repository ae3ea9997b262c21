/**
 * `generate.run`: batched generation for the Playground and scripts, streaming each token as an event and the live
 * probe score with it, cancellable between decode steps.
 */
import type { ParamsOf, ResultOf } from '../../shared/contract.js';
import { CliffscopeError } from '../engine/errors.js';
import { flatHeadScale } from '../engine/runtime/head-scale.js';
import { generate } from '../engine/runtime/generate.js';
import { promptIds, samplingOptions, stopIds } from '../engine/runtime/prompt.js';
import { describeTranscript } from '../engine/runtime/transcript.js';
import { hasCliff, traceMetrics, type TranscriptSpan } from '../engine/analysis/trace.js';
import { scores as scoreList } from './shapes.js';
import type { CallContext } from './context.js';
import { acquireModel } from './model-pool.js';
import { displayTokens } from './projects.js';

export async function generateRun(params: ParamsOf<'generate.run'>, ctx: CallContext): Promise<ResultOf<'generate.run'>> {
  const model = await acquireModel(params.model, ctx);
  const tok = model.tokenizer;
  if (!tok) throw new CliffscopeError('missing-file', `${params.model.dir} has no tokenizer.json, so prompts cannot be encoded`, { file: params.model.dir });
  const cfg = model.config;
  const headScale = params.headScale ? flatHeadScale(params.headScale, cfg.numLayers, cfg.numHeads, 'headScale') : undefined;
  const requests = params.prompts.map((p) => ({ ids: promptIds(tok, p, { chat: params.chat ?? false, system: params.system }), headScale }));
  // The sampler's live probe reads residual-stack entry `layer`.
  const probe = params.probe ? { residIndex: params.probe.residIndex, weights: Float32Array.from(params.probe.weights), bias: params.probe.bias } : undefined;

  // Decoded text so far per prompt, so each token event carries exactly the text it adds.
  const outputs = requests.map(() => [] as number[]);
  const shown = requests.map(() => '');
  const started = Date.now();
  const results = await generate(model.session, requests, {
    maxNewTokens: params.maxNewTokens,
    sampling: samplingOptions(params.sampling),
    seed: params.seed ?? 0,
    stopIds: stopIds(model),
    stopStrings: params.stop,
    decode: (ids) => tok.decode(ids),
    batchSize: params.batchSize ?? 8,
    probes: probe ? [probe] : [],
    signal: ctx.signal,
    onToken: (prompt, tokenId, position) => {
      outputs[prompt]!.push(tokenId);
      const text = tok.decode(outputs[prompt]!);
      const delta = text.startsWith(shown[prompt]!) ? text.slice(shown[prompt]!.length) : '';
      shown[prompt] = text;
      ctx.emit?.({ kind: 'token', prompt, tokenId, position, text: delta });
    },
    onScore: probe ? (prompt, position, scores) => ctx.emit?.({ kind: 'score', prompt, position, score: scores[0]! }) : undefined,
    onProgress: (done, total) => ctx.progress(done, total, 'tokens'),
  });
  return {
    provider: model.session.provider,
    providerNotes: [...model.session.providerNotes],
    seconds: (Date.now() - started) / 1000,
    transcripts: results.map((r, i) => {
      const t = describeTranscript(tok, r.promptIds, r.outputIds);
      return {
        prompt: params.prompts[i]!,
        inputIds: r.promptIds,
        outputIds: r.outputIds,
        text: t.text,
        thinking: t.thinking,
        answer: t.answer,
        finishReason: r.finishReason,
        ...(r.skipped ? { skipped: r.skipped } : {}),
        thinkOpen: t.split.thinkOpen,
        thinkClose: t.split.thinkClose,
        answerBoundary: t.split.answerBoundary,
        tokens: displayTokens(tok, [...r.promptIds, ...r.outputIds]).tokens,
        // The sampler keeps room for max-new-tokens scores; the plot ends where the transcript does.
        ...(probe ? liveProbe(r.scores[0]!.subarray(0, r.promptIds.length + r.outputIds.length), { ...t.split, generatedStart: r.promptIds.length }) : {}),
      };
    }),
  };
}

/** The live probe's scores for the wire, with the trace metrics a trace run would store for them. */
function liveProbe(scores: Float32Array, span: TranscriptSpan): Pick<ResultOf<'generate.run'>['transcripts'][number], 'scores' | 'metrics'> {
  const m = traceMetrics(scores, span);
  const finite = (v: number | null) => (v !== null && Number.isFinite(v) ? v : null);
  return {
    scores: scoreList(scores),
    metrics: { plateau: finite(m.plateau), final: finite(m.final), ms: finite(m.ms), steepestDropPos: m.steepestDropPos, width: finite(m.dropWidth), hasCliff: hasCliff({ plateau: finite(m.plateau), final: finite(m.final) }) },
  };
}
