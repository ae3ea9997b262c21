/**
 * A project connection's prepared statements, cached by their SQL text, and the helpers every aggregate of the
 * store uses (get / all / run / insert, one transaction at a time, the "does not exist" error).
 */
import type Database from 'better-sqlite3';
import { CliffscopeError } from '../engine/errors.js';
import type { DB } from './project-file.js';

type Param = string | number | bigint | Buffer | null;
/** Positional values, or one object of named values (@name in the SQL). */
type Params = Param[] | [Record<string, Param>];

export class Statements {
  private readonly cache = new Map<string, Database.Statement>();

  /**
   * @param db an open connection, already configured and migrated (see openProject)
   * @param file the project file's path, for messages
   */
  constructor(
    readonly db: DB,
    readonly file: string,
  ) {}

  private stmt(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }

  get<T>(sql: string, ...params: Params): T | undefined {
    return this.stmt(sql).get(...params) as T | undefined;
  }

  all<T>(sql: string, ...params: Params): T[] {
    return this.stmt(sql).all(...params) as T[];
  }

  run(sql: string, ...params: Params): Database.RunResult {
    return this.stmt(sql).run(...params);
  }

  insert(sql: string, ...params: Params): number {
    return Number(this.run(sql, ...params).lastInsertRowid);
  }

  /**
   * Run `fn` in one transaction (nested calls become savepoints). `fn` must be synchronous. IMMEDIATE takes the write
   * lock up front, so a second process writing the same project waits (busy_timeout) instead of failing mid-way.
   */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  clear(): void {
    this.cache.clear();
  }
}

export const article = (word: string) => (/^[aeiou]/.test(word) ? 'an' : 'a');

/** "probe #9 does not exist in FILE", with the ones that do (the first 20) or what to do when there are none. */
export function notFound(file: string, what: string, id: number, have: string[], none: string): CliffscopeError {
  const hint = have.length ? `${what}s here: ${have.slice(0, 20).join(', ')}${have.length > 20 ? ', …' : ''}` : none || undefined;
  return new CliffscopeError('bad-argument', `${what} #${id} does not exist in ${file}`, { file, hint });
}
