/**
 * The shared dispatcher and handler table, as every face calls them: real engine, real onnxruntime-node, and a tiny
 * checkpoint written here (no network, no downloaded model).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { dispatch } from '../../src/main/api/dispatch.js';
import { handlers, type HandlerTable } from '../../src/main/api/handlers.js';
import { expectedTensors, parseModelConfig } from '../../src/main/engine/model/config.js';
import { writeSafetensors } from '../../src/main/engine/model/safetensors.js';
import { validateResult } from '../../src/shared/contract.js';

const tiny = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 64,
  max_position_embeddings: 128,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
};

let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-dispatch-'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(tiny));
  const cfg = parseModelConfig(tiny);
  const tensors = [...expectedTensors(cfg)].map(([name, shape]) => ({
    name,
    // Norm weights in F32, the rest BF16, so dtypes has two entries.
    dtype: name.endsWith('norm.weight') ? ('F32' as const) : ('BF16' as const),
    shape,
    data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
  }));
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('dispatch', () => {
  it('answers app.info from the real runtime', async () => {
    const reply = await dispatch('app.info', undefined);
    if (!reply.ok) throw new Error(reply.error.message);
    const info = validateResult('app.info', reply.result);
    const pkg = JSON.parse(fs.readFileSync(path.resolve('package.json'), 'utf8')) as { name: string; version: string };
    expect(info.name).toBe(pkg.name);
    expect(info.version).toBe(pkg.version);
    expect(info.versions.node).toBe(process.versions.node);
    expect(info.versions.electron).toBeNull();
    expect(info.onnxruntimeVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.providers).toContain('cpu');
    expect(info.unavailableProviders).not.toContain('cpu');
    for (const p of info.unavailableProviders) expect(info.providers).not.toContain(p);
    // Everything the runtime lists is accounted for on one side or the other.
    const ort = await import('onnxruntime-node');
    const listed = ort.listSupportedBackends().map((b) => b.name);
    expect([...info.providers, ...info.unavailableProviders].sort()).toEqual(
      [...new Set([...listed, 'cpu'])].sort(),
    );
  });

  it('inspects a checkpoint folder', async () => {
    const reply = await dispatch('model.inspect', { dir });
    if (!reply.ok) throw new Error(reply.error.message);
    const cfg = parseModelConfig(tiny);
    const expectedParams = [...expectedTensors(cfg).values()].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
    expect(reply.result).toEqual({
      architecture: 'LlamaForCausalLM',
      family: 'llama',
      layers: 2,
      heads: 4,
      kvHeads: 2,
      headDim: 4,
      hidden: 16,
      vocab: 64,
      dtypes: ['BF16', 'F32'],
      parameters: expectedParams,
      tied: true,
    });
  });

  it('passes engine errors through with their code, file and hint', async () => {
    const missing = path.join(dir, 'nope');
    const reply = await dispatch('model.inspect', { dir: missing });
    expect(reply.ok).toBe(false);
    if (reply.ok) return;
    expect(reply.error.code).toBe('missing-file');
    expect(reply.error.message).toContain(missing);
    expect(reply.error.file).toBe(missing);

    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-empty-'));
    try {
      const r2 = await dispatch('model.inspect', { dir: empty });
      if (r2.ok) throw new Error('expected an error');
      expect(r2.error.code).toBe('missing-file');
      expect(r2.error.hint).toContain('config.json');
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  it('refuses bad requests before any handler runs', async () => {
    const spy = vi.fn(handlers['model.inspect']);
    const table: HandlerTable = { ...handlers, 'model.inspect': spy };
    const unknown = await dispatch('model.rm', { dir }, { handlers: table });
    expect(unknown).toMatchObject({ ok: false, error: { code: 'unknown-method' } });
    const extra = await dispatch('model.inspect', { dir, rm: true }, { handlers: table });
    expect(extra).toMatchObject({ ok: false, error: { code: 'bad-params', issues: [{ path: 'rm' }] } });
    expect(spy).not.toHaveBeenCalled();
  });

  it('never lets a handler return something outside the contract', async () => {
    const onInternalError = vi.fn();
    const table: HandlerTable = {
      ...handlers,
      'model.inspect': async () => ({ leaked: '/etc/passwd' }) as never,
    };
    const reply = await dispatch('model.inspect', { dir }, { handlers: table, onInternalError });
    expect(reply).toMatchObject({ ok: false, error: { code: 'bad-result' } });
    expect(JSON.stringify(reply)).not.toContain('/etc/passwd');
    expect(onInternalError).toHaveBeenCalledTimes(1);
  });

  it('reports unexpected exceptions as internal errors without a stack', async () => {
    const table: HandlerTable = {
      ...handlers,
      'app.info': async () => {
        throw new RangeError('boom');
      },
    };
    const reply = await dispatch('app.info', {}, { handlers: table, onInternalError: () => {} });
    expect(reply).toEqual({ ok: false, error: { code: 'internal', message: 'boom' } });
  });
});
