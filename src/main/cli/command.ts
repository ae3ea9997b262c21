/**
 * What every CLI verb looks like, and the shared bits of argument handling: `--help`, typed option parsing with
 * clear errors, and printing CliffscopeErrors without a stack trace.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
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
export function parseVerbArgs<O extends Options>(cmd: Command, argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new CliffscopeError('bad-argument', `${cmd.name}: ${(e as Error).message}`, { hint: `see: cliffscope ${cmd.name} --help` });
  }
}

export function intOption(value: string | undefined, name: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new CliffscopeError('bad-argument', `--${name} must be an integer ≥ ${min}, got "${value}"`);
  return n;
}

/** Print an error the way a user wants to read it; return the exit code. */
export function reportError(e: unknown): number {
  if (isCliffscopeError(e)) {
    process.stderr.write(`error: ${e.describe()}\n`);
    return e.code === 'bad-argument' ? 2 : 1;
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
