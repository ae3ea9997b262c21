/**
 * The GPU bench plan (bench/gpu.ts), on the CPU: its shapes and bounds, how its targets are judged, the device
 * bandwidth measurement really reading its data, and the whole plan end to end with `--plan gpu --provider cpu
 * --quick` — the same code a `--provider cuda` run takes on a GPU.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FULL_SHAPE, kvBytesPerToken, paramCounts, QUICK_SHAPE } from '../../bench/checkpoint.js';
import { bandwidthLayout, measureDeviceBandwidth } from '../../bench/device-bandwidth.js';
import { decodeBound, float16WeightBytes, gpuPlan, gpuTargets, parseGpuArgs, QWEN2_7B_SHAPE, wantsGpuPlan } from '../../bench/gpu.js';
import type { DecodeResult, PrefillResult } from '../../bench/measure.js';
import { stat } from '../../bench/util.js';
import { availableProviders, listedProviders } from '../../src/main/engine/runtime/providers.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-gpu-bench-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('GPU plan', () => {
  it('takes the 1.5B shape by default and Qwen2-7B’s behind --shape 7b, with the issue’s lengths', () => {
    const p = gpuPlan('1.5b');
    expect(p.shape).toBe(FULL_SHAPE);
    expect(p.decodeBatches).toEqual([1, 8, 32]);
    expect(p.prefillTokens).toEqual([512, 4096]);
    expect(gpuPlan('7b').shape).toBe(QWEN2_7B_SHAPE);
    // Qwen2-7B has 7.62 B parameters.
    expect(paramCounts(QWEN2_7B_SHAPE).total / 1e9).toBeCloseTo(7.62, 2);
    expect(parseGpuArgs(['--provider', 'cuda', '--shape', '7b'])).toMatchObject({ provider: 'cuda', shape: '7b' });
    expect(parseGpuArgs(['--plan', 'gpu', '--provider', 'cpu', '--quick']).shape).toBe('quick');
    expect(() => parseGpuArgs(['--shape', '70b'])).toThrow(/--shape must be 1\.5b or 7b/);
    expect(() => parseGpuArgs(['--threads', '4'])).toThrow(/unknown argument --threads/);
  });

  it('runs for GPU providers or --plan gpu, and leaves the CPU plan alone otherwise', () => {
    expect(wantsGpuPlan(['--provider', 'cuda'])).toBe(true);
    expect(wantsGpuPlan(['--provider', 'webgpu', '--quick'])).toBe(true);
    expect(wantsGpuPlan(['--provider', 'cpu'])).toBe(false);
    expect(wantsGpuPlan(['--quick'])).toBe(false);
    expect(wantsGpuPlan(['--plan', 'gpu', '--provider', 'cpu'])).toBe(true);
    expect(wantsGpuPlan(['--plan', 'cpu', '--provider', 'cuda'])).toBe(false);
  });

  it('bounds a decode step by its float16 weights once and every row’s KV cache', () => {
    const bw = 3e12;
    const w = float16WeightBytes(FULL_SHAPE);
    expect(w).toBe(paramCounts(FULL_SHAPE).readPerToken * 2);
    expect(decodeBound(FULL_SHAPE, bw, 1, 0)).toBeCloseTo(bw / w, 6);
    const kv = kvBytesPerToken(FULL_SHAPE);
    expect(decodeBound(FULL_SHAPE, bw, 32, 100)).toBeCloseTo((32 * bw) / (w + 32 * 100 * kv), 6);
    // Batching amortises the weights, not the KV cache: under 32× the batch-1 bound.
    expect(decodeBound(FULL_SHAPE, bw, 32, 100) / decodeBound(FULL_SHAPE, bw, 1, 100)).toBeLessThan(32);
  });

  it('judges the targets from the best runs, and reports the medians beside them', () => {
    const plan = { ...gpuPlan('quick'), prefillTokens: [64] };
    const variant = (values: number[]) => ({ tokensPerSecond: stat(values), firstTokenSeconds: 0, jsFraction: 0, cpuUtilisation: 1 });
    const decode: DecodeResult = {
      promptTokens: plan.promptTokens,
      newTokens: plan.newTokens,
      reps: 2,
      probeLayer: 5,
      batches: [
        { batch: 1, plain: variant([90, 100]), probe: variant([94, 96]), probeOverhead: 0 },
        { batch: 8, plain: variant([700, 800]), probe: variant([600, 700]), probeOverhead: 0 },
        { batch: 32, plain: variant([1400, 1600]), probe: variant([1590, 1600]), probeOverhead: 0 },
      ],
    };
    const prefill = [{ tokens: 64, reps: 2, taps: { residLayers: [5], zLayers: [4] }, plain: { ...variant([1000]), seconds: stat([1]) }, tapped: { ...variant([970]), seconds: stat([1]) }, tapOverhead: 0.03 }] as PrefillResult[];
    const bw = 1e9;
    const t = Object.fromEntries(gpuTargets(plan, bw, prefill, decode).map((x) => [x.name, x]));
    const bound = decodeBound(plan.shape, bw, 1, plan.promptTokens + plan.newTokens / 2);
    expect(t['gpu-decode-batch1-vs-bound']!.measured).toBeCloseTo(100 / bound, 9);
    expect(t['gpu-decode-batch1-vs-bound']!.measuredOnMedians).toBeCloseTo(95 / bound, 9);
    expect(t['gpu-decode-batch32-vs-batch1']).toMatchObject({ measured: 16, pass: true, measuredOnMedians: 1500 / 95, passOnMedians: true });
    expect(t['gpu-probe-overhead-batch1']).toMatchObject({ pass: true });
    expect(t['gpu-probe-overhead-batch1']!.measured).toBeCloseTo(0.04, 9);
    expect(t['gpu-probe-overhead-batch8']!.measured).toBeCloseTo(0.125, 9);
    expect(t['gpu-probe-overhead-batch8']!.pass).toBe(false);
    expect(t['gpu-prefill-tap-overhead-64']!.measured).toBeCloseTo(0.03, 9);
    // Nothing measured: no verdict rather than a pass.
    expect(gpuTargets(plan, null, [], null).every((x) => x.pass === null)).toBe(true);
  });

  it('measures bandwidth by reading float16 data that stays on the device, and reads all of it', async () => {
    const K = 256;
    const layout = bandwidthLayout(600 << 20, K);
    expect(layout.pieces).toBe(3); // pieces of at most 256 MiB
    expect(layout.bytesPerRun).toBeLessThanOrEqual(600 << 20);
    const r = await measureDeviceBandwidth({ dir: path.join(root, 'bw'), bytes: 8 << 20, K, provider: 'cpu', runs: 2 });
    expect(r.provider).toBe('cpu');
    expect(r.bytesPerSecond).toBeGreaterThan(0);
    // Both graphs' first outputs equal what the data sum to: the runs read them.
    const { Np } = bandwidthLayout(8 << 20, K);
    const value = (i: number) => Math.fround(((i % 1021) - 510) / 1e4);
    let column0 = 0;
    for (let k = 0; k < K; k++) column0 += value(k * Np);
    let row0 = 0;
    for (let j = 0; j < 4096; j++) row0 += value(j);
    expect(r.check.gemvFirst).toBeCloseTo(column0, 1);
    expect(r.check.reduceFirst).toBeCloseTo(row0, 1);
  });

  it('runs end to end with --plan gpu --provider cpu --quick: float16, every batch and length, targets in the JSON', () => {
    const out = path.join(root, 'gpu-quick.json');
    const cache = path.join(root, 'cache');
    execFileSync(process.execPath, [path.join(repo, 'bin', 'run-ts.js'), path.join(repo, 'bench', 'run.ts'), '--plan', 'gpu', '--provider', 'cpu', '--quick', '--out', out, '--cache', cache], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const r = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(r.variant).toBe('gpu-quick');
    expect(r.machine.providerUsed).toBe('cpu');
    expect(r.compile.options.activations).toBe('float16');
    expect(r.checkpoint.shape.name).toBe(QUICK_SHAPE.name);
    expect(r.bandwidth.provider).toBe('cpu');
    expect(r.prefill.map((p: PrefillResult) => p.tokens)).toEqual([64, 256]);
    expect(r.decode.batches.map((b: { batch: number; probe: unknown }) => [b.batch, b.probe !== null])).toEqual([[1, true], [8, true], [32, true]]);
    expect(r.fractionsOfBound.decode.map((f: { fraction: number }) => f.fraction > 0)).toEqual([true, true, true]);
    expect(r.targets.map((t: { name: string }) => t.name)).toEqual([
      'gpu-decode-batch1-vs-bound',
      'gpu-decode-batch32-vs-batch1',
      'gpu-probe-overhead-batch1',
      'gpu-probe-overhead-batch8',
      'gpu-probe-overhead-batch32',
      'gpu-prefill-tap-overhead-64',
      'gpu-prefill-tap-overhead-256',
    ]);
    for (const t of r.targets) expect(typeof t.pass, t.name).toBe('boolean');
    // Generated files are removed without --keep.
    for (const f of r.files.deleted) expect(fs.existsSync(f), f).toBe(false);
  });

  it('an explicit GPU provider that cannot run here stops at once, naming why', () => {
    if (!listedProviders().includes('cuda') || availableProviders().includes('cuda')) return;
    let code = 0;
    let stderr = '';
    try {
      execFileSync(process.execPath, [path.join(repo, 'bin', 'run-ts.js'), path.join(repo, 'bench', 'run.ts'), '--provider', 'cuda', '--cache', path.join(root, 'never')], {
        stdio: ['ignore', 'pipe', 'pipe'],
        encoding: 'utf8',
      });
    } catch (e) {
      code = (e as { status: number }).status;
      stderr = (e as { stderr: string }).stderr;
    }
    expect(code).toBe(2);
    expect(stderr).toMatch(/the cuda execution provider cannot run here: libonnxruntime_providers_cuda\.so is not installed/);
    expect(fs.existsSync(path.join(root, 'never'))).toBe(false);
  });
});
