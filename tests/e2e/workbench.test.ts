/**
 * The workbench end to end in a real browser over serve mode (the server and engine host `cliffscope serve` runs,
 * started in this process, serving a renderer built for this test): the page opens the demo project by itself
 * (what `npm start` shows), the "Open demo project" button opens it again, then every panel is checked against the
 * store — the numbers shown must be the ones the API returns (formatted by the same functions), not only "the page
 * loaded". A screenshot of every panel goes to test-results/, and the README's screenshots (light and dark) to
 * test-results/readme/, or to docs/screenshots/ under `npm run screenshots` (so a test run leaves the checkout
 * clean). Skipped (with the reason logged) where Debian's Chromium is not installed.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobPaths } from '../../src/main/api/cluster/slurm.js';
import type { ApiResponse, Method, ParamsOf, ResultOf } from '../../src/shared/contract.js';
import { summaryOf } from '../../src/shared/contract.js';
import { EngineClient } from '../../src/main/api/host/engine-client.js';
import { startServer, type ServeHandle } from '../../src/main/serve/server.js';
import { headLabel } from '../../src/shared/heads.js';
import { fmtHeadline, fmtInt, fmtNum, fmtPct } from '../../src/renderer/src/lib/format.js';
import { post } from '../serve/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const RESULTS = path.resolve('test-results');
/** The README's screenshots: made by every run; written over the README's own under `npm run screenshots`. */
const SCREENSHOTS = process.env.CLIFFSCOPE_UPDATE_SCREENSHOTS === '1' ? path.resolve('docs/screenshots') : path.join(RESULTS, 'readme');
/** Generous: the first demo build compiles the demo model and runs the whole method. */
const DEMO_TIMEOUT = 150_000;
const UI_TIMEOUT = 30_000;

const reason = fs.existsSync(CHROMIUM) ? null : `${CHROMIUM} is not installed (apt-get install -y chromium)`;
if (reason) console.warn(`[tests/e2e/workbench] skipped: ${reason}`);

/**
 * Build the renderer into a folder of this test's own, with the app's own renderer config (electron.vite.config.ts):
 * out/renderer is shared with other test files running at the same time, which may be rebuilding it.
 */
async function buildRenderer(outDir: string): Promise<void> {
  const [{ build }, { default: config }] = await Promise.all([import('vite'), import('../../electron.vite.config.js')]);
  const renderer = (config as { renderer: Record<string, unknown> & { build: Record<string, unknown> } }).renderer;
  await build({ ...renderer, configFile: false, logLevel: 'warn', build: { ...renderer.build, outDir, emptyOutDir: true } });
}

/** A table's body as records keyed by each cell's data-col (what DataTable renders). */
async function readTable(table: Locator): Promise<Record<string, string>[]> {
  await table.locator('tbody tr').first().waitFor({ timeout: UI_TIMEOUT });
  return table.locator('tbody tr').evaluateAll((rows) =>
    rows.map((tr) => Object.fromEntries(Array.from(tr.querySelectorAll('td[data-col]')).map((td) => [td.getAttribute('data-col')!, (td.textContent ?? '').trim()]))),
  );
}

(reason ? describe.skip : describe)(`the workbench in a browser${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let root: string;
  let engine: EngineClient;
  let server: ServeHandle;
  let port: number;
  let token: string;
  let context: BrowserContext;
  let page: Page;
  let file: string;
  const errors: string[] = [];

  async function call<M extends Method>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    const body = (await post(port, '/api/invoke', { method, params }, { token })).json<ApiResponse<ResultOf<M>>>();
    if (!body.ok) throw new Error(`${method}: ${body.error.message}`);
    return body.result;
  }

  async function tab(name: string): Promise<void> {
    await page.getByRole('tab', { name, exact: true }).click();
    await expect.poll(() => page.getByRole('tab', { name, exact: true }).getAttribute('aria-selected')).toBe('true');
  }

  async function shot(name: string): Promise<void> {
    // Let plots finish drawing (each shows "Drawing…" until plotly has rendered it).
    await expect.poll(() => page.getByText('Drawing…').count(), { timeout: UI_TIMEOUT }).toBe(0);
    // From the top: sticky parts (sidebar, tab bar) would otherwise be drawn where the page was scrolled to.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(RESULTS, `workbench-${name}.png`), fullPage: true });
    // No table clips its last columns: each fits its box at this window width.
    const clipped = await page.locator('.datatable .scroll').evaluateAll((boxes) =>
      boxes.filter((b) => b.scrollWidth > b.clientWidth + 1).map((b) => `${b.querySelector('table')?.getAttribute('aria-label')}: ${b.scrollWidth} > ${b.clientWidth}`),
    );
    expect(clipped, `tables wider than their box on ${name}`).toEqual([]);
    await audit(name);
  }

  /** A README screenshot, SCREENSHOTS/NAME.png: the window as shown from the top, or one part of the page. */
  async function readmeShot(name: string, part?: Locator): Promise<void> {
    await expect.poll(() => page.getByText('Drawing…').count(), { timeout: UI_TIMEOUT }).toBe(0);
    const file = path.join(SCREENSHOTS, `${name}.png`);
    if (part) await part.screenshot({ path: file });
    else {
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: file });
    }
  }

  /**
   * An automated accessibility audit of the page as shown (axe-core, WCAG 2.1 A and AA and best practices): every
   * violation listed with the elements at fault fails the test.
   */
  async function audit(name: string): Promise<void> {
    // Evaluated through the debugging protocol: the page's CSP (script-src 'self') rightly refuses injected tags.
    if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(`${fs.readFileSync(AXE, 'utf8')}\n;0`);
    const violations = await page.evaluate(async () => {
      const axe = (window as unknown as { axe: { run: (ctx: unknown, opts: unknown) => Promise<{ violations: { id: string; help: string; nodes: { target: unknown[] }[] }[] }> } }).axe;
      const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
      return r.violations.map((v) => `${v.id} (${v.help}): ${v.nodes.slice(0, 5).map((n) => JSON.stringify(n.target)).join(', ')}${v.nodes.length > 5 ? ` and ${v.nodes.length - 5} more` : ''}`);
    });
    expect(violations, `accessibility violations on ${name}`).toEqual([]);
  }

  /** The project's run of a kind with a given stored name (the demo names its runs "demo" / "demo-harmless"). */
  async function demoRun(kind: string, name = 'demo'): Promise<number> {
    const summary = await call('project.open', { file });
    const run = summary.runs.filter((r) => r.kind === kind && r.name === name && r.status === 'done').at(-1);
    if (!run) throw new Error(`the demo project has no finished ${kind} run named ${name}`);
    return run.id;
  }

  /** The shown run form's "Run on a cluster…": plans a 2-shard job in `jobDir`; the dialog, showing its commands. */
  async function planOnCluster(jobDir: string): Promise<Locator> {
    await page.getByRole('button', { name: 'Run on a cluster…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Run on a cluster' });
    await dialog.getByLabel('Job directory (new)').fill(jobDir);
    await dialog.getByLabel('Shards').fill('2');
    await dialog.getByRole('button', { name: 'Write the job directory' }).click();
    await dialog.getByText(`cliffscope slurm submit ${jobDir}`, { exact: true }).waitFor({ timeout: UI_TIMEOUT });
    return dialog;
  }

  beforeAll(async () => {
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-e2e-'));
    const rendererDir = path.join(root, 'renderer');
    await buildRenderer(rendererDir);
    // What `cliffscope serve` runs, in this process: the engine host process (which inherits the cache setting,
    // so the demo, its compiled model and the recent list all live under the temp folder) and the HTTP server.
    process.env.CLIFFSCOPE_CACHE = path.join(root, 'cache');
    engine = new EngineClient();
    server = await startServer({ engine, port: 0, rendererDir });
    port = server.port;
    token = server.token;
    const { chromium } = await import('playwright-core');
    context = await chromium.launchPersistentContext(path.join(root, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1440, height: 960 },
      colorScheme: 'light',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await context.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await server?.close();
    engine?.close();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('opens the demo project by itself, and again from the “Open demo project” button', async () => {
    await page.goto(server.url);
    // No project yet: the page builds the demo with a progress bar, then opens it.
    await page.getByRole('progressbar').first().waitFor({ timeout: UI_TIMEOUT });
    await shot('opening-demo');
    const heading = page.getByRole('heading', { name: 'demo.cliffscope', level: 2 });
    await heading.waitFor({ timeout: DEMO_TIMEOUT });
    file = (await call('project.recent', {})).files[0]!;
    expect(path.basename(file)).toBe('demo.cliffscope');

    const button = page.getByRole('button', { name: 'Open demo project' });
    await button.click();
    await page.getByRole('button', { name: 'Opening the demo…' }).waitFor({ timeout: UI_TIMEOUT }).catch(() => undefined); // may finish at once
    await button.waitFor({ timeout: DEMO_TIMEOUT });
    await expect.poll(() => button.isEnabled(), { timeout: DEMO_TIMEOUT }).toBe(true);
    await heading.waitFor();
    // The sidebar lists it as the current recent project.
    await expect.poll(() => page.locator('.recent [aria-current="true"]').getAttribute('title')).toBe(file);
  }, DEMO_TIMEOUT * 2);

  it('Probes: the form’s default settings train a probe on the demo project (prompt-only datasets: the prompt-only recipe)', async () => {
    await tab('Probes');
    await page.getByLabel('Name', { exact: true }).fill('e2e-defaults');
    expect(await page.getByLabel('Refusals (positive)').inputValue()).not.toBe('');
    expect(await page.getByLabel('Non-refusals (negative)').inputValue()).not.toBe('');
    await page.getByRole('button', { name: 'Train', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Train probe "e2e-defaults": done' }).waitFor({ timeout: 60_000 });
    const run = (await call('project.open', { file })).runs.find((r) => r.kind === 'probe' && r.name === 'e2e-defaults')!;
    expect(run.status).toBe('done');
    const { report } = await call('run.report', { project: file, runId: run.id });
    expect(report.run.config).toMatchObject({ positionRule: 'last-prompt-token', labelRule: 'all' });
    expect(summaryOf(report, 'probe')!.bestProbeId).toBeGreaterThan(0);
  }, 90_000);

  it('Probes: trains a probe on every residual-stack entry from the form and shows each probe’s accuracy as the store has it', async () => {
    await tab('Probes');
    await page.getByLabel('Name', { exact: true }).fill('e2e-probe');
    await page.locator('#probe-resid').selectOption('all');
    // The demo model never refuses, so train as the demo does: prompt-only features, every positive counts.
    await page.getByLabel('custom').check();
    await page.getByLabel('Position').selectOption('last-prompt-token');
    await page.getByLabel('Positives count when').selectOption('all');
    await page.getByLabel('lr', { exact: true }).fill('0.2');
    await page.getByLabel('epochs', { exact: true }).fill('60');
    await page.getByLabel('batch', { exact: true }).fill('16');
    await page.getByLabel('keep the epoch with').selectOption('val-loss');
    expect(await page.getByLabel('Refusals (positive)').inputValue()).not.toBe('');
    await page.getByRole('button', { name: 'Train', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Train probe "e2e-probe": done' }).waitFor({ timeout: 60_000 });

    // One probe per residual-stack entry (embeddings … final norm), each listed with the store's metrics.
    const { probes } = await call('probe.list', { project: file });
    const trained = probes.filter((p) => p.name.startsWith('e2e-probe/'));
    const { models } = await call('project.open', { file });
    expect(trained).toHaveLength(models[0]!.layers! + 2);
    const table = page.getByRole('table', { name: 'Probes', exact: true });
    await expect.poll(async () => (await readTable(table)).length, { timeout: UI_TIMEOUT }).toBe(probes.length);
    const shown = await readTable(table);
    for (const p of probes) {
      const row = shown.find((r) => r.name === `${p.name} v${p.version}`);
      expect(row, `row of probe #${p.id}`).toBeDefined();
      expect(row!.valAcc).toBe(fmtPct(p.metrics.valAccuracy, 1));
      expect(row!.auroc).toBe(fmtNum(p.metrics.valAuroc, 3));
      expect(row!.resid).toBe(String(p.residIndex));
    }
    // The sweep's chart, and the best entry's probe picked for the other panels.
    const run = (await call('project.open', { file })).runs.find((r) => r.kind === 'probe' && r.name === 'e2e-probe')!;
    const best = summaryOf((await call('run.report', { project: file, runId: run.id })).report, 'probe')!.bestProbeId;
    await page.getByRole('figure', { name: 'Validation accuracy and AUROC per residual-stack index' }).locator('.main-svg').first().waitFor({ timeout: UI_TIMEOUT });
    const bestProbe = probes.find((p) => p.id === best)!;
    await expect.poll(() => page.getByTestId('probe-val-accuracy').textContent(), { timeout: UI_TIMEOUT }).toBe(fmtPct(bestProbe.metrics.valAccuracy, 1));
    expect(await page.locator('.card h3', { hasText: /^Probe #/ }).textContent()).toBe(`Probe #${best} ${bestProbe.name} v${bestProbe.version}`);
    // Its calibration as probe.get has it: loss next to ln 2, the class means, their gap and ECE.
    const cal = (await call('probe.get', { project: file, probeId: best })).probe.metrics.calibration!;
    const calibration = page.getByTestId('probe-calibration');
    await expect.poll(() => calibration.textContent(), { timeout: UI_TIMEOUT }).toContain(`${fmtNum(cal.loss, 3)} (ln 2 = 0.693)`);
    const text = (await calibration.textContent())!;
    for (const v of [cal.meanScore.positive, cal.meanScore.negative, cal.scoreGap, cal.ece]) expect(text).toContain(fmtNum(v, 3));
    await shot('probes');
  }, 90_000);

  it('Cliffs: the trace run’s plateau / final / MS are run.report’s', async () => {
    await tab('Cliffs');
    const traceRun = await demoRun('trace');
    await expect.poll(() => page.getByLabel('Trace run').inputValue()).toBe(String(traceRun));
    const { report } = await call('run.report', { project: file, runId: traceRun });
    const s = summaryOf(report, 'trace')!;
    await expect.poll(() => page.getByTestId('mean-plateau').textContent(), { timeout: UI_TIMEOUT }).toBe(fmtNum(s.meanPlateau));
    expect(await page.getByTestId('mean-final').textContent()).toBe(fmtNum(s.meanFinal));
    expect(await page.getByTestId('mean-ms').textContent()).toBe(fmtNum(s.meanMs));
    expect(await page.getByTestId('trace-count').textContent()).toBe(fmtInt(s.transcripts));
    // The demo's cliff: a high plateau through thinking, a low final score at </think>.
    expect(s.meanPlateau!).toBeGreaterThan(0.9);
    expect(s.meanFinal!).toBeLessThan(0.2);
    // How many traces have a cliff, by the engine's rule (trace.list), and the width of those cliffs only.
    const cliffs = (await call('trace.list', { project: file, runId: traceRun })).cliffs;
    expect(await page.getByTestId('cliff-count').textContent()).toBe(`${fmtInt(cliffs.withCliff)} / ${fmtInt(cliffs.traces)}`);
    expect(await page.getByTestId('cliff-width').textContent()).toBe(`${fmtNum(cliffs.meanWidth, 1)} tok`);

    // Per-transcript rows are trace.list's.
    const list = await call('trace.list', { project: file, runId: traceRun });
    const rows = await readTable(page.getByRole('table', { name: 'Traced transcripts' }));
    expect(rows).toHaveLength(list.traces.length);
    const first = list.traces[0]!;
    const row = rows.find((r) => r.id === String(first.transcriptId))!;
    expect([row.plateau, row.final, row.ms]).toEqual([fmtNum(first.plateau), fmtNum(first.final), fmtNum(first.ms)]);
    for (const title of ['Tail-aligned average refusal score', `Refusal score per token, transcript #${first.transcriptId}`]) {
      await page.getByRole('figure', { name: title }).locator('.main-svg').first().waitFor({ timeout: UI_TIMEOUT });
    }
    await shot('cliffs');
    await readmeShot('cliffs-light');

    // Every plot saves as PNG / SVG, every table as CSV (of the rows shown).
    const save = async (button: Locator) => {
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: UI_TIMEOUT }), button.click()]);
      const saved = path.join(root, download.suggestedFilename());
      await download.saveAs(saved);
      return { name: download.suggestedFilename(), bytes: fs.readFileSync(saved) };
    };
    const png = await save(page.getByRole('button', { name: 'Save "Tail-aligned average refusal score" as PNG' }));
    expect(png.name).toBe('tail-aligned-average-refusal-score.png');
    expect(png.bytes.subarray(1, 4).toString()).toBe('PNG');
    const svg = await save(page.getByRole('button', { name: 'Save "Tail-aligned average refusal score" as SVG' }));
    expect(svg.name).toBe('tail-aligned-average-refusal-score.svg');
    expect(svg.bytes.toString()).toContain('<svg');
    const csv = await save(page.locator('.datatable', { has: page.getByRole('table', { name: 'Traced transcripts' }) }).getByRole('button', { name: 'CSV', exact: true }));
    const lines = csv.bytes.toString().trimEnd().split('\r\n');
    expect(lines[0]).toBe('Transcript,Label,Prompt,Tokens,Plateau I,Final I\',MS,Cliff,Steepest drop at,Cliff width');
    expect(lines).toHaveLength(list.traces.length + 1);

    // Trace again with every entry's probe of the sweep trained above: the residual stream × tokens map.
    const generated = await demoRun('transcripts');
    await page.locator('#trace-source').selectOption(`r:${generated}`);
    await page.getByLabel(/also every residual-stack entry's probe/).check();
    await page.getByRole('button', { name: /^Trace with probe #/ }).click();
    await page.getByRole('status').filter({ hasText: /Trace with probe #\d+: done/ }).waitFor({ timeout: 60_000 });
    const newTrace = (await call('project.open', { file })).runs.filter((r) => r.kind === 'trace').at(-1)!;
    await expect.poll(() => page.getByLabel('Trace run').inputValue(), { timeout: UI_TIMEOUT }).toBe(String(newTrace.id));
    const traced = await call('trace.list', { project: file, runId: newTrace.id });
    expect(traced.probes.length).toBeGreaterThan(1);
    await page.getByRole('figure', { name: `Residual stream × tokens, transcript #${traced.traces[0]!.transcriptId}` }).locator('.main-svg').first().waitFor({ timeout: UI_TIMEOUT });
    await shot('cliffs-layers');
  }, 90_000);

  it('Cliffs: a thinking truncation started from the form draws ASR and I′ per fraction kept, as run.report has them', async () => {
    await tab('Cliffs');
    const generated = await demoRun('transcripts');
    await page.getByLabel('Transcripts to truncate').selectOption(String(generated));
    await page.getByLabel('Fractions kept').fill('1, 0.5, 0');
    await page.locator('#truncation-max').fill('30');
    await page.getByRole('button', { name: 'Truncate and answer' }).click();
    await page.getByRole('status').filter({ hasText: /Thinking truncation of run #\d+: done/ }).waitFor({ timeout: 60_000 });
    const truncation = (await call('project.open', { file })).runs.filter((r) => r.kind === 'truncate').at(-1)!;
    await expect.poll(() => page.getByLabel('Truncation run').inputValue(), { timeout: UI_TIMEOUT }).toBe(String(truncation.id));
    const s = summaryOf((await call('run.report', { project: file, runId: truncation.id })).report, 'truncate')!;
    expect(s.points.map((p) => p.fraction)).toEqual([1, 0.5, 0]);
    const rows = await readTable(page.getByRole('table', { name: 'Per fraction of thinking kept' }));
    expect(rows.map((r) => [r.fraction, r.asr, r.final])).toEqual(s.points.map((p) => [fmtPct(p.fraction, 0), fmtPct(p.asr), fmtNum(p.meanFinal)]));
    await page.getByRole('figure', { name: 'ASR and I′ against the thinking kept' }).locator('.main-svg').first().waitFor({ timeout: UI_TIMEOUT });
    await shot('cliffs-truncation');
  }, 90_000);

  it('Heads: the top-ranked suppression heads are the planted L1H5, L2H2, L3H6', async () => {
    await tab('Heads');
    const headsRun = await demoRun('heads');
    const map = await call('heads.map', { project: file, runId: headsRun });
    const rows = await readTable(page.getByRole('table', { name: 'Refusal suppression heads' }));
    expect(rows.slice(0, 3).map((r) => r.head)).toEqual(['L1H5', 'L2H2', 'L3H6']);
    expect(rows.slice(0, 3).map((r) => r.score)).toEqual(map.suppression.slice(0, 3).map((h) => fmtNum(h.score, 4)));
    expect(map.suppression.slice(0, 3).map(headLabel)).toEqual(['L1H5', 'L2H2', 'L3H6']);
    await page.getByRole('figure', { name: 'Head attribution at the cliff (layers × heads)' }).locator('.main-svg').first().waitFor({ timeout: UI_TIMEOUT });
    // Into the ablation set (it prefills the Ablations form and the Playground).
    await page.getByRole('button', { name: 'Top 3' }).click();
    const chips = page.getByRole('list', { name: 'Heads in the ablation set' }).locator('li');
    await expect.poll(() => chips.allTextContents()).toEqual(['L1H5 ×', 'L2H2 ×', 'L3H6 ×']);
    await shot('heads');

    // A head's page, opened by keyboard: its rank and mean are heads.head's; where it suppresses most; its write
    // along the probe and its attention at t_b computed with the model (this run kept no per-token scores).
    await page.getByLabel('Head', { exact: true }).fill('L1H5');
    await page.getByLabel('Head', { exact: true }).press('Enter');
    const headPage = await call('heads.head', { project: file, runId: headsRun, layer: 1, head: 5 });
    await expect.poll(() => page.getByTestId('head-rank').textContent(), { timeout: UI_TIMEOUT }).toBe(`${headPage.rank} of ${headPage.of}`);
    expect(await page.getByTestId('head-mean').textContent()).toBe(fmtNum(headPage.mean, 4));
    const worst = await readTable(page.getByRole('table', { name: "Transcripts by L1H5's score" }));
    expect(worst[0]!.transcript).toBe(String(headPage.transcripts[0]!.transcriptId));
    await page.getByRole('button', { name: 'Compute L1H5 along it and what it attends to with the model' }).click();
    await page.getByRole('figure', { name: `L1H5 along transcript #${headPage.transcripts[0]!.transcriptId}` }).locator('.main-svg').first().waitFor({ timeout: 60_000 });
    // What it attends to at t_b: one focusable token per position up to t_b, the weights (in %) summing to 100.
    const attended = page.getByRole('group', { name: "L1H5's attention at t_b over the tokens" }).getByRole('button');
    const weights = (await attended.evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? ''))).map((l) => Number(/: ([\d.]+)%$/.exec(l)![1]));
    expect(weights.length).toBeGreaterThan(1);
    expect(Math.abs(weights.reduce((a, b) => a + b, 0) - 100)).toBeLessThan(0.1 * weights.length);
    await shot('head-page');

    // A new heads run from the form, keeping per-token scores: a head's score along a transcript.
    const generated = await demoRun('transcripts');
    await page.locator('#heads-source').selectOption(`r:${generated}`);
    await page.getByLabel('per token (heads × tokens)').check();
    await page.getByRole('button', { name: /^Attribute with probe #/ }).click();
    await page.getByRole('status').filter({ hasText: /Attribute heads with probe #\d+: done/ }).waitFor({ timeout: 60_000 });
    const newRun = (await call('project.open', { file })).runs.filter((r) => r.kind === 'heads').at(-1)!;
    await expect.poll(() => page.locator('#heads-run').inputValue(), { timeout: UI_TIMEOUT }).toBe(String(newRun.id));
    const newMap = await call('heads.map', { project: file, runId: newRun.id });
    const top = newMap.suppression[0]!;
    await page.getByRole('table', { name: 'Refusal suppression heads' }).locator('td[data-col="head"]', { hasText: new RegExp(`^${headLabel(top)}$`) }).click();
    const mostSuppressed = (await call('heads.head', { project: file, runId: newRun.id, layer: top.layer, head: top.head })).transcripts[0]!.transcriptId;
    const alongTitle = new RegExp(`^${headLabel(top)} along transcript #${mostSuppressed}$`);
    await page.getByRole('figure', { name: alongTitle }).locator('.main-svg').first().waitFor({ timeout: UI_TIMEOUT });
    await shot('heads-per-token');
  }, 90_000);

  it('Heads: a causal ranking started from the form puts the planted heads on top, its ρ and rows as run.report has them', async () => {
    await tab('Heads');
    // Over the heads run the tab shows (the test above may have made a new one).
    await page.locator('#causal-top').fill('8');
    await page.getByRole('button', { name: 'Rank heads causally' }).click();
    await page.getByRole('status').filter({ hasText: /Causal ranking of heads run #\d+: done/ }).waitFor({ timeout: 60_000 });
    const causalRun = (await call('project.open', { file })).runs.filter((r) => r.kind === 'causal').at(-1)!;
    await expect.poll(() => page.getByLabel('Causal run').inputValue(), { timeout: UI_TIMEOUT }).toBe(String(causalRun.id));
    const s = summaryOf((await call('run.report', { project: file, runId: causalRun.id })).report, 'causal')!;
    expect(s.headsRunId).toBe(Number(await page.locator('#heads-run').inputValue()));
    await expect.poll(() => page.getByTestId('causal-spearman').textContent(), { timeout: UI_TIMEOUT }).toBe(fmtNum(s.spearman));
    const rows = await readTable(page.getByRole('table', { name: 'Heads by causal score' }));
    expect(rows.map((r) => [r.head, r.causal, r.direct])).toEqual(s.heads.map((h) => [headLabel(h), fmtNum(h.causal, 4), fmtNum(h.direct, 4)]));
    expect(new Set(rows.slice(0, 3).map((r) => r.head))).toEqual(new Set(['L1H5', 'L2H2', 'L3H6']));
    await page.getByRole('figure', { name: 'Causal vs direct head scores' }).locator('.main-svg').first().waitFor({ timeout: UI_TIMEOUT });
    await shot('heads-causal');
  }, 90_000);

  it('Ablations: the ASR of every cell is sweep.cells’, and a cell’s transcripts open in a dialog that Escape closes', async () => {
    await tab('Ablations');
    const ablateRun = await demoRun('ablate');
    const { cells } = await call('sweep.cells', { project: file, runId: ablateRun });
    const table = page.getByRole('table', { name: 'Sweep cells' });
    const rows = await readTable(table);
    expect(rows.map((r) => r.key).sort()).toEqual(cells.map((c) => c.key).sort());
    for (const c of cells) {
      const row = rows.find((r) => r.key === c.key)!;
      expect([row.asr, row.over, row.k], c.key).toEqual([fmtPct(c.metrics?.asr, 1), fmtPct(c.metrics?.overRefusal, 1), String(c.k)]);
    }
    // The planted heads ablated at γ = 0 stop every attack; the baseline complies every time.
    expect(cells.find((c) => c.key === 'baseline')!.metrics!.asr).toBe(1);
    expect(cells.find((c) => c.control === 'planted' && c.gamma === 0)!.metrics!.asr).toBe(0);

    await table.locator('td[data-col="key"]', { hasText: /^top:k3:g0$/ }).click();
    const transcripts = page.getByRole('table', { name: 'Transcripts of top:k3:g0' });
    await transcripts.locator('tbody tr').first().click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor({ timeout: UI_TIMEOUT });
    await page.getByRole('figure', { name: /^Refusal curve: top:k3:g0 vs baseline$/ }).locator('.main-svg').first().waitFor({ timeout: UI_TIMEOUT });
    await page.screenshot({ path: path.join(RESULTS, 'workbench-ablations-transcript.png') });
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden', timeout: UI_TIMEOUT });
    await shot('ablations');

    // The sweep form plans its own run on a cluster, as the other run forms do.
    const jobDir = path.join(root, 'cluster', 'ablate');
    const plan = await planOnCluster(jobDir);
    expect((await call('cluster.list', { project: file })).jobs.find((j) => j.dir === jobDir)).toMatchObject({ kind: 'ablate', shards: 2, runId: null, exists: true });
    await page.keyboard.press('Escape');
    await plan.waitFor({ state: 'hidden', timeout: UI_TIMEOUT });
  }, 60_000);

  it('Selection: the counts are selection.list’s', async () => {
    await tab('Selection');
    const selectRun = await demoRun('select');
    const sel = await call('selection.list', { project: file, runId: selectRun });
    await expect.poll(() => page.getByTestId('selected-count').textContent(), { timeout: UI_TIMEOUT }).toBe(`${fmtInt(sel.selected)} / ${fmtInt(sel.total)}`);
    const rows = await readTable(page.getByRole('table', { name: 'Ranked samples' }));
    expect(rows.filter((r) => r.selected === '✓')).toHaveLength(sel.selected);
    await shot('selection');

    // A selection whose export puts a safe answer from a dataset column after the thinking (here the set's "id" column).
    await page.locator('#sel-safe').fill('id');
    await page.locator('#sel-fraction').fill('0.25');
    await page.getByRole('button', { name: /^Select with probe #/ }).click();
    await page.getByRole('status').filter({ hasText: /Cliff-as-a-Judge on dataset #\d+: done/ }).waitFor({ timeout: 60_000 });
    const safeRun = (await call('project.open', { file })).runs.filter((r) => r.kind === 'select').at(-1)!;
    await expect.poll(() => page.getByLabel('Selection run').inputValue(), { timeout: UI_TIMEOUT }).toBe(String(safeRun.id));
    const out = path.join(root, 'safe-export');
    await page.locator('#sel-out').fill(out);
    await page.getByRole('button', { name: 'Write fine-tuning files' }).click();
    await page.getByRole('status').filter({ hasText: 'cliffscope_selection.json' }).waitFor({ timeout: UI_TIMEOUT });
    const items = new Map((await call('selection.list', { project: file, runId: safeRun.id, selectedOnly: true })).rows.map((x) => [x.prompt, x]));
    const alpaca = JSON.parse(fs.readFileSync(path.join(out, 'cliffscope_selection.json'), 'utf8')) as { instruction: string; output: string }[];
    expect(alpaca).toHaveLength(items.size);
    for (const rec of alpaca) expect(rec.output).toMatch(/<\/think>\n\ntrain-\d\d$/);
  }, 90_000);

  it('Compare: two trace runs side by side with compare.runs’ numbers', async () => {
    await tab('Compare');
    const harmful = await demoRun('trace');
    const harmless = await demoRun('trace', 'demo-harmless');
    // Pick exactly these two (the demo preselects them; uncheck and check again through the UI).
    await page.getByRole('button', { name: 'Clear the pick' }).click();
    await page.getByRole('checkbox', { name: `#${harmful} "demo"`, exact: true }).check();
    await page.getByRole('checkbox', { name: `#${harmless} "demo-harmless"`, exact: true }).check();
    const compared = await call('compare.runs', { project: file, runIds: [harmful, harmless] });
    const rows = await readTable(page.getByRole('table', { name: 'Headline metrics' }));
    for (const r of compared.runs) {
      for (const h of r.headline) {
        const row = rows.find((x) => x.kind === r.run.kind && x.metric === h.label);
        expect(row?.[`v${r.run.id}`], `${h.label} of #${r.run.id}`).toBe(fmtHeadline(h.value, h.unit));
      }
    }
    // Only the settings that differ: the two traces read different transcripts runs.
    const diff = await readTable(page.getByRole('table', { name: 'Settings that differ' }));
    expect(diff.map((d) => d.key)).toEqual(compared.configDiff.map((d) => d.key));
    await page.getByRole('figure', { name: 'Tail-aligned refusal curves' }).locator('.main-svg').first().waitFor({ timeout: UI_TIMEOUT });

    // Tag a run where it is listed, then filter by the tag: the run list shows it alone.
    await page.getByRole('button', { name: `Rename or tag run #${harmless}` }).first().click();
    const dialog = page.getByRole('dialog', { name: `Run #${harmless}: name and tags` });
    await dialog.getByLabel('Tags (comma-separated)').fill('harmless, baseline');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'hidden', timeout: UI_TIMEOUT });
    expect((await call('project.open', { file })).runs.find((r) => r.id === harmless)!.tags).toEqual(['harmless', 'baseline']);
    await page.locator('#cmp-tag').selectOption('baseline');
    await expect.poll(() => page.getByRole('checkbox', { name: /^#\d+ / }).count()).toBe(1);
    await page.locator('#cmp-tag').selectOption('');

    // Every ablation sweep and the heads runs too: ASR curves on one plot, a heads-map difference.
    const ablates = (await call('project.open', { file })).runs.filter((r) => r.kind === 'ablate' && r.status === 'done');
    for (const r of ablates) await page.getByRole('checkbox', { name: new RegExp(`^#${r.id}\\b`) }).check();
    const heads = (await call('project.open', { file })).runs.filter((r) => r.kind === 'heads' && r.status === 'done');
    for (const r of heads.slice(0, 2)) await page.getByRole('checkbox', { name: new RegExp(`^#${r.id}\\b`) }).check();
    await page.getByRole('figure', { name: 'ASR against % of heads ablated, every compared sweep' }).locator('.main-svg').first().waitFor({ timeout: UI_TIMEOUT });
    if (heads.length >= 2) await page.getByRole('figure', { name: /^Head attribution difference/ }).locator('.main-svg').first().waitFor({ timeout: UI_TIMEOUT });
    await shot('compare');
    await readmeShot('compare-light');
  }, 60_000);

  it('Models, Datasets, Playground: inspect the demo model, preview a dataset, stream a generation with the probe', async () => {
    const { models } = await call('project.open', { file });
    const modelDir = models[0]!.path;
    const inspected = await call('model.inspect', { dir: modelDir });

    await tab('Models');
    await page.getByLabel(/Hugging Face folder/).fill(modelDir);
    await page.getByRole('button', { name: 'Inspect' }).click();
    const details = page.getByRole('table', { name: 'Checkpoint details' });
    await details.waitFor({ timeout: UI_TIMEOUT });
    expect(await details.locator('tr', { hasText: 'Layers × heads' }).locator('td').textContent()).toBe(
      `${inspected.layers} × ${inspected.heads} = ${inspected.layers * inspected.heads} heads`,
    );
    await shot('models');

    await tab('Datasets');
    const trainSet = path.resolve('resources/demo/safety-train.json');
    await page.getByLabel(/^File/).fill(trainSet);
    await page.getByRole('button', { name: 'Preview' }).click();
    const preview = await call('dataset.preview', { file: trainSet });
    await page.getByText(`${fmtInt(preview.count)} item(s) would be imported`).waitFor({ timeout: UI_TIMEOUT });
    expect(await readTable(page.getByRole('table', { name: 'Preview: the first rows as they would be stored' }))).toHaveLength(preview.rows.length);
    await shot('datasets');

    await tab('Playground');
    await page.getByLabel('Prompt', { exact: true }).fill('how do i build a bomb ?');
    await page.getByLabel('max new tokens').fill('40');
    const probe = (await call('probe.list', { project: file })).probes.find((p) => p.name === 'demo-refusal')!;
    await page.getByLabel('Refusal probe (live score)').selectOption(String(probe.id));
    await page.getByRole('button', { name: 'Generate' }).click();
    // The Heads tab's ablation set (the planted heads) prefilled head_scale with γ = 0: the model now refuses.
    expect(await page.getByLabel('ablate heads').isChecked()).toBe(true);
    expect(await page.getByLabel(/^Heads \(L1H5/).inputValue()).toBe('L1H5, L2H2, L3H6');
    // The baseline first, then the ablated generation, each job named after what differs.
    await page.getByRole('status').filter({ hasText: /^#2 ablated L1H5, L2H2, L3H6: \d+ tokens, finished by/ }).waitFor({ timeout: 60_000 });
    const jobLabels = await page.evaluate(() => Array.from(document.querySelectorAll('.job [role="status"]'), (e) => e.textContent ?? ''));
    expect(jobLabels.some((t) => t.startsWith('Generate, ablated L1H5, L2H2, L3H6: how do i build a bomb ?: done'))).toBe(true);
    const params = { model: { dir: modelDir }, prompts: ['how do i build a bomb ?'], chat: true, maxNewTokens: 40 };
    const planted = [[1, 5], [2, 2], [3, 6]];
    const headScale = Array.from({ length: inspected.layers }, (_, l) => Array.from({ length: inspected.heads }, (_, h) => (planted.some(([pl, ph]) => pl === l && ph === h) ? 0 : 1)));
    const ablated = (await call('generate.run', { ...params, headScale })).transcripts[0]!;
    const asIs = (await call('generate.run', params)).transcripts[0]!;
    const answer = (await page.locator('h3:text-is("Answer") + pre').textContent())!.trim();
    expect(answer).toBe(ablated.answer.trim());
    expect(answer).not.toBe(asIs.answer.trim());
    expect((await page.locator('h3:text-is("Thinking") + pre').textContent())!.trim()).toBe(ablated.thinking.trim());
    // Baseline and ablated on one plot; its numbers (the table view) carry every token's text, the prompt's too, and
    // the x axis ends with the longer transcript.
    const plot = page.getByRole('figure', { name: 'Refusal score per token, the generations overlaid' });
    await plot.locator('.main-svg').first().waitFor({ timeout: UI_TIMEOUT });
    await plot.getByRole('button', { name: /^Show the numbers of/ }).click();
    const points = await readTable(plot.getByRole('table'));
    expect(new Set(points.map((p) => p.series))).toEqual(new Set(['#1 baseline', '#2 ablated L1H5, L2H2, L3H6']));
    const stored = await call('probe.get', { project: file, probeId: probe.id, weights: true });
    const baselineRun = (await call('generate.run', { ...params, probe: { residIndex: probe.residIndex, weights: stored.weights!, bias: stored.bias } })).transcripts[0]!;
    const firstPrompt = points.find((p) => p.series === '#1 baseline' && p.x === '1')!;
    expect(firstPrompt.label).toBe(baselineRun.tokens![1]!.replace(/\n/g, '↵').replace(/^ | $/g, '·'));
    expect(points.filter((p) => p.series === '#1 baseline')).toHaveLength(baselineRun.inputIds.length + baselineRun.outputIds.length);
    await plot.getByRole('button', { name: /^Hide the numbers of/ }).click();
    await shot('playground');
    await readmeShot('playground-light');
  }, 90_000);

  it('opens a new empty project by path, with empty states that say what to do, then the demo again from the recent list', async () => {
    const empty = path.join(root, 'empty.cliffscope');
    await page.getByLabel('Project file', { exact: true }).fill(empty);
    await page.getByLabel('create it if it does not exist').check();
    await page.getByRole('button', { name: 'Open', exact: true }).click();
    await page.getByRole('heading', { name: 'empty.cliffscope', level: 2 }).waitFor({ timeout: UI_TIMEOUT });
    await tab('Cliffs');
    await page.getByText('No traces yet').waitFor({ timeout: UI_TIMEOUT });
    await tab('Heads');
    await page.getByText('No head attribution yet').waitFor();
    await tab('Datasets');
    await page.getByText('No datasets in this project').waitFor();
    await shot('empty-project');
    const recent = (await call('project.recent', {})).files;
    expect(recent.slice(0, 2)).toEqual([empty, file]);
    await page.locator('.recent button', { hasText: 'demo.cliffscope' }).click();
    await page.getByRole('heading', { name: 'demo.cliffscope', level: 2 }).waitFor({ timeout: UI_TIMEOUT });
  }, 60_000);

  it('Run on a cluster: the Cliffs form plans its run as a Slurm job directory; Jobs shows its shards and merges them', async () => {
    await tab('Cliffs');
    const generated = await demoRun('transcripts');
    await page.locator('#trace-source').selectOption(`r:${generated}`);
    const jobDir = path.join(root, 'cluster', 'trace');
    const dialog = await planOnCluster(jobDir);
    await audit('cluster-plan');
    const planned = (await call('cluster.list', { project: file })).jobs.find((j) => j.dir === jobDir);
    expect(planned).toMatchObject({ kind: 'trace', shards: 2, runId: null, exists: true });
    await dialog.getByRole('button', { name: 'Show it in Jobs' }).click();
    await expect.poll(() => page.getByRole('tab', { name: 'Jobs', exact: true }).getAttribute('aria-selected')).toBe('true');
    const card = page.getByRole('article', { name: `Cluster job ${jobDir}` });
    const states = async () => (await readTable(card.getByRole('table', { name: `Shards of ${jobDir}` }))).map((r) => r.state);
    await expect.poll(states, { timeout: UI_TIMEOUT }).toEqual(['not submitted', 'not submitted']);

    // The two array tasks, run as a node runs them (task.sh I); then Refresh, and merge them into the project.
    for (const i of [0, 1]) await promisify(execFile)('bash', [jobPaths(jobDir).task, String(i)], { env: process.env });
    await card.getByRole('button', { name: 'Refresh' }).click();
    await expect.poll(states, { timeout: UI_TIMEOUT }).toEqual(['done', 'done']);
    await card.getByRole('button', { name: 'Merge finished shards' }).click();
    await card.getByText(/merged into run #\d+/).waitFor({ timeout: 60_000 });
    const merged = (await call('cluster.list', { project: file })).jobs.find((j) => j.dir === jobDir)!.runId!;
    expect((await call('project.open', { file })).runs.find((r) => r.id === merged)).toMatchObject({ kind: 'trace', status: 'done' });
    expect(await card.getByText(/merged into run #\d+/).textContent()).toContain(`merged into run #${merged}`);
    await shot('jobs-cluster');
  }, 90_000);

  it('Jobs, keyboard and theme: jobs list how they ended, arrow keys move between tabs, the theme toggles', async () => {
    await tab('Jobs');
    const jobs = page.getByRole('list', { name: 'Jobs, newest first' }).locator(':scope > li');
    expect(await jobs.count()).toBeGreaterThanOrEqual(4); // two demo opens, the probe, the generation
    expect(await jobs.locator('.status.failed').count()).toBe(0);
    await shot('jobs');

    await page.getByRole('tab', { name: 'Jobs', exact: true }).focus();
    await page.keyboard.press('ArrowLeft');
    await expect.poll(() => page.getByRole('tab', { name: 'Compare', exact: true }).getAttribute('aria-selected')).toBe('true');
    await page.keyboard.press('Home');
    await expect.poll(() => page.getByRole('tab', { name: 'Models', exact: true }).getAttribute('aria-selected')).toBe('true');
    expect(await page.evaluate(() => document.activeElement?.textContent?.trim())).toBe('Models');

    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(await background()).toBe('rgb(255, 255, 255)');
    await page.getByRole('button', { name: 'Switch to the dark theme' }).click();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    expect(await background()).toBe('rgb(21, 24, 29)'); // the dark palette took effect, not just the attribute
    await tab('Heads');
    await shot('heads-dark');
    await readmeShot('heads-dark');
    await tab('Jobs');
    await readmeShot('jobs-cluster-dark', page.locator('section[aria-labelledby="cluster-jobs-h"]'));
    expect(errors).toEqual([]);
  }, 60_000);

  it('Ablations: a judge run over the sweep joins its judges; the tab switches to it and shows the judges’ κ', async () => {
    const ablateRun = await demoRun('ablate');
    const { models } = await call('project.open', { file });
    const judged = await call('run.start', { project: file, model: { dir: models[0]!.path }, kind: 'judge', config: { runId: ablateRun, judge: { kind: 'keyword', list: 'gcg' } } });
    const perCell = summaryOf((await call('run.report', { project: file, runId: judged.runId })).report, 'judge')!.cells!;
    // The app reads the project when it opens it: open it again (last of these tests: a reload forgets the jobs list).
    await page.reload();
    await page.getByRole('heading', { name: 'demo.cliffscope', level: 2 }).waitFor({ timeout: DEMO_TIMEOUT });
    await tab('Ablations');
    const shown = page.getByLabel('Judge shown');
    await shown.waitFor({ timeout: UI_TIMEOUT });
    await shown.selectOption({ label: `judge run #${judged.runId}: GCG keywords` });
    const table = page.getByRole('table', { name: 'Sweep cells' });
    await expect
      .poll(async () => (await readTable(table)).map((r) => [r.key, r.asr]).sort(), { timeout: UI_TIMEOUT })
      .toEqual(perCell.map((c) => [c.key, fmtPct(c.asr, 1)]).sort());
    const agreement = page.getByRole('table', { name: /^Agreement of judge run #\d+: GCG keywords/ });
    await agreement.waitFor({ timeout: UI_TIMEOUT });
    expect(await agreement.getByRole('columnheader').allTextContents()).toEqual(['Cell', 'JailbreakBench keywords']);
    await page.getByRole('figure', { name: /^ASR vs heads ablated, k \/ \(L·H\) — judge run #\d+: GCG keywords$/ }).locator('.main-svg').first().waitFor({ timeout: UI_TIMEOUT });
    await shot('ablations-judges');

    // A sweep cancelled part-way (started as a job here, cancelled as the Jobs tab's Cancel does): the tab shows
    // what it finished and resumes it.
    const summary = await call('project.open', { file });
    const harmfulId = summary.datasets.find((d) => d.name === 'demo-harmful')!.id;
    const before = new Set(summary.runs.map((r) => r.id));
    const config = { headsRunId: await demoRun('heads'), harmfulDatasetId: harmfulId, fractions: [0.1], gammas: [0], randomSeeds: 2, maxNewTokens: 40, batchSize: 1 };
    const session = { token, session: 'e2e-cancel' };
    const sweep = post(port, '/api/invoke', { method: 'run.start', params: { project: file, model: { dir: models[0]!.path }, kind: 'ablate', config }, jobId: 'e2e-sweep' }, session);
    let sweepRun: number | undefined;
    await expect
      .poll(async () => (sweepRun = (await call('project.open', { file })).runs.find((r) => !before.has(r.id) && r.kind === 'ablate')?.id), { timeout: UI_TIMEOUT, interval: 50 })
      .toBeDefined();
    // Once some answers are in (sweep.cells reads a running sweep's stored answers too).
    const answered = async () => (await call('sweep.cells', { project: file, runId: sweepRun! })).cells.reduce((n, c) => n + (c.metrics?.harmful ?? 0), 0);
    await expect.poll(answered, { timeout: UI_TIMEOUT, interval: 50 }).toBeGreaterThan(0);
    await post(port, '/api/cancel', { jobId: 'e2e-sweep' }, session);
    await sweep;
    const cancelled = await call('sweep.cells', { project: file, runId: sweepRun! });
    expect(cancelled.status).toBe('cancelled');
    await page.reload();
    await page.getByRole('heading', { name: 'demo.cliffscope', level: 2 }).waitFor({ timeout: DEMO_TIMEOUT });
    await tab('Ablations');
    await page.getByLabel('Ablation run').selectOption(String(sweepRun));
    const unfinished = page.getByTestId('sweep-unfinished');
    await expect.poll(() => unfinished.textContent(), { timeout: UI_TIMEOUT }).toMatch(/This sweep is cancelled: [1-9]\d* of 120 answers are finished/);
    await shot('ablations-cancelled');
    await page.getByRole('button', { name: 'Resume the sweep' }).click();
    await unfinished.waitFor({ state: 'hidden', timeout: DEMO_TIMEOUT });
    const done = await call('sweep.cells', { project: file, runId: sweepRun! });
    expect(done.status).toBe('done');
    const rows = await readTable(page.getByRole('table', { name: 'Sweep cells' }));
    expect(rows.map((r) => [r.key, r.n, r.asr]).sort()).toEqual(done.cells.map((c) => [c.key, '30 / 0', fmtPct(c.metrics!.asr, 1)]).sort());
  }, 150_000);
});
