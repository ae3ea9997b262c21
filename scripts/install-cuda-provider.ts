/**
 * `npm run cuda-provider -- --from SOURCE [--cuda-libs DIR]… [--link] [--json]` — install onnxruntime-node's CUDA
 * provider libraries from a source that is not NuGet, and check that everything they need is there.
 * `npm run cuda-provider -- --check` reports on what is installed now.
 *
 * SOURCE: `python` (python3's installed onnxruntime-gpu), a folder holding libonnxruntime_providers_cuda.so somewhere
 * below it (onnxruntime/capi of a wheel, lib/ of the GitHub release tarball, runtimes/linux-x64/native of the NuGet
 * package), or such a .whl / .nupkg / .zip / .tgz file. Its ONNX Runtime version must equal onnxruntime-node's.
 *
 * Exit status: 0 ready; 1 installed but CUDA libraries are missing (each named, with where it comes from); 2 refused
 * (bad arguments, no provider in SOURCE, or another ONNX Runtime version).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isCliffscopeError } from '../src/main/engine/errors.js';
import {
  bindingDir,
  cudaProviderStatus,
  installCudaProvider,
  libraryHint,
  onnxruntimeNodeVersion,
  readCudaManifest,
} from '../src/main/engine/runtime/cuda-provider.js';

const USAGE = `usage: npm run cuda-provider -- --from SOURCE [--cuda-libs DIR]… [--link] [--no-python] [--json]
       npm run cuda-provider -- --check [--json]
  --from SOURCE     python | a folder | a .whl/.nupkg/.zip/.tgz holding libonnxruntime_providers_cuda.so (ONNX Runtime ${onnxruntimeNodeVersion()})
  --cuda-libs DIR   look for the CUDA libraries (libcudart, libcublas, libcudnn, …) here first; repeatable
  --link            symlink the provider libraries instead of copying them (the source must stay)
  --no-python       do not look for the pip CUDA wheels (nvidia-*) in python3's site-packages
  --binding DIR     install beside this binding folder (default: onnxruntime-node's, ${bindingDir()})
  --check           only report whether the installed provider can run
  --json            one JSON object on stdout
`;

function main(): number {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        from: { type: 'string' },
        'cuda-libs': { type: 'string', multiple: true },
        link: { type: 'boolean' },
        'no-python': { type: 'boolean' },
        binding: { type: 'string' },
        check: { type: 'boolean' },
        json: { type: 'boolean' },
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
  const dir = values.binding ? path.resolve(values.binding) : bindingDir();
  const out = (data: unknown, text: string) => process.stdout.write(values.json ? `${JSON.stringify(data, null, 2)}\n` : `${text}\n`);

  if (values.check) {
    const status = cudaProviderStatus(dir);
    out({ ...status, manifest: readCudaManifest(dir) }, status.usable ? `CUDA provider ready in ${dir}` : `CUDA provider not usable: ${status.reason}`);
    return status.usable ? 0 : 1;
  }
  if (!values.from) {
    process.stderr.write(`--from is required\n${USAGE}`);
    return 2;
  }
  try {
    const report = installCudaProvider({
      from: values.from,
      bindingDir: dir,
      cudaLibDirs: values['cuda-libs']?.map((d) => path.resolve(d)),
      link: values.link,
      python: !values['no-python'],
      log: values.json ? undefined : (line) => process.stderr.write(`${line}\n`),
    });
    const ready = report.missing.length === 0;
    const text = ready
      ? `CUDA provider (ONNX Runtime ${report.manifest.providerVersion}) installed in ${dir}; every library it needs was found. Try: cliffscope generate MODEL --provider cuda`
      : [
          `CUDA provider (ONNX Runtime ${report.manifest.providerVersion}) installed in ${dir}, but it cannot run until these are found:`,
          ...report.missing.map((m) => `  ${m.soname}: ${libraryHint(m.soname)}`),
          'then run this again (add --cuda-libs DIR for a folder that is not searched).',
        ].join('\n');
    out({ ready, ...report }, text);
    return ready ? 0 : 1;
  } catch (e) {
    if (!isCliffscopeError(e)) throw e;
    if (values.json) out({ ready: false, error: { code: e.code, message: e.message, hint: e.hint ?? null } }, '');
    else process.stderr.write(`error: ${e.describe()}\n`);
    return 2;
  }
}

process.exitCode = main();
