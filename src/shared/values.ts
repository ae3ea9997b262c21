/**
 * The value schemas every API method and every run kind shares: ids, paths, counts, how a model is loaded, sampling,
 * γ matrices and where transcripts come from. Each range is checked here once, so the CLI, `serve` and the app
 * refuse the same values with the same message before anything runs. Pure zod: imported by the renderer too.
 */
import { z } from 'zod';

export const count = z.number().int().nonnegative();
export const positive = z.number().int().positive();
export const rowId = z.number().int().positive();
export const finiteNumber = z.number().refine(Number.isFinite, 'must be a finite number');
/** A number that may be unknown (null): a metric with nothing to average, a NaN score. */
export const maybeNumber = z.number().nullable();
export const jsonObject = z.record(z.string(), z.json());
/** A score per token; null where none was computed (NaN in the engine). */
export const scoreList = z.array(z.number().nullable());
export const filePath = z.string().trim().min(1, 'must name a file').max(4096, 'path too long');
export const seed = z.number().int().min(0).max(2 ** 32 - 1);
export const fraction01 = z.number().min(0).max(1);
export const maxNewTokens = z.number().int().min(1, 'must generate at least 1 token').max(131_072);
export const batchSize = z.number().int().min(1).max(1024);

/** A run's name: one line (for a probe run, also its probes' name). */
export const runName = z.string().trim().min(1).max(200);

/** At most this many tags per run. */
export const MAX_RUN_TAGS = 32;
/** A run's tag: a short label for filtering and grouping runs ("baseline", "7b"). Forms and the CLI take them comma-separated. */
export const runTag = z
  .string()
  .trim()
  .min(1, 'a tag cannot be empty')
  .max(64, 'a tag has at most 64 characters')
  .regex(/^[^,\n\r]+$/, 'a tag cannot hold a comma or a line break');
/** A run's tags, each once. */
export const RunTags = z
  .array(runTag)
  .max(MAX_RUN_TAGS, `at most ${MAX_RUN_TAGS} tags`)
  .refine((tags) => new Set(tags).size === tags.length, 'each tag once');

/** Tags typed as one comma-separated line ("baseline, 7b") → the list (empty parts dropped, each once, in order). */
export function parseTags(text: string): string[] {
  return [...new Set(text.split(',').map((t) => t.trim()).filter(Boolean))];
}

export const PROVIDERS = ['auto', 'cpu', 'cuda', 'dml', 'coreml', 'webgpu'] as const;

/** Where a model ran, for people: the provider, then why `auto` skipped better ones ("cpu (cuda: … not found)"). */
export function describeProvider(provider: string, notes: readonly string[]): string {
  return notes.length ? `${provider} (${notes.join('; ')})` : provider;
}

/** How the compiled graph stores its KV cache between steps (the compile option `kvCache`). */
export const KV_CACHE_TYPES = ['float32', 'float16', 'int8'] as const;
export type KvCacheType = (typeof KV_CACHE_TYPES)[number];

/** Weight / activation precision of the compiled graph (see `cliffscope precision`); default float32. */
export const Precision = z
  .strictObject({
    weights: z.enum(['float32', 'int4']).optional(),
    activations: z.enum(['float32', 'float16']).optional(),
    int4BlockSize: z.union([z.literal(16), z.literal(32), z.literal(64), z.literal(128)]).optional(),
    int4Scheme: z.enum(['asymmetric', 'symmetric']).optional(),
    int4AccuracyLevel: z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3), z.literal(4)]).optional(),
    quantizeLmHead: z.boolean().optional(),
    /** KV cache storage; default the compute type (float32, or float16 with float16 activations). Lossy below it. */
    kvCache: z.enum(KV_CACHE_TYPES).optional(),
  })
  .refine((p) => p.weights === 'int4' || (p.int4BlockSize ?? p.int4Scheme ?? p.int4AccuracyLevel ?? p.quantizeLmHead) === undefined, {
    message: 'must be int4 for the int4 options (block size, scheme, accuracy level, LM head)',
    path: ['weights'],
  });
export type Precision = z.infer<typeof Precision>;

/** ONNX Runtime intra-op threads (a machine has far fewer cores than the cap). */
export const threads = z.number().int().min(1).max(1024);

/** How to load a model: the checkpoint folder plus the runtime choices that change what runs. */
export const ModelRef = z.strictObject({
  dir: z.string().trim().min(1, 'must name a model folder').max(4096, 'path too long'),
  /** Rescale each token's multi-head output to its pre-ablation norm (the paper's variant). */
  normPreserve: z.boolean().optional(),
  provider: z.enum(PROVIDERS).optional(),
  threads: threads.optional(),
  precision: Precision.optional(),
  /** The compiled-model cache (default: $CLIFFSCOPE_CACHE or ~/.cache/cliffscope). */
  cache: filePath.optional(),
});
export type ModelRef = z.infer<typeof ModelRef>;

/** Decoding: omitted, or temperature 0, is greedy. The same ranges for one-off generation and for runs. */
export const Sampling = z.strictObject({
  /** > 0: sample at this temperature; 0 = greedy. */
  temperature: z.number().min(0).max(100).optional(),
  /** Nucleus mass (1 = off). */
  topP: z.number().gt(0).max(1).optional(),
  /** Keep the K most likely tokens (0 = off). */
  topK: z.number().int().min(0).max(1_000_000).optional(),
  /** transformers-style repetition penalty (1 = off). */
  repetitionPenalty: z.number().positive().max(100).optional(),
});
export type Sampling = z.infer<typeof Sampling>;

/** γ per [layer][head] (1 = unchanged, 0 = removed); its size is checked against the model by the engine. */
export const HeadScale = z.array(z.array(finiteNumber).min(1)).min(1);

/** An attention head by block index (`blocks.{layer}`) and head. */
export const HeadRefSchema = z.strictObject({ layer: count, head: count });

/**
 * A residual-stack index: 0 = embeddings (hook_embed), i+1 = after block i (blocks.{i}.hook_resid_post),
 * L+1 = the final norm (ln_final.hook_normalized). What a probe reads; not a block index.
 */
export const residIndex = count;

/** Where a pipeline's transcripts come from: a run's stored transcripts, or a dataset's (prompt, response) pairs. */
export const TranscriptSource = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('run'), runId: rowId, headScaleKey: z.string().optional() }),
  z.strictObject({ kind: z.literal('dataset'), datasetId: rowId, chat: z.boolean() }),
]);
export type TranscriptSource = z.infer<typeof TranscriptSource>;

export const PositionRule = z.enum(['answer-boundary', 'last-prompt-token']);
export type PositionRule = z.infer<typeof PositionRule>;
