/**
 * Chat templates ship with downloaded checkpoints: a hostile or broken one must end in a clear error within a bounded
 * time and memory, never hang the engine or abort the process (as `range(10**9)` did when rendered in-process).
 */
import { describe, expect, it } from 'vitest';
import { CliffscopeError } from '../../src/main/engine/errors.js';
import { ChatTemplate } from '../../src/main/engine/tokenizer/chat-template.js';
import { Tokenizer } from '../../src/main/engine/tokenizer/tokenizer.js';
import { tinyTokenizerJson } from './helpers.js';

const USER = [{ role: 'user' as const, content: 'hello world' }];
/** Small budgets keep the tests quick; the defaults are checked once below. */
const BUDGET = { timeMs: 1_000, maxChars: 100_000, heapMb: 64 };

function failure(run: () => unknown): CliffscopeError {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(CliffscopeError);
    return e as CliffscopeError;
  }
  throw new Error('expected the render to fail');
}

function timed<T>(run: () => T): { value: T; ms: number } {
  const t0 = Date.now();
  const value = run();
  return { value, ms: Date.now() - t0 };
}

describe('chat templates run under a budget', () => {
  it('stops range(10**9), which aborted the whole process when rendered in-process', () => {
    const t = new ChatTemplate('{% for i in range(1000000000) %}{% endfor %}x', '/m/tokenizer_config.json', BUDGET);
    const { value: err, ms } = timed(() => failure(() => t.render(USER, {})));
    expect(err.code).toBe('tokenizer');
    expect(err.file).toBe('/m/tokenizer_config.json');
    expect(err.message).toMatch(/was stopped/);
    expect(err.hint).toMatch(/--no-chat/);
    expect(ms).toBeLessThan(30_000);
  });

  it('stops nested loops that would run for hours, within about the time budget', () => {
    const t = new ChatTemplate('{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}', 'chat_template.jinja', BUDGET);
    const { value: err, ms } = timed(() => failure(() => t.render(USER, {})));
    expect(err.message).toMatch(/longer than 1 s/);
    expect(ms).toBeGreaterThanOrEqual(BUDGET.timeMs);
    expect(ms).toBeLessThan(20_000);
  });

  it('refuses output over the size limit', () => {
    // A generous time budget: only the size limit may stop this one, however loaded the machine.
    const t = new ChatTemplate('{% for i in range(10000) %}{{ messages[0].content }}{% endfor %}', 'chat_template.jinja', { ...BUDGET, timeMs: 20_000, maxChars: 50_000 });
    expect(failure(() => t.render(USER, {})).message).toMatch(/output of 110000 characters is over the limit of 50000/);
  });

  it('reports unbounded recursion as a template failure', () => {
    const t = new ChatTemplate('{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}', 'chat_template.jinja', BUDGET);
    const err = failure(() => t.render(USER, {}));
    expect(err.message).toMatch(/chat template in chat_template.jinja (failed|was stopped)/);
  });

  it('keeps working after a template was stopped: the next render gets a fresh worker', () => {
    const bad = new ChatTemplate('{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}', 'a', BUDGET);
    failure(() => bad.render(USER, {}));
    const good = new ChatTemplate('{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{{ eos }}', 'b', BUDGET);
    expect(good.render(USER, { eos: '</s>' })).toBe('<user>hello world</s>');
    expect(good.render(USER, { eos: '!' })).toBe('<user>hello world!');
  });

  it('reports a parse error with the file', () => {
    const t = new ChatTemplate('{% for m in messages %}', 'chat_template.jinja', BUDGET);
    expect(failure(() => t.render(USER, {})).message).toMatch(/cannot parse the chat template in chat_template.jinja/);
  });

  it('a tokenizer whose config carries a hostile template fails its encodeChat, and plain encoding still works', () => {
    const tok = Tokenizer.fromObjects(tinyTokenizerJson(), {
      chat_template: '{% for i in range(1000000000) %}{% endfor %}',
    }, '/models/hostile');
    const err = failure(() => tok.encodeChat(USER));
    expect(err.code).toBe('tokenizer');
    expect(err.message).toContain('/models/hostile');
    expect(tok.encode('hello world')).toEqual([2, 3]);
  });
});

describe('regular expressions in tokenizer.json', () => {
  const withSplit = (pattern: string) => {
    const json = tinyTokenizerJson() as Record<string, unknown>;
    json.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false }] };
    return json;
  };

  it.each(['(a+)+$', '(\\s*\\w+)*x', '(?:[a-z]+\\d*)+!', '((ab)*c)+', '(x+){20,}', '(a{1,3})+$'])('refuses %s, which backtracks exponentially', (pattern) => {
    const err = failure(() => Tokenizer.fromObjects(withSplit(pattern), {}, '/models/redos'));
    expect(err.code).toBe('tokenizer');
    expect(err.message).toMatch(/pre_tokenizer\.pretokenizers\[0\]\.pattern repeats a repetition/);
  });

  it('accepts the patterns real tokenizers use', () => {
    for (const pattern of [
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
      '(ab)?c+',
      '(a{2})+',
      '(a+){1,3}',
    ]) {
      expect(() => Tokenizer.fromObjects(withSplit(pattern), {}), pattern).not.toThrow();
    }
  });
});
