/**
 * Flags several run verbs share, with how they become input fields: sampling, and where transcripts come from.
 */
import type { Sampling, TranscriptSource } from '../values.js';
import { type CliContext, flag, type FlagSpec, type FlagValues } from './spec.js';

export const SAMPLING_FLAGS: readonly FlagSpec[] = [
  flag('temperature', 'sample at temperature T (default 0: greedy)', { arg: 'T', field: 'sampling.temperature' }),
  flag('top-p', 'nucleus sampling mass (default 1 = off)', { arg: 'P', field: 'sampling.topP' }),
  flag('top-k', 'keep the K most likely tokens (default 0 = off)', { arg: 'K', field: 'sampling.topK' }),
  flag('repetition-penalty', 'transformers-style repetition penalty (default 1 = off)', { arg: 'R', field: 'sampling.repetitionPenalty' }),
  flag('seed', 'sampling seed (default 0); each prompt draws from its own stream', { arg: 'S', field: 'seed' }),
];

/** The sampling settings the flags name (undefined: greedy, nothing given). */
export function samplingFromFlags(flags: FlagValues, cli: Pick<CliContext, 'number'>): Sampling | undefined {
  const s: Sampling = {};
  const put = (key: keyof Sampling, name: string) => {
    const v = cli.number(flags[name], name);
    if (v !== undefined) s[key] = v;
  };
  put('temperature', 'temperature');
  put('topP', 'top-p');
  put('topK', 'top-k');
  put('repetitionPenalty', 'repetition-penalty');
  return Object.keys(s).length ? s : undefined;
}

export const SOURCE_FLAGS: readonly FlagSpec[] = [
  flag('run', "transcripts of a transcripts run (the model's own)", { arg: 'RUN', field: 'source' }),
  flag('dataset', "a dataset's prompt/response pairs, teacher-forced", { arg: 'NAME', field: 'source' }),
  flag('no-chat', 'with --dataset: do not apply the chat template to prompts', { field: 'source.chat' }),
];

/** --run RUN or --dataset NAME (exactly one). */
export function sourceFromFlags(flags: FlagValues, cli: CliContext, run = 'run', dataset = 'dataset'): TranscriptSource {
  const r = flags[run];
  const d = flags[dataset];
  if ((r === undefined) === (d === undefined)) cli.fail(`give exactly one of --${run} RUN or --${dataset} NAME`);
  if (r !== undefined) return { kind: 'run', runId: cli.id(r, run) };
  return { kind: 'dataset', datasetId: cli.dataset(cli.required(d, dataset), dataset), chat: !flags['no-chat'] };
}
