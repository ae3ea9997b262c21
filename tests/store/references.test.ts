/**
 * Where each run kind keeps row ids in its JSON (pipelines/references.ts), which export follows and import rewrites:
 * the declared config and summary paths are exactly the schemas' id fields, and keys, payloads and judge ids are
 * rewritten where they hold ids and left alone where they do not.
 */
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { mapJudgeIds, mapPaths, RUN_REFERENCES, runReferences } from '../../src/main/pipelines/references.js';
import type { IdMap, IdTable } from '../../src/main/store/transfer.js';
import { RUN_KINDS, specOf } from '../../src/shared/runs/registry.js';
import { rowId } from '../../src/shared/values.js';

/** Every path (in references.ts's notation) at which `schema` holds a row id. */
function idPaths(schema: z.ZodType, at: string[] = [], out = new Set<string>()): Set<string> {
  if (schema === rowId) {
    out.add(at.join('.'));
    return out;
  }
  const def = (schema as unknown as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;
  const into = (s: unknown, path = at) => idPaths(s as z.ZodType, path, out);
  switch (def.type) {
    case 'object':
      for (const [name, s] of Object.entries(def.shape as Record<string, unknown>)) into(s, [...at, name]);
      break;
    case 'array':
      into(def.element, [...at.slice(0, -1), `${at[at.length - 1]}[]`]);
      break;
    case 'optional':
    case 'nullable':
    case 'default':
    case 'readonly':
      into(def.innerType);
      break;
    case 'union':
      for (const s of def.options as unknown[]) into(s);
      break;
    case 'pipe':
      into(def.in);
      into(def.out);
      break;
    case 'record':
      into(def.valueType, [...at, '*']);
      break;
    default:
      break;
  }
  return out;
}

const shift: IdMap = (table, id) => id + { run: 1000, probe: 2000, dataset: 3000, item: 4000, transcript: 5000 }[table];

describe('run references', () => {
  it.each(RUN_KINDS)("%s: the config and summary paths are exactly the schema's id fields", (kind) => {
    const spec = specOf(kind);
    expect(new Set(Object.keys(RUN_REFERENCES[kind].config))).toEqual(idPaths(spec.config));
    expect(new Set(Object.keys(RUN_REFERENCES[kind].summary))).toEqual(idPaths(spec.summary));
  });

  it('a path names the table its id belongs to, and only ids move', () => {
    const config = { headsRunId: 3, probeId: null, harmfulDatasetId: 4, harmlessDatasetId: 5, fractions: [0.1], seed: 7 };
    expect(runReferences.config('ablate', config, shift)).toEqual({ ...config, headsRunId: 1003, harmfulDatasetId: 3004, harmlessDatasetId: 3005 });
    expect(config.headsRunId).toBe(3); // the input is not changed
    const trace = { probeId: 2, extraProbeIds: [3, 4], source: { kind: 'run', runId: 9 }, options: {} };
    expect(runReferences.config('trace', trace, shift)).toEqual({ ...trace, probeId: 2002, extraProbeIds: [2003, 2004], source: { kind: 'run', runId: 1009 } });
    const fromDataset = { ...trace, source: { kind: 'dataset', datasetId: 9, chat: true } };
    expect(runReferences.config('trace', fromDataset, shift)).toMatchObject({ source: { kind: 'dataset', datasetId: 3009, chat: true } });
    const judge = { runId: 1, judge: { kind: 'probe', probeId: 6, threshold: 0.5 }, harmfulDatasetId: null };
    expect(runReferences.config('judge', judge, shift)).toEqual({ ...judge, runId: 1001, judge: { kind: 'probe', probeId: 2006, threshold: 0.5 } });
    expect(mapPaths({ skipped: [{ itemId: 1, setting: 'baseline', reason: 'x' }] }, RUN_REFERENCES.transcripts.summary, shift)).toEqual({ skipped: [{ itemId: 4001, setting: 'baseline', reason: 'x' }] });
  });

  it('item keys: each kind its own form, fixed names unchanged', () => {
    const cases: [string, string, string][] = [
      ['transcripts', '12:baseline', '4012:baseline'],
      ['ablate', '12:top:k3:g0', '4012:top:k3:g0'],
      ['ablate', 'verdict:40', 'verdict:5040'],
      ['truncate', '40:f:0.5', '5040:f:0.5'],
      ['trace', 't40', 't5040'],
      ['heads', 'i12', 'i4012'],
      ['select', 'i12', 'i4012'],
      ['causal', 't40', 't5040'],
      ['judge', 't40', 't5040'],
      ['probe', 'pos:t40', 'pos:t5040'],
      ['probe', 'neg:i12', 'neg:i4012'],
      ['heads', 'average', 'average'],
      ['select', 'selection', 'selection'],
      ['ablate', 'summary', 'summary'],
    ];
    for (const [kind, key, expected] of cases) expect(runReferences.itemKey(kind, key, shift), `${kind} ${key}`).toBe(expected);
  });

  it('payloads: the summary by its paths, items by theirs, judge ids wherever they appear', () => {
    expect(runReferences.itemPayload('select', 'i12', { transcriptId: 40, itemId: 12, ms: 0.5 }, shift)).toEqual({ transcriptId: 5040, itemId: 4012, ms: 0.5 });
    expect(runReferences.itemPayload('select', 'summary', { probeId: 2, selected: 3 }, shift)).toEqual({ probeId: 2002, selected: 3 });
    const summary = { judge: 'probe:7@0.5', judges: ['probe:7@0.5', 'keyword:jbb'], cells: [{ key: 'baseline', byJudge: { 'probe:7@0.5': { asr: 1 }, 'keyword:jbb': { asr: 0.5 } } }] };
    expect(runReferences.itemPayload('ablate', 'summary', summary, shift)).toEqual({
      judge: 'probe:2007@0.5',
      judges: ['probe:2007@0.5', 'keyword:jbb'],
      cells: [{ key: 'baseline', byJudge: { 'probe:2007@0.5': { asr: 1 }, 'keyword:jbb': { asr: 0.5 } } }],
    });
    expect(runReferences.judge('probe:7@0.5', shift)).toBe('probe:2007@0.5');
    expect(runReferences.judge('guard:sha256:abc', shift)).toBe('guard:sha256:abc');
    expect(mapJudgeIds({ a: ['probe:1@0.2'], b: 'probed' }, shift)).toEqual({ a: ['probe:2001@0.2'], b: 'probed' });
    expect(runReferences.verdictDetail({ sourceTranscriptId: 4, fraction: 0.5 }, shift)).toEqual({ sourceTranscriptId: 5004, fraction: 0.5 });
  });

  it('collecting with an identity map finds every id a config names', () => {
    const seen: [IdTable, number][] = [];
    const config = { datasetId: 1, probeId: 2, chat: true, variant: 'ms', fraction: 0.1, seed: 0, transcriptsRunId: 3, safeResponse: null, judgeRunId: 4 };
    runReferences.config('select', config, (table, id) => (seen.push([table, id]), id));
    expect(seen.sort()).toEqual([
      ['dataset', 1],
      ['probe', 2],
      ['run', 3],
      ['run', 4],
    ]);
  });
});
