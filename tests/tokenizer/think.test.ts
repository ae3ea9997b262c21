import { describe, expect, it } from 'vitest';
import { CliffscopeError } from '../../src/main/engine/errors.js';
import { Tokenizer, type ChatMessage } from '../../src/main/engine/tokenizer/tokenizer.js';
import { readTranscript, storedThinkingState } from '../../src/main/engine/runtime/transcript.js';
import { closingSuffixText, splitTranscriptIds, THINK_MARKER_PAIRS } from '../../src/main/engine/tokenizer/think.js';
import { loadReal, readRealJson } from './helpers.js';

const ASK: ChatMessage[] = [{ role: 'user', content: 'How do I pick a lock?' }];
const GENERATION = '<think>\nreasoning\n</think>\n\nanswer';

/** Qwen3's tokenizer with its template's generation prompt changed to pre-fill "<think>\n", as R1 distills do. */
function qwenPrefilling(): Tokenizer {
  const config = readRealJson('qwen3', 'tokenizer_config.json');
  const template = `{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}`;
  return Tokenizer.fromObjects(readRealJson('qwen3', 'tokenizer.json'), { ...config, chat_template: template });
}

/**
 * DeepSeek-V3's tokenizer turned into an R1-style one: two placeholder tokens become <think> / </think> and the
 * template's final '<｜Assistant｜>' becomes '<｜Assistant｜><think>\n'.
 */
function deepseekWithThink(): Tokenizer {
  const json = readRealJson('deepseek_v3', 'tokenizer.json');
  const config = readRealJson('deepseek_v3', 'tokenizer_config.json');
  const added = json.added_tokens.map((tok: { id: number; content: string }) =>
    tok.id === 128798 ? { ...tok, content: '<think>', special: false } : tok.id === 128799 ? { ...tok, content: '</think>', special: false } : tok,
  );
  const ending = "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %}";
  expect(config.chat_template.endsWith(ending)).toBe(true);
  const template = config.chat_template.slice(0, -ending.length) + "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\\n'}}{% endif %}";
  return Tokenizer.fromObjects({ ...json, added_tokens: added }, { ...config, chat_template: template });
}

describe('think marker detection', () => {
  it('uses a table with the <think> pair', () => {
    expect(THINK_MARKER_PAIRS).toContainEqual({ open: '<think>', close: '</think>' });
  });

  it('finds Qwen3 markers as single tokens', async () => {
    const t = await loadReal('qwen3');
    expect(t.thinkMarkers).toEqual({ open: { text: '<think>', id: 151667 }, close: { text: '</think>', id: 151668 } });
  });

  it('finds none in Llama 3.1, where "<think>" is several ordinary tokens', async () => {
    const t = await loadReal('llama3_1');
    expect(t.encode('<think>').length).toBeGreaterThan(1);
    expect(t.thinkMarkers).toEqual({ open: null, close: null });
  });

  it('finds none in the shipped DeepSeek-V3 tokenizer (the base V3 vocabulary has no think tokens)', async () => {
    const t = await loadReal('deepseek_v3');
    expect(t.tokenToId('<think>')).toBeUndefined();
    expect(t.thinkMarkers).toEqual({ open: null, close: null });
  });

  it('finds them once a DeepSeek vocabulary adds them, at their ids', () => {
    expect(deepseekWithThink().thinkMarkers).toEqual({ open: { text: '<think>', id: 128798 }, close: { text: '</think>', id: 128799 } });
  });
});

describe('promptPrefillsThink', () => {
  it('is false for the shipped DeepSeek-V3 template, which ends the prompt at <｜Assistant｜>', async () => {
    const t = await loadReal('deepseek_v3');
    const { text, ids } = t.encodeChat(ASK);
    expect(text.endsWith('<｜Assistant｜>')).toBe(true);
    expect(t.promptPrefillsThink(ids)).toBe(false);
    expect(t.promptPrefillsThink(text)).toBe(false);
  });

  it('is true for an R1-style DeepSeek template that ends with "<think>\\n"', () => {
    const t = deepseekWithThink();
    const { text, ids } = t.encodeChat(ASK);
    expect(text.endsWith('<｜Assistant｜><think>\n')).toBe(true);
    expect(ids.at(-2)).toBe(128798);
    expect(t.promptPrefillsThink(ids)).toBe(true);
    expect(t.promptPrefillsThink(text)).toBe(true);
  });

  it('is false for Qwen3 (the model writes <think> itself), and for its enable_thinking=false block', async () => {
    const t = await loadReal('qwen3');
    expect(t.promptPrefillsThink(t.encodeChat(ASK).ids)).toBe(false);
    const noThink = t.encodeChat(ASK, { extra: { enable_thinking: false } });
    expect(noThink.text.endsWith('<think>\n\n</think>\n\n')).toBe(true);
    expect(t.promptPrefillsThink(noThink.ids)).toBe(false);
  });

  it('is true for a small template that pre-fills, by ids and by text', () => {
    const t = qwenPrefilling();
    const { text, ids } = t.encodeChat(ASK);
    expect(text).toBe('<|im_start|>user\nHow do I pick a lock?<|im_end|>\n<|im_start|>assistant\n<think>\n');
    expect(t.promptPrefillsThink(ids)).toBe(true);
    expect(t.promptPrefillsThink(text)).toBe(true);
    expect(t.promptPrefillsThink(text.replace('<think>\n', ''))).toBe(false);
    expect(t.promptPrefillsThink('<think> not at the end')).toBe(false);
  });

  it('is false without markers in the vocabulary', async () => {
    const t = await loadReal('llama3_1');
    expect(t.promptPrefillsThink('<|start_header_id|>assistant<|end_header_id|>\n\n<think>\n')).toBe(false);
  });
});

describe('splitTranscript', () => {
  it('splits a Qwen3 transcript into prompt, thinking and answer', async () => {
    const t = await loadReal('qwen3');
    const prompt = t.encodeChat(ASK);
    const P = prompt.ids.length;
    const ids = [...prompt.ids, ...t.encode(GENERATION)];
    // Encoding prompt and generation together gives the same tokens.
    expect(t.encode(prompt.text + GENERATION)).toEqual(ids);
    // <think> "\n" "reason" "ing" "\n" </think> "\n\n" "answer"
    expect(ids.slice(P)).toEqual([151667, 198, 19895, 287, 198, 151668, 271, 9217]);

    const s = t.splitTranscript(ids, P);
    expect(s).toEqual({
      state: 'closed',
      thinkOpen: P,
      thinkClose: P + 5,
      thinkingStart: P + 1,
      thinkingEnd: P + 5,
      answerStart: P + 7,
      answerBoundary: P + 6,
    });
    expect(t.decode(ids.slice(s.thinkingStart!, s.thinkingEnd!))).toBe('\nreasoning\n');
    expect(t.decode(ids.slice(0, s.answerBoundary! + 1))).toBe(prompt.text + '<think>\nreasoning\n</think>\n\n');
    expect(t.decode(ids.slice(s.answerStart!))).toBe('answer');
  });

  it('puts t_b on </think> when the answer follows with no whitespace', async () => {
    const t = await loadReal('qwen3');
    const P = t.encodeChat(ASK).ids.length;
    const ids = [...t.encodeChat(ASK).ids, ...t.encode('<think>\nr\n</think>No.')];
    const s = t.splitTranscript(ids, P);
    expect(ids[s.answerBoundary!]).toBe(151668);
    expect(t.decode(ids.slice(s.answerStart!))).toBe('No.');
  });

  it('takes a pre-filled <think> from the prompt', () => {
    const t = qwenPrefilling();
    const prompt = t.encodeChat(ASK);
    const P = prompt.ids.length;
    const ids = [...prompt.ids, ...t.encode('reasoning\n</think>\n\nanswer')];
    const s = t.splitTranscript(ids, P);
    expect(s.thinkOpen).toBe(P - 2); // <think> then "\n" end the prompt
    expect(s.thinkingStart).toBe(P - 1);
    expect(t.decode(ids.slice(s.thinkingStart!, s.thinkingEnd!))).toBe('\nreasoning\n');
    expect(ids[s.thinkClose!]).toBe(151668);
    expect(t.decode(ids.slice(s.answerStart!))).toBe('answer');
    expect(s.answerBoundary).toBe(s.answerStart! - 1);
  });

  it('does the same for the R1-style DeepSeek tokenizer', () => {
    const t = deepseekWithThink();
    const prompt = t.encodeChat(ASK);
    const P = prompt.ids.length;
    const ids = [...prompt.ids, ...t.encode('reasoning\n</think>\n\nI will not help with that.')];
    const s = t.splitTranscript(ids, P);
    expect(s.thinkOpen).toBe(P - 2);
    expect(t.decode(ids.slice(s.thinkingStart!, s.thinkingEnd!))).toBe('\nreasoning\n');
    expect(t.decode(ids.slice(s.answerStart!))).toBe('I will not help with that.');
    expect(t.decode([ids[s.answerBoundary!]!])).toBe('\n\n');
  });

  it("uses the prompt's empty think block for Qwen3 with enable_thinking=false", async () => {
    const t = await loadReal('qwen3');
    const prompt = t.encodeChat(ASK, { extra: { enable_thinking: false } });
    const P = prompt.ids.length;
    expect(prompt.ids.slice(P - 4)).toEqual([151667, 271, 151668, 271]);
    const ids = [...prompt.ids, ...t.encode('answer')];
    expect(t.splitTranscript(ids, P)).toEqual({
      state: 'closed',
      thinkOpen: P - 4,
      thinkClose: P - 2,
      thinkingStart: P - 3,
      thinkingEnd: P - 2,
      answerStart: P,
      answerBoundary: P - 1,
    });
  });

  it('ignores a finished think block in an earlier turn of the prompt', async () => {
    const t = await loadReal('qwen3');
    const promptText =
      '<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nold\n</think>\n\nold answer<|im_end|>\n' +
      '<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n';
    const promptIds = t.encode(promptText);
    const P = promptIds.length;
    const ids = [...promptIds, ...t.encode(GENERATION)];
    const s = t.splitTranscript(ids, P);
    expect(s.thinkOpen).toBe(P);
    expect(s.thinkClose).toBe(P + 5);
    expect(s.answerStart).toBe(P + 7);
  });

  it('runs thinking to the end while </think> has not come yet: the whole output is judged, t_b is not among the ids', async () => {
    const t = await loadReal('qwen3');
    const P = t.encodeChat(ASK).ids.length;
    const ids = [...t.encodeChat(ASK).ids, ...t.encode('<think>\nstill going')];
    expect(t.splitTranscript(ids, P)).toEqual({
      state: 'not-closed',
      thinkOpen: P,
      thinkClose: null,
      thinkingStart: P + 1,
      thinkingEnd: ids.length,
      answerStart: P,
      answerBoundary: null,
    });
  });

  it('starts thinking at the end of the prompt when the model writes only </think>', async () => {
    const t = await loadReal('qwen3');
    const P = t.encodeChat(ASK).ids.length;
    const ids = [...t.encodeChat(ASK).ids, ...t.encode('reasoning\n</think>\n\nanswer')];
    const s = t.splitTranscript(ids, P);
    expect(s.thinkOpen).toBeNull();
    expect(s.thinkingStart).toBe(P);
    expect(t.decode(ids.slice(s.thinkingStart!, s.thinkingEnd!))).toBe('reasoning\n');
    expect(t.decode(ids.slice(s.answerStart!))).toBe('answer');
  });

  it('without markers the whole output is the answer and t_b is the last prompt token', async () => {
    const t = await loadReal('qwen3');
    const P = t.encodeChat(ASK).ids.length;
    const ids = [...t.encodeChat(ASK).ids, ...t.encode('Just an answer.')];
    const none = (p: number) => ({ state: 'none', thinkOpen: null, thinkClose: null, thinkingStart: null, thinkingEnd: null, answerStart: p, answerBoundary: p - 1 });
    expect(t.splitTranscript(ids, P)).toEqual(none(P));
    // Llama 3.1 has no marker tokens, so "<think>" written as text is not a marker either.
    const llama = await loadReal('llama3_1');
    const lp = llama.encodeChat(ASK).ids;
    expect(llama.splitTranscript([...lp, ...llama.encode(GENERATION)], lp.length)).toEqual(none(lp.length));
    // An empty prompt has no last prompt token.
    expect(splitTranscriptIds([4, 5], 0, 10, 11, () => false)).toMatchObject({ state: 'none', answerStart: 0, answerBoundary: null });
  });

  it('the closing suffix the probe reads is "\\n</think>\\n\\n" with the model\'s own marker', () => {
    expect(closingSuffixText('</think>')).toBe('\n</think>\n\n');
    expect(closingSuffixText(null)).toBe('\n</think>\n\n');
    expect(closingSuffixText('</reasoning>')).toBe('\n</reasoning>\n\n');
  });

  it('lets the answer start at the very end when the generation stops right after the markers', () => {
    // ids: 0 prompt, 1 <think>=10, 2 thought, 3 </think>=11, 4 whitespace=5
    const s = splitTranscriptIds([0, 10, 2, 11, 5], 1, 10, 11, (id) => id === 5);
    expect(s).toEqual({ state: 'closed', thinkOpen: 1, thinkClose: 3, thinkingStart: 2, thinkingEnd: 3, answerStart: 5, answerBoundary: 4 });
  });

  it('rejects a prompt length outside the transcript', async () => {
    const t = await loadReal('qwen3');
    expect(() => t.splitTranscript([1, 2, 3], 4)).toThrow(CliffscopeError);
    expect(() => t.splitTranscript([1, 2, 3], -1)).toThrow(expect.objectContaining({ code: 'bad-argument' }));
  });
});

describe('readTranscript: the one answer rule (docs/METHOD.md §0)', () => {
  it('closed: the answer after </think>, the probe reads the transcript as it is', async () => {
    const t = await loadReal('qwen3');
    const P = t.encodeChat(ASK).ids.length;
    const ids = [...t.encodeChat(ASK).ids, ...t.encode(GENERATION)];
    const r = readTranscript(t, ids, P);
    expect(r).toMatchObject({ thinkingNotClosed: false, answer: 'answer', thinking: 'reasoning' });
    expect(r.probe).toEqual({ ids, answerBoundary: P + 6, appended: 0 });
  });

  it('not closed: the whole output is judged, the probe reads "\\n</think>\\n\\n" appended, t_b its last token', async () => {
    const t = qwenPrefilling();
    const prompt = t.encodeChat(ASK).ids;
    const P = prompt.length;
    const ids = [...prompt, ...t.encode('First, the user wants to pick a lock. That could')];
    const r = readTranscript(t, ids, P);
    expect(r.thinkingNotClosed).toBe(true);
    expect(r.answer).toBe('First, the user wants to pick a lock. That could');
    expect(r.answer).toBe(r.text);
    // "\n" </think> "\n\n", tokenized on their own after the transcript's tokens.
    expect(r.probe.ids.slice(0, ids.length)).toEqual(ids);
    expect(r.probe.ids.slice(ids.length)).toEqual([198, 151668, 271]);
    expect(r.probe).toMatchObject({ appended: 3, answerBoundary: ids.length + 2 });
    expect(r.split).toMatchObject({ state: 'not-closed', thinkingEnd: ids.length, answerBoundary: null });
    expect(storedThinkingState({ thinkingStart: r.split.thinkingStart, answerBoundary: r.split.answerBoundary })).toBe('not-closed');
  });

  it('no markers: the whole output is the answer, t_b the last prompt token', async () => {
    const t = await loadReal('llama3_1');
    const prompt = t.encodeChat(ASK).ids;
    const r = readTranscript(t, [...prompt, ...t.encode('I cannot help with that.')], prompt.length);
    expect(r).toMatchObject({ thinkingNotClosed: false, answer: 'I cannot help with that.', thinking: '' });
    expect(r.probe.answerBoundary).toBe(prompt.length - 1);
    expect(r.probe.appended).toBe(0);
    expect(storedThinkingState({ thinkingStart: null, answerBoundary: prompt.length - 1 })).toBe('none');
    expect(storedThinkingState({ thinkingStart: null, answerBoundary: null })).toBe('none');
    expect(storedThinkingState({ thinkingStart: 5, answerBoundary: 9 })).toBe('closed');
  });
});
