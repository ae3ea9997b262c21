/**
 * Shard files and merging them: the rows of a run made in three shard files, merged into the project, equal the
 * same run made in one process (every row, every number); re-merging changes nothing; a conflicting shard, a shard
 * of another run or model, and a shard whose inputs are not the project's are refused whole.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assignShards } from '../../src/main/api/cluster/shards.js';
import { openProject } from '../../src/main/store/open.js';
import { openForReading } from '../../src/main/store/project-file.js';
import type { ProjectStore } from '../../src/main/store/project-store.js';
import { checkShardSet, mergeShardFile, missingItems, openShardFile, prepareShardFile, readShardMeta, type ShardMeta } from '../../src/main/store/shards.js';
import { expectCliffscopeError, populate, tempDir } from './helpers/fixtures.js';

let dir: string;
let base: string;
let world: ReturnType<typeof populate>;
let n = 0;
const file = (name: string) => path.join(dir, `${n++}-${name}.cliffscope`);
const UID = '6f1c8a40-0000-4000-8000-00000000beef';
const CONFIG = { datasetId: 1, settings: ['baseline', 'ablated'], probeId: 1 };

/** What one item of the run writes: a transcript per (item, setting), its trace and its verdict. */
function doItem(store: ProjectStore, runId: number, key: string, tweak = 0): void {
  const [itemId, setting] = key.split(':') as [string, string];
  const item = store.datasets.item(Number(itemId))!;
  store.runs.commitItem(runId, key, (s) => {
    const id = s.transcripts.add({
      runId,
      itemId: item.id,
      prompt: item.prompt,
      tokenIds: [1, 2, 3, 40 + item.idx + tweak, setting === 'ablated' ? 9 : 8],
      promptTokens: 2,
      text: `answer ${item.idx} ${setting}`,
      thinkingStart: 2,
      thinkingEnd: 3,
      answerBoundary: 3,
      finishReason: 'eos',
      headScaleKey: setting,
    });
    s.traces.add({ runId, transcriptId: id, probeId: world.probe.id, residIndex: 2, scores: [0.1, 0.2, 0.9 - item.idx / 100, 0.3], plateau: 0.9, final: 0.3, ms: 0.6, steepestDropPos: 3, cliffWidth: 1 });
    s.verdicts.add({ runId, transcriptId: id, judge: 'keyword:jbb', verdict: item.idx % 2 ? 'refusal' : 'compliance', harmful: item.idx % 2 === 0, detail: {} });
    return { transcriptId: id };
  });
}

const keys = () => world.items.flatMap((it) => [`${it.id}:baseline`, `${it.id}:ablated`]);

function startRun(store: ProjectStore, uid = UID) {
  return store.runs.start({ uid, kind: 'transcripts', modelId: world.model.id, datasetId: world.dataset.id, config: CONFIG });
}

/** Shard `index` of the run, made from `project` into a new file. */
function makeShard(project: string, index: number, meta: Partial<ShardMeta> = {}, tweak = 0): string {
  const units = keys().map((key) => ({ key, cost: key.length }));
  const full: ShardMeta = { runUid: UID, kind: 'transcripts', config: CONFIG, modelHash: 'sha256:model-a', index, count: 3, assignment: assignShards(units, 3), ...meta };
  const dest = file(`shard-${index}`);
  const input = openForReading(project, { allowVacuumInto: true });
  try {
    expect(prepareShardFile(input, project, dest, full)).toBe('created');
  } finally {
    input.close();
  }
  const store = openProject(dest);
  try {
    const run = startRun(store, full.runUid);
    for (const key of full.assignment[index]!) doItem(store, run.id, key, tweak);
    store.runs.finish(run.id);
  } finally {
    store.close();
  }
  return dest;
}

/** Merge shard files into a project, as the application does (check the set, then each file in its transaction). */
function merge(project: string, files: string[]) {
  const shards = files.map((f) => ({ file: f, ...openShardFile(f) }));
  const store = openProject(project);
  try {
    checkShardSet(store.db, project, shards);
    const results = shards.map((s) => mergeShardFile(store.db, s.file, s.db, s.meta));
    return { results, missing: missingItems(store.db, results[0]!.runId, shards[0]!.meta), runId: results[0]!.runId };
  } finally {
    store.close();
    for (const s of shards) s.db.close();
  }
}

/** Every row of the run, by what it is (no row ids, no times): what "the same run" means. */
function runContents(project: string, uid = UID) {
  const db = new Database(project, { readonly: true });
  try {
    const run = db.prepare(`SELECT id FROM runs WHERE uid = ?`).get(uid) as { id: number };
    const q = (sql: string) => db.prepare(sql).all(run.id);
    return {
      items: q(`SELECT key, status, payload FROM run_items WHERE run_id = ? ORDER BY key`).map((r) => ({ ...(r as object), payload: JSON.parse((r as { payload: string }).payload).transcriptId !== undefined ? 'transcript' : (r as { payload: string }).payload })),
      transcripts: q(`SELECT item_id, head_scale_key, prompt, hex(token_ids) AS ids, text, answer_boundary FROM transcripts WHERE run_id = ? ORDER BY item_id, head_scale_key`),
      traces: q(`SELECT t.item_id, t.head_scale_key, tr.probe_id, hex(tr.scores) AS scores, tr.final FROM traces tr JOIN transcripts t ON t.id = tr.transcript_id WHERE tr.run_id = ? ORDER BY 1, 2`),
      verdicts: q(`SELECT t.item_id, t.head_scale_key, v.judge, v.verdict, v.harmful FROM verdicts v JOIN transcripts t ON t.id = v.transcript_id WHERE v.run_id = ? ORDER BY 1, 2`),
      // Each item's payload names the project's own transcript row for it.
      linked: q(`SELECT COUNT(*) AS n FROM run_items i JOIN transcripts t ON t.id = json_extract(i.payload, '$.transcriptId') AND t.run_id = i.run_id AND i.key = t.item_id || ':' || t.head_scale_key WHERE i.run_id = ?`),
    };
  } finally {
    db.close();
  }
}

beforeAll(() => {
  dir = tempDir('shards');
  base = file('base');
  const store = openProject(base, { create: true });
  world = populate(store);
  store.close();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('shard files', () => {
  it('carry the run uid, config, model hash and every shard\'s items, and reopen only for the same shard', () => {
    const shard = makeShard(base, 0);
    const s = openShardFile(shard);
    expect(s.meta).toMatchObject({ runUid: UID, kind: 'transcripts', config: CONFIG, modelHash: 'sha256:model-a', index: 0, count: 3 });
    expect(s.meta.assignment.flat().sort()).toEqual(keys().sort());
    const input = openForReading(base, { allowVacuumInto: true });
    try {
      expect(prepareShardFile(input, base, shard, s.meta)).toBe('resumed');
      expectCliffscopeError(() => prepareShardFile(input, base, shard, { ...s.meta, index: 1 }), 'bad-argument', /already holds shard 0\/3/);
      expectCliffscopeError(() => prepareShardFile(input, base, base, s.meta), 'bad-argument', /not a shard file/);
    } finally {
      input.close();
      s.db.close();
    }
    expect(readShardMeta(new Database(base, { readonly: true }), base)).toBeNull();
    expectCliffscopeError(() => openShardFile(base), 'bad-argument', /a project, not a shard file/);
  });
});

describe('merging shards', () => {
  it('gives the same run as one process, item for item and number for number; re-merging is a no-op', () => {
    // One process: the whole run in a copy of the project.
    const single = file('single');
    fs.copyFileSync(base, single);
    const one = openProject(single);
    const run = startRun(one);
    for (const key of keys()) doItem(one, run.id, key);
    one.runs.finish(run.id);
    one.close();

    const target = file('target');
    fs.copyFileSync(base, target);
    const shards = [0, 1, 2].map((i) => makeShard(base, i));
    const first = merge(target, shards.slice(0, 2));
    expect(first.results[0]!.created).toBe(true);
    expect(first.missing.length).toBeGreaterThan(0);
    expect(first.missing.sort()).toEqual(openShardFile(shards[2]!).meta.assignment[2]!.slice().sort());

    const second = merge(target, shards);
    expect(second.missing).toEqual([]);
    expect(second.results.map((r) => r.added)).toEqual([0, 0, first.missing.length]);
    expect(runContents(target)).toEqual(runContents(single));
    expect((runContents(target).linked[0] as { n: number }).n).toBe(keys().length);

    const before = runContents(target);
    const again = merge(target, [shards[1]!, shards[0]!]);
    expect(again.results.every((r) => r.added === 0 && r.identical > 0)).toBe(true);
    expect(runContents(target)).toEqual(before);
  });

  it('refuses a shard that disagrees with what is merged, and changes nothing', () => {
    const target = file('target');
    fs.copyFileSync(base, target);
    merge(target, [makeShard(base, 0)]);
    const before = runContents(target);
    const clash = makeShard(base, 0, {}, 7);
    const err = (() => {
      try {
        merge(target, [clash]);
      } catch (e) {
        return e as Error;
      }
      return null;
    })();
    expect(err?.message).toMatch(/transcript of item #\d+ .*differs from the one already merged \(token_ids\)/);
    expect(runContents(target)).toEqual(before);
  });

  it('refuses shards of another run, model or config, naming the reason, before writing anything', () => {
    const target = file('target');
    fs.copyFileSync(base, target);
    const a = makeShard(base, 0);
    expectCliffscopeError(() => merge(target, [a, makeShard(base, 1, { runUid: '00000000-0000-4000-8000-000000000000' })]), 'bad-argument', /not a shard of the same run: it belongs to run/);
    expectCliffscopeError(() => merge(target, [a, makeShard(base, 1, { modelHash: 'sha256:model-b' })]), 'bad-argument', /made with model sha256:model/);
    expectCliffscopeError(() => merge(target, [a, makeShard(base, 1, { config: { ...CONFIG, probeId: 2 } })]), 'bad-argument', /config differs/);
    merge(target, [a]);
    // The project's run now has this uid; a shard set of that uid with another config is refused against it.
    const store = openProject(target);
    expect(store.runs.list().some((r) => r.uid === UID)).toBe(true);
    store.close();
    const other = file('other-config');
    fs.copyFileSync(base, other);
    const s = openProject(other);
    s.runs.start({ uid: UID, kind: 'transcripts', modelId: world.model.id, config: { ...CONFIG, seed: 5 } });
    s.close();
    expectCliffscopeError(() => merge(other, [a]), 'bad-argument', /has another config/);
  });

  it('refuses a shard whose inputs are other rows than the project\'s (it came from another project)', () => {
    const elsewhere = file('elsewhere');
    const store = openProject(elsewhere, { create: true });
    populate(store);
    // Same ids, other content: the dataset items differ.
    store.db.prepare(`UPDATE datasets SET content_hash = 'sha256:other'`).run();
    store.close();
    const shard = makeShard(elsewhere, 0);
    const target = file('target');
    fs.copyFileSync(base, target);
    expectCliffscopeError(() => merge(target, [shard]), 'bad-project', /refers to dataset (item )?#\d+, which is another one in the project/);
  });
});
