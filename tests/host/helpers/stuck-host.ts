/**
 * An engine host whose `project.recent` never yields (a synchronous endless loop, as a step stuck in native code or
 * a hostile template once was); every other method is the real one. Run with: fork(this, { execArgv: ['--import', tsx] }).
 */
import { handlers } from '../../../src/main/api/handlers.js';
import { serveEngine } from '../../../src/main/api/host/engine-host.js';
import type { FromHost, ToHost } from '../../../src/main/api/host/protocol.js';

const send = process.send!.bind(process);
serveEngine(
  { send: (m: FromHost) => void send(m), onMessage: (listener) => process.on('message', (m) => listener(m as ToHost)) },
  {
    handlers: {
      ...handlers,
      'project.recent': async () => {
        for (;;) {
          // never yields: only ending the process stops it
        }
      },
    },
  },
);
process.on('disconnect', () => process.exit(0));
