/**
 * The packaged app is locked down by its build configuration (electron-builder.json, read by electron-builder, which
 * flips Electron's fuses with @electron/fuses): the binary cannot be turned back into a plain Node (ELECTRON_RUN_AS_NODE,
 * NODE_OPTIONS, --inspect), loads its code only from an app.asar whose integrity it checks, and ships only the built
 * app. The binary cannot run here, so the configuration itself is what is tested.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const config = JSON.parse(fs.readFileSync(path.join(root, 'electron-builder.json'), 'utf8')) as {
  files: string[];
  asar: boolean | Record<string, unknown>;
  asarUnpack: string[];
  electronFuses: Record<string, boolean>;
};
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { main: string; dependencies: Record<string, string> };

describe('packaging configuration', () => {
  it('flips the fuses that would let the binary run arbitrary code', () => {
    expect(config.electronFuses).toMatchObject({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      onlyLoadAppFromAsar: true,
      enableEmbeddedAsarIntegrityValidation: true,
      grantFileProtocolExtraPrivileges: false,
    });
  });

  it('packs the app into an asar with integrity (never disabled)', () => {
    expect(config.asar).toBe(true);
    expect(JSON.stringify(config)).not.toMatch(/disableIntegrity|disableSanityCheckAsar/);
  });

  it('ships only the built app: main entry included, sources and tests not', () => {
    expect(config.files).toContain('out/**/*');
    expect(pkg.main.startsWith('./out/')).toBe(true);
    expect(config.files.some((f) => /^(src|tests|bench)\b/.test(f))).toBe(false);
  });

  it('unpacks the native modules (and the template sandbox’s library, loaded by a worker thread)', () => {
    for (const name of ['better-sqlite3', 'onnxruntime-node', '@huggingface/jinja']) {
      expect(pkg.dependencies[name], name).toBeDefined();
      expect(config.asarUnpack).toContain(`node_modules/${name}/**/*`);
    }
  });
});
