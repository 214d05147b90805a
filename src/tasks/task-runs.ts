import type { Db } from '../db/db.js';
import { now, num } from '../db/db.js';

/** Runs kept per task (older ones go, with their logs, when a new run starts). */
export const RUNS_KEPT = 50;
/** Log lines kept per run; later lines are counted and the count logged at the end. */
export const LOG_LINES_KEPT = 5000;
const MAX_LINE = 4000;

export type RunResult = 'OK' | 'FAILED' | 'CANCELED' | 'INTERRUPTED';

export interface TaskRunRow {
  id: number;
  task_id: number;
  node: string;
  started: number;
  ended: number | null;
  result: RunResult | null;
  message: string | null;
  processed: number;
  total: number | null;
}

export function runRow(r: Record<string, unknown>): TaskRunRow {
  const n = (v: unknown) => (v === null || v === undefined ? null : num(v));
  return {
    id: num(r.id),
    task_id: num(r.task_id),
    node: String(r.node),
    started: num(r.started),
    ended: n(r.ended),
    result: (r.result as RunResult) ?? null,
    message: (r.message as string) ?? null,
    processed: num(r.processed ?? 0),
    total: n(r.total),
  };
}

/** What a task type's `run` gets besides its attributes. */
export interface TaskRunContext {
  readonly runId: number;
  /** Aborted by `POST /tasks/{id}/stop`, by shutdown, or when this node lost the lease. Honour it between units of work. */
  readonly signal: AbortSignal;
  /** Appends a line to the run's log (readable at `GET /tasks/{id}/runs/{runId}/log`). */
  log(line: string): void;
  progress(processed: number, total?: number | null): void;
}

/**
 * Records one run: log lines and progress are buffered and written together, and every write is
 * conditional on this node still holding the task's lease for this run — a node that lost its
 * lease (another node took the task over) stops recording.
 */
export class RunRecorder implements TaskRunContext {
  readonly controller = new AbortController();
  private lines: Array<{ seq: number; time: number; line: string }> = [];
  private seq = 0;
  private dropped = 0;
  private processed = 0;
  private total: number | null = null;
  private dirty = false;
  /** False once the lease is lost: nothing more is written. */
  recording = true;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    readonly taskRowId: number,
    readonly runId: number,
    private readonly node: string,
  ) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  log(line: string): void {
    if (this.seq >= LOG_LINES_KEPT) {
      this.dropped++;
      return;
    }
    this.lines.push({ seq: ++this.seq, time: now(), line: line.length > MAX_LINE ? line.slice(0, MAX_LINE) + '…' : line });
    this.dirty = true;
  }

  progress(processed: number, total?: number | null): void {
    if (Number.isFinite(processed)) this.processed = Math.max(0, Math.floor(processed));
    if (total !== undefined) this.total = total === null || !Number.isFinite(total) ? null : Math.max(0, Math.floor(total));
    this.dirty = true;
  }

  /** The lease condition every write carries. */
  private leaseHeld(q: Db | import('knex').Knex.Transaction) {
    return q('tasks').where({ id: this.taskRowId, lease_owner: this.node, run_id: this.runId }).select(q.raw('1'));
  }

  /** Writes buffered lines and progress; resolves false when the lease is no longer this node's. */
  flush(): Promise<boolean> {
    const p = this.writing.then(() => this.write());
    this.writing = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  private async write(): Promise<boolean> {
    if (!this.recording) return false;
    if (!this.dirty) return true;
    const lines = this.lines;
    this.lines = [];
    this.dirty = false;
    const held = await this.db.transaction(async (tx) => {
      const n = await tx('task_runs').where({ id: this.runId }).whereExists(this.leaseHeld(tx)).update({ processed: this.processed, total: this.total });
      if (n !== 1) return false;
      for (let i = 0; i < lines.length; i += 200) {
        await tx('task_run_logs').insert(lines.slice(i, i + 200).map((l) => ({ run_id: this.runId, ...l })));
      }
      return true;
    });
    if (!held) this.recording = false;
    return held;
  }

  /**
   * Records the end of the run and releases the lease in one transaction; `release` updates the
   * task row (given the transaction) and reports whether the lease was still this node's.
   */
  async finish(result: RunResult, message: string, release: (tx: import('knex').Knex.Transaction) => Promise<boolean>): Promise<boolean> {
    await this.writing;
    // Past the cap, the count of what was left out and the outcome are still kept.
    if (this.dropped > 0) this.lines.push({ seq: ++this.seq, time: now(), line: `(${this.dropped} further lines were not kept)` });
    this.lines.push({ seq: ++this.seq, time: now(), line: `Finished: ${result}: ${message}`.slice(0, MAX_LINE) });
    this.dropped = 0;
    if (!this.recording) return false;
    const lines = this.lines;
    this.lines = [];
    return this.db.transaction(async (tx) => {
      const n = await tx('task_runs')
        .where({ id: this.runId })
        .whereExists(this.leaseHeld(tx))
        .update({ processed: this.processed, total: this.total, ended: now(), result, message });
      if (n !== 1) return false;
      for (let i = 0; i < lines.length; i += 200) {
        await tx('task_run_logs').insert(lines.slice(i, i + 200).map((l) => ({ run_id: this.runId, ...l })));
      }
      return release(tx);
    });
  }
}

/** Starts a run row for a task and drops the runs past the newest RUNS_KEPT. */
export async function startRun(db: Db, taskRowId: number, node: string): Promise<number> {
  const [row] = await db('task_runs').insert({ task_id: taskRowId, node, started: now(), processed: 0 }).returning('id');
  const runId = num(typeof row === 'object' ? (row as { id: unknown }).id : row);
  const old = await db('task_runs').where({ task_id: taskRowId }).orderBy('id', 'desc').offset(RUNS_KEPT).limit(1000).select('id');
  if (old.length > 0) {
    const ids = old.map((r) => num(r.id));
    await db('task_run_logs').whereIn('run_id', ids).delete();
    await db('task_runs').whereIn('id', ids).delete();
  }
  return runId;
}

/** Marks a run that never ended (its node stopped renewing the lease) as INTERRUPTED. */
export async function interruptRun(db: Db | import('knex').Knex.Transaction, runId: number, at: number, message: string): Promise<void> {
  await db('task_runs').where({ id: runId }).whereNull('ended').update({ ended: at, result: 'INTERRUPTED', message });
}

export async function listRuns(db: Db, taskRowId: number, afterId: number | null, limit: number): Promise<TaskRunRow[]> {
  const q = db('task_runs').where({ task_id: taskRowId }).orderBy('id', 'desc').limit(limit);
  if (afterId !== null) q.where('id', '<', afterId);
  return (await q).map(runRow);
}

export async function getRun(db: Db, taskRowId: number, runId: number): Promise<TaskRunRow | undefined> {
  const r = await db('task_runs').where({ task_id: taskRowId, id: runId }).first();
  return r ? runRow(r) : undefined;
}

/** The log of a run as text lines (`<ISO time> <line>`), read in pages so a long log is streamed. */
export async function* logLines(db: Db, runId: number): AsyncGenerator<string> {
  let after = 0;
  for (;;) {
    const rows = await db('task_run_logs').where({ run_id: runId }).where('seq', '>', after).orderBy('seq').limit(500);
    for (const r of rows) yield `${new Date(num(r.time)).toISOString()} ${String(r.line)}\n`;
    if (rows.length < 500) return;
    after = num(rows[rows.length - 1].seq);
  }
}
