/** The run lifecycle: start, commit items atomically, finish, interruption, and resuming with the right model. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openProject } from '../../src/main/store/open.js';
import { type ProjectStore } from '../../src/main/store/project-store.js';
import { PROCESS_TOKEN } from '../../src/main/store/owner.js';
import { expectCliffscopeError, tempDir } from './helpers/fixtures.js';

let dir: string;
let n = 0;
beforeAll(() => {
  dir = tempDir('runs');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function newStore(): { store: ProjectStore; file: string } {
  const file = path.join(dir, `p${n++}.cliffscope`);
  return { store: openProject(file, { create: true }), file };
}

/** The pid of a process that has exited (and been reaped), so it certainly does not exist now. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '']).pid!;
}

describe('run lifecycle', () => {
  it('starts a run owned by this process and finishes it', () => {
    const { store } = newStore();
    const model = store.models.add({ path: '/m', contentHash: 'h1' });
    const pending = store.runs.create({ kind: 'transcripts', modelId: model.id, config: { seed: 3, sampling: { temperature: 0.6 } }, versions: { engine: 'x' } });
    expect(pending).toMatchObject({ status: 'pending', startedAt: null, ownerPid: null });
    expect(pending.uid).toMatch(/^[0-9a-f-]{36}$/);

    const run = store.runs.start(pending.id);
    expect(run).toMatchObject({ status: 'running', ownerPid: process.pid, ownerHost: os.hostname(), ownerToken: PROCESS_TOKEN });
    expect(run.startedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(run.config).toEqual({ sampling: { temperature: 0.6 }, seed: 3 });

    const done = store.runs.finish(run.id);
    expect(done.status).toBe('done');
    expect(done.finishedAt).not.toBeNull();
    expectCliffscopeError(() => store.runs.start(run.id), 'bad-argument', /already done/);
    expectCliffscopeError(() => store.runs.finish(run.id), 'bad-argument', /is done, not running/);
    store.close();
  });

  it('records failures and cancellations with their error text', () => {
    const { store } = newStore();
    const a = store.runs.start({ kind: 'judge' });
    expect(store.runs.finish(a.id, 'failed', 'guard model ran out of memory')).toMatchObject({ status: 'failed', error: 'guard model ran out of memory' });
    const b = store.runs.start({ kind: 'judge' });
    expect(store.runs.finish(b.id, 'cancelled').status).toBe('cancelled');
    // A failed run can be started again (it resumes); its error is cleared.
    expect(store.runs.start(a.id)).toMatchObject({ status: 'running', error: null });
    expectCliffscopeError(() => store.runs.create({ kind: 'train' as never }), 'bad-argument', /unknown run kind "train"/);
    store.close();
  });

  it('commitItem writes the item’s rows and marks it done in one transaction', () => {
    const { store } = newStore();
    const run = store.runs.start({ kind: 'transcripts' });
    const payload = store.runs.commitItem(run.id, 'a', (s) => {
      const id = s.transcripts.add({ runId: run.id, prompt: 'p', tokenIds: [1, 2], promptTokens: 1, text: 't' });
      return { transcript: id, tokens: 2 };
    });
    expect(payload).toEqual({ transcript: 1, tokens: 2 });
    expect(store.runs.items(run.id)).toMatchObject([{ key: 'a', status: 'done', payload: { tokens: 2, transcript: 1 } }]);

    // A failure inside the callback rolls back its rows too: nothing half-written.
    expect(() =>
      store.runs.commitItem(run.id, 'b', (s) => {
        s.transcripts.add({ runId: run.id, prompt: 'p', tokenIds: [3], promptTokens: 1, text: 't' });
        throw new Error('tokenizer exploded');
      }),
    ).toThrow('tokenizer exploded');
    expect(store.transcripts.list(run.id)).toHaveLength(1);
    expect(store.runs.resumableItems(run.id)).toEqual(new Set(['a']));

    expectCliffscopeError(() => store.runs.commitItem(run.id, 'a'), 'bad-argument', /item "a" of run #1 is already committed/);
    expectCliffscopeError(
      () => store.runs.commitItem(run.id, 'c', (() => Promise.resolve({})) as never),
      'bad-argument',
      /must be synchronous/,
    );
    expect(store.runs.resumableItems(run.id)).toEqual(new Set(['a']));
    store.close();
  });

  it('failed items stay out of the resumable set until a retry commits them', () => {
    const { store } = newStore();
    const run = store.runs.start({ kind: 'trace' });
    store.runs.failItem(run.id, 'x', 'context overflow');
    expect(store.runs.items(run.id)).toMatchObject([{ key: 'x', status: 'failed', error: 'context overflow' }]);
    expect(store.runs.resumableItems(run.id).size).toBe(0);
    store.runs.commitItem(run.id, 'x');
    expect(store.runs.items(run.id)).toMatchObject([{ key: 'x', status: 'done', error: null }]);
    store.close();
  });

  it('only the owner may commit, and only while running', () => {
    const { store } = newStore();
    const pending = store.runs.create({ kind: 'probe' });
    expectCliffscopeError(() => store.runs.commitItem(pending.id, 'k'), 'bad-argument', /is pending, not running/);
    const run = store.runs.start(pending.id);
    // Someone else took it over (another process on this machine that is alive: our parent).
    store.db.prepare(`UPDATE runs SET owner_pid = ?, owner_token = 'other' WHERE id = ?`).run(process.ppid, run.id);
    expectCliffscopeError(() => store.runs.commitItem(run.id, 'k'), 'bad-argument', /being run by another process/);
    expectCliffscopeError(() => store.runs.start(run.id), 'bad-argument', new RegExp(`being run by process ${process.ppid}`));
    expectCliffscopeError(() => store.runs.commitItem(999, 'k'), 'bad-argument', /run #999 does not exist in /);
    store.close();
  });

  it('close() marks the runs this store was running as interrupted', () => {
    const { store, file } = newStore();
    const run = store.runs.start({ kind: 'transcripts' });
    store.runs.commitItem(run.id, 'one');
    store.close();
    const again = openProject(file);
    expect(again.runs.get(run.id)).toMatchObject({ status: 'interrupted', error: expect.stringContaining('closed') });
    expect(again.runs.resumableItems(run.id)).toEqual(new Set(['one']));
    again.close();
  });

  it('markInterrupted only affects running runs', () => {
    const { store } = newStore();
    const run = store.runs.start({ kind: 'heads' });
    expect(store.runs.markInterrupted(run.id, 'user pressed stop')).toBe(true);
    expect(store.runs.get(run.id)).toMatchObject({ status: 'interrupted', error: 'user pressed stop' });
    expect(store.runs.markInterrupted(run.id)).toBe(false);
    store.close();
  });
});

describe('recovering runs on open', () => {
  it('marks runs whose owner process is gone as interrupted, and leaves live or remote owners alone', () => {
    const { store, file } = newStore();
    const ids = {
      dead: store.runs.create({ kind: 'transcripts' }).id,
      reusedPid: store.runs.create({ kind: 'transcripts' }).id,
      alive: store.runs.create({ kind: 'transcripts' }).id,
      remote: store.runs.create({ kind: 'transcripts' }).id,
      noOwner: store.runs.create({ kind: 'transcripts' }).id,
      pending: store.runs.create({ kind: 'transcripts' }).id,
    };
    const setOwner = store.db.prepare(`UPDATE runs SET status = 'running', owner_host = ?, owner_pid = ?, owner_token = ? WHERE id = ?`);
    setOwner.run(os.hostname(), deadPid(), 'gone-token', ids.dead);
    setOwner.run(os.hostname(), process.pid, 'an-earlier-process-with-our-pid', ids.reusedPid);
    setOwner.run(os.hostname(), process.ppid, 'parent-token', ids.alive);
    setOwner.run('some-other-machine', 1, 'remote-token', ids.remote);
    setOwner.run(null, null, null, ids.noOwner);
    store.close();

    const again = openProject(file);
    const status = Object.fromEntries(Object.entries(ids).map(([k, id]) => [k, again.runs.get(id)!.status]));
    expect(status).toEqual({ dead: 'interrupted', reusedPid: 'interrupted', alive: 'running', remote: 'running', noOwner: 'interrupted', pending: 'pending' });
    expect(again.runs.get(ids.dead)!.error).toMatch(/process \d+ on .* stopped while running it/);
    // A remote owner can be overridden by hand.
    expect(again.runs.markInterrupted(ids.remote, 'the other machine is off')).toBe(true);
    again.close();
  });
});

describe('resuming', () => {
  it('continues with the same model, skipping done items', () => {
    const { store, file } = newStore();
    const model = store.models.add({ path: '/ckpt/a', contentHash: 'sha256:aaa' });
    const run = store.runs.start({ kind: 'transcripts', modelId: model.id });
    for (const k of ['0', '1', '2']) store.runs.commitItem(run.id, k);
    store.close();

    const again = openProject(file);
    const { run: resumed, done } = again.runs.resume(run.id, 'sha256:aaa');
    expect(resumed.status).toBe('running');
    expect(done).toEqual(new Set(['0', '1', '2']));
    for (const k of ['0', '1', '2', '3', '4']) if (!done.has(k)) again.runs.commitItem(run.id, k);
    again.runs.finish(run.id);
    expect(again.runs.resumableItems(run.id).size).toBe(5);
    again.close();
  });

  it('refuses a different model, naming both hashes', () => {
    const { store } = newStore();
    const model = store.models.add({ path: '/ckpt/a', contentHash: 'sha256:aaa' });
    const run = store.runs.start({ kind: 'transcripts', modelId: model.id });
    store.runs.markInterrupted(run.id);
    const e = expectCliffscopeError(() => store.runs.resume(run.id, 'sha256:bbb'), 'model-mismatch', /sha256:aaa/);
    expect(e.message).toContain('sha256:bbb');
    expect(e.message).toContain('/ckpt/a');
    expect(e.hint).toMatch(/checkpoint it was started with/);
    expect(store.runs.get(run.id)!.status).toBe('interrupted'); // untouched
    store.close();
  });
});
