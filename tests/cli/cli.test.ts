/**
 * The `cliffscope` command line: help for every verb, clear errors with exit codes, and `forward` writing the
 * activations a researcher takes into a notebook.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERBS as COMMANDS } from '../../src/main/program.js';
import { readSafetensorsHeader, readTensorAsFloat32 } from '../../src/main/engine/model/safetensors.js';
import { loadModel } from '../../src/main/engine/runtime/model.js';
import { teacherForce } from '../../src/main/engine/runtime/teacher-force.js';
import { writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';
import { cli } from '../support/cli.js';


let root: string;
let model: string;
let cache: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-cli-'));
  model = path.join(root, 'qwen3');
  cache = path.join(root, 'cache');
  writeTinyCheckpoint(model, 'qwen3', { seed: 4 });
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('help', () => {
  it('lists every verb', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toContain(c.name);
  });

  it.each(COMMANDS.map((c) => c.name))('%s --help prints its usage', async (name) => {
    const r = await cli(name, '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: cliffscope ${name}`));
  });

  it.each(['inspect', 'forward', 'generate', 'precision'])('%s wants exactly one MODEL_DIR', async (name) => {
    for (const args of [[], [model, model]]) {
      const r = await cli(name, ...args, ...(name === 'forward' ? ['--ids', '1'] : name === 'generate' ? ['--prompt', 'hi'] : name === 'precision' ? ['--weights', 'int4'] : []));
      expect(r.code, `${name} ${args.length} dirs`).toBe(2);
      expect(r.stderr).toContain(`${name} takes exactly one MODEL_DIR`);
    }
  });

  it('rejects an unknown verb and an unknown option', async () => {
    expect((await cli('frobnicate')).code).toBe(2);
    const r = await cli('inspect', model, '--colour');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--colour');
  });

  it('runs as an installed binary through bin/cliffscope.js', () => {
    const out = execFileSync(process.execPath, [path.resolve('bin/cliffscope.js'), '--help'], { encoding: 'utf8' });
    expect(out).toContain('forward');
  });
});

describe('inspect', () => {
  it('describes a checkpoint', async () => {
    const r = await cli('inspect', model, '--json');
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info).toMatchObject({ architecture: 'Qwen3ForCausalLM', layers: 2 });
  });

  it('names the missing file', async () => {
    const r = await cli('inspect', path.join(root, 'nowhere'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nowhere');
  });
});

describe('forward', () => {
  it('writes every activation, equal to the engine’s own teacher-forced pass', async () => {
    const out = path.join(root, 'acts.safetensors');
    const ids = [1, 12, 13, 14, 40, 22];
    const r = await cli('forward', model, '--ids', ids.join(','), '--out', out, '--cache', cache, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ tokens: ids.length, out });

    const { tensors } = readSafetensorsHeader(out);
    const byName = new Map(tensors.map((t) => [t.name, t]));
    const m = await loadModel(model, { cacheRoot: cache });
    const { numLayers: L, hiddenSize: d, numHeads: H, headDim: D, vocabSize: V } = m.config;
    expect(byName.get('logits')!.shape).toEqual([ids.length, V]);
    expect(byName.get('ln_final.hook_normalized')!.shape).toEqual([ids.length, d]);
    expect(byName.get('input_ids')!.dtype).toBe('I64');
    for (let i = 0; i < L; i++) {
      expect(byName.get(`blocks.${i}.hook_resid_post`)!.shape).toEqual([ids.length, d]);
      expect(byName.get(`blocks.${i}.attn.hook_z`)!.shape).toEqual([ids.length, H, D]);
    }
    const tf = await teacherForce(m.session, ids, { residLayers: [L], logitPositions: ids.map((_, t) => t) });
    expect(Array.from(readTensorAsFloat32(byName.get('logits')!))).toEqual(Array.from(tf.logits));
    expect(Array.from(readTensorAsFloat32(byName.get(`blocks.${L - 1}.hook_resid_post`)!))).toEqual(Array.from(tf.resid.get(L)!));
    await m.session.release();
  });

  it('encodes text through the chat template and applies a head-scale file', async () => {
    const hsFile = path.join(root, 'hs.json');
    const m = await loadModel(model, { cacheRoot: cache });
    const { numLayers: L, numHeads: H } = m.config;
    await m.session.release();
    const hs = Array.from({ length: L }, () => new Array(H).fill(1));
    hs[1]![0] = 0;
    fs.writeFileSync(hsFile, JSON.stringify(hs));
    const plain = path.join(root, 'plain.safetensors');
    const ablated = path.join(root, 'ablated.safetensors');
    expect((await cli('forward', model, '--text', 'how do i make a cake', '--chat', '--out', plain, '--cache', cache)).code).toBe(0);
    expect((await cli('forward', model, '--text', 'how do i make a cake', '--chat', '--head-scale', hsFile, '--out', ablated, '--cache', cache)).code).toBe(0);
    const z = (f: string, name: string) => readTensorAsFloat32(readSafetensorsHeader(f).tensors.find((t) => t.name === name)!);
    // Chat template: BOS, <|user|>, the words, then the generation prompt.
    const idsInfo = readSafetensorsHeader(plain).tensors.find((t) => t.name === 'input_ids')!;
    const raw = fs.readFileSync(plain).subarray(idsInfo.begin, idsInfo.end);
    const ids = Array.from(new BigInt64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)), Number);
    // <s> <|user|> how do i make a cake <|assistant|> <think>
    expect(ids.length).toBe(10);
    expect([ids[0], ids[1], ids[8], ids[9]]).toEqual([1, 4, 5, 6]);
    const logitsPlain = z(plain, 'logits');
    const logitsAblated = z(ablated, 'logits');
    expect(logitsPlain.length).toBe(logitsAblated.length);
    expect(logitsPlain.some((v, i) => Math.abs(v - logitsAblated[i]!) > 1e-4)).toBe(true);
    // Layer 0 is upstream of the ablated head: unchanged.
    expect(Array.from(z(ablated, 'blocks.0.hook_resid_post'))).toEqual(Array.from(z(plain, 'blocks.0.hook_resid_post')));
  });

  it('rejects a head-scale file of the wrong shape, naming it', async () => {
    const bad = path.join(root, 'bad-hs.json');
    fs.writeFileSync(bad, JSON.stringify([[1, 1]]));
    const r = await cli('forward', model, '--ids', '1,2', '--head-scale', bad, '--cache', cache);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(bad);
    expect(r.stderr).toContain('layers');
  });

  it('rejects out-of-vocabulary ids and conflicting inputs', async () => {
    expect((await cli('forward', model, '--ids', '1,99999', '--cache', cache)).stderr).toContain('--ids');
    expect((await cli('forward', model, '--ids', '1', '--text', 'hi', '--cache', cache)).code).toBe(2);
  });
});

describe('generate', () => {
  it('prints one JSON transcript per prompt, equal across batch sizes', async () => {
    const file = path.join(root, 'prompts.jsonl');
    fs.writeFileSync(file, ['{"prompt": "how do i make a cake"}', '', '{"prompt": "tell me a story about a bomb"}', '{"prompt": "why"}'].join('\n'));
    const run = async (batch: string) => {
      const r = await cli('generate', model, '--prompts', file, '--chat', '--max-new-tokens', '6', '--batch', batch, '--json', '--cache', cache);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    };
    const one = await run('1');
    const three = await run('3');
    expect(one.map((t) => t.prompt)).toEqual(['how do i make a cake', 'tell me a story about a bomb', 'why']);
    expect(three).toEqual(one);
    for (const t of one) {
      expect(Object.keys(t)).toEqual(expect.arrayContaining(['prompt', 'input_ids', 'output_ids', 'text', 'thinking', 'answer', 'finish_reason']));
      expect(t.input_ids[t.input_ids.length - 1]).toBe(6); // the template pre-fills <think>
      expect(t.think_open).toBe(t.input_ids.length - 1);
    }
  });

  it('samples reproducibly with a seed, and reads .txt and .json prompt files', async () => {
    const txt = path.join(root, 'prompts.txt');
    fs.writeFileSync(txt, 'how do i make a cake\r\ntell me a story\r\n');
    const json = path.join(root, 'prompts.json');
    fs.writeFileSync(json, JSON.stringify(['how do i make a cake', { prompt: 'tell me a story' }]));
    const args = ['--temperature', '1.2', '--top-p', '0.9', '--seed', '5', '--max-new-tokens', '8', '--json', '--cache', cache];
    const a = await cli('generate', model, '--prompts', txt, ...args);
    const b = await cli('generate', model, '--prompts', json, ...args);
    expect(a.code, a.stderr).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    const c = await cli('generate', model, '--prompts', txt, ...args.map((v) => (v === '5' ? '6' : v)));
    expect(c.stdout).not.toBe(a.stdout);
  });

  it('names only flags it has: a model without a chat template, under --chat, is told to leave out --chat', async () => {
    const noTemplate = path.join(root, 'no-template');
    writeTinyCheckpoint(noTemplate, 'qwen3', { seed: 4 });
    const configFile = path.join(noTemplate, 'tokenizer_config.json');
    const { chat_template: _dropped, ...rest } = JSON.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(configFile, JSON.stringify(rest));
    const r = await cli('generate', noTemplate, '--prompt', 'hi', '--chat', '--cache', cache);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no chat template');
    expect(r.stderr).toContain('(leave out --chat)');
    expect(r.stderr).not.toContain('--no-chat'); // generate has no such flag
  });

  it('rejects bad prompt files and options with a clear error', async () => {
    const bad = path.join(root, 'bad.json');
    fs.writeFileSync(bad, '[1, 2');
    const r = await cli('generate', model, '--prompts', bad, '--cache', cache);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(bad);
    expect((await cli('generate', model, '--prompt', 'hi', '--greedy', '--temperature', '1')).code).toBe(2);
    expect((await cli('generate', model, '--prompt', 'hi', '--provider', 'tpu')).stderr).toContain('--provider');
  });
});

describe('dataset import --format', () => {
  it('reads a file whose extension does not say its format, as the hint for it says', async () => {
    const file = path.join(root, 'prompts.txt');
    fs.writeFileSync(file, 'goal,label\nhow do i make a cake,harmless\ntell me a story,harmless\n');
    const project = path.join(root, 'formats.cliffscope');
    const guessed = await cli('dataset', 'import', project, file, '--name', 'txt');
    expect(guessed.code).toBe(1);
    expect(guessed.stderr).toMatch(/format/);
    const r = await cli('dataset', 'import', project, file, '--name', 'txt', '--format', 'csv', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).dataset).toMatchObject({ name: 'txt', format: 'csv', itemCount: 2 });
    const bad = await cli('dataset', 'import', project, file, '--name', 'other', '--format', 'xml');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--format: ');
  });

  it('gives every item one label with --label', async () => {
    const file = path.join(root, 'harmful.csv');
    fs.writeFileSync(file, 'goal,label\nhow do i pick a lock,x\nhow do i make a weapon,y\n');
    const project = path.join(root, 'labels.cliffscope');
    const r = await cli('dataset', 'import', project, file, '--name', 'h', '--label', 'harmful', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).dataset.mapping).toEqual({ prompt: 'goal', fileLabel: 'harmful' });
    const empty = await cli('dataset', 'import', project, file, '--name', 'h2', '--label', ' ');
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('--label: ');
  });
});

describe('precision', () => {
  it('reports the measured cost of int4 weights and generates with them', async () => {
    const r = await cli('precision', model, '--weights', 'int4', '--json', '--cache', cache);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.variant).toMatchObject({ weights: 'int4', int4AccuracyLevel: 4, quantizeLmHead: true }); // the defaults
    expect(report.maxAbsLogitDiff).toBeGreaterThan(0);
    expect(report.greedyAgreement.argmax).toBeGreaterThan(0);
    expect(report.greedyAgreement.argmax).toBeLessThanOrEqual(1);
    const g = await cli('generate', model, '--prompt', 'tell me a story', '--weights', 'int4', '--max-new-tokens', '3', '--json', '--cache', cache);
    expect(g.code, g.stderr).toBe(0);
    expect(JSON.parse(g.stdout).output_ids).toHaveLength(3);
    // The exact settings on request: float LM head, float multiply.
    const exact = await cli('precision', model, '--weights', 'int4', '--int4-lm-head', 'float', '--int4-accuracy-level', '0', '--json', '--cache', cache);
    expect(exact.code, exact.stderr).toBe(0);
    expect(JSON.parse(exact.stdout).variant).toMatchObject({ int4AccuracyLevel: 0, quantizeLmHead: false });
  });

  it('rejects int4 knobs without int4 weights, and unknown precisions', async () => {
    expect((await cli('generate', model, '--prompt', 'hi', '--int4-block', '64')).stderr).toContain('--weights: must be int4 for the int4 options');
    expect((await cli('generate', model, '--prompt', 'hi', '--int4-lm-head', 'float')).stderr).toContain('--weights: must be int4 for the int4 options');
    expect((await cli('generate', model, '--prompt', 'hi', '--weights', 'int4', '--int4-lm-head', 'int8')).stderr).toContain('--int4-lm-head must be one of int4, float');
    expect((await cli('precision', model, '--weights', 'int3')).code).toBe(2);
  });
});
