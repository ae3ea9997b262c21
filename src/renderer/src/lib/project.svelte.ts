/**
 * The open project and what the panels share about it: its contents (project.open), the recent list, the model
 * new runs use, the heads picked for ablation (Heads → Ablations / Playground), and which run each panel shows.
 */
import type { ModelInspection, ProjectSummary, ResultOf, RunKind, RunSummary } from '../../../shared/contract.js';
import { api } from './api.js';
import type { HeadRef } from '../../../shared/heads.js';
import { jobs } from './jobs.svelte.js';

const LAST_KEY = 'cliffscope.lastProject';
const modelsKey = (file: string) => `cliffscope.models:${file}`;
const modelDirKey = (file: string) => `cliffscope.modelDir:${file}`;

function readJson<T>(key: string, fallback: T): T {
  try {
    const v = localStorage.getItem(key);
    return v === null ? fallback : (JSON.parse(v) as T);
  } catch {
    return fallback;
  }
}
function writeJson(key: string, value: unknown): void {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // storage disabled: the choice lasts for this page only
  }
}

/** A checkpoint folder added in the Models panel (the project only records models once a run uses them). */
export interface AddedModel {
  dir: string;
  inspection: ModelInspection;
}

/** The run kinds a panel shows one run of. */
export const PANEL_RUN_KINDS = ['probe', 'trace', 'heads', 'ablate', 'select', 'truncate', 'causal'] as const;
/** Which run each panel shows, kept while switching tabs. */
export type PanelRuns = Partial<Record<(typeof PANEL_RUN_KINDS)[number], number | null>>;

class Project {
  file = $state<string | null>(null);
  summary = $state<ProjectSummary | null>(null);
  opening = $state(false);
  error = $state<unknown>(null);

  recent = $state<string[]>([]);
  recentError = $state<unknown>(null);

  /** The demo job, while project.demo runs (one at a time). */
  demoJobId = $state<string | null>(null);
  demoError = $state<unknown>(null);
  demoReport = $state<ResultOf<'project.demo'>['report'] | null>(null);

  /** The checkpoint folder new runs and the Playground use. */
  modelDir = $state('');
  addedModels = $state<AddedModel[]>([]);

  /** Heads picked in the Heads panel, for the Ablations form and the Playground's head_scale. */
  ablationSet = $state<HeadRef[]>([]);
  panelRuns = $state<PanelRuns>({});
  /** Run ids picked for the Compare panel. */
  compareIds = $state<number[]>([]);
  /** The probe picked in the Probes panel: the default for traces, heads, selection and the Playground. */
  probeId = $state<number | null>(null);

  /** The picked probe if it still exists, else the project's newest. */
  get activeProbe() {
    const probes = this.summary?.probes ?? [];
    return probes.find((p) => p.id === this.probeId) ?? [...probes].sort((a, b) => b.id - a.id)[0] ?? null;
  }

  get runs(): RunSummary[] {
    return this.summary?.runs ?? [];
  }

  /** Runs of a kind, newest first. */
  runsOf(kind: RunKind, opts: { done?: boolean } = {}): RunSummary[] {
    return this.runs.filter((r) => r.kind === kind && (!opts.done || r.status === 'done')).sort((a, b) => b.id - a.id);
  }

  /** The run a panel shows: its pick if that run still exists, else the newest finished run of the kind. */
  runFor(kind: keyof PanelRuns): RunSummary | null {
    const picked = this.panelRuns[kind];
    const runs = this.runsOf(kind);
    return runs.find((r) => r.id === picked) ?? runs.find((r) => r.status === 'done') ?? runs[0] ?? null;
  }

  pickRun(kind: keyof PanelRuns, id: number | null): void {
    this.panelRuns = { ...this.panelRuns, [kind]: id };
  }

  async loadRecent(): Promise<string[]> {
    try {
      this.recent = (await api['project.recent']()).files;
      this.recentError = null;
    } catch (e) {
      this.recentError = e;
    }
    return this.recent;
  }

  /** Open a project file (creating it when asked) and put it at the top of the recent list. */
  async open(file: string, opts: { create?: boolean } = {}): Promise<boolean> {
    this.opening = true;
    this.error = null;
    try {
      const summary = await api['project.open']({ file, ...(opts.create ? { create: true } : {}) });
      const changed = summary.file !== this.file;
      this.summary = summary;
      this.file = summary.file;
      if (changed) {
        this.ablationSet = [];
        this.panelRuns = {};
        this.compareIds = [];
        this.probeId = null;
        this.addedModels = readJson<AddedModel[]>(modelsKey(summary.file), []);
        this.modelDir = readJson<string>(modelDirKey(summary.file), '') || this.defaultModelDir();
      }
      writeJson(LAST_KEY, summary.file);
      try {
        this.recent = (await api['project.remember']({ file: summary.file })).files;
      } catch {
        // the project is open; a recent list that could not be written is not worth an error
      }
      return true;
    } catch (e) {
      this.error = e;
      return false;
    } finally {
      this.opening = false;
    }
  }

  /** Re-read the open project (after a run finished, a dataset was imported…). */
  async refresh(): Promise<void> {
    if (!this.file) return;
    try {
      this.summary = await api['project.open']({ file: this.file });
    } catch (e) {
      this.error = e;
    }
  }

  close(): void {
    this.file = null;
    this.summary = null;
    writeJson(LAST_KEY, null);
  }

  /** The project the page had open last time, if any. */
  lastOpened(): string | null {
    return readJson<string | null>(LAST_KEY, null);
  }

  /**
   * Build (or reuse) the demo project with project.demo as a job, then open it. Joins the running demo job instead
   * of starting a second one.
   */
  async openDemo(): Promise<boolean> {
    if (this.demoJobId && jobs.get(this.demoJobId)?.status === 'running') return false;
    this.demoError = null;
    const { id, result } = jobs.start('project.demo', {}, 'Open the demo project', {
      describe: (r) => ({ summary: `${r.file}: heads ${r.report.heads.topMatchesPlanted ? 'match' : 'do not match'} the planted ones` }),
    });
    this.demoJobId = id;
    try {
      const r = await result;
      this.demoReport = r.report;
      if (!(await this.open(r.file))) return false;
      // Show the demo's own runs (the harmful-prompt trace, not the harmless one), and compare the two traces.
      const runs = r.report.runs;
      this.panelRuns = { probe: runs.probe ?? null, trace: runs.trace ?? null, heads: runs.heads ?? null, ablate: runs.ablate ?? null, select: runs.select ?? null };
      this.compareIds = [runs.trace, runs.traceHarmless].filter((id): id is number => typeof id === 'number');
      this.probeId = r.report.probe.id;
      return true;
    } catch (e) {
      this.demoError = e;
      return false;
    } finally {
      this.demoJobId = null;
    }
  }

  /** Remember a checkpoint folder for this project (Models panel) and use it for new runs. */
  addModel(dir: string, inspection: ModelInspection): void {
    this.addedModels = [...this.addedModels.filter((m) => m.dir !== dir), { dir, inspection }];
    if (this.file) writeJson(modelsKey(this.file), this.addedModels);
    this.useModel(dir);
  }

  useModel(dir: string): void {
    this.modelDir = dir;
    if (this.file) writeJson(modelDirKey(this.file), dir);
  }

  /** The model new runs default to: the one the project used last. */
  defaultModelDir(): string {
    const models = this.summary?.models ?? [];
    return models.length ? models[models.length - 1]!.path : '';
  }

  /** Model shape (layers × heads) for head pickers: from the project's records or an inspected folder. */
  shapeOf(dir: string): { layers: number; heads: number } | null {
    const m = this.summary?.models.find((x) => x.path === dir);
    if (m?.layers && m.heads) return { layers: m.layers, heads: m.heads };
    const added = this.addedModels.find((x) => x.dir === dir);
    return added ? { layers: added.inspection.layers, heads: added.inspection.heads } : null;
  }
}

export const project = new Project();

