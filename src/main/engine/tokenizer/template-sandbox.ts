/**
 * Chat templates come with downloaded checkpoints, so they are untrusted code: `{% for i in range(10**9) %}` or nested
 * loops would otherwise hang the engine or kill the whole process (V8 aborts on an array too large to grow). They run
 * here in a worker thread with a small heap, a time budget and an output-size limit; a worker that blows its budget
 * is terminated (V8 stops even a tight loop) and the next render starts a fresh one.
 *
 * The call stays synchronous, as tokenizing is everywhere: the caller blocks on a shared-memory flag (Atomics.wait)
 * while the worker renders, and collects the reply with receiveMessageOnPort. The worker's code is plain CommonJS
 * passed as a string, so it runs the same under Node, tsx, vitest and the Electron bundle.
 */
import { createRequire } from 'node:module';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';

export interface RenderBudget {
  /** Wall-clock time the template itself may take (the worker's start-up is not counted). */
  timeMs: number;
  /** Longest output, in UTF-16 code units. */
  maxChars: number;
  /** The worker's JavaScript heap limit. */
  heapMb: number;
}

export const DEFAULT_RENDER_BUDGET: Readonly<RenderBudget> = { timeMs: 5_000, maxChars: 16 * 1024 * 1024, heapMb: 256 };

/** How long a fresh worker may take to load the Jinja library before the render clock starts (a loaded CI box). */
const STARTUP_MS = 60_000;
/** Parsed templates kept per worker (a process usually uses one or two). */
const PARSE_CACHE = 16;
/** Error text from the template engine is cut here: it is shown to people, and a template may raise anything. */
const MAX_MESSAGE = 500;

export type RenderOutcome =
  | { ok: true; text: string }
  | { ok: false; stage: 'parse' | 'render' | 'size' | 'time'; message: string };

const WORKER_SOURCE = `
'use strict';
const { workerData } = require('node:worker_threads');
const { Template } = require(workerData.jinja);
const state = new Int32Array(workerData.state);
const port = workerData.port;
const cache = new Map();
const text = (e) => String(e && e.message !== undefined ? e.message : e).slice(0, ${MAX_MESSAGE});
port.on('message', ({ n, source, vars, maxChars }) => {
  Atomics.store(state, 0, n);
  Atomics.notify(state, 0);
  let outcome = null;
  let template = cache.get(source);
  if (!template) {
    try {
      template = new Template(source);
      if (cache.size >= ${PARSE_CACHE}) cache.clear();
      cache.set(source, template);
    } catch (e) {
      outcome = { ok: false, stage: 'parse', message: text(e) };
    }
  }
  if (!outcome) {
    try {
      const out = template.render(vars);
      outcome = typeof out !== 'string'
        ? { ok: false, stage: 'render', message: 'the template did not produce text' }
        : out.length > maxChars
          ? { ok: false, stage: 'size', message: 'output of ' + out.length + ' characters is over the limit of ' + maxChars }
          : { ok: true, text: out };
    } catch (e) {
      outcome = { ok: false, stage: 'render', message: text(e) };
    }
  }
  port.postMessage({ n, outcome });
  Atomics.store(state, 1, n);
  Atomics.notify(state, 1);
});
`;

const jinjaEntry = (() => {
  let resolved: string | null = null;
  return () => (resolved ??= createRequire(import.meta.url).resolve('@huggingface/jinja'));
})();

interface Sandbox {
  worker: Worker;
  port: MessagePort;
  /** [0]: the last job the worker started, [1]: the last job it finished. */
  state: Int32Array;
  heapMb: number;
  jobs: number;
}

let current: Sandbox | null = null;

function startSandbox(heapMb: number): Sandbox {
  const { port1, port2 } = new MessageChannel();
  const state = new Int32Array(new SharedArrayBuffer(8));
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { jinja: jinjaEntry(), state: state.buffer, port: port2 },
    transferList: [port2],
    resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: Math.min(32, heapMb), stackSizeMb: 4 },
    // The parent's --import tsx etc. are not needed: the worker is plain CommonJS.
    execArgv: [],
    stdout: false,
    stderr: false,
  });
  // Never keeps the process alive, and a worker that dies (out of memory) is simply replaced on the next render.
  worker.unref();
  worker.on('error', () => {});
  return { worker, port: port1, state, heapMb, jobs: 0 };
}

function stopSandbox(s: Sandbox): void {
  if (current === s) current = null;
  s.port.close();
  void s.worker.terminate();
}

/** Block until `state[slot]` reaches `n` or `ms` pass; true when it did. */
function waitFor(state: Int32Array, slot: 0 | 1, n: number, ms: number): boolean {
  const deadline = Date.now() + ms;
  for (;;) {
    const seen = Atomics.load(state, slot);
    if (seen >= n) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    Atomics.wait(state, slot, seen, left);
  }
}

/**
 * Parse (cached) and render `source` with `vars` in the sandbox. Never throws for anything the template does; the
 * outcome says what went wrong. `vars` must be plain data (it is copied to the worker).
 */
export function renderInSandbox(source: string, vars: Record<string, unknown>, budget: RenderBudget = DEFAULT_RENDER_BUDGET): RenderOutcome {
  if (current && current.heapMb !== budget.heapMb) stopSandbox(current);
  const s = (current ??= startSandbox(budget.heapMb));
  const n = ++s.jobs;
  s.port.postMessage({ n, source, vars, maxChars: budget.maxChars });
  const started = waitFor(s.state, 0, n, STARTUP_MS);
  const finished = started && waitFor(s.state, 1, n, budget.timeMs);
  if (!finished) {
    stopSandbox(s);
    return {
      ok: false,
      stage: 'time',
      message: started
        ? `rendering took longer than ${budget.timeMs / 1000} s or used more than ${budget.heapMb} MB, and was stopped`
        : 'the template worker did not start',
    };
  }
  for (;;) {
    const got = receiveMessageOnPort(s.port) as { message: { n: number; outcome: RenderOutcome } } | undefined;
    if (!got) {
      stopSandbox(s);
      return { ok: false, stage: 'render', message: 'the template worker gave no result' };
    }
    if (got.message.n === n) return got.message.outcome;
  }
}
