/**
 * A project: one SQLite file holding models, datasets, runs and everything the runs produced. This class is a thin,
 * typed data-access layer (named inserts and queries, plus the run lifecycle); SQL stays visible and there is no ORM.
 *
 * Resumability: a run's work is split into items (a prompt, a transcript, a sweep cell…). `commitItem` writes an
 * item's rows and marks the item done in one transaction, so after a crash every item is either fully there or not
 * at all, and `resumableItems` says which to skip.
 */
import { createHash, randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { readDatasetFile, type ColumnMapping, type DatasetReadResult, type ReadDatasetOptions, type RejectedRow } from '../datasets/import.js';
import { CliffscopeError } from '../errors.js';
import { blobToFloat32, blobToInt32, float32ToBlob, int32ToBlob } from './blobs.js';
import { canonicalJson, parseJson } from './json.js';
import { currentOwner, isOurs, ownerState, shownStatus } from './owner.js';
import type { DB } from './project-file.js';
import { NOW_SQL, RUN_KINDS } from './schema.js';
import { exportProjectFile, exportRunTo, importRunFrom, type ImportSummary } from './transfer.js';
import type {
  DatasetRow,
  HeadMapRow,
  ItemRow,
  JsonObject,
  JsonValue,
  ModelRow,
  NewHeadMap,
  NewModel,
  NewProbe,
  NewRun,
  NewSelection,
  NewSweepCell,
  NewTrace,
  NewTranscript,
  NewVerdict,
  ProbeRow,
  RunItemRow,
  RunRow,
  RunStatus,
  SelectionRow,
  SweepCellRow,
  TraceRow,
  TranscriptRow,
  VerdictRow,
} from './types.js';

type Row = Record<string, unknown>;

/** A dataset row lists at most this many rejected rows (rejected_count has the full number). */
const MAX_STORED_REJECTS = 1000;
type Param = string | number | bigint | Buffer | null;
/** Positional values, or one object of named values (@name in the SQL). */
type Params = Param[] | [Record<string, Param>];

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
const str = (v: unknown) => (v === null || v === undefined ? null : String(v));
/** NaN and ±Infinity cannot live in a REAL column (SQLite turns NaN into NULL anyway); store NULL explicitly. */
const real = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? null : v);
const flag = (v: boolean | null | undefined) => (v === null || v === undefined ? null : v ? 1 : 0);

export class ProjectStore {
  /** Runs this instance started or resumed: marked interrupted on close() if still running. */
  private readonly claimed = new Set<number>();
  private readonly statements = new Map<string, Database.Statement>();

  /**
   * @param db an open connection, already configured and migrated (see openProject)
   * @param file the project file's path, for messages
   */
  constructor(
    readonly db: DB,
    readonly file: string,
  ) {}

  // ---- plumbing ------------------------------------------------------------------------------------------------

  /** Prepared statements are cached by their SQL text. */
  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  private get<T>(sql: string, ...params: Params): T | undefined {
    return this.stmt(sql).get(...params) as T | undefined;
  }

  private all<T>(sql: string, ...params: Params): T[] {
    return this.stmt(sql).all(...params) as T[];
  }

  private run(sql: string, ...params: Params): Database.RunResult {
    return this.stmt(sql).run(...params);
  }

  private insert(sql: string, ...params: Params): number {
    return Number(this.run(sql, ...params).lastInsertRowid);
  }

  /**
   * Run `fn` in one transaction (nested calls become savepoints). `fn` must be synchronous. IMMEDIATE takes the write
   * lock up front, so a second process writing the same project waits (busy_timeout) instead of failing mid-way.
   */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /**
   * Any read-only SQL over the project (for tables, plots, CSV export). Writing statements are refused: use the
   * typed methods so invariants hold.
   */
  query(sql: string, params: Param[] | Record<string, Param> = []): Row[] {
    const s = this.db.prepare(sql);
    if (!s.reader || !s.readonly) throw new CliffscopeError('bad-argument', 'query() runs read-only statements that return rows; this one does not');
    return (Array.isArray(params) ? s.all(...params) : s.all(params)) as Row[];
  }

  /** SQLite's quick_check: 'ok', or the first problems found. */
  checkIntegrity(): string[] {
    return (this.db.pragma('quick_check(10)') as { quick_check: string }[]).map((r) => r.quick_check);
  }

  meta(key: string): string | null {
    return this.get<{ value: string }>(`SELECT value FROM meta WHERE key = ?`, key)?.value ?? null;
  }

  setMeta(key: string, value: string): void {
    this.run(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value);
  }

  /** Close the file. Runs this instance was still running are marked interrupted (they cannot commit any more). */
  close(): void {
    if (!this.db.open) return;
    for (const id of this.claimed) this.markInterrupted(id, 'the project was closed while the run was in progress');
    this.statements.clear();
    this.db.close();
  }

  // ---- models --------------------------------------------------------------------------------------------------

  /**
   * Register a model, or return the existing row for the same weights and compile options (its path, name and
   * config are refreshed: a moved checkpoint is still the same model).
   */
  addModel(m: NewModel): ModelRow {
    const compile = canonicalJson(m.compileOptions ?? {});
    const row = this.get<Row>(
      `INSERT INTO models (name, path, content_hash, config, compile_options) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (content_hash, compile_options) DO UPDATE SET name = excluded.name, path = excluded.path, config = excluded.config
       RETURNING *`,
      m.name ?? null,
      m.path,
      m.contentHash,
      canonicalJson(m.config ?? {}),
      compile,
    );
    return modelFromRow(row!);
  }

  getModel(id: number): ModelRow | null {
    const r = this.get<Row>(`SELECT * FROM models WHERE id = ?`, id);
    return r ? modelFromRow(r) : null;
  }

  findModelsByHash(contentHash: string): ModelRow[] {
    return this.all<Row>(`SELECT * FROM models WHERE content_hash = ? ORDER BY id`, contentHash).map(modelFromRow);
  }

  listModels(): ModelRow[] {
    return this.all<Row>(`SELECT * FROM models ORDER BY id`).map(modelFromRow);
  }

  // ---- datasets ------------------------------------------------------------------------------------------------

  /**
   * Read a dataset file and store it under `name`. Rows that could not be read are not stored but counted (and
   * listed in the dataset row) so the UI can report them. Returns the dataset and the rejected rows.
   */
  importDataset(name: string, file: string, mapping?: Partial<ColumnMapping>, opts: Omit<ReadDatasetOptions, 'mapping'> = {}): { dataset: DatasetRow; rejected: RejectedRow[] } {
    const read = readDatasetFile(file, { ...opts, mapping });
    const dataset = this.addDataset(name, read, file);
    return { dataset, rejected: read.rejected };
  }

  /** Store already-read items as a dataset (one transaction). */
  addDataset(name: string, read: DatasetReadResult, sourceFile: string | null = null): DatasetRow {
    if (name.trim() === '') throw new CliffscopeError('bad-dataset', 'a dataset needs a name');
    if (this.findDataset(name)) {
      throw new CliffscopeError('bad-dataset', `${this.file} already has a dataset named "${name}"`, { file: this.file, hint: 'choose another name' });
    }
    return this.transaction(() => {
      const id = this.insert(
        `INSERT INTO datasets (name, source_file, format, content_hash, mapping, columns, item_count, rejected_count, rejected)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        name,
        sourceFile,
        read.format,
        itemsHash(read.items),
        canonicalJson(read.mapping),
        JSON.stringify(read.columns),
        read.items.length,
        read.rejected.length,
        JSON.stringify(read.rejected.slice(0, MAX_STORED_REJECTS)),
      );
      for (const it of read.items) {
        this.run(
          `INSERT INTO dataset_items (dataset_id, idx, source_line, prompt, response, label, category, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          id,
          it.idx,
          it.line,
          it.prompt,
          it.response,
          it.label,
          it.category,
          canonicalJson(it.extra),
        );
      }
      return this.getDataset(id)!;
    });
  }

  getDataset(id: number): DatasetRow | null {
    const r = this.get<Row>(`SELECT * FROM datasets WHERE id = ?`, id);
    return r ? datasetFromRow(r) : null;
  }

  findDataset(name: string): DatasetRow | null {
    const r = this.get<Row>(`SELECT * FROM datasets WHERE name = ?`, name);
    return r ? datasetFromRow(r) : null;
  }

  listDatasets(): DatasetRow[] {
    return this.all<Row>(`SELECT * FROM datasets ORDER BY id`).map(datasetFromRow);
  }

  /** Items in order; `limit`/`offset` page through large sets. */
  datasetItems(datasetId: number, page: { offset?: number; limit?: number } = {}): ItemRow[] {
    return this.all<Row>(
      `SELECT * FROM dataset_items WHERE dataset_id = ? ORDER BY idx LIMIT ? OFFSET ?`,
      datasetId,
      page.limit ?? -1,
      page.offset ?? 0,
    ).map(itemFromRow);
  }

  getItem(id: number): ItemRow | null {
    const r = this.get<Row>(`SELECT * FROM dataset_items WHERE id = ?`, id);
    return r ? itemFromRow(r) : null;
  }

  // ---- runs ----------------------------------------------------------------------------------------------------

  /** A new run in state 'pending' (queued; nobody is working on it yet). */
  createRun(spec: NewRun): RunRow {
    if (!(RUN_KINDS as readonly string[]).includes(spec.kind)) {
      throw new CliffscopeError('bad-argument', `unknown run kind "${spec.kind}" (expected one of ${RUN_KINDS.join(', ')})`);
    }
    const id = this.insert(
      `INSERT INTO runs (uid, kind, name, model_id, dataset_id, parent_run_id, config, versions) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      randomUUID(),
      spec.kind,
      spec.name ?? null,
      spec.modelId ?? null,
      spec.datasetId ?? null,
      spec.parentRunId ?? null,
      canonicalJson(spec.config ?? {}),
      canonicalJson(spec.versions ?? {}),
    );
    return this.getRun(id)!;
  }

  /**
   * Start a run: a new one from a spec, or an existing pending / interrupted / failed / cancelled one by id. This
   * process becomes its owner; only the owner can commit items to it.
   */
  startRun(specOrId: NewRun | number): RunRow {
    const id = typeof specOrId === 'number' ? specOrId : this.createRun(specOrId).id;
    return this.claimRun(id);
  }

  /**
   * Continue an unfinished run with the same model. Refuses ('model-mismatch') when the given model's content hash is
   * not the one the run was made with: mixing two models' outputs in one run would make its results meaningless.
   * Returns the run (now running, owned by us) and the keys of the items already done.
   */
  resumeRun(runId: number, modelHash: string): { run: RunRow; done: Set<string> } {
    const run = this.requireRun(runId);
    if (run.modelId !== null) {
      const model = this.getModel(run.modelId)!;
      if (model.contentHash !== modelHash) {
        throw new CliffscopeError(
          'model-mismatch',
          `run #${run.id} (${run.kind}) was made with model ${model.contentHash} (${model.path}); the model given now has content hash ${modelHash}`,
          { file: this.file, hint: 'resume it with the checkpoint it was started with, or start a new run' },
        );
      }
    }
    return { run: this.claimRun(runId), done: this.resumableItems(runId) };
  }

  private claimRun(runId: number): RunRow {
    return this.transaction(() => {
      const run = this.requireRun(runId);
      if (run.status === 'done') throw new CliffscopeError('bad-argument', `run #${runId} is already done`, { file: this.file });
      if (run.status === 'running' && !isOurs(ownerOf(run)) && ownerState(ownerOf(run)) !== 'gone') {
        throw new CliffscopeError('bad-argument', `run #${runId} is being run by process ${run.ownerPid} on ${run.ownerHost}`, {
          file: this.file,
          hint: 'wait for it to finish, or mark it interrupted if that process is really gone',
        });
      }
      const o = currentOwner();
      this.run(
        `UPDATE runs SET status = 'running', error = NULL, finished_at = NULL, started_at = COALESCE(started_at, ${NOW_SQL}),
           owner_host = ?, owner_pid = ?, owner_token = ? WHERE id = ?`,
        o.host,
        o.pid,
        o.token,
        runId,
      );
      this.claimed.add(runId);
      return this.getRun(runId)!;
    });
  }

  /**
   * Commit one finished item: `write` stores the item's rows (transcripts, traces, …) and the item is marked done,
   * all in one transaction: a crash leaves either all of it or none. `write` must be synchronous; what it returns
   * (JSON, optional) is kept as the item's payload and returned.
   */
  commitItem<T extends JsonValue | void>(runId: number, key: string, write?: (store: ProjectStore) => T): T {
    return this.transaction(() => {
      this.requireOwnedRunning(runId);
      const prior = this.get<{ status: string }>(`SELECT status FROM run_items WHERE run_id = ? AND key = ?`, runId, key);
      if (prior?.status === 'done') throw new CliffscopeError('bad-argument', `item "${key}" of run #${runId} is already committed`, { file: this.file });
      const result = write ? write(this) : (undefined as T);
      if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
        throw new CliffscopeError('bad-argument', 'commitItem: the write callback must be synchronous (it returned a promise)');
      }
      this.run(
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
    this.transaction(() => {
      this.requireOwnedRunning(runId);
      this.run(
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
    return new Set(this.all<{ key: string }>(`SELECT key FROM run_items WHERE run_id = ? AND status = 'done'`, runId).map((r) => r.key));
  }

  runItems(runId: number): RunItemRow[] {
    return this.all<Row>(`SELECT * FROM run_items WHERE run_id = ? ORDER BY id`, runId).map(runItemFromRow);
  }

  /** End a run this process is running: done, failed (with the error) or cancelled. */
  finishRun(runId: number, status: Extract<RunStatus, 'done' | 'failed' | 'cancelled'> = 'done', error: string | null = null): RunRow {
    if (!['done', 'failed', 'cancelled'].includes(status)) throw new CliffscopeError('bad-argument', `finishRun: "${status}" is not a final status`);
    return this.transaction(() => {
      this.requireOwnedRunning(runId);
      this.run(`UPDATE runs SET status = ?, error = ?, finished_at = ${NOW_SQL} WHERE id = ?`, status, error, runId);
      this.claimed.delete(runId);
      return this.getRun(runId)!;
    });
  }

  /**
   * Mark a running run interrupted (its worker stopped, or its owner on another machine is known to be gone).
   * Returns false when the run was not running.
   */
  markInterrupted(runId: number, reason = 'interrupted'): boolean {
    this.claimed.delete(runId);
    return this.run(`UPDATE runs SET status = 'interrupted', error = ? WHERE id = ? AND status = 'running'`, reason, runId).changes > 0;
  }

  /**
   * Runs left 'running' by a process on this machine that no longer exists become 'interrupted'. Done on open;
   * runs owned by other machines are left alone (we cannot see their processes). Returns the ids marked.
   */
  recoverInterruptedRuns(): number[] {
    const marked: number[] = [];
    for (const run of this.listRuns({ status: 'running' })) {
      if (ownerState(ownerOf(run)) !== 'gone') continue;
      const reason = run.ownerPid === null ? 'found running with no owner' : `process ${run.ownerPid} on ${run.ownerHost} stopped while running it`;
      if (this.markInterrupted(run.id, reason)) marked.push(run.id);
    }
    return marked;
  }

  getRun(id: number): RunRow | null {
    const r = this.get<Row>(`SELECT * FROM runs WHERE id = ?`, id);
    return r ? runFromRow(r) : null;
  }

  getRunByUid(uid: string): RunRow | null {
    const r = this.get<Row>(`SELECT * FROM runs WHERE uid = ?`, uid);
    return r ? runFromRow(r) : null;
  }

  listRuns(filter: { kind?: string; status?: RunStatus; parentRunId?: number } = {}): RunRow[] {
    return this.all<Row>(
      `SELECT * FROM runs WHERE (@kind IS NULL OR kind = @kind) AND (@status IS NULL OR status = @status)
         AND (@parent IS NULL OR parent_run_id = @parent) ORDER BY id`,
      { kind: filter.kind ?? null, status: filter.status ?? null, parent: filter.parentRunId ?? null },
    ).map(runFromRow);
  }

  /** Delete a run that is not running, with everything it produced. */
  deleteRun(runId: number): void {
    const run = this.requireRun(runId);
    if (run.status === 'running') throw new CliffscopeError('bad-argument', `run #${runId} is running; stop it before deleting it`, { file: this.file });
    this.run(`DELETE FROM runs WHERE id = ?`, runId);
  }

  private requireRun(runId: number): RunRow {
    const run = this.getRun(runId);
    if (!run) throw new CliffscopeError('bad-argument', `${this.file} has no run #${runId}`, { file: this.file });
    return run;
  }

  private requireOwnedRunning(runId: number): void {
    const run = this.requireRun(runId);
    if (run.status !== 'running' || !isOurs(ownerOf(run))) {
      throw new CliffscopeError(
        'bad-argument',
        run.status !== 'running' ? `run #${runId} is ${run.status}, not running` : `run #${runId} is being run by another process (${run.ownerPid} on ${run.ownerHost})`,
        { file: this.file, hint: 'start or resume the run in this process first' },
      );
    }
  }

  // ---- probes --------------------------------------------------------------------------------------------------

  addProbe(p: NewProbe): ProbeRow {
    const weights = p.weights instanceof Float32Array ? p.weights : Float32Array.from(p.weights);
    return this.transaction(() => {
      const version =
        p.version ?? (this.get<{ v: number }>(`SELECT COALESCE(MAX(version), 0) + 1 AS v FROM probes WHERE model_id = ? AND name = ?`, p.modelId, p.name)!.v);
      const id = this.insert(
        `INSERT INTO probes (uid, model_id, run_id, name, version, layer, position_rule, dim, weights, bias, metrics, provenance)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        randomUUID(),
        p.modelId,
        p.runId ?? null,
        p.name,
        version,
        p.layer,
        p.positionRule,
        weights.length,
        float32ToBlob(weights),
        p.bias,
        canonicalJson(p.metrics ?? {}),
        canonicalJson(p.provenance ?? {}),
      );
      return this.getProbe(id)!;
    });
  }

  getProbe(id: number): ProbeRow | null {
    const r = this.get<Row>(`SELECT * FROM probes WHERE id = ?`, id);
    return r ? probeFromRow(r) : null;
  }

  listProbes(filter: { modelId?: number; name?: string } = {}): ProbeRow[] {
    return this.all<Row>(
      `SELECT * FROM probes WHERE (@model IS NULL OR model_id = @model) AND (@name IS NULL OR name = @name) ORDER BY model_id, name, version`,
      { model: filter.modelId ?? null, name: filter.name ?? null },
    ).map(probeFromRow);
  }

  latestProbe(modelId: number, name: string): ProbeRow | null {
    const r = this.get<Row>(`SELECT * FROM probes WHERE model_id = ? AND name = ? ORDER BY version DESC LIMIT 1`, modelId, name);
    return r ? probeFromRow(r) : null;
  }

  // ---- transcripts ---------------------------------------------------------------------------------------------

  addTranscript(t: NewTranscript): number {
    return this.insert(
      `INSERT INTO transcripts (uid, run_id, item_id, prompt, token_ids, prompt_tokens, text, thinking_start, thinking_end,
         answer_boundary, finish_reason, head_scale_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      randomUUID(),
      t.runId,
      t.itemId ?? null,
      t.prompt,
      int32ToBlob(t.tokenIds),
      t.promptTokens,
      t.text,
      t.thinkingStart ?? null,
      t.thinkingEnd ?? null,
      t.answerBoundary ?? null,
      t.finishReason ?? null,
      t.headScaleKey ?? null,
    );
  }

  getTranscript(id: number): TranscriptRow | null {
    const r = this.get<Row>(`SELECT * FROM transcripts WHERE id = ?`, id);
    return r ? transcriptFromRow(r) : null;
  }

  /** A run's transcripts; `headScaleKey` selects one ablation setting (null = the unablated ones). */
  listTranscripts(runId: number, filter: { headScaleKey?: string | null } = {}): TranscriptRow[] {
    const rows =
      filter.headScaleKey === undefined
        ? this.all<Row>(`SELECT * FROM transcripts WHERE run_id = ? ORDER BY id`, runId)
        : this.all<Row>(`SELECT * FROM transcripts WHERE run_id = ? AND head_scale_key IS ? ORDER BY id`, runId, filter.headScaleKey);
    return rows.map(transcriptFromRow);
  }

  // ---- traces --------------------------------------------------------------------------------------------------

  addTrace(t: NewTrace): number {
    return this.insert(
      `INSERT INTO traces (run_id, transcript_id, probe_id, layer, scores, plateau, final, ms, steepest_drop_pos, cliff_width)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      t.runId,
      t.transcriptId,
      t.probeId,
      t.layer,
      float32ToBlob(t.scores),
      real(t.plateau),
      real(t.final),
      real(t.ms),
      t.steepestDropPos ?? null,
      t.cliffWidth ?? null,
    );
  }

  listTraces(filter: { runId?: number; transcriptId?: number; probeId?: number }): TraceRow[] {
    return this.all<Row>(
      `SELECT * FROM traces WHERE (@run IS NULL OR run_id = @run) AND (@transcript IS NULL OR transcript_id = @transcript)
         AND (@probe IS NULL OR probe_id = @probe) ORDER BY id`,
      { run: filter.runId ?? null, transcript: filter.transcriptId ?? null, probe: filter.probeId ?? null },
    ).map(traceFromRow);
  }

  // ---- head attribution maps -----------------------------------------------------------------------------------

  addHeadMap(h: NewHeadMap): number {
    const n = h.layers * h.heads;
    if (h.scores.length !== n) throw new CliffscopeError('shape-mismatch', `head map has ${h.scores.length} scores, expected ${h.layers}×${h.heads} = ${n}`);
    if (h.perToken && h.perToken.length !== n * (h.tokens ?? -1)) {
      throw new CliffscopeError('shape-mismatch', `per-token head map has ${h.perToken.length} values, expected ${h.layers}×${h.heads}×${h.tokens ?? '?'}`);
    }
    return this.insert(
      `INSERT INTO head_maps (run_id, transcript_id, probe_id, position_rule, layers, heads, scores, tokens, per_token)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      h.runId,
      h.transcriptId ?? null,
      h.probeId ?? null,
      h.positionRule,
      h.layers,
      h.heads,
      float32ToBlob(h.scores),
      h.perToken ? h.tokens ?? null : null,
      h.perToken ? float32ToBlob(h.perToken) : null,
    );
  }

  getHeadMap(id: number): HeadMapRow | null {
    const r = this.get<Row>(`SELECT * FROM head_maps WHERE id = ?`, id);
    return r ? headMapFromRow(r) : null;
  }

  /** A run's maps; `transcriptId: null` picks the run-level (averaged) maps. */
  listHeadMaps(runId: number, filter: { transcriptId?: number | null } = {}): HeadMapRow[] {
    const rows =
      filter.transcriptId === undefined
        ? this.all<Row>(`SELECT * FROM head_maps WHERE run_id = ? ORDER BY id`, runId)
        : this.all<Row>(`SELECT * FROM head_maps WHERE run_id = ? AND transcript_id IS ? ORDER BY id`, runId, filter.transcriptId);
    return rows.map(headMapFromRow);
  }

  // ---- ablation sweeps -----------------------------------------------------------------------------------------

  addSweepCell(c: NewSweepCell): number {
    return this.insert(
      `INSERT INTO sweep_cells (run_id, head_scale_key, control, k, fraction, gamma, seed, heads, metrics) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      c.runId,
      c.headScaleKey,
      c.control,
      c.k,
      real(c.fraction),
      c.gamma,
      c.seed ?? null,
      JSON.stringify(c.heads ?? []),
      canonicalJson(c.metrics ?? {}),
    );
  }

  /** Metrics are known once a cell's transcripts are judged: set (replace) them then. */
  setSweepMetrics(cellId: number, metrics: JsonObject): void {
    this.run(`UPDATE sweep_cells SET metrics = ? WHERE id = ?`, canonicalJson(metrics), cellId);
  }

  listSweepCells(runId: number): SweepCellRow[] {
    // Reading order of a sweep table: the baseline, then top-k, random and named sets, each by k and γ.
    return this.all<Row>(
      `SELECT * FROM sweep_cells WHERE run_id = ?
       ORDER BY k > 0, CASE control WHEN 'top' THEN 0 WHEN 'random' THEN 1 ELSE 2 END, k, gamma, id`,
      runId,
    ).map(sweepCellFromRow);
  }

  // ---- verdicts ------------------------------------------------------------------------------------------------

  /** Store a judge's verdict on a transcript (replacing an earlier one by the same judge in the same run). */
  addVerdict(v: NewVerdict): number {
    // RETURNING, not lastInsertRowid: an upsert that updates inserts nothing.
    return this.get<{ id: number }>(
      `INSERT INTO verdicts (run_id, transcript_id, judge, verdict, harmful, score, detail) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (run_id, transcript_id, judge) DO UPDATE SET verdict = excluded.verdict, harmful = excluded.harmful,
         score = excluded.score, detail = excluded.detail, created_at = ${NOW_SQL}
       RETURNING id`,
      v.runId,
      v.transcriptId,
      v.judge,
      v.verdict,
      flag(v.harmful),
      real(v.score),
      canonicalJson(v.detail ?? {}),
    )!.id;
  }

  listVerdicts(filter: { runId?: number; transcriptId?: number; judge?: string }): VerdictRow[] {
    return this.all<Row>(
      `SELECT * FROM verdicts WHERE (@run IS NULL OR run_id = @run) AND (@transcript IS NULL OR transcript_id = @transcript)
         AND (@judge IS NULL OR judge = @judge) ORDER BY id`,
      { run: filter.runId ?? null, transcript: filter.transcriptId ?? null, judge: filter.judge ?? null },
    ).map(verdictFromRow);
  }

  /** Attack success rate of a judge run: harmful / decided (verdicts with harmful NULL are left out). */
  attackSuccessRate(runId: number, judge?: string): { judged: number; harmful: number; rate: number | null } {
    const r = this.get<{ judged: number; harmful: number | null }>(
      `SELECT COUNT(harmful) AS judged, SUM(harmful) AS harmful FROM verdicts WHERE run_id = @run AND (@judge IS NULL OR judge = @judge)`,
      { run: runId, judge: judge ?? null },
    )!;
    const harmful = r.harmful ?? 0;
    return { judged: r.judged, harmful, rate: r.judged ? harmful / r.judged : null };
  }

  // ---- data selection ------------------------------------------------------------------------------------------

  /** One scored item of a selection run, with its rank and whether it was selected (ranked by analysis/select.ts). */
  addSelection(s: NewSelection): number {
    return this.insert(
      `INSERT INTO selections (run_id, item_id, transcript_id, score, rank, selected) VALUES (?, ?, ?, ?, ?, ?)`,
      s.runId,
      s.itemId,
      s.transcriptId ?? null,
      real(s.score),
      s.rank ?? null,
      s.selected ? 1 : 0,
    );
  }

  listSelections(runId: number, filter: { selectedOnly?: boolean } = {}): SelectionRow[] {
    return this.all<Row>(
      `SELECT * FROM selections WHERE run_id = ? AND (? = 0 OR selected = 1) ORDER BY rank IS NULL, rank, id`,
      runId,
      filter.selectedOnly ? 1 : 0,
    ).map(selectionFromRow);
  }

  // ---- export / import -----------------------------------------------------------------------------------------

  /** A consistent single-file copy of the whole project (VACUUM INTO: compact, no -wal beside it). */
  exportProject(dest: string): void {
    exportProjectFile(this.db, this.file, dest);
  }

  /**
   * A new project file holding one run and what it needs: its model(s), the full datasets it used, the probes it
   * used or made, its parent runs, and the transcripts of other runs it refers to (those runs come as bare rows).
   */
  exportRun(runId: number, dest: string): void {
    this.requireRun(runId);
    exportRunTo(this.db, runId, dest);
  }

  /**
   * Merge the runs of another project file (typically one written by exportRun) into this one, renumbering ids.
   * Models, datasets, probes, runs and transcripts already here (same content or same uid) are reused, not copied.
   */
  importRun(srcFile: string): ImportSummary {
    return importRunFrom(this.db, srcFile);
  }
}

// ---- row mapping -----------------------------------------------------------------------------------------------

function ownerOf(run: RunRow) {
  return { host: run.ownerHost, pid: run.ownerPid, token: run.ownerToken };
}

/** sha256 over the items' content (not ids or line numbers): the same data imported twice hashes the same. */
function itemsHash(items: DatasetReadResult['items']): string {
  const h = createHash('sha256');
  for (const it of items) h.update(canonicalJson([it.prompt, it.response, it.label, it.category, it.extra]) + '\n');
  return h.digest('hex');
}

function modelFromRow(r: Row): ModelRow {
  return {
    id: Number(r.id),
    name: str(r.name),
    path: String(r.path),
    contentHash: String(r.content_hash),
    config: parseJson(r.config as string, {}),
    compileOptions: parseJson(r.compile_options as string, {}),
    createdAt: String(r.created_at),
  };
}

function datasetFromRow(r: Row): DatasetRow {
  return {
    id: Number(r.id),
    name: String(r.name),
    sourceFile: str(r.source_file),
    format: str(r.format),
    contentHash: String(r.content_hash),
    mapping: parseJson(r.mapping as string, {}),
    columns: parseJson(r.columns as string, []),
    itemCount: Number(r.item_count),
    rejectedCount: Number(r.rejected_count),
    rejected: parseJson(r.rejected as string, []),
    createdAt: String(r.created_at),
  };
}

function itemFromRow(r: Row): ItemRow {
  return {
    id: Number(r.id),
    datasetId: Number(r.dataset_id),
    idx: Number(r.idx),
    line: num(r.source_line),
    prompt: String(r.prompt),
    response: str(r.response),
    label: str(r.label),
    category: str(r.category),
    extra: parseJson(r.extra as string, {}),
  };
}

function runFromRow(r: Row): RunRow {
  return {
    id: Number(r.id),
    uid: String(r.uid),
    kind: r.kind as RunRow['kind'],
    name: str(r.name),
    modelId: num(r.model_id),
    datasetId: num(r.dataset_id),
    parentRunId: num(r.parent_run_id),
    config: parseJson(r.config as string, {}),
    versions: parseJson(r.versions as string, {}),
    status: shownStatus(r.status as RunStatus, { host: str(r.owner_host), pid: num(r.owner_pid), token: str(r.owner_token) }),
    error: str(r.error),
    ownerHost: str(r.owner_host),
    ownerPid: num(r.owner_pid),
    ownerToken: str(r.owner_token),
    createdAt: String(r.created_at),
    startedAt: str(r.started_at),
    finishedAt: str(r.finished_at),
  };
}

function runItemFromRow(r: Row): RunItemRow {
  return {
    id: Number(r.id),
    runId: Number(r.run_id),
    key: String(r.key),
    status: r.status as RunItemRow['status'],
    payload: parseJson(r.payload as string, {}),
    error: str(r.error),
    createdAt: String(r.created_at),
  };
}

function probeFromRow(r: Row): ProbeRow {
  return {
    id: Number(r.id),
    uid: String(r.uid),
    modelId: Number(r.model_id),
    runId: num(r.run_id),
    name: String(r.name),
    version: Number(r.version),
    layer: Number(r.layer),
    positionRule: String(r.position_rule),
    weights: blobToFloat32(r.weights as Buffer),
    bias: Number(r.bias),
    metrics: parseJson(r.metrics as string, {}),
    provenance: parseJson(r.provenance as string, {}),
    createdAt: String(r.created_at),
  };
}

function transcriptFromRow(r: Row): TranscriptRow {
  return {
    id: Number(r.id),
    uid: String(r.uid),
    runId: Number(r.run_id),
    itemId: num(r.item_id),
    prompt: String(r.prompt),
    tokenIds: blobToInt32(r.token_ids as Buffer),
    promptTokens: Number(r.prompt_tokens),
    text: String(r.text),
    thinkingStart: num(r.thinking_start),
    thinkingEnd: num(r.thinking_end),
    answerBoundary: num(r.answer_boundary),
    finishReason: str(r.finish_reason),
    headScaleKey: str(r.head_scale_key),
    createdAt: String(r.created_at),
  };
}

function traceFromRow(r: Row): TraceRow {
  return {
    id: Number(r.id),
    runId: Number(r.run_id),
    transcriptId: Number(r.transcript_id),
    probeId: Number(r.probe_id),
    layer: Number(r.layer),
    scores: blobToFloat32(r.scores as Buffer),
    plateau: num(r.plateau),
    final: num(r.final),
    ms: num(r.ms),
    steepestDropPos: num(r.steepest_drop_pos),
    cliffWidth: num(r.cliff_width),
    createdAt: String(r.created_at),
  };
}

function headMapFromRow(r: Row): HeadMapRow {
  return {
    id: Number(r.id),
    runId: Number(r.run_id),
    transcriptId: num(r.transcript_id),
    probeId: num(r.probe_id),
    positionRule: String(r.position_rule),
    layers: Number(r.layers),
    heads: Number(r.heads),
    scores: blobToFloat32(r.scores as Buffer),
    tokens: num(r.tokens),
    perToken: r.per_token ? blobToFloat32(r.per_token as Buffer) : null,
    createdAt: String(r.created_at),
  };
}

function sweepCellFromRow(r: Row): SweepCellRow {
  return {
    id: Number(r.id),
    runId: Number(r.run_id),
    headScaleKey: String(r.head_scale_key),
    control: r.control as SweepCellRow['control'],
    k: Number(r.k),
    fraction: num(r.fraction),
    gamma: Number(r.gamma),
    seed: num(r.seed),
    heads: parseJson(r.heads as string, []),
    metrics: parseJson(r.metrics as string, {}),
    createdAt: String(r.created_at),
  };
}

function verdictFromRow(r: Row): VerdictRow {
  return {
    id: Number(r.id),
    runId: Number(r.run_id),
    transcriptId: Number(r.transcript_id),
    judge: String(r.judge),
    verdict: String(r.verdict),
    harmful: r.harmful === null ? null : r.harmful === 1,
    score: num(r.score),
    detail: parseJson(r.detail as string, {}),
    createdAt: String(r.created_at),
  };
}

function selectionFromRow(r: Row): SelectionRow {
  return {
    id: Number(r.id),
    runId: Number(r.run_id),
    itemId: Number(r.item_id),
    transcriptId: num(r.transcript_id),
    score: num(r.score),
    rank: num(r.rank),
    selected: r.selected === 1,
    createdAt: String(r.created_at),
  };
}
