/**
 * Execution providers: which ones the installed ONNX Runtime can use here, and the order `auto` tries them in.
 * A session reports the provider that actually loaded it, so every run records where it ran.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as ort from 'onnxruntime-node';

export type ProviderName = 'cpu' | 'cuda' | 'dml' | 'coreml' | 'webgpu';
export type ProviderChoice = ProviderName | 'auto';
export const PROVIDER_CHOICES: readonly ProviderChoice[] = ['auto', 'cpu', 'cuda', 'dml', 'coreml', 'webgpu'];

/** The folder holding onnxruntime-node's native binding and any provider libraries installed beside it. */
function bindingDir(): string {
  const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
  return path.join(path.dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch);
}

/**
 * Providers this ONNX Runtime build lists. CUDA is listed on Linux even when its libraries were not installed
 * (`onnxruntime-node-install=skip`), so it only counts when libonnxruntime_providers_cuda is present.
 */
export function availableProviders(): ProviderName[] {
  const listed = ort.listSupportedBackends().map((b) => b.name);
  const out: ProviderName[] = [];
  for (const name of listed) {
    if (name === 'cuda') {
      if (fs.existsSync(path.join(bindingDir(), 'libonnxruntime_providers_cuda.so'))) out.push('cuda');
    } else if (name === 'cpu' || name === 'dml' || name === 'coreml' || name === 'webgpu') {
      out.push(name);
    }
  }
  if (!out.includes('cpu')) out.push('cpu');
  return out;
}

/**
 * The providers to try, best first, always ending with CPU. `auto` takes the platform's native GPU provider when
 * present (CUDA on Linux, DirectML on Windows, CoreML on macOS). WebGPU is used only when asked for: Dawn probes
 * every graphics API at start-up and, on a machine without a GPU adapter, fails loudly before we can fall back.
 */
export function providerCandidates(choice: ProviderChoice, available = availableProviders()): ProviderName[] {
  if (choice === 'cpu') return ['cpu'];
  if (choice !== 'auto') return [choice, 'cpu'];
  return [...(['cuda', 'dml', 'coreml'] as const).filter((p) => available.includes(p)), 'cpu'];
}
