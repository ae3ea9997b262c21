/** Whole-project copies, one-run exports, and merging a run file into another project with new ids. */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportProject, openProject } from '../../src/main/store/open.js';
import { runReferences } from '../../src/main/pipelines/references.js';
import { type ProjectStore } from '../../src/main/store/project-store.js';
import { expectCliffscopeError, populate, syntheticDataset, tableCounts, tempDir } from './helpers/fixtures.js';

let dir: string;
let n = 0;
const file = (name: string) => path.join(dir, `${n++}-${name}.cliffscope`);
let src: ProjectStore;
let srcFile: string;
let world: ReturnType<typeof populate>;

beforeAll(() => {
  dir = tempDir('transfer');
  srcFile = file('source');
  src = openProject(srcFile, { create: true });
  world = populate(src);
});
afterAll(() => {
  src.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('exportProject', () => {
  it('writes one self-contained, compact copy (from an open store or from the file)', () => {
    const a = file('copy-a');
    src.exportProject(a);
    const b = file('copy-b');
    exportProject(srcFile, b);
    for (const copy of [a, b]) {
      expect(fs.existsSync(`${copy}-wal`)).toBe(false);
      const head = fs.readFileSync(copy).subarray(0, 100);
      expect([head[18], head[19]]).toEqual([1, 1]); // rollback journal: readable as a single file anywhere
      const store = openProject(copy);
      expect(tableCounts(store)).toEqual(tableCounts(src));
      expect(Array.from(store.probes.get(world.probe.id)!.weights)).toEqual(Array.from(world.probe.weights));
      store.close();
    }
  });

  it('never overwrites, and refuses non-projects', () => {
    const existing = file('existing');
    fs.writeFileSync(existing, 'precious');
    expectCliffscopeError(() => src.exportProject(existing), 'bad-argument', /already exists/);
    expectCliffscopeError(() => exportProject(srcFile, existing), 'bad-argument', /already exists/);
    expect(fs.readFileSync(existing, 'utf8')).toBe('precious');
    expectCliffscopeError(() => exportProject(existing, file('x')), 'bad-project', /not a SQLite database/);
  });
});

describe('exportRun', () => {
  it('holds the run, what it produced, and exactly the rows it refers to', () => {
    const dest = file('trace-run');
    src.exportRun(world.runs.trace.id, dest, runReferences);
    const out = openProject(dest);
    expect(out.meta('exported_run')).toBe(world.runs.trace.uid);
    // The trace run, its parent (generate) whose transcripts it traced, and the run that trained its probe.
    expect(out.runs.list().map((r) => r.kind)).toEqual(['transcripts', 'probe', 'trace']);
    expect(tableCounts(out)).toEqual({
      models: 1,
      datasets: 1,
      dataset_items: 6, // the whole dataset, so the run can be resumed elsewhere
      runs: 3,
      run_items: 12, // the trace run's and those of the runs it stands on (the generate run's 6, the probe run's none)
      probes: 1,
      transcripts: 6,
      traces: 6,
      head_maps: 0,
      sweep_cells: 0,
      verdicts: 0,
      selections: 0,
    });
    // Ids are kept in an export.
    expect(out.runs.get(world.runs.trace.id)!.uid).toBe(world.runs.trace.uid);
    expect(out.checkIntegrity()).toEqual(['ok']);
    expect(out.db.pragma('foreign_key_check')).toEqual([]);
    out.close();
    expectCliffscopeError(() => src.exportRun(world.runs.trace.id, dest, runReferences), 'bad-argument', /already exists/);
    expectCliffscopeError(() => src.exportRun(999, file('none'), runReferences), 'bad-argument', /run #999 does not exist in /);
  });

  it('a run in progress is exported as interrupted', () => {
    const run = src.runs.start({ kind: 'transcripts', modelId: world.model.id, datasetId: world.dataset.id });
    src.runs.commitItem(run.id, 'first', (s) => {
      s.transcripts.add({ runId: run.id, itemId: world.items[0]!.id, prompt: 'p', tokenIds: [1], promptTokens: 1, text: 'x' });
    });
    const dest = file('running');
    src.exportRun(run.id, dest, runReferences);
    src.runs.markInterrupted(run.id);
    const out = openProject(dest);
    expect(out.runs.get(run.id)).toMatchObject({ status: 'interrupted', ownerPid: null });
    expect(out.runs.resumableItems(run.id)).toEqual(new Set(['first']));
    // It can be resumed there, with the same model.
    expect(out.runs.resume(run.id, 'sha256:model-a').done.size).toBe(1);
    out.close();
    src.runs.delete(run.id);
  });
});

describe('importRun', () => {
  it('merges a run file into a project with different ids, remapping every reference', () => {
    const exported = file('judge-run');
    src.exportRun(world.runs.judge.id, exported, runReferences);

    // A target whose ids are all taken by other things, and which already has a different dataset named "prompts".
    const target = openProject(file('target'), { create: true });
    target.models.add({ path: '/other/1', contentHash: 'other-1' });
    target.models.add({ path: '/other/2', contentHash: 'other-2' });
    target.datasets.add('prompts', syntheticDataset(4, 'different'));
    const own = target.runs.start({ kind: 'transcripts' });
    target.runs.finish(own.id);

    const summary = target.importRun(exported, runReferences);
    expect(summary.models).toEqual({ added: 1, reused: 0 });
    expect(summary.datasets).toEqual({ added: 1, reused: 0 });
    expect(summary.transcripts).toEqual({ added: 6, reused: 0 });
    expect(summary.runs.map((r) => [r.kind, r.imported])).toEqual([
      ['transcripts', true],
      ['judge', true],
    ]);

    const judge = target.runs.getByUid(world.runs.judge.uid)!;
    const generate = target.runs.getByUid(world.runs.generate.uid)!;
    expect(judge.id).not.toBe(world.runs.judge.id);
    expect(judge.parentRunId).toBe(generate.id);
    expect(target.models.get(generate.modelId!)!.contentHash).toBe('sha256:model-a');
    const dataset = target.datasets.get(generate.datasetId!)!;
    expect(dataset.name).toBe('prompts (imported)');

    // Verdicts → transcripts → dataset items, all pointing at the imported copies with the same content.
    const verdicts = target.verdicts.list({ runId: judge.id });
    expect(verdicts.map((v) => v.verdict)).toEqual(src.verdicts.list({ runId: world.runs.judge.id }).map((v) => v.verdict));
    for (const v of verdicts) {
      const t = target.transcripts.get(v.transcriptId)!;
      expect(t.runId).toBe(generate.id);
      const item = target.datasets.item(t.itemId!)!;
      expect(item.datasetId).toBe(dataset.id);
      expect(item.prompt).toBe(t.prompt);
      const original = src.transcripts.list(world.runs.generate.id).find((x) => x.uid === t.uid)!;
      expect(Array.from(t.tokenIds)).toEqual(Array.from(original.tokenIds));
    }
    expect(target.verdicts.attackSuccessRate(judge.id)).toEqual(src.verdicts.attackSuccessRate(world.runs.judge.id));
    expect(target.db.pragma('foreign_key_check')).toEqual([]);

    // Importing the same file again adds nothing.
    const before = tableCounts(target);
    const again = target.importRun(exported, runReferences);
    expect(again.runs.every((r) => !r.imported)).toBe(true);
    expect(again.models).toEqual({ added: 0, reused: 1 });
    expect(again.datasets).toEqual({ added: 0, reused: 1 });
    expect(tableCounts(target)).toEqual(before);
    target.close();
  });

  it('reuses what is already there: the trace run into a project that has its generate run', () => {
    const generateFile = file('generate-run');
    src.exportRun(world.runs.generate.id, generateFile, runReferences);
    const traceFile = file('trace-run-2');
    src.exportRun(world.runs.trace.id, traceFile, runReferences);

    const target = openProject(file('target-2'), { create: true });
    target.importRun(generateFile, runReferences);
    const afterGenerate = tableCounts(target);
    const summary = target.importRun(traceFile, runReferences);
    expect(summary.transcripts).toEqual({ added: 0, reused: 6 });
    expect(summary.runs.map((r) => [r.kind, r.imported])).toEqual([
      ['transcripts', false],
      ['probe', true],
      ['trace', true],
    ]);
    expect(tableCounts(target)).toEqual({ ...afterGenerate, runs: afterGenerate.runs + 2, run_items: afterGenerate.run_items + 6, probes: 1, traces: 6 });

    const trace = target.runs.getByUid(world.runs.trace.uid)!;
    const traces = target.traces.list({ runId: trace.id });
    const probe = target.probes.get(traces[0]!.probeId)!;
    expect(probe.uid).toBe(world.probe.uid);
    expect(probe.runId).toBe(target.runs.getByUid(world.runs.probeRun.uid)!.id);
    expect(Array.from(traces[0]!.scores)).toEqual(Array.from(src.traces.list({ runId: world.runs.trace.id })[0]!.scores));
    const transcriptRuns = new Set(traces.map((t) => target.transcripts.get(t.transcriptId)!.runId));
    expect(transcriptRuns).toEqual(new Set([target.runs.getByUid(world.runs.generate.uid)!.id]));
    target.close();
  });

  it('a probe whose name and version are taken gets the next version', () => {
    const target = openProject(file('target-3'), { create: true });
    const model = target.models.add({ path: '/x', contentHash: 'sha256:model-a', compileOptions: { dtype: 'fp32' } });
    target.probes.add({ modelId: model.id, name: 'refusal', residIndex: 0, positionRule: 'x', weights: [1], bias: 0 });
    const probeFile = file('probe-run');
    src.exportRun(world.runs.probeRun.id, probeFile, runReferences);
    const summary = target.importRun(probeFile, runReferences);
    expect(summary.models).toEqual({ added: 0, reused: 1 });
    expect(target.probes.list({ modelId: model.id }).map((p) => [p.version, p.residIndex])).toEqual([
      [1, 0],
      [2, 2],
    ]);
    target.close();
  });

  it('importing into the source project finds everything already there', () => {
    const exported = file('select-run');
    src.exportRun(world.runs.select.id, exported, runReferences);
    const before = tableCounts(src);
    const summary = src.importRun(exported, runReferences);
    expect(summary.runs.every((r) => !r.imported)).toBe(true);
    expect(tableCounts(src)).toEqual(before);
  });

  it('refuses files that are not projects, and the project itself; the source file is not changed', () => {
    const target = openProject(file('target-4'), { create: true });
    const foreign = path.join(dir, 'foreign.db');
    const db = new Database(foreign);
    db.exec('CREATE TABLE t (x)');
    db.close();
    expectCliffscopeError(() => target.importRun(foreign, runReferences), 'bad-project', /made by another program/);
    expectCliffscopeError(() => target.importRun(path.join(dir, 'missing.cliffscope'), runReferences), 'bad-project', /no such file/);
    expectCliffscopeError(() => src.importRun(srcFile, runReferences), 'bad-argument', /into itself/);

    const exported = file('heads-run');
    src.exportRun(world.runs.heads.id, exported, runReferences);
    const bytes = fs.readFileSync(exported);
    target.importRun(exported, runReferences);
    expect(fs.readFileSync(exported).equals(bytes)).toBe(true);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(exported)))).toEqual([path.basename(exported)]);
    const maps = target.headMaps.list(target.runs.getByUid(world.runs.heads.uid)!.id);
    expect(maps.map((m) => Array.from(m.scores))).toEqual(src.headMaps.list(world.runs.heads.id).map((m) => Array.from(m.scores)));
    target.close();
  });
});
