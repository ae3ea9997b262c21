/**
 * The flags that say how a model is loaded — the same on every verb that loads one — and how they become the API's
 * ModelRef. Only words are translated here (`--int4-lm-head float`); every value is checked by ModelRef's schema,
 * as for any other caller.
 */
import { toIssues } from '../../shared/contract.js';
import type { Loose } from '../../shared/runs/spec.js';
import { ModelRef, threads } from '../../shared/values.js';
import { CliffscopeError } from '../engine/errors.js';
import { flagFor } from './api.js';
import { numberFlag } from './command.js';

export const MODEL_FLAGS = {
  'norm-preserve': { type: 'boolean' },
  provider: { type: 'string' },
  threads: { type: 'string' },
  cache: { type: 'string' },
  weights: { type: 'string' },
  activations: { type: 'string' },
  'int4-block': { type: 'string' },
  'int4-scheme': { type: 'string' },
  'int4-accuracy-level': { type: 'string' },
  'int4-lm-head': { type: 'string' },
  'kv-cache': { type: 'string' },
} as const;

/** ModelRef field → flag, for errors. */
export const MODEL_FLAG_NAMES: ReadonlyArray<[string, string]> = [
  ['model.normPreserve', '--norm-preserve'],
  ['model.provider', '--provider'],
  ['model.threads', '--threads'],
  ['model.cache', '--cache'],
  ['model.precision.weights', '--weights'],
  ['model.precision.activations', '--activations'],
  ['model.precision.int4BlockSize', '--int4-block'],
  ['model.precision.int4Scheme', '--int4-scheme'],
  ['model.precision.int4AccuracyLevel', '--int4-accuracy-level'],
  ['model.precision.quantizeLmHead', '--int4-lm-head'],
  ['model.precision.kvCache', '--kv-cache'],
];

export const PRECISION_HELP = `  --weights float32|int4    linear-layer weights; int4 uses MatMulNBits (see \`cliffscope precision\` for its cost)
  --activations float32|float16   compute type; float16 is for GPU providers
  --int4-block 16|32|64|128 (default 32) --int4-scheme asymmetric|symmetric (default asymmetric)
  --int4-accuracy-level 0..4 (default 4: int8 compute) --int4-lm-head int4|float (default int4)
  --kv-cache float32|float16|int8   KV cache storage (default: the compute type, float16 with int4 weights);
                            float16 halves its memory, int8 stores ~1/4 of it (one scale per vector); both lossy
                            (README: How a checkpoint runs)
`;

export const RUNTIME_HELP = `  --provider NAME           auto (default), cpu, cuda, dml, coreml or webgpu
  --threads N               ONNX Runtime intra-op threads (at most 1024)
  --norm-preserve           compile with norm-preserving head ablation
  --cache DIR               compiled-model cache (default: $CLIFFSCOPE_CACHE or ~/.cache/cliffscope)
${PRECISION_HELP}`;

type Values = Readonly<Record<string, string | boolean | undefined>>;

/** The precision part of a ModelRef from the flags (undefined when none is given). */
export function precisionFromFlags(values: Values): Loose<NonNullable<ModelRef['precision']>> | undefined {
  const p: Loose<NonNullable<ModelRef['precision']>> = {};
  if (typeof values.weights === 'string') p.weights = values.weights;
  if (typeof values.activations === 'string') p.activations = values.activations;
  const block = numberFlag(values['int4-block'], 'int4-block');
  if (block !== undefined) p.int4BlockSize = block;
  if (typeof values['int4-scheme'] === 'string') p.int4Scheme = values['int4-scheme'];
  const level = numberFlag(values['int4-accuracy-level'], 'int4-accuracy-level');
  if (level !== undefined) p.int4AccuracyLevel = level;
  const head = values['int4-lm-head'];
  if (typeof head === 'string') {
    if (head !== 'int4' && head !== 'float') throw new CliffscopeError('bad-argument', `--int4-lm-head must be one of int4, float, got "${head}"`);
    p.quantizeLmHead = head === 'int4';
  }
  if (typeof values['kv-cache'] === 'string') p.kvCache = values['kv-cache'];
  return Object.keys(p).length ? p : undefined;
}

/** The ModelRef for `dir` with the runtime flags. */
export function modelRefFromFlags(dir: string, values: Values): Loose<ModelRef> {
  const ref: Loose<ModelRef> = { dir };
  if (values['norm-preserve'] === true) ref.normPreserve = true;
  if (typeof values.provider === 'string') ref.provider = values.provider;
  const threads = numberFlag(values.threads, 'threads');
  if (threads !== undefined) ref.threads = threads;
  if (typeof values.cache === 'string') ref.cache = values.cache;
  const precision = precisionFromFlags(values);
  if (precision) ref.precision = precision;
  return ref;
}

/**
 * The ModelRef for `dir`, checked against its schema here, for verbs that load a model without an API call
 * (`forward`): the same ranges as every API call, reported by flag.
 */
export function checkedModelRef(dir: string, values: Values): ModelRef {
  const parsed = ModelRef.safeParse(modelRefFromFlags(dir, values));
  if (parsed.success) return parsed.data;
  const names = new Map([['dir', 'MODEL_DIR'], ...MODEL_FLAG_NAMES.map(([field, flag]) => [field.replace(/^model\./, ''), flag] as [string, string])]);
  throw new CliffscopeError('bad-argument', toIssues(parsed.error).map((i) => `${flagFor(i.path, names) ?? i.path}: ${i.message}`).join('; '));
}

/** --threads alone (the demo verb), with the same range as every ModelRef. */
export function threadsFlag(value: string | boolean | undefined): number | undefined {
  const n = numberFlag(value, 'threads');
  if (n === undefined) return undefined;
  const parsed = threads.safeParse(n);
  if (!parsed.success) throw new CliffscopeError('bad-argument', `--threads: ${toIssues(parsed.error)[0]!.message}`);
  return parsed.data;
}
