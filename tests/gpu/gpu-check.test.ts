/**
 * `npm run gpu-check` on the CPU: the float16 graph against the float32 one, every check computed and passing (on a
 * GPU the same code compares the GPU provider with the CPU); and an explicit provider that cannot run here fails fast
 * naming why, instead of checking the CPU against itself.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listedProviders, providerUnavailable } from '../../src/main/engine/runtime/providers.js';
import { runGpuCheck } from '../../scripts/gpu/parity.js';
import { sharedPath } from '../support/shared-data.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-gpu-check-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('gpu-check', () => {
  it('runs every check on the CPU float16 graph against float32, and reports where it ran', async () => {
    const stories = sharedPath('models/stories260K-hf', 'gpu-check on stories260K');
    const report = await runGpuCheck({
      provider: 'cpu',
      activations: 'float16',
      storiesDir: stories,
      cacheRoot: path.join(root, 'cache'),
      workDir: path.join(root, 'work'),
      demoPipeline: true,
    });
    expect(report.provider).toBe('cpu');
    expect(report.providerNotes).toEqual([]);
    const perModel = ['logits', 'resid-taps', 'z-taps', 'greedy-agreement', 'greedy-decoding', 'head-ablation', 'head-ablation-argmax', 'batched-equals-single'];
    const models = stories ? ['demo', 'stories260K'] : ['demo'];
    for (const m of models) expect(report.checks.filter((c) => c.model === m && perModel.includes(c.name)).map((c) => c.name)).toEqual(perModel);
    expect(report.checks.filter((c) => ['planted-heads', 'asr-change', 'asr-cells'].includes(c.name))).toHaveLength(3);
    for (const c of report.checks) expect(c.pass, `${c.model} ${c.name}: ${c.measured} ${c.detail}`).toBe(true);
    // Really the float16 graph: its rounding shows, well inside the tolerance.
    const logits = report.checks.find((c) => c.model === 'demo' && c.name === 'logits')!;
    expect(logits.measured).toBeGreaterThan(1e-5);
    expect(logits.measured).toBeLessThan(report.tolerance / 2);
    expect(report.pass).toBe(true);
    if (!stories) expect(report.notes.join(' ')).toMatch(/stories260K not found/);
  });

  it('an explicit provider that cannot run here exits 2 naming why', () => {
    const provider = (['webgpu', 'cuda'] as const).find((p) => listedProviders().includes(p) && providerUnavailable(p) !== null);
    // webgpu is listed but has no adapter on a machine without a GPU; that is found when its session is created.
    const target = provider ?? (listedProviders().includes('webgpu') ? 'webgpu' : 'dml');
    let code = 0;
    let stderr = '';
    try {
      execFileSync(process.execPath, [path.join(repo, 'bin', 'run-ts.js'), path.join(repo, 'scripts', 'gpu', 'check.ts'), '--provider', target, '--no-demo', '--cache', path.join(root, 'cache')], {
        stdio: ['ignore', 'pipe', 'pipe'],
        encoding: 'utf8',
      });
    } catch (e) {
      code = (e as { status: number }).status;
      stderr = (e as { stderr: string }).stderr;
    }
    if (code === 0) return; // this machine has a GPU the provider runs on: nothing to refuse
    expect(code).toBe(2);
    expect(stderr).toMatch(new RegExp(`the ${target} execution provider cannot run here: `));
  });
});
