/**
 * Runs and their items: the lifecycle (create, claim, resume, finish, interrupted) and resumability. A run's work is
 * split into items (a prompt, a transcript, a sweep cell…). `commitItem` writes an item's rows and marks the item
 * done in one transaction, so after a crash every item is either fully there or not at all, and `resumableItems`
 * says which to skip.
 */
import { randomUUID } from 'node:crypto';
import { CliffscopeError } from '../engine/errors.js';
import { canonicalJson } from './json.js';
import { currentOwner, isOurs, ownerState, shownStatus } from './owner.js';
import { runFromRow, runItemFromRow, type Row } from './rows.js';
import type { ModelsStore } from './models.js';
import type { Statements } from './statements.js';
import { article, notFound } from './statements.js';
import { NOW_SQL, RUN_KINDS } from './schema.js';
import type { NewRun, RunItemRow, RunKind, RunRow, RunStatus } from './types.js';

function ownerOf(run: RunRow) {
  return { host: run.ownerHost, pid: run.ownerPid, token: run.ownerToken };
}

/**
 * A run as read: one recorded as 'running' whose owner process on this machine is gone reads as 'interrupted' at
 * once (after `kill -9`, `report` showed it running until a writer opened the file).
 */
function readRun(r: Row): RunRow {
  const run = runFromRow(r);
  return { ...run, status: shownStatus(run.status, ownerOf(run)) };
}

/**
 * The runs of a project, their items, and who is running them. `S` is what an item's write callback gets: the whole
 * store (ProjectStore), so one item can commit rows of every aggregate in its transaction.
 */
export class RunsStore<S> {
  /** Runs this connection started or resumed: marked interrupted when it closes if still running. */
  private readonly claimed = new Set<number>();

  constructor(
    private readonly sql: Statements,
    private readonly models: ModelsStore,
    private readonly unitOfWork: () => S,
  ) {}

  /** Mark the runs this connection was running as interrupted (it is closing: they cannot commit any more). */
  interruptClaimed(reason: string): void {
    for (const id of this.claimed) this.markInterrupted(id, reason);
  }

  /** A new run in state 'pending' (queued; nobody is working on it yet). */
  create(spec: NewRun): RunRow {
    if (!(RUN_KINDS as readonly string[]).includes(spec.kind)) {
      throw new CliffscopeError('bad-argument', `unknown run kind "${spec.kind}" (expected one of ${RUN_KINDS.join(', ')})`);
    }
    const id = this.sql.insert(
      `INSERT INTO runs (uid, kind, name, tags, model_id, dataset_id, parent_run_id, config, versions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      spec.uid ?? randomUUID(),
      spec.kind,
      spec.name ?? null,
      JSON.stringify(spec.tags ?? []),
      spec.modelId ?? null,
      spec.datasetId ?? null,
      spec.parentRunId ?? null,
      canonicalJson(spec.config ?? {}),
      canonicalJson(spec.versions ?? {}),
    );
    return this.get(id)!;
  }

  /**
   * Start a run: a new one from a spec, or an existing pending / interrupted / failed / cancelled one by id. This
   * process becomes its owner; only the owner can commit items to it.
   */
  start(specOrId: NewRun | number): RunRow {
    const id = typeof specOrId === 'number' ? specOrId : this.create(specOrId).id;
    return this.claimRun(id);
  }

  /**
   * Continue an unfinished run with the same model. Refuses ('model-mismatch') when the given model's content hash is
   * not the one the run was made with: mixing two models' outputs in one run would make its results meaningless.
   * Returns the run (now running, owned by us) and the keys of the items already done.
   */
  resume(runId: number, modelHash: string): { run: RunRow; done: Set<string> } {
    const run = this.require(runId);
    if (run.modelId !== null) {
      const model = this.models.get(run.modelId)!;
      if (model.contentHash !== modelHash) {
        throw new CliffscopeError(
          'model-mismatch',
          `run #${run.id} (${run.kind}) was made with model ${model.contentHash} (${model.path}); the model given now has content hash ${modelHash}`,
          { file: this.sql.file, hint: 'resume it with the checkpoint it was started with, or start a new run' },
        );
      }
    }
    return { run: this.claimRun(runId), done: this.resumableItems(runId) };
  }

  private claimRun(runId: number): RunRow {
    return this.sql.transaction(() => {
      const run = this.require(runId);
      if (run.status === 'done') throw new CliffscopeError('bad-argument', `run #${runId} is already done`, { file: this.sql.file });
      if (run.status === 'running' && !isOurs(ownerOf(run)) && ownerState(ownerOf(run)) !== 'gone') {
        throw new CliffscopeError('bad-argument', `run #${runId} is being run by process ${run.ownerPid} on ${run.ownerHost}`, {
          file: this.sql.file,
          hint: 'wait for it to finish, or mark it interrupted if that process is really gone',
        });
      }
      const o = currentOwner();
      this.sql.run(
        `UPDATE runs SET status = 'running', error = NULL, finished_at = NULL, started_at = COALESCE(started_at, ${NOW_SQL}),
           owner_host = ?, owner_pid = ?, owner_token = ? WHERE id = ?`,
        o.host,
        o.pid,
        o.token,
        runId,
      );
      this.claimed.add(runId);
      return this.get(runId)!;
    });
  }

  /**
   * Commit one finished item: `write` stores the item's rows (transcripts, traces, …) and the item is marked done,
   * all in one transaction: a crash leaves either all of it or none. `write` must be synchronous; what it returns
   * (JSON-serialisable data, optional) is kept as the item's payload and returned.
   */
  commitItem<T>(runId: number, key: string, write?: (store: S) => T): T {
    return this.sql.transaction(() => {
      this.requireOwnedRunning(runId);
      const prior = this.sql.get<{ status: string }>(`SELECT status FROM run_items WHERE run_id = ? AND key = ?`, runId, key);
      if (prior?.status === 'done') throw new CliffscopeError('bad-argument', `item "${key}" of run #${runId} is already committed`, { file: this.sql.file });
      const result = write ? write(this.unitOfWork()) : (undefined as T);
      if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
        throw new CliffscopeError('bad-argument', 'commitItem: the write callback must be synchronous (it returned a promise)');
      }
      this.sql.run(
        `INSERT INTO run_items (run_id, key, status, payload) VALUES (?, ?, 'done', ?)
         ON CONFLICT (run_id, key) DO UPDATE SET status = 'done', payload = excluded.payload, error = NULL, created_at = ${NOW_SQL}`,
        runId,
        key,
        canonicalJson(result ?? {}),
      );
      return result;
    });
  }

  /** Record that an item failed (it stays out of resumableItems, so a resume retries it). */
  failItem(runId: number, key: string, error: string): void {
    this.sql.transaction(() => {
      this.requireOwnedRunning(runId);
      this.sql.run(
        `INSERT INTO run_items (run_id, key, status, error) VALUES (?, ?, 'failed', ?)
         ON CONFLICT (run_id, key) DO UPDATE SET status = 'failed', error = excluded.error, created_at = ${NOW_SQL}`,
        runId,
        key,
        error,
      );
    });
  }

  /** Keys of the items of a run that are committed. */
  resumableItems(runId: number): Set<string> {
    return new Set(this.sql.all<{ key: string }>(`SELECT key FROM run_items WHERE run_id = ? AND status = 'done'`, runId).map((r) => r.key));
  }

  items(runId: number): RunItemRow[] {
    return this.sql.all<Row>(`SELECT * FROM run_items WHERE run_id = ? ORDER BY id`, runId).map(runItemFromRow);
  }

  /** End a run this process is running: done, failed (with the error) or cancelled. */
  finish(runId: number, status: Extract<RunStatus, 'done' | 'failed' | 'cancelled'> = 'done', error: string | null = null): RunRow {
    if (!['done', 'failed', 'cancelled'].includes(status)) throw new CliffscopeError('bad-argument', `finishRun: "${status}" is not a final status`);
    return this.sql.transaction(() => {
      this.requireOwnedRunning(runId);
      this.sql.run(`UPDATE runs SET status = ?, error = ?, finished_at = ${NOW_SQL} WHERE id = ?`, status, error, runId);
      this.claimed.delete(runId);
      return this.get(runId)!;
    });
  }

  /**
   * Mark a running run interrupted (its worker stopped, or its owner on another machine is known to be gone).
   * Returns false when the run was not running.
   */
  /**
   * A run merged from shards that still lacks items: interrupted (it can be resumed here, or more shards merged),
   * with `reason`. Only a run nobody is running and that is not done.
   */
  markIncomplete(runId: number, reason: string): void {
    this.sql.run(`UPDATE runs SET status = 'interrupted', error = ? WHERE id = ? AND status IN ('pending', 'interrupted', 'failed', 'cancelled')`, reason, runId);
  }

  markInterrupted(runId: number, reason = 'interrupted'): boolean {
    this.claimed.delete(runId);
    return this.sql.run(`UPDATE runs SET status = 'interrupted', error = ? WHERE id = ? AND status = 'running'`, reason, runId).changes > 0;
  }

  /**
   * Runs left 'running' by a process on this machine that no longer exists become 'interrupted'. Done on open;
   * runs owned by other machines are left alone (we cannot see their processes). Returns the ids marked.
   */
  recoverInterrupted(): number[] {
    const marked: number[] = [];
    for (const run of this.list({ status: 'running' })) {
      if (ownerState(ownerOf(run)) !== 'gone') continue;
      const reason = run.ownerPid === null ? 'found running with no owner' : `process ${run.ownerPid} on ${run.ownerHost} stopped while running it`;
      if (this.markInterrupted(run.id, reason)) marked.push(run.id);
    }
    return marked;
  }

  get(id: number): RunRow | null {
    const r = this.sql.get<Row>(`SELECT * FROM runs WHERE id = ?`, id);
    return r ? readRun(r) : null;
  }

  getByUid(uid: string): RunRow | null {
    const r = this.sql.get<Row>(`SELECT * FROM runs WHERE uid = ?`, uid);
    return r ? readRun(r) : null;
  }

  list(filter: { kind?: string; status?: RunStatus; parentRunId?: number } = {}): RunRow[] {
    return this.sql.all<Row>(
      `SELECT * FROM runs WHERE (@kind IS NULL OR kind = @kind) AND (@status IS NULL OR status = @status)
         AND (@parent IS NULL OR parent_run_id = @parent) ORDER BY id`,
      { kind: filter.kind ?? null, status: filter.status ?? null, parent: filter.parentRunId ?? null },
    ).map(readRun);
  }

  /**
   * Rename a run or replace its tags (null name: no name). Metadata only, so allowed in any state, even while the run
   * is running in another process: nothing it commits reads them.
   */
  update(runId: number, change: { name?: string | null; tags?: readonly string[] }): RunRow {
    return this.sql.transaction(() => {
      this.require(runId);
      if (change.name !== undefined) this.sql.run(`UPDATE runs SET name = ? WHERE id = ?`, change.name, runId);
      if (change.tags !== undefined) this.sql.run(`UPDATE runs SET tags = ? WHERE id = ?`, JSON.stringify(change.tags), runId);
      return this.get(runId)!;
    });
  }

  /** Every tag the project's runs carry, sorted. */
  tags(): string[] {
    return this.sql.all<{ tag: string }>(`SELECT DISTINCT j.value AS tag FROM runs, json_each(runs.tags) j WHERE j.type = 'text' ORDER BY tag`).map((r) => r.tag);
  }

  /** Delete a run that is not running, with everything it produced. */
  delete(runId: number): void {
    const run = this.require(runId);
    if (run.status === 'running') throw new CliffscopeError('bad-argument', `run #${runId} is running; stop it before deleting it`, { file: this.sql.file });
    this.sql.run(`DELETE FROM runs WHERE id = ?`, runId);
  }

  /** The run, or a 'bad-argument' error listing the runs there are; with `kind`, a run of that kind. */
  require(runId: number, kind?: RunKind | string): RunRow {
    const run = this.get(runId);
    if (!run) {
      const have = this.list().map((r) => `#${r.id} ${r.kind}${r.name ? ` "${r.name}"` : ''}`);
      throw notFound(this.sql.file, 'run', runId, have, 'start one first');
    }
    if (kind && run.kind !== kind) {
      throw new CliffscopeError('bad-argument', `run #${runId} is ${article(run.kind)} ${run.kind} run, not ${article(kind)} ${kind} run`, { file: this.sql.file });
    }
    return run;
  }

  private requireOwnedRunning(runId: number): void {
    const run = this.require(runId);
    if (run.status !== 'running' || !isOurs(ownerOf(run))) {
      throw new CliffscopeError(
        'bad-argument',
        run.status !== 'running' ? `run #${runId} is ${run.status}, not running` : `run #${runId} is being run by another process (${run.ownerPid} on ${run.ownerHost})`,
        { file: this.sql.file, hint: 'start or resume the run in this process first' },
      );
    }
  }
}
