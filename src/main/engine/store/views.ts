/**
 * Read models: the joined rows the application's plots, tables and CSV exports read, one query each, so no handler
 * writes SQL, decodes a BLOB or looks rows up one by one.
 */
import type { ProjectStore } from './project-store.js';
import type { Statements } from './statements.js';

export class ProjectViews {
  constructor(
    private readonly sql: Statements,
    private readonly store: ProjectStore,
  ) {}
}
