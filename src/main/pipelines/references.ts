/**
 * The row ids a run keeps where the store's foreign keys do not reach: in its stored config, its summary, its items'
 * keys and payloads, and inside judge ids (`probe:<probe id>@<threshold>`). A run exported to a file of its own
 * keeps its ids, so the export follows these references to take along everything the run stands on; a run imported
 * into another project gets new ids, so the import rewrites every one of them (store/transfer.ts).
 *
 * One table per run kind, beside the pipelines that write these formats. tests/store/references.test.ts checks the
 * config and summary paths against the kinds' schemas, so an id field added to a schema without a path here fails.
 */
import { isRunKind, type RunKind } from '../../shared/runs/registry.js';
import type { IdMap, IdTable, RunReferences } from '../store/transfer.js';

/** Dotted paths to ids in a JSON document; `name[]` steps into every element of an array. Absent parts are skipped. */
export type IdPaths = Readonly<Record<string, IdTable>>;

/** An item key pattern: groups (before)(id)(after); the first pattern that matches a key rewrites it. */
type KeyRule = readonly [pattern: RegExp, table: IdTable];

export interface KindReferences {
  config: IdPaths;
  /** The run's summary (its `summary` item's payload). */
  summary: IdPaths;
  /** Every other item's payload. */
  payload: IdPaths;
  keys: readonly KeyRule[];
}

/** Where a transcript source (values.ts TranscriptSource) keeps its id. */
const source = (at: string): IdPaths => ({ [`${at}.runId`]: 'run', [`${at}.datasetId`]: 'dataset' });
/** Items keyed by their source transcript or dataset item (pipelines/sources.ts): t<id> / i<id>. */
const SOURCE_KEYS: readonly KeyRule[] = [
  [/^(t)(\d+)()$/, 'transcript'],
  [/^(i)(\d+)()$/, 'item'],
];
/** Generated transcripts, keyed `<item id>:<setting>` (transcripts.ts transcriptKey). */
const GENERATED_KEY: KeyRule = [/^()(\d+)(:.*)$/, 'item'];

export const RUN_REFERENCES: { readonly [K in RunKind]: KindReferences } = {
  transcripts: {
    config: { datasetId: 'dataset', 'itemIds[]': 'item', probeId: 'probe' },
    summary: { 'skipped[].itemId': 'item' },
    payload: { transcriptId: 'transcript' },
    keys: [GENERATED_KEY],
  },
  probe: {
    config: { ...source('positive'), ...source('negative') },
    summary: { 'probes[].probeId': 'probe', bestProbeId: 'probe' },
    payload: {},
    keys: [
      [/^((?:pos|neg):t)(\d+)()$/, 'transcript'],
      [/^((?:pos|neg):i)(\d+)()$/, 'item'],
    ],
  },
  trace: {
    config: { probeId: 'probe', 'extraProbeIds[]': 'probe', ...source('source') },
    summary: { probeId: 'probe' },
    payload: { transcriptId: 'transcript' },
    keys: SOURCE_KEYS,
  },
  heads: {
    config: { probeId: 'probe', ...source('source') },
    summary: { probeId: 'probe' },
    payload: { transcriptId: 'transcript' },
    keys: SOURCE_KEYS,
  },
  ablate: {
    config: { headsRunId: 'run', probeId: 'probe', harmfulDatasetId: 'dataset', harmlessDatasetId: 'dataset' },
    summary: { 'skipped[].itemId': 'item' },
    payload: { transcriptId: 'transcript' },
    keys: [[/^(verdict:)(\d+)()$/, 'transcript'], GENERATED_KEY],
  },
  judge: {
    config: { runId: 'run', 'judge.probeId': 'probe', harmfulDatasetId: 'dataset' },
    summary: {},
    payload: {},
    keys: SOURCE_KEYS,
  },
  select: {
    config: { datasetId: 'dataset', probeId: 'probe', transcriptsRunId: 'run', judgeRunId: 'run' },
    summary: { probeId: 'probe' },
    payload: { transcriptId: 'transcript', itemId: 'item' },
    keys: SOURCE_KEYS,
  },
  truncate: {
    config: { runId: 'run', probeId: 'probe' },
    summary: { 'skipped[].transcriptId': 'transcript' },
    payload: { transcriptId: 'transcript', sourceTranscriptId: 'transcript' },
    keys: [[/^()(\d+)(:.*)$/, 'transcript']],
  },
  causal: {
    config: { headsRunId: 'run' },
    summary: { headsRunId: 'run', probeId: 'probe' },
    payload: {},
    keys: SOURCE_KEYS,
  },
};

/** Verdict details name the transcript a truncation answer was cut from (pipelines/truncate.ts). */
const VERDICT_DETAIL: IdPaths = { sourceTranscriptId: 'transcript' };

/** `json` (not changed) with the id at each of `paths` passed through `map`. */
export function mapPaths(json: unknown, paths: IdPaths, map: IdMap): unknown {
  let out = structuredClone(json);
  for (const [path, table] of Object.entries(paths)) out = mapAt(out, path.split('.'), table, map);
  return out;
}

function mapAt(node: unknown, steps: string[], table: IdTable, map: IdMap): unknown {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return node;
  const [step, ...rest] = steps as [string, ...string[]];
  const many = step.endsWith('[]');
  const name = many ? step.slice(0, -2) : step;
  const obj = node as Record<string, unknown>;
  if (!Object.prototype.hasOwnProperty.call(obj, name)) return node;
  const one = (v: unknown) => (rest.length ? mapAt(v, rest, table, map) : typeof v === 'number' ? map(table, v) : v);
  const value = obj[name];
  obj[name] = many ? (Array.isArray(value) ? value.map(one) : value) : one(value);
  return node;
}

/** A probe judge's id (analysis/judges.ts probeJudge) holds the probe's row id. */
const PROBE_JUDGE = /^probe:(\d+)@/;
const mapJudge = (s: string, map: IdMap) => s.replace(PROBE_JUDGE, (_, id: string) => `probe:${map('probe', Number(id))}@`);

/** `json` with every probe judge id in it, as a value or as an object's key, passed through `map`. */
export function mapJudgeIds(json: unknown, map: IdMap): unknown {
  if (typeof json === 'string') return mapJudge(json, map);
  if (Array.isArray(json)) return json.map((v) => mapJudgeIds(v, map));
  if (json === null || typeof json !== 'object') return json;
  return Object.fromEntries(Object.entries(json).map(([k, v]) => [mapJudge(k, map), mapJudgeIds(v, map)]));
}

function kindOf(kind: string): KindReferences {
  if (!isRunKind(kind)) throw new Error(`unknown run kind ${kind}`);
  return RUN_REFERENCES[kind];
}

/** What transfer.ts needs of the tables above. */
export const runReferences: RunReferences = {
  config: (kind, config, map) => mapPaths(config, kindOf(kind).config, map),
  itemKey(kind, key, map) {
    for (const [pattern, table] of kindOf(kind).keys) {
      if (pattern.test(key)) return key.replace(pattern, (_, before: string, id: string, after: string) => `${before}${map(table, Number(id))}${after}`);
    }
    return key;
  },
  itemPayload(kind, key, payload, map) {
    const refs = kindOf(kind);
    return mapJudgeIds(mapPaths(payload, key === 'summary' ? refs.summary : refs.payload, map), map);
  },
  judge: (judge, map) => mapJudge(judge, map),
  verdictDetail: (detail, map) => mapPaths(detail, VERDICT_DETAIL, map),
  metrics: (metrics, map) => mapJudgeIds(metrics, map),
};
