/**
 * tokenizer.json may carry regular expressions (Split pre-tokenizers, Replace normalizers) that run on every text we
 * encode. JavaScript's regex engine backtracks, so a pattern with a repeated group that itself repeats — `(a+)+$`,
 * `(\s*\w+)*x` — takes exponential time on a crafted (or merely unlucky) input and hangs the engine. Real tokenizers
 * never need that shape (GPT-2, Llama 3, Qwen and DeepSeek patterns repeat single classes only), so a checkpoint
 * whose tokenizer has one is refused when it is loaded.
 */

/** Where a pattern repeats (without bound) a group that itself repeats a varying number of times, or null. */
export function nestedQuantifier(pattern: string): string | null {
  // For each open group: does it contain a quantifier that can match a varying number of times?
  const groups: { start: number; repeats: boolean }[] = [{ start: 0, repeats: false }];
  let i = 0;
  /**
   * Reads a quantifier at i, if any. `varies`: it can match different numbers of repetitions (above one), so what
   * it repeats can be split up in several ways; `many`: it repeats without bound (or more than a handful of times).
   */
  const quantifier = (): { length: number; varies: boolean; many: boolean } | null => {
    const c = pattern[i];
    const lazy = (n: number) => (pattern[i + n] === '?' || pattern[i + n] === '+' ? n + 1 : n);
    if (c === '*' || c === '+') return { length: lazy(1), varies: true, many: true };
    if (c === '?') return { length: lazy(1), varies: false, many: false };
    if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i));
      if (!m) return null;
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      return { length: lazy(m[0].length), varies: max > 1 && max > min, many: max > 10 };
    }
    return null;
  };
  while (i < pattern.length) {
    const c = pattern[i];
    if (c === '\\') {
      i += 2;
    } else if (c === '[') {
      // A character class: skip to its closing bracket (escapes inside included).
      i++;
      if (pattern[i] === '^') i++;
      if (pattern[i] === ']') i++;
      while (i < pattern.length && pattern[i] !== ']') i += pattern[i] === '\\' ? 2 : 1;
      i++;
    } else if (c === '(') {
      groups.push({ start: i, repeats: false });
      i++;
      continue;
    } else if (c === ')') {
      const group = groups.length > 1 ? groups.pop()! : groups[0]!;
      i++;
      const q = quantifier();
      if (q) {
        if (q.many && group.repeats) return pattern.slice(group.start, i + q.length);
        i += q.length;
      }
      // What the closed group contains repeats inside its parent too.
      if (group.repeats || q?.varies) groups[groups.length - 1]!.repeats = true;
      continue;
    } else {
      i++;
    }
    const q = quantifier();
    if (q) {
      if (q.varies) groups[groups.length - 1]!.repeats = true;
      i += q.length;
    }
  }
  return null;
}

/** Every regular expression a tokenizer.json holds (objects of the form {"Regex": "…"}), with where it is. */
export function tokenizerRegexes(json: unknown): { where: string; pattern: string }[] {
  const found: { where: string; pattern: string }[] = [];
  const walk = (v: unknown, where: string, depth: number) => {
    if (depth > 32 || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) return v.forEach((x, i) => walk(x, `${where}[${i}]`, depth + 1));
    const o = v as Record<string, unknown>;
    if (typeof o.Regex === 'string') found.push({ where, pattern: o.Regex });
    for (const [k, x] of Object.entries(o)) if (k !== 'model' && k !== 'added_tokens') walk(x, where ? `${where}.${k}` : k, depth + 1);
  };
  walk(json, '', 0);
  return found;
}
