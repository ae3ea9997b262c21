/**
 * Hostile or broken checkpoints: absurd sizes are refused before anything is built per layer, values outside their
 * meaningful range are refused by `inspect`, the weights must agree with config.json's layer count and cover their
 * files exactly, and a model whose forward pass goes non-finite fails with the likely cause instead of "generating"
 * token 0 over and over with exit code 0.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/main/engine/model/checkpoint.js';
import { parseModelConfig } from '../../src/main/engine/model/config.js';
import { checkedStep } from '../../src/main/engine/model/numerics.js';
import { Tokenizer } from '../../src/main/engine/tokenizer/tokenizer.js';
import { readSafetensorsHeader, readTensorAsFloat32, writeSafetensors } from '../../src/main/engine/model/safetensors.js';
import { writeRawSafetensors, writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';
import { cli } from '../support/cli.js';
import { expectCliffscopeError, makeTempDir } from './helpers.js';

const tmp = makeTempDir('hostile-ckpt');
afterAll(tmp.cleanup);
let counter = 0;
const fresh = (label: string) => writeTinyCheckpoint(path.join(tmp.dir, `${counter++}-${label}`), 'llama').dir;
const cache = path.join(tmp.dir, 'cache');

function editJson(file: string, edit: (v: Record<string, unknown>) => void): void {
  const v = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(v);
  fs.writeFileSync(file, JSON.stringify(v));
}

/** Rewrite one tensor of a tiny (F32) checkpoint's model.safetensors. */
function editTensor(dir: string, name: string, edit: (values: Float32Array) => void): void {
  const file = path.join(dir, 'model.safetensors');
  const { tensors, metadata } = readSafetensorsHeader(file);
  const all = tensors.map((t) => ({ name: t.name, dtype: 'F32' as const, shape: t.shape, data: readTensorAsFloat32(t).slice() }));
  edit(all.find((t) => t.name === name)!.data);
  writeSafetensors(file, all, metadata);
}

/** The CLI reports a clean error: exit code 1, no stack trace. */
function expectCleanFailure(r: { code: number; stderr: string }): void {
  expect(r.code).toBe(1);
  expect(r.stderr).not.toMatch(/\n\s+at \S+ \(/);
}

describe('config.json values outside their meaningful range are refused by inspect', () => {
  const cases: [string, (c: Record<string, unknown>) => void, RegExp][] = [
    ['num_hidden_layers 10^7', (c) => (c.num_hidden_layers = 10_000_000), /num_hidden_layers.*at most 1024/],
    ['num_hidden_layers 10^6', (c) => (c.num_hidden_layers = 1_000_000), /num_hidden_layers.*at most 1024/],
    ['vocab_size 10^12', (c) => (c.vocab_size = 1e12), /vocab_size/],
    ['rms_norm_eps 0', (c) => (c.rms_norm_eps = 0), /rms_norm_eps" is 0, outside its meaningful range \(0, 1\]/],
    ['rms_norm_eps negative', (c) => (c.rms_norm_eps = -1e-6), /rms_norm_eps/],
    ['rms_norm_eps 1e300', (c) => (c.rms_norm_eps = 1e300), /rms_norm_eps" is 1e\+300/],
    ['rope_theta 0', (c) => (c.rope_theta = 0), /rope_theta" is 0/],
    ['rope_theta 1e300', (c) => (c.rope_theta = 1e300), /rope_theta/],
    ['eos_token_id outside the vocabulary', (c) => (c.eos_token_id = 64), /eos_token_id" holds 64.*vocab_size 64/],
    ['eos_token_id negative', (c) => (c.eos_token_id = [2, -1]), /eos_token_id" holds -1/],
    ['a llama3 rope scaling with inverted factors', (c) => (c.rope_scaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 4, high_freq_factor: 1, original_max_position_embeddings: 64 }), /high_freq_factor/],
  ];
  it.each(cases)('%s', async (_label, edit, message) => {
    const dir = fresh('config');
    editJson(path.join(dir, 'config.json'), edit);
    const r = await cli('inspect', dir);
    expectCleanFailure(r);
    expect(r.stderr).toContain(path.join(dir, 'config.json'));
    expect(r.stderr).toMatch(message);
  });

  it('refuses an EOS id of generation_config.json outside the vocabulary', () => {
    const dir = fresh('gen-eos');
    const file = path.join(dir, 'generation_config.json');
    editJson(file, (g) => (g.eos_token_id = [2, 100_000]));
    expect(expectCliffscopeError(() => openCheckpoint(dir), 'bad-config', file).message).toMatch(/100000/);
  });

  it('still accepts every value in range (the defaults of real models)', () => {
    const base = JSON.parse(fs.readFileSync(path.join(fresh('ok'), 'config.json'), 'utf8')) as Record<string, unknown>;
    for (const [eps, theta] of [[1e-5, 10000], [1e-6, 1e6], [0.5, 5e5]]) {
      expect(parseModelConfig({ ...base, rms_norm_eps: eps, rope_theta: theta }).ropeTheta).toBe(theta);
    }
  });
});

describe('the weights must match config.json exactly', () => {
  it('refuses a config that claims more layers than the weights hold, before building per-layer structures', () => {
    const dir = fresh('more-layers');
    const file = path.join(dir, 'config.json');
    editJson(file, (c) => (c.num_hidden_layers = 1000));
    const err = expectCliffscopeError(() => openCheckpoint(dir), 'missing-tensor', file);
    expect(err.message).toMatch(/num_hidden_layers is 1000, but the weights hold only 2 layers/);
  });

  it('refuses a config with fewer layers than the weights, which would silently run a truncated model', () => {
    const dir = fresh('fewer-layers');
    const file = path.join(dir, 'config.json');
    editJson(file, (c) => (c.num_hidden_layers = 1));
    const err = expectCliffscopeError(() => openCheckpoint(dir), 'shape-mismatch', file);
    expect(err.message).toMatch(/weights hold 2 layers/);
    expect(err.hint).toMatch(/ignored/);
  });

  it('a header naming 200,000 layers is refused cleanly (counting them overflowed the stack)', () => {
    const dir = fresh('many-layers');
    const weights = path.join(dir, 'model.safetensors');
    const header: Record<string, unknown> = {};
    for (let i = 0; i < 200_000; i++) header[`model.layers.${i}.x`] = { dtype: 'U8', shape: [0], data_offsets: [0, 0] };
    writeRawSafetensors(weights, header, 0);
    const err = expectCliffscopeError(() => openCheckpoint(dir), 'shape-mismatch', path.join(dir, 'config.json'));
    expect(err.message).toMatch(/weights hold 200000 layers/);
  });

  it('refuses bytes after the last tensor', async () => {
    const dir = fresh('trailing');
    const weights = path.join(dir, 'model.safetensors');
    fs.appendFileSync(weights, Buffer.from('appended payload'));
    const err = expectCliffscopeError(() => openCheckpoint(dir), 'bad-safetensors', weights);
    expect(err.message).toMatch(/16 bytes after the last tensor/);
    expectCleanFailure(await cli('inspect', dir));
  });

  it('refuses data bytes between tensors that belong to no tensor', () => {
    const file = path.join(tmp.dir, 'gap.safetensors');
    writeRawSafetensors(file, { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, 12);
    expect(expectCliffscopeError(() => readSafetensorsHeader(file), 'bad-safetensors', file).message).toMatch(/bytes 4\.\.8 .*belong to no tensor/);
  });
});

describe('a forward pass that goes non-finite is an error naming the likely cause', () => {
  it('NaN weights: generate fails instead of printing output ids [0, 0, …] with exit code 0', async () => {
    const dir = fresh('nan');
    editTensor(dir, 'model.layers.0.input_layernorm.weight', (v) => v.fill(Number.NaN));
    const r = await cli('generate', dir, '--prompt', 'hello world', '--max-new-tokens', '3', '--json', '--cache', cache);
    expectCleanFailure(r);
    expect(r.stdout).not.toMatch(/output_ids/);
    expect(r.stderr).toMatch(/produced NaN/);
    expect(r.stderr).toMatch(/weights hold NaN or Inf/);
  });

  it('a head scale of 1e30: forward fails and names the head scale', async () => {
    const dir = fresh('head-scale');
    const hs = path.join(tmp.dir, `hs-${counter++}.json`);
    fs.writeFileSync(hs, JSON.stringify([[1e30, 1, 1, 1], [1e30, 1e30, 1e30, 1e30]]));
    const out = path.join(tmp.dir, 'never.safetensors');
    const r = await cli('forward', dir, '--ids', '1,12,13,14', '--head-scale', hs, '--out', out, '--cache', cache);
    expectCleanFailure(r);
    expect(r.stderr).toMatch(/same logit|produced NaN|produced -?Infinity/);
    expect(r.stderr).toMatch(/likely cause: the head scale holds a value of 1e\+30/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('names rms_norm_eps or rope_theta when a config built in code has them out of range', () => {
    const dir = fresh('numerics');
    const config = openCheckpoint(dir).config;
    const step = { logits: Float32Array.of(1, Number.NaN), tokenLogprobs: new Float32Array(0), resid: new Float32Array(0), z: new Float32Array(0) };
    const err = expectCliffscopeError(() => checkedStep(step, { ...config, rmsNormEps: 0 }, undefined), 'runtime', 'logits');
    expect(err.hint).toMatch(/^likely cause: rms_norm_eps is 0/);
    expect(expectCliffscopeError(() => checkedStep(step, { ...config, ropeTheta: 0 }), 'runtime', 'NaN').hint).toMatch(/rope_theta is 0/);
    // A finite step passes through untouched; a log-probability of -Infinity is allowed (a token of probability 0).
    const fine = { ...step, logits: Float32Array.of(1, 2), tokenLogprobs: Float32Array.of(-Infinity) };
    expect(checkedStep(fine, config)).toBe(fine);
  });
});

describe('checkpoint text files are read only if they are regular files of sane size', () => {
  const posix = process.platform !== 'win32';

  it.runIf(posix && fs.existsSync('/dev/zero'))('a tokenizer.json linked to /dev/zero is refused at once', async () => {
    const dir = fresh('tok-zero');
    fs.rmSync(path.join(dir, 'tokenizer.json'));
    fs.symlinkSync('/dev/zero', path.join(dir, 'tokenizer.json'));
    await expect(Tokenizer.fromDir(dir)).rejects.toThrow(/tokenizer\.json: is a device/);
  });

  it.runIf(posix)('a chat_template.jinja that is a FIFO is refused instead of blocking', async () => {
    const dir = fresh('tok-fifo');
    execFileSync('mkfifo', [path.join(dir, 'chat_template.jinja')]);
    await expect(Tokenizer.fromDir(dir)).rejects.toThrow(/chat_template\.jinja: is a pipe/);
  });

  it('a config.json that is not UTF-8 names its line', () => {
    const dir = fresh('config-latin1');
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, Buffer.concat([Buffer.from('{\n"architectures": ["LlamaForCausalLM"],\n"note": "caf'), Buffer.from([0xe9, 0x22, 0x7d])]));
    expect(expectCliffscopeError(() => openCheckpoint(dir), 'bad-json', file).message).toMatch(/line 3 is not valid UTF-8/);
  });
});
