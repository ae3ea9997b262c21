/**
 * Where JSON text breaks, as "line L, column C", without quoting it. V8's own JSON.parse messages quote a snippet of
 * the text ("Unexpected token 'P', "PATH=/usr/…" is not valid JSON"), and an error must never echo a file's contents:
 * the file may hold secrets that whoever asked could not otherwise read. Only used once JSON.parse has failed.
 */

/** Offset of the first byte that makes `text` invalid JSON, or -1 if none is found. */
export function firstJsonError(text: string): number {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const literal = (word: string) => {
    if (text.startsWith(word, i)) i += word.length;
    else fail();
  };
  const string = () => {
    if (text[i] !== '"') fail();
    i++;
    while (i < text.length && text[i] !== '"') {
      const c = text.charCodeAt(i);
      if (c < 0x20) fail();
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail();
      }
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  const number = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) fail();
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        string();
        ws();
        if (text[i] !== ':') fail();
        i++;
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return void i++;
        else fail();
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return void i++;
        else fail();
      }
    } else if (c === '"') string();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else number();
  };
  try {
    value();
    ws();
    return i < text.length ? i : -1;
  } catch (e) {
    return typeof e === 'number' ? Math.min(e, text.length) : -1; // a RangeError: nested too deep to scan
  }
}

/** "invalid JSON at line L, column C", "it ends early", or "it is not valid JSON". */
export function jsonSyntaxProblem(text: string): string {
  if (text.charCodeAt(0) === 0xfeff) return 'it starts with a byte-order mark (save it as UTF-8 without BOM)';
  const at = firstJsonError(text);
  if (at < 0) return 'it is not valid JSON';
  if (at >= text.length) return 'it ends early (unexpected end of input)';
  let line = 1;
  let lineStart = 0;
  for (let k = 0; k < at; k++) {
    if (text.charCodeAt(k) === 10) {
      line++;
      lineStart = k + 1;
    }
  }
  return `invalid JSON at line ${line}, column ${at - lineStart + 1}`;
}
