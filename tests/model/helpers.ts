/** Shared helpers for the model tests: temp folders and error assertions. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { CliffscopeError, type ErrorCode } from '../../src/main/engine/errors.js';

/** A fresh temp folder; call the returned cleanup in afterAll. */
export function makeTempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cliffscope-${prefix}-`));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Run `fn`, expect a CliffscopeError with `code` whose message names `file`; return it for further checks. */
export function expectCliffscopeError(fn: () => unknown, code: ErrorCode, file: string): CliffscopeError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected an error to be thrown').toBeInstanceOf(CliffscopeError);
  const err = caught as CliffscopeError;
  expect(err.code, err.message).toBe(code);
  expect(err.message).toContain(file);
  return err;
}

/** The float32 bit pattern of a number (after rounding to float32). */
export function f32Bits(x: number): number {
  return new Uint32Array(Float32Array.of(x).buffer)[0]!;
}

/** The float32 value of a bit pattern. */
export function f32FromBits(bits: number): number {
  return new Float32Array(Uint32Array.of(bits).buffer)[0]!;
}
