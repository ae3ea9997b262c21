/**
 * A project: one SQLite file holding models, datasets, runs and everything the runs produced. The store is split by
 * aggregate — `models`, `datasets`, `runs` (with their items), `probes`, `transcripts` and `traces`, `headMaps`,
 * `sweeps` and `verdicts`, `selections`, `clusterJobs` (where the Slurm jobs planned from it are) — each a thin typed
 * data-access layer over its tables (named inserts and queries; SQL stays visible, no ORM), and `views`, the read
 * models the application's plots and tables use.
 */
import { CliffscopeError } from '../engine/errors.js';
import { ClusterJobsStore } from './cluster-jobs.js';
import { DatasetsStore } from './datasets.js';
import { HeadMapsStore } from './head-maps.js';
import { ModelsStore } from './models.js';
import { ProbesStore } from './probes.js';
import { type DB, integrityProblems } from './project-file.js';
import type { Row } from './rows.js';
import { RunsStore } from './runs.js';
import { SelectionsStore } from './selections.js';
import { Statements } from './statements.js';
import { SweepsStore, VerdictsStore } from './sweeps.js';
import { exportProjectFile, exportRunTo, importRunFrom, type ImportSummary, type RunReferences } from './transfer.js';
import { TracesStore, TranscriptsStore } from './transcripts.js';
import { ProjectViews } from './views.js';

type Param = string | number | bigint | Buffer | null;

export class ProjectStore {
  private readonly sql: Statements;
  readonly models: ModelsStore;
  readonly datasets: DatasetsStore;
  readonly runs: RunsStore<ProjectStore>;
  readonly probes: ProbesStore;
  readonly transcripts: TranscriptsStore;
  readonly traces: TracesStore;
  readonly headMaps: HeadMapsStore;
  readonly sweeps: SweepsStore;
  readonly verdicts: VerdictsStore;
  readonly selections: SelectionsStore;
  /** The Slurm job directories planned from this project (kept in meta). */
  readonly clusterJobs: ClusterJobsStore;
  /** Read models: the joined rows plots and tables read. */
  readonly views: ProjectViews;

  /**
   * @param db an open connection, already configured and migrated (see openProject)
   * @param file the project file's path, for messages
   */
  constructor(
    readonly db: DB,
    readonly file: string,
  ) {
    this.sql = new Statements(db, file);
    this.models = new ModelsStore(this.sql);
    this.datasets = new DatasetsStore(this.sql);
    this.runs = new RunsStore(this.sql, this.models, () => this);
    this.probes = new ProbesStore(this.sql);
    this.transcripts = new TranscriptsStore(this.sql);
    this.traces = new TracesStore(this.sql);
    this.headMaps = new HeadMapsStore(this.sql);
    this.sweeps = new SweepsStore(this.sql);
    this.verdicts = new VerdictsStore(this.sql);
    this.selections = new SelectionsStore(this.sql);
    this.clusterJobs = new ClusterJobsStore(this.sql);
    this.views = new ProjectViews(this.sql, this.runs);
  }

  /**
   * Run `fn` in one transaction (nested calls become savepoints). `fn` must be synchronous. IMMEDIATE takes the write
   * lock up front, so a second process writing the same project waits (busy_timeout) instead of failing mid-way.
   */
  transaction<T>(fn: () => T): T {
    return this.sql.transaction(fn);
  }

  /**
   * Any read-only SQL over the project (for ad-hoc inspection). Writing statements are refused: use the typed
   * methods so invariants hold.
   */
  query(sql: string, params: Param[] | Record<string, Param> = []): Row[] {
    const s = this.db.prepare(sql);
    if (!s.reader || !s.readonly) throw new CliffscopeError('bad-argument', 'query() runs read-only statements that return rows; this one does not');
    return (Array.isArray(params) ? s.all(...params) : s.all(params)) as Row[];
  }

  /** SQLite's quick_check: 'ok', or the first problems found. */
  checkIntegrity(): string[] {
    return integrityProblems(this.db);
  }

  meta(key: string): string | null {
    return this.sql.get<{ value: string }>(`SELECT value FROM meta WHERE key = ?`, key)?.value ?? null;
  }

  setMeta(key: string, value: string): void {
    this.sql.run(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value);
  }

  /** Close the file. Runs this instance was still running are marked interrupted (they cannot commit any more). */
  close(): void {
    if (!this.db.open) return;
    this.runs.interruptClaimed('the project was closed while the run was in progress');
    this.sql.clear();
    this.db.close();
  }

  // ---- export / import -----------------------------------------------------------------------------------------

  /** A consistent single-file copy of the whole project (VACUUM INTO: compact, no -wal beside it). */
  exportProject(dest: string): void {
    exportProjectFile(this.db, this.file, dest);
  }

  /**
   * A new project file holding one run and everything it stands on: the runs it derives from or names in its
   * config (with all their rows, so views and resumes work there), their models and probes, and whole datasets.
   * `refs` says where each run kind keeps ids in its JSON (pipelines/references.ts).
   */
  exportRun(runId: number, dest: string, refs: RunReferences): void {
    this.runs.require(runId);
    exportRunTo(this.db, runId, dest, refs);
  }

  /**
   * Merge the runs of another project file (typically one written by exportRun) into this one, renumbering ids.
   * Models, datasets, probes, runs and transcripts already here (same content or same uid) are reused, not copied.
   * Ids inside the runs' JSON are rewritten to the new ones (`refs`: where each kind keeps them).
   */
  importRun(srcFile: string, refs: RunReferences): ImportSummary {
    return importRunFrom(this.db, srcFile, refs);
  }
}
