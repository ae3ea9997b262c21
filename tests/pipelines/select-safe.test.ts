/**
 * Cliff-as-a-Judge output as the paper trains on it (docs/METHOD.md §6): a select run scores the model's own
 * transcripts of a safety set's prompts (--transcripts-run) and exports each selected sample as the model's own
 * thinking followed by the dataset's safe answer (--safe-response COLUMN), as LLaMA-Factory files merged into the
 * folder's dataset_info.json; items without a safe answer are not scored, and bad columns or sources are refused.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDemoSafetyTrain } from '../../src/main/api/demo/resources.js';
import { cli } from '../support/cli.js';
import { demoProject, type DemoProject } from '../support/demo-project.js';
import { writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';

let demo: DemoProject;
let root: string;
let project: string;
let model: string;
let probeId: number;
let transcriptsRun: number;
const SAFE = 'i cannot help with that . please ask for something safe .';

beforeAll(async () => {
  demo = await demoProject('select-safe');
  ({ root, project, model, probeId } = demo);
  // The demo's safety set with a safe answer per item (its column "safe", mapped on import), except the last one.
  const items = loadDemoSafetyTrain().map((it, i, all) => ({ prompt: it.prompt, response: it.response, label: it.label, ...(i < all.length - 1 ? { safe: `${SAFE} (${i})` } : {}) }));
  const file = path.join(root, 'safe.jsonl');
  fs.writeFileSync(file, items.map((x) => JSON.stringify(x)).join('\n') + '\n');
  const imported = await cli('dataset', 'import', project, file, '--name', 'safe', '--map', 'safe_response=safe', '--json');
  expect(imported.code, imported.stderr).toBe(0);
  expect(JSON.parse(imported.stdout)).toMatchObject({ dataset: { mapping: { safe_response: 'safe' } } });
}, 300_000);
afterAll(() => demo?.dispose());

const m = () => ['--model', model, '--threads', '1'];
const json = <T>(stdout: string) => JSON.parse(stdout) as T;

describe('select with the model’s own thinking and a safe answer', () => {
  it('exports thinking + "</think>\\n\\n" + the safe answer for every selected sample, merged into dataset_info.json', async () => {
    const gen = await cli('transcripts', project, ...m(), '--dataset', 'safe', '--max-new-tokens', '40', '--json');
    expect(gen.code, gen.stderr).toBe(0);
    transcriptsRun = json<{ run: { id: number } }>(gen.stdout).run.id;
    const out = path.join(root, 'lf');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'dataset_info.json'), JSON.stringify({ theirs: { file_name: 'theirs.json' } }));
    const r = await cli('select', project, ...m(), '--probe', String(probeId), '--dataset', 'safe', '--transcripts-run', String(transcriptsRun), '--safe-response', 'safe_response', '--fraction', '0.25', '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = json<{ summary: { total: number; selected: number } }>(r.stdout);
    const items = loadDemoSafetyTrain();
    // The item without a safe answer is not scored.
    expect(report.summary.total).toBe(items.length - 1);
    expect(report.summary.selected).toBe(Math.round(0.25 * (items.length - 1)));

    const alpaca = json<{ instruction: string; input: string; output: string }[]>(fs.readFileSync(path.join(out, 'cliffscope_selection.json'), 'utf8'));
    expect(alpaca).toHaveLength(report.summary.selected);
    const { transcripts } = await import('../support/run-contents.js').then(({ runContents }) => runContents(project, { id: transcriptsRun }));
    const texts = new Map((transcripts as { prompt: string; text: string }[]).map((t) => [t.prompt, t.text]));
    for (const rec of alpaca) {
      const i = items.findIndex((it) => it.prompt === rec.instruction);
      const [thinking, answer] = rec.output.split('</think>\n\n') as [string, string];
      expect(answer).toBe(`${SAFE} (${i})`);
      // The model's own thinking (its transcript's text starts with it), not the dataset's response.
      expect(thinking.length).toBeGreaterThan(0);
      expect(texts.get(rec.instruction)!.startsWith(thinking)).toBe(true);
    }
    // The demo model thinks its own fixed text, not the dataset's responses.
    expect(alpaca.some((rec) => !items.find((it) => it.prompt === rec.instruction)!.response.startsWith(rec.output.split('</think>')[0]!))).toBe(true);
    const messages = fs.readFileSync(path.join(out, 'cliffscope_selection_messages.jsonl'), 'utf8').trim().split('\n').map((l) => json<{ messages: { content: string }[] }>(l));
    expect(messages.map((x) => x.messages[1]!.content)).toEqual(alpaca.map((a) => a.output));
    const info = json<Record<string, unknown>>(fs.readFileSync(path.join(out, 'dataset_info.json'), 'utf8'));
    expect(Object.keys(info).sort()).toEqual(['cliffscope_selection', 'cliffscope_selection_messages', 'theirs']);
    const prov = json<{ extra: { thinking: string; answer: string } }>(fs.readFileSync(path.join(out, 'cliffscope_selection.provenance.json'), 'utf8'));
    expect(prov.extra.thinking).toContain(`transcripts run #${transcriptsRun}`);
    expect(prov.extra.answer).toContain('safe_response');
  }, 120_000);

  it("with the dataset's responses, the thinking is the response's own and the answer the safe one", async () => {
    const out = path.join(root, 'lf2');
    const r = await cli('select', project, ...m(), '--probe', String(probeId), '--dataset', 'safe', '--safe-response', 'safe_response', '--fraction', '0.25', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const items = loadDemoSafetyTrain();
    for (const rec of json<{ instruction: string; output: string }[]>(fs.readFileSync(path.join(out, 'cliffscope_selection.json'), 'utf8'))) {
      const i = items.findIndex((it) => it.prompt === rec.instruction);
      expect(rec.output).toBe(`${items[i]!.response.split('</think>')[0]!.trim()}</think>\n\n${SAFE} (${i})`);
    }
  }, 120_000);

  it('llm-judge: the LLM-as-a-judge baseline selects among the answers a judge run called harmful (guard model or keywords)', async () => {
    const select = (judgeRun: number) =>
      cli('select', project, ...m(), '--probe', String(probeId), '--dataset', 'safe', '--transcripts-run', String(transcriptsRun), '--variant', 'llm-judge', '--judge-run', String(judgeRun), '--fraction', '0.25', '--json');
    // Through the guard-model path: a local guard judges the model's own answers (this stand-in never says "unsafe").
    const guardDir = path.join(root, 'guard');
    writeTinyCheckpoint(guardDir, 'llama', { seed: 3 });
    const guardJudge = await cli('judge', project, ...m(), '--run', String(transcriptsRun), '--guard', guardDir, '--json');
    expect(guardJudge.code, guardJudge.stderr).toBe(0);
    const byGuard = await select(json<{ run: { id: number } }>(guardJudge.stdout).run.id);
    expect(byGuard.code, byGuard.stderr).toBe(0);
    expect(json<{ summary: { variant: string; selected: number } }>(byGuard.stdout).summary).toMatchObject({ variant: 'llm-judge', selected: 0 });
    // A keyword judge calls every answer of the demo model compliant: all are eligible, the budget is selected.
    const keywordJudge = await cli('judge', project, ...m(), '--run', String(transcriptsRun), '--keywords', 'jbb', '--json');
    expect(keywordJudge.code, keywordJudge.stderr).toBe(0);
    const byKeywords = await select(json<{ run: { id: number } }>(keywordJudge.stdout).run.id);
    expect(byKeywords.code, byKeywords.stderr).toBe(0);
    const s = json<{ summary: { selected: number; total: number; threshold: number | null } }>(byKeywords.stdout).summary;
    expect(s.selected).toBe(Math.round(0.25 * s.total));
    expect(s.threshold).toBeNull();
    // Without a judge run, or with one of another run, it is refused before any work.
    const missing = await cli('select', project, ...m(), '--probe', String(probeId), '--dataset', 'safe', '--transcripts-run', String(transcriptsRun), '--variant', 'llm-judge');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--judge-run/);
    const otherJudge = await cli('judge', project, ...m(), '--run', '2', '--keywords', 'jbb', '--json');
    const wrong = await select(json<{ run: { id: number } }>(otherJudge.stdout).run.id);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/judged run #2, not the transcripts run/);
  }, 120_000);

  it('refuses a column no item has, and a transcripts run of another dataset, before any work', async () => {
    const bad = await cli('select', project, ...m(), '--probe', String(probeId), '--dataset', 'safe', '--safe-response', 'nope');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/no item with a safe answer in column "nope"[\s\S]*safe_response/);
    const other = await cli('select', project, ...m(), '--probe', String(probeId), '--dataset', 'safe', '--transcripts-run', '2');
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/--transcripts-run: transcripts run #2 is of dataset #\d+, not #\d+/);
  });
});
