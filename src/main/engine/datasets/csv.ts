/**
 * A small RFC 4180 CSV reader. Handles quoted fields, doubled quotes inside them, line breaks inside quotes, CRLF /
 * LF / lone-CR line ends and a UTF-8 byte-order mark. It is lenient where spreadsheets and pandas are (a stray quote
 * inside an unquoted field is kept as text), and reports instead of throwing where a record cannot be read, so one
 * bad row never sinks a whole import.
 */

export interface CsvRecord {
  /** 1-based line on which the record starts (a quoted field may carry it over several lines). */
  line: number;
  fields: string[];
}

export interface CsvProblem {
  line: number;
  reason: string;
}

export interface CsvParseResult {
  records: CsvRecord[];
  problems: CsvProblem[];
}

/**
 * Split CSV text into records. Blank lines are skipped (a trailing newline does not make an empty record).
 * An unterminated quoted field is reported with the line it starts on; everything after it belongs to that field,
 * so the record is dropped.
 */
export function parseCsv(text: string, delimiter = ','): CsvParseResult {
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    throw new Error(`CSV delimiter must be one character other than a quote or a line break, got ${JSON.stringify(delimiter)}`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // UTF-8 BOM, as Excel writes it

  const records: CsvRecord[] = [];
  const problems: CsvProblem[] = [];
  const n = text.length;
  let i = 0;
  let line = 1;

  while (i < n) {
    const recordLine = line;
    const fields: string[] = [];
    let field = '';
    let quoted = false; // the current field began with a quote
    let afterQuote = false; // the quoted part of the current field has closed
    let endOfRecord = false;

    // Blank line: skip it without producing a record.
    const c0 = text[i];
    if (c0 === '\n' || c0 === '\r') {
      i += c0 === '\r' && text[i + 1] === '\n' ? 2 : 1;
      line++;
      continue;
    }

    while (i < n && !endOfRecord) {
      const c = text[i]!;
      if (quoted && !afterQuote) {
        if (c === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
          } else {
            afterQuote = true;
            i++;
          }
        } else {
          if (c === '\n' || (c === '\r' && text[i + 1] !== '\n')) line++;
          field += c;
          i++;
        }
        continue;
      }
      if (c === delimiter) {
        fields.push(field);
        field = '';
        quoted = false;
        afterQuote = false;
        i++;
      } else if (c === '\n' || c === '\r') {
        i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
        line++;
        endOfRecord = true;
      } else if (c === '"' && field === '' && !quoted) {
        quoted = true;
        i++;
      } else {
        // Text after a closing quote ("ab"cd) or a quote inside an unquoted field (ab"cd): keep it, as pandas does.
        field += c;
        i++;
      }
    }

    if (quoted && !afterQuote) {
      problems.push({ line: recordLine, reason: `unterminated quoted field (a quote opened on line ${recordLine} never closes)` });
      break; // the rest of the text was swallowed by the open quote
    }
    fields.push(field);
    records.push({ line: recordLine, fields });
  }
  return { records, problems };
}

/** Quote a value for CSV when it needs it (delimiter, quote, line break, or edge whitespace). */
export function csvQuote(value: string, delimiter = ','): string {
  if (value === '') return '';
  const needs = value.includes(delimiter) || /["\r\n]/.test(value) || /^\s|\s$/.test(value);
  return needs ? `"${value.replace(/"/g, '""')}"` : value;
}
