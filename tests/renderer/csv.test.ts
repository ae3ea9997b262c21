import { describe, expect, it } from 'vitest';
import { csvCell, safeFileName, toCsv } from '../../src/renderer/src/lib/csv.js';

describe('csv', () => {
  it('quotes only what needs quoting (RFC 4180)', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "no"')).toBe('"say ""no"""');
    expect(csvCell('line\nbreak')).toBe('"line\nbreak"');
    expect(csvCell(' padded')).toBe('" padded"');
    expect(csvCell(null)).toBe('');
    expect(csvCell(undefined)).toBe('');
    expect(csvCell(Number.NaN)).toBe('');
    expect(csvCell(0.1234567)).toBe('0.1234567');
    expect(csvCell(true)).toBe('true');
    expect(csvCell({ a: 1 })).toBe('"{""a"":1}"');
  });

  it('writes a header and one CRLF line per row, raw values in the given order', () => {
    const rows = [
      { head: 'L1H5', score: -0.28835880756378174 },
      { head: 'L2H2', score: null },
    ];
    const text = toCsv(
      [
        { label: 'Head', value: (r: (typeof rows)[number]) => r.head },
        { label: 'Score, at t_b', value: (r: (typeof rows)[number]) => r.score },
      ],
      rows,
    );
    expect(text).toBe('Head,"Score, at t_b"\r\nL1H5,-0.28835880756378174\r\nL2H2,\r\n');
  });

  it('makes safe file names', () => {
    expect(safeFileName('Refusal score per token, transcript #12', 'png')).toBe('refusal-score-per-token-transcript-12.png');
    expect(safeFileName('///', 'csv')).toBe('cliffscope.csv');
  });
});
