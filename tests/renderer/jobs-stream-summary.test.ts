import { describe, expect, it } from 'vitest';
import type { JobEvent } from '../../src/shared/contract.js';
import { applyJobEvent, LOG_LINES, makeJobId, newJob, settleJob } from '../../src/renderer/src/lib/jobs.js';
import { liveSpans, splitLive, tokenTexts, transcriptSpans } from '../../src/renderer/src/lib/stream.js';
import { probeRunView, selectRunView, traceRunView } from '../../src/renderer/src/lib/summary.js';

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

describe('run summaries', () => {
  it('read a probe run’s summary and drop malformed entries', () => {
    const v = probeRunView({ samples: 48, positives: 24, probes: [{ layer: 5, probeId: 1, valAccuracy: 1, valAuroc: 1 }, { layer: 'x' }], bestProbeId: 1, bestLayer: 5 });
    expect(v).toMatchObject({ samples: 48, positives: 24, negatives: null, bestProbeId: 1, bestLayer: 5 });
    expect(v.probes).toEqual([{ layer: 5, probeId: 1, valAccuracy: 1, valAuroc: 1 }]);
  });

  it('read a trace run’s means, per label too', () => {
    const v = traceRunView({ transcripts: 30, meanPlateau: 0.98, meanFinal: 0.05, meanMs: 0.93, byLabel: { harmful: { transcripts: 30, meanMs: 0.93 } } });
    expect(v).toMatchObject({ transcripts: 30, meanPlateau: 0.98, meanFinal: 0.05, meanMs: 0.93, meanWidth: null });
    expect(v.byLabel).toEqual([{ label: 'harmful', stats: expect.objectContaining({ transcripts: 30, meanMs: 0.93, meanFinal: null }) }]);
    expect(traceRunView(null).meanMs).toBeNull();
  });

  it('read a selection run', () => {
    expect(selectRunView({ variant: 'top-ms', fraction: 0.25, total: 24, budget: 6, selected: 6, threshold: 0.9 })).toEqual({
      probeId: null,
      variant: 'top-ms',
      fraction: 0.25,
      total: 24,
      budget: 6,
      selected: 6,
      threshold: 0.9,
    });
  });
});
