/**
 * validate → handle → validate → envelope. Every face (IPC, HTTP, CLI) calls this with whatever arrived from outside
 * and sends back what it returns; nothing is thrown across the boundary. Must never import `electron`.
 */
import {
  isContractError,
  validateRequest,
  validateResult,
  type ApiErrorInfo,
  type ApiResponse,
  type Method,
} from '../../shared/contract.js';
import { isCliffscopeError } from '../engine/errors.js';
import { type CallContext, detachedContext } from './context.js';
import { handlers as defaultHandlers, type HandlerTable } from './handlers.js';

/** Anything thrown → plain error data fit to cross a process boundary. */
export function toErrorInfo(e: unknown): ApiErrorInfo {
  if (isContractError(e)) {
    return { code: e.code, message: e.message, issues: e.issues.map((i) => ({ ...i })) };
  }
  if (isCliffscopeError(e)) {
    const info: ApiErrorInfo = { code: e.code, message: e.message };
    if (e.file !== undefined) info.file = e.file;
    if (e.hint !== undefined) info.hint = e.hint;
    return info;
  }
  if (e instanceof Error) return { code: 'internal', message: e.message || e.name };
  return { code: 'internal', message: String(e) };
}

export interface DispatchOptions {
  handlers?: HandlerTable;
  /** Progress/log reporting and cancellation for this call; default: nobody listens, never cancelled. */
  context?: CallContext;
  /** Called with unexpected (non-contract, non-engine) errors, e.g. to log their stack. */
  onInternalError?: (method: string, error: unknown) => void;
}

export async function dispatch(method: unknown, params: unknown, opts: DispatchOptions = {}): Promise<ApiResponse> {
  const table = opts.handlers ?? defaultHandlers;
  let validMethod: Method | undefined;
  try {
    const req = validateRequest(method, params);
    validMethod = req.method;
    const handler = table[req.method] as (p: unknown, ctx: CallContext) => Promise<unknown>;
    const result = await handler(req.params, opts.context ?? detachedContext());
    return { ok: true, result: validateResult(req.method, result) };
  } catch (e) {
    const info = toErrorInfo(e);
    if (info.code === 'internal' || info.code === 'bad-result') {
      opts.onInternalError?.(validMethod ?? String(method), e);
    }
    return { ok: false, error: info };
  }
}
