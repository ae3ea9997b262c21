/**
 * Reading and writing the safetensors format (https://github.com/huggingface/safetensors):
 *
 *   [u64 little-endian N] [N bytes of UTF-8 JSON header, space padded] [tensor data]
 *
 * The header maps tensor names to { dtype, shape, data_offsets: [begin, end] }, offsets relative to the start of the
 * data region, plus an optional "__metadata__" map of strings. Checkpoints can be many GB, so the reader only ever
 * reads the header and, on request, one tensor's bytes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CliffscopeError } from '../errors.js';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** Bytes per element of each dtype. */
export const DTYPE_SIZES: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** The safetensors file holding the tensor. */
  file: string;
  /** Absolute byte offset of the first byte in `file` (8 + header length + data_offsets[0]). */
  begin: number;
  /** Absolute byte offset one past the last byte in `file`. */
  end: number;
}

/** Real headers are a few hundred KB at most; anything bigger is a corrupt length prefix. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** readSync moves at most ~2 GB per call; read big tensors in pieces. */
const READ_CHUNK = 1 << 30;

const SUPPORTED_DTYPES = Object.keys(DTYPE_SIZES) as SafetensorsDtype[];

function isDtype(s: string): s is SafetensorsDtype {
  return Object.prototype.hasOwnProperty.call(DTYPE_SIZES, s);
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function bad(file: string, what: string, hint?: string): CliffscopeError {
  return new CliffscopeError('bad-safetensors', `${file}: ${what}`, {
    file,
    hint: hint ?? 'the file is not a valid safetensors file; re-download or re-export it',
  });
}

/** Fill `into[0..length)` from `fd` at `position`, looping because readSync may return short counts. */
function readFully(fd: number, into: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < into.length) {
    const want = Math.min(into.length - done, READ_CHUNK);
    const got = fs.readSync(fd, into, done, want, position + done);
    if (got === 0) {
      throw new CliffscopeError(
        'truncated-file',
        `${file}: unexpected end of file at byte ${position + done} (wanted ${into.length} bytes from ${position})`,
        { file, hint: 'the file is incomplete; re-download it' },
      );
    }
    done += got;
  }
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Parse and validate the header of a safetensors file without reading its tensor data. Tensors come back ordered by
 * their position in the file.
 */
export function readSafetensorsHeader(file: string): {
  tensors: TensorInfo[];
  metadata: Record<string, string>;
  dataStart: number;
} {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new CliffscopeError('missing-file', `${file}: safetensors file not found`, { file });
  }
  if (!stat.isFile()) {
    throw new CliffscopeError('missing-file', `${file}: is not a regular file`, { file });
  }
  const size = stat.size;
  if (size < 8) {
    throw new CliffscopeError(
      'truncated-file',
      `${file}: file is ${size} bytes, shorter than the 8-byte header length prefix of a safetensors file`,
      { file, hint: 'the file is empty or incomplete; re-download it' },
    );
  }

  const fd = fs.openSync(file, 'r');
  let headerBytes: Uint8Array;
  try {
    const prefix = new Uint8Array(8);
    readFully(fd, prefix, 0, file);
    const headerLen = new DataView(prefix.buffer).getBigUint64(0, true);
    if (headerLen === 0n) throw bad(file, 'header length is 0');
    if (headerLen > BigInt(MAX_HEADER_BYTES)) {
      throw bad(file, `header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt length prefix?)`);
    }
    if (8n + headerLen > BigInt(size)) {
      throw new CliffscopeError(
        'truncated-file',
        `${file}: header of ${headerLen} bytes runs past the end of the file (file is ${size} bytes, expected at least ${8n + headerLen})`,
        { file, hint: 'the file is incomplete or not a safetensors file; re-download it' },
      );
    }
    headerBytes = new Uint8Array(Number(headerLen));
    readFully(fd, headerBytes, 8, file);
  } finally {
    fs.closeSync(fd);
  }

  const dataStart = 8 + headerBytes.length;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw bad(file, 'header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw bad(file, `header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw bad(file, 'header is not a JSON object');
  }

  const metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  let maxEnd = 0;
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
        throw bad(file, '"__metadata__" must be an object of strings');
      }
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') throw bad(file, `"__metadata__.${k}" must be a string, got ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw bad(file, `tensor "${name}": entry must be an object with dtype, shape and data_offsets`);
    }
    const e = entry as Record<string, unknown>;
    for (const key of ['dtype', 'shape', 'data_offsets']) {
      if (!(key in e)) throw bad(file, `tensor "${name}": "${key}" is missing`);
    }
    if (typeof e.dtype !== 'string') throw bad(file, `tensor "${name}": dtype must be a string`);
    if (!isDtype(e.dtype)) {
      throw new CliffscopeError(
        'unsupported-dtype',
        `${file}: tensor "${name}" has dtype "${e.dtype}", which is not supported (supported: ${SUPPORTED_DTYPES.join(', ')})`,
        { file, hint: 'save the checkpoint in float32, float16 or bfloat16' },
      );
    }
    if (!Array.isArray(e.shape) || !e.shape.every(isNonNegInt)) {
      throw bad(file, `tensor "${name}": shape must be an array of non-negative integers, got ${JSON.stringify(e.shape)}`);
    }
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !isNonNegInt(offs[0]) || !isNonNegInt(offs[1]) || offs[0] > offs[1]) {
      throw bad(
        file,
        `tensor "${name}": data_offsets must be two integers [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offs)}`,
      );
    }
    const shape = e.shape as number[];
    const [b, en] = offs as [number, number];
    const expectedBytes = numel(shape) * DTYPE_SIZES[e.dtype];
    if (en - b !== expectedBytes) {
      throw bad(
        file,
        `tensor "${name}": data_offsets [${b}, ${en}] span ${en - b} bytes, but ${e.dtype} ${fmtShape(shape)} needs ${expectedBytes}`,
      );
    }
    maxEnd = Math.max(maxEnd, en);
    tensors.push({ name, dtype: e.dtype, shape: [...shape], file, begin: dataStart + b, end: dataStart + en });
  }

  if (dataStart + maxEnd > size) {
    const first = tensors.find((t) => t.end > size);
    throw new CliffscopeError(
      'truncated-file',
      `${file}: file is truncated: its header implies ${dataStart + maxEnd} bytes but the file has ${size}` +
        (first ? ` (tensor "${first.name}" ends at byte ${first.end})` : ''),
      { file, hint: 'the download or copy was cut short; fetch the file again' },
    );
  }

  // Tensors must not share bytes, and (as the reference implementation requires) must cover the data region exactly:
  // bytes no tensor claims — a gap, or anything after the last tensor — are a sign of a damaged or doctored file.
  // Sort by position and compare neighbours (empty tensors take no space).
  tensors.sort((x, y) => x.begin - y.begin || x.end - y.end);
  let covered = dataStart;
  let prev: TensorInfo | undefined;
  for (const t of tensors) {
    if (t.begin === t.end) continue;
    if (prev && t.begin < prev.end) {
      throw bad(
        file,
        `tensors "${prev.name}" (bytes ${prev.begin - dataStart}..${prev.end - dataStart}) and "${t.name}" ` +
          `(bytes ${t.begin - dataStart}..${t.end - dataStart}) overlap`,
      );
    }
    if (t.begin > covered) {
      throw bad(file, `data bytes ${covered - dataStart}..${t.begin - dataStart} (before tensor "${t.name}") belong to no tensor`);
    }
    covered = t.end;
    prev = t;
  }
  if (covered < size) {
    throw bad(
      file,
      `${size - covered} bytes after the last tensor` + (prev ? ` ("${prev.name}", ending at byte ${covered})` : '') + ' belong to no tensor',
      'the file was appended to or is not the file its header describes; re-download or re-export it',
    );
  }
  return { tensors, metadata, dataStart };
}

// ---------------------------------------------------------------------------------------------------------------
// Half-precision conversions. Typed arrays use the platform's byte order; safetensors is little-endian, as is every
// platform Node and ONNX Runtime ship for in practice, so we reinterpret bytes directly.

let f16Table: Uint32Array | null = null;

/** float32 bit pattern of every float16 value, so decoding is one table lookup per element. */
function halfToFloatBitsTable(): Uint32Array {
  if (f16Table) return f16Table;
  const t = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    let mant = h & 0x3ff;
    if (exp === 0x1f) {
      t[h] = sign | 0x7f800000 | (mant << 13); // inf, or NaN with its payload kept
    } else if (exp !== 0) {
      t[h] = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    } else if (mant === 0) {
      t[h] = sign; // ±0
    } else {
      // Subnormal half: shift the mantissa up until the implicit bit appears; every one is a normal float32.
      let e = -14;
      while ((mant & 0x400) === 0) {
        mant <<= 1;
        e--;
      }
      t[h] = sign | ((e + 127) << 23) | ((mant & 0x3ff) << 13);
    }
  }
  f16Table = t;
  return t;
}

/** Decode one float16 bit pattern. */
export function f16BitsToFloat(h: number): number {
  const bits = new Uint32Array([halfToFloatBitsTable()[h & 0xffff]!]);
  return new Float32Array(bits.buffer)[0]!;
}

/** Decode one bfloat16 bit pattern. */
export function bf16BitsToFloat(h: number): number {
  const bits = new Uint32Array([(h & 0xffff) << 16]);
  return new Float32Array(bits.buffer)[0]!;
}

/** float32 bit pattern → bfloat16, round to nearest even; NaN stays a (quiet) NaN. */
function f32BitsToBf16(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return ((bits >>> 16) & 0x8000) | 0x7fc0;
  const rounding = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + rounding) >>> 16) & 0xffff;
}

/** float32 bit pattern → float16, round to nearest even; overflow → ±inf, tiny → subnormal or ±0. */
function f32BitsToF16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal
    mant |= 0x800000;
    const shift = 14 - e;
    const q = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    // A carry out of the mantissa lands in the exponent field, which is exactly the next representable value.
    return sign | (rem > halfway || (rem === halfway && (q & 1) === 1) ? q + 1 : q);
  }
  const q = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  return sign | (rem > 0x1000 || (rem === 0x1000 && (q & 1) === 1) ? q + 1 : q);
}

/** Convert float32 values to bfloat16 bit patterns (round to nearest even). */
export function float32ToBf16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < out.length; i++) out[i] = f32BitsToBf16(bits[i]!);
  return out;
}

/** Convert float32 values to float16 bit patterns (round to nearest even). */
export function float32ToF16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < out.length; i++) out[i] = f32BitsToF16(bits[i]!);
  return out;
}

/**
 * Read one floating-point tensor and return it as float32. F32 comes back bit for bit, F16/BF16 widen exactly, F64
 * rounds to nearest. Pass an open `fd` of `info.file` when reading many tensors from one file.
 */
export function readTensorAsFloat32(info: TensorInfo, fd?: number): Float32Array {
  if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16' && info.dtype !== 'F64') {
    throw new CliffscopeError(
      'unsupported-dtype',
      `${info.file}: tensor "${info.name}" is ${info.dtype}; only F32, F16, BF16 and F64 can be read as float32`,
      { file: info.file },
    );
  }
  const n = numel(info.shape);
  const bytes = info.end - info.begin;
  if (bytes !== n * DTYPE_SIZES[info.dtype]) {
    throw bad(info.file, `tensor "${info.name}": byte range ${info.begin}..${info.end} does not fit ${info.dtype} ${fmtShape(info.shape)}`);
  }
  // A fresh ArrayBuffer starts aligned, so typed views over it work whatever the tensor's offset in the file.
  const raw = new Uint8Array(new ArrayBuffer(bytes));
  const ownFd = fd === undefined;
  const handle = ownFd ? fs.openSync(info.file, 'r') : fd;
  try {
    readFully(handle, raw, info.begin, info.file);
  } finally {
    if (ownFd) fs.closeSync(handle);
  }

  switch (info.dtype) {
    case 'F32':
      return new Float32Array(raw.buffer, 0, n);
    case 'F64':
      return Float32Array.from(new Float64Array(raw.buffer, 0, n));
    case 'BF16': {
      const src = new Uint16Array(raw.buffer, 0, n);
      const out = new Float32Array(n);
      const outBits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) outBits[i] = src[i]! << 16;
      return out;
    }
    case 'F16': {
      const src = new Uint16Array(raw.buffer, 0, n);
      const table = halfToFloatBitsTable();
      const out = new Float32Array(n);
      const outBits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) outBits[i] = table[src[i]!]!;
      return out;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------

export type WritableDtype = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32';

export interface TensorToWrite {
  name: string;
  dtype: WritableDtype;
  shape: number[];
  /** F32: Float32Array. F16/BF16: Float32Array (rounded to nearest even) or Uint16Array of raw bits. I64: BigInt64Array. I32: Int32Array. */
  data: Float32Array | BigInt64Array | Int32Array | Uint16Array;
}

/** The bytes of one tensor as stored on disk (little-endian). */
function tensorBytes(t: TensorToWrite, file: string): Uint8Array {
  const d = t.data;
  const wrong = () =>
    new CliffscopeError('bad-argument', `${file}: tensor "${t.name}" is ${t.dtype} but its data is a ${d.constructor.name}`, {
      file,
    });
  let view: ArrayBufferView;
  switch (t.dtype) {
    case 'F32':
      if (!(d instanceof Float32Array)) throw wrong();
      view = d;
      break;
    case 'F16':
    case 'BF16':
      if (d instanceof Uint16Array) view = d;
      else if (d instanceof Float32Array) view = t.dtype === 'F16' ? float32ToF16(d) : float32ToBf16(d);
      else throw wrong();
      break;
    case 'I64':
      if (!(d instanceof BigInt64Array)) throw wrong();
      view = d;
      break;
    case 'I32':
      if (!(d instanceof Int32Array)) throw wrong();
      view = d;
      break;
  }
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function writeFully(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) {
    done += fs.writeSync(fd, bytes, done, Math.min(bytes.length - done, READ_CHUNK));
  }
}

/**
 * Write tensors to a safetensors file, in the order given. Data is written tensor by tensor; the file appears under
 * its name only once complete, so an interrupted write never leaves something that looks like a truncated model.
 */
export function writeSafetensors(file: string, tensors: TensorToWrite[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || Object.prototype.hasOwnProperty.call(header, t.name)) {
      throw new CliffscopeError('bad-argument', `${file}: tensor name "${t.name}" is duplicated or reserved`, { file });
    }
    if (!t.shape.every(isNonNegInt)) {
      throw new CliffscopeError('bad-argument', `${file}: tensor "${t.name}" has an invalid shape ${JSON.stringify(t.shape)}`, {
        file,
      });
    }
    const n = numel(t.shape);
    if (t.data.length !== n) {
      throw new CliffscopeError(
        'bad-argument',
        `${file}: tensor "${t.name}" has shape ${fmtShape(t.shape)} (${n} elements) but ${t.data.length} values`,
        { file },
      );
    }
    const size = n * DTYPE_SIZES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }

  // The spec pads the header with spaces so the data region starts 8-byte aligned.
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));

  checkOutputFile(file);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  let fd: number | null = null;
  try {
    fd = fs.openSync(tmp, 'w');
    writeFully(fd, prefix);
    writeFully(fd, json);
    for (const t of tensors) writeFully(fd, tensorBytes(t, file));
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== null) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    if (e instanceof CliffscopeError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliffscopeError('bad-argument', `cannot write ${file} (${code ?? (e as Error).message})`, {
      file,
      hint: code === 'ENOSPC' ? 'the disk is full' : 'choose an output file in a folder you can write to',
      cause: e,
    });
  }
}

/**
 * Refuse an output path that cannot become a file: a folder, or a path whose folder does not exist. Called by
 * writeSafetensors, and by verbs before a long computation so the mistake shows at once.
 */
export function checkOutputFile(file: string): void {
  const dir = path.dirname(path.resolve(file));
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(file);
  } catch {
    // does not exist yet: fine, if its folder does
  }
  if (st?.isDirectory()) {
    throw new CliffscopeError('bad-argument', `${file} is a folder; the output must be a file`, {
      file,
      hint: `name a file, e.g. ${path.join(file, 'acts.safetensors')}`,
    });
  }
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new CliffscopeError('missing-file', `cannot write ${file}: the folder ${dir} does not exist`, {
      file,
      hint: 'create the folder first, or choose another output path',
    });
  }
}
