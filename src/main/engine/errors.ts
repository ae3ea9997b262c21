/**
 * Errors the engine raises on bad input. Every one names the file (or thing) at fault and, where we know it, the fix,
 * so the CLI and the app can show it as is instead of a stack trace.
 */
export type ErrorCode =
  | 'missing-file'
  | 'bad-json'
  | 'unsupported-architecture'
  | 'unsupported-dtype'
  | 'bad-config'
  | 'bad-safetensors'
  | 'shape-mismatch'
  | 'missing-tensor'
  | 'truncated-file'
  | 'context-overflow'
  | 'bad-argument'
  | 'tokenizer'
  | 'runtime'
  | 'cancelled'
  | 'bad-project'
  | 'bad-dataset'
  | 'model-mismatch'
  | 'provider-unavailable'
  | 'scheduler';

export class CliffscopeError extends Error {
  readonly code: ErrorCode;
  /** The file the problem is in, when there is one. */
  readonly file?: string;
  /** What the user can do about it. */
  readonly hint?: string;

  constructor(code: ErrorCode, message: string, opts: { file?: string; hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CliffscopeError';
    this.code = code;
    this.file = opts.file;
    this.hint = opts.hint;
  }

  /** One readable block: what is wrong, where, and what to do. */
  describe(): string {
    const lines = [this.message];
    if (this.file && !this.message.includes(this.file)) lines.push(`  file: ${this.file}`);
    if (this.hint) lines.push(`  fix:  ${this.hint}`);
    return lines.join('\n');
  }
}

export function isCliffscopeError(e: unknown): e is CliffscopeError {
  return e instanceof CliffscopeError;
}

