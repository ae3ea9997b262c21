import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkpointHash, openCheckpoint } from '../../src/main/engine/model/checkpoint.js';
import { expectedTensors } from '../../src/main/engine/model/config.js';
import { readTensorAsFloat32 } from '../../src/main/engine/model/safetensors.js';
import {
  CORRUPT_KINDS,
  TINY_VARIANTS,
  writeCorruptCheckpoint,
  writeTinyCheckpoint,
} from '../fixtures/tiny-checkpoints.js';
import { expectCliffscopeError, makeTempDir } from './helpers.js';

const tmp = makeTempDir('checkpoint');
afterAll(tmp.cleanup);
let counter = 0;
const freshDir = (label: string) => path.join(tmp.dir, `${counter++}-${label}`);

describe('openCheckpoint on the tiny variants', () => {
  it.each(TINY_VARIANTS)('%s opens, and every expected tensor is there with its shape', (variant) => {
    const { dir, config } = writeTinyCheckpoint(freshDir(variant), variant);
    const ckpt = openCheckpoint(dir);
    expect(ckpt.dir).toBe(path.resolve(dir));
    expect(ckpt.rawConfig).toEqual(config);
    expect(ckpt.config.architecture).toBe((config.architectures as string[])[0]);
    for (const [name, shape] of expectedTensors(ckpt.config)) {
      const t = ckpt.tensors.get(name);
      expect(t, name).toBeDefined();
      expect(t!.shape).toEqual(shape);
      expect(ckpt.files).toContain(t!.file);
    }
    expect(ckpt.generation.bosTokenId).toBe(1);
    expect(ckpt.generation.eosTokenIds).toContain(2);
    expect(ckpt.generation.raw).not.toBeNull();
  });

  it('reads the family-specific details', () => {
    const qwen3 = openCheckpoint(writeTinyCheckpoint(freshDir('qwen3'), 'qwen3').dir);
    expect(qwen3.config.headDim).toBe(16);
    expect(qwen3.tensors.get('model.layers.0.self_attn.q_proj.weight')!.shape).toEqual([64, 32]);
    expect(qwen3.tensors.get('model.layers.1.self_attn.k_norm.weight')!.shape).toEqual([16]);
    expect(qwen3.tensors.has('lm_head.weight')).toBe(false);
    expect(qwen3.generation.eosTokenIds).toEqual([2, 8]); // list form in generation_config.json

    const qwen2 = openCheckpoint(writeTinyCheckpoint(freshDir('qwen2'), 'qwen2').dir);
    expect(qwen2.tensors.get('model.layers.0.self_attn.k_proj.bias')!.shape).toEqual([16]);
    expect(qwen2.config.slidingWindow).toBeNull();

    const mistral = openCheckpoint(writeTinyCheckpoint(freshDir('mistral'), 'mistral').dir);
    expect(mistral.config.slidingWindow).toBe(8);

    const rope = openCheckpoint(writeTinyCheckpoint(freshDir('llama3'), 'llama3-rope').dir);
    expect(rope.config.ropeScaling.type).toBe('llama3');
    expect(rope.config.maxPositionEmbeddings).toBe(512);

    const bf16 = openCheckpoint(writeTinyCheckpoint(freshDir('bf16'), 'llama-bf16').dir);
    expect(new Set([...bf16.tensors.values()].map((t) => t.dtype))).toEqual(new Set(['BF16']));
  });

  it('ignores extra tensors: rotary caches and lm_head in a tied model', () => {
    const ckpt = openCheckpoint(writeTinyCheckpoint(freshDir('extra'), 'llama-extra-tensors').dir);
    expect(ckpt.config.tieWordEmbeddings).toBe(true);
    expect(ckpt.tensors.has('model.layers.0.self_attn.rotary_emb.inv_freq')).toBe(true);
    expect(ckpt.tensors.has('lm_head.weight')).toBe(true);
    expect(expectedTensors(ckpt.config).has('lm_head.weight')).toBe(false);
  });

  it('resolves tensors across shards, with the same values as the single-file model', () => {
    const single = openCheckpoint(writeTinyCheckpoint(freshDir('single'), 'llama').dir);
    const sharded = openCheckpoint(writeTinyCheckpoint(freshDir('sharded'), 'llama-sharded').dir);
    expect(sharded.files.map((f) => path.basename(f))).toEqual([
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
    ]);
    const perFile = new Map<string, number>();
    for (const t of sharded.tensors.values()) perFile.set(t.file, (perFile.get(t.file) ?? 0) + 1);
    expect(perFile.size).toBe(2);
    expect(sharded.tensors.get('model.embed_tokens.weight')!.file).toBe(sharded.files[0]);
    expect(sharded.tensors.get('lm_head.weight')!.file).toBe(sharded.files[1]);
    for (const name of expectedTensors(single.config).keys()) {
      expect(readTensorAsFloat32(sharded.tensors.get(name)!)).toEqual(readTensorAsFloat32(single.tensors.get(name)!));
    }
  });

  it('half-precision variants hold the float32 model rounded', () => {
    const f32 = openCheckpoint(writeTinyCheckpoint(freshDir('f32'), 'llama').dir);
    for (const [variant, relTol] of [
      ['llama-bf16', 2 ** -8],
      ['llama-f16', 2 ** -11],
    ] as const) {
      const half = openCheckpoint(writeTinyCheckpoint(freshDir(variant), variant).dir);
      for (const name of expectedTensors(f32.config).keys()) {
        const a = readTensorAsFloat32(f32.tensors.get(name)!);
        const b = readTensorAsFloat32(half.tensors.get(name)!);
        for (let i = 0; i < a.length; i++) {
          // f16 subnormals have an absolute, not relative, step.
          expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(Math.abs(a[i]!) * relTol + 2 ** -25);
        }
      }
    }
  });

  it('falls back to any *.safetensors file when the standard names are absent', () => {
    const dir = writeTinyCheckpoint(freshDir('renamed'), 'llama').dir;
    fs.renameSync(path.join(dir, 'model.safetensors'), path.join(dir, 'weights.safetensors'));
    const ckpt = openCheckpoint(dir);
    expect(ckpt.files).toEqual([path.join(path.resolve(dir), 'weights.safetensors')]);
  });

  it('without generation_config.json, takes bos/eos from config.json', () => {
    const dir = writeTinyCheckpoint(freshDir('nogen'), 'qwen3').dir;
    fs.rmSync(path.join(dir, 'generation_config.json'));
    const ckpt = openCheckpoint(dir);
    expect(ckpt.generation).toEqual({ eosTokenIds: [2], bosTokenId: 1, raw: null });
  });

  it('a number eos_token_id in generation_config.json becomes a one-element list', () => {
    const dir = writeTinyCheckpoint(freshDir('gen-num'), 'llama').dir;
    fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: 7, bos_token_id: 3 }));
    const ckpt = openCheckpoint(dir);
    expect(ckpt.generation.eosTokenIds).toEqual([7]);
    expect(ckpt.generation.bosTokenId).toBe(3);
  });
});

describe('openCheckpoint errors', () => {
  it.each(CORRUPT_KINDS)('%s', (kind) => {
    const bad = writeCorruptCheckpoint(freshDir(kind), kind);
    const err = expectCliffscopeError(() => openCheckpoint(bad.dir), bad.code, bad.file);
    if (bad.mentions) expect(err.message + (err.hint ?? '')).toContain(bad.mentions);
  });

  it('shape-mismatch says expected (from config.json) vs found', () => {
    const bad = writeCorruptCheckpoint(freshDir('shape'), 'config-shape-mismatch');
    const err = expectCliffscopeError(() => openCheckpoint(bad.dir), 'shape-mismatch', bad.file);
    expect(err.message).toContain('[48, 32]');
    expect(err.message).toContain('[56, 32]');
    expect(err.message).toContain('config.json');
  });

  it('missing-tensor names the tensor and every weight file', () => {
    const bad = writeCorruptCheckpoint(freshDir('missing'), 'missing-tensor');
    const err = expectCliffscopeError(() => openCheckpoint(bad.dir), 'missing-tensor', 'model.safetensors');
    expect(err.message).toContain(path.join(path.resolve(bad.dir), 'model.safetensors'));
  });

  it('no safetensors: the hint says how to convert', () => {
    const bad = writeCorruptCheckpoint(freshDir('nosafe'), 'no-safetensors');
    const err = expectCliffscopeError(() => openCheckpoint(bad.dir), 'missing-file', bad.dir);
    expect(err.hint).toContain('safe_serialization=True');
  });

  it('folder missing, or a file instead of a folder', () => {
    const missing = path.join(tmp.dir, 'no-such-model');
    expectCliffscopeError(() => openCheckpoint(missing), 'missing-file', missing);
    const file = path.join(tmp.dir, 'a-file');
    fs.writeFileSync(file, 'x');
    expectCliffscopeError(() => openCheckpoint(file), 'bad-argument', file);
  });

  it('weights in the same name in two loose files are ambiguous', () => {
    const dir = writeTinyCheckpoint(freshDir('dup'), 'llama').dir;
    fs.copyFileSync(path.join(dir, 'model.safetensors'), path.join(dir, 'a.safetensors'));
    fs.renameSync(path.join(dir, 'model.safetensors'), path.join(dir, 'b.safetensors'));
    const err = expectCliffscopeError(() => openCheckpoint(dir), 'bad-safetensors', 'a.safetensors');
    expect(err.message).toContain('b.safetensors');
  });
});

describe('checkpointHash', () => {
  /** The definition, computed independently: sha256 over config.json then the weight files in name order. */
  function referenceHash(dir: string, weightFiles: string[]): string {
    const h = createHash('sha256');
    h.update(fs.readFileSync(path.join(dir, 'config.json')));
    for (const f of [...weightFiles].sort()) h.update(fs.readFileSync(path.join(dir, f)));
    return h.digest('hex');
  }

  it('is sha256 over config.json + weights, stable, and content-only', async () => {
    const dir = writeTinyCheckpoint(freshDir('hash'), 'llama-sharded').dir;
    const ckpt = openCheckpoint(dir);
    const h1 = await checkpointHash(ckpt);
    expect(h1).toMatch(/^[0-9a-f]{64}$/);
    expect(h1).toBe(referenceHash(dir, ['model-00002-of-00002.safetensors', 'model-00001-of-00002.safetensors']));
    expect(await checkpointHash(openCheckpoint(dir))).toBe(h1);
    // The same bytes elsewhere hash the same: the hash names content, not location.
    const copy = freshDir('hash-copy');
    fs.cpSync(dir, copy, { recursive: true });
    expect(await checkpointHash(openCheckpoint(copy))).toBe(h1);
  });

  it('changes when one weight byte changes, or when config.json changes', async () => {
    const dir = writeTinyCheckpoint(freshDir('hash-flip'), 'llama').dir;
    const ckpt = openCheckpoint(dir);
    const before = await checkpointHash(ckpt);
    const t = ckpt.tensors.get('model.layers.1.mlp.up_proj.weight')!;
    const fd = fs.openSync(t.file, 'r+');
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, t.begin + 5);
    b[0] = b[0]! ^ 0x01;
    fs.writeSync(fd, b, 0, 1, t.begin + 5);
    fs.closeSync(fd);
    const afterWeight = await checkpointHash(openCheckpoint(dir));
    expect(afterWeight).not.toBe(before);

    const cfgFile = path.join(dir, 'config.json');
    fs.writeFileSync(cfgFile, fs.readFileSync(cfgFile, 'utf8') + ' ');
    expect(await checkpointHash(openCheckpoint(dir))).not.toBe(afterWeight);
  });

  it('memoises by real path + size + mtime in the cache file, and reuses it', async () => {
    const dir = writeTinyCheckpoint(freshDir('hash-memo'), 'llama').dir;
    const cacheFile = path.join(tmp.dir, `memo-${counter++}`, 'hashes.json');
    const ckpt = openCheckpoint(dir);
    const real = await checkpointHash(ckpt);

    expect(await checkpointHash(ckpt, { cacheFile })).toBe(real);
    const memo = JSON.parse(fs.readFileSync(cacheFile, 'utf8'));
    const key = fs.realpathSync(dir);
    expect(memo.entries[key].hash).toBe(real);
    expect(memo.entries[key].files.map((f: { path: string }) => path.basename(f.path))).toEqual([
      'config.json',
      'model.safetensors',
    ]);
    const weights = memo.entries[key].files[1];
    expect(weights.size).toBe(fs.statSync(path.join(dir, 'model.safetensors')).size);
    expect(typeof weights.mtimeMs).toBe('number');

    // Plant a marker hash: getting it back proves the memo was used instead of re-reading the files.
    const marker = 'f'.repeat(64);
    memo.entries[key].hash = marker;
    fs.writeFileSync(cacheFile, JSON.stringify(memo));
    expect(await checkpointHash(ckpt, { cacheFile })).toBe(marker);

    // Touching a file (new mtime) invalidates the entry, and the real hash is recomputed and stored.
    const future = new Date(Date.now() + 60_000);
    fs.utimesSync(path.join(dir, 'model.safetensors'), future, future);
    expect(await checkpointHash(ckpt, { cacheFile })).toBe(real);
    expect(JSON.parse(fs.readFileSync(cacheFile, 'utf8')).entries[key].hash).toBe(real);

    // A damaged memo is only a cache: it is ignored and replaced.
    fs.writeFileSync(cacheFile, '{not json');
    expect(await checkpointHash(ckpt, { cacheFile })).toBe(real);
    expect(JSON.parse(fs.readFileSync(cacheFile, 'utf8')).entries[key].hash).toBe(real);
  });

  it('keeps entries of other checkpoints in the same memo', async () => {
    const cacheFile = path.join(tmp.dir, `memo-${counter++}.json`);
    const a = openCheckpoint(writeTinyCheckpoint(freshDir('memo-a'), 'llama').dir);
    const b = openCheckpoint(writeTinyCheckpoint(freshDir('memo-b'), 'qwen3').dir);
    const ha = await checkpointHash(a, { cacheFile });
    const hb = await checkpointHash(b, { cacheFile });
    expect(ha).not.toBe(hb);
    const entries = JSON.parse(fs.readFileSync(cacheFile, 'utf8')).entries;
    expect(Object.keys(entries).sort()).toEqual([fs.realpathSync(a.dir), fs.realpathSync(b.dir)].sort());
  });
});
