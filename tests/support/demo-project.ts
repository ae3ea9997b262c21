/**
 * The built-in demo in a temp folder of its own (runDemo: the planted model, its datasets and every stage's run), for
 * tests that build on the demo's runs through the CLI; `dispose` removes the folder.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runDemo, type DemoReport } from '../../src/main/api/demo/run-demo.js';

export interface DemoProject {
  root: string;
  project: string;
  model: string;
  runs: DemoReport['runs'];
  probeId: number;
  dispose(): void;
}

export async function demoProject(prefix: string): Promise<DemoProject> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `cliffscope-${prefix}-`));
  const project = path.join(root, 'demo.cliffscope');
  const report = await runDemo({ projectFile: project, cacheRoot: path.join(root, 'cache'), threads: 1 });
  return { root, project, model: report.modelDir, runs: report.runs, probeId: report.probe.id, dispose: () => fs.rmSync(root, { recursive: true, force: true }) };
}
