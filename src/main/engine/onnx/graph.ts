/**
 * A small builder over the protobuf writer: add nodes by op type, get back value names, with constants and
 * initializers de-duplicated. The decoder compiler reads like the model it builds because of it.
 */
import {
  type AttributeValue,
  DataType,
  type DataTypeId,
  type ModelDef,
  type NodeDef,
  type SubgraphDef,
  type TensorDef,
  type ValueInfoDef,
} from './proto.js';
import { float32ToF16 } from '../model/safetensors.js';

export type Attrs = Record<string, number | number[] | string | { floats: number[] } | { float: number } | { graph: SubgraphDef }>;

function toAttribute(v: Attrs[string]): AttributeValue {
  if (typeof v === 'string') return { kind: 'string', value: v };
  if (typeof v === 'number') return { kind: 'int', value: v };
  if (Array.isArray(v)) return { kind: 'ints', value: v };
  if ('float' in v) return { kind: 'float', value: v.float };
  if ('graph' in v) return { kind: 'graph', value: v.graph };
  return { kind: 'floats', value: v.floats };
}

export class GraphBuilder {
  readonly nodes: NodeDef[] = [];
  readonly initializers: TensorDef[] = [];
  readonly inputs: ValueInfoDef[] = [];
  readonly outputs: ValueInfoDef[] = [];
  private readonly constants = new Map<string, string>();
  private readonly names = new Set<string>();
  private counter = 0;

  /**
   * Build a subgraph (a branch of If) with `build` writing into this builder: its nodes are taken out of this graph
   * into the subgraph, while names and constants stay shared, so the branch reads any value of this graph.
   */
  subgraph(name: string, build: () => { name: string; dataType: DataTypeId }[]): SubgraphDef {
    const before = this.nodes.length;
    const outputs = build();
    const nodes = this.nodes.splice(before);
    return { name, nodes, outputs: outputs.map((o) => ({ ...o, shape: null })) };
  }

  /** A fresh value name under a readable prefix (`blocks.3.attn.q`). */
  fresh(prefix: string): string {
    let name = prefix;
    while (this.names.has(name)) name = `${prefix}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  input(name: string, dataType: DataTypeId, shape: (number | string)[]): string {
    this.names.add(name);
    this.inputs.push({ name, dataType, shape });
    return name;
  }

  /** Expose `value` as a graph output called `name` (an Identity when the names differ). */
  output(name: string, value: string, dataType: DataTypeId, shape: (number | string)[]): void {
    if (value !== name) this.op('Identity', [value], {}, { outputs: [name] });
    this.outputs.push({ name, dataType, shape });
  }

  /** Add one node; returns its first output name. `outputs` may name them (or give how many to create). */
  op(
    opType: string,
    inputs: string[],
    attrs: Attrs = {},
    opts: { outputs?: string[] | number; name?: string; domain?: string } = {},
  ): string {
    return this.opMulti(opType, inputs, attrs, opts)[0]!;
  }

  opMulti(
    opType: string,
    inputs: string[],
    attrs: Attrs = {},
    opts: { outputs?: string[] | number; name?: string; domain?: string } = {},
  ): string[] {
    const base = opts.name ?? opType.toLowerCase();
    const outputs =
      typeof opts.outputs === 'number' || opts.outputs === undefined
        ? Array.from({ length: opts.outputs ?? 1 }, (_, i) => this.fresh(i === 0 ? base : `${base}.out${i}`))
        : opts.outputs.map((o) => {
            this.names.add(o);
            return o;
          });
    const attributes: Record<string, AttributeValue> = {};
    for (const [k, v] of Object.entries(attrs)) attributes[k] = toAttribute(v);
    this.nodes.push({
      opType,
      inputs,
      outputs,
      name: this.fresh(`node.${base}`),
      domain: opts.domain,
      attributes,
    });
    return outputs;
  }

  /** An inline int64 constant (shapes, axes, indices); identical constants are shared. */
  int64(values: number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join('x')}:${values.join(',')}`;
    const hit = this.constants.get(key);
    if (hit) return hit;
    const raw = new Uint8Array(new BigInt64Array(values.map((v) => BigInt(v))).buffer);
    const name = this.fresh(`const.i64.${values.length <= 4 ? values.join('_').replace(/-/g, 'm') : 'v'}`);
    this.initializers.push({ name, dataType: DataType.INT64, dims, raw });
    this.constants.set(key, name);
    return name;
  }

  /** An inline float32 constant; identical constants are shared. */
  float32(values: ArrayLike<number>, dims: number[] = [values.length]): string {
    const arr = Float32Array.from(values);
    const key = `f32:${dims.join('x')}:${Array.from(arr).join(',')}`;
    const hit = this.constants.get(key);
    if (hit) return hit;
    const name = this.fresh(`const.f32.${arr.length === 1 ? String(arr[0]).replace(/[-.]/g, '_') : 'v'}`);
    this.initializers.push({ name, dataType: DataType.FLOAT, dims, raw: new Uint8Array(arr.buffer) });
    this.constants.set(key, name);
    return name;
  }

  /** An inline float16 constant (values rounded to nearest even); identical constants are shared. */
  float16(values: ArrayLike<number>, dims: number[] = [values.length]): string {
    const arr = Float32Array.from(values);
    const key = `f16:${dims.join('x')}:${Array.from(arr).join(',')}`;
    const hit = this.constants.get(key);
    if (hit) return hit;
    const name = this.fresh(`const.f16.${arr.length === 1 ? String(arr[0]).replace(/[-.]/g, '_') : 'v'}`);
    const bits = float32ToF16(arr);
    this.initializers.push({ name, dataType: DataType.FLOAT16, dims, raw: new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength) });
    this.constants.set(key, name);
    return name;
  }

  /** A float constant of the given type (FLOAT or FLOAT16), for graphs that compute in either. */
  floatConst(dataType: DataTypeId, values: ArrayLike<number>, dims: number[] = [values.length]): string {
    return dataType === DataType.FLOAT16 ? this.float16(values, dims) : this.float32(values, dims);
  }

  /** A named inline initializer of any type (raw little-endian bytes). */
  rawInitializer(name: string, dataType: DataTypeId, dims: number[], raw: Uint8Array): string {
    this.names.add(name);
    this.initializers.push({ name, dataType, dims, raw });
    return name;
  }

  /** A named initializer whose bytes live in the external-data file. */
  externalInitializer(
    name: string,
    dims: number[],
    location: string,
    offset: number,
    length: number,
    dataType: DataTypeId = DataType.FLOAT,
  ): string {
    this.names.add(name);
    this.initializers.push({ name, dataType, dims, external: { location, offset, length } });
    return name;
  }

  build(meta: { producerVersion: string; graphName: string }): ModelDef {
    return {
      producerName: 'cliffscope',
      producerVersion: meta.producerVersion,
      graphName: meta.graphName,
      opsets: [
        { domain: '', version: 17 },
        { domain: 'com.microsoft', version: 1 },
      ],
      nodes: this.nodes,
      initializers: this.initializers,
      inputs: this.inputs,
      outputs: this.outputs,
    };
  }
}
