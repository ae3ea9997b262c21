/**
 * The one API contract between Cliffscope's engine and its three faces (the Electron app, the CLI, `serve` mode).
 *
 * Every method is a name → { params, result } pair of zod schemas. The main process (or the serve server, or the
 * CLI) validates a request with `validateRequest` before any handler sees it, and validates what the handler returns
 * with `validateResult` before it crosses the boundary; clients validate again on their side. Schemas here must stay
 * JSON-safe and transform-free, so the wire shape and the TypeScript type are the same thing.
 *
 * This module is imported by the renderer as well as by Node code: it must not import anything from Node or Electron.
 */
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------------------------------
// Methods

/** `app.info`: takes no params (`{}` or nothing). */
export const AppInfoParams = z.strictObject({});

export const AppInfoResult = z.strictObject({
  /** package.json `name`. */
  name: z.string().min(1),
  /** package.json `version`. */
  version: z.string().min(1),
  /** The engine's own version, once the engine declares one apart from the app's. */
  engineVersion: z.string().min(1).optional(),
  /** `process.platform` of the process running the engine, e.g. `linux`. */
  platform: z.string().min(1),
  /** `process.arch`, e.g. `x64`. */
  arch: z.string().min(1),
  versions: z.strictObject({
    node: z.string().min(1),
    /** null outside Electron (CLI, serve). */
    electron: z.string().min(1).nullable(),
    /** Chromium's version; null outside Electron. */
    chrome: z.string().min(1).nullable(),
  }),
  /** Version of the onnxruntime-node package the engine runs on. */
  onnxruntimeVersion: z.string().min(1),
  /** Execution providers the engine can use here, best-effort order as the engine reports them; always has `cpu`. */
  providers: z.array(z.string().min(1)),
  /**
   * Providers this ONNX Runtime build lists but that cannot be used here (e.g. `cuda` when its libraries were not
   * installed, `tensorrt`). Disjoint from `providers`.
   */
  unavailableProviders: z.array(z.string().min(1)),
});

export const ModelInspectParams = z.strictObject({
  /** A Hugging Face checkpoint folder (config.json + *.safetensors). */
  dir: z.string().trim().min(1, 'must name a model folder').max(4096, 'path too long'),
});

const count = z.number().int().nonnegative();
const positive = z.number().int().positive();

export const ModelInspectResult = z.strictObject({
  /** HF class name, e.g. `Qwen2ForCausalLM`. */
  architecture: z.string().min(1),
  family: z.enum(['llama', 'qwen2', 'qwen3', 'mistral']),
  layers: positive,
  heads: positive,
  kvHeads: positive,
  headDim: positive,
  hidden: positive,
  vocab: positive,
  /** Distinct tensor dtypes in the checkpoint, sorted, e.g. `["BF16"]`. */
  dtypes: z.array(z.string().min(1)),
  /** Total number of weights over all tensors (tied embeddings counted once). */
  parameters: count,
  /** The LM head shares the embedding matrix. */
  tied: z.boolean(),
});

/** How to load a model: the checkpoint folder plus the runtime choices that change what runs. */
export const ModelRef = z.strictObject({
  dir: z.string().trim().min(1, 'must name a model folder').max(4096, 'path too long'),
  /** Rescale each token's multi-head output to its pre-ablation norm (the paper's variant). */
  normPreserve: z.boolean().optional(),
  provider: z.enum(['auto', 'cpu', 'cuda', 'dml', 'coreml', 'webgpu']).optional(),
  threads: z.number().int().min(1).max(1024).optional(),
});
export type ModelRef = z.infer<typeof ModelRef>;

const finiteNumber = z.number().refine(Number.isFinite, 'must be a finite number');

export const GenerateRunParams = z.strictObject({
  model: ModelRef,
  prompts: z.array(z.string().max(1_000_000)).min(1).max(100_000),
  /** Wrap each prompt as a user message in the model's chat template (with the generation prompt). */
  chat: z.boolean().optional(),
  system: z.string().max(100_000).optional(),
  maxNewTokens: z.number().int().min(0).max(131_072),
  /** Omitted = greedy. */
  sampling: z
    .strictObject({
      temperature: z.number().positive().max(100),
      topP: z.number().gt(0).max(1).optional(),
      topK: z.number().int().min(0).optional(),
      repetitionPenalty: z.number().positive().max(100).optional(),
      seed: z.number().int().min(0).max(2 ** 32 - 1).optional(),
    })
    .optional(),
  stop: z.array(z.string().min(1)).max(64).optional(),
  /** γ per [layer][head] for every prompt; checked against the model's shape by the engine. */
  headScale: z.array(z.array(finiteNumber)).optional(),
  batchSize: z.number().int().min(1).max(1024).optional(),
  /** A linear probe scored live on every token: stack index (0 = embeddings, i+1 = after block i, L+1 = final norm). */
  probe: z.strictObject({ layer: z.number().int().min(0), weights: z.array(finiteNumber).min(1), bias: finiteNumber }).optional(),
});

const tokenIndex = z.number().int().nonnegative().nullable();

export const Transcript = z.strictObject({
  prompt: z.string(),
  inputIds: z.array(z.number().int().nonnegative()),
  outputIds: z.array(z.number().int().nonnegative()),
  text: z.string(),
  thinking: z.string(),
  answer: z.string(),
  finishReason: z.enum(['eos', 'stop-string', 'length', 'context', 'cancelled']),
  thinkOpen: tokenIndex,
  thinkClose: tokenIndex,
  answerBoundary: tokenIndex,
  /** The live probe's score per transcript position (prompt + output); null where none was computed. */
  scores: z.array(z.number().nullable()).optional(),
});
export type Transcript = z.infer<typeof Transcript>;

export const GenerateRunResult = z.strictObject({
  /** The execution provider that ran the model. */
  provider: z.string().min(1),
  transcripts: z.array(Transcript),
  seconds: z.number().nonnegative(),
});

/** Every method the engine answers. Add new ones here; the handler table and the clients follow the types. */
export const api = {
  'app.info': { params: AppInfoParams, result: AppInfoResult },
  'model.inspect': { params: ModelInspectParams, result: ModelInspectResult },
  'generate.run': { params: GenerateRunParams, result: GenerateRunResult },
} as const satisfies Record<string, { params: z.ZodType; result: z.ZodType }>;

export type Api = typeof api;
export type Method = keyof Api;
export type ParamsOf<M extends Method> = z.infer<Api[M]['params']>;
export type ResultOf<M extends Method> = z.infer<Api[M]['result']>;

export type AppInfo = ResultOf<'app.info'>;
export type ModelInspection = ResultOf<'model.inspect'>;

export const METHODS = Object.freeze(Object.keys(api) as Method[]);

export function isMethod(name: unknown): name is Method {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(api, name);
}

/** Methods whose params may be left out entirely (every field optional). */
type ParamsArgs<M extends Method> =
  Record<never, never> extends ParamsOf<M> ? [params?: ParamsOf<M>] : [params: ParamsOf<M>];

/** A typed client: one async function per method. The preload bridge, the serve web client and the CLI share it. */
export type ApiClient = { readonly [M in Method]: (...args: ParamsArgs<M>) => Promise<ResultOf<M>> };

/** The generic form of one call. */
export type ApiInvoke = <M extends Method>(method: M, ...args: ParamsArgs<M>) => Promise<ResultOf<M>>;

// ---------------------------------------------------------------------------------------------------------------------
// Validation

export interface ContractIssue {
  /** Dotted path to the field at fault, e.g. `dir` or `versions.node`; empty for the whole value. */
  path: string;
  message: string;
}

export type ContractErrorCode = 'unknown-method' | 'bad-params' | 'bad-result' | 'bad-message';

/** A payload did not match the contract. `message` names the method and every field at fault. */
export class ContractError extends Error {
  readonly code: ContractErrorCode;
  readonly issues: ContractIssue[];

  constructor(code: ContractErrorCode, message: string, issues: ContractIssue[] = []) {
    super(message);
    this.name = 'ContractError';
    this.code = code;
    this.issues = issues;
  }
}

export function isContractError(e: unknown): e is ContractError {
  return e instanceof ContractError;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out;
}

/** zod issues → one issue per field, with unknown keys reported under their own names. */
export function toIssues(error: z.ZodError): ContractIssue[] {
  const issues: ContractIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        issues.push({ path: formatPath([...issue.path, key]), message: 'unknown field' });
      }
    } else {
      issues.push({ path: formatPath(issue.path), message: issue.message });
    }
  }
  return issues;
}

function describeIssues(issues: ContractIssue[]): string {
  return issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
}

/** "required (expected string)" instead of zod's "expected string, received undefined" for a missing field. */
function missingFieldMessage(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code === 'invalid_type' && issue.input === undefined && issue.path && issue.path.length > 0) {
    return `required (expected ${issue.expected})`;
  }
  return undefined;
}

function parseWith<T extends z.ZodType>(
  schema: T,
  value: unknown,
  code: ContractErrorCode,
  what: string,
): z.infer<T> {
  const parsed = schema.safeParse(value, { error: missingFieldMessage });
  if (parsed.success) return parsed.data;
  const issues = toIssues(parsed.error);
  throw new ContractError(code, `${what}: ${describeIssues(issues)}`, issues);
}

function requireMethod(method: unknown): Method {
  if (isMethod(method)) return method;
  const shown = typeof method === 'string' ? `"${method}"` : `a ${method === null ? 'null' : typeof method}`;
  throw new ContractError('unknown-method', `unknown method ${shown}; known methods: ${METHODS.join(', ')}`, [
    { path: 'method', message: `unknown method ${shown}` },
  ]);
}

export type ValidatedRequest = { [M in Method]: { method: M; params: ParamsOf<M> } }[Method];

/**
 * Check a request from outside (IPC, HTTP, CLI argv): the method must exist and the params must match its schema
 * exactly (no missing, mistyped or extra fields). `undefined` params count as `{}`. Throws a `ContractError` whose
 * message names the method and each field at fault.
 */
export function validateRequest<M extends Method>(method: M, params: unknown): { method: M; params: ParamsOf<M> };
export function validateRequest(method: unknown, params: unknown): ValidatedRequest;
export function validateRequest(method: unknown, params: unknown): ValidatedRequest {
  const m = requireMethod(method);
  const value = parseWith(api[m].params, params === undefined ? {} : params, 'bad-params', `invalid params for ${m}`);
  return { method: m, params: value } as ValidatedRequest;
}

/** Check what a handler (or a server) returned for `method`. Throws a `ContractError` naming each field at fault. */
export function validateResult<M extends Method>(method: M, result: unknown): ResultOf<M> {
  const m = requireMethod(method);
  return parseWith(api[m].result, result, 'bad-result', `invalid result from ${m}`) as ResultOf<M>;
}

// ---------------------------------------------------------------------------------------------------------------------
// Wire envelopes (IPC reply, HTTP body)

/** An error as it crosses the boundary: plain data, no stack. Engine errors keep their code, file and hint. */
export const ApiErrorInfo = z.strictObject({
  /** `unknown-method`, `bad-params`, `bad-result`, `forbidden`, an engine error code, or `internal`. */
  code: z.string().min(1),
  message: z.string(),
  file: z.string().optional(),
  hint: z.string().optional(),
  issues: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
});
export type ApiErrorInfo = z.infer<typeof ApiErrorInfo>;

/** The body of a request in serve mode (`POST /api/invoke`). */
export const ApiRequest = z.strictObject({
  method: z.string().min(1),
  params: z.unknown().optional(),
});
export type ApiRequest = z.infer<typeof ApiRequest>;

/** What every transport answers: a result or an error, never a thrown exception across the boundary. */
export const ApiResponse = z.discriminatedUnion('ok', [
  z.strictObject({ ok: z.literal(true), result: z.unknown() }),
  z.strictObject({ ok: z.literal(false), error: ApiErrorInfo }),
]);
export type ApiResponse<R = unknown> = { ok: true; result: R } | { ok: false; error: ApiErrorInfo };

export function validateResponse(value: unknown): ApiResponse {
  return parseWith(ApiResponse, value, 'bad-message', 'malformed API response') as ApiResponse;
}

// ---------------------------------------------------------------------------------------------------------------------
// Job events: what a long job (compile, sweep, probe training) streams while it runs.

const jobId = z.string().min(1).max(128);
/** Milliseconds since the Unix epoch when the event was emitted. */
const at = z.number().int().nonnegative();

export const JobEvent = z.discriminatedUnion('kind', [
  z.strictObject({
    jobId,
    at,
    kind: z.literal('progress'),
    /** Units finished so far. */
    done: z.number().nonnegative(),
    /** Units in all; null while unknown. */
    total: z.number().positive().nullable(),
    /** What is being worked on now, e.g. `layer 12/28`. */
    label: z.string().optional(),
  }),
  z.strictObject({
    jobId,
    at,
    kind: z.literal('log'),
    level: z.enum(['debug', 'info', 'warn', 'error']),
    message: z.string(),
  }),
  z.strictObject({
    jobId,
    at,
    kind: z.literal('token'),
    /** Which prompt of the call (index into its prompts). */
    prompt: z.number().int().nonnegative(),
    tokenId: z.number().int().nonnegative(),
    /** Position of the token in the transcript (prompt + output). */
    position: z.number().int().nonnegative(),
    /** The text this token adds to the prompt's output (may be empty mid-character). */
    text: z.string(),
  }),
  z.strictObject({
    jobId,
    at,
    kind: z.literal('done'),
    /** The job's result, validated against its own method's schema by whoever started it. */
    result: z.unknown().optional(),
  }),
  z.strictObject({
    jobId,
    at,
    kind: z.literal('error'),
    error: ApiErrorInfo,
  }),
]);
export type JobEvent = z.infer<typeof JobEvent>;
export type JobEventKind = JobEvent['kind'];

export function validateJobEvent(value: unknown): JobEvent {
  return parseWith(JobEvent, value, 'bad-message', 'malformed job event');
}
