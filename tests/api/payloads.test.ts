/**
 * Every workbench method, fed garbage and dangling ids on an empty project: always an error envelope with a clear
 * code (never 'internal', never a throw), the field at fault named, and the project left as it was.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispatch } from '../../src/main/api/dispatch.js';
import { closeAllWriters } from '../../src/main/api/projects.js';
import { JOB_METHODS, METHODS, validateRequest, type Method } from '../../src/shared/contract.js';

let dir: string;
let project: string;
let previousCache: string | undefined;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-api-payloads-'));
  previousCache = process.env.CLIFFSCOPE_CACHE;
  process.env.CLIFFSCOPE_CACHE = path.join(dir, 'cache');
  project = path.join(dir, 'empty.cliffscope');
  const res = await dispatch('project.open', { file: project, create: true });
  expect(res.ok).toBe(true);
});

afterAll(() => {
  closeAllWriters();
  if (previousCache === undefined) delete process.env.CLIFFSCOPE_CACHE;
  else process.env.CLIFFSCOPE_CACHE = previousCache;
  fs.rmSync(dir, { recursive: true, force: true });
});

const WORKBENCH = METHODS.filter((m) => !['app.info', 'model.inspect', 'generate.run'].includes(m));
const model = { dir: '/nonexistent/model' };

/** Well-formed requests that name ids the empty project does not have. */
const dangling: Partial<Record<Method, unknown>> = {
  'dataset.items': { project: '', datasetId: 9 },
  'run.start': { project: '', model, kind: 'trace', config: { probeId: 9, source: { kind: 'run', runId: 9 } } },
  'run.report': { project: '', runId: 9 },
  'run.update': { project: '', runId: 9, name: 'x' },
  'run.delete': { project: '', runId: 9 },
  'trace.list': { project: '', runId: 9 },
  'trace.get': { project: '', transcriptId: 9 },
  'trace.average': { project: '', runId: 9 },
  'heads.map': { project: '', runId: 9 },
  'heads.head': { project: '', runId: 9, layer: 0, head: 0 },
  'heads.inspect': { project: '', model, runId: 9, transcriptId: 9, layer: 0, head: 0 },
  'sweep.cells': { project: '', runId: 9 },
  'transcripts.list': { project: '', runId: 9 },
  'selection.list': { project: '', runId: 9 },
  'probe.list': { project: '', modelId: 9 },
  'probe.get': { project: '', probeId: 9 },
  'compare.runs': { project: '', runIds: [9, 10] },
  'table.csv': { project: '', query: 'cells', runId: 9 },
  'project.export': { file: '', dest: '', runId: 9 },
};

function withProject(params: unknown): unknown {
  const p = { ...(params as Record<string, unknown>) };
  if ('project' in p) p.project = project;
  if ('file' in p) p.file = project;
  if ('dest' in p) p.dest = path.join(dir, 'out.cliffscope');
  return p;
}

describe('workbench payloads', () => {
  it('lists the workbench methods and the job methods', () => {
    expect(WORKBENCH).toEqual([
      'model.add',
      'project.open',
      'project.recent',
      'project.remember',
      'project.demo',
      'project.export',
      'project.import',
      'dataset.preview',
      'dataset.import',
      'dataset.items',
      'run.start',
      'run.report',
      'run.update',
      'run.delete',
      'run.merge',
      'cluster.plan',
      'cluster.submit',
      'cluster.status',
      'cluster.collect',
      'cluster.list',
      'trace.list',
      'trace.get',
      'trace.average',
      'heads.map',
      'heads.head',
      'heads.inspect',
      'sweep.cells',
      'transcripts.list',
      'selection.list',
      'selection.export',
      'probe.list',
      'probe.get',
      'compare.runs',
      'table.csv',
      'files.list',
    ]);
    expect([...JOB_METHODS]).toEqual(['generate.run', 'model.add', 'project.demo', 'run.start', 'heads.inspect', 'run.merge', 'cluster.collect']);
  });

  it('rejects garbage for every method with a bad-params envelope, never an internal error', async () => {
    const garbage: unknown[] = [null, 'x', 42, [], { project: 5 }, { file: {} }, { runId: 'one' }, { project, runId: -1 }, { project, runId: 1.5 }];
    for (const method of WORKBENCH) {
      for (const params of garbage) {
        // project.recent / project.demo take no required fields; {} alone is fine for them, the rest is not.
        const res = await dispatch(method, params);
        expect(res.ok, `${method} ${JSON.stringify(params)}`).toBe(false);
        if (!res.ok) {
          expect(res.error.code, `${method} ${JSON.stringify(params)}: ${res.error.message}`).toBe('bad-params');
          expect(res.error.message).toContain(method);
          expect(res.error.issues?.length).toBeGreaterThan(0);
        }
      }
    }
  });

  it('rejects unknown fields, naming them', async () => {
    for (const method of WORKBENCH) {
      // run.start's params are a union on `kind`: give one so the fields behind it are checked too.
      const res = await dispatch(method, { project, file: project, ...(method === 'run.start' ? { kind: 'transcripts' } : {}), surprise: 1 });
      expect(res.ok).toBe(false);
      if (!res.ok) expect(res.error.issues?.map((i) => i.path)).toContain('surprise');
    }
  });

  it('answers dangling ids with a clear engine error and changes nothing', async () => {
    const before = fs.readFileSync(project);
    for (const [method, raw] of Object.entries(dangling)) {
      const params = withProject(raw);
      expect(() => validateRequest(method, params), method).not.toThrow();
      const res = await dispatch(method, params);
      expect(res.ok, method).toBe(false);
      if (!res.ok) {
        expect(res.error.code, `${method}: ${res.error.message}`).toBe('bad-argument');
        expect(res.error.message, method).toMatch(/#(9|10)\b/);
      }
    }
    expect(fs.existsSync(path.join(dir, 'out.cliffscope'))).toBe(false);
    expect(fs.readFileSync(project).equals(before)).toBe(true);
  });

  it('answers paths that are not there with missing-file errors', async () => {
    const missing = path.join(dir, 'missing.cliffscope');
    for (const [method, params] of [
      ['trace.list', { project: missing, runId: 1 }],
      ['project.open', { file: missing }],
      ['dataset.preview', { file: path.join(dir, 'missing.csv') }],
      ['dataset.import', { project, name: 'x', file: path.join(dir, 'missing.csv') }],
    ] as const) {
      const res = await dispatch(method, params);
      expect(res.ok).toBe(false);
      if (!res.ok) expect(res.error.code, `${method}: ${res.error.message}`).toBe('missing-file');
    }
    expect(fs.existsSync(missing)).toBe(false);
  });
});

describe('values out of range (issue #15): refused by the schema, naming the field, before anything loads or runs', () => {
  const refused = async (method: Method, params: unknown, field: string) => {
    const res = await dispatch(method, params);
    expect(res.ok, `${method} ${JSON.stringify(params)}`).toBe(false);
    if (res.ok) return;
    expect(res.error.code, res.error.message).toBe('bad-params');
    expect(res.error.issues?.map((i) => i.path)).toContain(field);
  };

  it('maxNewTokens 0 (it used to end in an internal TypeError)', async () => {
    await refused('generate.run', { model, prompts: ['hi'], maxNewTokens: 0 }, 'maxNewTokens');
    await refused('run.start', { project, model, kind: 'transcripts', config: { datasetId: 1, maxNewTokens: 0 } }, 'config.maxNewTokens');
  });

  it('threads beyond the cap, a γ that is not finite, top-p above 1, a fraction above 1', async () => {
    await refused('generate.run', { model: { ...model, threads: 100_000 }, prompts: ['hi'], maxNewTokens: 4 }, 'model.threads');
    await refused('generate.run', { model, prompts: ['hi'], maxNewTokens: 4, headScale: [[1, null]] }, 'headScale[0][1]');
    await refused('run.start', { project, model, kind: 'transcripts', config: { datasetId: 1, sampling: { temperature: 1, topP: 2 } } }, 'config.sampling.topP');
    await refused('generate.run', { model, prompts: ['hi'], maxNewTokens: 4, sampling: { temperature: 1, topP: 2 } }, 'sampling.topP');
    await refused('run.start', { project, model, kind: 'ablate', config: { headsRunId: 1, harmfulDatasetId: 1, fractions: [2] } }, 'config.fractions[0]');
  });

  it('a config with resume: a resumed run keeps its stored settings', async () => {
    const res = await dispatch('run.start', { project, model, kind: 'trace', resume: 1, config: { probeId: 1, source: { kind: 'run', runId: 1 } } });
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.error.issues?.[0]).toEqual({ path: 'config', message: 'leave it out with resume' });
  });
});
