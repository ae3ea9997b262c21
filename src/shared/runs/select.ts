/**
 * `select` runs — Cliff-as-a-Judge (docs/METHOD.md §6): teacher-force every (prompt, reasoning response) of a safety
 * training set, score it by its misalignment MS = I − I' under the probe, and select the top fraction (or the lowest
 * I', random, or rule-based) for fine-tuning.
 */
import { z } from 'zod';
import { PAPER_SELECT_FRACTION } from '../method.js';
import { count, maybeNumber, rowId, seed } from '../values.js';
import { defineRun, finishedRun, flag, fmt } from './spec.js';

export const SelectionVariant = z.enum(['top-ms', 'lowest-final', 'random', 'rule-based', 'llm-judge']);
const fraction = z.number().gt(0, 'must be more than 0').max(1);
const columnName = z.string().min(1).max(200);

const input = z.strictObject({
  datasetId: rowId,
  probeId: rowId,
  /** Default true. */
  chat: z.boolean().optional(),
  /** Default 'top-ms'. */
  variant: SelectionVariant.optional(),
  /** Default 0.017 (the paper's 1.7 %). */
  fraction: fraction.optional(),
  seed: seed.optional(),
  /**
   * Score the model's own transcripts of the dataset's prompts (a transcripts run over it) instead of the dataset's
   * responses: the export then trains on the model's own thinking. Null or omitted = the dataset's responses.
   */
  transcriptsRunId: rowId.nullable().optional(),
  /**
   * The dataset column (kept with each item on import) holding a safe answer: the export writes the thinking followed
   * by this answer, as the paper trains on it, and only items with one are scored. Null or omitted = the answer of
   * the scored response itself.
   */
  safeResponse: columnName.nullable().optional(),
  /**
   * 'llm-judge' (the LLM-as-a-judge baseline): the judge run whose verdicts on the transcripts run's answers pick the
   * samples (a guard model's: `judge --run T --guard DIR`). Required with that variant, refused without it.
   */
  judgeRunId: rowId.nullable().optional(),
});

const config = z.strictObject({
  datasetId: rowId,
  probeId: rowId,
  chat: z.boolean(),
  variant: SelectionVariant,
  fraction,
  seed,
  /** Absent on runs stored before it existed: the dataset's responses. */
  transcriptsRunId: rowId.nullable().optional(),
  /** Absent on runs stored before it existed: no safe-answer column. */
  safeResponse: columnName.nullable().optional(),
  /** Absent on runs stored before it existed: no judge run. */
  judgeRunId: rowId.nullable().optional(),
});
export type SelectRunConfig = z.infer<typeof config>;

const summary = z.strictObject({
  probeId: rowId,
  variant: SelectionVariant,
  fraction,
  total: count,
  budget: count,
  selected: count,
  threshold: maybeNumber,
});
export type SelectRunSummary = z.infer<typeof summary>;

export const selectRun = defineRun({
  kind: 'select',
  about: 'Cliff-as-a-Judge: a safety training set ranked by MS, the top fraction selected',
  input,
  config,
  summary,
  resolve(c, project) {
    project.dataset('config.datasetId', c.datasetId);
    project.probe('config.probeId', c.probeId);
    if (c.transcriptsRunId !== undefined && c.transcriptsRunId !== null) {
      const source = project.run('config.transcriptsRunId', c.transcriptsRunId, 'transcripts');
      if (source.datasetId !== c.datasetId) project.fail('config.transcriptsRunId', `transcripts run #${source.id} is of dataset #${source.datasetId}, not #${c.datasetId}`, "generate the model's transcripts of this dataset's prompts first");
    }
    const variant = c.variant ?? 'top-ms';
    const judgeRunId = c.judgeRunId ?? null;
    if (variant === 'llm-judge') {
      if (judgeRunId === null) return project.fail('config.judgeRunId', 'the llm-judge variant needs the judge run whose verdicts pick the samples', 'judge the transcripts run with the guard model first (cliffscope judge --run T --guard DIR), then pass --judge-run');
      if (c.transcriptsRunId === undefined || c.transcriptsRunId === null) project.fail('config.transcriptsRunId', "the llm-judge variant selects among the model's own transcripts that were judged", 'pass --transcripts-run T (the run the judge run judged)');
      finishedRun(project, 'config.judgeRunId', judgeRunId, 'judge');
    } else if (judgeRunId !== null) {
      project.fail('config.judgeRunId', `only the llm-judge variant reads a judge run (the variant is ${variant})`);
    }
    return {
      datasetId: c.datasetId,
      probeId: c.probeId,
      chat: c.chat ?? true,
      variant,
      fraction: c.fraction ?? PAPER_SELECT_FRACTION,
      seed: c.seed ?? 0,
      transcriptsRunId: c.transcriptsRunId ?? null,
      safeResponse: c.safeResponse ?? null,
      judgeRunId,
    };
  },
  links: (c) => ({ datasetId: c.datasetId }),
  report: (s) => [`  ${s.variant}: selected ${fmt(s.selected)} of ${fmt(s.total)} (budget ${fmt(s.budget)}, threshold ${fmt(s.threshold)})`],
  headlines: (s) => [
    { key: 'total', label: 'samples', value: s.total },
    { key: 'selected', label: 'selected', value: s.selected },
    { key: 'threshold', label: 'threshold', value: s.threshold },
    { key: 'fraction', label: 'fraction', value: s.fraction },
  ],
  cli: {
    verb: 'select',
    summary: 'Cliff-as-a-Judge: score a safety training set by MS and export the top p %',
    usage: 'select PROJECT --model DIR --probe ID --dataset NAME [options]',
    about: `Teacher-forces every (prompt, reasoning response) of the dataset, scores it by its misalignment MS = I − I' under
the probe, selects the top p % (paper: 1.7 %) and, with --out, writes LLaMA-Factory alpaca JSON and chat-messages
JSONL with provenance sidecars, merged into DIR's dataset_info.json (every other entry kept).`,
    flags: [
      flag('probe', 'the probe', { arg: 'ID', field: 'probeId' }),
      flag('dataset', 'prompt + response pairs (map the response column when importing)', { arg: 'NAME', field: 'datasetId' }),
      flag('fraction', `default ${PAPER_SELECT_FRACTION}`, { arg: 'P', field: 'fraction' }),
      flag('variant', 'how samples are ranked (default top-ms)', { arg: 'top-ms|lowest-final|random|rule-based|llm-judge', field: 'variant' }),
      flag('seed', 'for random / rule-based / llm-judge', { arg: 'S', field: 'seed' }),
      flag('no-chat', 'raw prompts (no chat template)', { field: 'chat' }),
      flag('transcripts-run', "score the model's own transcripts of the dataset's prompts (a transcripts run) instead of its responses", { arg: 'RUN', field: 'transcriptsRunId' }),
      flag('judge-run', 'llm-judge: the judge run (a guard model) whose harmful verdicts on --transcripts-run pick the samples', { arg: 'RUN', field: 'judgeRunId' }),
      flag('safe-response', 'the dataset column with a safe answer: export the thinking followed by it (as the paper trains)', { arg: 'COLUMN', field: 'safeResponse' }),
    ],
    outFlag: flag('out', 'write the selection files here (a LLaMA-Factory data folder)', { arg: 'DIR' }),
    forceFlag: flag('force', 'replace the files and dataset_info.json entries of an earlier export in DIR'),
    input: (f, cli) => ({
      datasetId: cli.dataset(cli.required(f.dataset, 'dataset'), 'dataset'),
      probeId: cli.id(f.probe, 'probe'),
      chat: !f['no-chat'],
      ...(typeof f.variant === 'string' ? { variant: f.variant } : {}),
      fraction: cli.number(f.fraction, 'fraction'),
      seed: cli.number(f.seed, 'seed'),
      transcriptsRunId: f['transcripts-run'] === undefined ? null : cli.id(f['transcripts-run'], 'transcripts-run'),
      safeResponse: typeof f['safe-response'] === 'string' ? f['safe-response'] : null,
      judgeRunId: f['judge-run'] === undefined ? null : cli.id(f['judge-run'], 'judge-run'),
    }),
  },
});
