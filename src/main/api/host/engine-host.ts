/**
 * The engine host: the process that owns inference sessions (and, with the store, the project writer). It answers
 * `invoke` messages through the shared dispatcher, streams each call's progress as events, and aborts a call on
 * `cancel`. Calls run concurrently as promises; ONNX Runtime itself serialises what blocks.
 */
import { makeCallContext } from '../context.js';
import { dispatch, type DispatchOptions } from '../dispatch.js';
import { type FromHost, isToHost, type MessageChannelLike, type ToHost } from './protocol.js';

export function serveEngine(channel: MessageChannelLike<ToHost, FromHost>, opts: Pick<DispatchOptions, 'handlers'> = {}): void {
  const running = new Map<string, AbortController>();

  channel.onMessage((message) => {
    if (!isToHost(message)) return; // not ours: ignore rather than crash the host
    if (message.type === 'cancel') {
      running.get(message.callId)?.abort();
      return;
    }
    const { callId, method, params } = message;
    if (running.has(callId)) {
      channel.send({ type: 'reply', callId, response: { ok: false, error: { code: 'bad-message', message: `call id ${callId} is already running` } } });
      return;
    }
    const controller = new AbortController();
    running.set(callId, controller);
    const context = makeCallContext(callId, controller.signal, (event) => channel.send({ type: 'event', event }));
    void dispatch(method, params, {
      ...opts,
      context,
      onInternalError: (m, error) => console.error(`[engine-host] ${m} failed:`, error),
    }).then((response) => {
      running.delete(callId);
      channel.send({ type: 'reply', callId, response });
    });
  });
  channel.send({ type: 'ready', pid: process.pid });
}
