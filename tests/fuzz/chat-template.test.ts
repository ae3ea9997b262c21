/**
 * Fuzzing the chat-template renderer with templates built from Jinja fragments — loops over huge ranges, nested
 * loops, recursion, string growth, broken syntax, raise_exception — and random conversations: every render returns
 * text within the output limit or fails with a CliffscopeError('tokenizer') naming the file, within about the time
 * budget, and the process survives all of it (range(10**9) used to abort node).
 */
import { describe, expect, it } from 'vitest';
import { CliffscopeError } from '../../src/main/engine/errors.js';
import { ChatTemplate, type ChatMessage } from '../../src/main/engine/tokenizer/chat-template.js';
import { fuzz, type Rand } from './fuzz.js';

const BUDGET = { timeMs: 150, maxChars: 20_000, heapMb: 48 };

function expr(r: Rand): string {
  return r.pick([
    'm.content',
    'm.role',
    'messages | length',
    'bos_token',
    "m.content * 3",
    "m.content | upper",
    "(m.content ~ '!') | trim",
    'loop.index',
    'messages[0].content',
    'messages[-1]["role"]',
    `range(${r.pick([3, 10, 1000, 100000, 1000000000])}) | length`,
    "m.content.split(' ') | join('-')",
    'undefined_variable',
    'm.content[1:3]',
    "raise_exception('no ' ~ m.role)",
    'ns.count',
  ]);
}

function fragment(r: Rand, depth: number): string {
  const k = r.int(0, depth > 2 ? 3 : 8);
  switch (k) {
    case 0:
      return r.text(8).replace(/[{}%#]/g, '');
    case 1:
      return `{{ ${expr(r)} }}`;
    case 2:
      return `{% if m.role == '${r.pick(['user', 'assistant', 'system'])}' %}${fragment(r, depth + 1)}{% else %}${fragment(r, depth + 1)}{% endif %}`;
    case 3:
      return r.pick(['{% for', '{{', '{% endfor %}', '{% if %}', '}}', '{% set x = %}', '{# unclosed']);
    case 4:
      return `{% for m in messages %}${fragment(r, depth + 1)}${fragment(r, depth + 1)}{% endfor %}`;
    case 5:
      return `{% for i in range(${r.pick([2, 5, 1000, 100000, 1000000000])}) %}${fragment(r, depth + 1)}{% endfor %}`;
    case 6:
      return `{% set ns = namespace(count=0) %}{% for m in messages %}{% set ns.count = ns.count + 1 %}{% endfor %}{{ ns.count }}`;
    case 7:
      return `{% macro f(n) %}{% if n > ${r.pick([3, 50, 100000])} %}.{% else %}{{ f(n + 1) }}{% endif %}{% endmacro %}{{ f(0) }}`;
    default:
      return `{% for m in messages %}{% for c in m.content %}{{ c }}{% endfor %}{% endfor %}`;
  }
}

function conversation(r: Rand): ChatMessage[] {
  return Array.from({ length: r.int(1, 4) }, () => ({ role: r.pick(['system', 'user', 'assistant'] as const), content: r.text(40) }));
}

describe('chat-template renderer under fuzzing', () => {
  it('renders within limits or fails with a tokenizer error naming the file, and keeps going', async () => {
    let rendered = 0;
    let stopped = 0;
    const runs = await fuzz(
      'chat template',
      (r) => ({ source: `{% for m in messages %}${fragment(r, 0)}{% endfor %}${fragment(r, 0)}`, messages: conversation(r) }),
      ({ source, messages }) => {
        const t = new ChatTemplate(source, '/fuzz/chat_template.jinja', BUDGET);
        const t0 = Date.now();
        try {
          const text = t.render(messages, { bos_token: '<s>', add_generation_prompt: true });
          expect(typeof text).toBe('string');
          expect(text.length).toBeLessThanOrEqual(BUDGET.maxChars);
          rendered++;
        } catch (e) {
          if (!(e instanceof CliffscopeError)) throw e;
          expect(e.code).toBe('tokenizer');
          expect(e.file).toBe('/fuzz/chat_template.jinja');
          if (/was stopped/.test(e.message)) stopped++;
        }
        // The budget plus a worker restart (its start-up is not counted against the template).
        expect(Date.now() - t0).toBeLessThan(20_000);
      },
      { ms: Math.max(4000, Number(process.env.CLIFFSCOPE_FUZZ_MS ?? 0)), min: 20 },
    );
    console.log(`template fuzz: ${runs} templates, ${rendered} rendered, ${stopped} stopped by the budget`);
    expect(rendered).toBeGreaterThan(0);
  });
});
