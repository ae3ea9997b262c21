/**
 * What the Electron preload exposes to the renderer as `window.cliffscope`, and the IPC channel it uses.
 * Type-only apart from the channel name, so the preload bundle stays tiny (it must not pull in zod).
 */
import type { ApiResponse, Method, ParamsOf, ResultOf } from './contract.js';

/** The single IPC channel between preload and main. */
export const INVOKE_CHANNEL = 'cliffscope:invoke';

export interface CliffscopeBridge {
  /**
   * Call one API method in the main process. Resolves with the reply envelope (never rejects for API errors: those
   * come back as `{ ok: false, error }`). Callers should go through the typed client in `client.ts`, which validates
   * params before sending and the result after.
   */
  invoke<M extends Method>(method: M, params?: ParamsOf<M>): Promise<ApiResponse<ResultOf<M>>>;
}
