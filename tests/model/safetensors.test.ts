import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  bf16BitsToFloat,
  f16BitsToFloat,
  float32ToBf16,
  float32ToF16,
  readSafetensorsHeader,
  readTensorAsFloat32,
  writeSafetensors,
  type TensorInfo,
} from '../../src/main/engine/model/safetensors.js';
import { writeRawSafetensors } from '../fixtures/tiny-checkpoints.js';
import { expectCliffscopeError, f32Bits, f32FromBits, makeTempDir } from './helpers.js';

const tmp = makeTempDir('safetensors');
afterAll(tmp.cleanup);
let counter = 0;
const fresh = (name = 'x.safetensors') => path.join(tmp.dir, `${counter++}-${name}`);

function rawBytes(info: TensorInfo): Buffer {
  const buf = fs.readFileSync(info.file);
  return buf.subarray(info.begin, info.end);
}

function u16s(info: TensorInfo): number[] {
  const b = rawBytes(info);
  return Array.from({ length: b.length / 2 }, (_, i) => b.readUInt16LE(2 * i));
}

function byName(file: string): Map<string, TensorInfo> {
  return new Map(readSafetensorsHeader(file).tensors.map((t) => [t.name, t]));
}

// Independent half-float decoder, by the formula rather than bit surgery.
function halfByFormula(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

describe('writeSafetensors / readSafetensorsHeader round trip', () => {
  it('lays out the file per the spec: u64 length, space-padded JSON to a multiple of 8, absolute offsets', () => {
    const file = fresh();
    writeSafetensors(
      file,
      [
        { name: 'a', dtype: 'F32', shape: [2, 3], data: new Float32Array(6).fill(1.5) },
        { name: 'b', dtype: 'I32', shape: [3], data: Int32Array.of(-1, 0, 7) },
        { name: 'c', dtype: 'BF16', shape: [1], data: Float32Array.of(2) },
      ],
      { format: 'pt', note: 'héllo' },
    );
    const buf = fs.readFileSync(file);
    const n = Number(buf.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = buf.subarray(8, 8 + n).toString('utf8');
    expect(header.startsWith('{')).toBe(true);
    expect(header.trimEnd().endsWith('}')).toBe(true);
    expect(/^ *$/.test(header.slice(header.lastIndexOf('}') + 1))).toBe(true);

    const { tensors, metadata, dataStart } = readSafetensorsHeader(file);
    expect(dataStart).toBe(8 + n);
    expect(metadata).toEqual({ format: 'pt', note: 'héllo' });
    expect(tensors.map((t) => [t.name, t.dtype, t.shape, t.begin - dataStart, t.end - dataStart])).toEqual([
      ['a', 'F32', [2, 3], 0, 24],
      ['b', 'I32', [3], 24, 36],
      ['c', 'BF16', [1], 36, 38],
    ]);
    expect(tensors.every((t) => t.file === file)).toBe(true);
    expect(buf.length).toBe(dataStart + 38);
  });

  it('F32 round-trips bit for bit (incl. -0, subnormals, extremes, inf, NaN)', () => {
    const values = Float32Array.of(0, -0, 1, -2.5, Math.PI, 1e-40, -1.401298464324817e-45, 3.4028234663852886e38, Infinity, -Infinity, NaN);
    const file = fresh();
    writeSafetensors(file, [{ name: 'w', dtype: 'F32', shape: [values.length], data: values }]);
    const [info] = readSafetensorsHeader(file).tensors;
    const back = readTensorAsFloat32(info!);
    expect(Array.from(new Uint32Array(back.buffer, back.byteOffset, back.length))).toEqual(
      Array.from(new Uint32Array(values.buffer)),
    );
  });

  it('I64 and I32 are stored little-endian and cannot be read as float32', () => {
    const file = fresh();
    const i64 = BigInt64Array.of(1n, -2n, 9007199254740993n);
    const i32 = Int32Array.of(-2147483648, 2147483647, 5);
    writeSafetensors(file, [
      { name: 'ids', dtype: 'I64', shape: [3], data: i64 },
      { name: 'n', dtype: 'I32', shape: [3], data: i32 },
    ]);
    const t = byName(file);
    const b64 = rawBytes(t.get('ids')!);
    expect([0, 1, 2].map((i) => b64.readBigInt64LE(8 * i))).toEqual([1n, -2n, 9007199254740993n]);
    const b32 = rawBytes(t.get('n')!);
    expect([0, 1, 2].map((i) => b32.readInt32LE(4 * i))).toEqual([-2147483648, 2147483647, 5]);
    expectCliffscopeError(() => readTensorAsFloat32(t.get('ids')!), 'unsupported-dtype', file);
    expectCliffscopeError(() => readTensorAsFloat32(t.get('n')!), 'unsupported-dtype', file);
  });

  it('F16 from float32 rounds to nearest even, with the right bit patterns', () => {
    const cases: [number, number][] = [
      [1.0, 0x3c00],
      [-2.5, 0xc100],
      [65504, 0x7bff], // largest finite half
      [65519, 0x7bff], // just below the rounding midpoint to infinity
      [65520, 0x7c00], // midpoint, ties to even = infinity
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [3 * 2 ** -26, 0x0001], // 0.75 of it rounds up
      [2 ** -25, 0x0000], // half of it: tie to even = 0
      [2 ** -26, 0x0000],
      [1023 * 2 ** -24, 0x03ff], // largest subnormal
      [1 / 3, 0x3555],
      [0.1, 0x2e66],
      [1 + 2 ** -11, 0x3c00], // tie between 0x3c00 and 0x3c01: even
      [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3c01 and 0x3c02: even
      [0, 0x0000],
      [-0, 0x8000],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [NaN, 0x7e00],
    ];
    const file = fresh();
    writeSafetensors(file, [{ name: 'h', dtype: 'F16', shape: [cases.length], data: Float32Array.from(cases.map((c) => c[0])) }]);
    const [info] = readSafetensorsHeader(file).tensors;
    expect(u16s(info!).map((b) => b.toString(16))).toEqual(cases.map((c) => c[1].toString(16)));
    // And back: each stored half decodes to exactly the value its bit pattern denotes.
    const back = readTensorAsFloat32(info!);
    expect(Array.from(back.slice(0, 5))).toEqual([1, -2.5, 65504, 65504, Infinity]);
    cases.forEach(([, bits], i) => {
      const want = halfByFormula(bits);
      if (Number.isNaN(want)) expect(back[i]).toBeNaN();
      else expect(Object.is(back[i], want), `case ${i}: ${back[i]} vs ${want}`).toBe(true);
    });
  });

  it('F16 decoding is exact for all 65536 bit patterns (raw Uint16Array input)', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const file = fresh();
    writeSafetensors(file, [{ name: 'all', dtype: 'F16', shape: [256, 256], data: all }]);
    const [info] = readSafetensorsHeader(file).tensors;
    expect(u16s(info!)).toEqual(Array.from(all));
    const back = readTensorAsFloat32(info!);
    let bad = 0;
    for (let h = 0; h < 65536; h++) {
      const want = halfByFormula(h);
      const got = back[h]!;
      if (Number.isNaN(want) ? !Number.isNaN(got) : !Object.is(got, want)) bad++;
      expect(f16BitsToFloat(h)).toBe(got);
    }
    expect(bad).toBe(0);
    // Encoding every decoded value again gives the same bits (NaNs keep their top payload bits).
    const again = float32ToF16(back);
    for (let h = 0; h < 65536; h++) {
      if (!Number.isNaN(back[h]!)) expect(again[h]).toBe(h);
    }
  });

  it('BF16 from float32 rounds to nearest even, with the right bit patterns', () => {
    const cases: [number, number][] = [
      [1.0, 0x3f80],
      [-2.5, 0xc020],
      [65504, 0x4780], // 0x477fe000: rounds up to 65536
      [f32FromBits(0x3f808000), 0x3f80], // tie, even stays
      [f32FromBits(0x3f818000), 0x3f82], // tie, odd rounds up
      [f32FromBits(0x3f808001), 0x3f81], // just above the tie
      [f32FromBits(0x00010000), 0x0001], // float32 subnormal, exactly a bf16 subnormal
      [f32FromBits(0x7f7fffff), 0x7f80], // max float rounds to infinity
      [Infinity, 0x7f80],
      [-Infinity, 0xff80],
      [NaN, 0x7fc0],
      [-0, 0x8000],
    ];
    const file = fresh();
    writeSafetensors(file, [{ name: 'b', dtype: 'BF16', shape: [cases.length], data: Float32Array.from(cases.map((c) => c[0])) }]);
    const [info] = readSafetensorsHeader(file).tensors;
    expect(u16s(info!).map((b) => b.toString(16))).toEqual(cases.map((c) => c[1].toString(16)));
    const back = readTensorAsFloat32(info!);
    expect(Array.from(back.slice(0, 3))).toEqual([1, -2.5, 65536]);
    expect(back[10]).toBeNaN();
    // Signalling NaN payloads must not round into infinity.
    expect(float32ToBf16(Float32Array.of(f32FromBits(0x7f800001)))[0]).toBe(0x7fc0);
  });

  it('BF16 decoding is a 16-bit shift for all 65536 bit patterns', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const file = fresh();
    writeSafetensors(file, [{ name: 'all', dtype: 'BF16', shape: [65536], data: all }]);
    const [info] = readSafetensorsHeader(file).tensors;
    const back = readTensorAsFloat32(info!);
    const bits = new Uint32Array(back.buffer, back.byteOffset, back.length);
    for (let h = 0; h < 65536; h++) {
      if (bits[h] !== h << 16 >>> 0) throw new Error(`bf16 0x${h.toString(16)} decoded to 0x${bits[h]!.toString(16)}`);
    }
    expect(bf16BitsToFloat(0x3f80)).toBe(1);
    expect(f32Bits(bf16BitsToFloat(0xc020))).toBe(0xc0200000);
  });

  it('F64 reads as float32 rounded to nearest', () => {
    const values = Float64Array.of(1, 0.1, -1e300, 1e-300, Math.PI);
    const file = fresh();
    writeRawSafetensors(file, { x: { dtype: 'F64', shape: [5], data_offsets: [0, 40] } }, new Uint8Array(values.buffer));
    const [info] = readSafetensorsHeader(file).tensors;
    expect(Array.from(readTensorAsFloat32(info!))).toEqual(Array.from(values).map(Math.fround));
  });

  it('reads tensors at unaligned offsets, with or without a caller-owned fd', () => {
    // Unpadded 37-byte header → data starts at byte 45; the F32 tensor then sits at 47, the F16 at 45.
    const header = JSON.stringify({
      h: { dtype: 'F16', shape: [1], data_offsets: [0, 2] },
      f: { dtype: 'F32', shape: [2], data_offsets: [2, 10] },
    });
    const data = Buffer.alloc(10);
    data.writeUInt16LE(0xc100, 0);
    data.writeFloatLE(1.25, 2);
    data.writeFloatLE(-3.5, 6);
    const file = fresh();
    writeRawSafetensors(file, header, data);
    const t = byName(file);
    expect(t.get('f')!.begin % 4).not.toBe(0);
    expect(Array.from(readTensorAsFloat32(t.get('f')!))).toEqual([1.25, -3.5]);
    const fd = fs.openSync(file, 'r');
    try {
      expect(Array.from(readTensorAsFloat32(t.get('h')!, fd))).toEqual([-2.5]);
      expect(Array.from(readTensorAsFloat32(t.get('f')!, fd))).toEqual([1.25, -3.5]);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('handles scalars, empty tensors and no metadata', () => {
    const file = fresh();
    writeSafetensors(file, [
      { name: 'scalar', dtype: 'F32', shape: [], data: Float32Array.of(7) },
      { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
      { name: 'after', dtype: 'F16', shape: [2], data: Float32Array.of(1, 2) },
    ]);
    const { tensors, metadata } = readSafetensorsHeader(file);
    expect(metadata).toEqual({});
    const t = new Map(tensors.map((x) => [x.name, x]));
    expect(Array.from(readTensorAsFloat32(t.get('scalar')!))).toEqual([7]);
    expect(readTensorAsFloat32(t.get('empty')!).length).toBe(0);
    expect(Array.from(readTensorAsFloat32(t.get('after')!))).toEqual([1, 2]);
  });

  it('rejects inconsistent input to the writer', () => {
    const file = fresh();
    expectCliffscopeError(
      () => writeSafetensors(file, [{ name: 'a', dtype: 'F32', shape: [2, 2], data: new Float32Array(3) }]),
      'bad-argument',
      file,
    );
    expectCliffscopeError(
      () => writeSafetensors(file, [{ name: 'a', dtype: 'F32', shape: [2], data: new Int32Array(2) }]),
      'bad-argument',
      file,
    );
    expectCliffscopeError(
      () =>
        writeSafetensors(file, [
          { name: 'a', dtype: 'F32', shape: [1], data: new Float32Array(1) },
          { name: 'a', dtype: 'F32', shape: [1], data: new Float32Array(1) },
        ]),
      'bad-argument',
      file,
    );
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.readdirSync(tmp.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('readSafetensorsHeader rejects bad files, naming the file', () => {
  const f32 = (begin: number, end: number, shape = [2]) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

  it('missing file', () => {
    const file = path.join(tmp.dir, 'does-not-exist.safetensors');
    expectCliffscopeError(() => readSafetensorsHeader(file), 'missing-file', file);
  });

  it('file shorter than 8 bytes', () => {
    const file = fresh();
    fs.writeFileSync(file, Buffer.from([1, 2, 3]));
    expectCliffscopeError(() => readSafetensorsHeader(file), 'truncated-file', file);
    fs.writeFileSync(file, Buffer.alloc(0));
    expectCliffscopeError(() => readSafetensorsHeader(file), 'truncated-file', file);
  });

  it('header length 0', () => {
    const file = fresh();
    writeRawSafetensors(file, '', 16);
    expect(expectCliffscopeError(() => readSafetensorsHeader(file), 'bad-safetensors', file).message).toMatch(/length is 0/);
  });

  it('header length over 100 MB', () => {
    const file = fresh();
    writeRawSafetensors(file, '{}', 0, { declaredLength: 200n * 1024n * 1024n });
    expect(expectCliffscopeError(() => readSafetensorsHeader(file), 'bad-safetensors', file).message).toMatch(/exceeds/);
    writeRawSafetensors(file, '{}', 0, { declaredLength: 0xffffffffffffffffn });
    expectCliffscopeError(() => readSafetensorsHeader(file), 'bad-safetensors', file);
  });

  it('header length beyond the end of the file', () => {
    const file = fresh();
    writeRawSafetensors(file, '{"a":', 0, { declaredLength: 5000n });
    const err = expectCliffscopeError(() => readSafetensorsHeader(file), 'truncated-file', file);
    expect(err.message).toContain('5000');
  });

  it('header not valid UTF-8', () => {
    const file = fresh();
    const bytes = Buffer.concat([Buffer.from('{"a'), Buffer.from([0xff, 0xfe]), Buffer.from('":1}')]);
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(bytes.length));
    fs.writeFileSync(file, Buffer.concat([prefix, bytes]));
    expect(expectCliffscopeError(() => readSafetensorsHeader(file), 'bad-safetensors', file).message).toMatch(/UTF-8/);
  });

  it('header not JSON, or not a JSON object', () => {
    const file = fresh();
    writeRawSafetensors(file, '{"a": {"dtype": "F32",', 0);
    expect(expectCliffscopeError(() => readSafetensorsHeader(file), 'bad-safetensors', file).message).toMatch(/JSON/);
    writeRawSafetensors(file, '[1, 2, 3]', 0);
    expectCliffscopeError(() => readSafetensorsHeader(file), 'bad-safetensors', file);
    writeRawSafetensors(file, '"text"', 0);
    expectCliffscopeError(() => readSafetensorsHeader(file), 'bad-safetensors', file);
  });

  it.each(['dtype', 'shape', 'data_offsets'])('entry without %s', (key) => {
    const file = fresh();
    const entry: Record<string, unknown> = f32(0, 8);
    delete entry[key];
    writeRawSafetensors(file, { w: entry }, 8);
    const err = expectCliffscopeError(() => readSafetensorsHeader(file), 'bad-safetensors', file);
    expect(err.message).toContain(key);
    expect(err.message).toContain('"w"');
  });

  it('entries with wrong types', () => {
    const file = fresh();
    for (const entry of [
      42,
      { dtype: 7, shape: [2], data_offsets: [0, 8] },
      { dtype: 'F32', shape: 'two', data_offsets: [0, 8] },
      { dtype: 'F32', shape: [-2], data_offsets: [0, 8] },
      { dtype: 'F32', shape: [2.5], data_offsets: [0, 8] },
    ]) {
      writeRawSafetensors(file, { w: entry }, 8);
      expectCliffscopeError(() => readSafetensorsHeader(file), 'bad-safetensors', file);
    }
  });

  it('unknown dtype, naming it and the supported ones', () => {
    const file = fresh();
    writeRawSafetensors(file, { w: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, 2);
    const err = expectCliffscopeError(() => readSafetensorsHeader(file), 'unsupported-dtype', file);
    expect(err.message).toContain('F8_E4M3');
    expect(err.message).toContain('BF16');
  });

  it('data_offsets that are not [begin <= end] integers', () => {
    const file = fresh();
    for (const offs of [[8, 0], [0, 7.5], [0], [0, 8, 16], ['0', '8'], [-8, 0], null]) {
      writeRawSafetensors(file, { w: { dtype: 'F32', shape: [2], data_offsets: offs } }, 16);
      expect(expectCliffscopeError(() => readSafetensorsHeader(file), 'bad-safetensors', file).message).toMatch(/data_offsets/);
    }
  });

  it('byte count that does not match shape × dtype size', () => {
    const file = fresh();
    writeRawSafetensors(file, { w: f32(0, 12, [2]) }, 12);
    const err = expectCliffscopeError(() => readSafetensorsHeader(file), 'bad-safetensors', file);
    expect(err.message).toContain('12 bytes');
    expect(err.message).toContain('needs 8');
  });

  it('offsets beyond the data region: truncated, with expected vs actual size', () => {
    const file = fresh();
    const header = JSON.stringify({ a: f32(0, 8), b: f32(8, 16) });
    writeRawSafetensors(file, header, 12);
    const expected = 8 + header.length + 16;
    const actual = 8 + header.length + 12;
    const err = expectCliffscopeError(() => readSafetensorsHeader(file), 'truncated-file', file);
    expect(err.message).toContain(String(expected));
    expect(err.message).toContain(String(actual));
    expect(err.message).toContain('"b"');
  });

  it('overlapping tensors, naming both', () => {
    const file = fresh();
    writeRawSafetensors(file, { first: f32(0, 8), second: f32(4, 12) }, 12);
    const err = expectCliffscopeError(() => readSafetensorsHeader(file), 'bad-safetensors', file);
    expect(err.message).toMatch(/overlap/);
    expect(err.message).toContain('"first"');
    expect(err.message).toContain('"second"');
  });

  it('__metadata__ is read as strings and rejected otherwise', () => {
    const file = fresh();
    writeRawSafetensors(file, { __metadata__: { format: 'pt' }, w: f32(0, 8) }, 8);
    const ok = readSafetensorsHeader(file);
    expect(ok.metadata).toEqual({ format: 'pt' });
    expect(ok.tensors.map((t) => t.name)).toEqual(['w']);
    writeRawSafetensors(file, { __metadata__: { step: 3 }, w: f32(0, 8) }, 8);
    expectCliffscopeError(() => readSafetensorsHeader(file), 'bad-safetensors', file);
    writeRawSafetensors(file, { __metadata__: ['x'], w: f32(0, 8) }, 8);
    expectCliffscopeError(() => readSafetensorsHeader(file), 'bad-safetensors', file);
  });

  it('reads only the header, however large the data region', () => {
    // A 3 GB sparse file: reading it whole would blow the Buffer limit or take seconds; the header read is instant.
    const file = fresh();
    const size = 3 * 1024 ** 3;
    const n = size / 2;
    const header = JSON.stringify({ big: { dtype: 'BF16', shape: [n], data_offsets: [0, size] } });
    writeRawSafetensors(file, header, 0);
    fs.truncateSync(file, 8 + header.length + size);
    const { tensors } = readSafetensorsHeader(file);
    expect(tensors[0]!.end).toBe(8 + header.length + size);
    fs.rmSync(file);
  });
});
