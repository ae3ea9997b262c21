/**
 * γ (head-scale) matrices as the engine takes them: a `[layers][heads]` array of finite numbers (1 = unchanged,
 * 0 = head removed; the shape of src/shared/heads.ts), checked against the model and flattened to the graph's
 * `head_scale` row [L·H]. Also read from JSON files (`--head-scale FILE`).
 */
import { headScaleMatrix, type HeadRef } from '../../../shared/heads.js';
import { CliffscopeError } from '../errors.js';
import { jsonSyntaxProblem } from '../io/json-syntax.js';
import { readUntrustedText } from '../io/untrusted-file.js';

export function validateHeadScale(value: unknown, layers: number, heads: number, source = 'head_scale'): number[][] {
  const fail = (what: string) =>
    new CliffscopeError('bad-argument', `${source}: ${what}`, {
      file: source,
      hint: `expected a JSON array of ${layers} arrays of ${heads} numbers (γ per layer and head; 1 = unchanged, 0 = removed)`,
    });
  if (!Array.isArray(value)) throw fail('not a JSON array');
  if (value.length !== layers) throw fail(`has ${value.length} rows, the model has ${layers} layers`);
  value.forEach((row, i) => {
    if (!Array.isArray(row)) throw fail(`row ${i} is not an array`);
    if (row.length !== heads) throw fail(`row ${i} has ${row.length} entries, the model has ${heads} heads per layer`);
    row.forEach((x, h) => {
      if (typeof x !== 'number' || !Number.isFinite(x)) throw fail(`entry [${i}][${h}] is ${JSON.stringify(x)}, not a finite number`);
    });
  });
  return value as number[][];
}

/** A checked γ matrix as the graph's flat row: index layer·H + head. */
export function flatHeadScale(value: unknown, layers: number, heads: number, source = 'head_scale'): Float32Array {
  return Float32Array.from(validateHeadScale(value, layers, heads, source).flat());
}

/** The γ matrix that ablates `heads` by `gamma` (shared/heads.ts's builder), with the engine's error for bad input. */
export function ablationScale(heads: Iterable<HeadRef>, gamma: number, layers: number, headsPerLayer: number): number[][] {
  try {
    return headScaleMatrix(heads, gamma, layers, headsPerLayer);
  } catch (e) {
    if (e instanceof RangeError) throw new CliffscopeError('bad-argument', e.message);
    throw e;
  }
}

/** A head-scale file is a few KB; it is untrusted input read bounded and strict (readUntrustedText). */
const MAX_HEAD_SCALE_BYTES = 16 * 1024 * 1024;

export function readHeadScaleFile(file: string, layers: number, heads: number): number[][] {
  const text = readUntrustedText(file, { maxBytes: MAX_HEAD_SCALE_BYTES, what: 'head-scale file', code: 'bad-argument' }).replace(/^\uFEFF/, '');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CliffscopeError('bad-json', `${file} is not valid JSON: ${jsonSyntaxProblem(text)}`, { file });
  }
  return validateHeadScale(parsed, layers, heads, file);
}
