/**
 * The method's verbs end to end, in-process (`main(argv)` with stdout / stderr captured): `demo`, then a project
 * built step by step on the demo model — dataset import, transcripts, probe train, trace, heads, ablate, select
 * with --out, report, project info / export --run / import — each exiting 0 and printing what it should; and the
 * errors a user meets first (no --model, a dataset name that does not exist).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_PLANTED_HEADS, demoModelDir } from '../../src/main/api/demo/planted-model.js';
import { demoResourcesDir, loadDemoPrompts, loadDemoSafetyTrain } from '../../src/main/api/demo/resources.js';
import { makeCallContext } from '../../src/main/api/context.js';
import { dispatch } from '../../src/main/api/dispatch.js';
import { cli } from '../support/cli.js';


/** Run and expect exit 0 (showing stderr when not). */
async function ok(...argv: string[]) {
  const r = await cli(...argv);
  expect(r.code, `cliffscope ${argv.join(' ')}\n${r.stderr}`).toBe(0);
  return r;
}

let root: string;
let cache: string;
let modelDir: string;
let project: string;
const plantedKeys = new Set(DEMO_PLANTED_HEADS.map((h) => `${h.layer}:${h.head}`));

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-pipelines-cli-'));
  cache = path.join(root, 'cache');
  modelDir = demoModelDir(cache);
  project = path.join(root, 'p.cliffscope');
  // The probe's two sides as their own files (the CLI imports whole files; the demo set holds both labels).
  const prompts = loadDemoPrompts();
  for (const label of ['harmful', 'harmless'] as const) {
    fs.writeFileSync(path.join(root, `${label}.json`), JSON.stringify(prompts.filter((p) => p.label === label)));
  }
});
afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('cliffscope demo', () => {
  it('--json prints a report whose top heads are the planted ones', async () => {
    const demoProject = path.join(root, 'demo.cliffscope');
    const r = await ok('demo', '--project', demoProject, '--cache', cache, '--json');
    const report = JSON.parse(r.stdout);
    expect(report.heads.topMatchesPlanted).toBe(true);
    expect(report.projectFile).toBe(demoProject);
    expect(report.modelDir).toBe(modelDir);
    expect(report.probe.valAccuracy).toBe(1);
    expect(r.stderr).toBe(''); // --json: no progress bars or logs
    expect(fs.existsSync(path.join(modelDir, 'model.safetensors'))).toBe(true);
  });
});

describe('the method verb by verb', () => {
  const m = () => ['--model', modelDir, '--cache', cache, '--threads', '1'];
  const ids: Record<string, number> = {};
  let probeId: number;
  const outDir = () => path.join(root, 'selection');

  it('dataset import', async () => {
    const all = await ok('dataset', 'import', project, path.join(demoResourcesDir(), 'prompts.json'), '--name', 'prompts');
    expect(all.stdout).toMatch(/^imported 60 items into "prompts" \(#1\)/);
    expect(all.stdout).toContain('"prompt":"prompt"');
    for (const label of ['harmful', 'harmless']) {
      const r = await ok('dataset', 'import', project, path.join(root, `${label}.json`), '--name', label, '--json');
      expect(JSON.parse(r.stdout).dataset).toMatchObject({ name: label, itemCount: 30 });
    }
    const train = await ok('dataset', 'import', project, path.join(demoResourcesDir(), 'safety-train.json'), '--name', 'train', '--map', 'prompt=prompt,response=response,label=label');
    expect(train.stdout).toContain('imported 24 items into "train"');
    const list = await ok('dataset', 'list', project);
    expect(list.stdout.split('\n').filter(Boolean)).toHaveLength(4);
  });

  it('transcripts', async () => {
    const r = await ok('transcripts', project, ...m(), '--dataset', 'harmful', '--max-new-tokens', '40', '--batch', '16', '--name', 'harmful', '--tags', 'baseline, tiny', '--json');
    const report = JSON.parse(r.stdout);
    expect(report.run).toMatchObject({ kind: 'transcripts', status: 'done', name: 'harmful', tags: ['baseline', 'tiny'] });
    expect(report.items.done).toBe(31); // 30 transcripts and the run's summary
    expect(report.summary.transcripts).toBe(30);
    ids.transcripts = report.run.id;
    // Without --json: the text report.
    const text = await ok('report', project, String(ids.transcripts));
    expect(text.stdout).toContain(`run #${ids.transcripts} transcripts "harmful" [baseline, tiny] — done`);
    expect(text.stdout).toContain('31 done');
  });

  it('probe train (prompt-only)', async () => {
    const r = await ok(
      'probe', 'train', project, ...m(),
      '--positive', 'harmful', '--negative', 'harmless',
      '--position', 'prompt', '--label-rule', 'all',
      '--lr', '0.2', '--epochs', '60', '--batch-size', '16', '--select-by', 'val-loss',
    );
    expect(r.stdout).toMatch(/run #\d+ probe "refusal" — done/);
    expect(r.stdout).toContain('60 (30 refusals, 30 non-refusals');
    expect(r.stdout).toMatch(/val acc 100\.0%.*← best/);
    // Settings only Adam reads select the paper's loop, and the report says so, with the probe's calibration.
    expect(r.stdout).toMatch(/fit\s+adam \(preset paper-adam\): preset paper-adam, because settings only a gradient optimiser uses were given/);
    expect(r.stdout).toMatch(/validation loss [\d.]+ \(ln 2 = 0\.693\)\s+mean score [\d.]+ \/ [\d.]+\s+gap [\d.]+\s+ECE [\d.]+/);
    probeId = Number(/probe #(\d+)/.exec(r.stdout)![1]);
    expect(probeId).toBeGreaterThan(0);
  });

  it('trace', async () => {
    const r = await ok('trace', project, ...m(), '--probe', String(probeId), '--run', String(ids.transcripts), '--json');
    const report = JSON.parse(r.stdout);
    expect(report.run).toMatchObject({ kind: 'trace', status: 'done' });
    expect(report.summary.transcripts).toBe(30);
    expect(report.summary.meanPlateau).toBeGreaterThan(0.9);
    expect(report.summary.meanFinal).toBeLessThan(0.1);
    ids.trace = report.run.id;
  });

  it('heads', async () => {
    const r = await ok('heads', project, ...m(), '--probe', String(probeId), '--run', String(ids.transcripts), '--json');
    const report = JSON.parse(r.stdout);
    expect(report.run).toMatchObject({ kind: 'heads', status: 'done' });
    const top = (report.summary.suppression as { layer: number; head: number }[]).slice(0, 3);
    expect(new Set(top.map((h) => `${h.layer}:${h.head}`))).toEqual(plantedKeys);
    ids.heads = report.run.id;
    const text = await ok('report', project, String(ids.heads));
    expect(text.stdout).toMatch(/most negative \(refusal suppression\) heads:\n\s+L(1H5|2H2|3H6)/);
  });

  it('ablate', async () => {
    const r = await ok(
      'ablate', project, ...m(),
      '--heads-run', String(ids.heads), '--harmful', 'harmful', '--harmless', 'harmless', '--probe', String(probeId),
      '--fractions', '0,0.1', '--gammas', '0', '--max-new-tokens', '40', '--batch', '32', '--json',
    );
    const report = JSON.parse(r.stdout);
    expect(report.run).toMatchObject({ kind: 'ablate', status: 'done' });
    const cells = Object.fromEntries((report.summary.cells as { key: string; asr: number; overRefusal: number }[]).map((c) => [c.key, c]));
    expect(Object.keys(cells).sort()).toEqual(['baseline', 'random:k3:g0:s0', 'top:k3:g0']);
    expect(cells.baseline!.asr).toBe(1);
    expect(cells['top:k3:g0']!.asr).toBe(0);
    expect(cells['random:k3:g0:s0']!.asr).toBe(1);
    for (const c of Object.values(cells)) expect(c.overRefusal).toBe(0);
    ids.ablate = report.run.id;
    const text = await ok('report', project, String(ids.ablate));
    expect(text.stdout).toMatch(/top:k3:g0\s+3\s+0\s+0\.0%\s+0\.0%/);
    expect(text.stdout).toMatch(/baseline\s+0\s+1\s+100\.0%/);
  });

  it('judge --run on the sweep reports each cell, not one pooled number', async () => {
    const r = await ok('judge', project, ...m(), '--run', String(ids.ablate), '--keywords', 'jbb');
    expect(r.stdout).toMatch(/per cell of the sweep/);
    // The sweep's own judge on the same answers: the same numbers per cell (the baseline complies, top-k refuses).
    expect(r.stdout).toMatch(/baseline\s+0\s+1\s+100\.0%\s+30\/30/);
    expect(r.stdout).toMatch(/top:k3:g0\s+3\s+0\s+0\.0%\s+0\/30/);
    ids.judge = Number(/run #(\d+) judge/.exec(r.stdout)![1]);
  });

  it('select --out', async () => {
    const r = await ok('select', project, ...m(), '--probe', String(probeId), '--dataset', 'train', '--fraction', '0.25', '--out', outDir());
    expect(r.stdout).toMatch(/top-ms: selected 6 of 24/);
    for (const f of ['cliffscope_selection.json', 'cliffscope_selection_messages.jsonl', 'cliffscope_selection.provenance.json', 'cliffscope_selection_messages.provenance.json', 'dataset_info.json']) {
      expect(r.stderr).toContain(`wrote ${path.join(outDir(), f)}`);
    }
    const alpaca = JSON.parse(fs.readFileSync(path.join(outDir(), 'cliffscope_selection.json'), 'utf8')) as { instruction: string; output: string }[];
    expect(alpaca).toHaveLength(6);
    // Cliff-as-a-Judge picks harmful prompts the model does not refuse at the cliff; the output is the pair's own text.
    const train = new Map(loadDemoSafetyTrain().map((t) => [t.prompt, t]));
    for (const a of alpaca) {
      const item = train.get(a.instruction);
      expect(item?.label, a.instruction).toBe('harmful');
      expect(a.output).toBe(item!.response.replace(' </think> ', '</think>\n\n'));
    }
    ids.select = Number(/run #(\d+) select/.exec(r.stdout)![1]);
  });

  it('report --json for every run, and the run list', async () => {
    for (const [kind, id] of Object.entries(ids)) {
      const r = await ok('report', project, String(id), '--json');
      const report = JSON.parse(r.stdout);
      expect(report.run).toMatchObject({ id, kind, status: 'done' });
      expect(report.model.path).toBe(modelDir);
    }
    const list = await ok('report', project);
    expect(list.stdout.trim().split('\n')).toHaveLength(Object.keys(ids).length + 1); // + the probe run
  });

  it('select --out into a folder holding an earlier export: refused before a run exists unless --force, which keeps the user’s entries', async () => {
    const runCount = async () => JSON.parse((await ok('project', 'info', project, '--json')).stdout).runs.length as number;
    const infoFile = path.join(outDir(), 'dataset_info.json');
    const info = { my_sft: { file_name: 'my_sft.json' }, ...(JSON.parse(fs.readFileSync(infoFile, 'utf8')) as object) };
    fs.writeFileSync(infoFile, JSON.stringify(info, null, 2));
    const select = (...flags: string[]) => ['select', project, ...m(), '--probe', String(probeId), '--dataset', 'train', '--fraction', '0.25', ...flags];
    const before = await runCount();

    const clash = await cli(...select('--out', outDir()));
    expect(clash.code).not.toBe(0);
    expect(clash.stderr).toMatch(/already has "cliffscope_selection", "cliffscope_selection_messages".*; nothing was written/);
    expect(clash.stderr).toMatch(/--force/);
    expect(await runCount(), 'the refused export left a run behind').toBe(before);
    expect(JSON.parse(fs.readFileSync(infoFile, 'utf8'))).toEqual(info);

    const stray = await cli(...select('--force'));
    expect(stray.code).not.toBe(0);
    expect(stray.stderr).toMatch(/--force applies to --out/);

    const forced = await ok(...select('--out', outDir(), '--force'));
    expect(forced.stderr).toContain(`wrote ${infoFile}`);
    expect(Object.keys(JSON.parse(fs.readFileSync(infoFile, 'utf8')))).toEqual(Object.keys(info));
    expect(await runCount()).toBe(before + 1);
  });

  it('project info', async () => {
    const r = await ok('project', 'info', project, '--json');
    const info = JSON.parse(r.stdout);
    expect(info.models).toHaveLength(1);
    expect(info.datasets.map((d: { name: string }) => d.name)).toEqual(['prompts', 'harmful', 'harmless', 'train']);
    expect(info.probes).toEqual([expect.objectContaining({ id: probeId, name: 'refusal', residIndex: 5 })]);
    expect(info.runs.every((x: { status: string }) => x.status === 'done')).toBe(true);
    const text = await ok('project', 'info', project);
    expect(text.stdout).toContain(`#${probeId} refusal v1 (resid 5)`);
  });

  it('project export --run, then import into a second project', async () => {
    const exported = path.join(root, 'heads-run.cliffscope');
    const e = await ok('project', 'export', project, exported, '--run', String(ids.heads));
    expect(e.stdout).toBe(`wrote ${exported}\n`);
    const other = path.join(root, 'other.cliffscope');
    expect((await ok('project', 'new', other)).stdout).toBe(`created ${other}\n`);
    const i = await ok('project', 'import', other, exported, '--json');
    expect(JSON.parse(i.stdout)).toBeTypeOf('object');
    const info = JSON.parse((await ok('project', 'info', other, '--json')).stdout);
    // The run comes with what it was made from (the transcripts run it read, the probe's run), all done.
    expect(info.runs.map((x: { kind: string }) => x.kind).sort()).toEqual(['heads', 'probe', 'transcripts']);
    expect(info.runs.every((x: { status: string }) => x.status === 'done')).toBe(true);
    expect(info.probes).toEqual([expect.objectContaining({ name: 'refusal', residIndex: 5 })]);
    // The imported run's report is the original's (same ranking).
    const mine = JSON.parse((await ok('report', project, String(ids.heads), '--json')).stdout);
    const heads = info.runs.find((x: { kind: string }) => x.kind === 'heads');
    const theirs = JSON.parse((await ok('report', other, String(heads.id), '--json')).stdout);
    expect(theirs.summary).toEqual(mine.summary);
    expect(theirs.run.uid).toBe(mine.run.uid);
  });

  // Issue #15, "Arguments, everywhere": one range check per value, where it is parsed (the run kind's schema), for
  // every face and before a run exists — so a bad value exits 2 naming its flag and leaves no run behind.
  describe('bad values are refused before a run is created, naming the flag', () => {
    const runCount = async () => JSON.parse((await ok('project', 'info', project, '--json')).stdout).runs.length as number;
    const refused = async (argv: string[], message: string | RegExp) => {
      const before = await runCount();
      const r = await cli(...argv);
      expect(r.code, `${argv.join(' ')}\n${r.stderr}`).toBe(2);
      if (typeof message === 'string') expect(r.stderr).toContain(message);
      else expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/internal error|TypeError/);
      expect(await runCount(), `${argv.join(' ')} left a run behind`).toBe(before);
      return r.stderr;
    };
    const transcripts = (...flags: string[]) => ['transcripts', project, ...m(), '--dataset', 'harmful', ...flags];

    it('--max-new-tokens 0', async () => {
      await refused(transcripts('--max-new-tokens', '0'), '--max-new-tokens: must generate at least 1 token');
      await refused(['generate', modelDir, '--prompt', 'hi', '--max-new-tokens', '0', '--cache', cache], '--max-new-tokens: must generate at least 1 token');
    });

    it('--threads beyond what any machine has, as the API caps it', async () => {
      await refused(transcripts('--threads', '100000'), /--threads: .*1024/);
      await refused(['generate', modelDir, '--prompt', 'hi', '--threads', '100000', '--cache', cache], /--threads: .*1024/);
      await refused(['demo', '--project', path.join(root, 'never.cliffscope'), '--cache', cache, '--threads', '100000'], /--threads: .*1024/);
    });

    it('--head-scale-gamma that is not a finite number', async () => {
      await refused(transcripts('--heads', '1:5', '--head-scale-gamma', 'NaN'), '--head-scale-gamma must be a number, got "NaN"');
      await refused(transcripts('--heads', '1:5', '--head-scale-gamma', '1e400'), '--head-scale-gamma must be a finite number, got "1e400"');
    });

    it('--top-p 2: transcripts refuses it as generate does, with the same words', async () => {
      const a = await refused(transcripts('--temperature', '1', '--top-p', '2'), '--top-p: ');
      const b = await refused(['generate', modelDir, '--prompt', 'hi', '--temperature', '1', '--top-p', '2', '--cache', cache], '--top-p: ');
      expect(a.slice(a.indexOf('--top-p: '))).toBe(b.slice(b.indexOf('--top-p: ')));
    });

    it('probe train --preset, --l2 and --select-by outside their choices', async () => {
      const probe = (...flags: string[]) => ['probe', 'train', project, ...m(), '--positive', 'harmful', '--negative', 'harmless', '--position', 'prompt', ...flags];
      await refused(probe('--preset', 'adam'), /--preset: .*lbfgs.*paper-adam/);
      await refused(probe('--l2=-1'), '--l2: ');
      await refused(probe('--select-by', 'best'), /--select-by: .*val-accuracy-first/);
      await refused(probe('--label-rule', 'paper'), /--label-rule: .*paper-code/);
    });

    it('ablate --judge and --random-seeds outside their choices', async () => {
      const ablate = (...flags: string[]) => ['ablate', project, ...m(), '--heads-run', String(ids.heads), '--harmful', 'harmful', ...flags];
      await refused(ablate('--judge', 'probe'), /a probe judge reads the live probe's I'.*--probe/);
      await refused(ablate('--judge', 'jbb,jbb'), /the judge jbb is named twice/);
      await refused(ablate('--judge', 'probe:high', '--probe', String(probeId)), /--judge probe:high: the probe threshold must be a number/);
      await refused(ablate('--judge', 'jbb,llama'), /--judge.*(gcg|jbb)/);
      await refused(ablate('--random-seeds', '0'), '--random-seeds: ');
    });

    it('ablate --fractions 2 leaves no run (it used to leave an interrupted one)', async () => {
      await refused(['ablate', project, ...m(), '--heads-run', String(ids.heads), '--harmful', 'harmful', '--fractions', '0,2'], /--fractions: .*1/);
    });
  });

  it('--resume takes only the run id: the stored settings are used, none is demanded, a conflicting flag is an error', async () => {
    // An ablation sweep cancelled after its first item, as Ctrl-C or the app's Cancel leaves it.
    const controller = new AbortController();
    const ctx = makeCallContext('sweep', controller.signal, (e) => e.kind === 'progress' && e.done > 0 && controller.abort());
    const started = await dispatch(
      'run.start',
      { project, model: { dir: modelDir, cache, threads: 1 }, kind: 'ablate', config: { headsRunId: ids.heads!, harmfulDatasetId: 2, fractions: [0, 0.1], gammas: [0], randomControl: false, maxNewTokens: 40, batchSize: 1 } },
      { context: ctx },
    );
    expect(started.ok, JSON.stringify(!started.ok && started.error)).toBe(true);
    const runId = (started as { result: { runId: number; status: string } }).result.runId;
    expect((started as { result: { status: string } }).result.status).toBe('cancelled');

    const conflict = await cli('ablate', project, '--resume', String(runId), '--gammas', '0.5', '--cache', cache);
    expect(conflict.code).toBe(2);
    expect(conflict.stderr).toContain(`--resume ${runId} continues run #${runId} with its stored settings; leave out --gammas`);
    // No --model, --heads-run or --harmful: the run's own model and settings.
    const r = await ok('ablate', project, '--resume', String(runId), '--cache', cache, '--threads', '1', '--json');
    const report = JSON.parse(r.stdout);
    expect(report.run).toMatchObject({ id: runId, kind: 'ablate', status: 'done' });
    expect(report.run.config).toMatchObject({ fractions: [0, 0.1], gammas: [0], randomControl: false });
    expect(report.summary.cells.map((c: { key: string }) => c.key)).toEqual(['baseline', 'top:k3:g0']);
  });

  it('probe train --preset lbfgs --l2 auto: stored as given, and the run says what it fitted', async () => {
    const r = await ok('probe', 'train', project, ...m(), '--positive', 'harmful', '--negative', 'harmless', '--position', 'prompt', '--label-rule', 'all', '--preset', 'lbfgs', '--l2', 'auto', '--name', 'refusal-lbfgs', '--json');
    const report = JSON.parse(r.stdout);
    expect(report.run.config.train).toEqual({ preset: 'lbfgs', l2: 'auto' });
    // The preset named is also what the other settings pick, so the run says why that is the fit.
    expect(report.summary.training).toMatchObject({ preset: 'lbfgs', optimizer: 'lbfgs', reason: expect.stringMatching(/^the default: L-BFGS/), unconvergedResidIndices: [] });
    const best = report.summary.probes.find((p: { probeId: number }) => p.probeId === report.summary.bestProbeId);
    expect(best.calibration).toMatchObject({ set: 'validation', chanceLoss: Math.LN2, eceBins: 10 });
    expect(best.calibration.meanScore.positive - best.calibration.meanScore.negative).toBeGreaterThan(0.5);
  });

  it('probe train --layers still works, with a note that it is now --resid', async () => {
    const r = await ok('probe', 'train', project, ...m(), '--positive', 'harmful', '--negative', 'harmless', '--position', 'prompt', '--label-rule', 'all', '--layers', '2', '--epochs', '2', '--name', 'resid-flag', '--json');
    expect(r.stderr).toContain('note: --layers is now --resid');
    expect(JSON.parse(r.stdout).run.config.residIndices).toEqual([2]);
  });
});

describe('errors', () => {
  it('a pipeline verb without --model', async () => {
    const r = await cli('trace', project, '--probe', '1', '--run', '1');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--model DIR is required');
    expect(r.stdout).toBe('');
  });

  it('an unknown dataset name lists the datasets that exist', async () => {
    const r = await cli('transcripts', project, '--model', modelDir, '--cache', cache, '--dataset', 'nope');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no dataset "nope"');
    expect(r.stderr).toMatch(/datasets here: prompts \(#1\), harmful \(#2\), harmless \(#3\), train \(#4\)/);
  });

  it('an unknown probe id lists the probes, and leaves no run behind', async () => {
    const before = JSON.parse((await ok('project', 'info', project, '--json')).stdout).runs.length;
    const r = await cli('trace', project, '--model', modelDir, '--cache', cache, '--probe', '999', '--run', '2');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('probe #999 does not exist');
    expect(r.stderr).toMatch(/probes here: #\d+ refusal/);
    expect(JSON.parse((await ok('project', 'info', project, '--json')).stdout).runs).toHaveLength(before);
  });

  it('report on a run that does not exist', async () => {
    const r = await cli('report', project, '999');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('run #999 does not exist');
  });
});
