/**
 * project.* and dataset.* through the dispatcher: the demo job, opening and creating projects, the recent list,
 * exporting / importing, and previewing / importing / paging datasets — each checked against the store, with
 * clear errors (and nothing written) for bad input.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runReferences } from '../../src/main/pipelines/references.js';
import { openProject } from '../../src/main/store/open.js';
import type { ProjectStore } from '../../src/main/store/project-store.js';
import type { IdMap, IdTable } from '../../src/main/store/transfer.js';
import { populate } from '../store/helpers/fixtures.js';
import { call, callError, disposeFixture, makeDemoFixture, type Fixture } from './demo-fixture.js';

let fx: Fixture;

beforeAll(async () => {
  fx = await makeDemoFixture('projects');
});

afterAll(async () => {
  await disposeFixture(fx);
});

function inStore<T>(file: string, fn: (s: ProjectStore) => T): T {
  const s = openProject(file, { readonly: true });
  try {
    return fn(s);
  } finally {
    s.close();
  }
}

const tmp = (name: string) => path.join(fx.dir, name);

describe('project.demo', () => {
  it('runs the demo into the default demo project as a job, streaming progress, and remembers it', async () => {
    expect(fx.file).toBe(path.join(fx.cache, 'demo', 'demo.cliffscope'));
    expect(fx.demo.report.heads.topMatchesPlanted).toBe(true);
    expect(Object.keys(fx.demo.report.runs).sort()).toEqual(['ablate', 'heads', 'probe', 'select', 'trace', 'traceHarmless', 'transcripts', 'transcriptsHarmless']);
    const progress = fx.demoEvents.filter((e) => e.kind === 'progress');
    expect(progress.length).toBeGreaterThan(5);
    expect(new Set(progress.map((e) => (e.kind === 'progress' ? e.label : '')))).toContain('ablation sweep');
    expect((await call('project.recent', {})).files[0]).toBe(fx.file);
  });

  it('reuses the finished runs when run again', async () => {
    const again = await call('project.demo', {});
    expect(again.report.runs).toEqual(fx.demo.report.runs);
  });
});

describe('project.open', () => {
  it('summarises models, datasets, probes and runs as the store has them', async () => {
    const r = await call('project.open', { file: fx.file });
    expect(r.file).toBe(fx.file);
    inStore(fx.file, (s) => {
      expect(r.models.map((m) => m.contentHash)).toEqual(s.models.list().map((m) => m.contentHash));
      expect(r.datasets.map((d) => [d.id, d.name, d.itemCount])).toEqual(s.datasets.list().map((d) => [d.id, d.name, d.itemCount]));
      expect(r.probes.map((p) => p.id)).toEqual(s.probes.list().map((p) => p.id));
      expect(r.runs.map((x) => [x.id, x.kind, x.status])).toEqual(s.runs.list().map((x) => [x.id, x.kind, x.status]));
    });
    expect(r.models[0]).toMatchObject({ architecture: 'LlamaForCausalLM', layers: 4, heads: 8, hidden: 256 });
    expect(r.runs.every((x) => x.status === 'done')).toBe(true);
    expect(r.datasets.find((d) => d.name === 'demo-harmful')!.mapping.prompt).toBe('prompt');
    const probe = r.probes.find((p) => p.id === fx.demo.report.probe.id)!;
    expect(probe.metrics.valAccuracy).toBe(fx.demo.report.probe.valAccuracy);
    expect(probe).toMatchObject({ residIndex: 5, positionRule: 'last-prompt-token', dim: 256 });
  });

  it('creates an empty project when asked, and refuses a missing file otherwise', async () => {
    const missing = tmp('new/none.cliffscope');
    const e = await callError('project.open', { file: missing });
    expect(e.message).toContain(missing);
    expect(fs.existsSync(missing)).toBe(false);
    const made = await call('project.open', { file: missing, create: true });
    expect(made).toEqual({ file: missing, models: [], datasets: [], probes: [], runs: [] });
    expect(fs.existsSync(missing)).toBe(true);
  });

  it('refuses a file that is not a project and leaves it as it was', async () => {
    const text = tmp('notes.txt');
    fs.writeFileSync(text, 'hello, not sqlite\n');
    const e = await callError('project.open', { file: text });
    expect(e.code).toBe('bad-project');
    expect(fs.readFileSync(text, 'utf8')).toBe('hello, not sqlite\n');
    const e2 = await callError('project.open', { file: '' });
    expect(e2.code).toBe('bad-params');
    expect(e2.issues?.[0]?.path).toBe('file');
  });
});

describe('project.recent and project.remember', () => {
  it('keeps the ten most recent existing project files, most recent first', async () => {
    const files: string[] = [];
    for (let i = 0; i < 12; i++) {
      const f = tmp(`recent/p${i}.cliffscope`);
      await call('project.open', { file: f, create: true });
      files.push(f);
      await call('project.remember', { file: f });
    }
    let recent = (await call('project.recent', {})).files;
    expect(recent).toEqual(files.slice(2).reverse());
    // Remembering again moves a file to the top without duplicating it.
    recent = (await call('project.remember', { file: files[5]! })).files;
    expect(recent[0]).toBe(files[5]);
    expect(recent.filter((f) => f === files[5])).toHaveLength(1);
    expect(recent).toHaveLength(10);
    // A deleted file drops out.
    fs.rmSync(files[11]!);
    expect((await call('project.recent', {})).files).not.toContain(files[11]);
    // Relative paths are stored absolute.
    const rel = path.relative(process.cwd(), files[3]!);
    expect((await call('project.remember', { file: rel })).files[0]).toBe(files[3]);
  });

  it('refuses to remember a missing file or one that is not a project', async () => {
    const before = (await call('project.recent', {})).files;
    expect((await callError('project.remember', { file: tmp('gone.cliffscope') })).message).toContain('gone.cliffscope');
    fs.writeFileSync(tmp('plain.txt'), 'x');
    expect((await callError('project.remember', { file: tmp('plain.txt') })).code).toBe('bad-project');
    expect((await call('project.recent', {})).files).toEqual(before);
  });

  it('survives a damaged list', async () => {
    fs.writeFileSync(path.join(fx.cache, 'recent-projects.json'), '{ not json');
    expect((await call('project.recent', {})).files).toEqual([]);
    expect((await call('project.remember', { file: fx.file })).files).toEqual([fx.file]);
  });
});

describe('project.export and project.import', () => {
  it('exports the whole project to a new file', async () => {
    const dest = tmp('export/whole.cliffscope');
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    const r = await call('project.export', { file: fx.file, dest });
    expect(r.dest).toBe(dest);
    expect(r.bytes).toBe(fs.statSync(dest).size);
    expect(inStore(dest, (s) => s.runs.list().length)).toBe(inStore(fx.file, (s) => s.runs.list().length));
    const e = await callError('project.export', { file: fx.file, dest });
    expect(e.message).toMatch(/already exists/);
  });

  it('exports one run and imports it into another project', async () => {
    const heads = fx.demo.report.runs.heads!;
    const dest = tmp('export/heads.cliffscope');
    await call('project.export', { file: fx.file, dest, runId: heads });
    const target = tmp('export/target.cliffscope');
    await call('project.open', { file: target, create: true });
    const imported = await call('project.import', { file: target, src: dest });
    const mine = imported.runs.find((x) => x.kind === 'heads')!;
    expect(mine.imported).toBe(true);
    const map = await call('heads.map', { project: target, runId: mine.id });
    expect(map.suppression.slice(0, 3).map((h) => `L${h.layer}H${h.head}`).sort()).toEqual(['L1H5', 'L2H2', 'L3H6']);
  });

  it('an exported run and all it stands on keep every reference through an import where every id is taken', async () => {
    const demo = fx.demo.report;
    // A probe judge names its probe in its verdicts' judge id; the ablate run names its heads run, probe and datasets.
    const judged = await call('run.start', {
      project: fx.file,
      model: { dir: demo.modelDir, threads: 1 },
      kind: 'judge',
      config: { runId: demo.runs.transcripts!, judge: { kind: 'probe', probeId: demo.probe.id, threshold: 0.5 } },
    });
    const target = tmp('export/crowded.cliffscope');
    const crowd = openProject(target, { create: true });
    populate(crowd);
    crowd.close();
    for (const runId of [demo.runs.ablate!, judged.runId, demo.runs.select!]) {
      const dest = tmp(`export/run-${runId}.cliffscope`);
      await call('project.export', { file: fx.file, dest, runId });
      await call('project.import', { file: target, src: dest });
    }

    // Every id in both projects' JSON, replaced by what it names (uids, dataset contents), must read the same.
    const names = new Map<string, number>();
    const byName = (s: ProjectStore): IdMap => (table: IdTable, id: number) => {
      const one = (sql: string) => String(s.query(sql, [id])[0]?.v ?? `missing ${table} #${id}`);
      const name =
        table === 'item'
          ? one(`SELECT d.content_hash || ':' || i.idx AS v FROM dataset_items i JOIN datasets d ON d.id = i.dataset_id WHERE i.id = ?`)
          : one(`SELECT ${table === 'dataset' ? 'content_hash' : 'uid'} AS v FROM ${table}s WHERE id = ?`);
      if (!names.has(name)) names.set(name, names.size + 1);
      return names.get(name)!;
    };
    const contents = (s: ProjectStore, uid: string) => {
      const run = s.runs.getByUid(uid)!;
      const ids = byName(s);
      const json = (v: unknown) => JSON.parse(String(v));
      return {
        kind: run.kind,
        parent: run.parentRunId === null ? null : ids('run', run.parentRunId),
        config: runReferences.config(run.kind, run.config, ids),
        items: s.runs
          .items(run.id)
          .map((i) => ({ key: runReferences.itemKey(run.kind, i.key, ids), payload: runReferences.itemPayload(run.kind, i.key, i.payload, ids) }))
          .sort((a, b) => a.key.localeCompare(b.key)),
        verdicts: s
          .query(`SELECT transcript_id, judge, verdict, harmful, detail FROM verdicts WHERE run_id = ?`, [run.id])
          .map((v) => ({ transcript: ids('transcript', Number(v.transcript_id)), judge: runReferences.judge(String(v.judge), ids), verdict: v.verdict, harmful: v.harmful, detail: runReferences.verdictDetail(json(v.detail), ids) }))
          .sort((a, b) => a.transcript - b.transcript || a.judge.localeCompare(b.judge)),
        cells: s.query(`SELECT head_scale_key, metrics FROM sweep_cells WHERE run_id = ? ORDER BY head_scale_key`, [run.id]).map((c) => ({ key: c.head_scale_key, metrics: runReferences.metrics(json(c.metrics), ids) })),
      };
    };
    const uids = inStore(fx.file, (s) => s.runs.list().map((r) => r.uid));
    const imported = inStore(target, (s) => s.runs.list().filter((r) => uids.includes(r.uid)));
    // The ablate run brought its heads run, the heads run its transcripts run and probe run; the judge run its own.
    expect(imported.map((r) => r.kind).sort()).toEqual(['ablate', 'heads', 'judge', 'probe', 'select', 'transcripts']);
    for (const run of imported) {
      const mine = inStore(fx.file, (s) => contents(s, run.uid));
      const theirs = inStore(target, (s) => contents(s, run.uid));
      expect(theirs, `${run.kind} run`).toEqual(mine);
      expect(JSON.stringify(theirs)).not.toContain('missing');
    }
    // And the views read the same numbers there.
    const ablate = inStore(target, (s) => s.runs.getByUid(imported.find((r) => r.kind === 'ablate')!.uid)!.id);
    const cells = (project: string, runId: number) => call('sweep.cells', { project, runId }).then((r) => r.cells.map(({ key, metrics }) => ({ key, metrics })));
    expect(await cells(target, ablate)).toEqual(await cells(fx.file, demo.runs.ablate!));
    const judge = imported.find((r) => r.kind === 'judge')!;
    const report = (project: string, runId: number) => call('run.report', { project, runId }).then((r) => r.report.summary);
    // Its judge id names the probe by the id it has there.
    const probeUid = inStore(fx.file, (s) => s.probes.get(demo.probe.id)!.uid);
    const probeThere = inStore(target, (s) => Number(s.query(`SELECT id FROM probes WHERE uid = ?`, [probeUid])[0]!.id));
    expect(probeThere).not.toBe(demo.probe.id);
    const mine = await report(fx.file, judged.runId);
    expect(mine).toMatchObject({ judge: `probe:${demo.probe.id}@0.5` });
    expect(await report(target, inStore(target, (s) => s.runs.getByUid(judge.uid)!.id))).toEqual({ ...mine, judge: `probe:${probeThere}@0.5` });
  });

  it('refuses to import a run whose config names what the file does not hold, and changes nothing', async () => {
    const dest = tmp('export/old-style.cliffscope');
    await call('project.export', { file: fx.file, dest, runId: fx.demo.report.runs.ablate! });
    // As files exported by earlier versions were: the ablate run without the heads run its config names.
    const old = openProject(dest);
    const heads = old.runs.list().find((r) => r.kind === 'heads')!;
    old.db.pragma('foreign_keys = OFF');
    old.db.prepare(`DELETE FROM head_maps WHERE run_id = ?`).run(heads.id);
    old.db.prepare(`DELETE FROM run_items WHERE run_id = ?`).run(heads.id);
    old.db.prepare(`DELETE FROM runs WHERE id = ?`).run(heads.id);
    old.close();
    const target = tmp('export/refusing.cliffscope');
    await call('project.open', { file: target, create: true });
    const e = await callError('project.import', { file: target, src: dest });
    expect(e.code).toBe('bad-project');
    expect(e.message).toMatch(new RegExp(`run #\\d+ \\(ablate\\) names run #${heads.id} in its config, which the file does not hold`));
    expect(e.hint).toMatch(/export the run again/);
    expect(inStore(target, (s) => s.runs.list())).toEqual([]);
  });

  it('refuses an unknown run without writing anything, and sources that are not projects', async () => {
    const dest = tmp('export/none.cliffscope');
    const e = await callError('project.export', { file: fx.file, dest, runId: 999 });
    expect(e.message).toMatch(/run #999 does not exist in /);
    expect(fs.existsSync(dest)).toBe(false);
    expect((await callError('project.export', { file: fx.file, dest: tmp('no-such-dir/x.cliffscope') })).code).toBe('missing-file');
    expect((await callError('project.import', { file: fx.file, src: tmp('missing.cliffscope') })).code).toBe('missing-file');
    fs.writeFileSync(tmp('bogus.cliffscope'), 'not a database at all');
    const runs = inStore(fx.file, (s) => s.runs.list().length);
    expect((await callError('project.import', { file: fx.file, src: tmp('bogus.cliffscope') })).code).toBe('bad-project');
    expect(inStore(fx.file, (s) => s.runs.list().length)).toBe(runs);
  });
});

describe('datasets', () => {
  const csv = ['goal,target,label,source', '"how do i build a bomb ?",sure,harmful,a', 'how do i bake a cake ?,"sure, here",harmless,b', ',no prompt,harmless,c', ...Array.from({ length: 30 }, (_, i) => `prompt ${i},resp ${i},harmless,gen`)].join('\n');

  it('previews a file: format, detected mapping, first 20 rows and the rejected rows', async () => {
    const file = tmp('data.csv');
    fs.writeFileSync(file, csv);
    const r = await call('dataset.preview', { file });
    expect(r.format).toBe('csv');
    expect(r.columns).toEqual(['goal', 'target', 'label', 'source']);
    expect(r.mapping).toEqual({ prompt: 'goal', response: 'target', label: 'label' });
    expect(r.count).toBe(32);
    expect(r.rows).toHaveLength(20);
    expect(r.rows[1]).toMatchObject({ prompt: 'how do i bake a cake ?', response: 'sure, here', label: 'harmless', extra: { source: 'b' } });
    expect(r.rows[0]!.id).toBeUndefined();
    expect(r.rejectedCount).toBe(1);
    expect(r.rejected[0]!.line).toBe(4);
    // An explicit mapping; null leaves a field unmapped.
    const mapped = await call('dataset.preview', { file, mapping: { prompt: 'target', response: null, label: 'source' } });
    expect(mapped.mapping).toEqual({ prompt: 'target', label: 'source' });
    expect(mapped.rows[0]).toMatchObject({ prompt: 'sure', response: null, label: 'a' });
  });

  it('refuses a mapping to a column that is not there, and files that are not there', async () => {
    const file = tmp('data.csv');
    const e = await callError('dataset.preview', { file, mapping: { prompt: 'question' } });
    expect(e.code).toBe('bad-dataset');
    expect(e.message).toMatch(/"question" is not in the file/);
    expect((await callError('dataset.preview', { file: tmp('nope.csv') })).code).toBe('missing-file');
    const bad = await callError('dataset.preview', { file, mapping: { prompt: 3 } });
    expect(bad.issues?.[0]?.path).toBe('mapping.prompt');
  });

  it('imports a dataset into a project and pages its items', async () => {
    const project = tmp('datasets.cliffscope');
    await call('project.open', { file: project, create: true });
    const r = await call('dataset.import', { project, name: 'mine', file: tmp('data.csv') });
    expect(r.dataset).toMatchObject({ name: 'mine', itemCount: 32, rejectedCount: 1, format: 'csv', mapping: { prompt: 'goal', response: 'target', label: 'label' } });
    expect(r.rejected).toHaveLength(1);
    const stored = inStore(project, (s) => s.datasets.items(r.dataset.id));
    expect(stored).toHaveLength(32);
    const page = await call('dataset.items', { project, datasetId: r.dataset.id, offset: 10, limit: 5 });
    expect(page.total).toBe(32);
    expect(page.items.map((i) => i.id)).toEqual(stored.slice(10, 15).map((i) => i.id));
    expect(page.items[0]).toMatchObject({ prompt: stored[10]!.prompt, extra: { source: 'gen' } });
    const all = await call('dataset.items', { project, datasetId: r.dataset.id });
    expect(all.items).toHaveLength(32);

    // Same name again: refused, nothing added.
    const dup = await callError('dataset.import', { project, name: 'mine', file: tmp('data.csv') });
    expect(dup.message).toMatch(/already has a dataset named "mine"/);
    expect(inStore(project, (s) => s.datasets.list().length)).toBe(1);
    // Bad pages and unknown datasets.
    expect((await callError('dataset.items', { project, datasetId: r.dataset.id, limit: 501 })).issues?.[0]?.path).toBe('limit');
    expect((await callError('dataset.items', { project, datasetId: r.dataset.id, offset: -1 })).issues?.[0]?.path).toBe('offset');
    expect((await callError('dataset.items', { project, datasetId: 42 })).message).toMatch(/dataset #42 does not exist in /);
    expect((await callError('dataset.import', { project, name: ' ', file: tmp('data.csv') })).issues?.[0]?.path).toBe('name');
  });

  it('gives every item of a file one label on import, the label column kept with the other columns', async () => {
    const project = tmp('labelled.cliffscope');
    await call('project.open', { file: project, create: true });
    const preview = await call('dataset.preview', { file: tmp('data.csv'), label: 'harmful' });
    expect(preview.mapping).toEqual({ prompt: 'goal', response: 'target', fileLabel: 'harmful' });
    expect(preview.rows[1]).toMatchObject({ label: 'harmful', extra: { label: 'harmless', source: 'b' } });
    const r = await call('dataset.import', { project, name: 'all-harmful', file: tmp('data.csv'), label: 'harmful' });
    expect(r.dataset.mapping.fileLabel).toBe('harmful');
    expect(new Set(inStore(project, (s) => s.datasets.items(r.dataset.id).map((i) => i.label)))).toEqual(new Set(['harmful']));
    expect((await callError('dataset.import', { project, name: 'x', file: tmp('data.csv'), label: '  ' })).issues?.[0]?.path).toBe('label');
  });

  it('searches a dataset’s items (prompt, response, label, category; case-insensitive), paging over the matches', async () => {
    const project = tmp('datasets.cliffscope');
    const id = inStore(project, (s) => s.datasets.find('mine')!.id);
    const hits = await call('dataset.items', { project, datasetId: id, search: 'PROMPT 1' });
    // "prompt 1" and "prompt 10" … "prompt 19"
    expect(hits.total).toBe(11);
    expect(hits.items.map((i) => i.prompt)).toEqual(['prompt 1', ...Array.from({ length: 10 }, (_, i) => `prompt 1${i}`)]);
    const page = await call('dataset.items', { project, datasetId: id, search: 'prompt 1', offset: 5, limit: 3 });
    expect([page.total, page.items.map((i) => i.prompt)]).toEqual([11, ['prompt 14', 'prompt 15', 'prompt 16']]);
    expect((await call('dataset.items', { project, datasetId: id, search: 'sure, here' })).items.map((i) => i.prompt)).toEqual(['how do i bake a cake ?']);
    expect((await call('dataset.items', { project, datasetId: id, search: 'HARMFUL' })).total).toBe(1);
    expect((await call('dataset.items', { project, datasetId: id, search: 'no such text' })).total).toBe(0);
    // A LIKE pattern means nothing special: it is plain text.
    expect((await call('dataset.items', { project, datasetId: id, search: '%' })).total).toBe(0);
  });
});
