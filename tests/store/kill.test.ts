/**
 * Kill safety: a process committing items is killed with SIGKILL (no chance to clean up). Reopening the project
 * must show every item it reported committed, nothing half-written, and the run marked interrupted and resumable.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openProject } from '../../src/main/store/open.js';
import { expectCliffscopeError, tempDir } from './helpers/fixtures.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const helper = path.join(repoRoot, 'tests/store/helpers/commit-loop.ts');

let dir: string;
beforeAll(() => {
  dir = tempDir('kill');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Run the committing child until it has reported `atLeast` commits, then SIGKILL it; resolves once it is reaped. */
function runAndKill(file: string, atLeast: number): Promise<{ runId: number; committed: string[]; signal: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', helper, file], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let killed = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child made no progress in time; stderr:\n${err}`));
    }, 60_000);
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      const count = (out.match(/^committed /gm) ?? []).length;
      if (!killed && count >= atLeast) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    // 'close' fires after the process has exited (and been reaped) and its pipes are drained.
    child.on('close', (_code, signal) => {
      clearTimeout(timer);
      if (!killed) return reject(new Error(`child exited on its own; stderr:\n${err}`));
      const runId = Number(/^run (\d+)$/m.exec(out)?.[1]);
      const committed = [...out.matchAll(/^committed (\S+)$/gm)].map((m) => m[1]!);
      resolve({ runId, committed, signal });
    });
  });
}

describe('kill safety', () => {
  it('keeps every committed item and marks the run interrupted after SIGKILL', async () => {
    const file = path.join(dir, 'killed.cliffscope');
    const { runId, committed, signal } = await runAndKill(file, 40);
    expect(signal).toBe('SIGKILL');
    expect(committed.length).toBeGreaterThanOrEqual(40);
    // The kill left the write-ahead log behind, as a real crash would.
    expect(fs.existsSync(`${file}-wal`)).toBe(true);

    const store = openProject(file);
    const run = store.runs.get(runId)!;
    expect(run.status).toBe('interrupted');
    expect(run.error).toMatch(/stopped while running it/);

    const done = store.runs.resumableItems(runId);
    for (const key of committed) expect(done.has(key)).toBe(true);
    // At most one more item than reported: it committed, then the kill came before its line was printed.
    expect(done.size - committed.length).toBeLessThanOrEqual(1);

    // Nothing half-written: every transcript has its trace and belongs to a done item, and vice versa.
    const transcripts = store.transcripts.list(runId);
    expect(transcripts).toHaveLength(done.size);
    const traced = new Set(store.traces.list({ runId }).map((t) => t.transcriptId));
    expect(transcripts.every((t) => traced.has(t.id) && t.tokenIds.length === 2048)).toBe(true);
    expect(traced.size).toBe(done.size);
    const payloadIds = new Set(store.runs.items(runId).map((i) => (i.payload as { transcriptId: number }).transcriptId));
    expect(new Set(transcripts.map((t) => t.id))).toEqual(payloadIds);
    expect(store.checkIntegrity()).toEqual(['ok']);

    // And the run resumes where it stopped, with the right model only.
    expectCliffscopeError(() => store.runs.resume(runId, 'sha256:another-model'), 'model-mismatch', /sha256:kill-test.*sha256:another-model/);
    const { done: skip } = store.runs.resume(runId, 'sha256:kill-test');
    const next = `item-${done.size}`;
    expect(skip.has(next)).toBe(false);
    store.runs.commitItem(runId, next);
    expect(store.runs.finish(runId).status).toBe('done');
    store.close();
  });
});
