import { describe, expect, it } from 'vitest';
import type { JobEvent } from '../../src/shared/contract.js';
import { applyJobEvent, LOG_LINES, makeJobId, newJob, settleJob } from '../../src/renderer/src/lib/jobs.js';
import { liveSpans, splitLive, tokenTexts, transcriptSpans } from '../../src/renderer/src/lib/stream.js';
import { RunReport, summaryOf } from '../../src/shared/contract.js';

const progress = (done: number, total: number | null, label?: string, at = 1000): JobEvent => ({ jobId: 'j', at, kind: 'progress', done, total, ...(label ? { label } : {}) });

describe('job records', () => {
  it('follow progress, restarting the ETA clock on a new stage', () => {
    let job = newJob('j', 'project.demo', 'Open the demo', 0);
    job = applyJobEvent(job, progress(3, 10, 'probe', 500));
    expect(job).toMatchObject({ done: 3, total: 10, stage: 'probe', stageStartedAt: 500 });
    job = applyJobEvent(job, progress(6, 10, 'probe', 900));
    expect(job.stageStartedAt).toBe(500);
    job = applyJobEvent(job, progress(1, 30, 'trace', 1200));
    expect(job).toMatchObject({ done: 1, total: 30, stage: 'trace', stageStartedAt: 1200 });
  });

  it('keep the last log lines and ignore other jobs’ events', () => {
    let job = newJob('j', 'run.start', 'Train', 0);
    for (let i = 0; i < LOG_LINES + 5; i++) job = applyJobEvent(job, { jobId: 'j', at: i, kind: 'log', level: 'info', message: `line ${i}` });
    expect(job.logs).toHaveLength(LOG_LINES);
    expect(job.logs.at(-1)!.message).toBe(`line ${LOG_LINES + 4}`);
    expect(applyJobEvent(job, { ...progress(1, 2), jobId: 'other' })).toBe(job);
  });

  it('settle as done, cancelled or failed', () => {
    const job = applyJobEvent(newJob('j', 'run.start', 'Train', 0), progress(3, 10));
    expect(settleJob(job, { ok: true, summary: 'run #3 done' }, 50)).toMatchObject({ status: 'done', done: 10, outcome: 'run #3 done', finishedAt: 50 });
    expect(settleJob(job, { ok: true, cancelled: true }, 50)).toMatchObject({ status: 'cancelled', done: 3 });
    const failed = settleJob(job, { ok: false, error: { code: 'missing-file', message: 'no config.json', file: '/m', hint: 'pick a model folder' } }, 50);
    expect(failed).toMatchObject({ status: 'failed', error: { file: '/m', hint: 'pick a model folder' } });
    expect(settleJob({ ...job, cancelRequested: true }, { ok: false, error: { code: 'internal', message: 'aborted' } }, 50).status).toBe('cancelled');
    expect(settleJob(job, { ok: false, error: { code: 'cancelled', message: 'the demo was cancelled' } }, 50).status).toBe('cancelled');
  });

  it('get ids the bridge and the server accept', () => {
    expect(makeJobId('run.start', 3, 1_700_000_000_000)).toMatch(/^[A-Za-z0-9_.:-]{1,100}$/);
  });
});

describe('live generation', () => {
  it('splits thinking and answer on the markers', () => {
    expect(splitLive('okay so </think>\n\nsure , here', true)).toEqual({ thinking: 'okay so', answer: 'sure , here', closed: true });
    expect(splitLive('okay so', true)).toEqual({ thinking: 'okay so', answer: '', closed: false });
    expect(splitLive('Hello', false)).toEqual({ thinking: '', answer: 'Hello', closed: false });
    expect(splitLive('<think>hmm</think>Hi', false)).toEqual({ thinking: 'hmm', answer: 'Hi', closed: true });
  });

  it('finds approximate spans from the streamed tokens', () => {
    const tokens = [
      { position: 5, tokenId: 1, text: 'okay' },
      { position: 6, tokenId: 2, text: ' so' },
      { position: 7, tokenId: 3, text: '</' },
      { position: 8, tokenId: 4, text: 'think>' },
      { position: 9, tokenId: 5, text: 'sure' },
    ];
    expect(liveSpans(tokens, true)).toEqual({ promptTokens: 5, thinkingStart: 5, thinkingEnd: 8, answerBoundary: 8 });
    expect(liveSpans(tokens.slice(0, 2), false)).toEqual({ promptTokens: 5, thinkingStart: null, thinkingEnd: null, answerBoundary: null });
    expect(liveSpans([], true).promptTokens).toBe(0);
  });

  it('takes the exact spans from the finished transcript', () => {
    const t = { inputIds: [1, 2, 3], outputIds: [4, 5, 6, 7], thinkOpen: 2, thinkClose: 5, answerBoundary: 5 };
    expect(transcriptSpans(t)).toEqual({ promptTokens: 3, thinkingStart: 3, thinkingEnd: 5, answerBoundary: 5 });
    expect(transcriptSpans({ ...t, thinkClose: null, answerBoundary: null })).toMatchObject({ thinkingStart: 3, thinkingEnd: 7 });
    expect(transcriptSpans({ ...t, thinkOpen: null, thinkClose: null })).toMatchObject({ thinkingStart: null, thinkingEnd: null });
    expect(tokenTexts([9, 8], [{ position: 2, tokenId: 1, text: 'a' }], 3)).toEqual(['#9', '#8', 'a']);
  });
});

describe('run reports, typed by kind (the contract replaces defensive summary parsing)', () => {
  const report = (kind: string, summary: unknown, config: unknown) => ({
    kind,
    run: { id: 3, uid: 'u', kind, name: null, tags: [], status: 'done', error: null, modelId: 1, datasetId: null, parentRunId: null, createdAt: 't', startedAt: null, finishedAt: null, config, versions: {} },
    model: null,
    items: { done: 1, failed: 0 },
    summary,
  });
  const probeSummary = { samples: 48, positives: 24, negatives: 24, skippedNoPosition: 0, skippedNotRefusal: 0, transcripts: 48, probes: [{ residIndex: 5, probeId: 1, valAccuracy: 1, valAuroc: 1 }], bestProbeId: 1, bestResidIndex: 5 };
  const probeConfig = { name: 'p', positive: { kind: 'run', runId: 1 }, negative: { kind: 'run', runId: 2 }, positionRule: 'answer-boundary', residIndices: [], labelRule: 'all', train: { preset: 'paper-adam' } };

  it('gives a panel its kind’s summary, and nothing for another kind or an unfinished run', () => {
    const r = RunReport.parse(report('probe', probeSummary, probeConfig));
    expect(summaryOf(r, 'probe')).toEqual(probeSummary);
    expect(summaryOf(r, 'probe')!.probes[0]!.residIndex).toBe(5);
    expect(summaryOf(r, 'trace')).toBeNull();
    expect(summaryOf(RunReport.parse(report('probe', null, probeConfig)), 'probe')).toBeNull();
    expect(summaryOf(null, 'probe')).toBeNull();
  });

  it('refuses a summary or config that does not fit the kind, naming the field', () => {
    const bad = RunReport.safeParse(report('probe', { ...probeSummary, probes: [{ residIndex: 'x', probeId: 1, valAccuracy: 1, valAuroc: 1 }] }, probeConfig));
    expect(bad.success).toBe(false);
    expect(bad.error!.issues.map((i) => i.path.join('.'))).toContain('summary.probes.0.residIndex');
    const wrongKind = RunReport.safeParse(report('select', probeSummary, probeConfig));
    expect(wrongKind.success).toBe(false);
  });
});
