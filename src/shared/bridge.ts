/**
 * What the Electron preload exposes to the renderer as `window.cliffscope`, and the IPC channel it uses.
 * Type-only apart from the channel names and two tiny validators, so the preload bundle stays tiny (it must not pull in zod).
 */
import type { ApiResponse, JobEvent, Method, ParamsOf, ResultOf } from './contract.js';

/** IPC channels between preload and main: calls, their streamed events, and cancellation. */
export const INVOKE_CHANNEL = 'cliffscope:invoke';
export const EVENT_CHANNEL = 'cliffscope:event';
export const CANCEL_CHANNEL = 'cliffscope:cancel';
/** Native open/save dialogs, asked for by the page (main → dialog → a path or null). */
export const PICK_PATH_CHANNEL = 'cliffscope:pick-path';
/** Application-menu actions, sent by main to the focused window. */
export const MENU_CHANNEL = 'cliffscope:menu';

/** What a native file dialog may be asked to pick. */
export const PICK_KINDS = ['project-open', 'project-save', 'model-folder', 'dataset-file', 'folder'] as const;
export type PickKind = (typeof PICK_KINDS)[number];

export function isPickKind(value: unknown): value is PickKind {
  return typeof value === 'string' && (PICK_KINDS as readonly string[]).includes(value);
}

/** A menu action for the renderer. */
export type MenuAction =
  | { action: 'open-project'; file: string }
  | { action: 'new-project'; file: string }
  | { action: 'open-demo' }
  | { action: 'toggle-theme' };

/**
 * The payload check used on both sides of MENU_CHANNEL: returns a clean copy of a well-formed action (no extra keys),
 * or null.
 */
export function validateMenuAction(value: unknown): MenuAction | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  switch (v.action) {
    case 'open-project':
    case 'new-project':
      return typeof v.file === 'string' && v.file.length > 0 && v.file.length <= 4096 && !v.file.includes('\0')
        ? { action: v.action, file: v.file }
        : null;
    case 'open-demo':
    case 'toggle-theme':
      return { action: v.action };
    default:
      return null;
  }
}

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
  /** Show a native file dialog; resolves with the chosen path, or null when cancelled (or refused). */
  pickPath(kind: PickKind): Promise<string | null>;
  /** Application-menu actions meant for this window. Returns a function that unsubscribes. */
  onMenu(listener: (action: MenuAction) => void): () => void;
}
