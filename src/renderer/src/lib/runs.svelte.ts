/**
 * Starting pipeline runs (run.start) as jobs on the open project with the chosen model, and loading data for the
 * panels without racing: a newer load wins over an older one that answers late.
 */
import { untrack } from 'svelte';
import { summaryOf, type ModelRef, type ResultOf, type RunStartParams } from '../../../shared/contract.js';
import type { RunSummaryOf } from '../../../shared/runs/registry.js';
import { parseTags } from '../../../shared/values.js';
import { api, ApiError } from './api.js';
import { jobs } from './jobs.svelte.js';
import { PANEL_RUN_KINDS, type PanelRuns, project } from './project.svelte.js';

type RunConfigOf<K extends RunStartParams['kind']> = NonNullable<Extract<RunStartParams, { kind: K }>['config']>;

/** The model reference new runs use (the project's chosen checkpoint folder). */
export function modelRef(dir = project.modelDir): ModelRef {
  if (!dir.trim()) {
    throw new ApiError({
      code: 'bad-argument',
      message: 'no model is chosen for new runs',
      hint: 'pick one under "Model for runs" at the top, or add a checkpoint folder in the Models tab',
    });
  }
  return { dir: dir.trim() };
}

/**
 * Start a run of `kind` with `config` as a job. When it ends the project is re-read, and a run that ended (done or
 * cancelled, not failed) becomes the one its panel shows.
 */
export function startRun<K extends RunStartParams['kind']>(kind: K, config: RunConfigOf<K>, label: string, opts: RunMeta = {}) {
  return launch(kind, runStartParams(kind, config, opts), label);
}

/** Resume an unfinished run (cancelled, interrupted, failed) with its stored config, as `--resume RUN` does. */
export function resumeRun<K extends RunStartParams['kind']>(kind: K, runId: number, label: string) {
  if (!project.file) throw new ApiError({ code: 'bad-argument', message: 'no project is open', hint: 'open one from the sidebar' });
  return launch(kind, { project: project.file, model: modelRef(), kind, resume: runId } as RunStartParams, label);
}

function launch(kind: RunStartParams['kind'], params: RunStartParams, label: string) {
  const job = jobs.start('run.start', params, label, {
    describe: (r) => ({ summary: `run #${r.runId} ${r.status}`, cancelled: r.status === 'cancelled' }),
  });
  void job.result.then(
    (r) => {
      if (isPanelKind(kind)) project.pickRun(kind, r.runId);
      return project.refresh();
    },
    () => project.refresh(),
  );
  return job;
}

/** The run.start request for a new run of `kind` on the open project with the chosen model. */
export function runStartParams<K extends RunStartParams['kind']>(kind: K, config: RunConfigOf<K>, opts: RunMeta = {}): RunStartParams {
  if (!project.file) throw new ApiError({ code: 'bad-argument', message: 'no project is open', hint: 'open one from the sidebar' });
  return { project: project.file, model: modelRef(), kind, config, ...(opts.name ? { name: opts.name } : {}), ...(opts.tags?.length ? { tags: opts.tags } : {}) } as RunStartParams;
}

/** A run a form would start: its kind, its config and the label of its job. */
export type RunRequest = { [K in RunStartParams['kind']]: { kind: K; config: RunConfigOf<K>; label: string } }[RunStartParams['kind']];

/** What a run is called: its name and tags, as every run form lets them be set (RunMetaFields). */
export interface RunMeta {
  name?: string;
  tags?: string[];
}

/**
 * A panel's "start a run" form: the run's name and tags as typed (RunMetaFields), the job it started, and the error
 * that kept it from starting (RunFormStatus shows both).
 */
export class RunForm {
  jobId = $state<string | null>(null);
  error = $state<unknown>(null);
  name = $state('');
  /** Comma-separated, as typed. */
  tags = $state('');

  /** The name and tags to start the run with (what was left empty is left out). */
  get meta(): RunMeta {
    const tags = parseTags(this.tags);
    return { ...(this.name.trim() ? { name: this.name.trim() } : {}), ...(tags.length ? { tags } : {}) };
  }

  /** The run the form describes, when it was made with `starts` (RunFormStatus then offers "Run on a cluster…"). */
  request: (() => RunRequest) | null = null;

  /**
   * The form's submit handler for the run `request` describes (it checks the fields, throwing what is wrong): starts
   * it here with the form's name and tags. The same request can be planned on a cluster instead (clusterParams).
   */
  starts(request: () => RunRequest): (event: SubmitEvent) => void {
    this.request = request;
    return this.submit(() => {
      const r = request();
      return startRun(r.kind, r.config, r.label, this.meta);
    });
  }

  /** The run.start request of the form's run with its name and tags (what cluster.plan splits); throws like submit. */
  clusterParams(): RunStartParams {
    if (!this.request) throw new Error('this form cannot run on a cluster');
    const r = this.request();
    return runStartParams(r.kind, r.config, this.meta);
  }

  /** The form's submit handler: `start` checks the fields and starts the run (startRun); what it throws is shown. */
  submit(start: () => { id: string }): (event: SubmitEvent) => void {
    return (event) => {
      event.preventDefault();
      this.error = null;
      try {
        this.jobId = start().id;
      } catch (e) {
        this.error = e;
      }
    };
  }
}

const isPanelKind = (kind: string): kind is keyof PanelRuns => (PANEL_RUN_KINDS as readonly string[]).includes(kind);

/** A value loaded from the API for a panel: the latest request wins; errors are kept for an ErrorBox. */
export class Loader<T> {
  value = $state<T | null>(null);
  error = $state<unknown>(null);
  loading = $state(false);
  #seq = 0;

  async load(fetch: () => Promise<T>, opts: { keep?: boolean } = {}): Promise<T | null> {
    const seq = ++this.#seq;
    this.loading = true;
    this.error = null;
    if (!opts.keep) this.value = null;
    try {
      const v = await fetch();
      if (seq === this.#seq) this.value = v;
      return v;
    } catch (e) {
      if (seq === this.#seq) this.error = e;
      return null;
    } finally {
      if (seq === this.#seq) this.loading = false;
    }
  }

  clear(): void {
    this.#seq++;
    this.value = null;
    this.error = null;
    this.loading = false;
  }
}

/**
 * The run a panel shows for `kind` (the one picked, else the latest done), followed by id: re-reading the project
 * after any job gives new run objects, which must not reload the panel. Whenever the run or the open project
 * changes, `reset` runs, then `load` when there is a run to load. Call while a component initialises.
 */
export function followRun(kind: keyof PanelRuns, on: { reset: () => void; load: (file: string, runId: number) => void }): { readonly id: number | null } {
  const id = $derived(project.runFor(kind)?.id ?? null);
  $effect(() => {
    const runId = id;
    const file = project.file;
    // What reset and load read must not become this effect's dependencies.
    untrack(() => {
      on.reset();
      if (runId !== null && file) on.load(file, runId);
    });
  });
  return {
    get id() {
      return id;
    },
  };
}

/**
 * followRun, plus the run's report (run.report) and its typed summary, loaded and cleared with the run; `on` loads
 * and resets what else the panel shows.
 */
export function followRunReport<K extends keyof PanelRuns>(
  kind: K,
  on: { reset?: () => void; load?: (file: string, runId: number) => void } = {},
): { readonly id: number | null; readonly report: Loader<ResultOf<'run.report'>>; readonly summary: RunSummaryOf<K> | null } {
  const report = new Loader<ResultOf<'run.report'>>();
  const run = followRun(kind, {
    reset: () => {
      on.reset?.();
      report.clear();
    },
    load: (file, runId) => {
      void report.load(() => api['run.report']({ project: file, runId }));
      on.load?.(file, runId);
    },
  });
  const summary = $derived(summaryOf(report.value?.report, kind));
  return {
    get id() {
      return run.id;
    },
    report,
    get summary() {
      return summary;
    },
  };
}
