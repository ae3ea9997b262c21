/** Datasets and their items: what a project's prompts are, as imported. */
import { createHash } from 'node:crypto';
import { readDatasetFile, type ColumnMapping, type DatasetReadResult, type ReadDatasetOptions, type RejectedRow } from '../engine/datasets/import.js';
import { CliffscopeError } from '../engine/errors.js';
import { canonicalJson } from './json.js';
import { datasetFromRow, itemFromRow, type Row } from './rows.js';
import type { Statements } from './statements.js';
import { notFound } from './statements.js';
import type { DatasetRow, ItemRow } from './types.js';

/** An item matches `@search` (null: every item) in its prompt, response, label or category. */
const ITEM_MATCH = `(@search IS NULL OR instr(lower(prompt || char(31) || COALESCE(response, '') || char(31) || COALESCE(label, '') || char(31) || COALESCE(category, '')), lower(@search)) > 0)`;

/** A dataset row lists at most this many rejected rows (rejected_count has the full number). */
const MAX_STORED_REJECTS = 1000;

/** sha256 over the items' content (not ids or line numbers): the same data imported twice hashes the same. */
function itemsHash(items: DatasetReadResult['items']): string {
  const h = createHash('sha256');
  for (const it of items) h.update(canonicalJson([it.prompt, it.response, it.label, it.category, it.extra]) + '\n');
  return h.digest('hex');
}

/** The datasets of a project and their items. */
export class DatasetsStore {
  constructor(private readonly sql: Statements) {}

  /**
   * Read a dataset file and store it under `name`. Rows that could not be read are not stored but counted (and
   * listed in the dataset row) so the UI can report them. Returns the dataset and the rejected rows.
   */
  importFile(name: string, file: string, mapping?: Partial<ColumnMapping>, opts: Omit<ReadDatasetOptions, 'mapping'> = {}): { dataset: DatasetRow; rejected: RejectedRow[] } {
    const read = readDatasetFile(file, { ...opts, mapping });
    const dataset = this.add(name, read, file);
    return { dataset, rejected: read.rejected };
  }

  /** Store already-read items as a dataset (one transaction). */
  add(name: string, read: DatasetReadResult, sourceFile: string | null = null): DatasetRow {
    if (name.trim() === '') throw new CliffscopeError('bad-dataset', 'a dataset needs a name');
    if (this.find(name)) {
      throw new CliffscopeError('bad-dataset', `${this.sql.file} already has a dataset named "${name}"`, { file: this.sql.file, hint: 'choose another name' });
    }
    return this.sql.transaction(() => {
      const id = this.sql.insert(
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
        this.sql.run(
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
      return this.get(id)!;
    });
  }

  get(id: number): DatasetRow | null {
    const r = this.sql.get<Row>(`SELECT * FROM datasets WHERE id = ?`, id);
    return r ? datasetFromRow(r) : null;
  }

  /** The dataset, or a 'bad-argument' error listing the datasets there are. */
  require(id: number): DatasetRow {
    const d = this.get(id);
    if (!d) throw notFound(this.sql.file, 'dataset', id, this.list().map((x) => `${x.name} (#${x.id})`), 'import one with: cliffscope dataset import PROJECT FILE --name NAME');
    return d;
  }

  find(name: string): DatasetRow | null {
    const r = this.sql.get<Row>(`SELECT * FROM datasets WHERE name = ?`, name);
    return r ? datasetFromRow(r) : null;
  }

  list(): DatasetRow[] {
    return this.sql.all<Row>(`SELECT * FROM datasets ORDER BY id`).map(datasetFromRow);
  }

  /**
   * Items in order; `limit`/`offset` page through large sets. With `search`, only the items whose prompt, response,
   * label or category contains it (case-insensitive for ASCII letters, as SQLite's lower()).
   */
  items(datasetId: number, page: { offset?: number; limit?: number; search?: string } = {}): ItemRow[] {
    return this.sql.all<Row>(
      `SELECT * FROM dataset_items WHERE dataset_id = @dataset AND ${ITEM_MATCH} ORDER BY idx LIMIT @limit OFFSET @offset`,
      { dataset: datasetId, search: page.search || null, limit: page.limit ?? -1, offset: page.offset ?? 0 },
    ).map(itemFromRow);
  }

  /** How many items `items` pages through (all of them, or those matching `search`). */
  countItems(datasetId: number, search?: string): number {
    return this.sql.get<{ n: number }>(`SELECT COUNT(*) AS n FROM dataset_items WHERE dataset_id = @dataset AND ${ITEM_MATCH}`, { dataset: datasetId, search: search || null })!.n;
  }

  item(id: number): ItemRow | null {
    const r = this.sql.get<Row>(`SELECT * FROM dataset_items WHERE id = ?`, id);
    return r ? itemFromRow(r) : null;
  }
}
