/**
 * What the components need of `src/renderer/src/lib/api.ts`: its ApiError helpers, which it re-exports from
 * shared/client. The real module picks a transport (bridge or HTTP) when imported; component tests replace it with
 * this so they depend on neither, e.g. `vi.mock('../../src/renderer/src/lib/api.js', () => import('./api-mock.js'))`.
 */
export { ApiError, hintFor, isApiError, toApiError } from '../../src/shared/client.js';
