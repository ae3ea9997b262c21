/** Spawns tests/host/helpers/stuck-host.ts as an engine host process (its `project.recent` never yields). */
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type HostProcess, tsxLoaderUrl } from '../../../src/main/api/host/engine-client.js';
import type { FromHost } from '../../../src/main/api/host/protocol.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export function forkStuckHost(): HostProcess {
  const child = fork(path.join(here, 'stuck-host.ts'), [], {
    execArgv: ['--import', tsxLoaderUrl()],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return {
    send: (m) => void child.send(m),
    onMessage: (listener) => child.on('message', (m) => listener(m as FromHost)),
    onExit: (listener) => child.on('exit', (code, signal) => listener(signal ? `killed by ${signal}` : `exited with code ${code}`)),
    kill: () => void child.kill(),
    get pid() {
      return child.pid;
    },
  };
}
