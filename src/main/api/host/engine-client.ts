/**
 * The face's side of the engine host: spawn it on first use, send calls, route replies and events back to their
 * callers, forward cancellation, and survive a host that dies (every call in flight gets an `engine-exited` error
 * naming the cause; the next call starts a fresh host). A cancelled call that does not end within a grace period
 * (a step stuck in native code or a loop that never looks at its signal) has its host terminated: cancel always frees
 * the engine, and the next call starts a fresh one.
 */
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type ApiResponse, isMethod, type JobEvent, validateJobEvent, validateResponse, validateResult } from '../../../shared/contract.js';
import type { FromHost, ToHost } from './protocol.js';

/** A running host process, however it was started. */
export interface HostProcess {
  send(message: ToHost): void;
  onMessage(listener: (message: FromHost) => void): void;
  onExit(listener: (description: string) => void): void;
  kill(): void;
  readonly pid: number | undefined;
}

export type SpawnHost = () => HostProcess;

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * tsx's loader, resolved from this package rather than from the working directory (a bare `--import tsx` resolves
 * against the cwd, so `cliffscope serve` started from any other folder had an engine that could not start).
 */
export function tsxLoaderUrl(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
}

/** A Node child process running host-entry.ts through tsx (the CLI, serve mode and tests). */
export const forkNodeHost: SpawnHost = () => {
  const child = fork(path.join(here, 'host-entry.ts'), [], {
    execArgv: ['--import', tsxLoaderUrl()],
    serialization: 'advanced', // structured clone: typed arrays cross without JSON
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return {
    send: (m) => void child.send(m),
    onMessage: (listener) => child.on('message', (m) => listener(m as FromHost)),
    onExit: (listener) =>
      child.on('exit', (code, signal) => listener(signal ? `killed by ${signal}` : `exited with code ${code}`)),
    kill: () => void child.kill(),
    get pid() {
      return child.pid;
    },
  };
};

/** The host's reply, if it is a well-formed envelope whose result fits `method`; otherwise a 'bad-result' error. */
function checkedReply(method: string, response: unknown): ApiResponse {
  try {
    const r = validateResponse(response);
    return r.ok && isMethod(method) ? { ok: true, result: validateResult(method, r.result) } : r;
  } catch (e) {
    return { ok: false, error: { code: 'bad-result', message: `the engine sent a malformed reply to ${method}: ${(e as Error).message}` } };
  }
}

interface Pending {
  method: string;
  resolve: (r: ApiResponse) => void;
  onEvent?: (e: JobEvent) => void;
  /** Set once the call was cancelled: ends the host if the call is still running when it fires. */
  watchdog?: NodeJS.Timeout;
}

/** How long a cancelled call may take to stop on its own before its host process is ended. */
export const DEFAULT_CANCEL_GRACE_MS = 5_000;

export interface CallOptions {
  /** Use this id (e.g. one the renderer chose, to cancel by later); default a fresh one. */
  callId?: string;
  onEvent?: (event: JobEvent) => void;
  signal?: AbortSignal;
}

export class EngineClient {
  private host: HostProcess | null = null;
  private readonly pending = new Map<string, Pending>();
  private counter = 0;

  constructor(
    private readonly spawn: SpawnHost = forkNodeHost,
    private readonly opts: { cancelGraceMs?: number } = {},
  ) {}

  /** Current host pid (spawning it if needed): used by tests and the Jobs panel. */
  get pid(): number | undefined {
    return this.ensureHost().pid;
  }

  private ensureHost(): HostProcess {
    if (this.host) return this.host;
    const host = this.spawn();
    host.onMessage((m) => this.receive(m));
    host.onExit((description) => {
      if (this.host === host) this.host = null;
      for (const [callId, p] of this.pending) {
        this.settle(callId, p, {
          ok: false,
          error: p.watchdog
            ? {
                code: 'cancelled',
                message: `${p.method} was cancelled; it did not stop by itself, so the engine process was restarted`,
                hint: 'work finished before the cancel is saved; run it again to resume',
              }
            : {
                code: 'engine-exited',
                message: `the engine process ${description} while running ${p.method}`,
                hint: 'work finished before the crash is saved; run it again to resume',
              },
        });
      }
    });
    this.host = host;
    return host;
  }

  private settle(callId: string, p: Pending, response: ApiResponse): void {
    clearTimeout(p.watchdog);
    this.pending.delete(callId);
    p.resolve(response);
  }

  /**
   * Replies and events are checked against the contract here too, not only in the host: what reaches main and the
   * page must be what the contract promises even if the engine process (which parses untrusted checkpoints, datasets
   * and project files) misbehaves.
   */
  private receive(m: FromHost): void {
    if (!m || typeof m !== 'object') return;
    if (m.type === 'reply') {
      const p = typeof m.callId === 'string' ? this.pending.get(m.callId) : undefined;
      if (p) this.settle(m.callId, p, checkedReply(p.method, m.response));
    } else if (m.type === 'event') {
      let event: JobEvent;
      try {
        event = validateJobEvent(m.event);
      } catch {
        return; // a malformed event is dropped: it belongs to no call we can trust it for
      }
      this.pending.get(event.jobId)?.onEvent?.(event);
    }
  }

  /** One call; resolves with the reply envelope (never rejects for API errors). */
  invoke(method: string, params: unknown, opts: CallOptions = {}): Promise<ApiResponse> {
    const callId = opts.callId ?? `call-${process.pid}-${++this.counter}`;
    if (this.pending.has(callId)) {
      return Promise.resolve({ ok: false, error: { code: 'bad-message', message: `call id ${callId} is already in use` } });
    }
    const host = this.ensureHost();
    return new Promise<ApiResponse>((resolve) => {
      this.pending.set(callId, { method, resolve, onEvent: opts.onEvent });
      if (opts.signal && !opts.signal.aborted) opts.signal.addEventListener('abort', () => this.cancel(callId), { once: true });
      host.send({ type: 'invoke', callId, method, params });
      if (opts.signal?.aborted) this.cancel(callId);
    });
  }

  /**
   * Ask the host to stop a call. If it has not ended within the grace period, the host is stuck in something that
   * does not yield; it is ended (every call still in it fails, the cancelled one as `cancelled`), and the next call
   * starts a fresh host.
   */
  cancel(callId: string): void {
    const p = this.pending.get(callId);
    const host = this.host;
    if (!p || !host) return;
    host.send({ type: 'cancel', callId });
    if (p.watchdog) return;
    p.watchdog = setTimeout(() => {
      if (this.pending.get(callId) !== p || this.host !== host) return;
      host.kill();
    }, this.opts.cancelGraceMs ?? DEFAULT_CANCEL_GRACE_MS);
    p.watchdog.unref();
  }

  /** Calls in flight, by id and method (the Jobs panel). */
  inFlight(): { callId: string; method: string }[] {
    return [...this.pending].map(([callId, p]) => ({ callId, method: p.method }));
  }

  close(): void {
    this.host?.kill();
    this.host = null;
  }
}
