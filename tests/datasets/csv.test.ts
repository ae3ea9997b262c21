/** The RFC 4180 reader on the cases public datasets actually contain. */
import { describe, expect, it } from 'vitest';
import { csvQuote, parseCsv } from '../../src/main/engine/datasets/csv.js';

const fields = (text: string) => parseCsv(text).records.map((r) => r.fields);

describe('parseCsv', () => {
  it('splits plain records, with or without a trailing newline', () => {
    expect(fields('a,b\n1,2\n')).toEqual([['a', 'b'], ['1', '2']]);
    expect(fields('a,b\n1,2')).toEqual([['a', 'b'], ['1', '2']]);
  });

  it('reads quoted fields with commas and doubled quotes', () => {
    expect(fields('x,y\n"Sure, here is","He said ""no"""\n')).toEqual([['x', 'y'], ['Sure, here is', 'He said "no"']]);
    expect(fields('""""\n')).toEqual([['"']]);
  });

  it('keeps line breaks inside quotes and reports the line each record starts on', () => {
    const { records } = parseCsv('h1,h2\n"line one\nline two\r\nline three",b\nnext,row\n');
    expect(records.map((r) => r.fields)).toEqual([['h1', 'h2'], ['line one\nline two\r\nline three', 'b'], ['next', 'row']]);
    expect(records.map((r) => r.line)).toEqual([1, 2, 5]);
  });

  it('accepts CRLF, LF and lone CR line ends', () => {
    expect(fields('a,b\r\n1,2\r\n3,4\r\n')).toEqual([['a', 'b'], ['1', '2'], ['3', '4']]);
    expect(fields('a,b\r1,2\r')).toEqual([['a', 'b'], ['1', '2']]);
    expect(parseCsv('a\r\nb\r\nc').records.map((r) => r.line)).toEqual([1, 2, 3]);
  });

  it('strips a UTF-8 byte-order mark', () => {
    expect(fields('\ufeffgoal,target\nx,y\n')).toEqual([['goal', 'target'], ['x', 'y']]);
  });

  it('skips blank lines but counts them in line numbers', () => {
    const { records } = parseCsv('a\n\n\nb\r\n\r\nc\n');
    expect(records.map((r) => [r.line, r.fields[0]])).toEqual([[1, 'a'], [4, 'b'], [6, 'c']]);
  });

  it('keeps empty fields, leading, trailing and in between', () => {
    expect(fields(',a,,b,\n')).toEqual([['', 'a', '', 'b', '']]);
    expect(fields('"",""\n')).toEqual([['', '']]);
  });

  it('is lenient with stray quotes, as pandas is', () => {
    expect(fields('ab"cd,e\n')).toEqual([['ab"cd', 'e']]);
    expect(fields('"ab"cd,e\n')).toEqual([['abcd', 'e']]);
  });

  it('reports an unterminated quote with the line it opens on, keeping the records before it', () => {
    const r = parseCsv('h\nok\n"never closed\nmore\n');
    expect(r.records.map((x) => x.fields)).toEqual([['h'], ['ok']]);
    expect(r.problems).toEqual([{ line: 3, reason: expect.stringContaining('unterminated') }]);
  });

  it('reads other delimiters (TSV)', () => {
    expect(parseCsv('a\tb\n"x\ty"\tz\n', '\t').records.map((r) => r.fields)).toEqual([['a', 'b'], ['x\ty', 'z']]);
    expect(() => parseCsv('a', '"')).toThrow(/delimiter/);
  });
});

describe('csvQuote', () => {
  it('quotes only when needed, and round-trips through parseCsv', () => {
    expect(csvQuote('plain')).toBe('plain');
    expect(csvQuote('a,b')).toBe('"a,b"');
    expect(csvQuote('say "hi"')).toBe('"say ""hi"""');
    expect(csvQuote(' padded')).toBe('" padded"');
    const nasty = ['a,b', 'x\ny', 'q"q', ' s ', '', 'r\r\nn'];
    const line = nasty.map((v) => csvQuote(v)).join(',');
    expect(parseCsv(line + '\r\n').records[0]!.fields).toEqual(nasty);
  });
});
