/** Prompt datasets: reading CSV / JSON / JSONL into items, and seeded splits and samples. */
export { parseCsv, csvQuote, type CsvRecord, type CsvProblem, type CsvParseResult } from './csv.js';
export {
  AUTO_COLUMNS,
  detectFormat,
  parseDataset,
  readDatasetFile,
  type ColumnMapping,
  type DatasetFormat,
  type DatasetItem,
  type DatasetReadResult,
  type ReadDatasetOptions,
  type RejectedRow,
} from './import.js';
export { SeededRandom, sampleItems, shuffledIndices, splitItems, type SplitOptions } from './split.js';
