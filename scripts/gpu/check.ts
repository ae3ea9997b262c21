/**
 * `npm run gpu-check -- [--provider cuda|webgpu|auto|cpu] [--activations float16|float32] [--stories DIR] [--no-demo]
 *                       [--cache DIR] [--out FILE]`
 *
 * Says which provider the model actually ran on, then checks that provider (float16 by default) against the CPU
 * float32 graph on the demo model and stories260K: logits and taps, greedy agreement, head ablation, batched = single,
 * and the demo's planted heads and ASR change (parity.ts). One JSON report on stdout (and in --out); progress on
 * stderr. Exit status: 0 every check passed, 1 some failed, 2 the provider cannot run here or bad arguments.
 *
 * Without a GPU, `--provider cpu --activations float16` runs every check on the CPU's float16 graph.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isCliffscopeError } from '../../src/main/engine/errors.js';
import { defaultCacheRoot } from '../../src/main/engine/onnx/compile.js';
import { PROVIDER_CHOICES, type ProviderChoice } from '../../src/main/engine/runtime/providers.js';
import { describeProvider } from '../../src/shared/values.js';
import { runGpuCheck } from './parity.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const sharedStories = path.join(process.env.CLIFFSCOPE_SHARED ?? path.resolve(repoRoot, '..', 'shared'), 'models', 'stories260K-hf');

const USAGE = `usage: npm run gpu-check -- [--provider ${PROVIDER_CHOICES.join('|')}] [--activations float16|float32] [--stories DIR] [--no-demo] [--cache DIR] [--out FILE]
  --provider      the provider under test (default auto); the reference is always the CPU float32 graph
  --activations   compute type of the tested graph (default float16)
  --stories DIR   stories260K in Hugging Face layout (default ${sharedStories}, skipped when absent)
  --no-demo       skip running the demo pipeline on both (the slowest part on a CPU)
  --cache DIR     compiled-model cache (default ${defaultCacheRoot()})
  --out FILE      also write the JSON report here
`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        provider: { type: 'string', default: 'auto' },
        activations: { type: 'string', default: 'float16' },
        stories: { type: 'string' },
        'no-demo': { type: 'boolean' },
        cache: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const provider = values.provider as ProviderChoice;
  if (!PROVIDER_CHOICES.includes(provider)) {
    process.stderr.write(`--provider must be one of ${PROVIDER_CHOICES.join(', ')}\n${USAGE}`);
    return 2;
  }
  if (values.activations !== 'float16' && values.activations !== 'float32') {
    process.stderr.write(`--activations must be float16 or float32\n${USAGE}`);
    return 2;
  }
  const storiesDir = values.stories ? path.resolve(values.stories) : fs.existsSync(sharedStories) ? sharedStories : null;
  if (values.stories && !fs.existsSync(path.join(storiesDir!, 'config.json'))) {
    process.stderr.write(`--stories ${values.stories}: no config.json there\n`);
    return 2;
  }
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-gpu-check-'));
  try {
    const report = await runGpuCheck({
      provider,
      activations: values.activations,
      storiesDir,
      cacheRoot: values.cache ? path.resolve(values.cache) : defaultCacheRoot(),
      workDir,
      demoPipeline: !values['no-demo'],
      log: (line) => process.stderr.write(`${line}\n`),
    });
    const json = `${JSON.stringify(report, null, 2)}\n`;
    if (values.out) {
      fs.mkdirSync(path.dirname(path.resolve(values.out)), { recursive: true });
      fs.writeFileSync(values.out, json);
    }
    process.stdout.write(json);
    const failed = report.checks.filter((c) => !c.pass);
    process.stderr.write(
      `provider: ${describeProvider(report.provider, report.providerNotes)}, ${report.activations}; ` +
        `${report.checks.length - failed.length}/${report.checks.length} checks passed in ${report.seconds.toFixed(1)} s` +
        `${failed.length ? ` — FAILED: ${failed.map((c) => `${c.model} ${c.name}`).join(', ')}` : ''}\n`,
    );
    return report.pass ? 0 : 1;
  } catch (e) {
    if (!isCliffscopeError(e)) throw e;
    process.stderr.write(`error: ${e.describe()}\n`);
    return 2;
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
