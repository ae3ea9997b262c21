/**
 * Head-scale (γ) matrices from JSON: a [layers][heads] array of finite numbers, 1 = unchanged, 0 = head removed.
 */
import { CliffscopeError } from '../errors.js';
import { jsonSyntaxProblem } from './json-syntax.js';
import { readUntrustedText } from './untrusted-file.js';

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
