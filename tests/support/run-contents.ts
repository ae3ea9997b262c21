/**
 * Everything a run stored, by what each row is rather than its row id: what "the merged run equals the single-process
 * run, item for item and in every aggregate" compares. A row the run made is named by its item and setting; a row of
 * another run keeps its id (both files are copies of one project, so those ids agree).
 */
import Database from 'better-sqlite3';

export interface RunContents {
  status: string;
  items: { key: string; status: string; payload: unknown }[];
  transcripts: unknown[];
  traces: { of: string; probe: number; scores: number[]; plateau: number | null; final: number | null; ms: number | null }[];
  verdicts: unknown[];
  cells: unknown[];
  headMaps: { of: string; scores: number[] }[];
  selections: unknown[];
}

const floats = (b: Buffer | null): number[] => (b ? Array.from(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))) : []);

/** The run with uid `uid` (or row id `id`) of `file`. */
export function runContents(file: string, run: { uid: string } | { id: number }): RunContents {
  const db = new Database(file, { readonly: true });
  try {
    const row = ('uid' in run ? db.prepare(`SELECT id, status FROM runs WHERE uid = ?`).get(run.uid) : db.prepare(`SELECT id, status FROM runs WHERE id = ?`).get(run.id)) as { id: number; status: string } | undefined;
    if (!row) throw new Error(`${file} has no run ${JSON.stringify(run)}`);
    const id = row.id;
    const all = <T>(sql: string) => db.prepare(sql).all(id) as T[];
    // A transcript of this run by its item and setting; another run's transcript by its id.
    const names = new Map(all<{ id: number; item_id: number | null; head_scale_key: string | null }>(`SELECT id, item_id, head_scale_key FROM transcripts WHERE run_id = ?`).map((t) => [t.id, `item ${t.item_id} ${t.head_scale_key ?? '-'}`]));
    const of = (transcriptId: number | null) => (transcriptId === null ? 'average' : (names.get(transcriptId) ?? `transcript #${transcriptId}`));
    const sorted = <T>(xs: T[]) => xs.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
    return {
      status: row.status,
      items: all<{ key: string; status: string; payload: string }>(`SELECT key, status, payload FROM run_items WHERE run_id = ? ORDER BY key`).map((i) => {
        const payload = JSON.parse(i.payload) as Record<string, unknown>;
        return { key: i.key, status: i.status, payload: typeof payload === 'object' && payload !== null && 'transcriptId' in payload ? { ...payload, transcriptId: of(payload.transcriptId as number) } : payload };
      }),
      transcripts: sorted(
        all<Record<string, unknown>>(`SELECT item_id, head_scale_key, prompt, hex(token_ids) AS ids, prompt_tokens, text, thinking_start, thinking_end, answer_boundary, finish_reason FROM transcripts WHERE run_id = ?`),
      ),
      traces: sorted(
        all<{ transcript_id: number; probe_id: number; scores: Buffer; plateau: number | null; final: number | null; ms: number | null }>(`SELECT * FROM traces WHERE run_id = ?`).map((t) => ({
          of: of(t.transcript_id),
          probe: t.probe_id,
          scores: floats(t.scores),
          plateau: t.plateau,
          final: t.final,
          ms: t.ms,
        })),
      ),
      verdicts: sorted(all<{ transcript_id: number; judge: string; verdict: string; harmful: number | null }>(`SELECT * FROM verdicts WHERE run_id = ?`).map((v) => ({ of: of(v.transcript_id), judge: v.judge, verdict: v.verdict, harmful: v.harmful }))),
      cells: sorted(all<Record<string, unknown>>(`SELECT head_scale_key, control, k, fraction, gamma, seed, heads, metrics FROM sweep_cells WHERE run_id = ?`)),
      headMaps: sorted(all<{ transcript_id: number | null; scores: Buffer }>(`SELECT transcript_id, scores FROM head_maps WHERE run_id = ?`).map((m) => ({ of: of(m.transcript_id), scores: floats(m.scores) }))),
      selections: sorted(all<{ item_id: number; score: number | null; rank: number | null; selected: number }>(`SELECT item_id, score, rank, selected FROM selections WHERE run_id = ?`)),
    };
  } finally {
    db.close();
  }
}
