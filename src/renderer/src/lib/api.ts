/**
 * The renderer's API client. It never touches Electron: inside the app it goes through the preload's
 * `window.cliffscope`; in a browser (serve mode) it POSTs to `/api/invoke` on the page's own origin with the
 * session token that `cliffscope serve` puts in the URL fragment (`…/#token=…`).
 */
import { bridgeTransport, createApiClient, httpTransport, type Transport } from '../../../shared/client.js';

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

function pickTransport(): { transport: Transport; face: 'app' | 'browser' } {
  const bridge = window.cliffscope;
  if (bridge) return { transport: bridgeTransport(bridge), face: 'app' };
  return { transport: httpTransport({ endpoint: '/api/invoke', token: serveToken() }), face: 'browser' };
}

const picked = pickTransport();

/** Which face this page runs in. */
export const face = picked.face;

export const api = createApiClient(picked.transport);

export { ApiError, isApiError, toApiError } from '../../../shared/client.js';
