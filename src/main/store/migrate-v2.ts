/**
 * Project format 2's steps past its SQL (schema.ts): the runs table loses its CHECK on kind (kinds are checked by the
 * application's registry, so adding one needs no migration) and "generate" runs become "transcripts"; the JSON stored
 * with runs takes the shapes the run kinds' specs (src/shared/runs/) read, so every run made before still reports and
 * resumes. Runs this does not recognise are left as they are (their report then names what does not fit).
 */
import type Database from 'better-sqlite3';
import { canonicalJson } from './json.js';

/** Format 1's runs table checked `kind IN (…)`; that clause, exactly as format 1 wrote it. */
const V1_KIND_CHECK = " CHECK (kind IN ('generate', 'probe', 'trace', 'heads', 'ablate', 'judge', 'select'))";

/**
 * Drop the CHECK on runs.kind in place: SQLite's documented way to remove a CHECK (lang_altertable, "otherwise
 * remove a constraint"): edit the table's SQL in sqlite_schema and bump schema_version, inside the migration's
 * transaction. Rebuilding the table instead would cascade deletes into everything a run owns.
 */
function dropKindCheck(db: Database.Database): void {
  const table = db.prepare(`SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'runs'`).pluck().get() as string;
  if (!table.includes(V1_KIND_CHECK)) return;
  const version = db.pragma('schema_version', { simple: true }) as number;
  db.unsafeMode(true); // better-sqlite3's defensive mode otherwise refuses writable_schema
  try {
    db.pragma('writable_schema = ON');
    db.prepare(`UPDATE sqlite_schema SET sql = ? WHERE type = 'table' AND name = 'runs'`).run(table.replace(V1_KIND_CHECK, ''));
    db.pragma(`schema_version = ${version + 1}`);
    db.pragma('writable_schema = OFF');
  } finally {
    db.unsafeMode(false);
  }
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The sampler's own settings ({doSample, temperature, topP, topK, repetitionPenalty}) → the API's Sampling
 * (omitted = greedy; a greedy run keeps only a repetition penalty other than 1).
 */
function apiSampling(s: Json): Json | undefined {
  if (s.doSample !== false) {
    const { doSample: _drop, ...rest } = s;
    return rest;
  }
  return typeof s.repetitionPenalty === 'number' && s.repetitionPenalty !== 1 ? { repetitionPenalty: s.repetitionPenalty } : undefined;
}

/** A flat γ row [L·H] → the [layers][heads] matrix, given the model's heads per layer. */
function nested(flat: unknown[], heads: unknown): unknown[] | null {
  if (typeof heads !== 'number' || heads < 1 || flat.length % heads !== 0) return null;
  return Array.from({ length: flat.length / heads }, (_, l) => flat.slice(l * heads, (l + 1) * heads));
}

function runConfig(kind: string, cfg: Json, modelConfig: Json): boolean {
  let changed = false;
  if (kind === 'probe' && 'layers' in cfg) {
    cfg.residIndices = cfg.layers;
    delete cfg.layers;
    changed = true;
  }
  if (isObject(cfg.sampling) && 'doSample' in cfg.sampling) {
    const s = apiSampling(cfg.sampling);
    if (s) cfg.sampling = s;
    else delete cfg.sampling;
    changed = true;
  }
  if (kind === 'transcripts' && Array.isArray(cfg.settings)) {
    for (const setting of cfg.settings) {
      if (!isObject(setting) || !Array.isArray(setting.headScale) || setting.headScale.some(Array.isArray)) continue;
      const m = nested(setting.headScale, modelConfig.numHeads);
      if (m) {
        setting.headScale = m;
        changed = true;
      }
    }
  }
  return changed;
}

/** A probe run's summary: each probe's `layer` and the best `layer` are residual-stack indices. */
function probeSummary(summary: Json): boolean {
  if (!Array.isArray(summary.probes)) return false;
  for (const p of summary.probes) {
    if (isObject(p) && 'layer' in p) {
      p.residIndex = p.layer;
      delete p.layer;
    }
  }
  if ('bestLayer' in summary) {
    summary.bestResidIndex = summary.bestLayer;
    delete summary.bestLayer;
  }
  return true;
}

export function migrateV2(db: Database.Database): void {
  dropKindCheck(db);
  db.prepare(`UPDATE runs SET kind = 'transcripts' WHERE kind = 'generate'`).run();
  const setConfig = db.prepare(`UPDATE runs SET config = ? WHERE id = ?`);
  const runs = db.prepare(`SELECT r.id, r.kind, r.config, m.config AS model FROM runs r LEFT JOIN models m ON m.id = r.model_id`).all() as { id: number; kind: string; config: string; model: string | null }[];
  for (const r of runs) {
    const cfg = JSON.parse(r.config) as unknown;
    if (isObject(cfg) && runConfig(r.kind, cfg, (JSON.parse(r.model ?? '{}') as Json) ?? {})) setConfig.run(canonicalJson(cfg), r.id);
  }
  const setPayload = db.prepare(`UPDATE run_items SET payload = ? WHERE id = ?`);
  const summaries = db.prepare(`SELECT i.id, i.payload FROM run_items i JOIN runs r ON r.id = i.run_id WHERE r.kind = 'probe' AND i.key = 'summary'`).all() as { id: number; payload: string }[];
  for (const i of summaries) {
    const summary = JSON.parse(i.payload) as unknown;
    if (isObject(summary) && probeSummary(summary)) setPayload.run(canonicalJson(summary), i.id);
  }
}
