/** Models: a checkpoint as used (the same weights compiled with other options are another row). */
import { canonicalJson } from './json.js';
import { modelFromRow, type Row } from './rows.js';
import type { Statements } from './statements.js';
import { notFound } from './statements.js';
import type { ModelRow, NewModel } from './types.js';

/** The models a project has used. */
export class ModelsStore {
  constructor(private readonly sql: Statements) {}

  /**
   * Register a model, or return the existing row for the same weights and compile options (its path, name and
   * config are refreshed: a moved checkpoint is still the same model).
   */
  add(m: NewModel): ModelRow {
    const compile = canonicalJson(m.compileOptions ?? {});
    const row = this.sql.get<Row>(
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

  get(id: number): ModelRow | null {
    const r = this.sql.get<Row>(`SELECT * FROM models WHERE id = ?`, id);
    return r ? modelFromRow(r) : null;
  }

  require(id: number): ModelRow {
    const m = this.get(id);
    if (!m) throw notFound(this.sql.file, 'model', id, [], '');
    return m;
  }

  findByHash(contentHash: string): ModelRow[] {
    return this.sql.all<Row>(`SELECT * FROM models WHERE content_hash = ? ORDER BY id`, contentHash).map(modelFromRow);
  }

  list(): ModelRow[] {
    return this.sql.all<Row>(`SELECT * FROM models ORDER BY id`).map(modelFromRow);
  }
}
