/**
 * Shared plumbing for the verbs that load a model (the runtime flags and compile progress, one place for all) and
 * for those that run the method's pipelines against a project: opening the project and the model, Ctrl-C as
 * cancellation, progress with an ETA, and looking datasets / runs / probes up by name or id with errors that say
 * what exists.
 */
import { CliffscopeError } from '../engine/errors.js';
import type { PipelineEnv } from '../engine/pipelines/common.js';
import { loadModel } from '../engine/runtime/model.js';
import { PROVIDER_CHOICES, type ProviderChoice } from '../engine/runtime/providers.js';
import { openProject } from '../engine/store/open.js';
import type { ProjectStore } from '../engine/store/project-store.js';
import type { DatasetRow } from '../engine/store/types.js';
import { intOption } from './command.js';
import { parsePrecision, PRECISION_OPTIONS } from './precision-options.js';
import { Progress } from './progress.js';

/** How a model is loaded: the same flags on every verb that loads one. */
export const RUNTIME_OPTIONS = {
  'norm-preserve': { type: 'boolean' },
  provider: { type: 'string' },
  threads: { type: 'string' },
  cache: { type: 'string' },
  ...PRECISION_OPTIONS,
} as const;

export const MODEL_OPTIONS = {
  model: { type: 'string' },
  resume: { type: 'string' },
  name: { type: 'string' },
  json: { type: 'boolean' },
  ...RUNTIME_OPTIONS,
} as const;

type RuntimeValues = Partial<Record<keyof typeof RUNTIME_OPTIONS, string | boolean>>;

/** Load `dir` with the runtime flags, showing compile progress unless `quiet`. */
export function loadModelFromOptions(dir: string, values: RuntimeValues, opts: { quiet?: boolean } = {}) {
  const provider = (values.provider ?? 'auto') as ProviderChoice;
  if (!PROVIDER_CHOICES.includes(provider)) throw new CliffscopeError('bad-argument', `--provider must be one of ${PROVIDER_CHOICES.join(', ')}`);
  const compiling = new Progress('compiling', 'tensors');
  return loadModel(dir, {
    normPreserve: values['norm-preserve'] === true,
    provider,
    threads: intOption(values.threads as string | undefined, 'threads'),
    cacheRoot: values.cache as string | undefined,
    precision: parsePrecision(values as Record<string, string | undefined>),
    onProgress: (p) => !opts.quiet && p.phase === 'weights' && compiling.update(p.done, p.total),
  });
}

export const MODEL_HELP = `Model and run:
  --model DIR               the checkpoint folder (required)
  --resume RUN              continue an interrupted run (its stored settings are used; finished items are kept)
  --name NAME               a name for the run
  --norm-preserve           compile with norm-preserving head ablation
  --provider NAME           auto (default), cpu, cuda, dml, coreml or webgpu
  --threads N               ONNX Runtime intra-op threads
  --cache DIR               compiled-model cache (default: $CLIFFSCOPE_CACHE or ~/.cache/cliffscope)
  --weights float32|int4, --activations float32|float16   precision (see cliffscope precision)
  --json                    print the run's report as JSON
`;

type ModelValues = Partial<Record<keyof typeof MODEL_OPTIONS, string | boolean>>;

/** Open the project and the model, run `body` with a pipeline environment, and always close both. */
export async function withPipeline<T>(projectFile: string | undefined, values: ModelValues, body: (env: PipelineEnv) => Promise<T>): Promise<T> {
  if (!projectFile) throw new CliffscopeError('bad-argument', 'name the project file first (it is created if missing)');
  if (typeof values.model !== 'string') throw new CliffscopeError('bad-argument', '--model DIR is required');
  if (!PROVIDER_CHOICES.includes((values.provider ?? 'auto') as ProviderChoice)) {
    throw new CliffscopeError('bad-argument', `--provider must be one of ${PROVIDER_CHOICES.join(', ')}`);
  }
  const store = openProject(projectFile, { create: true });
  const model = await loadModelFromOptions(values.model, values).catch((e) => {
    store.close();
    throw e;
  });
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130); // a second Ctrl-C leaves at once
    process.stderr.write('\nstopping after the current step (Ctrl-C again to quit now)…\n');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  const bars = new Map<string, Progress>();
  try {
    return await body({
      store,
      model,
      signal: controller.signal,
      log: (m) => process.stderr.write(`${m}\n`),
      onProgress: (done, total, label) => {
        if (!bars.has(label)) bars.set(label, new Progress(label));
        bars.get(label)!.update(done, total);
      },
    });
  } finally {
    process.removeListener('SIGINT', onSigint);
    store.close();
    await model.session.release();
  }
}

export function resumeOption(values: ModelValues): number | undefined {
  return intOption(values.resume as string | undefined, 'resume');
}

/** A dataset by name or numeric id. */
export function findDataset(store: ProjectStore, ref: string | undefined, option: string): DatasetRow {
  if (!ref) throw new CliffscopeError('bad-argument', `--${option} DATASET is required`);
  const byId = /^\d+$/.test(ref) ? store.getDataset(Number(ref)) : null;
  const found = byId ?? store.findDataset(ref);
  if (!found) {
    const names = store.listDatasets().map((d) => `${d.name} (#${d.id})`);
    throw new CliffscopeError('bad-argument', `no dataset "${ref}" in ${store.file}`, {
      hint: names.length ? `datasets here: ${names.join(', ')}` : 'import one with: cliffscope dataset import PROJECT FILE --name NAME',
    });
  }
  return found;
}

export function requireId(value: string | undefined, option: string): number {
  const n = intOption(value, option);
  if (n === undefined) throw new CliffscopeError('bad-argument', `--${option} is required`);
  return n;
}

export function numberList(value: string | undefined, option: string): number[] | undefined {
  if (value === undefined) return undefined;
  const xs = value.split(',').map((s) => Number(s.trim()));
  if (xs.some((x) => !Number.isFinite(x))) throw new CliffscopeError('bad-argument', `--${option} must be comma-separated numbers, got "${value}"`);
  return xs;
}
