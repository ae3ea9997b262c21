/**
 * Rendering a model's own chat template (Jinja, from tokenizer_config.json or chat_template.jinja) with
 * @huggingface/jinja, passing the variables transformers' `apply_chat_template` passes. The template is untrusted
 * code and runs in a sandbox with a budget (template-sandbox.ts).
 */
import { CliffscopeError } from '../errors.js';
import { DEFAULT_RENDER_BUDGET, type RenderBudget, renderInSandbox } from './template-sandbox.js';

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface ChatTemplateOptions {
  /** Append the opening of the assistant turn (default true): what we want before generating. */
  addGenerationPrompt?: boolean;
  /** More template variables, e.g. `{ enable_thinking: false }` for Qwen3 or `{ date_string: '...' }` for Llama 3.1. */
  extra?: Record<string, unknown>;
}

/**
 * The template transformers uses when none is named: `chat_template` is either the template itself or a list of
 * `{name, template}` (e.g. "default", "tool_use", "rag"), of which we take "default". Returns null when there is none.
 */
export function pickChatTemplate(value: unknown): string | null {
  if (typeof value === 'string') return value.length > 0 ? value : null;
  if (Array.isArray(value)) {
    for (const entry of value) {
      if (entry && typeof entry === 'object') {
        const { name, template } = entry as { name?: unknown; template?: unknown };
        if (name === 'default' && typeof template === 'string') return template;
      }
    }
  }
  return null;
}

/** Names of the templates in a list-style `chat_template`, for error messages. */
export function chatTemplateNames(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return value
    .map((entry) => (entry && typeof entry === 'object' ? (entry as { name?: unknown }).name : undefined))
    .filter((name): name is string => typeof name === 'string');
}

export class ChatTemplate {
  /**
   * @param source the Jinja text
   * @param file where it came from, named in errors
   * @param budget time, output and memory limits of one render (the template is untrusted code)
   */
  constructor(
    readonly source: string,
    readonly file: string,
    readonly budget: RenderBudget = DEFAULT_RENDER_BUDGET,
  ) {}

  /**
   * Renders `messages` with `vars` (special tokens, add_generation_prompt, extras) in the template sandbox. Any
   * failure, including the template's own `raise_exception(...)`, a parse error, or a render over its time, memory or
   * output budget, becomes a CliffscopeError('tokenizer') that names the file and quotes the template's message.
   */
  render(messages: readonly ChatMessage[], vars: Record<string, unknown>): string {
    // Copy the messages so the template sees plain objects and cannot change the caller's.
    const items = { ...vars, messages: messages.map((m) => ({ role: m.role, content: m.content })) };
    const outcome = renderInSandbox(this.source, items, this.budget);
    if (outcome.ok) return outcome.text;
    if (outcome.stage === 'parse') {
      throw new CliffscopeError('tokenizer', `cannot parse the chat template in ${this.file}: ${outcome.message}`, {
        file: this.file,
        hint: 'Pass raw text with --no-chat, or fix the template.',
      });
    }
    if (outcome.stage === 'time' || outcome.stage === 'size') {
      throw new CliffscopeError('tokenizer', `the chat template in ${this.file} was stopped: ${outcome.message}`, {
        file: this.file,
        hint: 'A chat template should only format the conversation; this one loops or grows without bound. Fix or replace the template, or pass raw text with --no-chat.',
      });
    }
    // @huggingface/jinja's global raise_exception throws a plain Error with the template's text, so every render
    // error is reported the same way.
    throw new CliffscopeError('tokenizer', `the chat template in ${this.file} failed: ${outcome.message}`, {
      file: this.file,
      hint: 'Check the conversation (roles, order) against what this model accepts, or pass raw text with --no-chat.',
    });
  }
}
