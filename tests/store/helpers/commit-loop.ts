/**
 * Child process for the kill-safety test: opens (or creates) a project, starts a run and commits items forever,
 * printing "committed KEY" after each commit returns. Each item writes a transcript, sleeps a little inside the
 * transaction (so a kill often lands mid-transaction), then writes a trace.
 *
 * usage: node --import tsx commit-loop.ts PROJECT
 */
import { openProject } from '../../../src/main/store/open.js';

const file = process.argv[2];
if (!file) throw new Error('usage: commit-loop.ts PROJECT');
const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

const store = openProject(file, { create: true });
const model = store.models.add({ path: '/models/tiny', contentHash: 'sha256:kill-test' });
const probe = store.probes.add({ modelId: model.id, name: 'refusal', residIndex: 1, positionRule: 'answer-boundary', weights: new Float32Array(64).fill(0.5), bias: 0 });
const run = store.runs.start({ kind: 'transcripts', modelId: model.id, config: { seed: 7 } });
process.stdout.write(`run ${run.id}\n`);

const tokens = Int32Array.from({ length: 2048 }, (_, i) => i);
const scores = new Float32Array(2048).fill(0.25);
for (let i = 0; ; i++) {
  const key = `item-${i}`;
  store.runs.commitItem(run.id, key, (s) => {
    const transcriptId = s.transcripts.add({ runId: run.id, prompt: `prompt ${i}`, tokenIds: tokens, promptTokens: 16, text: `text ${i}` });
    sleep(2);
    s.traces.add({ runId: run.id, transcriptId, probeId: probe.id, residIndex: 1, scores, plateau: 0.9, final: 0.1, ms: 0.8 });
    return { transcriptId };
  });
  process.stdout.write(`committed ${key}\n`);
}
