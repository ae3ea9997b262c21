/**
 * Cliff-as-a-Judge data selection (docs/METHOD.md §6) and the fine-tuning exports.
 *
 * Every sample of a safety set has been teacher-forced and scored (MS = I − I', final I', whether its answer holds
 * refusal keywords). A selection ranks all samples by a variant's rule and marks the first k selected, k = round(p·n)
 * (at least 1 when p > 0). Ties are broken deterministically, so the same scores always give the same selection.
 *
 * Exports are pure: they return file contents, the caller writes them. Provenance goes in a SIDECAR object, not in
 * the records, so the data file is exactly what LLaMA-Factory's alpaca / sharegpt readers expect (no extra columns
 * to confuse schema inference); the sidecar lists, per record line, the sample id, rank, score and variant, plus the
 * model hash and probe id, and a `dataset_info.json` entry is returned alongside.
 */
import { PAPER_SELECT_FRACTION } from '../../../shared/method.js';
import { SeededRandom } from '../datasets/split.js';
import { CliffscopeError } from '../errors.js';

export type SelectionVariant = 'top-ms' | 'lowest-final' | 'random' | 'rule-based' | 'llm-judge';

/** The paper's selection size: 1.7 % of the data matched training on all of it. */
export { PAPER_SELECT_FRACTION };

export interface SelectionSample {
  id: string;
  /** MS = I − I' (null when the transcript has no plateau). */
  ms: number | null;
  /** I' = r_{t_b} (null when unknown). */
  final: number | null;
  /** Whether the answer contains refusal keywords (see judges.ts). */
  answerHasRefusal: boolean;
  /** 'llm-judge': whether a judge (a guard model) called the answer harmful; undefined = not judged. */
  judgedHarmful?: boolean;
}

export interface SelectOptions {
  /** Default 'top-ms' (the paper's text); 'lowest-final' is what the paper's code ranks by. */
  variant?: SelectionVariant;
  /** Fraction p of all samples to select (default PAPER_SELECT_FRACTION); ignored when count is given. */
  fraction?: number;
  count?: number;
  /** For 'random', 'rule-based' and 'llm-judge'. */
  seed?: number;
}

export interface RankedSample {
  index: number;
  id: string;
  /** The value ranked by (MS or I'); null for random / rule-based and for samples that could not be scored. */
  score: number | null;
  /** 1-based. */
  rank: number;
  selected: boolean;
}

export interface SelectionResult {
  variant: SelectionVariant;
  n: number;
  /** The budget; fewer are selected when fewer samples are eligible. */
  k: number;
  selectedCount: number;
  /** All samples, best first. */
  ranked: RankedSample[];
  /** Score of the last selected sample (the threshold line on the MS / I' histogram); null for random / rule-based. */
  threshold: number | null;
}

const bad = (message: string, hint?: string) => new CliffscopeError('bad-argument', message, { hint });

const finite = (x: number | null): x is number => x !== null && Number.isFinite(x);

function shuffled(items: number[], seed: number): number[] {
  const a = items.slice();
  const rng = new SeededRandom(seed);
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/**
 * Rank and select. Rules (eligible samples first, in this order; the rest follow in input order, unselected):
 *   top-ms:       eligible = finite MS; MS descending, then lower I', then input order.
 *   lowest-final: eligible = finite I'; I' ascending, then higher MS, then input order.
 *   random:       all eligible; a seeded shuffle.
 *   rule-based:   eligible = answers WITHOUT refusal keywords; a seeded shuffle among them.
 *   llm-judge:    eligible = answers a judge (the guard model) called harmful; a seeded shuffle among them.
 */
export function selectSamples(samples: readonly SelectionSample[], opts: SelectOptions = {}): SelectionResult {
  const variant = opts.variant ?? 'top-ms';
  const seed = opts.seed ?? 0;
  const n = samples.length;
  if (!['top-ms', 'lowest-final', 'random', 'rule-based', 'llm-judge'].includes(variant)) throw bad(`unknown selection variant ${variant}`);
  if (!Number.isSafeInteger(seed)) throw bad(`seed must be an integer, got ${seed}`);
  let k: number;
  if (opts.count !== undefined) {
    if (!(Number.isInteger(opts.count) && opts.count >= 0)) throw bad(`count must be a non-negative integer, got ${opts.count}`);
    k = Math.min(opts.count, n);
  } else {
    const p = opts.fraction ?? PAPER_SELECT_FRACTION;
    if (!(p >= 0 && p <= 1)) throw bad(`fraction must be within [0, 1], got ${p}`);
    k = p === 0 || n === 0 ? 0 : Math.min(n, Math.max(1, Math.round(p * n)));
  }
  const seen = new Set<string>();
  samples.forEach((s, i) => {
    if (seen.has(s.id)) throw bad(`sample id ${s.id} appears twice (index ${i})`);
    seen.add(s.id);
  });

  const idx = samples.map((_, i) => i);
  let eligible: number[];
  let scoreOf: (i: number) => number | null = () => null;
  const ms = (i: number) => samples[i]!.ms;
  const fin = (i: number) => samples[i]!.final;
  // Missing tie-break values sort last.
  const asc = (a: number | null, b: number | null) => (finite(a) ? (finite(b) ? a - b : -1) : finite(b) ? 1 : 0);
  if (variant === 'top-ms') {
    eligible = idx.filter((i) => finite(ms(i))).sort((a, b) => ms(b)! - ms(a)! || asc(fin(a), fin(b)) || a - b);
    scoreOf = ms;
  } else if (variant === 'lowest-final') {
    eligible = idx.filter((i) => finite(fin(i))).sort((a, b) => fin(a)! - fin(b)! || asc(neg(ms(a)), neg(ms(b))) || a - b);
    scoreOf = fin;
  } else if (variant === 'random') {
    eligible = shuffled(idx, seed);
  } else if (variant === 'rule-based') {
    eligible = shuffled(
      idx.filter((i) => !samples[i]!.answerHasRefusal),
      seed,
    );
  } else {
    eligible = shuffled(
      idx.filter((i) => samples[i]!.judgedHarmful === true),
      seed,
    );
  }
  const inEligible = new Uint8Array(n);
  for (const i of eligible) inEligible[i] = 1;
  const order = [...eligible, ...idx.filter((i) => !inEligible[i])];
  const selectedCount = Math.min(k, eligible.length);
  const ranked = order.map((i, r) => {
    const score = scoreOf(i);
    return { index: i, id: samples[i]!.id, score: finite(score) ? score : null, rank: r + 1, selected: r < selectedCount };
  });
  const threshold = selectedCount > 0 && (variant === 'top-ms' || variant === 'lowest-final') ? ranked[selectedCount - 1]!.score : null;
  return { variant, n, k, selectedCount, ranked, threshold };
}

function neg(x: number | null): number | null {
  return x === null ? null : -x;
}

// ---------------------------------------------------------------------------------------------------------------
// Exports

export interface ExportSample {
  id: string;
  prompt: string;
  /** The model's own thinking (without the markers; R1-style templates put the opening marker in the prompt). */
  thinking: string;
  /** The safe answer. */
  answer: string;
  rank: number;
  score: number | null;
}

export interface ExportProvenance {
  modelHash: string;
  probeId: string;
  variant: SelectionVariant;
  /** Anything else worth keeping (fraction, seed, source dataset, run id…). JSON-serialisable. */
  extra?: Record<string, unknown>;
}

export interface ProvenanceSidecar {
  format: 'cliffscope-selection-provenance';
  version: 1;
  dataFormat: 'alpaca' | 'messages';
  modelHash: string;
  probeId: string;
  variant: SelectionVariant;
  extra?: Record<string, unknown>;
  /** One entry per record, in record order (record i is array element i / line i + 1). */
  records: { record: number; id: string; rank: number; score: number | null }[];
}

export interface SelectionExport {
  /** The data file's text (a JSON array for alpaca, one JSON object per line for messages). */
  text: string;
  provenance: ProvenanceSidecar;
  /** An entry to merge into LLaMA-Factory's data/dataset_info.json. */
  datasetInfo: Record<string, unknown>;
}

export interface ExportOptions {
  /** Name of the dataset in dataset_info.json (default 'cliffscope_selection'). */
  datasetName?: string;
  /** Data file name the entry points at (default `<datasetName>.json` / `.jsonl`). */
  fileName?: string;
  /** Inserted between thinking and answer (default "</think>\n\n", docs/METHOD.md §6). */
  closeMarker?: string;
  /** Prepended to the thinking (default "": the opening marker usually lives in the chat template's prompt). */
  openMarker?: string;
}

/** The assistant turn: openMarker + thinking + closeMarker + answer. */
export function assistantOutput(thinking: string, answer: string, opts: Pick<ExportOptions, 'closeMarker' | 'openMarker'> = {}): string {
  return (opts.openMarker ?? '') + thinking + (opts.closeMarker ?? '</think>\n\n') + answer;
}

function sidecar(samples: readonly ExportSample[], prov: ExportProvenance, dataFormat: 'alpaca' | 'messages'): ProvenanceSidecar {
  if (!prov.modelHash) throw bad('provenance needs the model hash');
  if (!prov.probeId) throw bad('provenance needs the probe id');
  samples.forEach((s, i) => {
    for (const f of ['prompt', 'thinking', 'answer'] as const) {
      if (typeof s[f] !== 'string') throw bad(`export sample ${i} (${s.id}) has no ${f} text`);
    }
  });
  return {
    format: 'cliffscope-selection-provenance',
    version: 1,
    dataFormat,
    modelHash: prov.modelHash,
    probeId: prov.probeId,
    variant: prov.variant,
    ...(prov.extra ? { extra: prov.extra } : {}),
    records: samples.map((s, i) => ({ record: i, id: s.id, rank: s.rank, score: s.score })),
  };
}

/** LLaMA-Factory alpaca JSON: [{instruction: prompt, input: "", output: thinking + "</think>\n\n" + answer}]. */
export function toAlpacaJson(samples: readonly ExportSample[], prov: ExportProvenance, opts: ExportOptions = {}): SelectionExport {
  const provenance = sidecar(samples, prov, 'alpaca');
  const records = samples.map((s) => ({ instruction: s.prompt, input: '', output: assistantOutput(s.thinking, s.answer, opts) }));
  const name = opts.datasetName ?? 'cliffscope_selection';
  return {
    text: JSON.stringify(records, null, 2) + '\n',
    provenance,
    datasetInfo: { [name]: { file_name: opts.fileName ?? `${name}.json`, columns: { prompt: 'instruction', query: 'input', response: 'output' } } },
  };
}

/** Chat JSONL: {"messages":[{"role":"user","content":prompt},{"role":"assistant","content":output}]} per line. */
export function toMessagesJsonl(samples: readonly ExportSample[], prov: ExportProvenance, opts: ExportOptions = {}): SelectionExport {
  const provenance = sidecar(samples, prov, 'messages');
  const lines = samples.map((s) =>
    JSON.stringify({
      messages: [
        { role: 'user', content: s.prompt },
        { role: 'assistant', content: assistantOutput(s.thinking, s.answer, opts) },
      ],
    }),
  );
  const name = opts.datasetName ?? 'cliffscope_selection';
  return {
    text: lines.length ? lines.join('\n') + '\n' : '',
    provenance,
    datasetInfo: {
      [name]: {
        file_name: opts.fileName ?? `${name}.jsonl`,
        formatting: 'sharegpt',
        columns: { messages: 'messages' },
        tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant' },
      },
    },
  };
}
