/**
 * The demo's prompt sets, shipped as JSON in `resources/demo/`: `prompts.json` (harmful and harmless prompts written
 * in the demo model's vocabulary) and `safety-train.json` (prompt + reasoning-response pairs for Cliff-as-a-Judge).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliffscopeError } from '../../engine/errors.js';

export type DemoLabel = 'harmful' | 'harmless';

export interface DemoPrompt {
  id: string;
  label: DemoLabel;
  prompt: string;
}

export interface DemoTrainingItem {
  id: string;
  label: DemoLabel;
  prompt: string;
  /** What follows the chat template's pre-filled `<think>`: thinking, `</think>`, answer. */
  response: string;
  /** Whether the answer refuses. */
  refuses: boolean;
}

/**
 * The `resources/demo` folder: the first one found walking up from this module (works from `src/main/engine/demo`
 * and from a bundled `out/main`). A packaged app passes its own resources path instead.
 */
export function demoResourcesDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'resources', 'demo');
    if (fs.existsSync(path.join(candidate, 'prompts.json'))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new CliffscopeError('missing-file', 'cannot find resources/demo/prompts.json above the Cliffscope sources', {
        hint: 'pass the folder holding prompts.json and safety-train.json explicitly',
      });
    }
    dir = parent;
  }
}

function readList(file: string, key: string): Record<string, unknown>[] {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CliffscopeError('bad-dataset', `cannot read ${file}: ${(e as Error).message}`, { file, cause: e });
  }
  const list = (raw as Record<string, unknown> | null)?.[key];
  if (!Array.isArray(list)) throw new CliffscopeError('bad-dataset', `${file}: "${key}" must be an array`, { file });
  return list as Record<string, unknown>[];
}

function check(ok: boolean, file: string, what: string): void {
  if (!ok) throw new CliffscopeError('bad-dataset', `${file}: ${what}`, { file });
}

export function loadDemoPrompts(dir: string = demoResourcesDir()): DemoPrompt[] {
  const file = path.join(dir, 'prompts.json');
  return readList(file, 'prompts').map((p, i) => {
    check(typeof p.id === 'string' && typeof p.prompt === 'string', file, `prompts[${i}] needs string "id" and "prompt"`);
    check(p.label === 'harmful' || p.label === 'harmless', file, `prompts[${i}].label must be "harmful" or "harmless"`);
    return { id: p.id as string, label: p.label as DemoLabel, prompt: p.prompt as string };
  });
}

export function loadDemoSafetyTrain(dir: string = demoResourcesDir()): DemoTrainingItem[] {
  const file = path.join(dir, 'safety-train.json');
  return readList(file, 'items').map((p, i) => {
    check(
      typeof p.id === 'string' && typeof p.prompt === 'string' && typeof p.response === 'string' && typeof p.refuses === 'boolean',
      file,
      `items[${i}] needs "id", "prompt", "response" (strings) and "refuses" (boolean)`,
    );
    check(p.label === 'harmful' || p.label === 'harmless', file, `items[${i}].label must be "harmful" or "harmless"`);
    return {
      id: p.id as string,
      label: p.label as DemoLabel,
      prompt: p.prompt as string,
      response: p.response as string,
      refuses: p.refuses as boolean,
    };
  });
}
