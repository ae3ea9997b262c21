/**
 * A demo project for the workbench API tests, made through the API itself (`project.demo`, a job) in a temp dir with
 * CLIFFSCOPE_CACHE pointing into it, so nothing outside the temp dir is read or written.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeCallContext } from '../../src/main/api/context.js';
import { dispatch } from '../../src/main/api/dispatch.js';
import { closeAllWriters } from '../../src/main/api/projects.js';
import { releaseAllModels } from '../../src/main/api/model-pool.js';
import type { ApiErrorInfo, JobEvent, Method, ParamsOf, ResultOf } from '../../src/shared/contract.js';

export interface Fixture {
  dir: string;
  cache: string;
  file: string;
  demo: ResultOf<'project.demo'>;
  /** Events project.demo streamed. */
  demoEvents: JobEvent[];
}

let previousCache: string | undefined;

export async function makeDemoFixture(prefix: string): Promise<Fixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cliffscope-api-${prefix}-`));
  const cache = path.join(dir, 'cache');
  previousCache = process.env.CLIFFSCOPE_CACHE;
  process.env.CLIFFSCOPE_CACHE = cache;
  const events: JobEvent[] = [];
  const res = await dispatch('project.demo', {}, { context: makeCallContext('demo', new AbortController().signal, (e) => events.push(e)) });
  if (!res.ok) throw new Error(`project.demo failed: ${res.error.message}`);
  const demo = res.result as ResultOf<'project.demo'>;
  return { dir, cache, file: demo.file, demo, demoEvents: events };
}

export async function disposeFixture(fx: Fixture | undefined): Promise<void> {
  closeAllWriters();
  await releaseAllModels();
  if (previousCache === undefined) delete process.env.CLIFFSCOPE_CACHE;
  else process.env.CLIFFSCOPE_CACHE = previousCache;
  if (fx) fs.rmSync(fx.dir, { recursive: true, force: true });
}

/** Call a method in-process; throws with the error envelope's message when it fails. */
export async function call<M extends Method>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
  const res = await dispatch(method, params);
  if (!res.ok) throw Object.assign(new Error(res.error.message), { info: res.error });
  return res.result as ResultOf<M>;
}

/** Call a method expecting it to fail; returns the error envelope. */
export async function callError(method: string, params: unknown): Promise<ApiErrorInfo> {
  const res = await dispatch(method, params);
  if (res.ok) throw new Error(`${method} unexpectedly succeeded: ${JSON.stringify(res.result).slice(0, 300)}`);
  return res.error;
}
