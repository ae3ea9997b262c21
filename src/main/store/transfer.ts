/**
 * Moving data between project files: a whole-project copy, one run (with what it refers to) as its own file, and
 * merging such a file into another project with fresh ids.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { CliffscopeError } from '../engine/errors.js';
import { createProjectFile, inspectProjectFile, openChecked, openForReading, type DB } from './project-file.js';
import { SCHEMA_VERSION } from './schema.js';

type Row = Record<string, unknown>;

function refuseExisting(dest: string): void {
  if (fs.existsSync(dest)) throw new CliffscopeError('bad-argument', `${dest} already exists; it will not be overwritten`, { file: dest, hint: 'choose a new file name' });
  const folder = path.dirname(path.resolve(dest));
  if (!fs.existsSync(folder)) throw new CliffscopeError('missing-file', `cannot write ${dest}: the folder ${folder} does not exist`, { file: dest, hint: 'create the folder first, or choose another destination' });
}

/** VACUUM INTO: a compact, consistent copy (it reads through the WAL), safe while the project is open. */
export function exportProjectFile(db: DB, file: string, dest: string): void {
  refuseExisting(dest);
  if (path.resolve(dest) === path.resolve(file)) throw new CliffscopeError('bad-argument', `cannot export ${file} onto itself`, { file });
  db.prepare('VACUUM INTO ?').run(dest);
}

const idList = (ids: Iterable<number>) => JSON.stringify([...ids]);

function column(db: DB, sql: string, ...params: unknown[]): number[] {
  return db
    .prepare(sql)
    .pluck()
    .all(...params)
    .filter((v) => v !== null)
    .map(Number);
}

/** The tables whose row ids runs keep in their JSON (configs, summaries, item keys and payloads, judge ids). */
export type IdTable = 'run' | 'probe' | 'dataset' | 'item' | 'transcript';
/** An id as it should read: the same id when collecting references, the new id when importing. */
export type IdMap = (table: IdTable, id: number) => number;

/**
 * Where a run of each kind keeps row ids that the schema's foreign keys do not cover, each call returning its JSON
 * (or key) with every such id passed through `map`. Implemented beside the pipelines that write those formats
 * (pipelines/references.ts); the store only moves rows.
 */
export interface RunReferences {
  config(kind: string, config: unknown, map: IdMap): unknown;
  itemKey(kind: string, key: string, map: IdMap): string;
  itemPayload(kind: string, key: string, payload: unknown, map: IdMap): unknown;
  /** verdicts.judge: a probe judge's id names its probe. */
  judge(judge: string, map: IdMap): string;
  verdictDetail(detail: unknown, map: IdMap): unknown;
  /** sweep_cells.metrics, keyed by judge ids. */
  metrics(metrics: unknown, map: IdMap): unknown;
}

const parseJson = (text: unknown): unknown => JSON.parse(String(text));

/**
 * Ids of every row one run's export must hold: the run, every run it stands on (its parent, the runs, probes and
 * datasets its config names, the runs that made the transcripts and probes its rows refer to, and so on up) with
 * all their rows, the models of those runs and probes, and whole datasets.
 */
function runClosure(db: DB, runId: number, refs: RunReferences) {
  const runs = new Set<number>();
  const probes = new Set<number>();
  const datasets = new Set<number>();
  const items = new Set<number>();
  const queue = [runId];
  const addRun = (id: number) => {
    if (!runs.has(id)) queue.push(id);
  };
  const addProbe = (id: number) => {
    probes.add(id);
    for (const owner of column(db, `SELECT run_id FROM probes WHERE id = ?`, id)) addRun(owner);
  };
  while (queue.length) {
    const id = queue.pop()!;
    if (runs.has(id)) continue;
    const run = db.prepare(`SELECT kind, config, parent_run_id, dataset_id FROM runs WHERE id = ?`).get(id) as Row | undefined;
    if (!run) continue; // a reference to a run deleted since: nothing to take along
    runs.add(id);
    if (run.parent_run_id !== null) addRun(Number(run.parent_run_id));
    if (run.dataset_id !== null) datasets.add(Number(run.dataset_id));
    refs.config(String(run.kind), parseJson(run.config), (table, ref) => {
      if (table === 'run') addRun(ref);
      else if (table === 'probe') addProbe(ref);
      else if (table === 'dataset') datasets.add(ref);
      else if (table === 'item') items.add(ref);
      else for (const owner of column(db, `SELECT run_id FROM transcripts WHERE id = ?`, ref)) addRun(owner);
      return ref;
    });
    // Rows that name transcripts or probes of other runs bring those runs along.
    for (const owner of column(
      db,
      `SELECT run_id FROM transcripts WHERE id IN (
         SELECT transcript_id FROM traces WHERE run_id = @run UNION SELECT transcript_id FROM head_maps WHERE run_id = @run
         UNION SELECT transcript_id FROM verdicts WHERE run_id = @run UNION SELECT transcript_id FROM selections WHERE run_id = @run)`,
      { run: id },
    )) addRun(owner);
    for (const probe of column(db, `SELECT probe_id FROM traces WHERE run_id = @run UNION SELECT probe_id FROM head_maps WHERE run_id = @run UNION SELECT id FROM probes WHERE run_id = @run`, { run: id })) addProbe(probe);
  }
  const runList = idList(runs);
  const transcripts = new Set(column(db, `SELECT id FROM transcripts WHERE run_id IN (SELECT value FROM json_each(?))`, runList));
  const models = new Set([
    ...column(db, `SELECT model_id FROM runs WHERE id IN (SELECT value FROM json_each(?))`, runList),
    ...column(db, `SELECT model_id FROM probes WHERE id IN (SELECT value FROM json_each(?))`, idList(probes)),
  ]);
  // Whole datasets, not just the items used: a run moved to another project can then be resumed there.
  for (const d of column(
    db,
    `SELECT DISTINCT dataset_id FROM dataset_items WHERE id IN (SELECT value FROM json_each(?))
       OR id IN (SELECT item_id FROM transcripts WHERE run_id IN (SELECT value FROM json_each(?)))
       OR id IN (SELECT item_id FROM selections WHERE run_id IN (SELECT value FROM json_each(?)))`,
    idList(items),
    runList,
    runList,
  )) datasets.add(d);
  return { runs, transcripts, probes, models, datasets };
}

/** A new project file with one run and everything it stands on (runClosure), ids unchanged. */
export function exportRunTo(db: DB, runId: number, dest: string, refs: RunReferences): void {
  refuseExisting(dest);
  const ids = runClosure(db, runId, refs);
  createProjectFile(dest);
  db.prepare('ATTACH DATABASE ? AS dest').run(dest);
  let ok = false;
  try {
    db.transaction(() => {
      db.pragma('defer_foreign_keys = ON'); // copy table by table; references are checked at commit
      const copyIds = (table: string, set: Set<number>) =>
        db.prepare(`INSERT INTO dest.${table} SELECT * FROM main.${table} WHERE id IN (SELECT value FROM json_each(?))`).run(idList(set));
      copyIds('models', ids.models);
      copyIds('datasets', ids.datasets);
      db.prepare(`INSERT INTO dest.dataset_items SELECT * FROM main.dataset_items WHERE dataset_id IN (SELECT value FROM json_each(?))`).run(idList(ids.datasets));
      copyIds('runs', ids.runs);
      copyIds('probes', ids.probes);
      copyIds('transcripts', ids.transcripts);
      for (const t of ['run_items', 'traces', 'head_maps', 'sweep_cells', 'verdicts', 'selections']) {
        db.prepare(`INSERT INTO dest.${t} SELECT * FROM main.${t} WHERE run_id IN (SELECT value FROM json_each(?))`).run(idList(ids.runs));
      }
      // A copy is nobody's work in progress.
      db.prepare(`UPDATE dest.runs SET status = 'interrupted', owner_host = NULL, owner_pid = NULL, owner_token = NULL WHERE status = 'running'`).run();
      const uid = db.prepare(`SELECT uid FROM main.runs WHERE id = ?`).pluck().get(runId) as string;
      db.prepare(`INSERT INTO dest.meta (key, value) VALUES ('exported_run', ?)`).run(uid);
    }).immediate();
    ok = true;
  } finally {
    db.prepare('DETACH DATABASE dest').run();
    // No half-made export left behind under the name the user asked for.
    if (!ok) for (const f of [dest, `${dest}-wal`, `${dest}-shm`]) fs.rmSync(f, { force: true });
  }
}

export interface ImportSummary {
  runs: { sourceId: number; id: number; uid: string; kind: string; imported: boolean }[];
  models: { added: number; reused: number };
  datasets: { added: number; reused: number };
  probes: { added: number; reused: number };
  transcripts: { added: number; reused: number };
}

/**
 * Merge another project file into `db`. Everything gets new ids; things already here are reused rather than
 * duplicated: models with the same content hash and compile options, datasets with the same content, and runs,
 * probes and transcripts with the same uid (rows of a run already here are not copied again).
 */
export function importRunFrom(db: DB, srcFile: string, refs: RunReferences): ImportSummary {
  const mainFile = db.name;
  if (path.resolve(srcFile) === path.resolve(mainFile)) throw new CliffscopeError('bad-argument', `cannot import ${srcFile} into itself`, { file: srcFile });
  const state = inspectProjectFile(srcFile);
  if (state.kind !== 'project') throw new CliffscopeError('bad-project', `${srcFile} is not a Cliffscope project (${state.kind === 'missing' ? 'no such file' : 'empty file'})`, { file: srcFile });

  // An older file is upgraded in a temporary copy: importing must not change the source.
  let tmpDir: string | null = null;
  let src: DB;
  if (state.version < SCHEMA_VERSION) {
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-import-'));
    const copy = path.join(tmpDir, 'src.cliffscope');
    const reader = openForReading(srcFile, { allowVacuumInto: true });
    try {
      reader.prepare('VACUUM INTO ?').run(copy);
    } finally {
      reader.close();
    }
    src = openChecked(copy, { kind: 'project', version: state.version });
  } else {
    src = openForReading(srcFile);
  }
  try {
    return db.transaction(() => {
      db.pragma('defer_foreign_keys = ON');
      return merge(db, src, srcFile, refs);
    }).immediate();
  } finally {
    src.close();
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}

function merge(db: DB, src: DB, srcFile: string, refs: RunReferences): ImportSummary {
  const summary: ImportSummary = {
    runs: [],
    models: { added: 0, reused: 0 },
    datasets: { added: 0, reused: 0 },
    probes: { added: 0, reused: 0 },
    transcripts: { added: 0, reused: 0 },
  };
  const inserters = new Map<string, Database.Statement>();
  /** Insert a source row with new ids (`changes`), letting this project assign the primary key. */
  const insertRow = (table: string, row: Row, changes: Row = {}): number => {
    const { id: _drop, ...rest } = { ...row, ...changes };
    const cols = Object.keys(rest);
    const sql = `INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`;
    let s = inserters.get(sql);
    if (!s) inserters.set(sql, (s = db.prepare(sql)));
    return Number(s.run(...cols.map((c) => rest[c])).lastInsertRowid);
  };
  const mapper = (what: string, m: Map<number, number>) => (id: unknown, nullable = false): number | null => {
    if (id === null || id === undefined) {
      if (nullable) return null;
      throw new CliffscopeError('bad-project', `${srcFile}: a row has no ${what}`, { file: srcFile });
    }
    const to = m.get(Number(id));
    if (to === undefined) throw new CliffscopeError('bad-project', `${srcFile}: a row refers to ${what} #${id}, which the file does not hold`, { file: srcFile });
    return to;
  };
  // Streams the source (large tables need not fit in memory). A connection runs one query at a time, so loops
  // that query the source again inside use srcAll for the outer list.
  const each = (sql: string, ...params: unknown[]) => src.prepare(sql).iterate(...params) as IterableIterator<Row>;
  const srcAll = (sql: string) => src.prepare(sql).all() as Row[];
  const one = <T>(sql: string, ...params: unknown[]) => db.prepare(sql).get(...params) as T | undefined;

  // Models: the same weights + compile options are the same model.
  const models = new Map<number, number>();
  for (const m of each(`SELECT * FROM models ORDER BY id`)) {
    const have = one<{ id: number }>(`SELECT id FROM models WHERE content_hash = ? AND compile_options = ?`, m.content_hash, m.compile_options);
    models.set(Number(m.id), have ? have.id : insertRow('models', m));
    summary.models[have ? 'reused' : 'added']++;
  }

  // Datasets: the same content is the same dataset (its items then map by position).
  const datasets = new Map<number, number>();
  const items = new Map<number, number>();
  for (const d of srcAll(`SELECT * FROM datasets ORDER BY id`)) {
    const have = one<{ id: number }>(`SELECT id FROM datasets WHERE content_hash = ? AND item_count = ? ORDER BY id LIMIT 1`, d.content_hash, d.item_count);
    if (have) {
      datasets.set(Number(d.id), have.id);
      for (const it of each(`SELECT id, idx FROM dataset_items WHERE dataset_id = ?`, d.id)) {
        const to = one<{ id: number }>(`SELECT id FROM dataset_items WHERE dataset_id = ? AND idx = ?`, have.id, it.idx);
        if (to) items.set(Number(it.id), to.id);
      }
      summary.datasets.reused++;
      continue;
    }
    let name = String(d.name);
    for (let k = 1; one(`SELECT 1 FROM datasets WHERE name = ?`, name); k++) name = `${d.name} (imported${k > 1 ? ` ${k}` : ''})`;
    const id = insertRow('datasets', d, { name });
    datasets.set(Number(d.id), id);
    for (const it of each(`SELECT * FROM dataset_items WHERE dataset_id = ? ORDER BY idx`, d.id)) items.set(Number(it.id), insertRow('dataset_items', it, { dataset_id: id }));
    summary.datasets.added++;
  }

  // Runs: by uid. Parents are linked after all runs exist (a file need not list parents first).
  const runs = new Map<number, number>();
  const newRuns = new Set<number>(); // source ids of runs copied in full
  const parents: [number, unknown][] = [];
  const mapModel = mapper('model', models);
  const mapDataset = mapper('dataset', datasets);
  for (const r of each(`SELECT * FROM runs ORDER BY id`)) {
    const have = one<{ id: number }>(`SELECT id FROM runs WHERE uid = ?`, r.uid);
    let id: number;
    if (have) {
      id = have.id;
    } else {
      const running = r.status === 'running';
      id = insertRow('runs', r, {
        model_id: mapModel(r.model_id, true),
        dataset_id: mapDataset(r.dataset_id, true),
        parent_run_id: null,
        ...(running ? { status: 'interrupted', error: 'was running when it was exported', owner_host: null, owner_pid: null, owner_token: null } : {}),
      });
      newRuns.add(Number(r.id));
      parents.push([id, r.parent_run_id]);
    }
    runs.set(Number(r.id), id);
    summary.runs.push({ sourceId: Number(r.id), id, uid: String(r.uid), kind: String(r.kind), imported: !have });
  }
  const mapRun = mapper('run', runs);
  for (const [id, parent] of parents) {
    if (parent !== null) db.prepare(`UPDATE runs SET parent_run_id = ? WHERE id = ?`).run(mapRun(parent), id);
  }

  // Probes: by uid; a clashing (model, name, version) gets the next free version.
  const probes = new Map<number, number>();
  for (const p of each(`SELECT * FROM probes ORDER BY id`)) {
    const have = one<{ id: number }>(`SELECT id FROM probes WHERE uid = ?`, p.uid);
    if (have) {
      probes.set(Number(p.id), have.id);
      summary.probes.reused++;
      continue;
    }
    const modelId = mapModel(p.model_id);
    const clash = one(`SELECT 1 FROM probes WHERE model_id = ? AND name = ? AND version = ?`, modelId, p.name, p.version);
    const version = clash ? one<{ v: number }>(`SELECT MAX(version) + 1 AS v FROM probes WHERE model_id = ? AND name = ?`, modelId, p.name)!.v : p.version;
    probes.set(Number(p.id), insertRow('probes', p, { model_id: modelId, run_id: mapRun(p.run_id, true), version }));
    summary.probes.added++;
  }

  // Transcripts: by uid.
  const transcripts = new Map<number, number>();
  const mapItem = mapper('dataset item', items);
  for (const t of each(`SELECT * FROM transcripts ORDER BY id`)) {
    const have = one<{ id: number }>(`SELECT id FROM transcripts WHERE uid = ?`, t.uid);
    if (have) {
      transcripts.set(Number(t.id), have.id);
      summary.transcripts.reused++;
      continue;
    }
    transcripts.set(Number(t.id), insertRow('transcripts', t, { run_id: mapRun(t.run_id), item_id: mapItem(t.item_id, true) }));
    summary.transcripts.added++;
  }

  // What the newly imported runs produced.
  const mapTranscript = mapper('transcript', transcripts);
  const mapProbe = mapper('probe', probes);
  // Ids inside a run's JSON (config, item keys and payloads, judge ids) follow the rows they name.
  const maps = { run: runs, probe: probes, dataset: datasets, item: items, transcript: transcripts };
  const kinds = new Map(srcAll(`SELECT id, kind FROM runs`).map((r) => [Number(r.id), String(r.kind)]));
  const kindOf = (runId: unknown) => kinds.get(Number(runId))!;
  /** The new id of each id run #sourceId keeps in `where`; one the file lacks is named, not linked to nothing. */
  const idsOf = (sourceId: unknown, where: string): IdMap => (table, id) => {
    const to = maps[table].get(id);
    if (to === undefined) {
      // Files exported before runs took along what they stand on may lack it.
      throw new CliffscopeError('bad-project', `${srcFile}: run #${sourceId} (${kindOf(sourceId)}) names ${table} #${id} in ${where}, which the file does not hold`, {
        file: srcFile,
        hint: 'export the run again with this version of Cliffscope: it takes along every run, probe and dataset a run stands on',
      });
    }
    return to;
  };
  for (const sourceId of newRuns) {
    const config = refs.config(kindOf(sourceId), parseJson(src.prepare(`SELECT config FROM runs WHERE id = ?`).pluck().get(sourceId)), idsOf(sourceId, 'its config'));
    db.prepare(`UPDATE runs SET config = ? WHERE id = ?`).run(JSON.stringify(config), mapRun(sourceId));
  }
  const fresh = idList(newRuns);
  const children: [string, (r: Row) => Row][] = [
    ['run_items', (r) => ({ key: refs.itemKey(kindOf(r.run_id), String(r.key), idsOf(r.run_id, 'its items')), payload: JSON.stringify(refs.itemPayload(kindOf(r.run_id), String(r.key), parseJson(r.payload), idsOf(r.run_id, 'its items'))) })],
    ['traces', (r) => ({ transcript_id: mapTranscript(r.transcript_id), probe_id: mapProbe(r.probe_id) })],
    ['head_maps', (r) => ({ transcript_id: mapTranscript(r.transcript_id, true), probe_id: mapProbe(r.probe_id, true) })],
    ['sweep_cells', (r) => ({ metrics: JSON.stringify(refs.metrics(parseJson(r.metrics), idsOf(r.run_id, 'its sweep cells'))) })],
    ['verdicts', (r) => ({ transcript_id: mapTranscript(r.transcript_id), judge: refs.judge(String(r.judge), idsOf(r.run_id, 'its verdicts')), detail: JSON.stringify(refs.verdictDetail(parseJson(r.detail), idsOf(r.run_id, 'its verdicts'))) })],
    ['selections', (r) => ({ item_id: mapItem(r.item_id), transcript_id: mapTranscript(r.transcript_id, true) })],
  ];
  for (const [table, remap] of children) {
    for (const r of each(`SELECT * FROM ${table} WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY id`, fresh)) {
      insertRow(table, r, { run_id: mapRun(r.run_id), ...remap(r) });
    }
  }
  return summary;
}
