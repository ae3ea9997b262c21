/** Cliff-as-a-Judge selections: a score per training item, its rank, and the chosen subset. */
import { real, selectionFromRow, type Row } from './rows.js';
import type { Statements } from './statements.js';
import type { NewSelection, SelectionRow } from './types.js';

/** Selections of select runs. */
export class SelectionsStore {
  constructor(private readonly sql: Statements) {}

  /** One scored item of a selection run, with its rank and whether it was selected (ranked by analysis/select.ts). */
  add(s: NewSelection): number {
    return this.sql.insert(
      `INSERT INTO selections (run_id, item_id, transcript_id, score, rank, selected) VALUES (?, ?, ?, ?, ?, ?)`,
      s.runId,
      s.itemId,
      s.transcriptId ?? null,
      real(s.score),
      s.rank ?? null,
      s.selected ? 1 : 0,
    );
  }

  list(runId: number, filter: { selectedOnly?: boolean } = {}): SelectionRow[] {
    return this.sql.all<Row>(
      `SELECT * FROM selections WHERE run_id = ? AND (? = 0 OR selected = 1) ORDER BY rank IS NULL, rank, id`,
      runId,
      filter.selectedOnly ? 1 : 0,
    ).map(selectionFromRow);
  }
}
