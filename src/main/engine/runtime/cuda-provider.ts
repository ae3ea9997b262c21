/**
 * onnxruntime-node's CUDA execution provider on Linux, without NuGet.
 *
 * onnxruntime-node ships the CUDA-enabled core (libonnxruntime.so.1) but not the CUDA provider itself: its install
 * script downloads `libonnxruntime_providers_cuda.so` and `libonnxruntime_providers_shared.so` from NuGet, which
 * offline machines cannot reach (our .npmrc skips it). The same two files come in other packagings of ONNX Runtime
 * (the Python `onnxruntime-gpu` wheel's `onnxruntime/capi`, the GitHub release tarball's `lib/`, the NuGet package's
 * `runtimes/linux-x64/native`), and provider libraries work with any core of exactly the same version.
 *
 * `installCudaProvider` (behind `npm run cuda-provider`) copies them beside the binding after checking that version,
 * finds the CUDA libraries they need (cudart, cuBLAS, cuRAND, cuDNN, the driver's libcuda) and records where in a
 * manifest; ldd confirms nothing is left unresolved. At run time `cudaProviderStatus` says whether CUDA can be tried
 * and, if not, exactly why, and `preloadCudaLibraries` loads the recorded libraries by path before the CUDA session
 * is created: the dynamic loader then satisfies the provider's dependencies by soname, so no LD_LIBRARY_PATH is needed
 * (the same thing `onnxruntime.preload_dlls()` does in Python).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { CliffscopeError } from '../errors.js';

export const CUDA_PROVIDER_LIB = 'libonnxruntime_providers_cuda.so';
export const SHARED_PROVIDER_LIB = 'libonnxruntime_providers_shared.so';
/** Written beside the binding by installCudaProvider: what was installed, from where, and the libraries it needs. */
export const CUDA_MANIFEST = 'cliffscope-cuda-provider.json';
export const INSTALL_COMMAND = 'npm run cuda-provider -- --from DIR|WHEEL|python';

// ---------------------------------------------------------------------------------------------------------------
// onnxruntime-node itself

function onnxruntimeNodeRoot(): string {
  const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
  return path.join(path.dirname(entry), '..');
}

/** The installed onnxruntime-node version: provider libraries must be this exact ONNX Runtime version. */
export function onnxruntimeNodeVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(onnxruntimeNodeRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** The folder holding onnxruntime-node's native binding; ONNX Runtime loads provider libraries from here. */
export function bindingDir(): string {
  return path.join(onnxruntimeNodeRoot(), 'bin', 'napi-v6', process.platform, process.arch);
}

/** The NVIDIA GPU's name, memory and driver version when nvidia-smi answers (for reports); null elsewhere. */
export function nvidiaGpu(): string | null {
  try {
    const text = execFileSync('nvidia-smi', ['--query-gpu=name,memory.total,driver_version', '--format=csv,noheader'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 10_000,
    });
    return text.trim() || null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Reading shared libraries

/** The DT_NEEDED entries (sonames) of a 64-bit little-endian ELF shared library. */
export function elfNeeded(file: string): string[] {
  const buf = fs.readFileSync(file);
  const bad = (why: string) => new CliffscopeError('bad-argument', `${file} is not a 64-bit Linux shared library (${why})`, { file });
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) throw bad('no ELF header');
  if (buf[4] !== 2 || buf[5] !== 1) throw bad('not ELF64 little-endian');
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  if (shoff + shnum * shentsize > buf.length) throw bad('truncated section table');
  const section = (i: number) => {
    const at = shoff + i * shentsize;
    return { type: buf.readUInt32LE(at + 4), offset: Number(buf.readBigUInt64LE(at + 0x18)), size: Number(buf.readBigUInt64LE(at + 0x20)), link: buf.readUInt32LE(at + 0x28) };
  };
  const SHT_DYNAMIC = 6;
  const DT_NEEDED = 1n;
  const out: string[] = [];
  for (let i = 0; i < shnum; i++) {
    const dyn = section(i);
    if (dyn.type !== SHT_DYNAMIC) continue;
    const strtab = section(dyn.link);
    for (let at = dyn.offset; at + 16 <= dyn.offset + dyn.size; at += 16) {
      const tag = buf.readBigInt64LE(at);
      if (tag === 0n) break;
      if (tag !== DT_NEEDED) continue;
      const start = strtab.offset + Number(buf.readBigUInt64LE(at + 8));
      out.push(buf.toString('latin1', start, buf.indexOf(0, start)));
    }
  }
  return out;
}

/**
 * What a provider library's bytes say about it: the ONNX Runtime version strings it embeds (ORT compiles its version
 * in as a plain string, e.g. "1.30.0") and the cuDNN library it loads at run time (some builds dlopen cuDNN instead
 * of linking it). One streaming pass: provider libraries are hundreds of megabytes.
 */
export function scanProviderLibrary(file: string): { versions: string[]; cudnn: string | null } {
  const versions = new Set<string>();
  let cudnn: string | null = null;
  const fd = fs.openSync(file, 'r');
  const chunk = Buffer.alloc(16 << 20);
  const overlap = 64;
  try {
    let carry = Buffer.alloc(0);
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n <= 0) break;
      const text = Buffer.concat([carry, chunk.subarray(0, n)]).toString('latin1');
      for (const m of text.matchAll(/\0(1\.\d{1,3}\.\d{1,3})\0/g)) versions.add(m[1]!);
      for (const m of text.matchAll(/(libcudnn\.so(?:\.\d+)?)\0/g)) if (!cudnn || m[1]!.length > cudnn.length) cudnn = m[1]!;
      carry = Buffer.from(text.slice(-overlap), 'latin1');
    }
  } finally {
    fs.closeSync(fd);
  }
  return { versions: [...versions], cudnn };
}

// ---------------------------------------------------------------------------------------------------------------
// Finding CUDA libraries

/** soname → path from the dynamic loader's cache (`ldconfig -p`); empty where ldconfig is not available. */
export function readLdCache(): Map<string, string> {
  const out = new Map<string, string>();
  for (const ldconfig of ['/sbin/ldconfig', '/usr/sbin/ldconfig', 'ldconfig']) {
    try {
      const text = execFileSync(ldconfig, ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      for (const m of text.matchAll(/^\s*(\S+) \(([^)]*)\) => (\S+)$/gm)) {
        if (!m[2]!.includes('x86-64') && process.arch === 'x64') continue;
        if (!out.has(m[1]!)) out.set(m[1]!, m[3]!);
      }
      return out;
    } catch {
      // try the next location
    }
  }
  return out;
}

/** `site-packages/nvidia/<name>/lib` and `site-packages/nvidia/cu<N>/lib`: where the pip CUDA wheels put their libraries. */
function nvidiaWheelDirs(sitePackages: string): string[] {
  const root = path.join(sitePackages, 'nvidia');
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .sort()
    .map((name) => path.join(root, name, 'lib'))
    .filter((dir) => fs.existsSync(dir));
}

/** The site-packages folder a path lies in, if any. */
function sitePackagesOf(p: string): string | null {
  const parts = path.resolve(p).split(path.sep);
  const i = parts.findLastIndex((s) => s === 'site-packages' || s === 'dist-packages');
  return i < 0 ? null : parts.slice(0, i + 1).join(path.sep) || path.sep;
}

/** Python's site-packages folders, when a python3 is on PATH. */
function pythonSitePackages(python = process.env.PYTHON ?? 'python3'): string[] {
  try {
    const text = execFileSync(python, ['-c', 'import site, sys; print("\\n".join(site.getsitepackages() + [site.getusersitepackages()]))'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 20_000,
    });
    return text.split('\n').filter((l) => l && fs.existsSync(l));
  } catch {
    return [];
  }
}

/**
 * Where CUDA libraries are looked for, first match wins: folders the user named, LD_LIBRARY_PATH, the pip CUDA wheels
 * beside the provider's source and in python3's site-packages, then the usual toolkit and driver locations. The
 * loader's own cache (`ldconfig -p`) is consulted after these.
 */
export function cudaSearchDirs(opts: { extra?: string[]; source?: string; python?: boolean } = {}): string[] {
  const dirs: string[] = [...(opts.extra ?? [])];
  dirs.push(...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean));
  const sites = new Set<string>();
  const own = opts.source ? sitePackagesOf(opts.source) : null;
  if (own) sites.add(own);
  if (opts.python !== false) for (const s of pythonSitePackages()) sites.add(s);
  for (const s of sites) dirs.push(...nvidiaWheelDirs(s));
  for (const home of [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda']) {
    if (home) dirs.push(path.join(home, 'lib64'), path.join(home, 'targets', 'x86_64-linux', 'lib'));
  }
  if (fs.existsSync('/usr/local')) {
    for (const name of fs.readdirSync('/usr/local').filter((n) => /^cuda-\d/.test(n)).sort().reverse()) dirs.push(path.join('/usr/local', name, 'lib64'));
  }
  dirs.push('/usr/local/nvidia/lib64', '/usr/lib/wsl/lib');
  return [...new Set(dirs.map((d) => path.resolve(d)))].filter((d) => fs.existsSync(d));
}

export type LibraryRole = 'driver' | 'cuda' | 'cudnn' | 'system';

export function libraryRole(soname: string): LibraryRole {
  if (/^libcuda\.so/.test(soname)) return 'driver';
  if (/^libcudnn/.test(soname)) return 'cudnn';
  if (/^lib(cu|nv)/.test(soname)) return 'cuda';
  return 'system';
}

/** pip wheels that carry each CUDA library (CUDA 13 names; CUDA 12's end in -cu12). */
const CUDA_WHEELS: Record<string, string> = {
  libcudart: 'nvidia-cuda-runtime',
  libcublas: 'nvidia-cublas',
  libcublasLt: 'nvidia-cublas',
  libcurand: 'nvidia-curand',
  libcufft: 'nvidia-cufft',
  libnvrtc: 'nvidia-cuda-nvrtc',
  libcupti: 'nvidia-cuda-cupti',
};

/** Where a missing library usually comes from, for the error message. */
export function libraryHint(soname: string): string {
  const role = libraryRole(soname);
  if (role === 'driver') return 'the NVIDIA driver: is one installed, and is this a GPU machine?';
  if (role === 'cudnn') return 'cuDNN: pip nvidia-cudnn-cu13 or nvidia-cudnn-cu12, matching the provider\'s CUDA major';
  const wheel = CUDA_WHEELS[soname.replace(/\.so.*$/, '')];
  return `a CUDA toolkit's lib64${wheel ? `, or pip ${wheel} (CUDA 13) / ${wheel}-cu12 (CUDA 12)` : ''}`;
}

export interface ResolvedLibrary {
  soname: string;
  role: LibraryRole;
  /** Absolute path, or null when it was found nowhere. */
  path: string | null;
}

export function resolveLibraries(sonames: string[], dirs: string[], ldCache = readLdCache()): ResolvedLibrary[] {
  return sonames.map((soname) => {
    const inDir = dirs.map((d) => path.join(d, soname)).find((p) => fs.existsSync(p));
    return { soname, role: libraryRole(soname), path: inDir ?? ldCache.get(soname) ?? null };
  });
}

/**
 * Sonames `ldd` cannot resolve for `file` when the given folders are on LD_LIBRARY_PATH (the folders the runtime
 * preloads from), or null when ldd is not available.
 */
export function lddMissing(file: string, dirs: string[]): string[] | null {
  let text: string;
  try {
    text = execFileSync('ldd', [file], {
      encoding: 'utf8',
      env: { ...process.env, LD_LIBRARY_PATH: [...dirs, ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean)].join(':') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    const out = (e as { stdout?: string }).stdout;
    if (typeof out !== 'string' || !out) return null;
    text = out;
  }
  return [...text.matchAll(/^\s*(\S+) => not found/gm)].map((m) => m[1]!);
}

// ---------------------------------------------------------------------------------------------------------------
// Installing

export interface CudaProviderManifest {
  /** onnxruntime-node's version when installed; the provider's version equals it. */
  onnxruntime: string;
  providerVersion: string;
  source: string;
  installedAt: string;
  linked: boolean;
  /** Size of the installed provider library, to notice a replaced file. */
  providerBytes: number;
  /** Every CUDA/cuDNN/driver library the provider needs, and where it was found (null: missing). */
  libraries: ResolvedLibrary[];
  /** Sonames ldd could not resolve with those folders (null when ldd was not available). */
  lddMissing: string[] | null;
}

export interface InstallOptions {
  /** A folder (searched), a .whl / .nupkg / .zip / .tgz archive, or `python` (python3's installed onnxruntime-gpu). */
  from: string;
  /** Default: onnxruntime-node's binding folder. */
  bindingDir?: string;
  /** The version the provider must have; default onnxruntime-node's. */
  expectVersion?: string;
  /** More folders to look for CUDA libraries in, searched first. */
  cudaLibDirs?: string[];
  /** Symlink instead of copying (the source must then stay where it is). */
  link?: boolean;
  /** Look in python3's site-packages for the pip CUDA wheels (default true). */
  python?: boolean;
  log?: (line: string) => void;
}

export interface InstallReport {
  manifest: CudaProviderManifest;
  manifestFile: string;
  /** Libraries that are still missing, each with where it usually comes from; empty = ready. */
  missing: { soname: string; hint: string }[];
}

/** Unpack the provider libraries (and version metadata) of an archive into `into`. */
function extractArchive(file: string, into: string): void {
  const lower = file.toLowerCase();
  const members = ['*libonnxruntime_providers_*.so', '*/__init__.py', '*.nuspec', '*VERSION_NUMBER', '*.dist-info/METADATA'];
  const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    if (/\.(whl|nupkg|zip)$/.test(lower)) {
      try {
        run('unzip', ['-q', '-o', file, ...members, '-d', into]);
      } catch (e) {
        // unzip exits 11 when some patterns match nothing; a missing unzip falls back to Python's zipfile
        if ((e as { status?: number }).status !== 11) run(process.env.PYTHON ?? 'python3', ['-m', 'zipfile', '-e', file, into]);
      }
    } else if (/\.(tgz|tar\.gz|tar)$/.test(lower)) {
      try {
        run('tar', ['-xf', file, '-C', into, '--wildcards', ...members]);
      } catch (e) {
        // tar fails when a pattern matches nothing, having extracted the others: only that is fine
        const errors = String((e as { stderr?: Buffer }).stderr ?? '').split('\n').filter((l) => l && !/Not found in archive|Exiting with failure status/.test(l));
        if (errors.length) throw e;
      }
    } else {
      throw new CliffscopeError('bad-argument', `${file}: not a folder, .whl, .nupkg, .zip, .tgz or .tar.gz`, { file });
    }
  } catch (e) {
    if (e instanceof CliffscopeError) throw e;
    throw new CliffscopeError('bad-argument', `could not unpack ${file}: ${String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim()}`, { file });
  }
}

/** Folders under `root` (depth-limited) that hold the CUDA provider library. */
function findProviderDirs(root: string, depth = 7): string[] {
  const out: string[] = [];
  const walk = (dir: string, d: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    if (entries.some((e) => e.name === CUDA_PROVIDER_LIB && (e.isFile() || e.isSymbolicLink()))) out.push(dir);
    if (d > 0) for (const e of entries) if (e.isDirectory()) walk(path.join(dir, e.name), d - 1);
  };
  walk(root, depth);
  return out;
}

/** python3's installed onnxruntime package folder (`…/site-packages/onnxruntime`). */
function pythonOnnxruntimeDir(): string {
  const python = process.env.PYTHON ?? 'python3';
  try {
    return execFileSync(python, ['-c', 'import importlib.util, os; s = importlib.util.find_spec("onnxruntime"); print(os.path.dirname(s.origin) if s else "")'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 60_000,
    }).trim() || fail();
  } catch {
    return fail();
  }
  function fail(): never {
    throw new CliffscopeError('missing-file', `${python} has no onnxruntime package installed`, {
      hint: `pip install onnxruntime-gpu==${onnxruntimeNodeVersion()} (the version must match onnxruntime-node exactly), or pass --from with a folder or wheel`,
    });
  }
}

/** The ONNX Runtime version that packaging metadata near the libraries states, if any. */
export function metadataVersion(libDir: string): string | null {
  let dir = libDir;
  for (let up = 0; up < 4; up++) {
    const at = (name: string) => path.join(dir, name);
    if (fs.existsSync(at('__init__.py'))) {
      const m = /__version__\s*=\s*["']([^"']+)["']/.exec(fs.readFileSync(at('__init__.py'), 'utf8'));
      if (m) return m[1]!;
    }
    if (fs.existsSync(at('VERSION_NUMBER'))) return fs.readFileSync(at('VERSION_NUMBER'), 'utf8').trim();
    for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      if (name.endsWith('.nuspec')) {
        const m = /<version>([^<]+)<\/version>/.exec(fs.readFileSync(at(name), 'utf8'));
        if (m) return m[1]!.trim();
      }
      const dist = /^onnxruntime(?:_gpu)?-([^-]+)\.dist-info$/i.exec(name);
      if (dist) return dist[1]!;
    }
    dir = path.dirname(dir);
  }
  return null;
}

/**
 * Check and install the CUDA provider libraries from `opts.from` beside onnxruntime-node's binding, then record the
 * CUDA libraries they need. Throws (installing nothing) when the source holds no provider or one of another ONNX
 * Runtime version; installs and reports `missing` when only CUDA libraries are missing.
 */
export function installCudaProvider(opts: InstallOptions): InstallReport {
  const log = opts.log ?? (() => {});
  const target = opts.bindingDir ?? bindingDir();
  const expected = opts.expectVersion ?? onnxruntimeNodeVersion();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-cuda-provider-'));
  try {
    let root: string;
    if (opts.from === 'python') root = pythonOnnxruntimeDir();
    else if (!fs.existsSync(opts.from)) throw new CliffscopeError('missing-file', `${opts.from} does not exist`, { file: opts.from });
    else if (fs.statSync(opts.from).isDirectory()) root = path.resolve(opts.from);
    else {
      extractArchive(path.resolve(opts.from), tmp);
      root = tmp;
    }
    const found = findProviderDirs(root);
    if (found.length === 0) {
      throw new CliffscopeError('missing-file', `no ${CUDA_PROVIDER_LIB} in ${opts.from}`, {
        file: opts.from,
        hint: `point --from at an onnxruntime-gpu ${expected} wheel or install (onnxruntime/capi), the onnxruntime-linux-x64-gpu-${expected} release folder, or the Microsoft.ML.OnnxRuntime.Gpu.Linux ${expected} package`,
      });
    }
    if (found.length > 1) throw new CliffscopeError('bad-argument', `${opts.from} holds more than one ${CUDA_PROVIDER_LIB}: ${found.join(', ')}; name one folder`, { file: opts.from });
    const libDir = found[0]!;
    const provider = path.join(libDir, CUDA_PROVIDER_LIB);
    const shared = path.join(libDir, SHARED_PROVIDER_LIB);
    if (!fs.existsSync(shared)) throw new CliffscopeError('missing-file', `${libDir} has ${CUDA_PROVIDER_LIB} but no ${SHARED_PROVIDER_LIB} beside it`, { file: libDir });

    // The exact version: what the binary embeds, cross-checked against the packaging's own metadata.
    const scan = scanProviderLibrary(provider);
    const fromMetadata = metadataVersion(libDir);
    const binaryVersion = scan.versions.length === 1 ? scan.versions[0]! : scan.versions.includes(expected) ? expected : null;
    const version = binaryVersion ?? fromMetadata;
    log(`${provider}: ONNX Runtime ${version ?? 'unknown'} (in the library: ${scan.versions.join(', ') || 'none'}; packaging says ${fromMetadata ?? 'nothing'})`);
    if (version === null) {
      throw new CliffscopeError('provider-unavailable', `cannot tell which ONNX Runtime version ${provider} belongs to`, {
        file: provider,
        hint: `use the libraries of an onnxruntime-gpu ${expected} wheel or the onnxruntime-linux-x64-gpu-${expected} release, whose version can be read`,
      });
    }
    if (version !== expected || (fromMetadata !== null && binaryVersion !== null && fromMetadata !== binaryVersion)) {
      throw new CliffscopeError(
        'provider-unavailable',
        `${provider} is ONNX Runtime ${version}${fromMetadata && fromMetadata !== version ? ` (its packaging says ${fromMetadata})` : ''}, ` +
          `but onnxruntime-node here is ${expected}: provider libraries must match the core exactly`,
        { file: provider, hint: `use onnxruntime-gpu==${expected} (pip download onnxruntime-gpu==${expected}) or the ${expected} GPU release tarball` },
      );
    }

    // Install: replace whatever was there (a failed install must not leave a half-new pair).
    fs.mkdirSync(target, { recursive: true });
    for (const [from, name] of [[provider, CUDA_PROVIDER_LIB], [shared, SHARED_PROVIDER_LIB]] as const) {
      const to = path.join(target, name);
      fs.rmSync(to, { force: true });
      if (opts.link) {
        if (opts.from !== 'python' && root === tmp) throw new CliffscopeError('bad-argument', '--link needs an unpacked folder, not an archive');
        fs.symlinkSync(fs.realpathSync(from), to);
      } else {
        fs.copyFileSync(from, `${to}.tmp`);
        fs.renameSync(`${to}.tmp`, to);
      }
      log(`${opts.link ? 'linked' : 'copied'} ${name} → ${to}`);
    }

    // The CUDA libraries it needs: its DT_NEEDED entries, plus cuDNN when it loads that at run time.
    const needed = elfNeeded(provider);
    if (scan.cudnn && !needed.some((n) => n.startsWith('libcudnn'))) needed.push(/\.so\.\d+$/.test(scan.cudnn) ? scan.cudnn : 'libcudnn.so.9');
    const dirs = cudaSearchDirs({ extra: opts.cudaLibDirs, source: libDir, python: opts.python });
    const libraries = resolveLibraries(needed, dirs).filter((l) => l.role !== 'system' || l.path === null);
    const folders = [...new Set(libraries.flatMap((l) => (l.path ? [path.dirname(l.path)] : [])))];
    const unresolved = lddMissing(path.join(target, CUDA_PROVIDER_LIB), folders);
    for (const l of libraries) log(`  ${l.soname.padEnd(24)} ${l.path ?? 'NOT FOUND'}`);
    if (unresolved) log(`ldd: ${unresolved.length ? `not found: ${unresolved.join(', ')}` : 'every dependency resolves'}`);

    const manifest: CudaProviderManifest = {
      onnxruntime: onnxruntimeNodeVersion(),
      providerVersion: version,
      source: opts.from === 'python' ? libDir : path.resolve(opts.from),
      installedAt: new Date().toISOString(),
      linked: opts.link === true,
      providerBytes: fs.statSync(path.join(target, CUDA_PROVIDER_LIB)).size,
      libraries,
      lddMissing: unresolved,
    };
    const manifestFile = path.join(target, CUDA_MANIFEST);
    fs.writeFileSync(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
    const missingNames = [...new Set([...libraries.filter((l) => !l.path).map((l) => l.soname), ...(unresolved ?? [])])];
    return { manifest, manifestFile, missing: missingNames.map((soname) => ({ soname, hint: libraryHint(soname) })) };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// At run time

export interface CudaProviderStatus {
  /** True when a CUDA session can be tried. */
  usable: boolean;
  /** Why not, naming the missing file or library and the fix; null when usable. */
  reason: string | null;
  manifest: CudaProviderManifest | null;
}

export function readCudaManifest(dir = bindingDir()): CudaProviderManifest | null {
  const file = path.join(dir, CUDA_MANIFEST);
  if (!fs.existsSync(file)) return null;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as CudaProviderManifest;
  } catch {
    return null;
  }
}

/**
 * Whether the CUDA provider can be tried here, from files alone (nothing is loaded). Provider libraries installed some
 * other way (onnxruntime-node's own NuGet download where the network allows) have no manifest and count as usable;
 * if they then fail to load, `diagnoseCudaProvider` says why.
 */
export function cudaProviderStatus(dir = bindingDir(), version = onnxruntimeNodeVersion()): CudaProviderStatus {
  const no = (reason: string, manifest: CudaProviderManifest | null = null): CudaProviderStatus => ({ usable: false, reason, manifest });
  if (process.platform !== 'linux') return no(`the CUDA provider is set up for Linux only here (this is ${process.platform})`);
  const provider = path.join(dir, CUDA_PROVIDER_LIB);
  if (!fs.existsSync(provider)) {
    return no(`${CUDA_PROVIDER_LIB} is not installed beside onnxruntime-node (${dir}); install it with \`${INSTALL_COMMAND}\` (README: GPU (CUDA) on Linux)`);
  }
  if (!fs.existsSync(path.join(dir, SHARED_PROVIDER_LIB))) return no(`${SHARED_PROVIDER_LIB} is missing beside ${provider}; install both with \`${INSTALL_COMMAND}\``);
  const manifest = readCudaManifest(dir);
  if (!manifest) return { usable: true, reason: null, manifest: null };
  if (manifest.providerVersion !== version) {
    return no(`the installed CUDA provider is ONNX Runtime ${manifest.providerVersion} but onnxruntime-node is ${version}; install the ${version} provider with \`${INSTALL_COMMAND}\``, manifest);
  }
  const gone = manifest.libraries.filter((l) => !l.path || !fs.existsSync(l.path));
  const missing = [...new Set([...gone.map((l) => l.soname), ...(manifest.lddMissing ?? [])])];
  if (missing.length) {
    const list = missing.map((s) => `${s} (${libraryHint(s)})`).join('; ');
    return no(`the CUDA provider needs libraries that were not found: ${list}; then run \`${INSTALL_COMMAND}\` again, or --cuda-libs DIR`, manifest);
  }
  return { usable: true, reason: null, manifest };
}

const RTLD_NOW = 0x2;
const RTLD_GLOBAL = 0x100;
/** glibc's RTLD_NODELETE: process.dlopen closes a library that is not a Node addon; this keeps it loaded. */
const RTLD_NODELETE = 0x1000;
const preloaded = new Set<string>();

/**
 * Load each library by path so that the provider's dependencies resolve by soname. A library whose own dependencies
 * are not loaded yet fails and is retried after the others, so the order in the manifest does not matter. Throws a
 * CliffscopeError naming the libraries that could not be loaded.
 */
export function preloadLibraries(paths: string[]): void {
  let pending = paths.filter((p) => !preloaded.has(p));
  const errors = new Map<string, string>();
  while (pending.length) {
    const failed: string[] = [];
    for (const file of pending) {
      try {
        process.dlopen({ exports: {} } as NodeJS.Module, file, RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE);
        preloaded.add(file);
      } catch (e) {
        const message = (e as Error).message;
        // Not an addon: loaded (and kept by RTLD_NODELETE) all the same.
        if (/did not self-register|Module did not/.test(message)) {
          preloaded.add(file);
          continue;
        }
        errors.set(file, message);
        failed.push(file);
      }
    }
    if (failed.length === pending.length) break;
    pending = failed;
  }
  const left = paths.filter((p) => !preloaded.has(p));
  if (left.length) {
    throw new CliffscopeError('provider-unavailable', `could not load the CUDA libraries the provider needs: ${left.map((p) => errors.get(p) ?? p).join('; ')}`, {
      hint: `run \`${INSTALL_COMMAND}\` again to find them, or add --cuda-libs DIR`,
    });
  }
}

export function preloadCudaLibraries(manifest: CudaProviderManifest | null): void {
  if (!manifest) return;
  preloadLibraries(manifest.libraries.filter((l) => l.role !== 'system' && l.path).map((l) => l.path!));
}

/** Why the CUDA provider failed to load, as far as the files can tell (appended to ONNX Runtime's terse error). */
export function diagnoseCudaProvider(dir = bindingDir()): string | null {
  const status = cudaProviderStatus(dir);
  if (!status.usable) return status.reason;
  const provider = path.join(dir, CUDA_PROVIDER_LIB);
  const folders = [...new Set((status.manifest?.libraries ?? []).flatMap((l) => (l.path ? [path.dirname(l.path)] : [])))];
  const missing = lddMissing(provider, folders);
  if (missing?.length) return `ldd ${provider}: not found: ${missing.map((s) => `${s} (${libraryHint(s)})`).join('; ')}`;
  if (!status.manifest) {
    const scan = scanProviderLibrary(provider);
    const version = onnxruntimeNodeVersion();
    if (scan.versions.length && !scan.versions.includes(version)) return `${provider} is ONNX Runtime ${scan.versions.join('/')} but onnxruntime-node is ${version}`;
  }
  return null;
}
