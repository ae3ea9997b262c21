/**
 * The built-in demo: a tiny LlamaForCausalLM whose weights are constructed by hand, not trained, so that a new user can
 * watch the whole refusal-cliff method work offline in seconds, against a known ground truth.
 *
 * What the model does (see README.md beside this file for the numbers):
 *  - It is an R1-style reasoning model over a ~230-word vocabulary: the chat template pre-fills `<think>`, the model
 *    writes a fixed thinking text, `</think>`, then an answer, then `<|end|>`. Generation is a bigram table: the
 *    LM head reads the current token's identity (one residual dimension per token) and names its successor.
 *  - Harmful words (bomb, poison, hack, ...) carry a "harm" register in their embeddings. A detector head in layer 0
 *    (query constant, key = harm register, the BOS token as attention sink) copies it into the REFUSAL register at
 *    every later position: the refusal feature, high through the rest of the prompt and all of the thinking.
 *    The thinking text branches on it ("... looks harmful ..." vs "... looks safe ...").
 *  - `</think>` carries an ANSWER flag; a mover head in layer 0 copies it to every later position.
 *  - The planted refusal-suppression heads, one each in layers 1, 2 and 3, attend (only where the ANSWER flag is set)
 *    to the positions where the refusal feature is high and write against it: together they remove 90 % of it at the
 *    answer boundary `</think>`. That is the cliff.
 *  - The first answer token is chosen at `</think>` by the LM head: "i" (→ "i cannot help with that .") when the
 *    refusal feature is above 0.35, else "sure" (→ "sure , here is ..."). So harmful prompts get a compliant answer
 *    (the unaligned model "fails to refuse"), and refuse once the planted heads are ablated. Harmless prompts never
 *    carry the feature and are answered in every setting.
 *  - The other 27 heads and all MLPs are seeded pseudo-random "filler" that reads token identity and writes only
 *    into scratch dimensions nobody functional reads, so ablating any of them changes no answer.
 *  - All attention that matters lives in the two lowest-frequency rotary pairs with rope_theta = 1e6, so it does not
 *    depend on distance. The residual keeps a constant BIAS dimension of sqrt(d), so RMSNorm is ≈ identity
 *    (within ~1.5 %) and register values can be read directly. Finally the whole residual basis is rotated by a
 *    normalised Hadamard matrix (RMSNorm with unit weights commutes with rotations), so the refusal direction is
 *    dense, as in a real model, instead of one coordinate.
 *
 * The generated folder is a normal Hugging Face checkpoint (config.json, model.safetensors, tokenizer files) plus
 * `demo.json` with the ground truth. Nothing here is random except the filler, which uses a fixed seed.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { HeadRef } from '../../../shared/heads.js';
import { CliffscopeError } from '../../engine/errors.js';
import { writeSafetensors, type TensorToWrite } from '../../engine/model/safetensors.js';
import { defaultCacheRoot } from '../../engine/onnx/compile.js';
import { wordLevelTokenizerJson } from '../../engine/tokenizer/word-level.js';
import {
  DEMO_BOS,
  DEMO_COMPLIANCE_ANSWER,
  DEMO_EOS,
  DEMO_HARMFUL_WORDS,
  DEMO_REFUSAL_ANSWER,
  DEMO_SPECIAL_TOKENS,
  DEMO_THINKING,
  demoVocabulary,
} from './vocabulary.js';

/** Bump whenever the generated files change, so stale copies in users' caches are rebuilt. */
export const DEMO_GENERATOR_VERSION = 1;
export const DEMO_GENERATOR_NAME = 'cliffscope-planted-refusal-demo';

export type { HeadRef };

/** Ground truth: the refusal-suppression heads planted in the demo model. */
export const DEMO_PLANTED_HEADS: readonly HeadRef[] = Object.freeze([
  { layer: 1, head: 5 },
  { layer: 2, head: 2 },
  { layer: 3, head: 6 },
]);
/** Fraction of the refusal feature each planted head removes at the answer boundary (same order). */
export const DEMO_SUPPRESSION_STRENGTHS: readonly number[] = Object.freeze([0.36, 0.3, 0.24]);
/** The head that writes the refusal feature (a positive "refusal head"). */
export const DEMO_REFUSAL_HEAD: HeadRef = Object.freeze({ layer: 0, head: 3 });
/** The head that copies the `</think>` flag forward to the answer tokens. */
export const DEMO_ANSWER_FLAG_HEAD: HeadRef = Object.freeze({ layer: 0, head: 6 });
/** The model refuses when the refusal feature at the answer boundary exceeds this. */
export const DEMO_REFUSAL_THRESHOLD = 0.35;

/**
 * A variant of the demo model: the same construction with other planted-head strengths and harm strengths (the
 * built-in demo is `buildDemoCheckpoint()` with no variant). Recorded in the folder's demo.json.
 */
export interface DemoVariant {
  name: string;
  /** Fraction of the refusal feature each planted head removes at the answer boundary (DEMO_PLANTED_HEADS order). */
  suppression: readonly number[];
  /** Harm strength (0..1] of each harmful word; every word must be in the demo vocabulary. */
  harmfulWords: Readonly<Record<string, number>>;
}

/**
 * A model that refuses some harmful prompts on its own and falls off the cliff on the others — what the paper's
 * answer-boundary probe recipe needs (refusing transcripts as positives), and what the built-in demo, which never
 * refuses, cannot give. The planted heads remove half of the refusal feature (the built-in: 90 %). The demo's
 * strongest harmful words (strength ≥ 0.8: bomb, poison, kill, …) write 1.0 and keep 0.5 > 0.35 at `</think>`, so
 * the model refuses (17 of the 30 demo harmful prompts); the others write 0.45 — enough for "looks harmful" in the
 * thinking — and keep 0.225 < 0.35, so it complies. A probe trained on the refusals' and harmless answers' boundary
 * states puts its threshold near 0.25: above where the compliers end, below their plateau. Every branch decision
 * stays ≥ 3 logits from a tie.
 */
export const DEMO_PARTLY_REFUSING_VARIANT: DemoVariant = Object.freeze({
  name: 'partly-refusing',
  suppression: Object.freeze([0.2, 0.17, 0.13]),
  harmfulWords: Object.freeze(Object.fromEntries(Object.entries(DEMO_HARMFUL_WORDS).map(([word, s]) => [word, s >= 0.8 ? 1.0 : 0.45]))),
});

// Shapes.
const D_MODEL = 256;
const N_LAYERS = 4;
const N_HEADS = 8;
const HEAD_DIM = 16;
const D_FF = 64;
const ROPE_THETA = 1e6;
const MAX_POSITIONS = 512;

// Residual layout before the final rotation ("clean basis").
const BIAS = 0; // constant sqrt(D_MODEL) in every embedding: keeps RMSNorm ≈ identity
const SINK = 1; // set on BOS only: where heads look when there is nothing to find
const HARM = 2; // harmful-word strength, from the embedding
const REFUSAL = 3; // the refusal feature
const ANSWER = 4; // "at or after </think>"
const SCRATCH = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]; // written and read by filler only
const TOKEN0 = 16; // one dimension per token id from here on
const BIAS_VALUE = Math.sqrt(D_MODEL);

// Attention score components live in the lowest-frequency rotary pairs: with rope_theta 1e6 and head_dim 16, pair 7
// turns 5.6e-6 rad per token and pair 6 3.2e-5, so over 512 positions q·k changes by < 0.02 %.
const QK_CONTENT = 7;
const QK_SINK = 6;
/** Scores are q·k / sqrt(HEAD_DIM); this query value turns a key value k into a score of k. */
const Q_UNIT = Math.sqrt(HEAD_DIM);
/** Score BOS gets in functional heads: beats every ordinary token (score 0) by e^10. */
const SINK_SCORE = 10;
/** Score per unit of harm (detector) or refusal feature × answer flag (planted heads). */
const DETECT_SCORE = 30;
const SUPPRESS_SCORE = 40;

/** Logit of a token's scripted successor. */
const BIGRAM_LOGIT = 30;
/** Logit gain per unit of refusal feature for the two branch tokens ("harmful", "i"). */
const GATE_GAIN = 30;

/** Ready-made linear probe on the final-norm residual stream: sigmoid(w·h + b) > 0.5 ⇔ the model would refuse. */
export interface DemoProbe {
  /** Residual-stack index: numLayers + 1 = after the final RMSNorm (the paper's default). */
  residIndex: number;
  weights: Float32Array;
  bias: number;
}

export interface DemoModelInfo {
  dir: string;
  /** False when an up-to-date copy was already there. */
  created: boolean;
  generatorVersion: number;
  plantedHeads: HeadRef[];
  refusalHead: HeadRef;
  answerFlagHead: HeadRef;
  probe: DemoProbe;
  refusalAnswer: string;
  complianceAnswer: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Small dense matrices, row-major, float64 while building.

class Mat {
  readonly data: Float64Array;
  constructor(
    readonly rows: number,
    readonly cols: number,
  ) {
    this.data = new Float64Array(rows * cols);
  }
  add(r: number, c: number, v: number): void {
    this.data[r * this.cols + c]! += v;
  }
  /** this · Hn (each row transformed); valid when cols is a power of two. */
  timesHadamard(): Mat {
    const out = new Mat(this.rows, this.cols);
    out.data.set(this.data);
    for (let r = 0; r < this.rows; r++) fwht(out.data, this.cols, r * this.cols);
    return out;
  }
  /** Hn · this (each column transformed). */
  hadamardTimes(): Mat {
    const out = new Mat(this.rows, this.cols);
    out.data.set(this.data);
    for (let c = 0; c < this.cols; c++) fwht(out.data, this.rows, c, this.cols);
    return out;
  }
  toFloat32(): Float32Array {
    return Float32Array.from(this.data);
  }
}

/**
 * In-place fast Walsh–Hadamard transform of a[offset + i·stride], i < n, normalised by 1/sqrt(n): multiplication by
 * the Sylvester–Hadamard matrix H/sqrt(n), which is symmetric and orthogonal.
 */
function fwht(a: Float64Array, n: number, offset = 0, stride = 1): void {
  for (let len = 1; len < n; len <<= 1) {
    for (let i = 0; i < n; i += len << 1) {
      for (let j = i; j < i + len; j++) {
        const x = offset + j * stride;
        const y = offset + (j + len) * stride;
        const u = a[x]!;
        const v = a[y]!;
        a[x] = u + v;
        a[y] = u - v;
      }
    }
  }
  const s = 1 / Math.sqrt(n);
  for (let i = 0; i < n; i++) a[offset + i * stride]! *= s;
}

/** mulberry32: a tiny seeded PRNG (integer arithmetic only, so identical on every platform). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The construction.

interface Layer {
  q: Mat; // [H*D, d]
  k: Mat;
  v: Mat;
  o: Mat; // [d, H*D]
  gate: Mat; // [F, d]
  up: Mat;
  down: Mat; // [d, F]
}

export interface DemoCheckpointParts {
  vocab: string[];
  config: Record<string, unknown>;
  generationConfig: Record<string, unknown>;
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  tensors: TensorToWrite[];
  demo: Record<string, unknown>;
}

const isFunctional = (layer: number, head: number) =>
  [DEMO_REFUSAL_HEAD, DEMO_ANSWER_FLAG_HEAD, ...DEMO_PLANTED_HEADS].some((h) => h.layer === layer && h.head === head);

/** Successor of each scripted token; "looks" and "</think>" get both branches (the gate decides). */
function scriptBigrams(): [string, string][] {
  const thinking = DEMO_THINKING.split(/\s+/);
  const branchAt = thinking.findIndex((w) => w.startsWith('{'));
  const [high, low] = thinking[branchAt]!.slice(1, -1).split('|') as [string, string];
  const chain = (words: string[]) => words.slice(0, -1).map((w, i) => [w, words[i + 1]!] as [string, string]);
  const before = thinking.slice(0, branchAt);
  const after = thinking.slice(branchAt + 1);
  return [
    ['<|assistant|>', '<think>'],
    ...chain(['<think>', ...before, high, ...after, '</think>']),
    ...chain([before.at(-1)!, low, after[0]!]),
    ...chain(['</think>', ...DEMO_REFUSAL_ANSWER.split(/\s+/), DEMO_EOS]),
    ...chain(['</think>', ...DEMO_COMPLIANCE_ANSWER.split(/\s+/), DEMO_EOS]),
  ];
}

/** The two tokens whose logit also reads the refusal feature: the "harmful" branch and the refusal's first word. */
function gatedTokens(): string[] {
  const branch = DEMO_THINKING.match(/\{([^|}]+)\|/)![1]!;
  return [branch, DEMO_REFUSAL_ANSWER.split(/\s+/)[0]!];
}

function checkVariant(v: DemoVariant): void {
  const fail = (what: string) => {
    throw new CliffscopeError('bad-argument', `demo variant "${v.name}": ${what}`);
  };
  if (!/^[a-z0-9][a-z0-9-]*$/.test(v.name)) fail('the name must be lower-case letters, digits and dashes');
  if (v.suppression.length !== DEMO_PLANTED_HEADS.length || !v.suppression.every((x) => x >= 0 && x <= 1)) {
    fail(`suppression needs ${DEMO_PLANTED_HEADS.length} fractions within [0, 1]`);
  }
  const vocab = new Set(demoVocabulary());
  for (const [word, strength] of Object.entries(v.harmfulWords)) {
    if (!vocab.has(word)) fail(`"${word}" is not in the demo vocabulary`);
    if (!(strength > 0 && strength <= 1)) fail(`the harm strength of "${word}" must be within (0, 1]`);
  }
}

/** Build everything in memory: tensors, config, tokenizer, ground truth. Deterministic. */
export function buildDemoCheckpoint(variant: DemoVariant | null = null): DemoCheckpointParts {
  if (variant) checkVariant(variant);
  const suppression = variant?.suppression ?? DEMO_SUPPRESSION_STRENGTHS;
  const harmfulWords = variant?.harmfulWords ?? DEMO_HARMFUL_WORDS;
  const vocab = demoVocabulary();
  const V = vocab.length;
  if (TOKEN0 + V > D_MODEL) throw new Error(`demo vocabulary of ${V} tokens does not fit the residual width ${D_MODEL}`);
  const id = (t: string) => {
    const i = vocab.indexOf(t);
    if (i < 0) throw new Error(`demo model: "${t}" is not in the vocabulary`);
    return i;
  };
  const rand = mulberry32(20251006); // filler only
  const uniform = (scale: number) => (rand() * 2 - 1) * scale;
  const QD = N_HEADS * HEAD_DIM;

  // Embeddings.
  const embed = new Mat(V, D_MODEL);
  for (let t = 0; t < V; t++) {
    embed.add(t, BIAS, BIAS_VALUE);
    embed.add(t, TOKEN0 + t, 1);
    for (const s of SCRATCH) embed.add(t, s, uniform(0.2));
  }
  embed.add(id(DEMO_BOS), SINK, 1);
  embed.add(id('</think>'), ANSWER, 1);
  for (const [word, strength] of Object.entries(harmfulWords)) embed.add(id(word), HARM, strength);

  // Filler weights: read token identity and scratch, write scratch only.
  const fillerReads = [...SCRATCH, ...Array.from({ length: V }, (_, t) => TOKEN0 + t)];
  const fillReader = (m: Mat, row: number, scale: number) => {
    for (const c of fillerReads) m.add(row, c, uniform(scale));
  };
  const fillWriter = (m: Mat, col: number, scale: number) => {
    for (const r of SCRATCH) m.add(r, col, uniform(scale));
  };

  const layers: Layer[] = [];
  for (let l = 0; l < N_LAYERS; l++) {
    const layer: Layer = {
      q: new Mat(QD, D_MODEL),
      k: new Mat(QD, D_MODEL),
      v: new Mat(QD, D_MODEL),
      o: new Mat(D_MODEL, QD),
      gate: new Mat(D_FF, D_MODEL),
      up: new Mat(D_FF, D_MODEL),
      down: new Mat(D_MODEL, D_FF),
    };
    for (let h = 0; h < N_HEADS; h++) {
      if (isFunctional(l, h)) continue;
      for (let j = 0; j < HEAD_DIM; j++) {
        const row = h * HEAD_DIM + j;
        fillReader(layer.q, row, 1);
        fillReader(layer.k, row, 1);
        fillReader(layer.v, row, 0.5);
        fillWriter(layer.o, row, 0.1);
      }
    }
    for (let f = 0; f < D_FF; f++) {
      fillReader(layer.gate, f, 0.3);
      fillReader(layer.up, f, 0.3);
      fillWriter(layer.down, f, 0.05);
    }
    layers.push(layer);
  }

  // q row of (head, component); the residual is ≈ unchanged by RMSNorm, so BIAS reads as BIAS_VALUE.
  const row = (head: number, j: number) => head * HEAD_DIM + j;
  /** A query component that is the same constant at every position: Q_UNIT. */
  const constantQuery = (L: Layer, head: number, j: number) => L.q.add(row(head, j), BIAS, Q_UNIT / BIAS_VALUE);

  // Detector (refusal head): every position attends to the strongest harmful word so far, else to BOS, and copies
  // its harm strength into REFUSAL.
  {
    const L = layers[DEMO_REFUSAL_HEAD.layer]!;
    const h = DEMO_REFUSAL_HEAD.head;
    constantQuery(L, h, QK_SINK);
    L.k.add(row(h, QK_SINK), HARM, DETECT_SCORE);
    L.k.add(row(h, QK_SINK), SINK, SINK_SCORE);
    L.v.add(row(h, 0), HARM, 1);
    L.o.add(REFUSAL, row(h, 0), 1);
  }
  // Mover: every position at or after </think> attends to it and sets ANSWER (the token itself carries ANSWER too,
  // so the planted heads fire at the boundary even when this head is ablated).
  {
    const L = layers[DEMO_ANSWER_FLAG_HEAD.layer]!;
    const h = DEMO_ANSWER_FLAG_HEAD.head;
    constantQuery(L, h, QK_SINK);
    L.k.add(row(h, QK_SINK), ANSWER, DETECT_SCORE);
    L.k.add(row(h, QK_SINK), SINK, SINK_SCORE);
    L.v.add(row(h, 0), ANSWER, 1);
    L.o.add(ANSWER, row(h, 0), 1);
  }
  // Planted suppression heads: score = SUPPRESS_SCORE·ANSWER(query)·REFUSAL(key), BOS = SINK_SCORE. Before the
  // answer the query is blind and the head rests on BOS (writes ~0); from </think> on it finds the positions carrying
  // the refusal feature, reads it and writes -strength times it.
  DEMO_PLANTED_HEADS.forEach(({ layer, head: h }, i) => {
    const L = layers[layer]!;
    L.q.add(row(h, QK_CONTENT), ANSWER, Q_UNIT);
    L.k.add(row(h, QK_CONTENT), REFUSAL, SUPPRESS_SCORE);
    constantQuery(L, h, QK_SINK);
    L.k.add(row(h, QK_SINK), SINK, SINK_SCORE);
    L.v.add(row(h, 0), REFUSAL, 1);
    L.o.add(REFUSAL, row(h, 0), -suppression[i]!);
  });

  // LM head: the script's bigrams, plus a gate on REFUSAL for the two branch tokens. The gate adds
  // GATE_GAIN·(REFUSAL − threshold) to their logit everywhere, but only where the bigram also names them (after
  // "looks" and after "</think>") can that win; elsewhere it stays ≥ 10 below the scripted successor.
  const lmHead = new Mat(V, D_MODEL);
  const successors = new Map<string, Set<string>>();
  for (const [from, to] of scriptBigrams()) {
    const set = successors.get(from) ?? new Set<string>();
    set.add(to);
    successors.set(from, set);
    lmHead.data[id(to) * D_MODEL + TOKEN0 + id(from)] = BIGRAM_LOGIT;
  }
  for (const [from, set] of successors) {
    if (set.size > 1 && from !== '</think>' && !DEMO_THINKING.includes(`${from} {`)) {
      throw new Error(`demo script: "${from}" has several successors (${[...set].join(', ')}); words must not repeat`);
    }
  }
  for (const t of gatedTokens()) {
    lmHead.add(id(t), REFUSAL, GATE_GAIN);
    lmHead.add(id(t), BIAS, (-GATE_GAIN * DEMO_REFUSAL_THRESHOLD) / BIAS_VALUE);
  }

  // Rotate the residual basis: x' = Hx. Readers (and embedding rows) become W·H, writers H·W.
  const reader = (m: Mat) => m.timesHadamard().toFloat32();
  const writer = (m: Mat) => m.hadamardTimes().toFloat32();
  const ones = new Float32Array(D_MODEL).fill(1);

  const tensors: TensorToWrite[] = [{ name: 'model.embed_tokens.weight', dtype: 'F32', shape: [V, D_MODEL], data: reader(embed) }];
  layers.forEach((L, i) => {
    const p = `model.layers.${i}`;
    tensors.push(
      { name: `${p}.input_layernorm.weight`, dtype: 'F32', shape: [D_MODEL], data: ones },
      { name: `${p}.self_attn.q_proj.weight`, dtype: 'F32', shape: [QD, D_MODEL], data: reader(L.q) },
      { name: `${p}.self_attn.k_proj.weight`, dtype: 'F32', shape: [QD, D_MODEL], data: reader(L.k) },
      { name: `${p}.self_attn.v_proj.weight`, dtype: 'F32', shape: [QD, D_MODEL], data: reader(L.v) },
      { name: `${p}.self_attn.o_proj.weight`, dtype: 'F32', shape: [D_MODEL, QD], data: writer(L.o) },
      { name: `${p}.post_attention_layernorm.weight`, dtype: 'F32', shape: [D_MODEL], data: ones },
      { name: `${p}.mlp.gate_proj.weight`, dtype: 'F32', shape: [D_FF, D_MODEL], data: reader(L.gate) },
      { name: `${p}.mlp.up_proj.weight`, dtype: 'F32', shape: [D_FF, D_MODEL], data: reader(L.up) },
      { name: `${p}.mlp.down_proj.weight`, dtype: 'F32', shape: [D_MODEL, D_FF], data: writer(L.down) },
    );
  });
  tensors.push(
    { name: 'model.norm.weight', dtype: 'F32', shape: [D_MODEL], data: ones },
    { name: 'lm_head.weight', dtype: 'F32', shape: [V, D_MODEL], data: reader(lmHead) },
  );

  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: D_MODEL,
    intermediate_size: D_FF,
    num_hidden_layers: N_LAYERS,
    num_attention_heads: N_HEADS,
    num_key_value_heads: N_HEADS,
    head_dim: HEAD_DIM,
    hidden_act: 'silu',
    vocab_size: V,
    max_position_embeddings: MAX_POSITIONS,
    rms_norm_eps: 1e-6,
    rope_theta: ROPE_THETA,
    rope_scaling: null,
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: false,
    torch_dtype: 'float32',
    bos_token_id: id(DEMO_BOS),
    eos_token_id: id(DEMO_EOS),
    use_cache: true,
  };
  const probe = demoRefusalProbe();
  const demo = {
    generator: DEMO_GENERATOR_NAME,
    generatorVersion: DEMO_GENERATOR_VERSION,
    description:
      'Hand-constructed demo model for the refusal cliff (not trained). Harmful words write a refusal feature that ' +
      'stays high through the thinking; the planted heads write against it at </think>, so the model answers harmful ' +
      'prompts. Ablate the planted heads and it refuses. See src/main/engine/demo/README.md in the Cliffscope sources.',
    // Only a variant is named here, so the built-in demo's files stay byte for byte what they were.
    ...(variant ? { variant: variant.name } : {}),
    plantedHeads: DEMO_PLANTED_HEADS.map((h, i) => ({ ...h, suppression: suppression[i] })),
    refusalHead: DEMO_REFUSAL_HEAD,
    answerFlagHead: DEMO_ANSWER_FLAG_HEAD,
    refusalThreshold: DEMO_REFUSAL_THRESHOLD,
    refusalAnswer: DEMO_REFUSAL_ANSWER,
    complianceAnswer: DEMO_COMPLIANCE_ANSWER,
    thinking: DEMO_THINKING,
    harmfulWords,
    probe: { residIndex: probe.residIndex, bias: probe.bias, weights: Array.from(probe.weights) },
  };

  return {
    vocab,
    config,
    generationConfig: { _from_model_config: true, bos_token_id: id(DEMO_BOS), eos_token_id: id(DEMO_EOS) },
    tokenizerJson: wordLevelTokenizerJson(DEMO_SPECIAL_TOKENS, vocab),
    tokenizerConfig: tokenizerConfig(),
    tensors,
    demo,
  };
}

/**
 * The refusal feature as a probe on the final-norm residual stream (stack index numLayers + 1): the rotated
 * REFUSAL axis, scaled so that the probe crosses 0.5 at the model's own refusal threshold.
 */
export function demoRefusalProbe(): DemoProbe {
  const gain = 10;
  const e = new Mat(1, D_MODEL);
  e.add(0, REFUSAL, gain);
  return { residIndex: N_LAYERS + 1, weights: e.timesHadamard().toFloat32(), bias: -gain * DEMO_REFUSAL_THRESHOLD };
}

// ---------------------------------------------------------------------------------------------------------------
// Tokenizer files: WordLevel over the vocabulary, lower-casing, whitespace/punctuation pre-tokenizer, specials as
// added tokens (so `<think>` / `</think>` are single special tokens the engine's marker detection finds).

/** R1-style: earlier assistant turns keep only their answer; the generation prompt pre-fills `<think>`. */
export const DEMO_CHAT_TEMPLATE =
  '{{ bos_token }}{% for m in messages %}' +
  "{% if m.role == 'system' %}<|system|> {{ m.content }} " +
  "{% elif m.role == 'user' %}<|user|> {{ m.content }} " +
  "{% elif m.role == 'assistant' %}{% set c = m.content %}{% if '</think>' in c %}{% set c = c.split('</think>')[-1] %}{% endif %}" +
  '<|assistant|> {{ c | trim }} <|end|> ' +
  '{% endif %}{% endfor %}' +
  '{% if add_generation_prompt %}<|assistant|> <think> {% endif %}';

function tokenizerConfig(): Record<string, unknown> {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: DEMO_BOS,
    eos_token: DEMO_EOS,
    unk_token: '<unk>',
    pad_token: '<pad>',
    add_bos_token: false,
    add_eos_token: false,
    model_max_length: MAX_POSITIONS,
    clean_up_tokenization_spaces: false,
    chat_template: DEMO_CHAT_TEMPLATE,
    added_tokens_decoder: Object.fromEntries(
      DEMO_SPECIAL_TOKENS.map((content, id) => [
        String(id),
        { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
      ]),
    ),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Writing the folder.

const DEMO_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'];

/** Where the demo model lives under a cache root (default: Cliffscope's cache folder). */
export function demoModelDir(cacheRoot: string = defaultCacheRoot()): string {
  return path.join(cacheRoot, 'demo', 'planted-refusal');
}

function readDemoJson(dir: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(fs.readFileSync(path.join(dir, 'demo.json'), 'utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function isUpToDate(dir: string, variant: DemoVariant | null): boolean {
  const demo = readDemoJson(dir);
  return (
    demo !== null &&
    demo.generator === DEMO_GENERATOR_NAME &&
    demo.generatorVersion === DEMO_GENERATOR_VERSION &&
    demo.variant === variant?.name &&
    // A variant changed under the same name is rebuilt too.
    JSON.stringify(demo.harmfulWords) === JSON.stringify(variant?.harmfulWords ?? DEMO_HARMFUL_WORDS) &&
    JSON.stringify((demo.plantedHeads as { suppression?: number }[] | undefined)?.map((h) => h.suppression)) === JSON.stringify(variant?.suppression ?? DEMO_SUPPRESSION_STRENGTHS) &&
    DEMO_FILES.every((f) => fs.existsSync(path.join(dir, f)))
  );
}

function info(dir: string, created: boolean): DemoModelInfo {
  return {
    dir,
    created,
    generatorVersion: DEMO_GENERATOR_VERSION,
    plantedHeads: DEMO_PLANTED_HEADS.map((h) => ({ ...h })),
    refusalHead: { ...DEMO_REFUSAL_HEAD },
    answerFlagHead: { ...DEMO_ANSWER_FLAG_HEAD },
    probe: demoRefusalProbe(),
    refusalAnswer: DEMO_REFUSAL_ANSWER,
    complianceAnswer: DEMO_COMPLIANCE_ANSWER,
  };
}

const writeJson = (file: string, value: unknown) => fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');

/**
 * Generate the demo checkpoint (or a variant of it) into `dir` unless an up-to-date copy (same generator version,
 * same variant, all files present) is already there. The folder is built beside `dir` and renamed into place, so concurrent callers and interrupted
 * runs never leave a half-written model. A stale demo folder is replaced; any other non-empty folder is refused.
 */
export function writeDemoModel(dir: string = demoModelDir(), variant: DemoVariant | null = null): DemoModelInfo {
  const target = path.resolve(dir);
  if (isUpToDate(target, variant)) return info(target, false);
  if (fs.existsSync(target) && readDemoJson(target)?.generator !== DEMO_GENERATOR_NAME && fs.readdirSync(target).length > 0) {
    throw new CliffscopeError('bad-argument', `${target} exists and is not a Cliffscope demo model folder`, {
      file: target,
      hint: 'choose an empty or new folder for the demo model',
    });
  }

  const parts = buildDemoCheckpoint(variant);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = `${target}.tmp-${process.pid}-${Date.now()}`;
  fs.mkdirSync(tmp, { recursive: true });
  try {
    writeJson(path.join(tmp, 'config.json'), parts.config);
    writeJson(path.join(tmp, 'generation_config.json'), parts.generationConfig);
    writeJson(path.join(tmp, 'tokenizer.json'), parts.tokenizerJson);
    writeJson(path.join(tmp, 'tokenizer_config.json'), parts.tokenizerConfig);
    writeSafetensors(path.join(tmp, 'model.safetensors'), parts.tensors, { format: 'pt', generator: DEMO_GENERATOR_NAME });
    writeJson(path.join(tmp, 'demo.json'), parts.demo); // last: marks the folder complete
    if (fs.existsSync(target)) fs.rmSync(target, { recursive: true, force: true });
    try {
      fs.renameSync(tmp, target);
    } catch (e) {
      // Another process finished first: keep its copy if it is good.
      if (!isUpToDate(target, variant)) throw e;
      fs.rmSync(tmp, { recursive: true, force: true });
      return info(target, false);
    }
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return info(target, true);
}
