/** Probes: versioned refusal directions, each reading one residual-stack index. */
import { randomUUID } from 'node:crypto';
import { float32ToBlob } from './blobs.js';
import { canonicalJson } from './json.js';
import { probeFromRow, type Row } from './rows.js';
import type { Statements } from './statements.js';
import { notFound } from './statements.js';
import type { NewProbe, ProbeRow } from './types.js';

/** The probes of a project. */
export class ProbesStore {
  constructor(private readonly sql: Statements) {}

  add(p: NewProbe): ProbeRow {
    const weights = p.weights instanceof Float32Array ? p.weights : Float32Array.from(p.weights);
    return this.sql.transaction(() => {
      const version =
        p.version ?? (this.sql.get<{ v: number }>(`SELECT COALESCE(MAX(version), 0) + 1 AS v FROM probes WHERE model_id = ? AND name = ?`, p.modelId, p.name)!.v);
      const id = this.sql.insert(
        `INSERT INTO probes (uid, model_id, run_id, name, version, resid_index, position_rule, dim, weights, bias, metrics, provenance)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        randomUUID(),
        p.modelId,
        p.runId ?? null,
        p.name,
        version,
        p.residIndex,
        p.positionRule,
        weights.length,
        float32ToBlob(weights),
        p.bias,
        canonicalJson(p.metrics ?? {}),
        canonicalJson(p.provenance ?? {}),
      );
      return this.get(id)!;
    });
  }

  get(id: number): ProbeRow | null {
    const r = this.sql.get<Row>(`SELECT * FROM probes WHERE id = ?`, id);
    return r ? probeFromRow(r) : null;
  }

  /** The probe, or a 'bad-argument' error listing the probes there are. */
  require(id: number): ProbeRow {
    const p = this.get(id);
    if (!p) throw notFound(this.sql.file, 'probe', id, this.list().map((x) => `#${x.id} ${x.name} v${x.version}`), 'train one first (a probe run)');
    return p;
  }

  list(filter: { modelId?: number; name?: string } = {}): ProbeRow[] {
    return this.sql.all<Row>(
      `SELECT * FROM probes WHERE (@model IS NULL OR model_id = @model) AND (@name IS NULL OR name = @name) ORDER BY model_id, name, version`,
      { model: filter.modelId ?? null, name: filter.name ?? null },
    ).map(probeFromRow);
  }

  latest(modelId: number, name: string): ProbeRow | null {
    const r = this.sql.get<Row>(`SELECT * FROM probes WHERE model_id = ? AND name = ? ORDER BY version DESC LIMIT 1`, modelId, name);
    return r ? probeFromRow(r) : null;
  }
}
