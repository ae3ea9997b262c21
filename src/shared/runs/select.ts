/**
 * `select` runs — Cliff-as-a-Judge (docs/METHOD.md §6): teacher-force every (prompt, reasoning response) of a safety
 * training set, score it by its misalignment MS = I − I' under the probe, and select the top fraction (or the lowest
 * I', random, or rule-based) for fine-tuning.
 */
import { z } from 'zod';
import { PAPER_SELECT_FRACTION } from '../method.js';
import { count, maybeNumber, rowId, seed } from '../values.js';
import { defineRun, flag, fmt } from './spec.js';

export const SelectionVariant = z.enum(['top-ms', 'lowest-final', 'random', 'rule-based']);
const fraction = z.number().gt(0, 'must be more than 0').max(1);

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
});

const config = z.strictObject({ datasetId: rowId, probeId: rowId, chat: z.boolean(), variant: SelectionVariant, fraction, seed });
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
    return { datasetId: c.datasetId, probeId: c.probeId, chat: c.chat ?? true, variant: c.variant ?? 'top-ms', fraction: c.fraction ?? PAPER_SELECT_FRACTION, seed: c.seed ?? 0 };
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
      flag('variant', 'how samples are ranked (default top-ms)', { arg: 'top-ms|lowest-final|random|rule-based', field: 'variant' }),
      flag('seed', 'for random / rule-based', { arg: 'S', field: 'seed' }),
      flag('no-chat', 'raw prompts (no chat template)', { field: 'chat' }),
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
    }),
  },
});
