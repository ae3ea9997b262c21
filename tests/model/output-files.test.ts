/**
 * `forward --out` (and every safetensors write) to a folder or into a folder that does not exist: a clear error
 * before any work, no stack trace, and no temporary file left behind (EISDIR / ENOENT with a stack, and a stray
 * `.x.tmp`, before).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../src/main/engine/model/safetensors.js';
import { writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';
import { cli } from '../support/cli.js';
import { expectCliffscopeError, makeTempDir } from './helpers.js';

const tmp = makeTempDir('outputs');
afterAll(tmp.cleanup);
const tensor = [{ name: 'x', dtype: 'F32' as const, shape: [2], data: Float32Array.of(1, 2) }];
const temps = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'));

describe('safetensors outputs', () => {
  it('writeSafetensors to a folder: a clear error, the folder untouched, no temp file', () => {
    const folder = path.join(tmp.dir, 'a-folder');
    fs.mkdirSync(folder);
    expect(expectCliffscopeError(() => writeSafetensors(folder, tensor), 'bad-argument', folder).message).toMatch(/is a folder/);
    expect(fs.statSync(folder).isDirectory()).toBe(true);
    expect(temps(tmp.dir)).toEqual([]);
  });

  it('writeSafetensors into a missing folder names the folder', () => {
    const file = path.join(tmp.dir, 'no', 'such', 'acts.safetensors');
    expect(expectCliffscopeError(() => writeSafetensors(file, tensor), 'missing-file', file).message).toMatch(/folder .*no[/\\]such does not exist/);
  });

  it('forward --out to a folder or a missing parent fails at once, cleanly', async () => {
    const model = writeTinyCheckpoint(path.join(tmp.dir, 'model'), 'llama').dir;
    const cache = path.join(tmp.dir, 'cache');
    const folder = path.join(tmp.dir, 'out-folder');
    fs.mkdirSync(folder);
    for (const [out, message] of [
      [folder, /is a folder; the output must be a file/],
      [path.join(tmp.dir, 'missing', 'acts.safetensors'), /does not exist/],
    ] as const) {
      const r = await cli('forward', model, '--ids', '1,2,3', '--out', out, '--cache', cache);
      expect(r.code).toBeGreaterThan(0);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stderr).not.toMatch(/compiling/); // refused before the model was even compiled
    }
    expect(temps(tmp.dir)).toEqual([]);
    expect(fs.readdirSync(folder)).toEqual([]);
  });
});
