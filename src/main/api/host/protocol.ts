/**
 * Messages between a face (Electron main, the serve server) and the engine host process. The same protocol runs
 * over an Electron utilityProcess port and over a Node child process's IPC channel: inference blocks the thread that
 * runs it, so it never runs in the process that draws the UI or answers HTTP.
 */
import type { ApiResponse, JobEvent } from '../../../shared/contract.js';

export type ToHost =
  /** Run one API call; events it emits carry `callId` as their jobId. */
  | { type: 'invoke'; callId: string; method: string; params: unknown }
  /** Abort a running call (its handler sees the signal and stops at the next safe point). */
  | { type: 'cancel'; callId: string };

export type FromHost =
  | { type: 'ready'; pid: number }
  | { type: 'reply'; callId: string; response: ApiResponse }
  | { type: 'event'; event: JobEvent };

/** Both ends see the other as something that sends messages and calls back with received ones. */
export interface MessageChannelLike<In, Out> {
  send(message: Out): void;
  onMessage(listener: (message: In) => void): void;
}

export function isToHost(m: unknown): m is ToHost {
  if (!m || typeof m !== 'object') return false;
  const msg = m as { type?: unknown; callId?: unknown; method?: unknown };
  if (typeof msg.callId !== 'string' || msg.callId.length === 0 || msg.callId.length > 128) return false;
  return (msg.type === 'invoke' && typeof msg.method === 'string') || msg.type === 'cancel';
}
