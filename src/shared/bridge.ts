/**
 * What the Electron preload exposes to the renderer as `window.cliffscope`, and the IPC channel it uses.
 * Type-only apart from the channel name, so the preload bundle stays tiny (it must not pull in zod).
 */
import type { ApiResponse, JobEvent, Method, ParamsOf, ResultOf } from './contract.js';

/** IPC channels between preload and main: calls, their streamed events, and cancellation. */
export const INVOKE_CHANNEL = 'cliffscope:invoke';
export const EVENT_CHANNEL = 'cliffscope:event';
export const CANCEL_CHANNEL = 'cliffscope:cancel';

export interface CliffscopeBridge {
  /**
   * Call one API method in the main process. Resolves with the reply envelope (never rejects for API errors: those
   * come back as `{ ok: false, error }`). Callers should go through the typed client in `client.ts`, which validates
   * params before sending and the result after.
   */
  invoke<M extends Method>(method: M, params?: ParamsOf<M>, jobId?: string): Promise<ApiResponse<ResultOf<M>>>;
  /** Events of calls made with a jobId (progress, tokens, logs). Returns a function that unsubscribes. */
  onEvent(listener: (event: JobEvent) => void): () => void;
  /** Ask the engine to stop the call started with this jobId. */
  cancel(jobId: string): void;
}
