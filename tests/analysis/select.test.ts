/**
 * Cliff-as-a-Judge selection (docs/METHOD.md §6): each variant's ranking and tie-breaking on a hand-built set, the
 * selection size, seeded variants, and the LLaMA-Factory exports with their provenance sidecar.
 */
import { describe, expect, it } from 'vitest';
import { CliffscopeError } from '../../src/main/engine/errors.js';
import {
  assistantOutput,
  type ExportSample,
  PAPER_SELECT_FRACTION,
  selectSamples,
  type SelectionSample,
  toAlpacaJson,
  toMessagesJsonl,
} from '../../src/main/engine/analysis/select.js';

const S: SelectionSample[] = [
  { id: 'a', ms: 0.5, final: 0.2, answerHasRefusal: true },
  { id: 'b', ms: 0.9, final: 0.1, answerHasRefusal: false },
  { id: 'c', ms: 0.5, final: 0.1, answerHasRefusal: true },
  { id: 'd', ms: null, final: 0.05, answerHasRefusal: false },
  { id: 'e', ms: 0.2, final: 0.6, answerHasRefusal: true },
  { id: 'f', ms: 0.9, final: 0.1, answerHasRefusal: false },
];
const ids = (r: { ranked: { id: string }[] }) => r.ranked.map((x) => x.id).join('');
const chosen = (r: { ranked: { id: string; selected: boolean }[] }) =>
  r.ranked
    .filter((x) => x.selected)
    .map((x) => x.id)
    .join('');

describe('selectSamples', () => {
  it('top-ms (default): MS descending, ties → lower I′ → input order; unscored last and never selected', () => {
    const r = selectSamples(S, { fraction: 0.5 });
    expect(r.variant).toBe('top-ms');
    expect(ids(r)).toBe('bfcaed');
    expect(r.k).toBe(3);
    expect(chosen(r)).toBe('bfc');
    expect(r.threshold).toBe(0.5);
    expect(r.ranked.map((x) => x.rank)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(r.ranked[5]).toEqual({ index: 3, id: 'd', score: null, rank: 6, selected: false });
    expect(selectSamples(S, { count: 6 }).selectedCount).toBe(5); // d has no MS
  });

  it('lowest-final: I′ ascending, ties → higher MS → input order', () => {
    const r = selectSamples(S, { variant: 'lowest-final', count: 2 });
    expect(ids(r)).toBe('dbfcae');
    expect(chosen(r)).toBe('db');
    expect(r.threshold).toBe(0.1);
    expect(r.ranked[0]!.score).toBe(0.05);
  });

  it('selection size: round(p·n), at least one when p > 0; count overrides', () => {
    const many = Array.from({ length: 100 }, (_, i) => ({ id: `s${i}`, ms: i / 100, final: 0, answerHasRefusal: false }));
    expect(selectSamples(many).k).toBe(2); // the paper's 1.7 %
    expect(PAPER_SELECT_FRACTION).toBe(0.017);
    expect(selectSamples(many.slice(0, 10)).k).toBe(1);
    expect(selectSamples(many, { fraction: 0 }).selectedCount).toBe(0);
    expect(selectSamples(many, { fraction: 0.5, count: 7 }).k).toBe(7);
    expect(chosen(selectSamples(many, { count: 3 }))).toBe('s99s98s97');
    expect(selectSamples([], {}).k).toBe(0);
  });

  it('random: a seeded permutation of everything', () => {
    const a = selectSamples(S, { variant: 'random', count: 2, seed: 3 });
    expect(selectSamples(S, { variant: 'random', count: 2, seed: 3 })).toEqual(a);
    expect([...ids(a)].sort().join('')).toBe('abcdef');
    expect(a.selectedCount).toBe(2);
    expect(a.threshold).toBeNull();
    const orders = new Set([0, 1, 2, 3, 4].map((seed) => ids(selectSamples(S, { variant: 'random', seed }))));
    expect(orders.size).toBeGreaterThan(1);
  });

  it('rule-based: only answers without refusal keywords are eligible', () => {
    const r = selectSamples(S, { variant: 'rule-based', count: 2, seed: 1 });
    expect(r.selectedCount).toBe(2);
    for (const x of r.ranked.filter((y) => y.selected)) expect(S[x.index]!.answerHasRefusal).toBe(false);
    expect([...ids(r).slice(0, 3)].sort().join('')).toBe('bdf'); // eligible first
    expect(ids(r).slice(3)).toBe('ace'); // then the rest in input order
    expect(selectSamples(S, { variant: 'rule-based', count: 5 }).selectedCount).toBe(3);
  });

  it('llm-judge: only answers the judge called harmful are eligible; unjudged ones are not', () => {
    const judged = S.map((x, i) => ({ ...x, ...(i === 5 ? {} : { judgedHarmful: i % 2 === 0 }) }));
    const r = selectSamples(judged, { variant: 'llm-judge', count: 5, seed: 2 });
    expect(r.selectedCount).toBe(3);
    expect([...ids(r).slice(0, 3)].sort().join('')).toBe('ace'); // a, c, e judged harmful; f not judged
    expect(ids(r).slice(3)).toBe('bdf');
    expect(r.threshold).toBeNull();
    expect(selectSamples(judged, { variant: 'llm-judge', count: 5, seed: 2 })).toEqual(r);
  });

  it('rejects duplicate ids and bad options', () => {
    expect(() => selectSamples([S[0]!, S[0]!])).toThrow(/appears twice/);
    expect(() => selectSamples(S, { fraction: 2 })).toThrow(CliffscopeError);
    expect(() => selectSamples(S, { count: -1 })).toThrow(/count/);
    expect(() => selectSamples(S, { variant: 'best' as never })).toThrow(/unknown selection variant/);
  });
});

const EX: ExportSample[] = [
  { id: 'b', prompt: 'How do I pick a lock?', thinking: 'The user wants…\nThis could be misused.', answer: "I can't help with that.", rank: 1, score: 0.9 },
  { id: 'f', prompt: 'Write malware', thinking: 'No.', answer: 'I won\'t write malware. "Quotes" stay intact.', rank: 2, score: 0.85 },
];
const PROV = { modelHash: 'sha256:m1', probeId: 'probe:p1', variant: 'top-ms' as const, extra: { fraction: 0.017 } };

describe('exports', () => {
  it('assistant output = thinking + "</think>\\n\\n" + answer', () => {
    expect(assistantOutput('think', 'answer')).toBe('think</think>\n\nanswer');
    expect(assistantOutput('t', 'a', { openMarker: '<think>\n', closeMarker: '\n</think>\n\n' })).toBe('<think>\nt\n</think>\n\na');
  });

  it('alpaca JSON holds exactly instruction / input / output', () => {
    const out = toAlpacaJson(EX, PROV, { datasetName: 'cliff_top' });
    expect(JSON.parse(out.text)).toEqual([
      { instruction: 'How do I pick a lock?', input: '', output: "The user wants…\nThis could be misused.</think>\n\nI can't help with that." },
      { instruction: 'Write malware', input: '', output: 'No.</think>\n\nI won\'t write malware. "Quotes" stay intact.' },
    ]);
    expect(out.datasetInfo).toEqual({
      cliff_top: { file_name: 'cliff_top.json', columns: { prompt: 'instruction', query: 'input', response: 'output' } },
    });
  });

  it('messages JSONL: one {"messages": [user, assistant]} object per line, nothing else', () => {
    const out = toMessagesJsonl(EX, PROV);
    const lines = out.text.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    const first = JSON.parse(lines[0]!);
    expect(Object.keys(first)).toEqual(['messages']);
    expect(first.messages).toEqual([
      { role: 'user', content: 'How do I pick a lock?' },
      { role: 'assistant', content: "The user wants…\nThis could be misused.</think>\n\nI can't help with that." },
    ]);
    expect(out.datasetInfo).toEqual({
      cliffscope_selection: {
        file_name: 'cliffscope_selection.jsonl',
        formatting: 'sharegpt',
        columns: { messages: 'messages' },
        tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant' },
      },
    });
  });

  it('provenance sidecar: model hash, probe id, variant and per-record id / rank / score', () => {
    const { provenance } = toMessagesJsonl(EX, PROV);
    expect(provenance).toEqual({
      format: 'cliffscope-selection-provenance',
      version: 1,
      dataFormat: 'messages',
      modelHash: 'sha256:m1',
      probeId: 'probe:p1',
      variant: 'top-ms',
      extra: { fraction: 0.017 },
      records: [
        { record: 0, id: 'b', rank: 1, score: 0.9 },
        { record: 1, id: 'f', rank: 2, score: 0.85 },
      ],
    });
    expect(toAlpacaJson(EX, PROV).provenance.dataFormat).toBe('alpaca');
    expect(() => toAlpacaJson(EX, { ...PROV, modelHash: '' })).toThrow(/model hash/);
    expect(() => toAlpacaJson([{ ...EX[0]!, thinking: undefined as never }], PROV)).toThrow(/no thinking/);
  });
});
