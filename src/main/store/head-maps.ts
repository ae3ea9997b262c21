/** Head attribution maps: a [layers, heads] map per transcript or averaged, optionally per token. */
import { CliffscopeError } from '../engine/errors.js';
import { float32ToBlob } from './blobs.js';
import { headMapFromRow, type Row } from './rows.js';
import type { Statements } from './statements.js';
import type { HeadMapRow, NewHeadMap } from './types.js';

/** Head attribution maps of heads runs. */
export class HeadMapsStore {
  constructor(private readonly sql: Statements) {}

  add(h: NewHeadMap): number {
    const n = h.layers * h.heads;
    if (h.scores.length !== n) throw new CliffscopeError('shape-mismatch', `head map has ${h.scores.length} scores, expected ${h.layers}×${h.heads} = ${n}`);
    if (h.perToken && h.perToken.length !== n * (h.tokens ?? -1)) {
      throw new CliffscopeError('shape-mismatch', `per-token head map has ${h.perToken.length} values, expected ${h.layers}×${h.heads}×${h.tokens ?? '?'}`);
    }
    return this.sql.insert(
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

  get(id: number): HeadMapRow | null {
    const r = this.sql.get<Row>(`SELECT * FROM head_maps WHERE id = ?`, id);
    return r ? headMapFromRow(r) : null;
  }

  /** A run's maps; `transcriptId: null` picks the run-level (averaged) maps. */
  list(runId: number, filter: { transcriptId?: number | null } = {}): HeadMapRow[] {
    const rows =
      filter.transcriptId === undefined
        ? this.sql.all<Row>(`SELECT * FROM head_maps WHERE run_id = ? ORDER BY id`, runId)
        : this.sql.all<Row>(`SELECT * FROM head_maps WHERE run_id = ? AND transcript_id IS ? ORDER BY id`, runId, filter.transcriptId);
    return rows.map(headMapFromRow);
  }
}
