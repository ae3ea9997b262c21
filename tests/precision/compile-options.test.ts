/**
 * Precision options and the compile cache: every option that changes the model changes the key, defaults spelled
 * out give the same key as defaults left out, float32 keys are what they were before these options existed (so
 * existing caches stay valid), and bad values are refused before anything is compiled.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/main/engine/model/checkpoint.js';
import { COMPILER_VERSION, type CompileOptions, compileCheckpoint, compileKey, resolveCompileOptions } from '../../src/main/engine/onnx/compile.js';
import { writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';

const HASH = 'f'.repeat(64);

describe('compile precision options', () => {
  it('keeps float32 keys as they were', () => {
    for (const normPreserve of [false, true]) {
      const legacy = createHash('sha256').update(JSON.stringify({ compiler: COMPILER_VERSION, modelHash: HASH, normPreserve })).digest('hex').slice(0, 24);
      expect(compileKey(HASH, { normPreserve })).toBe(legacy);
      expect(compileKey(HASH, { normPreserve, weights: 'float32', activations: 'float32' })).toBe(legacy);
      // A cache stored as computed is the default.
      expect(compileKey(HASH, { normPreserve, kvCache: 'float32' })).toBe(legacy);
      // int4 settings mean nothing for float32 weights.
      expect(compileKey(HASH, { normPreserve, int4BlockSize: 64, quantizeLmHead: true })).toBe(legacy);
    }
  });

  it('gives every distinct model its own key, and equal models the same key', () => {
    const variants: CompileOptions[] = [
      { normPreserve: false },
      { normPreserve: false, activations: 'float16' },
      { normPreserve: false, weights: 'int4' },
      { normPreserve: false, weights: 'int4', activations: 'float16' },
      { normPreserve: false, weights: 'int4', int4BlockSize: 64 },
      { normPreserve: false, weights: 'int4', int4Scheme: 'symmetric' },
      { normPreserve: false, weights: 'int4', int4AccuracyLevel: 0 },
      { normPreserve: false, weights: 'int4', quantizeLmHead: false },
      { normPreserve: true, weights: 'int4' },
      { normPreserve: false, kvCache: 'float16' },
      { normPreserve: false, kvCache: 'int8' },
      { normPreserve: false, activations: 'float16', kvCache: 'float32' },
      { normPreserve: false, activations: 'float16', kvCache: 'int8' },
      { normPreserve: false, weights: 'int4', kvCache: 'float32' },
    ];
    const keys = variants.map((v) => compileKey(HASH, v));
    expect(new Set(keys).size).toBe(variants.length);
    const spelledOut: CompileOptions = {
      normPreserve: false,
      weights: 'int4',
      activations: 'float32',
      // int4 weights store the cache as float16 unless told otherwise (compile.ts defaultKvCache).
      kvCache: 'float16',
      int4BlockSize: 32,
      int4Scheme: 'asymmetric',
      int4AccuracyLevel: 4,
      quantizeLmHead: true,
    };
    expect(compileKey(HASH, spelledOut)).toBe(keys[2]);
    expect(resolveCompileOptions({ normPreserve: false, weights: 'int4' })).toEqual(spelledOut);
    expect(compileKey(HASH, { normPreserve: false, activations: 'float16', kvCache: 'float16' })).toBe(keys[1]);
  });

  it('refuses bad values', () => {
    const bad = [
      { weights: 'int8' },
      { activations: 'bfloat16' },
      { kvCache: 'int4' },
      { weights: 'int4', int4BlockSize: 48 },
      { weights: 'int4', int4Scheme: 'nf4' },
      { weights: 'int4', int4AccuracyLevel: 5 },
    ];
    for (const b of bad) expect(() => resolveCompileOptions({ normPreserve: false, ...(b as object) })).toThrow(/compile option/);
  });

  describe('on disk', () => {
    let root: string;
    beforeAll(() => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-precision-cache-'));
    });
    afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

    it('caches each variant separately and records the resolved options in the manifest', async () => {
      const dir = path.join(root, 'model');
      writeTinyCheckpoint(dir, 'llama', { seed: 1 });
      const cacheRoot = path.join(root, 'cache');
      const f32 = await compileCheckpoint(openCheckpoint(dir), { normPreserve: false }, { cacheRoot });
      const int4 = await compileCheckpoint(openCheckpoint(dir), { normPreserve: false, weights: 'int4' }, { cacheRoot });
      const again = await compileCheckpoint(openCheckpoint(dir), { normPreserve: false, weights: 'int4', int4BlockSize: 32 }, { cacheRoot });
      expect(int4.key).not.toBe(f32.key);
      expect(again.cached).toBe(true);
      expect(again.dir).toBe(int4.dir);
      const manifest = JSON.parse(fs.readFileSync(path.join(int4.dir, 'manifest.json'), 'utf8'));
      expect(manifest.options).toEqual(resolveCompileOptions({ normPreserve: false, weights: 'int4' }));
      const f32Manifest = JSON.parse(fs.readFileSync(path.join(f32.dir, 'manifest.json'), 'utf8'));
      // Linear weights are most of this model; int4 stores them in ~1/6 of the float32 bytes (codes, scales, zero points).
      expect(manifest.tensorBytes).toBeLessThan(0.6 * f32Manifest.tensorBytes);
    });
  });
});
