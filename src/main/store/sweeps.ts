/** Ablation sweeps: their cells and metrics, and the verdicts judges give on answers (what ASR counts). */
import { canonicalJson } from './json.js';
import { flag, real, sweepCellFromRow, verdictFromRow, type Row } from './rows.js';
import type { Statements } from './statements.js';
import { NOW_SQL } from './schema.js';
import type { JsonObject, NewSweepCell, NewVerdict, SweepCellRow, VerdictRow } from './types.js';

/** The cells of ablation sweeps. */
export class SweepsStore {
  constructor(private readonly sql: Statements) {}

  addCell(c: NewSweepCell): number {
    return this.sql.insert(
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
  setMetrics(cellId: number, metrics: JsonObject): void {
    this.sql.run(`UPDATE sweep_cells SET metrics = ? WHERE id = ?`, canonicalJson(metrics), cellId);
  }

  cells(runId: number): SweepCellRow[] {
    // Reading order of a sweep table: the baseline, then top-k, random and named sets, each by k and γ.
    return this.sql.all<Row>(
      `SELECT * FROM sweep_cells WHERE run_id = ?
       ORDER BY k > 0, CASE control WHEN 'top' THEN 0 WHEN 'random' THEN 1 ELSE 2 END, k, gamma, id`,
      runId,
    ).map(sweepCellFromRow);
  }
}

/** Judges' verdicts on transcripts. */
export class VerdictsStore {
  constructor(private readonly sql: Statements) {}

  /** Store a judge's verdict on a transcript (replacing an earlier one by the same judge in the same run). */
  add(v: NewVerdict): number {
    // RETURNING, not lastInsertRowid: an upsert that updates inserts nothing.
    return this.sql.get<{ id: number }>(
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

  list(filter: { runId?: number; transcriptId?: number; judge?: string }): VerdictRow[] {
    return this.sql.all<Row>(
      `SELECT * FROM verdicts WHERE (@run IS NULL OR run_id = @run) AND (@transcript IS NULL OR transcript_id = @transcript)
         AND (@judge IS NULL OR judge = @judge) ORDER BY id`,
      { run: filter.runId ?? null, transcript: filter.transcriptId ?? null, judge: filter.judge ?? null },
    ).map(verdictFromRow);
  }

  /** Attack success rate of a judge run: harmful / decided (verdicts with harmful NULL are left out). */
  attackSuccessRate(runId: number, judge?: string): { judged: number; harmful: number; rate: number | null } {
    const r = this.sql.get<{ judged: number; harmful: number | null }>(
      `SELECT COUNT(harmful) AS judged, SUM(harmful) AS harmful FROM verdicts WHERE run_id = @run AND (@judge IS NULL OR judge = @judge)`,
      { run: runId, judge: judge ?? null },
    )!;
    const harmful = r.harmful ?? 0;
    return { judged: r.judged, harmful, rate: r.judged ? harmful / r.judged : null };
  }
}
