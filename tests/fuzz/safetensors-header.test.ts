/**
 * Fuzzing the safetensors header parser, the first thing to read a downloaded checkpoint: whatever the bytes, it
 * either returns tensors that lie inside the file, cover its data exactly and fit their dtype and shape, or throws a
 * CliffscopeError — never another exception, never a hang, never a huge allocation.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliffscopeError } from '../../src/main/engine/errors.js';
import { DTYPE_SIZES, numel, readSafetensorsHeader, readTensorAsFloat32, writeSafetensors } from '../../src/main/engine/model/safetensors.js';
import { fuzz, type Rand } from './fuzz.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-fuzz-st-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = path.join(dir, 'f.safetensors');

/** A valid file to mutate. */
function validFile(): Buffer {
  writeSafetensors(file, [
    { name: 'a', dtype: 'F32', shape: [2, 3], data: Float32Array.from({ length: 6 }, (_, i) => i) },
    { name: 'b', dtype: 'BF16', shape: [4], data: Float32Array.of(1, 2, 3, 4) },
    { name: 'c', dtype: 'F16', shape: [0, 5], data: new Float32Array(0) },
  ], { format: 'pt' });
  return fs.readFileSync(file);
}
const base = validFile();

const DTYPES = [...Object.keys(DTYPE_SIZES), 'F8_E4M3', 'f32', '', 'I128'];

function weirdNumber(r: Rand): unknown {
  return r.pick([0, 1, 2, 7, 8, -1, 1.5, 2 ** 31, 2 ** 53, 2 ** 64, 1e308, Number.MAX_SAFE_INTEGER, '4', null, true, [], {}]);
}

/** A header object with random entries, some plausible, some not, and the data length it implies. */
function randomHeader(r: Rand): { header: Record<string, unknown>; dataLength: number } {
  const h: Record<string, unknown> = {};
  const n = r.int(0, 6);
  let offset = 0;
  for (let t = 0; t < n; t++) {
    const dtype = r.bool(0.7) ? r.pick(['F32', 'BF16', 'F16', 'I64']) : r.pick(DTYPES);
    const shape = r.bool(0.9) ? Array.from({ length: r.int(0, 3) }, () => (r.bool(0.95) ? r.int(0, 6) : weirdNumber(r))) : weirdNumber(r);
    const size = Array.isArray(shape) && shape.every((d) => typeof d === 'number') ? (shape as number[]).reduce((a, b) => a * b, 1) * (DTYPE_SIZES[dtype as keyof typeof DTYPE_SIZES] ?? 4) : 4;
    const offs = r.bool(0.9) ? [offset, offset + size] : [weirdNumber(r), weirdNumber(r)];
    if (r.bool(0.95)) offset += size + (r.bool(0.05) ? r.int(1, 8) : 0);
    const entry: Record<string, unknown> = { dtype, shape, data_offsets: offs };
    if (r.bool(0.03)) delete entry[r.pick(['dtype', 'shape', 'data_offsets'])];
    h[r.bool(0.95) ? `t${t}` : r.pick(['__metadata__', '', 'a'.repeat(300), '\u0000'])] = r.bool(0.97) ? entry : weirdNumber(r);
  }
  if (r.bool(0.3)) h.__metadata__ = r.bool(0.8) ? { format: 'pt' } : { n: 3 };
  return { header: h, dataLength: offset };
}

function randomFile(r: Rand): Buffer {
  const mode = r.int(0, 3);
  if (mode === 0) {
    // Mutate the valid file: flip bytes, truncate or extend.
    const b = Buffer.from(base);
    for (let k = r.int(1, 6); k > 0; k--) b[r.int(0, b.length - 1)] = r.int(0, 255);
    if (r.bool(0.3)) return b.subarray(0, r.int(0, b.length));
    if (r.bool(0.2)) return Buffer.concat([b, Buffer.from(r.bytes(r.int(1, 16)))]);
    return b;
  }
  if (mode === 1) return Buffer.from(r.bytes(r.int(0, 64)));
  const made = mode === 2 ? randomHeader(r) : null;
  const header = Buffer.from(made ? JSON.stringify(made.header) : r.text(200), 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(r.bool(0.9) ? BigInt(header.length) : BigInt(r.pick([0, 1, header.length + 1, 2 ** 40, 2 ** 31])));
  const dataLength = made && made.dataLength <= 4096 && r.bool(0.7) ? made.dataLength : r.int(0, 80);
  return Buffer.concat([prefix, header, Buffer.from(r.bytes(dataLength))]);
}

describe('safetensors header parser under fuzzing', () => {
  it('returns a consistent header or a CliffscopeError, for any bytes', async () => {
    let accepted = 0;
    const runs = await fuzz(
      'safetensors header',
      (r) => randomFile(r),
      (bytes) => {
        fs.writeFileSync(file, bytes);
        let header: ReturnType<typeof readSafetensorsHeader>;
        try {
          header = readSafetensorsHeader(file);
        } catch (e) {
          if (!(e instanceof CliffscopeError)) throw e;
          return;
        }
        accepted++;
        let covered = header.dataStart;
        for (const t of header.tensors) {
          expect(t.end - t.begin).toBe(numel(t.shape) * DTYPE_SIZES[t.dtype]);
          if (t.begin === t.end) continue;
          expect(t.begin).toBe(covered);
          covered = t.end;
          if (t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16' || t.dtype === 'F64') expect(readTensorAsFloat32(t)).toHaveLength(numel(t.shape));
        }
        expect(covered).toBe(bytes.length);
      },
      { describe: (b) => b.toString('base64') },
    );
    console.log(`safetensors fuzz: ${runs} inputs, ${accepted} accepted`);
    expect(runs).toBeGreaterThan(50);
    expect(accepted).toBeGreaterThan(0); // the generator does reach the success path
  });
});
