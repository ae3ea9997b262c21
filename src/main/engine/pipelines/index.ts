/** The method's pipelines: each a run kind in the project store (see docs/METHOD.md). */
export { beginRun, registerModel, type PipelineEnv } from './common.js';
export { runGenerate, BASELINE_SETTING, type GenerateRunConfig, type HeadScaleSetting } from './transcripts.js';
export { runProbeTraining, probeRunResult, type ProbeRunConfig, type LabelRule } from './probe.js';
export { runTrace, summarizeTraces, type TraceRunConfig } from './trace.js';
export { runHeads, headsRunRanking, type HeadsRunConfig } from './heads.js';
export { runAblation, sweepCells, DEFAULT_SWEEP, type AblateRunConfig } from './ablate.js';
export { runJudge, type JudgeRunConfig, type JudgeSpec } from './judge.js';
export { runSelect, exportSelection, PAPER_SELECT_FRACTION, type SelectRunConfig } from './select.js';
export { runReport, formatRunReport, type RunReport } from './report.js';
export type { TranscriptSource, PositionRule } from './sources.js';
