/**
 * How the CLI reaches the engine: in-process, through the same dispatch `serve` and the app use (validate the
 * request → handle → validate the result), so every face accepts and refuses the same values with the same words.
 * The call's progress goes to stderr (a bar per label), its logs too, and Ctrl-C cancels it (twice: quit now).
 * Errors come back as ApiCallError, with request fields renamed to the verb's flags.
 */
import type { ApiErrorInfo, JobEvent, Method, ParamsOf, ResultOf } from '../../shared/contract.js';
import type { Loose } from '../../shared/runs/spec.js';
import { makeCallContext } from '../api/context.js';
import { dispatch } from '../api/dispatch.js';
import { ApiCallError } from './command.js';
import { Progress } from './progress.js';

/** Request field path → the flag that sets it (`config.maxNewTokens` → `--max-new-tokens`). */
export type FlagNames = ReadonlyMap<string, string>;

export interface CallOptions {
  /** Show progress bars (all, or those whose label passes) and logs on stderr (default true). */
  progress?: boolean | ((label: string) => boolean);
  /** Every event of the call (streamed tokens, scores). */
  onEvent?: (event: JobEvent) => void;
  /** Name the flags, not the request fields, in errors. */
  flags?: FlagNames;
}

/** Call `method`. `params` may come straight from flags (choices as plain strings): the schema checks them. */
export async function call<M extends Method>(method: M, params: Loose<ParamsOf<M>>, opts: CallOptions = {}): Promise<ResultOf<M>> {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130); // a second Ctrl-C leaves at once
    process.stderr.write('\nstopping after the current step (Ctrl-C again to quit now)…\n');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  const show = opts.progress ?? true;
  const shown = (label: string) => (typeof show === 'function' ? show(label) : show);
  const bars = new Map<string, Progress>();
  const context = makeCallContext('cli', controller.signal, (event) => {
    opts.onEvent?.(event);
    if (!show) return;
    if (event.kind === 'progress' && event.total !== null) {
      const label = event.label ?? method;
      if (!shown(label)) return;
      if (!bars.has(label)) bars.set(label, new Progress(label));
      bars.get(label)!.update(event.done, event.total);
    } else if (event.kind === 'log') {
      process.stderr.write(`${event.message}\n`);
    }
  });
  try {
    const response = await dispatch(method, params, {
      context,
      onInternalError: (_m, error) => process.stderr.write(`${(error as Error)?.stack ?? String(error)}\n`),
    });
    if (!response.ok) throw new ApiCallError(opts.flags ? withFlags(response.error, opts.flags) : response.error);
    // dispatch validated the result against the method's schema.
    return response.result as ResultOf<M>;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

/** The flag for a request path: the longest field prefix a flag sets. */
export function flagFor(path: string, flags: FlagNames): string | undefined {
  for (let p = path; p; p = p.replace(/(\.[^.[\]]*|\[\d+\])$/, '')) {
    const flag = flags.get(p);
    if (flag) return flag;
    if (!/[.[]/.test(p)) break;
  }
  return undefined;
}

/** An error about request fields, reworded about the flags that set them. */
function withFlags(info: ApiErrorInfo, flags: FlagNames): ApiErrorInfo {
  if (info.issues?.length) {
    const named = info.issues.map((i) => ({ ...i, flag: flagFor(i.path, flags) }));
    return { ...info, message: named.map((i) => `${i.flag ?? i.path}: ${i.message}`).join('; '), issues: info.issues };
  }
  // Engine errors about a field start with its path: "config.probeId: probe #9 does not exist …".
  const m = /^([\w.[\]]+): /.exec(info.message);
  const flag = m ? flagFor(m[1]!, flags) : undefined;
  return flag ? { ...info, message: `${flag}: ${info.message.slice(m![0].length)}` } : info;
}
