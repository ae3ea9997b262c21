/**
 * What a run kind is, in one place: a `RunSpec` holds the schema of the config a caller sends (`input`, defaults
 * left out), the one `resolve` that fills the defaults and checks every id against the project, the schema of the
 * config as stored (`config`, everything explicit, what a resume uses), the schema of the summary its pipeline
 * stores, how that summary reads as text and as headline numbers, and its CLI verb (flags, help, how flags become
 * an input). The contract, the `run.start` handler, the CLI, the report and the renderer's forms all derive from it;
 * the pipeline that does the work is registered beside it in the application layer (src/main/api/runs.ts).
 *
 * Pure: imported by the renderer as well as by Node code.
 */
import type { z } from 'zod';
import type { TranscriptSource } from '../values.js';

/** What `resolve` may ask of the project. The application layer answers from the store. */
export interface ProjectLookup {
  /** Each throws a 'bad-argument' error whose message starts with `field` when the thing is not in the project. */
  dataset(field: string, id: number): { id: number; name: string };
  probe(field: string, id: number): { id: number; residIndex: number };
  run(field: string, id: number, kind?: string): { id: number; kind: string; status: string; datasetId: number | null };
  /** An item of `datasetId`. */
  item(field: string, id: number, datasetId: number): void;
  /** A 'bad-argument' error about `field`. */
  fail(field: string, message: string, hint?: string): never;
}

/** A source's run or dataset must exist. */
export function checkSource(project: ProjectLookup, field: string, source: TranscriptSource): void {
  if (source.kind === 'run') project.run(`${field}.runId`, source.runId);
  else project.dataset(`${field}.datasetId`, source.datasetId);
}

/** A run of `kind` that has finished: what a kind building on another run's results reads (`field` names the request field). */
export function finishedRun(project: ProjectLookup, field: string, id: number, kind: string): { id: number; kind: string; status: string; datasetId: number | null } {
  const run = project.run(field, id, kind);
  if (run.status !== 'done') project.fail(field, `${kind} run #${run.id} is ${run.status}, not done`, `finish it first (resume it with --resume ${run.id})`);
  return run;
}

/** One headline number of a run (compare.runs). */
export interface HeadlineValue {
  key: string;
  label: string;
  value: number | null;
}

// ---- the CLI verb ---------------------------------------------------------------------------------------------------

/** One flag of a run verb. */
export interface FlagSpec {
  /** Without the dashes: `max-new-tokens`. */
  name: string;
  /** The value's placeholder in the help (`N`, `LIST`); absent for a boolean switch. */
  arg?: string;
  help: string;
  /** The input field it sets (`maxNewTokens`, `sampling.topP`, `source`): errors about that field name this flag. */
  field?: string;
  /** An old name that still works, with a deprecation note. */
  alias?: string;
}

/** Flag values as parsed: strings, or true for a switch. */
export type FlagValues = Readonly<Record<string, string | boolean | undefined>>;

/** What turning flags into an input may use. Number parsers only parse; the input schema checks the ranges. */
export interface CliContext {
  /** A dataset by name or id. */
  dataset(ref: string | undefined, flag: string): number;
  /** The string of a flag that must be given. */
  required(value: string | boolean | undefined, flag: string): string;
  id(value: string | boolean | undefined, flag: string): number;
  number(value: string | boolean | undefined, flag: string): number | undefined;
  numbers(value: string | boolean | undefined, flag: string): number[] | undefined;
  /** The model's layers × heads (read from its config, without loading it). */
  shape(): Promise<{ layers: number; heads: number }>;
  fail(message: string): never;
}

/**
 * What a verb builds from flags: the input's shape with every literal choice widened (to string, number, boolean).
 * Flags are text; the input schema checks the choices (and every range) when the run starts, as for any caller.
 */
export type Loose<T> = T extends string
  ? string
  : T extends number
    ? number
    : T extends boolean
      ? boolean
      : T extends readonly (infer U)[]
        ? Loose<U>[]
        : T extends object
          ? { [K in keyof T]: Loose<T[K]> }
          : T;

export interface VerbSpec<In> {
  /** `trace`, or `probe train` for a verb with an action. */
  verb: string;
  summary: string;
  /** The usage line(s) after `Usage: cliffscope `. */
  usage: string;
  /** What the verb does, for --help. */
  about: string;
  flags: readonly FlagSpec[];
  /**
   * A folder flag that, once the run is done, receives its files (select --out: selection.export). Checked before the
   * run starts, so an export that would replace earlier files is refused before any compute is spent.
   */
  outFlag?: FlagSpec;
  /** With outFlag: the switch that lets the export replace an earlier export's files and entries (selection.export `force`). */
  forceFlag?: FlagSpec;
  /** The run's input from the flags (when not resuming). */
  input(flags: FlagValues, cli: CliContext): Loose<In> | Promise<Loose<In>>;
}

/** `verb` as it reads after `cliffscope`; the value is checked by the input schema, so ranges live there. */
export function flag(name: string, help: string, opts: Omit<FlagSpec, 'name' | 'help'> = {}): FlagSpec {
  return { name, help, ...opts };
}

// ---- the spec -------------------------------------------------------------------------------------------------------

export interface RunSpec<K extends string = string, In = unknown, Cfg = unknown, Sum = unknown> {
  kind: K;
  /** One line: what a run of this kind makes. */
  about: string;
  /** The config a caller sends (run.start `config`); what it leaves out gets its default in `resolve`. */
  input: z.ZodType<In>;
  /** The config as stored with the run: every default explicit. Resuming uses it as it is. */
  config: z.ZodType<Cfg>;
  /**
   * A stored config as this version reads it, before `config` checks it: fills in what configs stored by earlier
   * versions left implicit, with the meaning it had then (readStoredConfig). Absent: stored configs are read as
   * they are.
   */
  fromStored?(stored: Record<string, unknown>): Record<string, unknown>;
  /** The headline numbers the pipeline stores when the run finishes. */
  summary: z.ZodType<Sum>;
  /** Defaults, id checks against the project, and range checks beyond the schema's. Runs before anything is created. */
  resolve(input: In, project: ProjectLookup, run: { name?: string }): Cfg;
  /** What the runs row records besides the config: the dataset it reads and the run it derives from. */
  links(config: Cfg): { datasetId?: number | null; parentRunId?: number | null };
  /** The summary as report lines (after the common header). */
  report(summary: Sum): string[];
  /** The numbers compare.runs sets side by side. */
  headlines(summary: Sum): HeadlineValue[];
  cli: VerbSpec<In>;
}

/** A run's stored config with what earlier versions left implicit filled in (the kind's `fromStored`), unchecked. */
export function readStoredConfig(kind: { fromStored?(stored: Record<string, unknown>): Record<string, unknown> }, stored: unknown): unknown {
  if (!kind.fromStored || stored === null || typeof stored !== 'object' || Array.isArray(stored)) return stored;
  return kind.fromStored(stored as Record<string, unknown>);
}

/** Identity with the types checked: `defineRun({...})` infers the kind and the three shapes from the schemas. */
export function defineRun<K extends string, In, Cfg, Sum>(spec: RunSpec<K, In, Cfg, Sum>): RunSpec<K, In, Cfg, Sum> {
  return spec;
}

// ---- report formatting shared by the kinds --------------------------------------------------------------------------

export const fmt = (v: number | null | undefined, digits = 3): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(digits)) : '—');
export const pct = (v: number | null | undefined): string => (typeof v === 'number' ? `${(v * 100).toFixed(1)}%` : '—');
/** "; thinking not closed: n" for a report line, or nothing for a run summarised before it was counted (docs/METHOD.md §0). */
export const notClosed = (n: number | undefined): string => (n === undefined ? '' : `; thinking not closed: ${n}`);
