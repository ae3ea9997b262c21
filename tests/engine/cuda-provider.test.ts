/**
 * The CUDA provider route without NuGet, on stand-in libraries built here with gcc: a "provider" that embeds an ONNX
 * Runtime version string, links a "libcudart.so.77" and loads a "libcudnn.so.77" at run time, as the real ones do
 * (major 77, which no machine has, so that no real CUDA library stands in for them).
 * Installing checks the exact version, finds the CUDA libraries and says which are missing; at run time the recorded
 * libraries are preloaded by path so that the provider's dependencies resolve without LD_LIBRARY_PATH.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliffscopeError } from '../../src/main/engine/errors.js';
import {
  CUDA_MANIFEST,
  CUDA_PROVIDER_LIB,
  cudaProviderStatus,
  elfNeeded,
  installCudaProvider,
  libraryHint,
  libraryRole,
  onnxruntimeNodeVersion,
  SHARED_PROVIDER_LIB,
  scanProviderLibrary,
} from '../../src/main/engine/runtime/cuda-provider.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const hasGcc = (() => {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    return process.platform === 'linux';
  } catch {
    return false;
  }
})();
if (!hasGcc) console.warn('skipping the CUDA provider install tests: they build stand-in libraries with gcc, which is not installed');

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-cuda-provider-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function gcc(out: string, soname: string, source: string, libs: { dir: string; name: string }[] = []): void {
  const c = `${out}.c`;
  fs.writeFileSync(c, source);
  execFileSync('gcc', ['-shared', '-fPIC', '-o', out, c, `-Wl,-soname,${soname}`, ...libs.flatMap((l) => [`-L${l.dir}`, `-l:${l.name}`])]);
  fs.rmSync(c);
}

/** A fake onnxruntime/capi-like folder: provider + shared library; the CUDA runtime and cuDNN each in their own folder. */
function buildFakes(name: string, version: string) {
  const base = path.join(root, name);
  const cudart = path.join(base, 'cuda', 'lib64');
  const cudnn = path.join(base, 'cudnn', 'lib');
  const capi = path.join(base, 'site-packages', 'onnxruntime', 'capi');
  for (const d of [cudart, cudnn, capi]) fs.mkdirSync(d, { recursive: true });
  gcc(path.join(cudart, 'libcudart.so.77'), 'libcudart.so.77', 'int cudaRuntimeGetVersion(int *v) { *v = 13000; return 0; }\n');
  gcc(path.join(cudnn, 'libcudnn.so.77'), 'libcudnn.so.77', 'int cudnnGetVersion(void) { return 91000; }\n');
  gcc(
    path.join(capi, CUDA_PROVIDER_LIB),
    CUDA_PROVIDER_LIB,
    `extern int cudaRuntimeGetVersion(int *);
const char *ort_version = "${version}";
const char *cudnn_name = "libcudnn.so.77";
int GetProvider(void) { int v = 0; cudaRuntimeGetVersion(&v); return v; }
`,
    [{ dir: cudart, name: 'libcudart.so.77' }],
  );
  gcc(path.join(capi, SHARED_PROVIDER_LIB), SHARED_PROVIDER_LIB, 'int Provider_GetHost(void) { return 1; }\n');
  return { base, cudart, cudnn, capi };
}

describe('reading provider libraries', () => {
  it('reads the DT_NEEDED entries of an ELF file and refuses what is not one', () => {
    expect(elfNeeded(process.execPath)).toContain('libc.so.6');
    const notElf = path.join(root, 'not-elf.so');
    fs.writeFileSync(notElf, 'hello');
    expect(() => elfNeeded(notElf)).toThrow(/not a 64-bit Linux shared library/);
  });

  it('finds the embedded version and cuDNN name, also across the scan’s chunk boundaries', () => {
    const file = path.join(root, 'big.so');
    const bytes = Buffer.alloc((16 << 20) + 100, 0x41);
    bytes.write('\u00001.30.0\u0000', (16 << 20) - 4, 'latin1'); // straddles the first 16 MiB chunk
    bytes.write('xlibcudnn.so.9\u0000', 1000, 'latin1');
    bytes.write('\u00002.30.0\u0000', 5000, 'latin1'); // not an ONNX Runtime 1.x version
    fs.writeFileSync(file, bytes);
    expect(scanProviderLibrary(file)).toEqual({ versions: ['1.30.0'], cudnn: 'libcudnn.so.9' });
  });

  it('names where each missing library comes from', () => {
    expect(libraryRole('libcuda.so.1')).toBe('driver');
    expect(libraryRole('libcudnn.so.9')).toBe('cudnn');
    expect(libraryRole('libcublasLt.so.13')).toBe('cuda');
    expect(libraryRole('libstdc++.so.6')).toBe('system');
    expect(libraryHint('libcuda.so.1')).toMatch(/NVIDIA driver/);
    expect(libraryHint('libcublas.so.13')).toMatch(/nvidia-cublas/);
    expect(libraryHint('libcudnn.so.9')).toMatch(/nvidia-cudnn-cu13/);
  });
});

describe.runIf(hasGcc)('installing from a folder or an archive', () => {
  it('installs a version-matched provider, finds its CUDA libraries, and the provider is then usable', () => {
    const fake = buildFakes('ok', '1.30.0');
    const binding = path.join(root, 'binding-ok');
    const report = installCudaProvider({ from: fake.base, bindingDir: binding, expectVersion: '1.30.0', cudaLibDirs: [fake.cudart, fake.cudnn], python: false });
    expect(report.missing).toEqual([]);
    expect(report.manifest.providerVersion).toBe('1.30.0');
    expect(report.manifest.lddMissing).toEqual([]);
    expect(Object.fromEntries(report.manifest.libraries.map((l) => [l.soname, l.path]))).toEqual({
      'libcudart.so.77': path.join(fake.cudart, 'libcudart.so.77'),
      'libcudnn.so.77': path.join(fake.cudnn, 'libcudnn.so.77'),
    });
    for (const f of [CUDA_PROVIDER_LIB, SHARED_PROVIDER_LIB, CUDA_MANIFEST]) expect(fs.existsSync(path.join(binding, f)), f).toBe(true);
    expect(fs.lstatSync(path.join(binding, CUDA_PROVIDER_LIB)).isSymbolicLink()).toBe(false);
    expect(cudaProviderStatus(binding, '1.30.0')).toMatchObject({ usable: true, reason: null });
    // onnxruntime-node upgraded under it: the provider no longer matches
    expect(cudaProviderStatus(binding, '1.31.0').reason).toMatch(/ONNX Runtime 1\.30\.0 but onnxruntime-node is 1\.31\.0/);
  });

  it('installs but reports exactly which CUDA libraries are missing, and the status names them', () => {
    const fake = buildFakes('missing', '1.30.0');
    const binding = path.join(root, 'binding-missing');
    const report = installCudaProvider({ from: fake.capi, bindingDir: binding, expectVersion: '1.30.0', python: false });
    expect(report.missing.map((m) => m.soname).sort()).toEqual(['libcudart.so.77', 'libcudnn.so.77']);
    // ldd, which follows the real loader, agrees on the linked one (cuDNN is loaded at run time, so ldd cannot see it).
    expect(report.manifest.lddMissing).toEqual(['libcudart.so.77']);
    const status = cudaProviderStatus(binding, '1.30.0');
    expect(status.usable).toBe(false);
    expect(status.reason).toMatch(/libcudart\.so\.77 \(a CUDA toolkit's lib64, or pip nvidia-cuda-runtime/);
    expect(status.reason).toMatch(/libcudnn\.so\.77 \(cuDNN/);

    // Found once the folder is named; a library deleted later makes it unusable again, by name.
    const again = installCudaProvider({ from: fake.capi, bindingDir: binding, expectVersion: '1.30.0', cudaLibDirs: [fake.cudart, fake.cudnn], python: false });
    expect(again.missing).toEqual([]);
    fs.rmSync(path.join(fake.cudnn, 'libcudnn.so.77'));
    expect(cudaProviderStatus(binding, '1.30.0').reason).toMatch(/libcudnn\.so\.77/);
  });

  it('refuses a provider of another ONNX Runtime version, or whose packaging disagrees, installing nothing', () => {
    const old = buildFakes('old', '1.29.0');
    const binding = path.join(root, 'binding-old');
    const e = (() => {
      try {
        installCudaProvider({ from: old.base, bindingDir: binding, expectVersion: '1.30.0', python: false });
      } catch (err) {
        return err as CliffscopeError;
      }
      return null;
    })();
    expect(e?.code).toBe('provider-unavailable');
    expect(e?.message).toMatch(/is ONNX Runtime 1\.29\.0, but onnxruntime-node here is 1\.30\.0: provider libraries must match the core exactly/);
    expect(e?.hint).toMatch(/onnxruntime-gpu==1\.30\.0/);
    expect(fs.existsSync(path.join(binding, CUDA_PROVIDER_LIB))).toBe(false);

    const mixed = buildFakes('mixed', '1.30.0');
    fs.writeFileSync(path.join(mixed.capi, '..', '__init__.py'), '__version__ = "1.29.1"\n');
    expect(() => installCudaProvider({ from: mixed.base, bindingDir: binding, expectVersion: '1.30.0', python: false })).toThrow(/its packaging says 1\.29\.1/);
    fs.writeFileSync(path.join(mixed.capi, '..', '__init__.py'), '__version__ = "1.30.0"\n');
    expect(installCudaProvider({ from: mixed.base, bindingDir: binding, expectVersion: '1.30.0', python: false }).manifest.providerVersion).toBe('1.30.0');
  });

  it('unpacks wheels and tarballs, and says clearly when a source holds no provider', () => {
    const fake = buildFakes('archives', '1.30.0');
    const site = path.join(fake.base, 'site-packages');
    const wheel = path.join(root, 'onnxruntime_gpu-1.30.0-cp312-cp312-manylinux_2_28_x86_64.whl');
    execFileSync('zip', ['-qr', wheel, 'onnxruntime'], { cwd: site });
    const tgz = path.join(root, 'onnxruntime-linux-x64-gpu-1.30.0.tgz');
    execFileSync('tar', ['-czf', tgz, '-C', site, 'onnxruntime']);
    for (const from of [wheel, tgz]) {
      const binding = path.join(root, `binding-${path.extname(from)}`);
      const report = installCudaProvider({ from, bindingDir: binding, expectVersion: '1.30.0', cudaLibDirs: [fake.cudart, fake.cudnn], python: false });
      expect(report.missing, from).toEqual([]);
      expect(fs.statSync(path.join(binding, CUDA_PROVIDER_LIB)).size).toBe(fs.statSync(path.join(fake.capi, CUDA_PROVIDER_LIB)).size);
    }
    const empty = path.join(root, 'empty');
    fs.mkdirSync(empty);
    expect(() => installCudaProvider({ from: empty, bindingDir: path.join(root, 'b'), expectVersion: '1.30.0', python: false })).toThrow(/no libonnxruntime_providers_cuda\.so in/);
    expect(() => installCudaProvider({ from: path.join(root, 'nope'), bindingDir: path.join(root, 'b'), python: false })).toThrow(/does not exist/);
    const text = path.join(root, 'provider.txt');
    fs.writeFileSync(text, 'x');
    expect(() => installCudaProvider({ from: text, bindingDir: path.join(root, 'b'), python: false })).toThrow(/not a folder, \.whl/);
  });

  it('preloading the recorded libraries by path lets the provider load without LD_LIBRARY_PATH', () => {
    const fake = buildFakes('preload', '1.30.0');
    const binding = path.join(root, 'binding-preload');
    installCudaProvider({ from: fake.base, bindingDir: binding, expectVersion: '1.30.0', cudaLibDirs: [fake.cudart, fake.cudnn], python: false });
    // In a child process: what is preloaded stays loaded for the life of the process.
    const script = path.join(root, 'preload-child.ts');
    fs.writeFileSync(
      script,
      `import { preloadCudaLibraries, readCudaManifest } from ${JSON.stringify(path.join(repo, 'src/main/engine/runtime/cuda-provider.ts'))};
const provider = ${JSON.stringify(path.join(binding, CUDA_PROVIDER_LIB))};
const tryLoad = () => { try { process.dlopen({ exports: {} }, provider); return 'loaded'; } catch (e) { return /self-register/.test(e.message) ? 'loaded' : e.message; } };
const before = tryLoad();
preloadCudaLibraries(readCudaManifest(${JSON.stringify(binding)}));
console.log(JSON.stringify({ before, after: tryLoad() }));
`,
    );
    fs.writeFileSync(path.join(root, 'package.json'), '{"type":"module"}');
    const out = execFileSync(process.execPath, [path.join(repo, 'bin', 'run-ts.js'), script], { encoding: 'utf8', env: { ...process.env, LD_LIBRARY_PATH: '' } });
    const r = JSON.parse(out.trim().split('\n').at(-1)!);
    expect(r.before).toMatch(/libcudart\.so\.77: cannot open shared object file/);
    expect(r.after).toBe('loaded');
  });

  it('npm run cuda-provider: exit 0 when ready, 1 naming what is missing, 2 when refused', () => {
    const version = onnxruntimeNodeVersion();
    const script = (...args: string[]) => {
      try {
        const stdout = execFileSync(process.execPath, [path.join(repo, 'bin', 'run-ts.js'), path.join(repo, 'scripts', 'install-cuda-provider.ts'), '--no-python', ...args], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        return { code: 0, stdout, stderr: '' };
      } catch (e) {
        const err = e as { status: number; stdout: string; stderr: string };
        return { code: err.status, stdout: err.stdout, stderr: err.stderr };
      }
    };
    const fake = buildFakes('script', version);
    const binding = path.join(root, 'binding-script');
    const missing = script('--from', fake.base, '--binding', binding);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/cannot run until these are found:\n {2}libcudart\.so\.77: .*nvidia-cuda-runtime/);
    expect(script('--check', '--binding', binding).code).toBe(1);
    const ready = script('--from', fake.base, '--binding', binding, '--cuda-libs', fake.cudart, '--cuda-libs', fake.cudnn, '--json');
    expect(ready.code, ready.stderr).toBe(0);
    expect(JSON.parse(ready.stdout)).toMatchObject({ ready: true, missing: [], manifest: { providerVersion: version } });
    expect(script('--check', '--binding', binding).stdout).toMatch(/CUDA provider ready/);

    const old = buildFakes('script-old', '1.29.0');
    const refused = script('--from', old.base, '--binding', path.join(root, 'binding-script-old'));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(new RegExp(`is ONNX Runtime 1\\.29\\.0, but onnxruntime-node here is ${version.replace(/\./g, '\\.')}`));
    expect(script().code).toBe(2);
  });
});
