/**
 * What runs compared side by side need beyond their numbers: the unit each headline number is in (so a fraction shows
 * as a percentage everywhere, a count as a count), and which settings differ between runs (the config diff).
 * Pure: the compare handler fills them in, the renderer formats by them.
 */
import type { RunKind } from './runs/registry.js';

/** percent: a fraction in [0, 1] shown as %; count: whole things; tokens: a length in tokens; number: a score. */
export type HeadlineUnit = 'percent' | 'count' | 'tokens' | 'number';
export const HEADLINE_UNITS_LIST = ['percent', 'count', 'tokens', 'number'] as const;

/** The unit of each headline number that is not a plain score, by `kind:key` (the headline keys of src/shared/runs/). */
const UNITS: Readonly<Record<string, HeadlineUnit>> = {
  'ablate:baselineAsr': 'percent',
  'ablate:bestTopAsr': 'percent',
  'ablate:bestRandomAsr': 'percent',
  'judge:asr': 'percent',
  'judge:judged': 'count',
  'judge:harmful': 'count',
  'judge:thinkingNotClosed': 'count',
  'probe:valAccuracy': 'percent',
  'probe:samples': 'count',
  'probe:bestResidIndex': 'count',
  'select:total': 'count',
  'select:selected': 'count',
  'select:fraction': 'percent',
  'trace:transcripts': 'count',
  'trace:meanWidth': 'tokens',
  'heads:transcripts': 'count',
  'transcripts:transcripts': 'count',
  'transcripts:meanOutputTokens': 'tokens',
  'transcripts:eosRate': 'percent',
  'transcripts:withAnswerBoundary': 'count',
  'transcripts:thinkingNotClosed': 'count',
};

export function headlineUnit(kind: RunKind, key: string): HeadlineUnit {
  // An ablation run's per-cell ASRs are keyed `asr:<cell key>`.
  if (kind === 'ablate' && key.startsWith('asr:')) return 'percent';
  return UNITS[`${kind}:${key}`] ?? 'number';
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A config as dotted paths → leaf values (lists are leaves: `source.runId`, `fractions`). */
export function flattenConfig(value: unknown, prefix = '', out: Map<string, Json> = new Map()): Map<string, Json> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) flattenConfig(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out.set(prefix, (value === undefined ? null : value) as Json);
  }
  return out;
}

/**
 * The settings that differ between runs: every dotted config path whose value is not the same in all of them (a
 * path one run lacks counts as null there), with each run's value in the runs' order; sorted by path.
 */
export function configDiff(configs: readonly unknown[]): { key: string; values: Json[] }[] {
  const flat = configs.map((c) => flattenConfig(c));
  const keys = [...new Set(flat.flatMap((f) => [...f.keys()]))].sort();
  const out: { key: string; values: Json[] }[] = [];
  for (const key of keys) {
    const values = flat.map((f) => (f.has(key) ? f.get(key)! : null));
    const first = JSON.stringify(values[0]);
    if (values.some((v) => JSON.stringify(v) !== first)) out.push({ key, values });
  }
  return out;
}
