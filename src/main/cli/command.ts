/**
 * What every CLI verb looks like, and the shared bits of argument handling: `--help`, flag parsing with clear
 * errors, number parsing (only parsing: the API's schemas check the ranges), and printing errors without a stack.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { ApiErrorInfo } from '../../shared/contract.js';
import { CliffscopeError, isCliffscopeError } from '../engine/errors.js';

export interface Command {
  name: string;
  /** One line for the verb list. */
  summary: string;
  /** Full help text shown by `cliffscope VERB --help`. */
  help: string;
  run(argv: string[]): Promise<number>;
}

export type Options = NonNullable<ParseArgsConfig['options']>;

/** Parse argv for a verb; `--help` is always accepted. Unknown options are errors that name the option. */
export function parseVerbArgs<O extends Options>(cmd: Pick<Command, 'name'>, argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new CliffscopeError('bad-argument', `${cmd.name}: ${(e as Error).message}`, { hint: `see: cliffscope ${cmd.name} --help` });
  }
}

/** Parsed flags without the repeatable ones (lists), as flag readers take them. */
export function singleFlags(values: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>): Record<string, string | boolean | undefined> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => !Array.isArray(v))) as Record<string, string | boolean | undefined>;
}

/** A flag's number: undefined when the flag is absent; anything that is not a finite number is refused here. */
export function numberFlag(value: string | boolean | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
  if (Number.isNaN(n)) throw new CliffscopeError('bad-argument', `--${name} must be a number, got "${String(value)}"`);
  if (!Number.isFinite(n)) throw new CliffscopeError('bad-argument', `--${name} must be a finite number, got "${String(value)}"`);
  return n;
}

/** A flag's id (a run, a probe): a positive integer. */
export function idFlag(value: string | boolean | undefined, name: string, what = 'ID'): number {
  if (value === undefined) throw new CliffscopeError('bad-argument', `--${name} ${what} is required`);
  const n = numberFlag(value, name)!;
  if (!Number.isInteger(n) || n < 1) throw new CliffscopeError('bad-argument', `--${name} must be an id (a positive integer), got "${String(value)}"`);
  return n;
}

/** A comma-separated list of numbers. */
export function numbersFlag(value: string | boolean | undefined, name: string): number[] | undefined {
  if (value === undefined) return undefined;
  return String(value)
    .split(',')
    .map((s) => numberFlag(s.trim(), name)!);
}

/** An API call that answered with an error (see api.ts): the error as it crossed the boundary. */
export class ApiCallError extends Error {
  constructor(readonly info: ApiErrorInfo) {
    super(info.message);
    this.name = 'ApiCallError';
  }
}

/** Usage errors exit 2; everything else the engine refuses exits 1; a bug exits 70. */
const USAGE_CODES = new Set(['bad-argument', 'bad-params', 'unknown-method']);

/**
 * Advice from below names flags (the engine's "pass raw text (--no-chat)"); on a verb that has `--X` rather than
 * `--no-X` (generate, forward: raw text unless --chat) it reads "leave out --X".
 */
export function fitFlags(text: string, help: string | undefined): string {
  if (help === undefined) return text;
  const has = (flag: string) => new RegExp(`${flag}(?![\\w-])`).test(help);
  return text.replace(/--no-([a-z][\w-]*)/g, (flag, name: string) => (!has(flag) && has(`--${name}`) ? `leave out --${name}` : flag));
}

/** Print an error the way a user wants to read it (flags fitted to `cmd`'s); return the exit code. */
export function reportError(e: unknown, cmd?: Pick<Command, 'help'>): number {
  const fit = (text: string) => fitFlags(text, cmd?.help);
  if (isCliffscopeError(e)) {
    const lines = [fit(e.message)];
    if (e.file && !e.message.includes(e.file)) lines.push(`  file: ${e.file}`);
    if (e.hint) lines.push(`  fix:  ${fit(e.hint)}`);
    process.stderr.write(`error: ${lines.join('\n')}\n`);
    return USAGE_CODES.has(e.code) ? 2 : 1;
  }
  if (e instanceof ApiCallError) {
    const { code, message, file, hint } = e.info;
    if (code === 'internal' || code === 'bad-result') {
      process.stderr.write(`internal error: ${message}\n`);
      return 70;
    }
    const lines = [fit(message)];
    if (file && !message.includes(file)) lines.push(`  file: ${file}`);
    if (hint) lines.push(`  fix:  ${fit(hint)}`);
    process.stderr.write(`error: ${lines.join('\n')}\n`);
    return USAGE_CODES.has(code) ? 2 : 1;
  }
  process.stderr.write(`internal error: ${(e as Error)?.stack ?? String(e)}\n`);
  return 70;
}

/** The one MODEL_DIR positional a model verb takes; anything else is a usage error. */
export function oneModelDir(cmd: Command, positionals: string[]): string {
  if (positionals.length !== 1) {
    throw new CliffscopeError('bad-argument', `${cmd.name} takes exactly one MODEL_DIR`, { hint: `see: cliffscope ${cmd.name} --help` });
  }
  return positionals[0]!;
}

/** `--help`: print the verb's help; exit code 0. */
export function printHelp(cmd: Command): number {
  process.stdout.write(cmd.help);
  return 0;
}
