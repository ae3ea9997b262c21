/**
 * The compiled-model cache: keyed by checkpoint content and compile options, reused when both are unchanged,
 * recompiled when either changes, and never left half-written.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/main/engine/model/checkpoint.js';
import { compileCheckpoint } from '../../src/main/engine/onnx/compile.js';
import { writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-cache-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('compile cache', () => {
  it('reuses an entry, and recompiles when the options or the weights change', async () => {
    const dir = path.join(root, 'model');
    writeTinyCheckpoint(dir, 'llama', { seed: 1 });
    const cacheRoot = path.join(root, 'cache');
    const phases: string[] = [];

    const first = await compileCheckpoint(openCheckpoint(dir), { normPreserve: false }, { cacheRoot, onProgress: (p) => phases.push(p.phase) });
    expect(first.cached).toBe(false);
    expect(phases).toContain('weights');
    expect(fs.existsSync(first.modelPath)).toBe(true);
    expect(fs.existsSync(path.join(first.dir, 'model.weights'))).toBe(true);

    const again = await compileCheckpoint(openCheckpoint(dir), { normPreserve: false }, { cacheRoot });
    expect(again.cached).toBe(true);
    expect(again.dir).toBe(first.dir);

    const otherOptions = await compileCheckpoint(openCheckpoint(dir), { normPreserve: true }, { cacheRoot });
    expect(otherOptions.cached).toBe(false);
    expect(otherOptions.key).not.toBe(first.key);

    // Same folder, different weights (re-seeded, and a later mtime): a new content hash and a new entry.
    await new Promise((r) => setTimeout(r, 20));
    writeTinyCheckpoint(dir, 'llama', { seed: 2 });
    const changed = await compileCheckpoint(openCheckpoint(dir), { normPreserve: false }, { cacheRoot });
    expect(changed.cached).toBe(false);
    expect(changed.modelHash).not.toBe(first.modelHash);

    // Nothing half-written is left behind.
    const entries = fs.readdirSync(path.join(cacheRoot, 'compiled'));
    expect(entries.filter((e) => e.includes('.tmp-'))).toEqual([]);
    expect(entries.length).toBe(3);
  });

  it('an interrupted compile leaves no entry that would be reused', async () => {
    const dir = path.join(root, 'broken');
    writeTinyCheckpoint(dir, 'llama', { seed: 1 });
    const ckpt = openCheckpoint(dir);
    const cacheRoot = path.join(root, 'cache2');
    // Truncate a weight file after validation: reading the tensors fails mid-compile.
    const file = ckpt.files[0]!;
    fs.truncateSync(file, fs.statSync(file).size - 64);
    await expect(compileCheckpoint(ckpt, { normPreserve: false }, { cacheRoot })).rejects.toThrow();
    const compiled = path.join(cacheRoot, 'compiled');
    expect(fs.readdirSync(compiled)).toEqual([]);
  });
});
