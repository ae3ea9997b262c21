/**
 * `cliffscope generate`: batched generation from the command line, streamed to the terminal or as one JSON object
 * per transcript (split into prompt / thinking / answer) for scripts.
 */
import path from 'node:path';
import { SAMPLING_FLAGS, samplingFromFlags } from '../../../shared/runs/flags.js';
import type { CliContext, FlagSpec } from '../../../shared/runs/spec.js';
import { describeProvider } from '../../../shared/values.js';
import { DEFAULT_MAX_DATASET_BYTES } from '../../engine/datasets/import.js';
import { CliffscopeError } from '../../engine/errors.js';
import { jsonSyntaxProblem } from '../../engine/io/json-syntax.js';
import { readUntrustedText } from '../../engine/io/untrusted-file.js';
import { readHeadScaleFile } from '../../engine/runtime/head-scale.js';
import { call } from '../api.js';
import { type Command, numberFlag, oneModelDir, parseVerbArgs, printHelp, singleFlags } from '../command.js';
import { MODEL_FLAG_NAMES, MODEL_FLAGS, modelRefFromFlags, RUNTIME_HELP } from '../model-flags.js';

export const DEFAULT_GENERATE_TOKENS = 256;

/** generate.run's fields → this verb's flags, for errors. */
const FLAGS = new Map([
  ['dir', 'MODEL_DIR'],
  ['model.dir', 'MODEL_DIR'],
  ...MODEL_FLAG_NAMES,
  ['prompts', '--prompt / --prompts'],
  ['system', '--system'],
  ['maxNewTokens', '--max-new-tokens'],
  ...SAMPLING_FLAGS.map((f) => [f.field!, `--${f.name}`] as [string, string]),
  ['stop', '--stop'],
  ['headScale', '--head-scale'],
  ['batchSize', '--batch'],
]);

/** How a transcript ended, with the reason when its prompt was skipped. */
const finished = (t: { finishReason: string; skipped?: string }) => (t.skipped ? `${t.finishReason}: ${t.skipped}` : t.finishReason);
const flagHelp = (f: FlagSpec) => `${`  --${f.name} ${f.arg ?? ''}`.padEnd(28)}${f.help}`;

/** The number parsers samplingFromFlags needs (the rest of a run verb's context does not apply here). */
const flagParsers: Pick<CliContext, 'number'> = { number: numberFlag };

/** Prompts from a file: .txt (one per line), .json (array of strings or of {prompt}), .jsonl (one per line). */
export function readPromptsFile(file: string): string[] {
  const text = readUntrustedText(file, { maxBytes: DEFAULT_MAX_DATASET_BYTES, what: 'prompts file', code: 'bad-argument' }).replace(/^\uFEFF/, '');
  const fromValue = (v: unknown, where: string): string => {
    if (typeof v === 'string') return v;
    if (v && typeof v === 'object' && typeof (v as { prompt?: unknown }).prompt === 'string') return (v as { prompt: string }).prompt;
    throw new CliffscopeError('bad-argument', `${file}: ${where} is neither a string nor an object with a "prompt" string`, { file });
  };
  const ext = path.extname(file).toLowerCase();
  let prompts: string[];
  if (ext === '.json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new CliffscopeError('bad-json', `${file} is not valid JSON: ${jsonSyntaxProblem(text)}`, { file });
    }
    if (!Array.isArray(parsed)) throw new CliffscopeError('bad-argument', `${file}: expected a JSON array of prompts`, { file });
    prompts = parsed.map((v, i) => fromValue(v, `item ${i}`));
  } else if (ext === '.jsonl') {
    prompts = text.split(/\r?\n/).flatMap((line, i) => {
      if (!line.trim()) return [];
      try {
        return [fromValue(JSON.parse(line), `line ${i + 1}`)];
      } catch (e) {
        if (e instanceof CliffscopeError) throw e;
        throw new CliffscopeError('bad-json', `${file}: line ${i + 1} is not valid JSON`, { file });
      }
    });
  } else {
    prompts = text.split(/\r?\n/).filter((l) => l.trim());
  }
  if (prompts.length === 0) throw new CliffscopeError('bad-argument', `${file} holds no prompts`, { file });
  return prompts;
}

export const generateCommand: Command = {
  name: 'generate',
  summary: 'generate (reasoning) transcripts, batched, streamed, optionally with heads ablated; stores nothing',
  help: `Usage: cliffscope generate MODEL_DIR (--prompt "…" | --prompts FILE) [options]

Generates a continuation for each prompt with a KV cache, in batches, and prints it: nothing is stored (the
\`transcripts\` verb stores a run of transcripts in a project). Reasoning transcripts are split into
prompt / thinking / answer by the model's think markers.

Input:
  --prompt TEXT             one prompt
  --prompts FILE            .txt (one per line), .json (array of strings or {"prompt": …}) or .jsonl
  --chat                    wrap each prompt as a user message in the model's chat template
  --system TEXT             system message (with --chat)

Decoding:
  --greedy                  greedy decoding (default)
${SAMPLING_FLAGS.map(flagHelp).join('\n')}
  --max-new-tokens N        default ${DEFAULT_GENERATE_TOKENS}
  --stop TEXT               stop when the output contains TEXT (repeatable); EOS ids come from generation_config.json
  --batch B                 prompts decoded together (default 8)

Ablation:
  --head-scale FILE         JSON [layers][heads] of γ applied to every head's output before o_proj

Runtime:
${RUNTIME_HELP}
Output:
  --json                    one JSON object per transcript on stdout: prompt, input_ids, output_ids, text,
                            thinking, answer, finish_reason, think_open, think_close, answer_boundary, and
                            provider / provider_notes (where it ran, and why auto skipped better providers)
  -h, --help                this help
`,
  async run(argv) {
    const { values, positionals } = parseVerbArgs(this, argv, {
      prompt: { type: 'string' },
      prompts: { type: 'string' },
      chat: { type: 'boolean' },
      system: { type: 'string' },
      greedy: { type: 'boolean' },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      'top-k': { type: 'string' },
      'repetition-penalty': { type: 'string' },
      seed: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      stop: { type: 'string', multiple: true },
      batch: { type: 'string' },
      'head-scale': { type: 'string' },
      ...MODEL_FLAGS,
      json: { type: 'boolean' },
    });
    if (values.help) return printHelp(this);
    const dir = oneModelDir(this, positionals);
    if ((values.prompt === undefined) === (values.prompts === undefined)) throw new CliffscopeError('bad-argument', 'give exactly one of --prompt or --prompts');
    if (values.greedy && values.temperature !== undefined) throw new CliffscopeError('bad-argument', '--greedy and --temperature exclude each other');
    const texts = values.prompt !== undefined ? [values.prompt] : readPromptsFile(values.prompts!);
    const json = values.json === true;
    let headScale: number[][] | undefined;
    if (values['head-scale']) {
      const { layers, heads } = await call('model.inspect', { dir }, { flags: FLAGS });
      headScale = readHeadScaleFile(values['head-scale'], layers, heads);
    }

    const streamOne = texts.length === 1 && !json;
    let streamedText = '';
    const result = await call(
      'generate.run',
      {
        model: modelRefFromFlags(dir, singleFlags(values)),
        prompts: texts,
        chat: values.chat === true,
        ...(values.system !== undefined ? { system: values.system } : {}),
        maxNewTokens: numberFlag(values['max-new-tokens'], 'max-new-tokens') ?? DEFAULT_GENERATE_TOKENS,
        sampling: samplingFromFlags(singleFlags(values), flagParsers),
        seed: numberFlag(values.seed, 'seed'),
        stop: values.stop,
        headScale,
        batchSize: numberFlag(values.batch, 'batch'),
      },
      {
        flags: FLAGS,
        // One prompt streams its text instead of a token bar; --json prints nothing but the transcripts.
        progress: json ? false : streamOne ? (label) => label !== 'tokens' : true,
        onEvent: streamOne
          ? (e) => {
              if (e.kind !== 'token') return;
              streamedText += e.text;
              process.stdout.write(e.text);
            }
          : undefined,
      },
    );

    result.transcripts.forEach((t, i) => {
      if (json) {
        process.stdout.write(
          `${JSON.stringify({
            prompt: t.prompt,
            input_ids: t.inputIds,
            output_ids: t.outputIds,
            text: t.text,
            thinking: t.thinking,
            answer: t.answer,
            finish_reason: t.finishReason,
            ...(t.skipped ? { skipped: t.skipped } : {}),
            think_open: t.thinkOpen,
            think_close: t.thinkClose,
            answer_boundary: t.answerBoundary,
            provider: result.provider,
            provider_notes: result.providerNotes,
          })}\n`,
        );
      } else if (streamOne) {
        process.stdout.write(`${streamedText.endsWith('\n') ? '' : '\n'}[${finished(t)}]\n`);
      } else {
        process.stdout.write(`\n=== ${i + 1}/${texts.length} [${finished(t)}] ${texts[i]}\n${t.text}\n`);
      }
    });
    const tokens = result.transcripts.reduce((n, t) => n + t.outputIds.length, 0);
    if (!json) process.stderr.write(`${tokens} tokens in ${result.seconds.toFixed(1)} s (${(tokens / Math.max(result.seconds, 1e-3)).toFixed(1)} tokens/s) on ${describeProvider(result.provider, result.providerNotes)}\n`);
    return result.transcripts.some((t) => t.finishReason === 'cancelled') ? 130 : 0;
  },
};
