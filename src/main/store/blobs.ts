/**
 * Typed arrays ↔ SQLite BLOBs. Stored little-endian, the byte order of every machine Cliffscope runs on; a
 * big-endian host gets an explicit byte swap rather than silently wrong numbers.
 */
import os from 'node:os';

const LITTLE_ENDIAN = os.endianness() === 'LE';

/** Bytes per stored value (float32 scores, int32 token ids): a BLOB holds length / 4 values. */
export const INT32_BYTES = 4;

type Typed = Float32Array | Int32Array;

function toBlob(a: Typed, setter: (v: DataView, at: number, x: number) => void): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(a.buffer, a.byteOffset, a.byteLength); // a view: no copy
  const out = Buffer.alloc(a.byteLength);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0; i < a.length; i++) setter(view, i * 4, a[i]!);
  return out;
}

function fromBlob<T extends Typed>(buf: Uint8Array, make: (b: ArrayBuffer, off: number, n: number) => T, alloc: (n: number) => T, getter: (v: DataView, at: number) => number, what: string): T {
  if (buf.byteLength % 4 !== 0) throw new Error(`${what} BLOB of ${buf.byteLength} bytes is not a whole number of 4-byte values`);
  const n = buf.byteLength / 4;
  if (LITTLE_ENDIAN) {
    // A typed-array view needs a 4-aligned offset; Buffers handed back by SQLite may sit anywhere in a pooled slab.
    if (buf.byteOffset % 4 === 0) return make(buf.buffer as ArrayBuffer, buf.byteOffset, n);
    const copy = new Uint8Array(buf.byteLength);
    copy.set(buf);
    return make(copy.buffer, 0, n);
  }
  const out = alloc(n);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i < n; i++) out[i] = getter(view, i * 4);
  return out;
}

export function float32ToBlob(a: Float32Array | readonly number[]): Buffer {
  return toBlob(a instanceof Float32Array ? a : Float32Array.from(a), (v, at, x) => v.setFloat32(at, x, true));
}

export function blobToFloat32(buf: Uint8Array): Float32Array {
  return fromBlob(buf, (b, o, n) => new Float32Array(b, o, n), (n) => new Float32Array(n), (v, at) => v.getFloat32(at, true), 'float32');
}

export function int32ToBlob(a: Int32Array | readonly number[]): Buffer {
  return toBlob(a instanceof Int32Array ? a : Int32Array.from(a), (v, at, x) => v.setInt32(at, x, true));
}

export function blobToInt32(buf: Uint8Array): Int32Array {
  return fromBlob(buf, (b, o, n) => new Int32Array(b, o, n), (n) => new Int32Array(n), (v, at) => v.getInt32(at, true), 'int32');
}
