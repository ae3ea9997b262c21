/**
 * Shard files: one process's share of a run, in a project file of its own, and merging them back into the project.
 *
 * A shard file starts as a copy of the input project (so every id the run's config names means the same row) without
 * what other runs keep only for themselves (their items, per-token head maps), and records in its `meta` table which run it belongs to (uid, kind, config, model hash) and which items each shard
 * of the run takes. Only its own process writes it: never several writers on one SQLite file, which network file
 * systems do not support.
 *
 * Merging copies the run's rows from a shard file into the project, keyed by what they are rather than by row id:
 * an item by its key, a transcript by (item, head-scale setting), a trace by (transcript, probe), a verdict by
 * (transcript, judge), a head map by (transcript, probe, position rule), a sweep cell by its setting. A row already
 * there with the same content is accepted once (re-merging is a no-op); one with other content is a conflict and
 * the shard is refused whole (one transaction per shard file). Rows the run refers to outside itself (dataset items,
 * other runs' transcripts, probes) must be the very same rows in the project (same id and identity), or the shard
 * came from another project state and is refused. Rows are streamed, never loaded whole.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CliffscopeError } from '../engine/errors.js';
import { canonicalJson, parseJson } from './json.js';
import { inspectProjectFile, openChecked, openForReading, type DB } from './project-file.js';

/** The meta key a shard file's description is stored under. */
export const SHARD_META_KEY = 'shard';

export interface ShardMeta {
  /** The run every shard of the set belongs to. */
  runUid: string;
  kind: string;
  /** The run's resolved config, as stored with the run. */
  config: unknown;
  modelHash: string;
  index: number;
  count: number;
  /** Every item key of the run, by shard (index = shard): what a complete merge must hold. */
  assignment: string[][];
}

type Row = Record<string, unknown>;

const conflict = (message: string, file: string, hint?: string) => new CliffscopeError('bad-project', message, { file, hint });

/** A shard file's description, or null for a project that is not a shard file. */
export function readShardMeta(db: DB, file: string): ShardMeta | null {
  const text = db.prepare(`SELECT value FROM meta WHERE key = ?`).pluck().get(SHARD_META_KEY) as string | undefined;
  if (text === undefined) return null;
  const m = parseJson<Partial<ShardMeta> | null>(text, null);
  const ok =
    m !== null &&
    typeof m.runUid === 'string' &&
    typeof m.kind === 'string' &&
    typeof m.modelHash === 'string' &&
    Number.isInteger(m.index) &&
    Number.isInteger(m.count) &&
    Array.isArray(m.assignment) &&
    m.assignment.length === m.count &&
    m.assignment.every((keys) => Array.isArray(keys) && keys.every((k) => typeof k === 'string'));
  if (!ok) throw conflict(`${file}: its shard description is damaged`, file, 'run the shard again into a new file');
  return m as ShardMeta;
}

/**
 * Make (or reopen) a shard file: a copy of `input` (VACUUM INTO, so nothing is read half-written) with the shard's
 * description. An existing file is reopened only when it describes the same shard of the same run, so a task that
 * runs again continues what it finished (its items are kept).
 */
export function prepareShardFile(input: DB, inputFile: string, dest: string, meta: ShardMeta): 'created' | 'resumed' {
  const state = inspectProjectFile(dest);
  if (state.kind === 'project') {
    const db = openForReading(dest);
    try {
      const have = readShardMeta(db, dest);
      const same = have && have.runUid === meta.runUid && have.index === meta.index && have.count === meta.count && canonicalJson(have.config) === canonicalJson(meta.config);
      if (!same) {
        throw new CliffscopeError('bad-argument', `${dest} already holds ${have ? `shard ${have.index}/${have.count} of run ${have.runUid}` : 'a project that is not a shard file'}`, {
          file: dest,
          hint: 'give another --shard-out file, or delete this one to start the shard again',
        });
      }
    } finally {
      db.close();
    }
    return 'resumed';
  }
  if (state.kind !== 'missing') throw new CliffscopeError('bad-argument', `${dest} exists and is not a project file; it will not be overwritten`, { file: dest });
  if (path.resolve(dest) === path.resolve(inputFile)) throw new CliffscopeError('bad-argument', `the shard file cannot be the project itself (${dest})`, { file: dest });
  fs.mkdirSync(path.dirname(path.resolve(dest)), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}`;
  fs.rmSync(tmp, { force: true });
  try {
    input.prepare('VACUUM INTO ?').run(tmp);
    const db = openChecked(tmp, inspectProjectFile(tmp));
    try {
      db.prepare(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(SHARD_META_KEY, canonicalJson(meta));
      // Keep the file small: what other runs keep for themselves (their items — a probe run's features — and
      // per-token head maps) is read by no other run. Their transcripts, traces and averaged maps stay: inputs.
      db.prepare(`DELETE FROM run_items`).run();
      db.prepare(`UPDATE head_maps SET per_token = NULL, tokens = NULL WHERE per_token IS NOT NULL`).run();
      db.exec('VACUUM');
    } finally {
      db.close();
    }
    fs.renameSync(tmp, dest);
  } finally {
    for (const f of [tmp, `${tmp}-wal`, `${tmp}-shm`]) fs.rmSync(f, { force: true });
  }
  return 'created';
}

export interface ShardFileMerge {
  file: string;
  index: number;
  /** Items of the run this file brought in, and those already in the project with the same content. */
  added: number;
  identical: number;
}

export interface MergeTarget {
  runId: number;
  created: boolean;
}

/**
 * The project's run for a set of shards: refuses shards that disagree among themselves, or with the run already
 * in the project (another model, another config, another kind). Reads only; nothing is written.
 */
export function checkShardSet(db: DB, projectFile: string, shards: { file: string; meta: ShardMeta; modelHash: string }[]): void {
  const [first] = shards;
  if (!first) throw new CliffscopeError('bad-argument', 'give at least one shard file to merge');
  for (const s of shards) {
    const why =
      s.meta.runUid !== first.meta.runUid
        ? `it belongs to run ${s.meta.runUid}, not ${first.meta.runUid} (${first.file})`
        : s.meta.modelHash !== first.meta.modelHash
          ? `it was made with model ${s.meta.modelHash.slice(0, 12)}, ${first.file} with ${first.meta.modelHash.slice(0, 12)}`
          : canonicalJson(s.meta.config) !== canonicalJson(first.meta.config)
            ? `its config differs from ${first.file}'s`
            : s.meta.count !== first.meta.count || canonicalJson(s.meta.assignment) !== canonicalJson(first.meta.assignment)
              ? `it splits the run into other shards than ${first.file}`
              : null;
    if (why) throw new CliffscopeError('bad-argument', `${s.file}: not a shard of the same run: ${why}`, { file: s.file, hint: 'merge the shards of one run at a time' });
  }
  const run = db.prepare(`SELECT r.*, m.content_hash AS model_hash FROM runs r LEFT JOIN models m ON m.id = r.model_id WHERE r.uid = ?`).get(first.meta.runUid) as Row | undefined;
  if (!run) return;
  const why =
    run.kind !== first.meta.kind
      ? `the project's run #${run.id} with that uid is a ${run.kind} run, the shards are ${first.meta.kind}`
      : run.model_hash !== null && run.model_hash !== first.meta.modelHash
        ? `the project's run #${run.id} was made with model ${String(run.model_hash).slice(0, 12)}, the shards with ${first.meta.modelHash.slice(0, 12)}`
        : String(run.config) !== canonicalJson(first.meta.config)
          ? `the project's run #${run.id} has another config`
          : null;
  if (why) throw new CliffscopeError('bad-argument', `${first.file}: cannot merge into ${projectFile}: ${why}`, { file: first.file, hint: 'merge shards into the project they were planned from' });
}

/**
 * Merge one shard file's rows of its run into the project (creating the run, as 'pending', when the project does
 * not have it yet). One transaction: a refused shard changes nothing.
 */
export function mergeShardFile(db: DB, file: string, src: DB, meta: ShardMeta): ShardFileMerge & MergeTarget {
  return db
    .transaction(() => {
      const srcRun = src.prepare(`SELECT * FROM runs WHERE uid = ?`).get(meta.runUid) as Row | undefined;
      if (!srcRun) return { file, index: meta.index, added: 0, identical: 0, ...targetRun(db, file, src, meta, null) };
      const target = targetRun(db, file, src, meta, srcRun);
      const counts = copyRunRows(db, file, src, Number(srcRun.id), target.runId);
      return { file, index: meta.index, ...counts, ...target };
    })
    .immediate();
}

/** Open a shard file for reading and check it is one. */
export function openShardFile(file: string): { db: DB; meta: ShardMeta; modelHash: string } {
  const state = inspectProjectFile(file);
  if (state.kind !== 'project') throw new CliffscopeError('bad-argument', `${file} is not a shard file (${state.kind === 'missing' ? 'no such file' : 'empty file'})`, { file });
  const db = openForReading(file);
  // A shard is read once, front to back: a small page cache is enough, and merging a 100-task array opens 100 shard
  // files at once, where better-sqlite3's default of 16 MiB each would add up to 1.6 GB.
  db.pragma('cache_size = -2048');
  try {
    const meta = readShardMeta(db, file);
    if (!meta) throw new CliffscopeError('bad-argument', `${file} is a project, not a shard file`, { file, hint: 'shard files are what `--shard I/N` writes (see --shard-out)' });
    return { db, meta, modelHash: meta.modelHash };
  } catch (e) {
    db.close();
    throw e;
  }
}

// ---- copying one run's rows -------------------------------------------------------------------------------------

function modelId(db: DB, src: DB, srcModelId: unknown): number | null {
  if (srcModelId === null || srcModelId === undefined) return null;
  const m = src.prepare(`SELECT * FROM models WHERE id = ?`).get(srcModelId) as Row;
  const have = db.prepare(`SELECT id FROM models WHERE content_hash = ? AND compile_options = ?`).pluck().get(m.content_hash, m.compile_options) as number | undefined;
  if (have !== undefined) return have;
  const { id: _drop, ...rest } = m;
  const cols = Object.keys(rest);
  return Number(db.prepare(`INSERT INTO models (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`).run(...cols.map((c) => rest[c])).lastInsertRowid);
}

type Outside = 'dataset_items' | 'transcripts' | 'probes' | 'runs' | 'datasets';

const IDENTITY: Record<Outside, { noun: string; sql: string }> = {
  dataset_items: { noun: 'dataset item', sql: `SELECT d.content_hash || ':' || i.idx FROM dataset_items i JOIN datasets d ON d.id = i.dataset_id WHERE i.id = ?` },
  datasets: { noun: 'dataset', sql: `SELECT content_hash FROM datasets WHERE id = ?` },
  transcripts: { noun: 'transcript', sql: `SELECT uid FROM transcripts WHERE id = ?` },
  probes: { noun: 'probe', sql: `SELECT uid FROM probes WHERE id = ?` },
  runs: { noun: 'run', sql: `SELECT uid FROM runs WHERE id = ?` },
};

/**
 * Rows the run refers to outside itself must be the same rows in the project: same id and the same identity (a
 * dataset item's dataset content and position, a transcript's, probe's or run's uid). Checked once per row, before
 * the rows that refer to them are streamed (a connection cannot query while it iterates).
 */
class OutsideRows {
  private readonly checked = new Set<string>();

  constructor(
    private readonly db: DB,
    private readonly src: DB,
    private readonly file: string,
  ) {}

  /** Check every id the query over the shard's run returns (one column). */
  checkAll(what: Outside, sql: string, srcRunId: number, except: ReadonlyMap<number, number> = new Map()): void {
    for (const id of this.src.prepare(sql).pluck().all(srcRunId) as unknown[]) if (id !== null && !except.has(Number(id))) this.check(what, id);
  }

  check(what: Outside, id: unknown): number | null {
    if (id === null || id === undefined) return null;
    const key = `${what}:${id}`;
    if (this.checked.has(key)) return Number(id);
    const mine = this.src.prepare(IDENTITY[what].sql).pluck().get(id);
    const theirs = this.db.prepare(IDENTITY[what].sql).pluck().get(id);
    if (mine === undefined || mine !== theirs) {
      throw conflict(
        `${this.file}: its run refers to ${IDENTITY[what].noun} #${id}, which ${theirs === undefined ? 'the project does not have' : 'is another one in the project'}`,
        this.file,
        'merge shards into the project they were planned from, before its inputs change',
      );
    }
    this.checked.add(key);
    return Number(id);
  }

  /** An id checked before (while the shard is being iterated, nothing new may be asked of it). */
  known(what: Outside, id: unknown): number | null {
    if (id === null || id === undefined) return null;
    if (!this.checked.has(`${what}:${id}`)) throw new Error(`${what} #${id} was not checked before streaming`);
    return Number(id);
  }
}

function targetRun(db: DB, file: string, src: DB, meta: ShardMeta, srcRun: Row | null): MergeTarget {
  const outside = new OutsideRows(db, src, file);
  const have = db.prepare(`SELECT id FROM runs WHERE uid = ?`).pluck().get(meta.runUid) as number | undefined;
  if (have !== undefined) return { runId: have, created: false };
  if (!srcRun) throw conflict(`${file}: the shard never started its run (it holds no run ${meta.runUid})`, file, 'run the shard again');
  const id = db
    .prepare(`INSERT INTO runs (uid, kind, name, tags, model_id, dataset_id, parent_run_id, config, versions, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')`)
    .run(
      meta.runUid,
      meta.kind,
      srcRun.name,
      srcRun.tags ?? '[]', // a shard file of format 2 has none
      modelId(db, src, srcRun.model_id),
      outside.check('datasets', srcRun.dataset_id),
      outside.check('runs', srcRun.parent_run_id),
      canonicalJson(meta.config),
      srcRun.versions,
    ).lastInsertRowid;
  return { runId: Number(id), created: true };
}

/** How two rows that should be the same differ ('' when they do not), for the conflict message. */
function differs(a: Row, b: Row, columns: readonly string[]): string {
  for (const c of columns) {
    const x = a[c];
    const y = b[c];
    const equal = Buffer.isBuffer(x) && Buffer.isBuffer(y) ? x.equals(y) : x === y;
    if (!equal) return c;
  }
  return '';
}

interface Copied {
  added: number;
  identical: number;
}

function copyRunRows(db: DB, file: string, src: DB, srcRunId: number, runId: number): Copied {
  const iterate = (sql: string) => src.prepare(sql).iterate(srcRunId) as IterableIterator<Row>;
  // Transcripts the run made: by (item, setting); their new ids, for the rows that point at them.
  const madeHere = new Map<number, number>();
  const transcriptCols = ['prompt', 'token_ids', 'prompt_tokens', 'text', 'thinking_start', 'thinking_end', 'answer_boundary', 'finish_reason'] as const;
  const findTranscript = db.prepare(`SELECT * FROM transcripts WHERE run_id = ? AND item_id IS ? AND head_scale_key IS ?`);
  const insertTranscript = db.prepare(
    `INSERT INTO transcripts (uid, run_id, item_id, prompt, token_ids, prompt_tokens, text, thinking_start, thinking_end, answer_boundary, finish_reason, head_scale_key, created_at)
     VALUES (@uid, @run_id, @item_id, @prompt, @token_ids, @prompt_tokens, @text, @thinking_start, @thinking_end, @answer_boundary, @finish_reason, @head_scale_key, @created_at)`,
  );
  const outside = new OutsideRows(db, src, file);
  outside.checkAll('dataset_items', `SELECT DISTINCT item_id FROM transcripts WHERE run_id = ?`, srcRunId);
  for (const t of iterate(`SELECT * FROM transcripts WHERE run_id = ? ORDER BY id`)) {
    const have = findTranscript.get(runId, t.item_id, t.head_scale_key) as Row | undefined;
    if (have) {
      const d = differs(t, have, transcriptCols);
      if (d) throw conflict(`${file}: its transcript of item #${t.item_id}${t.head_scale_key ? ` under ${t.head_scale_key}` : ''} differs from the one already merged (${d})`, file, 'a shard of another run or of a changed model; merge only shards of one run');
      madeHere.set(Number(t.id), Number(have.id));
    } else {
      madeHere.set(Number(t.id), Number(insertTranscript.run({ ...t, run_id: runId }).lastInsertRowid));
    }
  }
  // Other runs' transcripts and the probes the rows below point at, checked before they are streamed.
  for (const table of ['traces', 'head_maps', 'verdicts']) {
    outside.checkAll('transcripts', `SELECT DISTINCT transcript_id FROM ${table} WHERE run_id = ?`, srcRunId, madeHere);
    if (table !== 'verdicts') outside.checkAll('probes', `SELECT DISTINCT probe_id FROM ${table} WHERE run_id = ?`, srcRunId);
  }
  for (const p of src.prepare(`SELECT payload FROM run_items WHERE run_id = ?`).pluck().all(srcRunId) as string[]) {
    const id = payloadTranscript(p);
    if (id !== null && !madeHere.has(id)) outside.check('transcripts', id);
  }
  const transcript = (id: unknown): number | null => {
    if (id === null || id === undefined) return null;
    return madeHere.get(Number(id)) ?? outside.known('transcripts', id);
  };
  const probe = (id: unknown): number | null => outside.known('probes', id);

  // Rows that hang off transcripts: matched on (transcript, what), compared on their content.
  const children: { table: string; key: string[]; content: string[]; refs: (r: Row) => Row }[] = [
    {
      table: 'traces',
      key: ['transcript_id', 'probe_id'],
      content: ['resid_index', 'scores', 'plateau', 'final', 'ms', 'steepest_drop_pos', 'cliff_width'],
      refs: (r) => ({ transcript_id: transcript(r.transcript_id), probe_id: probe(r.probe_id) }),
    },
    {
      table: 'head_maps',
      key: ['transcript_id', 'probe_id', 'position_rule'],
      content: ['layers', 'heads', 'scores', 'tokens', 'per_token'],
      refs: (r) => ({ transcript_id: transcript(r.transcript_id), probe_id: probe(r.probe_id) }),
    },
    { table: 'verdicts', key: ['transcript_id', 'judge'], content: ['verdict', 'harmful', 'score', 'detail'], refs: (r) => ({ transcript_id: transcript(r.transcript_id) }) },
    // Every shard records the sweep's cells; their metrics are recomputed from the merged items.
    { table: 'sweep_cells', key: ['head_scale_key'], content: ['control', 'k', 'fraction', 'gamma', 'seed', 'heads'], refs: () => ({}) },
  ];
  for (const child of children) {
    const where = child.key.map((k) => `${k} IS @${k}`).join(' AND ');
    const find = db.prepare(`SELECT * FROM ${child.table} WHERE run_id = @run_id AND ${where}`);
    let insert: ReturnType<DB['prepare']> | null = null;
    for (const r of iterate(`SELECT * FROM ${child.table} WHERE run_id = ? ORDER BY id`)) {
      // An averaged head map (no transcript) is what merging recomputes from the per-transcript maps.
      if (child.table === 'head_maps' && r.transcript_id === null) continue;
      const { id: _drop, ...row }: Row = { ...r, run_id: runId, ...child.refs(r) };
      if (child.table === 'sweep_cells') row.metrics = '{}';
      const have = find.get(row) as Row | undefined;
      if (have) {
        const d = differs(row, have, child.content);
        if (d) throw conflict(`${file}: its ${child.table.replace('_', ' ').replace(/s$/, '')} for ${child.key.map((k) => `${k} ${String(row[k])}`).join(', ')} differs from the one already merged (${d})`, file);
        continue;
      }
      const cols = Object.keys(row);
      insert ??= db.prepare(`INSERT INTO ${child.table} (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`);
      insert.run(row);
    }
  }

  // The items: by key. A done item replaces a failed one (the shard retried it); two done items must agree.
  const counts: Copied = { added: 0, identical: 0 };
  const findItem = db.prepare(`SELECT * FROM run_items WHERE run_id = ? AND key = ?`);
  const insertItem = db.prepare(`INSERT INTO run_items (run_id, key, status, payload, error, created_at) VALUES (?, ?, ?, ?, ?, ?)`);
  const replaceItem = db.prepare(`UPDATE run_items SET status = ?, payload = ?, error = ?, created_at = ? WHERE id = ?`);
  for (const it of iterate(`SELECT * FROM run_items WHERE run_id = ? ORDER BY id`)) {
    const payload = remapPayload(String(it.payload), transcript);
    const have = findItem.get(runId, it.key) as Row | undefined;
    if (!have) {
      insertItem.run(runId, it.key, it.status, payload, it.error, it.created_at);
      if (it.status === 'done') counts.added++;
    } else if (have.status === 'done' && it.status === 'done') {
      if (have.payload !== payload) throw conflict(`${file}: item ${String(it.key)} differs from the one already merged`, file);
      counts.identical++;
    } else if (have.status !== 'done' && it.status === 'done') {
      replaceItem.run(it.status, payload, it.error, it.created_at, have.id);
      counts.added++;
    }
  }
  return counts;
}

/** The transcript an item payload names by row id (`transcriptId`), if any. */
function payloadTranscript(payload: string): number | null {
  const value = parseJson<unknown>(payload, {});
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const id = (value as { transcriptId?: unknown }).transcriptId;
  return typeof id === 'number' ? id : null;
}

/** An item payload with its `transcriptId` as the project's id for that transcript. */
function remapPayload(payload: string, transcript: (id: unknown) => number | null): string {
  const id = payloadTranscript(payload);
  if (id === null) return payload;
  return canonicalJson({ ...parseJson<Record<string, unknown>>(payload, {}), transcriptId: transcript(id) });
}

/** Keys of the run's planned items that the project's run does not hold done yet. */
export function missingItems(db: DB, runId: number, meta: ShardMeta): string[] {
  const done = new Set(db.prepare(`SELECT key FROM run_items WHERE run_id = ? AND status = 'done'`).pluck().all(runId) as string[]);
  return meta.assignment.flat().filter((k) => !done.has(k));
}
