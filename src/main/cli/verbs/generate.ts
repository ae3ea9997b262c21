/**
 * `cliffscope generate`: batched generation from the command line, streamed to the terminal or as one JSON object
 * per transcript (split into prompt / thinking / answer) for scripts.
 */
import path from 'node:path';
import { DEFAULT_MAX_DATASET_BYTES } from '../../engine/datasets/import.js';
import { CliffscopeError } from '../../engine/errors.js';
import { jsonSyntaxProblem } from '../../engine/io/json-syntax.js';
import { readUntrustedText } from '../../engine/io/untrusted-file.js';
import { readHeadScaleFile } from '../../engine/io/head-scale.js';
import { generate } from '../../engine/runtime/generate.js';
import { GREEDY, type SamplingOptions } from '../../engine/runtime/sampling.js';
import { describeTranscript } from '../../engine/runtime/transcript.js';
import { type Command, intOption, oneModelDir, parseVerbArgs, printHelp } from '../command.js';
import { loadModelFromOptions, RUNTIME_OPTIONS } from '../pipeline-env.js';
import { PRECISION_HELP } from '../precision-options.js';
import { Progress } from '../progress.js';

function numberOption(value: string | undefined, name: string, min: number, max = Infinity): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new CliffscopeError('bad-argument', `--${name} must be a number in [${min}, ${max}], got "${value}"`);
  return n;
}

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
  summary: 'generate (reasoning) transcripts, batched, streamed, optionally with heads ablated',
  help: `Usage: cliffscope generate MODEL_DIR (--prompt "…" | --prompts FILE) [options]

Generates a continuation for each prompt with a KV cache, in batches. Reasoning transcripts are split into
prompt / thinking / answer by the model's think markers.

Input:
  --prompt TEXT             one prompt
  --prompts FILE            .txt (one per line), .json (array of strings or {"prompt": …}) or .jsonl
  --chat                    wrap each prompt as a user message in the model's chat template
  --system TEXT             system message (with --chat)

Decoding:
  --greedy                  greedy decoding (default)
  --temperature T           sample at temperature T (> 0)
  --top-p P                 nucleus sampling mass (default 1 = off)
  --top-k K                 keep the K most likely tokens (default 0 = off)
  --repetition-penalty R    transformers-style repetition penalty (default 1 = off)
  --seed S                  sampling seed (default 0); each prompt draws from its own stream
  --max-new-tokens N        default 256
  --stop TEXT               stop when the output contains TEXT (repeatable); EOS ids come from generation_config.json
  --batch B                 prompts decoded together (default 8)

Ablation:
  --head-scale FILE         JSON [layers][heads] of γ applied to every head's output before o_proj
  --norm-preserve           rescale each token's multi-head output to its pre-scaling norm

Runtime:
  --provider NAME           auto (default), cpu, cuda, dml, coreml or webgpu
  --threads N               ONNX Runtime intra-op threads
${PRECISION_HELP}  --cache DIR               compiled-model cache (default: $CLIFFSCOPE_CACHE or ~/.cache/cliffscope)

Output:
  --json                    one JSON object per transcript on stdout: prompt, input_ids, output_ids, text,
                            thinking, answer, finish_reason, think_open, think_close, answer_boundary
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
      ...RUNTIME_OPTIONS,
      json: { type: 'boolean' },
    });
    if (values.help) return printHelp(this);
    const dir = oneModelDir(this, positionals);
    if ((values.prompt === undefined) === (values.prompts === undefined)) throw new CliffscopeError('bad-argument', 'give exactly one of --prompt or --prompts');
    const temperature = numberOption(values.temperature, 'temperature', 0);
    if (values.greedy && temperature !== undefined) throw new CliffscopeError('bad-argument', '--greedy and --temperature exclude each other');
    const sampling: SamplingOptions =
      temperature === undefined || temperature === 0
        ? { ...GREEDY, repetitionPenalty: numberOption(values['repetition-penalty'], 'repetition-penalty', 0.01) ?? 1 }
        : {
            doSample: true,
            temperature,
            topP: numberOption(values['top-p'], 'top-p', 0, 1) ?? 1,
            topK: intOption(values['top-k'], 'top-k', 0) ?? 0,
            repetitionPenalty: numberOption(values['repetition-penalty'], 'repetition-penalty', 0.01) ?? 1,
          };
    const texts = values.prompt !== undefined ? [values.prompt] : readPromptsFile(values.prompts!);

    const model = await loadModelFromOptions(dir, values, { quiet: values.json });
    try {
      const tok = model.tokenizer;
      if (!tok) throw new CliffscopeError('missing-file', `${dir} has no tokenizer.json, so prompts cannot be encoded`, { file: dir });
      const cfg = model.config;
      const encode = (text: string) => {
        if (!values.chat) return tok.encode(text, { addSpecialTokens: true });
        const messages = [...(values.system ? [{ role: 'system' as const, content: values.system }] : []), { role: 'user' as const, content: text }];
        return tok.encodeChat(messages).ids;
      };
      let headScale: Float32Array | undefined;
      if (values['head-scale']) headScale = Float32Array.from(readHeadScaleFile(values['head-scale'], cfg.numLayers, cfg.numHeads).flat());
      const requests = texts.map((t) => ({ ids: encode(t), headScale }));
      const maxNewTokens = intOption(values['max-new-tokens'], 'max-new-tokens', 0) ?? 256;
      const stopIds = model.checkpoint.generation.eosTokenIds.length ? model.checkpoint.generation.eosTokenIds : tok.eosTokenId !== null ? [tok.eosTokenId] : [];
      if (!values.json) process.stderr.write(`provider: ${model.session.provider}${model.session.providerNotes.length ? ` (${model.session.providerNotes.join('; ')})` : ''}\n`);

      // Ctrl-C stops within one decode step; what was generated so far is still printed.
      const controller = new AbortController();
      const onSigint = () => controller.abort();
      process.once('SIGINT', onSigint);
      const streamOne = texts.length === 1 && !values.json;
      let streamed: number[] = [];
      let shown = '';
      const started = Date.now();
      const decoding = new Progress('generating', 'tokens (upper bound)');
      const results = await generate(model.session, requests, {
        maxNewTokens,
        sampling,
        seed: intOption(values.seed, 'seed', 0) ?? 0,
        stopIds,
        stopStrings: values.stop,
        decode: (ids) => tok.decode(ids),
        batchSize: intOption(values.batch, 'batch') ?? 8,
        signal: controller.signal,
        onToken: streamOne
          ? (_p, token) => {
              streamed.push(token);
              const text = tok.decode(streamed, { skipSpecialTokens: false });
              process.stdout.write(text.slice(shown.length));
              shown = text;
            }
          : undefined,
        onProgress: streamOne || values.json ? undefined : (done, total) => decoding.update(done, total),
      });
      process.removeListener('SIGINT', onSigint);
      streamed = [];
      const seconds = (Date.now() - started) / 1000;

      results.forEach((r, i) => {
        const t = describeTranscript(tok, r.promptIds, r.outputIds);
        if (values.json) {
          process.stdout.write(
            `${JSON.stringify({
              prompt: texts[i],
              input_ids: r.promptIds,
              output_ids: r.outputIds,
              text: t.text,
              thinking: t.thinking,
              answer: t.answer,
              finish_reason: r.finishReason,
              think_open: t.split.thinkOpen,
              think_close: t.split.thinkClose,
              answer_boundary: t.split.answerBoundary,
            })}\n`,
          );
        } else if (streamOne) {
          process.stdout.write(`\n[${r.finishReason}]\n`);
        } else {
          process.stdout.write(`\n=== ${i + 1}/${texts.length} [${r.finishReason}] ${texts[i]}\n${t.text}\n`);
        }
      });
      const tokens = results.reduce((n, r) => n + r.outputIds.length, 0);
      if (!values.json) process.stderr.write(`${tokens} tokens in ${seconds.toFixed(1)} s (${(tokens / Math.max(seconds, 1e-3)).toFixed(1)} tokens/s)\n`);
      return results.some((r) => r.finishReason === 'cancelled') ? 130 : 0;
    } finally {
      await model.session.release();
    }
  },
};
