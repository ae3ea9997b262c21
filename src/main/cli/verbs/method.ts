/**
 * The method's pipelines as verbs (docs/METHOD.md §1–6): `transcripts`, `probe`, `trace`, `heads`, `ablate`, `judge`,
 * `select`. Each starts (or with --resume continues) a run in the project, shows progress with an ETA, stops
 * cleanly on Ctrl-C keeping finished items, and prints the run's report.
 */
import { PROBE_LABEL_RULES } from '../../engine/analysis/judges.js';
import { PROBE_PRESETS, type ProbePresetName, type ProbeSelectBy } from '../../engine/analysis/probe.js';
import type { AttributionVariant } from '../../engine/analysis/heads.js';
import type { SelectionVariant } from '../../engine/analysis/select.js';
import { CliffscopeError } from '../../engine/errors.js';
import { DEFAULT_SWEEP, runAblation } from '../../engine/pipelines/ablate.js';
import type { PipelineEnv } from '../../engine/pipelines/common.js';
import { runHeads } from '../../engine/pipelines/heads.js';
import { runJudge, type JudgeSpec } from '../../engine/pipelines/judge.js';
import { type LabelRule, runProbeTraining } from '../../engine/pipelines/probe.js';
import { formatRunReport, runReport } from '../../engine/pipelines/report.js';
import { exportSelection, PAPER_SELECT_FRACTION, runSelect } from '../../engine/pipelines/select.js';
import type { TranscriptSource } from '../../engine/pipelines/sources.js';
import { runTrace } from '../../engine/pipelines/trace.js';
import { BASELINE_SETTING, runGenerate } from '../../engine/pipelines/transcripts.js';
import { loadModel } from '../../engine/runtime/model.js';
import { GREEDY } from '../../engine/runtime/sampling.js';
import { type Command, intOption, parseVerbArgs, printHelp } from '../command.js';
import { findDataset, MODEL_HELP, MODEL_OPTIONS, numberList, requireId, resumeOption, withPipeline } from '../pipeline-env.js';

function printReport(env: PipelineEnv, runId: number, json: boolean | undefined): number {
  const report = runReport(env.store, runId);
  process.stdout.write(json ? `${JSON.stringify(report)}\n` : `${formatRunReport(report)}\n`);
  return report.run.status === 'done' ? 0 : 1;
}

/** --run RUN (a generate run's transcripts) or --dataset NAME (its prompt/response pairs, teacher-forced). */
function sourceOf(env: PipelineEnv, values: { run?: string; dataset?: string; 'no-chat'?: boolean }, what: string): TranscriptSource {
  if ((values.run === undefined) === (values.dataset === undefined)) throw new CliffscopeError('bad-argument', `${what}: give exactly one of --run RUN or --dataset NAME`);
  if (values.run !== undefined) return { kind: 'run', runId: requireId(values.run, 'run') };
  return { kind: 'dataset', datasetId: findDataset(env.store, values.dataset, 'dataset').id, chat: !values['no-chat'] };
}

const SOURCE_HELP = `  --run RUN                 transcripts of a generate run (the model's own)
  --dataset NAME            a dataset's prompt/response pairs, teacher-forced
  --no-chat                 with --dataset: do not apply the chat template to prompts
`;

export const transcriptsCommand: Command = {
  name: 'transcripts',
  summary: "generate and store the model's transcripts for a dataset (a generate run)",
  help: `Usage: cliffscope transcripts PROJECT --model DIR --dataset NAME [options]

Generates a reasoning transcript for every prompt of the dataset and stores it (token ids, text, thinking span,
answer boundary). With --probe, the probe's refusal score is traced live on every token.

Options:
  --dataset NAME            prompts to answer
  --max-new-tokens N        default 1024
  --batch B                 default 8
  --temperature T --top-p P --seed S   sampling (default greedy)
  --head-scale-gamma G --heads L:H,L:H  ablate these heads by γ = G while generating
  --probe ID                live probe
  --no-chat                 feed prompts as raw text
${MODEL_HELP}`,
  async run(argv) {
    const { values, positionals } = parseVerbArgs(this, argv, {
      ...MODEL_OPTIONS,
      dataset: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      batch: { type: 'string' },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      seed: { type: 'string' },
      heads: { type: 'string' },
      'head-scale-gamma': { type: 'string' },
      probe: { type: 'string' },
      'no-chat': { type: 'boolean' },
    });
    if (values.help) return printHelp(this);
    return withPipeline(positionals[0], values, async (env) => {
      const L = env.model.config.numLayers;
      const H = env.model.config.numHeads;
      const settings = [BASELINE_SETTING];
      if (values.heads) {
        const gamma = Number(values['head-scale-gamma'] ?? 0);
        const scale = new Array<number>(L * H).fill(1);
        for (const ref of values.heads.split(',')) {
          const m = /^(\d+):(\d+)$/.exec(ref.trim());
          if (!m || Number(m[1]) >= L || Number(m[2]) >= H) throw new CliffscopeError('bad-argument', `--heads entry "${ref}" must be LAYER:HEAD within ${L}×${H}`);
          scale[Number(m[1]) * H + Number(m[2])] = gamma;
        }
        settings.splice(0, 1, { key: `heads:${values.heads}:g${gamma}`, headScale: scale });
      }
      const temperature = values.temperature !== undefined ? Number(values.temperature) : 0;
      const runId = await runGenerate(
        env,
        {
          datasetId: findDataset(env.store, values.dataset, 'dataset').id,
          chat: !values['no-chat'],
          maxNewTokens: intOption(values['max-new-tokens'], 'max-new-tokens', 0) ?? 1024,
          sampling: temperature > 0 ? { doSample: true, temperature, topP: Number(values['top-p'] ?? 1), topK: 0, repetitionPenalty: 1 } : GREEDY,
          seed: intOption(values.seed, 'seed', 0) ?? 0,
          batchSize: intOption(values.batch, 'batch') ?? 8,
          settings,
          probeId: intOption(values.probe, 'probe'),
        },
        { resume: resumeOption(values), name: values.name },
      );
      return printReport(env, runId, values.json);
    });
  },
};

export const probeCommand: Command = {
  name: 'probe',
  summary: 'train refusal probes (a converged L-BFGS fit by default, the paper\'s Adam recipe as a preset)',
  help: `Usage: cliffscope probe train PROJECT --model DIR (--positive-run RUN | --positive NAME) (--negative-run RUN | --negative NAME) [options]

Trains a logistic-regression refusal probe r(h) = sigmoid(w·h + b) per layer (docs/METHOD.md §1). Samples follow the
paper: features at the answer boundary (the token before the answer), positives = answers to harmful prompts that
refuse (refusal keyword in the first 32 characters), negatives = answers to harmless prompts, balanced, ≤ 200 per
class, 80/20 split, on the final-normed hidden state. The fit defaults to the L-BFGS preset: the L2-regularised
logistic regression solved to convergence (scikit-learn's C = 1 at unit feature variance), whose scores stay
calibrated on small data; --preset paper-adam is the paper's loop (Adam lr 1e-3, batch 64, 5 epochs, the epoch with
the best validation accuracy, ties to the lower validation loss). The report gives the calibration: validation loss
next to ln 2, mean score per class, their gap and the ECE. Prompt-only probes (Arditi et al.) use --position prompt.

Options:
  --positive-run RUN | --positive NAME   refusal side: a generate run, or a dataset (with responses, or prompts)
  --negative-run RUN | --negative NAME   non-refusal side
  --position boundary|prompt   answer boundary (default) or last prompt token
  --layers final|all|LIST   residual entries: final (default; ln_final), all, or e.g. 12,20,28 (i = after block i-1)
  --label-rule gcg-first32|jbb-first32|paper-code|all   which positives count as refusals (default gcg-first32;
                            paper-code = the paper's code: its word list, case-sensitive, and > 10 characters of thinking)
  --preset lbfgs|paper-adam  how the probe is fitted (default lbfgs); --lr/--epochs/--batch-size/--select-by alone select paper-adam
  --l2 X|auto --seed S --max-per-class N
  --lr X --epochs N --batch-size N --select-by val-accuracy|val-accuracy-first|val-loss|last   (paper-adam)
  --no-chat                 with datasets: raw prompts
${MODEL_HELP}`,
  async run(argv) {
    const { values, positionals } = parseVerbArgs(this, argv, {
      ...MODEL_OPTIONS,
      'positive-run': { type: 'string' },
      positive: { type: 'string' },
      'negative-run': { type: 'string' },
      negative: { type: 'string' },
      position: { type: 'string' },
      layers: { type: 'string' },
      'label-rule': { type: 'string' },
      lr: { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      l2: { type: 'string' },
      seed: { type: 'string' },
      'max-per-class': { type: 'string' },
      'select-by': { type: 'string' },
      preset: { type: 'string' },
      'no-chat': { type: 'boolean' },
    });
    if (values.help) return printHelp(this);
    const [action, projectFile] = positionals;
    if (action !== 'train') throw new CliffscopeError('bad-argument', 'usage: cliffscope probe train PROJECT …', { hint: 'see: cliffscope probe --help' });
    return withPipeline(projectFile, values, async (env) => {
      const L = env.model.config.numLayers;
      const side = (run: string | undefined, name: string | undefined, option: string): TranscriptSource => {
        if ((run === undefined) === (name === undefined)) throw new CliffscopeError('bad-argument', `give exactly one of --${option}-run RUN or --${option} NAME`);
        return run !== undefined ? { kind: 'run', runId: requireId(run, `${option}-run`) } : { kind: 'dataset', datasetId: findDataset(env.store, name, option).id, chat: !values['no-chat'] };
      };
      const layersArg = values.layers ?? 'final';
      const layers = layersArg === 'final' ? [L + 1] : layersArg === 'all' ? Array.from({ length: L + 2 }, (_, i) => i) : numberList(layersArg, 'layers')!;
      const position = values.position ?? 'boundary';
      if (position !== 'boundary' && position !== 'prompt') throw new CliffscopeError('bad-argument', '--position must be boundary or prompt');
      const labelRule = (values['label-rule'] ?? 'gcg-first32') as LabelRule;
      if (!PROBE_LABEL_RULES.includes(labelRule)) throw new CliffscopeError('bad-argument', `--label-rule must be one of ${PROBE_LABEL_RULES.join(', ')}`);
      const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
      const selectBy = values['select-by'] as ProbeSelectBy | undefined;
      const preset = values.preset as ProbePresetName | undefined;
      if (preset !== undefined && !(preset in PROBE_PRESETS)) throw new CliffscopeError('bad-argument', `--preset must be one of ${Object.keys(PROBE_PRESETS).join(', ')}`);
      const train = Object.fromEntries(
        Object.entries({
          preset,
          lr: num(values.lr),
          epochs: intOption(values.epochs, 'epochs'),
          batchSize: intOption(values['batch-size'], 'batch-size'),
          l2: values.l2 === 'auto' ? 'auto' : num(values.l2),
          seed: intOption(values.seed, 'seed', 0),
          maxPerClass: intOption(values['max-per-class'], 'max-per-class', 2),
          selectBy,
        }).filter(([, v]) => v !== undefined),
      );
      const result = await runProbeTraining(
        env,
        {
          name: values.name ?? 'refusal',
          positive: side(values['positive-run'], values.positive, 'positive'),
          negative: side(values['negative-run'], values.negative, 'negative'),
          positionRule: position === 'prompt' ? 'last-prompt-token' : 'answer-boundary',
          layers,
          labelRule,
          train,
        },
        { resume: resumeOption(values) },
      );
      return printReport(env, result.runId, values.json);
    });
  },
};

export const traceCommand: Command = {
  name: 'trace',
  summary: 'refusal score per token, plateau / final / MS and the cliff, for a set of transcripts',
  help: `Usage: cliffscope trace PROJECT --model DIR --probe ID (--run RUN | --dataset NAME) [--probes ID,ID…] [options]

Scores every token of every transcript with the probe (teacher forcing), then reports the plateau I (max over the
thinking span), the final score I' at the answer boundary, MS = I − I', the steepest drop and the cliff's width.
--probes adds more probes (e.g. one per layer from a layer sweep) for the layers × tokens map.

Options:
  --probe ID                the probe
  --probes LIST             more probes scored on the same transcripts
${SOURCE_HELP}  --plateau max|moving-average-max|percentile   (default max, the paper's)
${MODEL_HELP}`,
  async run(argv) {
    const { values, positionals } = parseVerbArgs(this, argv, {
      ...MODEL_OPTIONS,
      probe: { type: 'string' },
      probes: { type: 'string' },
      run: { type: 'string' },
      dataset: { type: 'string' },
      'no-chat': { type: 'boolean' },
      plateau: { type: 'string' },
    });
    if (values.help) return printHelp(this);
    return withPipeline(positionals[0], values, async (env) => {
      const plateau = (values.plateau ?? 'max') as 'max' | 'moving-average-max' | 'percentile';
      const runId = await runTrace(
        env,
        { probeId: requireId(values.probe, 'probe'), extraProbeIds: numberList(values.probes, 'probes') ?? [], source: sourceOf(env, values, 'trace'), options: { plateau } },
        { resume: resumeOption(values), name: values.name },
      );
      return printReport(env, runId, values.json);
    });
  },
};

export const headsCommand: Command = {
  name: 'heads',
  summary: "rank attention heads by their direct contribution to the probe at the cliff",
  help: `Usage: cliffscope heads PROJECT --model DIR --probe ID (--run RUN | --dataset NAME) [options]

For every transcript, each head's direct write into the residual stream at the answer boundary, W_O[:, h] z_h,
read by the probe (w·Δh/‖w‖, the paper's code), averaged over the set; the most negative are the refusal
suppression heads. --variant blog adds the bias (w·Δh + b, same ranking); --variant final-norm-aware accounts for
the final RMSNorm's scale at t_b (an improvement, not the paper's).

Options:
  --probe ID                the probe
${SOURCE_HELP}  --label LABEL             only transcripts of dataset items with this label (e.g. harmful)
  --variant code|blog|final-norm-aware
  --per-token               also store every head's score at every token (heads × tokens)
${MODEL_HELP}`,
  async run(argv) {
    const { values, positionals } = parseVerbArgs(this, argv, {
      ...MODEL_OPTIONS,
      probe: { type: 'string' },
      run: { type: 'string' },
      dataset: { type: 'string' },
      'no-chat': { type: 'boolean' },
      label: { type: 'string' },
      variant: { type: 'string' },
      'per-token': { type: 'boolean' },
    });
    if (values.help) return printHelp(this);
    const variant = (values.variant ?? 'code') as AttributionVariant;
    if (!['code', 'blog', 'final-norm-aware'].includes(variant)) throw new CliffscopeError('bad-argument', '--variant must be code, blog or final-norm-aware');
    return withPipeline(positionals[0], values, async (env) => {
      const runId = await runHeads(
        env,
        { probeId: requireId(values.probe, 'probe'), source: sourceOf(env, values, 'heads'), label: values.label, variant, perToken: values['per-token'] ?? false },
        { resume: resumeOption(values), name: values.name },
      );
      return printReport(env, runId, values.json);
    });
  },
};

export const ablateCommand: Command = {
  name: 'ablate',
  summary: 'sweep ablations of the top suppression heads × γ against random heads; ASR per cell',
  help: `Usage: cliffscope ablate PROJECT --model DIR --heads-run RUN --harmful NAME [--harmless NAME] [options]

Ablates the top-k% refusal suppression heads of a heads run (z ← γ·z before o_proj, at every position) while
generating answers for a harmful set (and a harmless one for over-refusal), with k random heads as a control.
Every setting shares the batches. Per cell: ASR, over-refusal, mean final refusal score I', answer length.

Options:
  --heads-run RUN           the ranking to ablate from
  --harmful NAME            attack prompts (ASR)
  --harmless NAME           benign prompts (over-refusal), optional
  --probe ID                live probe for I'
  --fractions LIST          fractions of all heads (default ${DEFAULT_SWEEP.fractions.join(',')})
  --gammas LIST             γ values (default ${DEFAULT_SWEEP.gammas.join(',')})
  --no-random               skip the random-heads control
  --random-seed S           default 0
  --judge gcg|jbb           refusal keyword list (default jbb)
  --max-new-tokens N        default 1024
  --batch B                 default 8
  --no-chat                 raw prompts
${MODEL_HELP}`,
  async run(argv) {
    const { values, positionals } = parseVerbArgs(this, argv, {
      ...MODEL_OPTIONS,
      'heads-run': { type: 'string' },
      harmful: { type: 'string' },
      harmless: { type: 'string' },
      probe: { type: 'string' },
      fractions: { type: 'string' },
      gammas: { type: 'string' },
      'no-random': { type: 'boolean' },
      'random-seed': { type: 'string' },
      judge: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      batch: { type: 'string' },
      'no-chat': { type: 'boolean' },
    });
    if (values.help) return printHelp(this);
    const judge = (values.judge ?? 'jbb') as 'gcg' | 'jbb';
    if (judge !== 'gcg' && judge !== 'jbb') throw new CliffscopeError('bad-argument', '--judge must be gcg or jbb');
    return withPipeline(positionals[0], values, async (env) => {
      const runId = await runAblation(
        env,
        {
          headsRunId: requireId(values['heads-run'], 'heads-run'),
          probeId: intOption(values.probe, 'probe') ?? null,
          harmfulDatasetId: findDataset(env.store, values.harmful, 'harmful').id,
          harmlessDatasetId: values.harmless ? findDataset(env.store, values.harmless, 'harmless').id : null,
          fractions: numberList(values.fractions, 'fractions') ?? DEFAULT_SWEEP.fractions,
          gammas: numberList(values.gammas, 'gammas') ?? DEFAULT_SWEEP.gammas,
          randomControl: !values['no-random'],
          randomSeed: intOption(values['random-seed'], 'random-seed', 0) ?? 0,
          headSets: [],
          judge,
          chat: !values['no-chat'],
          maxNewTokens: intOption(values['max-new-tokens'], 'max-new-tokens', 0) ?? 1024,
          batchSize: intOption(values.batch, 'batch') ?? 8,
          seed: 0,
        },
        { resume: resumeOption(values), name: values.name },
      );
      return printReport(env, runId, values.json);
    });
  },
};

export const judgeCommand: Command = {
  name: 'judge',
  summary: "judge a run's answers: refusal keywords, the probe, or a local guard model",
  help: `Usage: cliffscope judge PROJECT --model DIR --run RUN (--keywords gcg|jbb | --probe ID [--threshold T] | --guard DIR) [options]

Stores a verdict for every answer of RUN with the judge's identity. The answer is the text after </think>, or the
whole output when thinking never closed or the model has no think markers (docs/METHOD.md §0; the summary counts
"thinking not closed"). Keywords: the GCG list (29 prefixes, case-sensitive) or JailbreakBench's (12,
case-insensitive). Probe: I' below the threshold means the model complied, read from a trace of RUN under that probe;
a transcript without one gets the verdict 'no-trace' and is not counted. Guard: a Llama-Guard-3-style checkpoint
through the same engine, given the answer cut to 512 characters; harmful if its output contains "unsafe".

Options:
  --run RUN                 the run whose answers to judge
  --harmful NAME            the dataset whose prompts count as attacks (default the run's)
  --keywords gcg|jbb
  --probe ID --threshold T  (default 0.5)
  --guard DIR --max-chars N (default 512)
${MODEL_HELP}`,
  async run(argv) {
    const { values, positionals } = parseVerbArgs(this, argv, {
      ...MODEL_OPTIONS,
      run: { type: 'string' },
      harmful: { type: 'string' },
      keywords: { type: 'string' },
      probe: { type: 'string' },
      threshold: { type: 'string' },
      guard: { type: 'string' },
      'max-chars': { type: 'string' },
    });
    if (values.help) return printHelp(this);
    const chosen = [values.keywords, values.probe, values.guard].filter((v) => v !== undefined).length;
    if (chosen !== 1) throw new CliffscopeError('bad-argument', 'choose exactly one judge: --keywords, --probe or --guard');
    return withPipeline(positionals[0], values, async (env) => {
      let judge: JudgeSpec;
      if (values.keywords !== undefined) {
        if (values.keywords !== 'gcg' && values.keywords !== 'jbb') throw new CliffscopeError('bad-argument', '--keywords must be gcg or jbb');
        judge = { kind: 'keyword', list: values.keywords };
      } else if (values.probe !== undefined) {
        judge = { kind: 'probe', probeId: requireId(values.probe, 'probe'), threshold: values.threshold !== undefined ? Number(values.threshold) : 0.5 };
      } else {
        judge = { kind: 'guard', modelDir: values.guard!, maxChars: intOption(values['max-chars'], 'max-chars') ?? 512 };
      }
      const guard = judge.kind === 'guard' ? await loadModel(judge.modelDir, { cacheRoot: values.cache, threads: intOption(values.threads, 'threads') }) : undefined;
      try {
        const runId = await runJudge(
          env,
          { runId: requireId(values.run, 'run'), judge, harmfulDatasetId: values.harmful ? findDataset(env.store, values.harmful, 'harmful').id : null },
          { resume: resumeOption(values), name: values.name, guard },
        );
        return printReport(env, runId, values.json);
      } finally {
        await guard?.session.release();
      }
    });
  },
};

export const selectCommand: Command = {
  name: 'select',
  summary: 'Cliff-as-a-Judge: score a safety training set by MS and export the top p %',
  help: `Usage: cliffscope select PROJECT --model DIR --probe ID --dataset NAME [options]

Teacher-forces every (prompt, reasoning response) of the dataset, scores it by its misalignment MS = I − I' under
the probe, selects the top p % (paper: 1.7 %) and, with --out, writes LLaMA-Factory alpaca JSON and chat-messages
JSONL with provenance sidecars and a dataset_info.json entry.

Options:
  --probe ID                the probe
  --dataset NAME            prompt + response pairs (map the response column when importing)
  --fraction P              default ${PAPER_SELECT_FRACTION}
  --variant top-ms|lowest-final|random|rule-based   (default top-ms)
  --seed S                  for random / rule-based
  --out DIR                 write the selection files here
  --no-chat                 raw prompts
${MODEL_HELP}`,
  async run(argv) {
    const { values, positionals } = parseVerbArgs(this, argv, {
      ...MODEL_OPTIONS,
      probe: { type: 'string' },
      dataset: { type: 'string' },
      fraction: { type: 'string' },
      variant: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      'no-chat': { type: 'boolean' },
    });
    if (values.help) return printHelp(this);
    const variant = (values.variant ?? 'top-ms') as SelectionVariant;
    if (!['top-ms', 'lowest-final', 'random', 'rule-based'].includes(variant)) throw new CliffscopeError('bad-argument', '--variant must be top-ms, lowest-final, random or rule-based');
    const fraction = values.fraction !== undefined ? Number(values.fraction) : PAPER_SELECT_FRACTION;
    if (!(fraction > 0 && fraction <= 1)) throw new CliffscopeError('bad-argument', '--fraction must be in (0, 1]');
    return withPipeline(positionals[0], values, async (env) => {
      const result = await runSelect(
        env,
        { datasetId: findDataset(env.store, values.dataset, 'dataset').id, probeId: requireId(values.probe, 'probe'), chat: !values['no-chat'], variant, fraction, seed: intOption(values.seed, 'seed', 0) ?? 0 },
        { resume: resumeOption(values), name: values.name },
      );
      if (values.out && env.store.getRun(result.runId)?.status === 'done') {
        for (const f of exportSelection(env.store, result.runId, values.out, env.model.tokenizer!)) process.stderr.write(`wrote ${f}\n`);
      }
      return printReport(env, result.runId, values.json);
    });
  },
};
