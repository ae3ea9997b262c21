/**
 * Entry point of the engine host process. Under Electron it is a utilityProcess and talks over `process.parentPort`;
 * under Node (CLI, serve, tests) it is a forked child and talks over `process.send`.
 */
import { closeAllWriters } from '../projects.js';
import { serveEngine } from './engine-host.js';
import type { FromHost, ToHost } from './protocol.js';

interface ParentPort {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (e: { data: unknown }) => void): void;
}

// Electron adds parentPort to a utilityProcess's `process`; Node's types do not know it.
const parentPort: ParentPort | undefined = Reflect.get(process, 'parentPort');

if (parentPort) {
  serveEngine({
    send: (m: FromHost) => parentPort.postMessage(m),
    onMessage: (listener) => parentPort.on('message', (e) => listener(e.data as ToHost)),
  });
} else if (process.send) {
  const send = process.send.bind(process);
  serveEngine({
    send: (m: FromHost) => void send(m),
    onMessage: (listener) => process.on('message', (m) => listener(m as ToHost)),
  });
  // The parent went away: nothing left to serve. Runs still going are marked interrupted now (not at next open).
  process.on('disconnect', () => {
    closeAllWriters();
    process.exit(0);
  });
} else {
  console.error('host-entry: no parent to talk to (start it as a utilityProcess or with child_process.fork)');
  process.exit(2);
}
