/**
 * The desktop app's file policy (GrantsPolicy): the renderer may only name what the user picked in a dialog, a
 * project's own folder, or what the engine named — and a path named by a project file's contents is only ever a
 * checkpoint to read, never a place to write.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { api } from '../../src/shared/contract.js';
import { filePath, ModelRef } from '../../src/shared/values.js';
import { grantFromResult, GrantsPolicy, grantPicked, PATH_FIELDS, refusedPath, requestPaths } from '../../src/main/web/file-access.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-grants-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Every key, in any method's params at any depth, whose value the contract types as a path. */
function contractPathFields(): Set<string> {
  const paths: ReadonlySet<z.ZodType> = new Set([filePath, ModelRef.shape.dir]);
  const found = new Set<string>();
  const seen = new Set<unknown>();
  const walk = (schema: z.ZodType): void => {
    if (seen.has(schema)) return;
    seen.add(schema);
    const def = schema._zod.def as unknown as Record<string, unknown>;
    const children: unknown[] = [];
    if (def.type === 'object') {
      for (const [key, value] of Object.entries(def.shape as Record<string, z.ZodType>)) {
        let inner: z.ZodType = value;
        // A path, or a list of paths (run.merge's files), however optional.
        for (;;) {
          const d = inner._zod.def as unknown as { type: string; innerType?: z.ZodType; element?: z.ZodType };
          if (['optional', 'nullable', 'default'].includes(d.type)) inner = d.innerType!;
          else if (d.type === 'array') inner = d.element!;
          else break;
        }
        if (paths.has(inner)) found.add(key);
        children.push(value);
      }
    }
    for (const k of ['innerType', 'element', 'valueType', 'in', 'out', 'left', 'right']) if (def[k]) children.push(def[k]);
    if (Array.isArray(def.options)) children.push(...def.options);
    for (const c of children) walk(c as z.ZodType);
  };
  for (const m of Object.values(api)) walk(m.params as z.ZodType);
  return found;
}

describe('GrantsPolicy', () => {
  it('checks every field the contract types as a path (a new one is not left unchecked)', () => {
    const fields = contractPathFields();
    expect(fields).toContain('cache'); // a model reference's compiled-model cache: the engine writes there
    expect([...fields].filter((f) => !PATH_FIELDS.has(f))).toEqual([]);
  });

  it('finds every path field at any depth, lists of paths included', () => {
    expect(requestPaths({ project: '/p', model: { dir: '/m' }, judge: { kind: 'guard', modelDir: '/g' }, n: 3 })).toEqual([
      { field: 'project', path: '/p' },
      { field: 'dir', path: '/m' },
      { field: 'modelDir', path: '/g' },
    ]);
    expect(requestPaths({ project: '/p', files: ['/s0', '/s1'] })).toEqual([
      { field: 'project', path: '/p' },
      { field: 'files', path: '/s0' },
      { field: 'files', path: '/s1' },
    ]);
  });

  it('a picked project grants its folder; a picked file only itself; a picked folder its contents', () => {
    const g = new GrantsPolicy();
    grantPicked(g, 'project-open', path.join(tmp, 'study', 'a.cliffscope'));
    grantPicked(g, 'dataset-file', path.join(tmp, 'data', 'x.csv'));
    grantPicked(g, 'model-folder', path.join(tmp, 'models'));
    expect(g.check(path.join(tmp, 'study', 'selection', 'out.json'))).toBeNull();
    expect(g.check(path.join(tmp, 'data', 'x.csv'))).toBeNull();
    expect(g.check(path.join(tmp, 'data', 'y.csv'))).toMatch(/not chosen/);
    expect(g.check(path.join(tmp, 'models', 'qwen', 'config.json'))).toBeNull();
    expect(g.check('/etc/passwd')).toMatch(/not chosen/);
  });

  it('follows links out of a granted folder', () => {
    const g = new GrantsPolicy();
    const folder = path.join(tmp, 'granted');
    fs.mkdirSync(folder);
    fs.symlinkSync('/etc', path.join(folder, 'escape'));
    grantPicked(g, 'folder', folder);
    expect(g.check(path.join(folder, 'escape', 'passwd'))).toMatch(/not chosen/);
  });

  it('model paths a project lists may be read as checkpoints, never written to', () => {
    const g = new GrantsPolicy();
    const target = path.join(os.homedir(), '.bashrc');
    grantFromResult(g, 'project.open', { file: '/p.cliffscope', models: [{ path: target }], datasets: [], probes: [], runs: [] });
    expect(refusedPath(g, { dir: target }, 'hint')).toBeNull();
    expect(refusedPath(g, { file: '/p.cliffscope', dest: target }, 'hint')).toMatchObject({ code: 'forbidden', hint: 'hint' });
    expect(refusedPath(g, { project: '/p.cliffscope', runId: 1, outDir: target }, 'hint')).toMatchObject({ code: 'forbidden' });
  });

  it('the recent list and the demo are what the engine named', () => {
    const g = new GrantsPolicy();
    grantFromResult(g, 'project.recent', { files: [path.join(tmp, 'r', 'one.cliffscope')] });
    grantFromResult(g, 'project.demo', { file: path.join(tmp, 'demo', 'demo.cliffscope'), report: { modelDir: path.join(tmp, 'demo-model') } });
    expect(g.check(path.join(tmp, 'r', 'one.cliffscope'))).toBeNull();
    expect(g.check(path.join(tmp, 'demo', 'demo.cliffscope'))).toBeNull();
    expect(g.check(path.join(tmp, 'demo-model'), 'dir')).toBeNull();
    expect(g.check(path.join(tmp, 'demo-model'), 'dest')).toMatch(/not chosen/);
  });
});
