import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { CliffscopeError } from '../../src/main/engine/errors.js';
import { Tokenizer } from '../../src/main/engine/tokenizer/tokenizer.js';
import { realTokenizerDir, tempDirWith, tinyTokenizerJson } from './helpers.js';

async function rejection(p: Promise<unknown>): Promise<CliffscopeError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(CliffscopeError);
    return e as CliffscopeError;
  }
  throw new Error('expected a rejection');
}

describe('Tokenizer.fromDir errors', () => {
  it('names tokenizer.json when the folder does not exist', async () => {
    const dir = join(tmpdir(), 'cliffscope-no-such-model-dir');
    const err = await rejection(Tokenizer.fromDir(dir));
    expect(err.code).toBe('missing-file');
    expect(err.file).toBe(join(dir, 'tokenizer.json'));
    expect(err.message).toContain(join(dir, 'tokenizer.json'));
    expect(err.hint).toMatch(/tokenizer\.json/);
  });

  it('names tokenizer.json when only the config is there', async () => {
    const { dir, cleanup } = await tempDirWith({ 'tokenizer_config.json': {} });
    try {
      const err = await rejection(Tokenizer.fromDir(dir));
      expect(err.code).toBe('missing-file');
      expect(err.file).toBe(join(dir, 'tokenizer.json'));
    } finally {
      await cleanup();
    }
  });

  it('loads without tokenizer_config.json, with no chat template', async () => {
    const { dir, cleanup } = await tempDirWith({ 'tokenizer.json': tinyTokenizerJson() });
    try {
      const t = await Tokenizer.fromDir(dir);
      expect(t.encode('hello world')).toEqual([2, 3]);
      expect(t.hasChatTemplate).toBe(false);
      expect(t.bosTokenId).toBeNull();
      expect(t.eosTokenId).toBeNull();
    } finally {
      await cleanup();
    }
  });

  it('reports bad JSON in tokenizer.json with the path and where it breaks, without quoting the file', async () => {
    const broken = '{ "model": { "type": "BPE",\n "secret-looking-text" x }';
    const { dir, cleanup } = await tempDirWith({ 'tokenizer.json': broken, 'tokenizer_config.json': {} });
    try {
      const err = await rejection(Tokenizer.fromDir(dir));
      expect(err.code).toBe('bad-json');
      expect(err.file).toBe(join(dir, 'tokenizer.json'));
      expect(err.message).toContain(join(dir, 'tokenizer.json'));
      expect(err.message).toMatch(/invalid JSON at line 2, column \d+/);
      expect(err.message).not.toContain('secret-looking-text');
    } finally {
      await cleanup();
    }
  });

  it('reports bad JSON in tokenizer_config.json, naming that file', async () => {
    const { dir, cleanup } = await tempDirWith({ 'tokenizer.json': tinyTokenizerJson(), 'tokenizer_config.json': '{"chat_template": "x",}' });
    try {
      const err = await rejection(Tokenizer.fromDir(dir));
      expect(err.code).toBe('bad-json');
      expect(err.file).toBe(join(dir, 'tokenizer_config.json'));
    } finally {
      await cleanup();
    }
  });

  it('reports a config that is JSON but not an object', async () => {
    const { dir, cleanup } = await tempDirWith({ 'tokenizer.json': tinyTokenizerJson(), 'tokenizer_config.json': '[1, 2]' });
    try {
      const err = await rejection(Tokenizer.fromDir(dir));
      expect(err.code).toBe('bad-json');
      expect(err.message).toMatch(/object/);
    } finally {
      await cleanup();
    }
  });

  it('reports bad JSON in special_tokens_map.json', async () => {
    const { dir, cleanup } = await tempDirWith({ 'tokenizer.json': tinyTokenizerJson(), 'special_tokens_map.json': 'nope' });
    try {
      const err = await rejection(Tokenizer.fromDir(dir));
      expect(err.code).toBe('bad-json');
      expect(err.file).toBe(join(dir, 'special_tokens_map.json'));
    } finally {
      await cleanup();
    }
  });

  it("reports a tokenizer.json the library cannot load as 'tokenizer'", async () => {
    const bad = { ...tinyTokenizerJson(), model: { type: 'NoSuchModel' } };
    const { dir, cleanup } = await tempDirWith({ 'tokenizer.json': bad, 'tokenizer_config.json': {} });
    try {
      const err = await rejection(Tokenizer.fromDir(dir));
      expect(err.code).toBe('tokenizer');
      expect(err.file).toBe(join(dir, 'tokenizer.json'));
      expect(err.message).toContain('NoSuchModel');
    } finally {
      await cleanup();
    }
  });

  it("reports a tokenizer.json without a model as 'tokenizer'", () => {
    const { model: _model, ...noModel } = tinyTokenizerJson() as Record<string, unknown>;
    expect(() => Tokenizer.fromObjects(noModel, null)).toThrow(expect.objectContaining({ code: 'tokenizer', message: expect.stringMatching(/model/) }));
  });

  it("reports text it cannot encode when the vocabulary has no unknown token as 'tokenizer'", () => {
    const json = tinyTokenizerJson() as { model: Record<string, unknown> };
    const t = Tokenizer.fromObjects({ ...json, model: { ...json.model, unk_token: null } }, null);
    expect(t.encode('hello world')).toEqual([2, 3]);
    expect(() => t.encode('hello stranger')).toThrow(expect.objectContaining({ code: 'tokenizer' }));
  });

  it('loads a real checkpoint folder', async () => {
    const t = await Tokenizer.fromDir(realTokenizerDir('qwen3'));
    expect(t.source).toBe(realTokenizerDir('qwen3'));
    expect(t.encode('Hello world')).toEqual([9707, 1879]);
  });
});
