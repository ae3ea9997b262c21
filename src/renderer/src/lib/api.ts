/**
 * The renderer's API client. It never touches Electron: inside the app it goes through the preload's
 * `window.cliffscope`; in a browser (serve mode) it POSTs to `/api/invoke` on the page's own origin with the
 * session token that `cliffscope serve` puts in the URL fragment (`…/#token=…`).
 */
import {
  bridgeEvents,
  bridgeTransport,
  createApiClient,
  httpEvents,
  httpTransport,
  makeJobInvoke,
  type JobEvents,
  type Transport,
} from '../../../shared/client.js';
import type { MenuAction, PickKind } from '../../../shared/bridge.js';

const TOKEN_KEY = 'cliffscope.serveToken';

/**
 * The serve token: taken from the fragment on first load (then removed from the address bar, so it is not left in
 * history or screenshots) and kept in sessionStorage for reloads of this tab.
 */
function serveToken(): string | null {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const fromUrl = fragment.get('token');
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    fragment.delete('token');
    const rest = fragment.toString();
    history.replaceState(null, '', window.location.pathname + window.location.search + (rest ? `#${rest}` : ''));
    return fromUrl;
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

/**
 * A random id for this tab, sent with its calls and its event stream: the server scopes job ids to it, so two tabs
 * never see or cancel each other's jobs. getRandomValues, not randomUUID: plain http on a LAN address is not a
 * secure context.
 */
function tabSession(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function pickTransport(): { transport: Transport; events: JobEvents; face: 'app' | 'browser' } {
  const bridge = window.cliffscope;
  if (bridge) return { transport: bridgeTransport(bridge), events: bridgeEvents(bridge), face: 'app' };
  const token = serveToken();
  const session = tabSession();
  return {
    transport: httpTransport({ endpoint: '/api/invoke', token, session }),
    events: httpEvents({ base: '/api', token, session }),
    face: 'browser',
  };
}

const picked = pickTransport();

/** Which face this page runs in. */
export const face = picked.face;

export const api = createApiClient(picked.transport);

/** Start a call whose progress and tokens stream to `onEvent` under `jobId`; `cancel(jobId)` stops it. */
export const runJob = makeJobInvoke(picked.transport);

/** Job events of this page's calls made with a jobId; returns an unsubscribe function. Same on both faces. */
export const onEvent = picked.events.onEvent;

/** Ask the engine to stop the call started with this jobId. */
export const cancel = picked.events.cancel;

/**
 * Native file dialogs: only inside the app (undefined in serve mode, where the page keeps plain path fields).
 * Resolves with the chosen path, or null when the dialog was cancelled.
 */
export const pickPath: ((kind: PickKind) => Promise<string | null>) | undefined = window.cliffscope
  ? (kind) => window.cliffscope!.pickPath(kind)
  : undefined;

/** Application-menu actions (app only; undefined in serve mode). Returns a function that unsubscribes. */
export const onMenu: ((listener: (action: MenuAction) => void) => () => void) | undefined = window.cliffscope
  ? (listener) => window.cliffscope!.onMenu(listener)
  : undefined;

export { ApiError, hintFor, isApiError, toApiError } from '../../../shared/client.js';
