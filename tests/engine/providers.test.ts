/**
 * Execution-provider selection: an explicit provider runs there or fails naming why; only `auto` falls back (to the
 * CPU in the end) and notes why it skipped the better ones; every face reports the provider that actually ran.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliffscopeError } from '../../src/main/engine/errors.js';
import { loadModel } from '../../src/main/engine/runtime/model.js';
import {
  availableProviders,
  listedProviders,
  ortReason,
  planProviders,
  type ProviderEnvironment,
  type ProviderName,
} from '../../src/main/engine/runtime/providers.js';
import { writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';
import { cli } from '../support/cli.js';

const env = (listed: ProviderName[], reasons: Partial<Record<ProviderName, string>> = {}): ProviderEnvironment => ({
  listed,
  unavailable: (p) => (listed.includes(p) ? (reasons[p] ?? null) : `no ${p} in this build`),
});

async function rejection(p: Promise<unknown>): Promise<CliffscopeError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(CliffscopeError);
  return e as CliffscopeError;
}

describe('planProviders', () => {
  it('auto tries the platform GPU provider when it can run, notes why it could not, and always ends with the CPU', () => {
    expect(planProviders('auto', env(['cpu', 'cuda', 'webgpu']))).toEqual({ candidates: ['cuda', 'cpu'], notes: [] });
    expect(planProviders('auto', env(['cpu', 'cuda', 'webgpu'], { cuda: 'libcublas.so.13 not found' }))).toEqual({
      candidates: ['cpu'],
      notes: ['cuda: libcublas.so.13 not found'],
    });
    expect(planProviders('auto', env(['cpu', 'dml', 'webgpu']))).toEqual({ candidates: ['dml', 'cpu'], notes: [] });
    // Providers the build does not have are not worth a note; WebGPU is never auto's choice.
    expect(planProviders('auto', env(['cpu', 'webgpu']))).toEqual({ candidates: ['cpu'], notes: [] });
  });

  it('an explicit provider is the only candidate, and one that cannot run is an error naming why', () => {
    expect(planProviders('cpu', env(['cpu']))).toEqual({ candidates: ['cpu'], notes: [] });
    expect(planProviders('webgpu', env(['cpu', 'webgpu']))).toEqual({ candidates: ['webgpu'], notes: [] });
    expect(planProviders('cuda', env(['cpu', 'cuda']))).toEqual({ candidates: ['cuda'], notes: [] });
    const e = (() => {
      try {
        planProviders('cuda', env(['cpu', 'cuda'], { cuda: 'libcudart.so.13 not found' }));
      } catch (err) {
        return err as CliffscopeError;
      }
      return null;
    })();
    expect(e?.code).toBe('provider-unavailable');
    expect(e?.message).toMatch(/cuda execution provider cannot run here: libcudart\.so\.13 not found/);
    expect(e?.hint).toMatch(/--provider auto/);
    expect(() => planProviders('dml', env(['cpu', 'cuda']))).toThrow(/no dml in this build/);
  });

  it('shortens ONNX Runtime messages to their reason', () => {
    expect(
      ortReason(
        '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::Initialize(…) adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters\nmore',
      ),
    ).toBe('Failed to get a WebGPU adapter: No supported adapters');
    expect(ortReason('Failed to load shared library')).toBe('Failed to load shared library');
  });
});

describe('on this machine', () => {
  let root: string;
  let dir: string;
  let cacheRoot: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-providers-'));
    dir = path.join(root, 'llama');
    cacheRoot = path.join(root, 'cache');
    writeTinyCheckpoint(dir, 'llama', { seed: 1 });
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('lists the CPU always, and CUDA only once its provider libraries are installed', () => {
    expect(availableProviders()).toContain('cpu');
    for (const p of availableProviders()) expect(listedProviders()).toContain(p);
  });

  it('cpu runs on the CPU with nothing to note', async () => {
    const cpu = await loadModel(dir, { cacheRoot, provider: 'cpu' });
    expect(cpu.session.provider).toBe('cpu');
    expect(cpu.session.providerNotes).toEqual([]);
    expect(cpu.compiled.options.activations).toBe('float32');
    await cpu.session.release();
  });

  it('auto runs where it can and says why better providers were skipped', async () => {
    const auto = await loadModel(dir, { cacheRoot, provider: 'auto' });
    if (auto.session.provider === 'cpu') {
      // The CPU graph is float32, and if this build has CUDA, the note says what is missing for it.
      expect(auto.compiled.options.activations).toBe('float32');
      if (listedProviders().includes('cuda')) expect(auto.session.providerNotes.join('\n')).toMatch(/^cuda: .*(libonnxruntime_providers_cuda\.so|lib\w+\.so)/m);
    } else {
      expect(auto.compiled.options.activations).toBe('float16');
    }
    await auto.session.release();
  });

  it('explicit cuda and webgpu never quietly run on the CPU: they run there or fail naming why', async () => {
    for (const provider of ['cuda', 'webgpu'] as const) {
      if (!listedProviders().includes(provider)) continue;
      const loaded = await loadModel(dir, { cacheRoot, provider }).catch((e: unknown) => e);
      if (loaded instanceof Error) {
        const e = loaded as CliffscopeError;
        expect(e.code, e.message).toBe('provider-unavailable');
        expect(e.message).toContain(`the ${provider} execution provider cannot run here: `);
        // The reason names the missing piece: the provider library (CUDA) or the adapter (WebGPU).
        expect(e.message).toMatch(provider === 'cuda' ? /lib\w+\.so/ : /adapter|Vulkan|WebGPU/i);
      } else {
        const model = loaded as Awaited<ReturnType<typeof loadModel>>;
        expect(model.session.provider).toBe(provider);
        await model.session.release();
      }
    }
  });

  it('generate --json carries the provider that ran; an explicit provider that cannot run exits non-zero naming why', async () => {
    const r = await cli('generate', dir, '--prompt', 'tell me a story', '--max-new-tokens', '2', '--json', '--provider', 'cpu', '--cache', cacheRoot);
    expect(r.code, r.stderr).toBe(0);
    const t = JSON.parse(r.stdout.trim().split('\n')[0]!);
    expect(t.provider).toBe('cpu');
    expect(t.provider_notes).toEqual([]);

    const auto = await cli('generate', dir, '--prompt', 'tell me a story', '--max-new-tokens', '2', '--json', '--cache', cacheRoot);
    const autoT = JSON.parse(auto.stdout.trim().split('\n')[0]!);
    expect(autoT.provider).toBe(availableProviders().includes('cuda') ? 'cuda' : 'cpu');
    if (autoT.provider === 'cpu' && listedProviders().includes('cuda')) expect(autoT.provider_notes.join('\n')).toMatch(/^cuda: .*lib\w+\.so/m);
    // Without --json the closing line says the same: where it ran and why auto skipped better providers.
    const plain = await cli('generate', dir, '--prompt', 'tell me a story', '--max-new-tokens', '2', '--cache', cacheRoot);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr).toContain(`tokens/s) on ${autoT.provider}${autoT.provider_notes.length ? ` (${autoT.provider_notes.join('; ')})` : ''}\n`);

    if (!availableProviders().includes('cuda') && listedProviders().includes('cuda')) {
      const cuda = await cli('generate', dir, '--prompt', 'hi', '--max-new-tokens', '2', '--json', '--provider', 'cuda', '--cache', cacheRoot);
      expect(cuda.code).not.toBe(0);
      expect(cuda.stdout).toBe('');
      expect(cuda.stderr).toMatch(/cuda execution provider cannot run here: .*libonnxruntime_providers_cuda\.so/);
    }
    const dml = await cli('generate', dir, '--prompt', 'hi', '--max-new-tokens', '2', '--provider', listedProviders().includes('dml') ? 'coreml' : 'dml', '--cache', cacheRoot);
    expect(dml.code).not.toBe(0);
    expect(dml.stderr).toMatch(/has no (dml|coreml) provider/);
  });
});
