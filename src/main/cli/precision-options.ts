/**
 * The precision flags shared by every verb that loads a model: --weights int4 and --activations float16, with the
 * int4 knobs. Parsed here once so every verb spells and checks them the same way.
 */
import { CliffscopeError } from '../engine/errors.js';
import type { CompileOptions } from '../engine/onnx/compile.js';

export const PRECISION_OPTIONS = {
  weights: { type: 'string' },
  activations: { type: 'string' },
  'int4-block': { type: 'string' },
  'int4-scheme': { type: 'string' },
  'int4-accuracy-level': { type: 'string' },
  'int4-lm-head': { type: 'string' },
} as const;

export const PRECISION_HELP = `  --weights float32|int4    linear-layer weights; int4 uses MatMulNBits (see \`cliffscope precision\` for its cost)
  --activations float32|float16   compute type; float16 is for GPU providers
  --int4-block 16|32|64|128 (default 32) --int4-scheme asymmetric|symmetric (default asymmetric)
  --int4-accuracy-level 0..4 (default 4: int8 compute) --int4-lm-head int4|float (default int4)
`;

function oneOf<T extends string>(value: string | undefined, name: string, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new CliffscopeError('bad-argument', `--${name} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value as T;
}

export function parsePrecision(values: Partial<Record<keyof typeof PRECISION_OPTIONS, string>>): Omit<CompileOptions, 'normPreserve'> {
  const out: Omit<CompileOptions, 'normPreserve'> = {};
  const weights = oneOf(values.weights, 'weights', ['float32', 'int4'] as const);
  const activations = oneOf(values.activations, 'activations', ['float32', 'float16'] as const);
  const block = oneOf(values['int4-block'], 'int4-block', ['16', '32', '64', '128'] as const);
  const scheme = oneOf(values['int4-scheme'], 'int4-scheme', ['asymmetric', 'symmetric'] as const);
  const level = oneOf(values['int4-accuracy-level'], 'int4-accuracy-level', ['0', '1', '2', '3', '4'] as const);
  const lmHead = oneOf(values['int4-lm-head'], 'int4-lm-head', ['int4', 'float'] as const);
  if (weights) out.weights = weights;
  if (activations) out.activations = activations;
  if (block) out.int4BlockSize = Number(block) as 16 | 32 | 64 | 128;
  if (scheme) out.int4Scheme = scheme;
  if (level) out.int4AccuracyLevel = Number(level) as 0 | 1 | 2 | 3 | 4;
  if (lmHead) out.quantizeLmHead = lmHead === 'int4';
  if (weights !== 'int4' && (block || scheme || level || lmHead)) throw new CliffscopeError('bad-argument', 'the --int4-* options need --weights int4');
  return out;
}
