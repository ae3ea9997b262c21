/**
 * Every run kind, by name. Adding a kind: write its spec (a file beside this one, see spec.ts), list it here, and
 * register its pipeline in src/main/api/runs.ts (the compiler asks for it there).
 */
import type { z } from 'zod';
import type { RunSpec } from './spec.js';
import { ablateRun } from './ablate.js';
import { causalRun } from './causal.js';
import { headsRun } from './heads.js';
import { judgeRun } from './judge.js';
import { probeRun } from './probe.js';
import { selectRun } from './select.js';
import { traceRun } from './trace.js';
import { transcriptsRun } from './transcripts.js';
import { truncateRun } from './truncate.js';

export const RUN_SPECS = {
  [transcriptsRun.kind]: transcriptsRun,
  [probeRun.kind]: probeRun,
  [traceRun.kind]: traceRun,
  [headsRun.kind]: headsRun,
  [ablateRun.kind]: ablateRun,
  [judgeRun.kind]: judgeRun,
  [selectRun.kind]: selectRun,
  [truncateRun.kind]: truncateRun,
  [causalRun.kind]: causalRun,
} as const;

export type RunSpecs = typeof RUN_SPECS;
export type RunKind = keyof RunSpecs;

/** In the order the method uses them (and the CLI lists their verbs). */
export const RUN_KINDS = [transcriptsRun.kind, probeRun.kind, traceRun.kind, headsRun.kind, ablateRun.kind, judgeRun.kind, selectRun.kind, truncateRun.kind, causalRun.kind] as const satisfies readonly RunKind[];

/**
 * The kinds whose items can be split over processes (`--shard`, a Slurm job array; README "Running on a cluster"); a
 * probe run trains on all its samples at once.
 */
export const SHARDABLE_KINDS = [transcriptsRun.kind, traceRun.kind, headsRun.kind, ablateRun.kind, judgeRun.kind, selectRun.kind, truncateRun.kind, causalRun.kind] as const satisfies readonly RunKind[];
export type ShardableKind = (typeof SHARDABLE_KINDS)[number];
export const isShardable = (kind: string): kind is ShardableKind => (SHARDABLE_KINDS as readonly string[]).includes(kind);

/** What a caller sends as a run's config (defaults left out). */
export type RunInput<K extends RunKind> = z.output<RunSpecs[K]['input']>;
/** A run's config as stored: every default explicit. */
export type RunConfig<K extends RunKind> = z.output<RunSpecs[K]['config']>;
/** The headline numbers a finished run stores. */
export type RunSummaryOf<K extends RunKind> = z.output<RunSpecs[K]['summary']>;

/** One kind's spec with its shapes spelled out, so code generic over the kind stays typed (see specOf). */
export type SpecOf<K extends RunKind> = RunSpec<K, RunInput<K>, RunConfig<K>, RunSummaryOf<K>>;
const SPECS: { [K in RunKind]: SpecOf<K> } = RUN_SPECS;

/** The spec of `kind`; for a generic K its methods take and give that kind's shapes. */
export function specOf<K extends RunKind>(kind: K): SpecOf<K> {
  return SPECS[kind];
}

export function isRunKind(kind: string): kind is RunKind {
  return Object.prototype.hasOwnProperty.call(RUN_SPECS, kind);
}
