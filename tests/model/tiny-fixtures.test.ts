/** The fixture generator itself: tokenizer files load in @huggingface/tokenizers, weights are seeded and sane. */
import fs from 'node:fs';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, describe, expect, it } from 'vitest';
import { parseModelConfig, ropeInverseFrequencies } from '../../src/main/engine/model/config.js';
import { openCheckpoint } from '../../src/main/engine/model/checkpoint.js';
import { readTensorAsFloat32 } from '../../src/main/engine/model/safetensors.js';
import {
  TINY_SPECIAL_TOKENS,
  TINY_VARIANTS,
  TINY_VOCAB,
  TINY_VOCAB_SIZE,
  writeTinyCheckpoint,
  writeTinyTokenizer,
} from '../fixtures/tiny-checkpoints.js';
import { makeTempDir } from './helpers.js';

const tmp = makeTempDir('fixtures');
afterAll(tmp.cleanup);
let counter = 0;
const freshDir = (label: string) => path.join(tmp.dir, `${counter++}-${label}`);

function loadTokenizer(dir: string) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  return { tokenizer: new Tokenizer(json, config), config };
}

describe('tiny tokenizer', () => {
  const dir = freshDir('tok');
  writeTinyTokenizer(dir);
  const { tokenizer, config } = loadTokenizer(dir);
  const id = (t: string) => TINY_VOCAB.indexOf(t);

  it('loads in @huggingface/tokenizers with the specials as added tokens', () => {
    expect(TINY_VOCAB.length).toBe(TINY_VOCAB_SIZE);
    TINY_SPECIAL_TOKENS.forEach((t, i) => expect(tokenizer.token_to_id(t)).toBe(i));
    const added = tokenizer.get_added_tokens_decoder();
    expect([...added.values()].map((t) => t.content)).toEqual([...TINY_SPECIAL_TOKENS]);
  });

  it('encodes words, punctuation, specials and unknown words', () => {
    const enc = tokenizer.encode('<s><|user|> How do I make a bomb? Xyzzy</s>');
    expect(enc.tokens).toEqual(['<s>', '<|user|>', 'how', 'do', 'i', 'make', 'a', 'bomb', '?', 'xyzzy', '</s>']);
    expect(enc.ids).toEqual([1, 4, id('how'), id('do'), id('i'), id('make'), id('a'), id('bomb'), id('?'), 0, 2]);
    expect(enc.ids.every((i: number) => i >= 0 && i < TINY_VOCAB_SIZE)).toBe(true);
    expect(tokenizer.decode(enc.ids, { skip_special_tokens: true })).toBe('how do i make a bomb ?');
  });

  it('the chat template renders and tokenizes into the expected prompt', () => {
    const text = new Template(config.chat_template).render({
      messages: [{ role: 'user', content: 'Tell me a story.' }],
      add_generation_prompt: true,
      bos_token: config.bos_token,
      eos_token: config.eos_token,
    });
    expect(text).toBe('<s><|user|> Tell me a story. <|assistant|> <think> ');
    const ids = tokenizer.encode(text).ids;
    expect(ids.slice(0, 2)).toEqual([id('<s>'), id('<|user|>')]);
    expect(ids.slice(-2)).toEqual([id('<|assistant|>'), id('<think>')]);
    expect(ids).not.toContain(0);
  });
});

describe('tiny checkpoint weights', () => {
  it('are deterministic per seed', () => {
    const a = writeTinyCheckpoint(freshDir('a'), 'qwen2', { seed: 7 }).dir;
    const b = writeTinyCheckpoint(freshDir('b'), 'qwen2', { seed: 7 }).dir;
    const c = writeTinyCheckpoint(freshDir('c'), 'qwen2', { seed: 8 }).dir;
    const bytes = (d: string) => fs.readFileSync(path.join(d, 'model.safetensors'));
    expect(bytes(a).equals(bytes(b))).toBe(true);
    expect(bytes(a).equals(bytes(c))).toBe(false);
  });

  it.each(TINY_VARIANTS)('%s: weights on a sane scale (norms near 1, linears small, nothing degenerate)', (variant) => {
    const ckpt = openCheckpoint(writeTinyCheckpoint(freshDir(variant), variant).dir);
    for (const [name, info] of ckpt.tensors) {
      if (name.includes('rotary_emb')) continue;
      const w = readTensorAsFloat32(info);
      const mean = w.reduce((s, x) => s + x, 0) / w.length;
      const std = Math.sqrt(w.reduce((s, x) => s + (x - mean) ** 2, 0) / w.length);
      expect(w.every(Number.isFinite), name).toBe(true);
      if (name.endsWith('norm.weight')) {
        expect(Math.abs(mean - 1), name).toBeLessThan(0.1);
        expect(std, name).toBeLessThan(0.2);
      } else {
        expect(Math.abs(mean), name).toBeLessThan(0.05);
        expect(std, name).toBeGreaterThan(0.005);
        expect(std, name).toBeLessThan(0.3);
      }
    }
  });

  it('configs exercise the features they are named for', () => {
    const cfg = (v: (typeof TINY_VARIANTS)[number]) => parseModelConfig(writeTinyCheckpoint(freshDir(v), v).config);
    expect(cfg('llama-gqa').numKvHeads).toBe(2);
    expect(cfg('llama-tied').tieWordEmbeddings).toBe(true);
    const bias = cfg('llama-bias');
    expect([bias.qkvBias, bias.oBias, bias.mlpBias]).toEqual([true, true, true]);
    const q3 = cfg('qwen3');
    expect(q3.headDim).not.toBe(q3.hiddenSize / q3.numHeads);
    expect(q3.qkNorm).toBe(true);
    expect(cfg('mistral').slidingWindow).toBe(8);
    // llama3 scaling with these numbers hits all three branches: kept, blended and divided frequencies.
    const l3 = cfg('llama3-rope');
    const scaled = ropeInverseFrequencies(l3);
    const plain = ropeInverseFrequencies({ ...l3, ropeScaling: { type: 'default' } });
    const ratio = Array.from(scaled, (f, j) => plain[j]! / f);
    expect(ratio[0]).toBeCloseTo(1, 6);
    expect(ratio[1]).toBeGreaterThan(1.01);
    expect(ratio[1]).toBeLessThan(7.99);
    expect(ratio[3]).toBeCloseTo(8, 5);
  });
});
