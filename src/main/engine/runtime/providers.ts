/**
 * Execution providers: which ones the installed ONNX Runtime can use here, which to try for a choice, and opening a
 * session on them. An explicit choice runs there or fails with the reason; only `auto` falls back (to the CPU in the
 * end), noting why each better provider was skipped. A session reports the provider that actually loaded it, so every
 * run records where it ran.
 */
import * as ort from 'onnxruntime-node';
import { CliffscopeError } from '../errors.js';
import { cudaProviderStatus, diagnoseCudaProvider, onnxruntimeNodeVersion, preloadCudaLibraries } from './cuda-provider.js';

export type ProviderName = 'cpu' | 'cuda' | 'dml' | 'coreml' | 'webgpu';
export type ProviderChoice = ProviderName | 'auto';
export const PROVIDER_CHOICES: readonly ProviderChoice[] = ['auto', 'cpu', 'cuda', 'dml', 'coreml', 'webgpu'];
const PROVIDER_NAMES: readonly ProviderName[] = ['cpu', 'cuda', 'dml', 'coreml', 'webgpu'];

/**
 * What `auto` tries before the CPU, best first: the platform's native GPU provider (CUDA on Linux, DirectML on
 * Windows, CoreML on macOS). WebGPU is used only when asked for until it is measured against CUDA on a GPU: Dawn
 * probes every graphics API at start-up and prints its failures even when we then fall back.
 */
const AUTO_ORDER: readonly ProviderName[] = ['cuda', 'dml', 'coreml'];

/** Providers this ONNX Runtime build lists, usable here or not (CUDA is listed on Linux x64 without its libraries). */
export function listedProviders(): ProviderName[] {
  const names = ort.listSupportedBackends().map((b) => b.name);
  return PROVIDER_NAMES.filter((p) => p === 'cpu' || names.includes(p));
}

/**
 * Why `name` cannot be tried here, or null when it can. A null does not promise the provider loads: a GPU provider
 * can still fail when its session is created (no adapter, a driver too old), which `openSession` reports.
 */
export function providerUnavailable(name: ProviderName, listed = listedProviders()): string | null {
  if (name === 'cpu') return null;
  if (!listed.includes(name)) {
    return `onnxruntime-node ${onnxruntimeNodeVersion()} for ${process.platform}-${process.arch} has no ${name} provider (it has ${listed.join(', ')})`;
  }
  if (name === 'cuda') return cudaProviderStatus().reason;
  return null;
}

/** Providers that can be tried here, CPU always among them. */
export function availableProviders(): ProviderName[] {
  const listed = listedProviders();
  return listed.filter((p) => providerUnavailable(p, listed) === null);
}

export interface ProviderPlan {
  /** Providers to try in order; only `auto` has more than one. */
  candidates: ProviderName[];
  /** Why `auto` skipped better providers, e.g. "cuda: libonnxruntime_providers_cuda.so is not installed …". */
  notes: string[];
}

export interface ProviderEnvironment {
  listed: ProviderName[];
  unavailable: (name: ProviderName) => string | null;
}

const hereAndNow = (): ProviderEnvironment => {
  const listed = listedProviders();
  return { listed, unavailable: (name) => providerUnavailable(name, listed) };
};

/** The providers to try for a choice. An explicit provider that cannot be tried is an error naming why. */
export function planProviders(choice: ProviderChoice, env: ProviderEnvironment = hereAndNow()): ProviderPlan {
  if (choice === 'cpu') return { candidates: ['cpu'], notes: [] };
  if (choice !== 'auto') {
    const why = env.unavailable(choice);
    if (why) throw unavailableError(choice, why);
    return { candidates: [choice], notes: [] };
  }
  const candidates: ProviderName[] = [];
  const notes: string[] = [];
  for (const p of AUTO_ORDER) {
    if (!env.listed.includes(p)) continue; // not a provider of this platform's build: nothing to explain
    const why = env.unavailable(p);
    if (why) notes.push(`${p}: ${why}`);
    else candidates.push(p);
  }
  return { candidates: [...candidates, 'cpu'], notes };
}

/** ONNX Runtime's error without its source location and failed assertion: "…cc:136 … was false. Failed to get a WebGPU adapter" → the last part. */
export function ortReason(message: string): string {
  const first = message.split('\n')[0]!.trim();
  return first.replace(/^\S+\.(?:cc|cpp|h):\d+ .*? was false\. /, '');
}

function unavailableError(provider: ProviderName, why: string, cause?: unknown): CliffscopeError {
  return new CliffscopeError('provider-unavailable', `the ${provider} execution provider cannot run here: ${why}`, {
    hint: `--provider auto falls back to the CPU${provider === 'cuda' ? '; README "GPU (CUDA) on Linux" sets CUDA up' : ''}`,
    cause,
  });
}

export interface OpenedSession {
  session: ort.InferenceSession;
  provider: ProviderName;
  notes: string[];
}

/**
 * Open `modelPath` on the provider a choice resolves to. Within a GPU session, nodes the provider has no kernel for
 * run on the CPU (ONNX Runtime's own placement); the session as a whole never silently moves to the CPU unless the
 * choice was `auto`.
 */
export async function openSession(
  modelPath: string,
  choice: ProviderChoice,
  opts: { threads?: number; optimization?: ort.InferenceSession.SessionOptions['graphOptimizationLevel'] } = {},
): Promise<OpenedSession> {
  const plan = planProviders(choice);
  const notes = [...plan.notes];
  for (const provider of plan.candidates) {
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: provider === 'cpu' ? ['cpu'] : [provider, 'cpu'],
      graphOptimizationLevel: opts.optimization ?? 'all',
      logSeverityLevel: 3,
    };
    if (opts.threads) options.intraOpNumThreads = opts.threads;
    try {
      if (provider === 'cuda') preloadCudaLibraries(cudaProviderStatus().manifest);
      const session = await ort.InferenceSession.create(modelPath, options);
      return { session, provider, notes };
    } catch (e) {
      const message = ortReason((e as Error).message);
      if (provider === 'cpu') {
        throw new CliffscopeError('runtime', `ONNX Runtime could not load ${modelPath}: ${(e as Error).message}`, {
          file: modelPath,
          hint: 'delete the compiled cache entry and compile again; if it persists, report the model config',
          cause: e,
        });
      }
      // ONNX Runtime's "Failed to load shared library" does not say which: the files can.
      const diagnosis = provider === 'cuda' ? diagnoseCudaProvider() : null;
      const why = diagnosis ? `${message} — ${diagnosis}` : message;
      if (choice !== 'auto') throw unavailableError(provider, why, e);
      notes.push(`${provider}: ${why}`);
    }
  }
  throw new CliffscopeError('runtime', `no execution provider could load ${modelPath}`);
}
