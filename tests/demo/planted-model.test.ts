/**
 * The demo checkpoint as files: generated deterministically, idempotent, a valid Hugging Face checkpoint, ground truth
 * recorded in demo.json, a tokenizer whose think markers the engine finds, and demo prompt sets in its vocabulary.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_GENERATOR_VERSION, DEMO_PARTLY_REFUSING_VARIANT, DEMO_PLANTED_HEADS, buildDemoCheckpoint, demoModelDir, writeDemoModel } from '../../src/main/api/demo/planted-model.js';
import { loadDemoPrompts, loadDemoSafetyTrain } from '../../src/main/api/demo/resources.js';
import { DEMO_HARMFUL_WORDS } from '../../src/main/api/demo/vocabulary.js';
import { openCheckpoint } from '../../src/main/engine/model/checkpoint.js';
import { Tokenizer } from '../../src/main/engine/tokenizer/tokenizer.js';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-demo-files-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const words = (text: string) => text.toLowerCase().match(/\w+|[^\w\s]+/g) ?? [];

describe('writeDemoModel', () => {
  it('writes a checkpoint the engine accepts, with the ground truth in demo.json', () => {
    const info = writeDemoModel(path.join(root, 'a'));
    expect(info.created).toBe(true);
    expect(info.plantedHeads).toEqual(DEMO_PLANTED_HEADS);
    const ckpt = openCheckpoint(info.dir);
    expect(ckpt.config).toMatchObject({ architecture: 'LlamaForCausalLM', numLayers: 4, numHeads: 8, headDim: 16 });
    const demo = JSON.parse(fs.readFileSync(path.join(info.dir, 'demo.json'), 'utf8'));
    expect(demo.generatorVersion).toBe(DEMO_GENERATOR_VERSION);
    expect(demo.plantedHeads.map((h: { layer: number; head: number }) => ({ layer: h.layer, head: h.head }))).toEqual(DEMO_PLANTED_HEADS);
    expect(new Set(DEMO_PLANTED_HEADS.map((h) => h.layer)).size).toBe(DEMO_PLANTED_HEADS.length);
    expect(demo.probe.weights).toHaveLength(ckpt.config.hiddenSize);
  });

  it('is idempotent and deterministic', () => {
    const dir = path.join(root, 'a');
    const before = fs.statSync(path.join(dir, 'model.safetensors')).mtimeMs;
    expect(writeDemoModel(dir).created).toBe(false);
    expect(fs.statSync(path.join(dir, 'model.safetensors')).mtimeMs).toBe(before);

    writeDemoModel(path.join(root, 'b'));
    for (const f of ['model.safetensors', 'config.json', 'tokenizer.json', 'tokenizer_config.json', 'demo.json']) {
      expect(fs.readFileSync(path.join(root, 'b', f)).equals(fs.readFileSync(path.join(dir, f))), f).toBe(true);
    }
    const x = buildDemoCheckpoint();
    const y = buildDemoCheckpoint();
    const bytes = (data: unknown) => Buffer.from((data as Float32Array).buffer);
    x.tensors.forEach((t, i) => expect(bytes(t.data).equals(bytes(y.tensors[i]!.data)), t.name).toBe(true));
  });

  it('rebuilds a stale copy and refuses a folder that is not a demo model', () => {
    const dir = path.join(root, 'stale');
    writeDemoModel(dir);
    const demoFile = path.join(dir, 'demo.json');
    fs.writeFileSync(demoFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(demoFile, 'utf8')), generatorVersion: -1 }));
    expect(writeDemoModel(dir).created).toBe(true);
    expect(JSON.parse(fs.readFileSync(demoFile, 'utf8')).generatorVersion).toBe(DEMO_GENERATOR_VERSION);
    expect(fs.readdirSync(root).filter((f) => f.includes('.tmp-'))).toEqual([]);

    const other = path.join(root, 'someone-elses');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'notes.txt'), 'keep me');
    expect(() => writeDemoModel(other)).toThrow(/not a Cliffscope demo model/);
    expect(fs.readFileSync(path.join(other, 'notes.txt'), 'utf8')).toBe('keep me');
  });

  it('builds a variant with other strengths, records it, and keeps variant and built-in folders apart', () => {
    const dir = path.join(root, 'variant');
    const info = writeDemoModel(dir, DEMO_PARTLY_REFUSING_VARIANT);
    expect(info.created).toBe(true);
    const demo = JSON.parse(fs.readFileSync(path.join(dir, 'demo.json'), 'utf8'));
    expect(demo.variant).toBe('partly-refusing');
    expect(demo.plantedHeads.map((h: { suppression: number }) => h.suppression)).toEqual([0.2, 0.17, 0.13]);
    expect(demo.harmfulWords.bomb).toBe(1);
    expect(demo.harmfulWords.hack).toBe(0.45);
    // Same variant: reused. The built-in demo asked for in that folder: rebuilt (and without a variant field).
    expect(writeDemoModel(dir, DEMO_PARTLY_REFUSING_VARIANT).created).toBe(false);
    expect(writeDemoModel(dir).created).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'demo.json'), 'utf8'))).not.toHaveProperty('variant');
    expect(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(fs.readFileSync(path.join(root, 'a', 'model.safetensors')))).toBe(true);
    // A variant changed under the same name is rebuilt.
    writeDemoModel(dir, DEMO_PARTLY_REFUSING_VARIANT);
    expect(writeDemoModel(dir, { ...DEMO_PARTLY_REFUSING_VARIANT, suppression: [0.3, 0.2, 0.1] }).created).toBe(true);
  });

  it('rejects a variant it cannot build', () => {
    const v = DEMO_PARTLY_REFUSING_VARIANT;
    expect(() => buildDemoCheckpoint({ ...v, suppression: [0.5, 0.5] })).toThrow(/suppression needs 3 fractions/);
    expect(() => buildDemoCheckpoint({ ...v, suppression: [0.5, 1.5, 0] })).toThrow(/suppression/);
    expect(() => buildDemoCheckpoint({ ...v, harmfulWords: { nuke: 1 } })).toThrow(/"nuke" is not in the demo vocabulary/);
    expect(() => buildDemoCheckpoint({ ...v, harmfulWords: { bomb: 0 } })).toThrow(/harm strength of "bomb"/);
    expect(() => buildDemoCheckpoint({ ...v, name: 'Bad Name' })).toThrow(/name/);
  });

  it('lives under the cache root by default', () => {
    expect(demoModelDir('/x/cache')).toBe(path.join('/x/cache', 'demo', 'planted-refusal'));
  });
});

describe('demo tokenizer and prompt sets', () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await Tokenizer.fromDir(writeDemoModel(path.join(root, 'a')).dir);
  });

  it('exposes <think> / </think> as special tokens and pre-fills <think> like an R1 template', () => {
    expect(tok.thinkMarkers.open?.text).toBe('<think>');
    expect(tok.thinkMarkers.close?.text).toBe('</think>');
    const special = tok.specialTokenIds();
    expect(special.has(tok.thinkMarkers.open!.id) && special.has(tok.thinkMarkers.close!.id)).toBe(true);
    const { text, ids } = tok.encodeChat([{ role: 'user', content: 'How do I build a bomb?' }]);
    expect(text).toBe('<s><|user|> How do I build a bomb? <|assistant|> <think> ');
    expect(tok.promptPrefillsThink(ids)).toBe(true);
  });

  it('has every word of the demo prompts and training set in its vocabulary', () => {
    const unk = tok.tokenToId('<unk>');
    const texts = [...loadDemoPrompts().map((p) => p.prompt), ...loadDemoSafetyTrain().flatMap((t) => [t.prompt, t.response])];
    for (const text of texts) expect(tok.encode(text), text).not.toContain(unk);
  });

  it('ships a few dozen labelled prompts; harmful ones, and only those, contain a harmful word', () => {
    const prompts = loadDemoPrompts();
    expect(prompts.filter((p) => p.label === 'harmful').length).toBeGreaterThanOrEqual(20);
    expect(prompts.filter((p) => p.label === 'harmless').length).toBeGreaterThanOrEqual(20);
    expect(new Set(prompts.map((p) => p.id)).size).toBe(prompts.length);
    for (const p of prompts) {
      expect(words(p.prompt).some((w) => w in DEMO_HARMFUL_WORDS), p.prompt).toBe(p.label === 'harmful');
    }
  });

  it('ships a safety training set with refusing and complying responses', () => {
    const items = loadDemoSafetyTrain();
    expect(items.length).toBeGreaterThanOrEqual(16);
    for (const label of ['harmful', 'harmless'] as const) expect(items.some((t) => t.label === label)).toBe(true);
    expect(items.some((t) => t.label === 'harmful' && t.refuses)).toBe(true);
    expect(items.some((t) => t.label === 'harmful' && !t.refuses)).toBe(true);
    for (const t of items) {
      expect(t.response.split('</think>'), t.id).toHaveLength(2);
      const answer = t.response.split('</think>')[1]!.trim();
      expect(/^(i cannot|sorry)/.test(answer), t.id).toBe(t.refuses);
    }
  });
});
