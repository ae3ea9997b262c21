/**
 * `select` runs — Cliff-as-a-Judge (docs/METHOD.md §6): teacher-force every (prompt, reasoning response) of a safety
 * training set through the model (or the model's own transcripts of its prompts), score it by its misalignment
 * MS = I − I' under the probe, select the top p % (or the lowest I', random, rule-based, or the LLM-as-a-judge
 * baseline), and export the selection for fine-tuning with its provenance — the thinking followed by the scored
 * answer, or by the dataset's safe answer.
 */
import { judgeRun } from '../../shared/runs/judge.js';
import { selectRun, type SelectRunConfig } from '../../shared/runs/select.js';
import { transcriptsRun } from '../../shared/runs/transcripts.js';
import type { TranscriptSource } from '../../shared/values.js';
import { GCG_JUDGE, judgeAnswer } from '../engine/analysis/judges.js';
import { scoreRows } from '../engine/analysis/probe.js';
import { selectSamples, toAlpacaJson, toMessagesJsonl } from '../engine/analysis/select.js';
import { traceMetrics } from '../engine/analysis/trace.js';
import { checkLlamaFactoryTarget, writeLlamaFactoryExport } from '../engine/datasets/llama-factory.js';
import { CliffscopeError } from '../engine/errors.js';
import { teacherForce } from '../engine/runtime/teacher-force.js';
import type { ProjectStore } from '../store/project-store.js';
import type { Tokenizer } from '../engine/tokenizer/tokenizer.js';
import { beginRun, commitSummary, finishing, type PipelineEnv, requireProbe, requireTokenizer, type RunOptions, storedConfig, type WorkUnit } from './common.js';
import type { ItemRow } from '../store/types.js';
import { ensureTranscriptRow, readSource, sourceUnits } from './sources.js';

export type { SelectRunConfig } from '../../shared/runs/select.js';

export interface SelectRunResult {
  runId: number;
  selected: number;
  total: number;
  threshold: number | null;
}

/** Where a select run's samples come from: the dataset's (prompt, response) pairs, or the model's own transcripts of its prompts. */
function selectSource(cfg: SelectRunConfig): TranscriptSource {
  return cfg.transcriptsRunId ? { kind: 'run', runId: cfg.transcriptsRunId } : { kind: 'dataset', datasetId: cfg.datasetId, chat: cfg.chat };
}

/** An item's safe answer from the `column` it was imported with (kept in its extra fields); null when it has none. */
export function safeAnswerOf(item: ItemRow, column: string): string | null {
  const v = Object.prototype.hasOwnProperty.call(item.extra, column) ? item.extra[column] : undefined;
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : null;
}

/** Whether an item is scored: it has a response to teacher-force (or a transcript of the model's own), and a safe answer when one is asked for. */
function eligible(cfg: SelectRunConfig, item: ItemRow | null): item is ItemRow {
  if (!item || item.datasetId !== cfg.datasetId) return false;
  if (!cfg.transcriptsRunId && item.response === null) return false;
  return !cfg.safeResponse || safeAnswerOf(item, cfg.safeResponse) !== null;
}

/** The scoring's source checked: its transcripts one per item (one setting), and some item eligible, each failure naming its fix. */
function checkSelectSource(store: ProjectStore, cfg: SelectRunConfig): void {
  const items = store.datasets.items(cfg.datasetId);
  if (cfg.transcriptsRunId) {
    const { settings, datasetId } = storedConfig(store, transcriptsRun, store.runs.require(cfg.transcriptsRunId, 'transcripts'));
    if (datasetId !== cfg.datasetId) throw new CliffscopeError('bad-argument', `transcripts run #${cfg.transcriptsRunId} is of dataset #${datasetId}, not #${cfg.datasetId}`);
    if (settings.length !== 1) throw new CliffscopeError('bad-argument', `transcripts run #${cfg.transcriptsRunId} has ${settings.length} settings; selection scores one transcript per prompt`, { hint: 'generate the transcripts under one setting' });
  } else if (!items.some((i) => i.response !== null)) {
    throw new CliffscopeError('bad-dataset', `dataset #${cfg.datasetId} has no responses to score`, { hint: "map a response column when importing (e.g. --map response=response), or score the model's own transcripts (--transcripts-run)" });
  }
  if (cfg.judgeRunId) {
    const judged = storedConfig(store, judgeRun, store.runs.require(cfg.judgeRunId, 'judge')).runId;
    if (judged !== cfg.transcriptsRunId) {
      throw new CliffscopeError('bad-argument', `judge run #${cfg.judgeRunId} judged run #${judged}, not the transcripts run #${cfg.transcriptsRunId} being scored`, { hint: `judge it: cliffscope judge --run ${cfg.transcriptsRunId} --guard DIR` });
    }
  }
  if (cfg.safeResponse && !items.some((i) => eligible(cfg, i))) {
    const columns = [...new Set(items.flatMap((i) => Object.keys(i.extra)))];
    throw new CliffscopeError('bad-argument', `dataset #${cfg.datasetId} has no item with a safe answer in column "${cfg.safeResponse}"`, {
      hint: columns.length ? `its other columns: ${columns.slice(0, 20).join(', ')}` : 'import the dataset again with its safe-answer column',
    });
  }
}

export async function runSelect(env: PipelineEnv, config: SelectRunConfig, opts: RunOptions = {}): Promise<SelectRunResult> {
  const { store, model } = env;
  const tok = requireTokenizer(model);
  const d = model.config.hiddenSize;
  const handle = beginRun(env, selectRun, config, opts, (cfg) => {
    store.datasets.require(cfg.datasetId);
    requireProbe(env, cfg.probeId);
    checkSelectSource(store, cfg);
  });
  const cfg = handle.config;
  const probe = requireProbe(env, cfg.probeId);

  return finishing(env, handle.run, async () => {
    const transcripts = readSource(store, tok, selectSource(cfg));
    const withResponse = transcripts.filter((t) => eligible(cfg, t.item) && handle.owns(t.key));
    let finished = 0;
    for (const t of withResponse) {
      if (env.signal?.aborted) return { runId: handle.run.id, selected: 0, total: withResponse.length, threshold: null };
      if (handle.todo(t.key)) {
        const out = await teacherForce(model.session, t.ids, { residLayers: [probe.residIndex] });
        const scores = scoreRows(probe, out.resid.get(probe.residIndex)!, d);
        const m = traceMetrics(scores, { thinkingStart: t.thinkingStart, thinkingEnd: t.thinkingEnd, answerBoundary: t.answerBoundary, generatedStart: t.promptLength });
        store.runs.commitItem(handle.run.id, t.key, (s) => {
          const transcriptId = ensureTranscriptRow(s, handle.run.id, t, tok);
          s.traces.add({ runId: handle.run.id, transcriptId, probeId: probe.id, residIndex: probe.residIndex, scores, plateau: m.plateau, final: m.final, ms: m.ms, steepestDropPos: m.steepestDropPos, cliffWidth: m.dropWidth });
          return { transcriptId, itemId: t.item!.id, ms: m.ms, final: m.final, answerHasRefusal: judgeAnswer(t.answer, GCG_JUDGE).verdict === 'refusal' };
        });
      }
      env.onProgress?.(++finished, withResponse.length, 'samples');
    }
    if (handle.shard) return { runId: handle.run.id, selected: 0, total: withResponse.length, threshold: null };
    return { runId: handle.run.id, ...aggregateSelect(store, handle.run.id, cfg) };
  });
}

/** The items of a select run: every eligible sample (a response or transcript, a safe answer if asked), costing its tokens. */
export function selectUnits(store: ProjectStore, cfg: SelectRunConfig): WorkUnit[] {
  // A unit's item: i<item id>, or the item of transcript t<id> of the transcripts run.
  const itemOfTranscript = cfg.transcriptsRunId ? new Map(store.transcripts.list(cfg.transcriptsRunId).map((t) => [`t${t.id}`, t.itemId])) : null;
  const itemOf = (key: string) => (itemOfTranscript ? (itemOfTranscript.get(key) ?? null) : Number(key.slice(1)));
  return sourceUnits(store, selectSource(cfg))
    .filter((u) => {
      const itemId = itemOf(u.key);
      return eligible(cfg, itemId === null ? null : store.datasets.item(itemId));
    })
    .map(({ key, cost }) => ({ key, cost }));
}

/** The selection over every scored sample (in dataset order, so it does not depend on how items were split) and the summary. */
export function aggregateSelect(store: ProjectStore, runId: number, cfg: SelectRunConfig): Omit<SelectRunResult, 'runId'> {
  const scored = store.runs
    .items(runId)
    // Samples are keyed by their item (a dataset's responses) or transcript (the model's own): i<id> / t<id>.
    .filter((i) => i.status === 'done' && /^[it]\d+$/.test(i.key))
    .map((i) => i.payload as { transcriptId: number; itemId: number; ms: number | null; final: number | null; answerHasRefusal: boolean })
    .sort((a, b) => a.itemId - b.itemId);
  if (scored.length === 0) {
    throw new CliffscopeError('bad-dataset', `dataset #${cfg.datasetId} has no responses to score`, { hint: 'map a response column when importing (e.g. --map response=response)' });
  }
  // The LLM-as-a-judge baseline: the judge run's verdict on each (model's own) transcript; a harmful one is eligible.
  const verdicts = cfg.judgeRunId ? new Map(store.verdicts.list({ runId: cfg.judgeRunId }).map((v) => [v.transcriptId, v.verdict === 'unsafe' || v.verdict === 'compliance'])) : null;
  const result = selectSamples(
    scored.map((s) => ({ id: String(s.itemId), ms: s.ms, final: s.final, answerHasRefusal: s.answerHasRefusal, ...(verdicts ? { judgedHarmful: verdicts.get(s.transcriptId) } : {}) })),
    { variant: cfg.variant, fraction: cfg.fraction, seed: cfg.seed },
  );
  if (!store.runs.resumableItems(runId).has('selection')) {
    store.runs.commitItem(runId, 'selection', (s) => {
      for (const r of result.ranked) {
        const sample = scored[r.index]!;
        s.selections.add({ runId, itemId: sample.itemId, transcriptId: sample.transcriptId, score: r.score, rank: r.rank, selected: r.selected });
      }
    });
  }
  commitSummary(store, selectRun, runId, {
    probeId: cfg.probeId,
    variant: cfg.variant,
    fraction: cfg.fraction,
    total: result.n,
    budget: result.k,
    selected: result.selectedCount,
    threshold: result.threshold,
  });
  return { selected: result.selectedCount, total: result.n, threshold: result.threshold };
}

/** The dataset names and files an export adds to a LLaMA-Factory data folder. */
const EXPORT_NAMES = { alpaca: 'cliffscope_selection', messages: 'cliffscope_selection_messages' } as const;
const EXPORT_FILES = [
  `${EXPORT_NAMES.alpaca}.json`,
  `${EXPORT_NAMES.alpaca}.provenance.json`,
  `${EXPORT_NAMES.messages}.jsonl`,
  `${EXPORT_NAMES.messages}.provenance.json`,
] as const;

/** Refuse up front (before a selection is computed) an export into `outDir` that would replace earlier files. */
export function checkSelectionTarget(outDir: string, opts: { force?: boolean } = {}): void {
  checkLlamaFactoryTarget(outDir, { names: Object.values(EXPORT_NAMES), files: [...EXPORT_FILES] }, opts);
}

/**
 * Write a finished select run's selection as LLaMA-Factory alpaca JSON and chat-messages JSONL, each with a
 * provenance sidecar, merged into the folder's dataset_info.json (writeLlamaFactoryExport: other entries kept, a clash
 * refused unless `force`). Returns the paths written.
 */
export function exportSelection(store: ProjectStore, runId: number, outDir: string, tok: Tokenizer, opts: { force?: boolean } = {}): string[] {
  const run = store.runs.get(runId);
  if (!run || run.kind !== 'select') throw new CliffscopeError('bad-argument', `run #${runId} is not a select run`);
  if (run.status !== 'done') throw new CliffscopeError('bad-argument', `select run #${runId} is ${run.status}; export a finished selection`, { hint: `resume it with --resume ${runId}` });
  const modelRow = run.modelId !== null ? store.models.get(run.modelId) : null;
  if (!modelRow) throw new CliffscopeError('bad-argument', `select run #${runId} records no model`);
  const cfg = storedConfig(store, selectRun, run);
  const chosen = store.selections.list(runId, { selectedOnly: true });
  // The training text is the dataset's own response, split at the think markers as text: decoding the token ids
  // instead would pass it through the tokenizer (normalisation, unknown words, trimmed whitespace). Only a response
  // without a closing marker falls back to the decoded split (each dataset tokenized once).
  const open = tok.thinkMarkers.open?.text;
  const close = tok.thinkMarkers.close?.text;
  const splitText = (response: string | null): { thinking: string; answer: string } | null => {
    if (response === null || !close) return null;
    const at = response.indexOf(close);
    if (at < 0) return null;
    let thinking = response.slice(0, at).trim();
    if (open && thinking.startsWith(open)) thinking = thinking.slice(open.length).trim();
    return { thinking, answer: response.slice(at + close.length).trim() };
  };
  const decoded = new Map<number, Map<number, { thinking: string; answer: string }>>();
  const decodedSplit = (datasetId: number, itemId: number) => {
    if (!decoded.has(datasetId)) {
      const all = readSource(store, tok, { kind: 'dataset', datasetId, chat: cfg.chat });
      // A response whose thinking never closed has no answer to train on (judges read all of it; training must not).
      decoded.set(datasetId, new Map(all.map((x) => [x.item!.id, { thinking: x.thinking, answer: x.thinkingNotClosed ? '' : x.answer }])));
    }
    return decoded.get(datasetId)!.get(itemId)!;
  };
  // Scored on the model's own transcripts: the thinking is the transcript's (decoded), read once.
  const own = cfg.transcriptsRunId
    ? new Map(readSource(store, tok, { kind: 'run', runId: cfg.transcriptsRunId }).map((x) => [x.transcriptId, { thinking: x.thinking, answer: x.thinkingNotClosed ? '' : x.answer }]))
    : null;
  const samples = chosen.map((sel) => {
    const item = store.datasets.item(sel.itemId)!;
    const t = own ? own.get(sel.transcriptId)! : (splitText(item.response) ?? decodedSplit(item.datasetId, item.id));
    // As the paper trains: the (model's own) thinking followed by the dataset's safe answer, when a column names one.
    const answer = cfg.safeResponse ? safeAnswerOf(item, cfg.safeResponse)! : t.answer;
    return { id: String(item.id), prompt: item.prompt, thinking: t.thinking, answer, rank: sel.rank ?? 0, score: sel.score };
  });
  const prov = {
    modelHash: modelRow.contentHash,
    probeId: String(cfg.probeId),
    variant: cfg.variant,
    extra: {
      run: run.uid,
      runId,
      project: store.file,
      dataset: cfg.datasetId,
      fraction: cfg.fraction,
      seed: cfg.seed,
      thinking: cfg.transcriptsRunId ? `the model's own (transcripts run #${cfg.transcriptsRunId})` : "the dataset's response",
      answer: cfg.safeResponse ? `the dataset's column "${cfg.safeResponse}"` : "the scored response's own",
    },
  };
  const alpaca = toAlpacaJson(samples, prov, { datasetName: EXPORT_NAMES.alpaca });
  const messages = toMessagesJsonl(samples, prov, { datasetName: EXPORT_NAMES.messages });
  const [alpacaFile, alpacaProv, messagesFile, messagesProv] = EXPORT_FILES;
  return writeLlamaFactoryExport(
    outDir,
    {
      files: [
        { name: alpacaFile, text: alpaca.text },
        { name: alpacaProv, text: `${JSON.stringify(alpaca.provenance, null, 2)}\n` },
        { name: messagesFile, text: messages.text },
        { name: messagesProv, text: `${JSON.stringify(messages.provenance, null, 2)}\n` },
      ],
      datasetInfo: { ...alpaca.datasetInfo, ...messages.datasetInfo },
    },
    opts,
  );
}
