/**
 * A model's tokenizer, loaded from the files of a Hugging Face checkpoint: encode/decode via @huggingface/tokenizers,
 * the chat template via @huggingface/jinja, plus the reasoning-marker helpers the refusal analyses need.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { CliffscopeError } from '../errors.js';
import { jsonSyntaxProblem } from '../io/json-syntax.js';
import { readUntrustedText } from '../io/untrusted-file.js';
import { nestedQuantifier, tokenizerRegexes } from './regex-safety.js';
import {
  ChatTemplate,
  chatTemplateNames,
  pickChatTemplate,
  type ChatMessage,
  type ChatTemplateOptions,
} from './chat-template.js';
import {
  detectThinkMarkers,
  endsWithOpenMarker,
  splitTranscriptIds,
  type ThinkMarkers,
  type TranscriptSplit,
} from './think.js';

export type { ChatMessage, ChatRole, ChatTemplateOptions } from './chat-template.js';
export type { ThinkMarker, ThinkMarkers, TranscriptSplit } from './think.js';

type Json = Record<string, unknown>;

/** The special-token slots transformers knows; their values may be a string or an AddedToken object {content}. */
const SPECIAL_TOKEN_KEYS = ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token'] as const;

const NO_CHAT_ADVICE = 'Pass raw text instead of a conversation (--no-chat).';

export class Tokenizer {
  private readonly inner: HfTokenizer;
  private readonly config: Json;
  /** Special-token slot -> token text, from tokenizer_config.json overlaid by special_tokens_map.json. */
  private readonly specialTokens: Map<string, string>;
  private readonly additionalSpecialTokens: string[];
  private readonly cleanUpSpaces: boolean;
  private readonly template: ChatTemplate | null;
  /** Why there is no template, for the error applyChatTemplate raises. */
  private readonly noTemplateReason: string;
  private readonly configFile: string;
  private readonly specialIds: Set<number>;
  private readonly pieceCache = new Map<number, string>();
  readonly thinkMarkers: ThinkMarkers;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  /** Ids this tokenizer knows: highest id + 1. The model's embedding may have more rows (padding). */
  readonly vocabSize: number;

  private constructor(
    tokenizerJson: object,
    tokenizerConfig: object | null,
    /** The checkpoint folder (fromDir) or the label given to fromObjects; used in messages. */
    readonly source: string,
    tokenizerFile: string,
    extras: { specialTokensMap?: Json | null; chatTemplate?: { text: string; file: string } | null } = {},
  ) {
    this.configFile = source === '<memory>' ? 'tokenizer_config.json' : join(source, 'tokenizer_config.json');
    const config: Json = { ...((tokenizerConfig ?? {}) as Json) };
    this.config = config;

    // transformers lets special_tokens_map.json override tokenizer_config.json's slots.
    const map = extras.specialTokensMap ?? {};
    this.specialTokens = new Map();
    for (const key of SPECIAL_TOKEN_KEYS) {
      const text = tokenText(key in map ? map[key] : config[key]);
      if (text !== null) this.specialTokens.set(key, text);
    }
    const additional = map.additional_special_tokens ?? config.additional_special_tokens;
    this.additionalSpecialTokens = Array.isArray(additional)
      ? additional.map(tokenText).filter((t): t is string => t !== null)
      : [];

    // tokenizers.js treats a missing clean_up_tokenization_spaces as true, which rewrites decoded text (" ," -> ",",
    // " 's" -> "'s"), so decode(encode(x)) != x and shown text no longer matches the tokens the model saw.
    // transformers now defaults it to false too; we honour an explicit value and otherwise keep text as is.
    this.cleanUpSpaces = config.clean_up_tokenization_spaces === true;

    const libraryConfig: Json = {
      ...config,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
      additional_special_tokens: this.additionalSpecialTokens,
    };
    for (const key of SPECIAL_TOKEN_KEYS) libraryConfig[key] = this.specialTokens.get(key) ?? null;
    // tokenizers.js's WordLevel ("Legacy") model takes its unknown token from the config, not from tokenizer.json.
    const modelUnk = (tokenizerJson as { model?: { unk_token?: unknown } }).model?.unk_token;
    if (libraryConfig.unk_token === null && typeof modelUnk === 'string') libraryConfig.unk_token = modelUnk;
    for (const { where, pattern } of tokenizerRegexes(tokenizerJson)) {
      const nested = nestedQuantifier(pattern);
      if (nested) {
        throw new CliffscopeError('tokenizer', `${tokenizerFile}: the pattern of ${where} repeats a repetition (${nested}), which can take exponential time on some text`, {
          file: tokenizerFile,
          hint: 'this is not a pattern real tokenizers use; the file is damaged or hostile — re-download the checkpoint',
        });
      }
    }
    try {
      this.inner = new HfTokenizer(tokenizerJson, libraryConfig);
    } catch (e) {
      throw new CliffscopeError('tokenizer', `cannot load the tokenizer in ${tokenizerFile}: ${errorText(e)}`, {
        file: tokenizerFile,
        hint: 'The file must be a Hugging Face fast-tokenizer tokenizer.json with a model tokenizers.js supports (BPE, WordPiece, Unigram, WordLevel).',
        cause: e,
      });
    }

    this.bosTokenId = this.idOfSlot('bos_token');
    this.eosTokenId = this.idOfSlot('eos_token');
    this.vocabSize = this.inner.model?.vocab.length ?? 0;

    this.specialIds = new Set();
    for (const [id, token] of this.inner.get_added_tokens_decoder()) if (token.special) this.specialIds.add(id);
    for (const text of [...this.specialTokens.values(), ...this.additionalSpecialTokens]) {
      const id = this.tokenToId(text);
      if (id !== undefined) this.specialIds.add(id);
    }

    // A separate chat_template.jinja / chat_template.json wins over tokenizer_config.json, as in transformers.
    if (extras.chatTemplate) {
      this.template = new ChatTemplate(extras.chatTemplate.text, extras.chatTemplate.file);
      this.noTemplateReason = '';
    } else {
      const text = pickChatTemplate(config.chat_template);
      this.template = text === null ? null : new ChatTemplate(text, this.configFile);
      const names = chatTemplateNames(config.chat_template);
      this.noTemplateReason =
        names.length > 0
          ? `${this.configFile} has chat templates named ${names.join(', ')} but none named "default"`
          : `${this.configFile} has no "chat_template" (this looks like a base model, not a chat model)`;
    }

    this.thinkMarkers = detectThinkMarkers((text) => {
      const id = this.tokenToId(text);
      if (id === undefined) return undefined;
      const ids = this.encode(text);
      return ids.length === 1 && ids[0] === id ? id : undefined;
    });
  }

  /**
   * Loads `tokenizer.json` (required), `tokenizer_config.json` and `special_tokens_map.json` (optional), and a
   * separate `chat_template.jinja` / `chat_template.json` when the checkpoint has one.
   */
  static async fromDir(dir: string): Promise<Tokenizer> {
    const tokenizerFile = join(dir, 'tokenizer.json');
    const tokenizerJson = await readJson(tokenizerFile, true);
    const config = await readJson(join(dir, 'tokenizer_config.json'), false);
    const specialTokensMap = await readJson(join(dir, 'special_tokens_map.json'), false);
    let chatTemplate: { text: string; file: string } | null = null;
    const jinjaFile = join(dir, 'chat_template.jinja');
    const jinja = await readText(jinjaFile, false);
    if (jinja !== null) {
      chatTemplate = { text: jinja, file: jinjaFile };
    } else {
      const jsonFile = join(dir, 'chat_template.json');
      const fromJson = pickChatTemplate((await readJson(jsonFile, false))?.chat_template);
      if (fromJson !== null) chatTemplate = { text: fromJson, file: jsonFile };
    }
    return new Tokenizer(tokenizerJson!, config, dir, tokenizerFile, { specialTokensMap, chatTemplate });
  }

  /** From already-parsed tokenizer.json and tokenizer_config.json; `source` names them in errors. */
  static fromObjects(tokenizerJson: object, tokenizerConfig: object | null, source = '<memory>'): Tokenizer {
    const tokenizerFile = source === '<memory>' ? 'tokenizer.json' : join(source, 'tokenizer.json');
    return new Tokenizer(tokenizerJson, tokenizerConfig, source, tokenizerFile);
  }

  /**
   * Text to ids. With addSpecialTokens the tokenizer's post-processor adds what it adds (Llama-3: BOS); we also
   * honour add_bos_token / add_eos_token from the config, which transformers' Llama-style fast tokenizers apply by
   * rebuilding the post-processor (DeepSeek-V3's tokenizer.json has no BOS rule of its own) and tokenizers.js ignores.
   */
  encode(text: string, { addSpecialTokens = false }: { addSpecialTokens?: boolean } = {}): number[] {
    const ids = this.inner.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    // The library types ids as number[] but yields undefined for a piece with no id.
    if (ids.some((id: number | undefined) => id === undefined)) {
      // Only possible for a vocabulary without byte fallback and without an unknown token.
      throw new CliffscopeError('tokenizer', `the tokenizer from ${this.source} has no token for part of the text and no unknown token`);
    }
    if (addSpecialTokens) {
      if (this.config.add_bos_token === true && this.bosTokenId !== null && ids[0] !== this.bosTokenId) {
        ids.unshift(this.bosTokenId);
      }
      if (this.config.add_eos_token === true && this.eosTokenId !== null && ids.at(-1) !== this.eosTokenId) {
        ids.push(this.eosTokenId);
      }
    }
    return ids;
  }

  /** Ids to text. Ids the tokenizer does not know are dropped, as the Rust tokenizers library does. */
  decode(ids: readonly number[], { skipSpecialTokens = false }: { skipSpecialTokens?: boolean } = {}): string {
    const kept = ids.filter((id) => this.idToToken(id) !== undefined && !(skipSpecialTokens && this.specialIds.has(id)));
    if (kept.length === 0) return '';
    return this.inner.decode(kept, { skip_special_tokens: false, clean_up_tokenization_spaces: this.cleanUpSpaces });
  }

  /**
   * One display string per token (hover text in plots): each id decoded alone, spaces kept, no clean-up. A token
   * holding part of a multi-byte character shows as U+FFFD; an unknown id shows as "<id N?>".
   */
  tokenStrings(ids: readonly number[]): string[] {
    return ids.map((id) => this.piece(id));
  }

  /** Id of a token's vocabulary text (e.g. "<|im_start|>", "Ġworld"), including added tokens. */
  tokenToId(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }

  /** Vocabulary text of an id (byte-level form, e.g. "Ġworld"), or undefined for an id the tokenizer lacks. */
  idToToken(id: number): string | undefined {
    if (!Number.isInteger(id) || id < 0) return undefined;
    return this.inner.id_to_token(id);
  }

  /** Added tokens marked special, plus the config's special tokens (bos, eos, pad, ..., additional). A copy. */
  specialTokenIds(): Set<number> {
    return new Set(this.specialIds);
  }

  get hasChatTemplate(): boolean {
    return this.template !== null;
  }

  /**
   * The conversation rendered with the model's own template. The template gets what transformers passes: messages,
   * add_generation_prompt, the special tokens by slot name (bos_token, eos_token, ...) and `extra`.
   */
  applyChatTemplate(messages: readonly ChatMessage[], { addGenerationPrompt = true, extra = {} }: ChatTemplateOptions = {}): string {
    if (!this.template) {
      throw new CliffscopeError(
        'tokenizer',
        `no chat template: ${this.noTemplateReason}, so a conversation cannot be formatted for this model. ${NO_CHAT_ADVICE}`,
        { file: this.configFile },
      );
    }
    const vars: Record<string, unknown> = {};
    for (const [key, text] of this.specialTokens) vars[key] = text;
    vars.additional_special_tokens = this.additionalSpecialTokens;
    vars.add_generation_prompt = addGenerationPrompt;
    return this.template.render(messages, { ...vars, ...extra });
  }

  /** Render, then encode without adding special tokens: the template already holds BOS, so it is never doubled. */
  encodeChat(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): { text: string; ids: number[] } {
    const text = this.applyChatTemplate(messages, opts);
    return { text, ids: this.encode(text, { addSpecialTokens: false }) };
  }

  /**
   * Whether the prompt ends with the opening think marker, ignoring trailing whitespace tokens: DeepSeek-R1 distill
   * templates pre-fill "<think>\n", so the model's first generated token is already thinking.
   */
  promptPrefillsThink(prompt: readonly number[] | string): boolean {
    const ids = typeof prompt === 'string' ? this.encode(prompt) : prompt;
    return endsWithOpenMarker(ids, this.thinkMarkers.open?.id ?? null, (id) => this.isWhitespaceToken(id));
  }

  /** Prompt / thinking / answer boundaries of `ids` (prompt then generation); see splitTranscriptIds for the rule. */
  splitTranscript(ids: readonly number[], promptLength: number): TranscriptSplit {
    return splitTranscriptIds(
      ids,
      promptLength,
      this.thinkMarkers.open?.id ?? null,
      this.thinkMarkers.close?.id ?? null,
      (id) => this.isWhitespaceToken(id),
    );
  }

  /** A token that decodes to whitespace only ("\n", "\n\n", " "). */
  isWhitespaceToken(id: number): boolean {
    return /^\s+$/u.test(this.piece(id));
  }

  private piece(id: number): string {
    const cached = this.pieceCache.get(id);
    if (cached !== undefined) return cached;
    const raw = this.idToToken(id);
    let text: string;
    if (raw === undefined) {
      text = `<id ${id}?>`;
    } else {
      text = this.inner.decode([id], { skip_special_tokens: false, clean_up_tokenization_spaces: false });
      // SentencePiece-style decoders drop the leading space of the first token; a lone token is always first.
      if (raw.startsWith('\u2581') && !text.startsWith(' ')) text = ` ${text}`;
    }
    this.pieceCache.set(id, text);
    return text;
  }

  private idOfSlot(slot: (typeof SPECIAL_TOKEN_KEYS)[number]): number | null {
    const text = this.specialTokens.get(slot);
    return text === undefined ? null : (this.tokenToId(text) ?? null);
  }
}

/** A special-token value from the config: "text", {content: "text"} (AddedToken), or null. */
function tokenText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return null;
}

/** Tokenizer files of real models are at most tens of MB; a bigger one is a mistake or an attack. */
const MAX_TOKENIZER_FILE_BYTES = 256 * 1024 * 1024;

/**
 * A checkpoint file as text, or null when it is absent and optional. The checkpoint is untrusted: a file may be a
 * link to /dev/zero or a FIFO, so it is read only if it is a regular file of bounded size (readUntrustedText).
 */
async function readText(file: string, required: boolean): Promise<string | null> {
  try {
    return readUntrustedText(file, { maxBytes: MAX_TOKENIZER_FILE_BYTES, what: 'tokenizer file', code: 'tokenizer' });
  } catch (e) {
    if (!(e instanceof CliffscopeError) || e.code !== 'missing-file') throw e;
    if (!required && !fs.existsSync(file)) return null;
    throw new CliffscopeError('missing-file', `${file} ${fs.existsSync(file) ? 'cannot be read' : 'not found'}`, {
      file,
      hint: required
        ? 'Point at a Hugging Face checkpoint folder with a tokenizer.json (the fast-tokenizer file; a folder with only tokenizer.model needs converting with transformers first).'
        : undefined,
      cause: e,
    });
  }
}

async function readJson(file: string, required: boolean): Promise<Json | null> {
  const text = await readText(file, required);
  if (text === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CliffscopeError('bad-json', `${file} is not valid JSON: ${jsonSyntaxProblem(text)}`, { file });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CliffscopeError('bad-json', `${file} must hold a JSON object`, { file });
  }
  return value as Json;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
