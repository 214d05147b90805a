import path from 'node:path';
import { mkdirSync } from 'node:fs';
import knexFactory, { type Knex } from 'knex';
import Database from 'better-sqlite3';
import { migrationSource } from '../../migrations/index.js';
import { LRUCache } from 'lru-cache';

export type Db = Knex;
export type Tx = Knex.Transaction;

export function isPostgresUrl(url: string | undefined): boolean {
  return !!url && /^postgres(ql)?:\/\//.test(url);
}

/**
 * Opens the database: PostgreSQL when the URL is postgres://…, otherwise SQLite (WAL, foreign
 * keys on, a busy timeout so concurrent writers wait instead of failing). Dialect quirks stay here.
 */
export function openDb(url: string | undefined, dataDir: string): Db {
  if (isPostgresUrl(url)) {
    return knexFactory({
      client: 'pg',
      connection: url,
      pool: { min: 0, max: 20 },
      migrations: { migrationSource },
    });
  }
  const file = url ? path.resolve(url.replace(/^sqlite:(\/\/)?/, '')) : path.join(dataDir, 'db', 'stowage.sqlite');
  mkdirSync(path.dirname(file), { recursive: true });
  const db = knexFactory({
    client: 'better-sqlite3',
    connection: { filename: file },
    useNullAsDefault: true,
    // One connection: better-sqlite3 is synchronous, and a single writer avoids SQLITE_BUSY.
    pool: {
      min: 1,
      max: 1,
      afterCreate(conn: { pragma(s: string): unknown; prepare(sql: string): unknown }, done: (err: Error | null, conn: unknown) => void) {
        cachePreparedStatements(conn, writerStatements);
        conn.pragma('journal_mode = WAL');
        conn.pragma('synchronous = NORMAL');
        conn.pragma('foreign_keys = ON');
        conn.pragma('busy_timeout = 10000');
        done(null, conn);
      },
    },
    migrations: { migrationSource },
  });
  // Every statement of the writer connection is counted (knex prepares each query): the reader
  // knows then, without asking SQLite, whether this process may have committed since it last looked.
  const writerStatements = { n: 0 };
  const reader = new CommittedReader(file, writerStatements);
  readers.set(db, reader);
  // db.destroy() ends in the client's destroy: the reader closes with the pool.
  const client = db.client as { destroy(cb?: unknown): Promise<void> };
  const destroy = client.destroy.bind(client);
  client.destroy = (cb?: unknown) => {
    reader.close();
    return destroy(cb);
  };
  return db;
}

/** Rows kept by the committed reader between two commits (a bound: past it the map is emptied). */
const MAX_KEPT_ROWS = 20_000;

/**
 * How long the commit version read is trusted while this process's writer ran no statement: a
 * commit by another process (a CLI command on the same file) is seen within this time.
 */
const FOREIGN_COMMIT_MS = 1;

/** A lookup that found no row, kept as such. */
const NO_ROW = Symbol('no row');

/**
 * A second, read-only SQLite connection for hot single-row lookups, past knex's query builder,
 * compiler and pool (most of the CPU of a small cached GET). In WAL mode a reader sees only
 * committed data, never the open transaction of the writer connection, and a commit is visible to
 * it as soon as it returns. Statements are prepared once per SQL text.
 *
 * Rows read are kept until the next commit: `PRAGMA data_version` on this connection changes
 * whenever another connection (the writer, which every write of the process goes through) has
 * committed since it was last asked, and asking reads no page. So between writes a repeated
 * lookup (one packument's digest, each group member's copy of one metadata path, a negative
 * cache entry) is a map lookup, and no write, whatever code made it, can leave a kept row stale.
 * Kept rows are frozen: callers copy what they change.
 *
 * Asking costs a statement and SQLite's read locks (two fcntl calls): 5–6 times per group GET, it
 * was 6–9% of the CPU of a jar or pom GET through a group. So the answer is reused while this
 * process's writer has run no statement since (every write of the process goes through it, so
 * its own commits are always seen at once) and for at most FOREIGN_COMMIT_MS: another process's
 * commit is seen within a millisecond.
 */
class CommittedReader {
  private conn: Database.Database | null = null;
  private readonly stmts = new LRUCache<string, Database.Statement>({ max: 200 });
  private readonly tableStmts = new LRUCache<string, Database.Statement>({ max: 200 });
  private version: Database.Statement | null = null;
  private seen: unknown = undefined;
  private readonly kept = new Map<string, Map<unknown, unknown>>();
  private readonly keptTables = new Map<string, Map<unknown, unknown>>();
  private keptRows = 0;
  private closed = false;
  /** The writer's statement count and the time when `seen` was read. */
  private seenStatements = -1;
  private seenAt = 0;

  constructor(
    private readonly file: string,
    private readonly writerStatements: { n: number },
  ) {}

  /** The commit version: changes whenever anything else committed since it was last read (kept rows go then). */
  dataVersion(): unknown {
    if (this.closed) throw new Error('database closed');
    if (!this.conn) {
      this.conn = new Database(this.file, { readonly: true, fileMustExist: true });
      this.conn.pragma('busy_timeout = 10000');
      this.version = this.conn.prepare('PRAGMA data_version').pluck();
    }
    const t = Date.now();
    if (this.seenStatements === this.writerStatements.n && t - this.seenAt < FOREIGN_COMMIT_MS) return this.seen;
    const v = this.version!.get();
    this.seenStatements = this.writerStatements.n;
    this.seenAt = t;
    if (v !== this.seen) {
      this.seen = v;
      this.forget();
    }
    return v;
  }

  /** `byTable`: the row's columns grouped by the table they come from (a join of tables with like-named columns). */
  get(sql: string, params: unknown[], byTable = false): unknown {
    this.dataVersion();
    // Kept rows by statement, then by each parameter in turn (nested maps keyed by the values
    // themselves): no key string is built and hashed per lookup (a JSON text of the parameters
    // appended to the SQL was ~4% of a group GET's CPU). Absent rows are kept too (NO_ROW).
    const [keptBySql, stmts] = byTable ? [this.keptTables, this.tableStmts] : [this.kept, this.stmts];
    let node = keptBySql.get(sql);
    if (node === undefined) keptBySql.set(sql, (node = new Map()));
    const last = params.length - 1;
    for (let i = 0; i < last; i++) {
      let next = node.get(params[i]) as Map<unknown, unknown> | undefined;
      if (next === undefined) node.set(params[i], (next = new Map()));
      node = next;
    }
    const leafKey = last < 0 ? undefined : params[last];
    const kept = node.get(leafKey);
    if (kept !== undefined) return kept === NO_ROW ? undefined : kept;
    let st = stmts.get(sql);
    if (!st) {
      st = this.conn!.prepare(sql);
      if (byTable) st.expand(true);
      stmts.set(sql, st);
    }
    const row = st.get(...params) as Record<string, unknown> | undefined;
    if (row && byTable) for (const t of Object.values(row)) Object.freeze(t);
    if (++this.keptRows > MAX_KEPT_ROWS) this.forget();
    node.set(leafKey, row ? Object.freeze(row) : NO_ROW);
    return row;
  }

  /** Drops every kept row (a commit, or the bound reached). */
  private forget(): void {
    this.kept.clear();
    this.keptTables.clear();
    this.keptRows = 0;
  }

  close(): void {
    this.closed = true;
    this.stmts.clear();
    this.tableStmts.clear();
    this.forget();
    this.conn?.close();
    this.conn = null;
  }
}

const readers = new WeakMap<Db, CommittedReader>();

/**
 * The database's commit version: equal to an earlier reading only if nothing (no connection, no
 * process) committed in between; null where there is none to read without a query (PostgreSQL).
 */
export function commitVersion(db: Db): unknown {
  const reader = readers.get(db);
  if (!reader) return null;
  try {
    return reader.dataVersion();
  } catch {
    return null;
  }
}

/**
 * One row of a small read-only query (`?` placeholders) from committed data, on SQLite through
 * the read-only connection above; `undefined` when nothing matches. `null` when this database has
 * no such reader (PostgreSQL, or it failed): the caller then asks knex.
 */
export function readCommittedRow(db: Db, sql: string, params: unknown[]): Record<string, unknown> | undefined | null {
  const reader = readers.get(db);
  if (!reader) return null;
  try {
    return reader.get(sql, params) as Record<string, unknown> | undefined;
  } catch {
    return null;
  }
}

/**
 * As readCommittedRow, for a join: one row's columns grouped by table (`{ assets: {…}, blobs: {…} }`),
 * so that tables with like-named columns (`id`, `created_at`) can be read in one statement.
 */
export function readCommittedTables(db: Db, sql: string, params: unknown[]): Record<string, Record<string, unknown>> | undefined | null {
  const reader = readers.get(db);
  if (!reader) return null;
  try {
    return reader.get(sql, params, true) as Record<string, Record<string, unknown>> | undefined;
  } catch {
    return null;
  }
}

/**
 * knex prepares every query anew on better-sqlite3 (about a tenth of the CPU of a small cached
 * GET); a statement is reusable, so keep the prepared ones by SQL text. Bounded: SQL built with
 * variable IN lists would otherwise grow it without end: the least recently used go first.
 */
function cachePreparedStatements(conn: { prepare(sql: string): unknown }, statements: { n: number }): void {
  const prepare = conn.prepare.bind(conn);
  const cache = new LRUCache<string, object>({ max: 2000 });
  conn.prepare = (sql: string) => {
    statements.n++;
    let st = cache.get(sql);
    if (st === undefined) {
      st = prepare(sql) as object;
      cache.set(sql, st);
    }
    return st;
  };
}

export function isPostgres(db: Db): boolean {
  return db.client.config.client === 'pg';
}

/** Arbitrary constant naming Stowage's start-up lock among PostgreSQL advisory locks. */
const STARTUP_LOCK = 0x5709_a6e;

/**
 * Runs `fn` while holding the cluster-wide start-up lock: several nodes starting at once on one
 * PostgreSQL then migrate and create their defaults one after the other instead of racing
 * (knex's own migration lock makes the loser fail instead of wait). SQLite has a single node.
 */
export async function withStartupLock<T>(db: Db, fn: () => Promise<T>): Promise<T> {
  if (!isPostgres(db)) return fn();
  // A session-level lock lives on one connection: hold that connection for the whole start-up.
  const conn = await db.client.acquireConnection();
  try {
    await db.raw('select pg_advisory_lock(?)', [STARTUP_LOCK]).connection(conn);
    try {
      return await fn();
    } finally {
      await db.raw('select pg_advisory_unlock(?)', [STARTUP_LOCK]).connection(conn);
    }
  } finally {
    await db.client.releaseConnection(conn);
  }
}

export async function migrate(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest()) as [number, string[]];
  return applied;
}

/** True when the error is a unique-constraint violation on either dialect. */
export function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === '23505' || err?.code === 'SQLITE_CONSTRAINT_UNIQUE' || err?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

export function isForeignKeyViolation(e: unknown): boolean {
  const err = e as { code?: string };
  return err?.code === '23503' || err?.code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}

/** JSON columns are text on both dialects; these keep the (de)serialisation in one place. */
export function toJson(v: unknown): string {
  return JSON.stringify(v ?? {});
}
export function fromJson<T = Record<string, unknown>>(v: unknown): T {
  if (v === null || v === undefined || v === '') return {} as T;
  return (typeof v === 'string' ? JSON.parse(v) : v) as T;
}

/** Timestamps are stored as epoch milliseconds (bigint) so comparisons are portable. */
export function now(): number {
  return Date.now();
}

/** pg returns bigint as string; normalise numeric columns. */
export function num(v: unknown): number {
  return typeof v === 'string' ? Number(v) : (v as number);
}
