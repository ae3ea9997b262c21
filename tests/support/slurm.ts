/**
 * A real single-node Slurm for tests (scripts/slurm-local.sh): started once per test file, stopped after it. Where
 * it cannot start (not root, no slurm-wlm/munge, daemons that do not come up) the tests that need it skip with the
 * reason the script gave.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/slurm-local.sh');

export interface LocalSlurm {
  /** SLURM_CONF for every client command (sbatch, squeue, …). */
  env: NodeJS.ProcessEnv;
  dir: string;
  stop(): void;
}

export type SlurmStart = { ok: true; cluster: LocalSlurm } | { ok: false; reason: string };

export function startLocalSlurm(): SlurmStart {
  if (process.platform !== 'linux') return { ok: false, reason: 'Slurm tests run on Linux only' };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-slurm-'));
  const r = spawnSync('bash', [SCRIPT, 'start', dir], { encoding: 'utf8', timeout: 90_000 });
  if (r.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    return { ok: false, reason: `no local Slurm: ${(r.stderr || r.stdout || `exit ${r.status}`).trim()}` };
  }
  const env = { ...process.env, SLURM_CONF: path.join(dir, 'slurm.conf'), PATH: `${process.env.PATH}:/usr/sbin` };
  return {
    ok: true,
    cluster: {
      env,
      dir,
      stop() {
        spawnSync('bash', [SCRIPT, 'stop', dir], { encoding: 'utf8', timeout: 60_000 });
        fs.rmSync(dir, { recursive: true, force: true });
      },
    },
  };
}

/** Poll until `done()` or the time is up. */
export async function waitFor(done: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await done()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}
