import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migrate, openDb, type Db } from '../../src/db/db.js';

/**
 * Runs `fn` on a migrated SQLite database in a fresh data directory (its file is
 * `<dir>/db/stowage.sqlite`), with foreign keys off so a test can insert only the rows it needs;
 * then closes it and removes the directory.
 */
export async function withSqlite(fn: (db: Db, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'stowage-sqlite-'));
  const db = openDb(undefined, dir);
  try {
    await migrate(db);
    // The pool has one connection: the pragma holds for every later statement.
    await db.raw('pragma foreign_keys = OFF');
    await fn(db, dir);
  } finally {
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
