/** The project store: one SQLite file per project (see schema.ts for the tables). */
export { openProject, exportProject, type OpenProjectOptions } from './open.js';
export { ProjectStore } from './project-store.js';
export { inspectProjectFile, type FileState } from './project-file.js';
export { APPLICATION_ID, SCHEMA_VERSION, RUN_KINDS, RUN_STATUSES, SWEEP_CONTROLS } from './schema.js';
export { float32ToBlob, blobToFloat32, int32ToBlob, blobToInt32 } from './blobs.js';
export { toCsv, toJson, toJsonl, columnsOf, jsonSafe } from './tabular.js';
export type { ImportSummary } from './transfer.js';
export * from './types.js';
