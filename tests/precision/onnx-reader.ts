/**
 * Test helper: a minimal ONNX protobuf *reader*, independent of the writer in src/main/engine/onnx/proto.ts, for
 * checking what a compiled model.onnx actually contains (node types, initializer types, external-data placements)
 * and for reading initializers back out of the external weights file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { openCheckpoint } from '../../src/main/engine/model/checkpoint.js';
import { f16BitsToFloat, readTensorAsFloat32 } from '../../src/main/engine/model/safetensors.js';
import { DataType } from '../../src/main/engine/onnx/proto.js';
import { dequantizeInt4 } from '../../src/main/engine/onnx/quantize.js';

export interface ReadNode {
  opType: string;
  domain: string;
  name: string;
  inputs: string[];
  outputs: string[];
  intAttrs: Record<string, number>;
}

export interface ReadTensor {
  name: string;
  dataType: number;
  dims: number[];
  external: Record<string, string>;
}

export interface ReadModel {
  /** Every node, those inside If branches included. */
  nodes: ReadNode[];
  initializers: Map<string, ReadTensor>;
  inputs: Map<string, number>;
  outputs: Map<string, number>;
}

type Field = { field: number; wire: number; value: bigint | Uint8Array };

function* fields(buf: Uint8Array): Generator<Field> {
  let pos = 0;
  const varint = (): bigint => {
    let x = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[pos++]!;
      x |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return x;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const field = key >> 3;
    const wire = key & 7;
    if (wire === 0) yield { field, wire, value: varint() };
    else if (wire === 2) {
      const len = Number(varint());
      yield { field, wire, value: buf.subarray(pos, pos + len) };
      pos += len;
    } else if (wire === 5) {
      yield { field, wire, value: buf.subarray(pos, pos + 4) };
      pos += 4;
    } else if (wire === 1) {
      yield { field, wire, value: buf.subarray(pos, pos + 8) };
      pos += 8;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
}

const text = (v: bigint | Uint8Array) => new TextDecoder().decode(v as Uint8Array);

function readTensor(buf: Uint8Array): ReadTensor {
  const t: ReadTensor = { name: '', dataType: 0, dims: [], external: {} };
  for (const f of fields(buf)) {
    if (f.field === 1) t.dims.push(Number(f.value));
    else if (f.field === 2) t.dataType = Number(f.value);
    else if (f.field === 8) t.name = text(f.value);
    else if (f.field === 13) {
      let k = '';
      let v = '';
      for (const e of fields(f.value as Uint8Array)) {
        if (e.field === 1) k = text(e.value);
        if (e.field === 2) v = text(e.value);
      }
      t.external[k] = v;
    }
  }
  return t;
}

/** A node, then every node of the graphs its attributes hold (If branches), depth first. */
function readNode(buf: Uint8Array): ReadNode[] {
  const n: ReadNode = { opType: '', domain: '', name: '', inputs: [], outputs: [], intAttrs: {} };
  const nested: ReadNode[] = [];
  for (const f of fields(buf)) {
    if (f.field === 1) n.inputs.push(text(f.value));
    else if (f.field === 2) n.outputs.push(text(f.value));
    else if (f.field === 3) n.name = text(f.value);
    else if (f.field === 4) n.opType = text(f.value);
    else if (f.field === 7) n.domain = text(f.value);
    else if (f.field === 5) {
      let name = '';
      let i: number | undefined;
      for (const a of fields(f.value as Uint8Array)) {
        if (a.field === 1) name = text(a.value);
        if (a.field === 3) i = Number(BigInt.asIntN(64, a.value as bigint));
        if (a.field === 6) for (const g of fields(a.value as Uint8Array)) if (g.field === 1) nested.push(...readNode(g.value as Uint8Array));
      }
      if (i !== undefined) n.intAttrs[name] = i;
    }
  }
  return [n, ...nested];
}

/** Element type of a ValueInfoProto (graph input/output). */
function valueInfoType(buf: Uint8Array): [string, number] {
  let name = '';
  let elem = 0;
  for (const f of fields(buf)) {
    if (f.field === 1) name = text(f.value);
    if (f.field === 2) for (const t of fields(f.value as Uint8Array)) if (t.field === 1) for (const tt of fields(t.value as Uint8Array)) if (tt.field === 1) elem = Number(tt.value);
  }
  return [name, elem];
}

export function readModel(file: string): ReadModel {
  const buf = new Uint8Array(fs.readFileSync(file));
  const model: ReadModel = { nodes: [], initializers: new Map(), inputs: new Map(), outputs: new Map() };
  for (const f of fields(buf)) {
    if (f.field !== 7) continue;
    for (const g of fields(f.value as Uint8Array)) {
      if (g.field === 1) model.nodes.push(...readNode(g.value as Uint8Array));
      else if (g.field === 5) {
        const t = readTensor(g.value as Uint8Array);
        model.initializers.set(t.name, t);
      } else if (g.field === 11) model.inputs.set(...valueInfoType(g.value as Uint8Array));
      else if (g.field === 12) model.outputs.set(...valueInfoType(g.value as Uint8Array));
    }
  }
  return model;
}

/** The bytes of an externally stored initializer, read from the file its `location` names. */
export function readExternal(modelFile: string, t: ReadTensor): Uint8Array {
  const file = path.join(path.dirname(modelFile), t.external.location!);
  const offset = Number(t.external.offset ?? 0);
  const length = Number(t.external.length);
  const out = new Uint8Array(length);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, out, 0, length, offset);
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

/** A float tensor's values from its external bytes (float32 or float16). */
export function readFloats(modelFile: string, t: ReadTensor): Float32Array {
  const bytes = readExternal(modelFile, t);
  if (t.dataType === DataType.FLOAT) return new Float32Array(bytes.buffer);
  if (t.dataType === DataType.FLOAT16) return Float32Array.from(new Uint16Array(bytes.buffer), f16BitsToFloat);
  throw new Error(`${t.name}: not a float tensor (type ${t.dataType})`);
}

/**
 * Weights as a compiled model holds them, for the reference forward pass: a linear weight with a `<name>.int4`
 * initializer is rebuilt from the bytes in the weights file (codes, scales, zero points; K, N and block_size from its
 * MatMulNBits node) and dequantised; a float initializer is read back as stored (float16 included); anything else
 * comes from the checkpoint.
 */
export function compiledWeights(modelPath: string, checkpointDir: string): (name: string) => Float32Array {
  const model = readModel(modelPath);
  const ckpt = openCheckpoint(checkpointDir);
  const cache = new Map<string, Float32Array>();
  const read = (name: string): Float32Array => {
    const hit = cache.get(name);
    if (hit) return hit;
    // q, k and v live as row ranges of the stacked qkv tensor (fusedQkv in decoder-graph.ts).
    const part = /^(model\.layers\.\d+\.self_attn)\.(q|k|v)_proj\.(weight|bias)$/.exec(name);
    if (part && !model.initializers.has(name) && !model.initializers.has(`${name}.int4`)) {
      const [, prefix, which, kind] = part;
      const stacked = read(`${prefix}.qkv_proj.${kind}`);
      const sizes = (['q', 'k', 'v'] as const).map((x) => ckpt.tensors.get(`${prefix}.${x}_proj.${kind}`)!.shape.reduce((a, b) => a * b, 1));
      const start = sizes.slice(0, ['q', 'k', 'v'].indexOf(which!)).reduce((a, b) => a + b, 0);
      const w = stacked.slice(start, start + sizes[['q', 'k', 'v'].indexOf(which!)]!);
      cache.set(name, w);
      return w;
    }
    let w: Float32Array;
    const packed = model.initializers.get(`${name}.int4`);
    const plain = model.initializers.get(name);
    if (packed) {
      const node = model.nodes.find((n) => n.opType === 'MatMulNBits' && n.inputs[1] === packed.name);
      if (!node) throw new Error(`no MatMulNBits reads ${packed.name}`);
      const zp = model.initializers.get(`${name}.zero_points`);
      w = dequantizeInt4({
        N: node.intAttrs.N!,
        K: node.intAttrs.K!,
        blockSize: node.intAttrs.block_size!,
        blocks: packed.dims[1]!,
        packed: readExternal(modelPath, packed),
        scales: readFloats(modelPath, model.initializers.get(`${name}.scales`)!),
        zeroPoints: zp ? readExternal(modelPath, zp) : null,
      });
    } else if (plain && plain.external.location) {
      w = readFloats(modelPath, plain);
    } else {
      w = readTensorAsFloat32(ckpt.tensors.get(name)!);
    }
    cache.set(name, w);
    return w;
  };
  return read;
}
