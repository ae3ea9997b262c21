/**
 * The face's side of the engine host: spawn it on first use, send calls, route replies and events back to their
 * callers, forward cancellation, and survive a host that dies (every call in flight gets an `engine-exited` error
 * naming the cause; the next call starts a fresh host).
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ApiResponse, JobEvent } from '../../../shared/contract.js';
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

/** A Node child process running host-entry.ts through tsx (the CLI, serve mode and tests). */
export const forkNodeHost: SpawnHost = () => {
  const child = fork(path.join(here, 'host-entry.ts'), [], {
    execArgv: ['--import', 'tsx'],
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

interface Pending {
  method: string;
  resolve: (r: ApiResponse) => void;
  onEvent?: (e: JobEvent) => void;
}

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

  constructor(private readonly spawn: SpawnHost = forkNodeHost) {}

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
        this.pending.delete(callId);
        p.resolve({
          ok: false,
          error: {
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

  private receive(m: FromHost): void {
    if (m.type === 'reply') {
      const p = this.pending.get(m.callId);
      if (!p) return;
      this.pending.delete(m.callId);
      p.resolve(m.response);
    } else if (m.type === 'event') {
      this.pending.get(m.event.jobId)?.onEvent?.(m.event);
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
      if (opts.signal) {
        if (opts.signal.aborted) host.send({ type: 'cancel', callId });
        else opts.signal.addEventListener('abort', () => this.cancel(callId), { once: true });
      }
      host.send({ type: 'invoke', callId, method, params });
      if (opts.signal?.aborted) host.send({ type: 'cancel', callId });
    });
  }

  cancel(callId: string): void {
    if (this.pending.has(callId)) this.host?.send({ type: 'cancel', callId });
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
