/**
 * What a lower-precision compile costs in accuracy, measured on the user's own checkpoint before they choose it:
 * compile the float32 graph and the variant (int4 weights and/or float16 activations), run both on the same token
 * sequences, and compare logits position by position, then compare greedy continuations token for token.
 *
 * Greedy decoding here re-runs teacher forcing on the growing sequence (no KV cache): quadratic, but it depends only
 * on the stable teacher-forcing path, and the report is a one-off on a few short prompts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { openCheckpoint } from '../model/checkpoint.js';
import { type CompileOptions, type CompiledModel, compileCheckpoint, type ResolvedCompileOptions } from '../onnx/compile.js';
import { DecoderSession } from '../runtime/decoder-session.js';
import { teacherForce } from '../runtime/teacher-force.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';

/** Fixed texts for checkpoints that ship a tokenizer: plain narrative and expository English. */
export const DEFAULT_TEXTS = [
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends.',
  'The cat sat on the mat and looked at the bird. The bird sang a happy song, and the cat wanted to sing too.',
  'Tom had a big red ball. One day he threw it very high, and it landed in a tree. He was sad, so he asked his mom for help.',
  'To bake bread, mix flour, water, salt and yeast, knead the dough, let it rise for an hour, then bake it until golden.',
];

export interface PrecisionReportOptions {
  cacheRoot?: string;
  /** The reference compile; default float32 with the variant's normPreserve. */
  baseline?: CompileOptions;
  /** Token sequences whose logits to compare; default DEFAULT_TEXTS through the checkpoint's tokenizer, else seeded ids. */
  sequences?: number[][];
  /** Prompts to continue greedily; default the first 8 tokens of each sequence. */
  prompts?: number[][];
  /** Greedy tokens per prompt (default 32). */
  newTokens?: number;
  threads?: number;
}

export interface PrecisionReport {
  baseline: ResolvedCompileOptions;
  variant: ResolvedCompileOptions;
  /** Positions compared (all positions of all sequences). */
  positions: number;
  maxAbsLogitDiff: number;
  meanAbsLogitDiff: number;
  /** KL(baseline ‖ variant) of the next-token distributions in nats, mean and max over positions. */
  meanKl: number;
  maxKl: number;
  greedyAgreement: {
    /** Fraction of positions where the variant's top token is the baseline's. */
    argmax: number;
    /** Fraction of greedy continuation tokens equal to the baseline's at the same index. */
    continuation: number;
    /** Fraction of prompts whose whole continuation is identical. */
    identical: number;
    /** Mean number of continuation tokens before the first difference. */
    meanCommonPrefix: number;
    prompts: number;
    newTokens: number;
  };
  /** Bytes of weight data in each compiled model. */
  weightsBytes: { baseline: number; variant: number };
  /** Wall time of the teacher-forced passes over all sequences (a rough speed comparison). */
  forwardMs: { baseline: number; variant: number };
}

function seededIds(n: number, seed: number, vocab: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % vocab;
  });
}

function argmax(v: Float32Array, start: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (v[start + i]! > v[start + best]!) best = i;
  return best;
}

/** log-softmax of v[start .. start + n) in float64. */
function logSoftmax(v: Float32Array, start: number, n: number): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, v[start + i]!);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(v[start + i]! - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = v[start + i]! - lse;
  return out;
}

async function greedy(session: DecoderSession, prompt: number[], newTokens: number): Promise<number[]> {
  const V = session.config.vocabSize;
  const ids = [...prompt];
  const limit = Math.min(prompt.length + newTokens, session.config.maxPositionEmbeddings);
  while (ids.length < limit) {
    const { logits } = await teacherForce(session, ids, { logitPositions: [ids.length - 1] });
    ids.push(argmax(logits, 0, V));
  }
  return ids.slice(prompt.length);
}

/** Bytes of tensor data (from the manifest; older entries: the weights file's size, alignment padding included). */
function weightsSize(c: CompiledModel): number {
  const manifest = JSON.parse(fs.readFileSync(path.join(c.dir, 'manifest.json'), 'utf8')) as { tensorBytes?: number };
  return manifest.tensorBytes ?? fs.statSync(path.join(c.dir, 'model.weights')).size;
}

/** Compile the baseline and the variant of `checkpointDir` (or reuse the cache) and measure how far apart they are. */
export async function precisionReport(
  checkpointDir: string,
  variant: Omit<CompileOptions, 'normPreserve'> & { normPreserve?: boolean },
  opts: PrecisionReportOptions = {},
): Promise<PrecisionReport> {
  const ckpt = openCheckpoint(checkpointDir);
  const cfg = ckpt.config;
  const V = cfg.vocabSize;
  const variantOptions: CompileOptions = { ...variant, normPreserve: variant.normPreserve ?? false };
  const baselineOptions: CompileOptions = opts.baseline ?? { normPreserve: variantOptions.normPreserve };
  const cacheOpts = { cacheRoot: opts.cacheRoot };
  const compiledBase = await compileCheckpoint(ckpt, baselineOptions, cacheOpts);
  const compiledVariant = await compileCheckpoint(ckpt, variantOptions, cacheOpts);

  let sequences = opts.sequences;
  if (!sequences) {
    if (fs.existsSync(path.join(checkpointDir, 'tokenizer.json'))) {
      const tok = await Tokenizer.fromDir(checkpointDir);
      sequences = DEFAULT_TEXTS.map((t) => tok.encode(t, { addSpecialTokens: true }));
    } else {
      sequences = [1, 2, 3, 4].map((seed) => seededIds(32, seed, V));
    }
  }
  sequences = sequences.map((s) => s.slice(0, cfg.maxPositionEmbeddings)).filter((s) => s.length > 0);
  const prompts = opts.prompts ?? sequences.map((s) => s.slice(0, 8));
  const newTokens = opts.newTokens ?? 32;

  const base = await DecoderSession.create(compiledBase.modelPath, cfg, { threads: opts.threads });
  const other = await DecoderSession.create(compiledVariant.modelPath, cfg, { threads: opts.threads });
  try {
    const forwardMs = { baseline: 0, variant: 0 };
    const logitsOf = async (session: DecoderSession, ids: number[], which: 'baseline' | 'variant') => {
      const t0 = performance.now();
      const { logits } = await teacherForce(session, ids, { logitPositions: ids.map((_, t) => t) });
      forwardMs[which] += performance.now() - t0;
      return logits;
    };

    let positions = 0;
    let maxAbs = 0;
    let sumAbs = 0;
    let argmaxSame = 0;
    let sumKl = 0;
    let maxKl = 0;
    for (const ids of sequences) {
      const a = await logitsOf(base, ids, 'baseline');
      const b = await logitsOf(other, ids, 'variant');
      for (let t = 0; t < ids.length; t++) {
        const off = t * V;
        for (let i = 0; i < V; i++) {
          const d = Math.abs(a[off + i]! - b[off + i]!);
          sumAbs += d;
          if (d > maxAbs) maxAbs = d;
        }
        if (argmax(a, off, V) === argmax(b, off, V)) argmaxSame++;
        const la = logSoftmax(a, off, V);
        const lb = logSoftmax(b, off, V);
        let kl = 0;
        for (let i = 0; i < V; i++) kl += Math.exp(la[i]!) * (la[i]! - lb[i]!);
        kl = Math.max(0, kl); // rounding can leave a tiny negative
        sumKl += kl;
        if (kl > maxKl) maxKl = kl;
        positions++;
      }
    }

    let same = 0;
    let total = 0;
    let identical = 0;
    let prefixSum = 0;
    for (const prompt of prompts) {
      const x = await greedy(base, prompt, newTokens);
      const y = await greedy(other, prompt, newTokens);
      let prefix = 0;
      while (prefix < x.length && x[prefix] === y[prefix]) prefix++;
      for (let i = 0; i < x.length; i++) if (x[i] === y[i]) same++;
      total += x.length;
      prefixSum += prefix;
      if (prefix === x.length) identical++;
    }

    return {
      baseline: compiledBase.options,
      variant: compiledVariant.options,
      positions,
      maxAbsLogitDiff: maxAbs,
      meanAbsLogitDiff: positions ? sumAbs / (positions * V) : 0,
      meanKl: positions ? sumKl / positions : 0,
      maxKl,
      greedyAgreement: {
        argmax: positions ? argmaxSame / positions : 1,
        continuation: total ? same / total : 1,
        identical: prompts.length ? identical / prompts.length : 1,
        meanCommonPrefix: prompts.length ? prefixSum / prompts.length : 0,
        prompts: prompts.length,
        newTokens,
      },
      weightsBytes: { baseline: weightsSize(compiledBase), variant: weightsSize(compiledVariant) },
      forwardMs,
    };
  } finally {
    await base.release();
    await other.release();
  }
}

/** A short human-readable summary of a report, one fact per line. */
export function formatPrecisionReport(r: PrecisionReport): string {
  const v = r.variant;
  const name = [
    v.weights === 'int4' ? `int4 (block ${v.int4BlockSize}, ${v.int4Scheme}, accuracy_level ${v.int4AccuracyLevel}${v.quantizeLmHead ? ', LM head too' : ''})` : 'float32 weights',
    `${v.activations} activations`,
  ].join(', ');
  const mb = (n: number) => (n < 2 ** 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 2 ** 20).toFixed(1)} MiB`);
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const g = r.greedyAgreement;
  return [
    `${name} vs float32, over ${r.positions} positions:`,
    `  logits      max |Δ| ${r.maxAbsLogitDiff.toPrecision(3)}, mean |Δ| ${r.meanAbsLogitDiff.toPrecision(3)}`,
    `  KL          mean ${r.meanKl.toPrecision(3)} nats, max ${r.maxKl.toPrecision(3)}`,
    `  top token   same at ${pct(g.argmax)} of positions`,
    `  greedy      ${pct(g.continuation)} of ${g.newTokens}-token continuations match token for token; ` +
      `${pct(g.identical)} identical; first difference after ${g.meanCommonPrefix.toFixed(1)} tokens on average`,
    `  weights     ${mb(r.weightsBytes.variant)} vs ${mb(r.weightsBytes.baseline)}`,
  ].join('\n');
}
