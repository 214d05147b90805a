import { randomBytes } from 'node:crypto';
import type { Db } from '../db/db.js';
import { fromJson, now, num, toJson } from '../db/db.js';
import { notFound, AppError } from '../errors.js';
import type { Stowage } from '../stowage.js';
import { nextRun, storedSchedule, type Schedule } from './schedule.js';
import type { TaskProperty } from './task-properties.js';
import { blobDigestsTask } from './blob-digests-task.js';
import { interruptRun, RunRecorder, startRun, type RunResult, type TaskRunContext } from './task-runs.js';

export type { TaskProperty } from './task-properties.js';
export type { TaskRunContext } from './task-runs.js';

export interface TaskType {
  id: string;
  name: string;
  /** The settings a task of this type takes; create and update validate against them. */
  properties?: TaskProperty[];
  /** Runs the task; the returned message is shown as the task's last result. */
  run(app: Stowage, attributes: Record<string, unknown>, ctx: TaskRunContext): Promise<string>;
  /** When set, one task of this type is created at first start-up, with this schedule and attributes. */
  defaultInstance?: { intervalSeconds: number; attributes: Record<string, unknown> };
}

export interface TaskRow {
  id: number;
  task_id: string;
  name: string;
  type: string;
  enabled: boolean;
  interval_seconds: number;
  schedule: Schedule;
  attributes: Record<string, unknown>;
  current_state: string;
  last_result: string | null;
  last_message: string | null;
  last_run_at: number | null;
  next_run_at: number | null;
  run_id: number | null;
  /** Of the run under way (any node), as last recorded. */
  progress: { processed: number; total: number | null } | null;
}

export interface TaskSpec {
  name: string;
  type: string;
  enabled: boolean;
  schedule: Schedule;
  attributes: Record<string, unknown>;
}

function task(r: Record<string, unknown>): TaskRow {
  const n = (v: unknown) => (v === null || v === undefined ? null : num(v));
  const runId = n(r.run_id);
  return {
    id: num(r.id),
    task_id: String(r.task_id),
    name: String(r.name),
    type: String(r.type),
    enabled: !!r.enabled,
    interval_seconds: num(r.interval_seconds),
    schedule: storedSchedule(r.schedule, num(r.interval_seconds)),
    attributes: fromJson(r.attributes),
    current_state: String(r.current_state),
    last_result: (r.last_result as string) ?? null,
    last_message: (r.last_message as string) ?? null,
    last_run_at: n(r.last_run_at),
    next_run_at: n(r.next_run_at),
    run_id: runId,
    progress: runId !== null && r.run_processed !== undefined && r.run_processed !== null ? { processed: num(r.run_processed), total: n(r.run_total) } : null,
  };
}

/** Removes blobs nothing references after the grace period, and orphaned bytes; reports what it freed. */
const blobGc: TaskType = {
  id: 'assetBlob.cleanup',
  name: 'Admin - Cleanup unused asset blobs',
  properties: [
    { id: 'blobStoreName', label: 'Blob store', type: 'blobstore', help: 'Only this blob store (all when empty)' },
    { id: 'graceSeconds', label: 'Grace period (seconds)', type: 'number', min: 0, help: 'Keep blobs touched within this many seconds (default: STOWAGE_BLOB_GC_GRACE)' },
  ],
  async run(app, attributes, ctx) {
    const graceSeconds = attributes.graceSeconds !== undefined ? Number(attributes.graceSeconds) : app.config.blobs.gcGraceSeconds;
    const store = attributes.blobStoreName ? await app.blobStores.require(String(attributes.blobStoreName)) : undefined;
    ctx?.log(`Collecting unused blobs${store ? ` of blob store '${store.name}'` : ''} untouched for ${graceSeconds} s`);
    const r = await app.blobs.gc(graceSeconds * 1000, store?.id, ctx?.signal);
    return `Deleted ${r.blobsDeleted} unused blobs and ${r.orphansDeleted} orphaned files; reclaimed ${r.bytesReclaimed} bytes`;
  },
};

/** How often a run writes its buffered log lines and progress, and looks for a stop request from another node. */
const FLUSH_MS = 500;

/**
 * Scheduled tasks. A run takes a lease row in the database first, so with several nodes a task
 * runs on exactly one of them; the node renews the lease every third of its length while the run
 * lives. A node whose lease was taken over stops recording and aborts its run; a run whose node
 * died is marked INTERRUPTED by the next node that sees its lease expired.
 */
export class TaskService {
  readonly types = new Map<string, TaskType>([
    [blobGc.id, blobGc],
    [blobDigestsTask.id, blobDigestsTask],
  ]);
  readonly node = randomBytes(8).toString('hex');
  /** Lease length; renewed every third of it. Short enough that a dead node's task is taken over soon. */
  leaseMs = 60_000;
  private timer?: NodeJS.Timeout;
  private readonly active = new Map<string, RunRecorder>();

  constructor(
    private readonly db: Db,
    private readonly app: Stowage,
  ) {}

  register(t: TaskType): void {
    this.types.set(t.id, t);
  }

  async ensureDefaults(): Promise<void> {
    const interval = this.app.config.blobs.gcIntervalSeconds;
    if (!(await this.db('tasks').where({ type: blobGc.id }).first())) {
      await this.create(blobGc.name, blobGc.id, interval, {});
    }
    for (const t of this.types.values()) {
      if (!t.defaultInstance || (await this.db('tasks').where({ type: t.id }).first())) continue;
      await this.create(t.name, t.id, t.defaultInstance.intervalSeconds, t.defaultInstance.attributes);
    }
  }

  /**
   * Creates a task that runs every `intervalSeconds` (0 = manual), first one interval from now;
   * attributes are not validated (internal callers). A day or an hour becomes Nexus's daily or
   * hourly schedule, so API clients see a kind they know.
   */
  async create(name: string, type: string, intervalSeconds: number, attributes: Record<string, unknown>): Promise<TaskRow> {
    const startDate = now() + intervalSeconds * 1000;
    const schedule: Schedule =
      intervalSeconds <= 0
        ? { kind: 'manual' }
        : intervalSeconds === 86_400
          ? { kind: 'daily', startDate }
          : intervalSeconds === 3600
            ? { kind: 'hourly', startDate }
            : { kind: 'interval', seconds: intervalSeconds };
    return this.createTask({ name, type, enabled: true, schedule, attributes });
  }

  async createTask(spec: TaskSpec): Promise<TaskRow> {
    if (!this.types.has(spec.type)) throw new AppError('BAD_REQUEST', `type: unknown task type '${spec.type}'`, { detail: { field: 'type' } });
    const taskId = randomBytes(12).toString('hex');
    await this.db('tasks').insert({
      task_id: taskId,
      name: spec.name,
      type: spec.type,
      enabled: spec.enabled,
      interval_seconds: spec.schedule.kind === 'interval' ? spec.schedule.seconds : 0,
      schedule: toJson(spec.schedule),
      attributes: toJson(spec.attributes),
      current_state: 'WAITING',
      next_run_at: nextRun(spec.schedule, now()),
    });
    return (await this.get(taskId))!;
  }

  /** Replaces name, enabled, schedule and attributes; the type stays. A run under way keeps going. */
  async update(taskId: string, spec: Omit<TaskSpec, 'type'>): Promise<{ before: TaskRow; after: TaskRow }> {
    const before = await this.require(taskId);
    await this.db('tasks')
      .where({ id: before.id })
      .update({
        name: spec.name,
        enabled: spec.enabled,
        interval_seconds: spec.schedule.kind === 'interval' ? spec.schedule.seconds : 0,
        schedule: toJson(spec.schedule),
        attributes: toJson(spec.attributes),
        next_run_at: nextRun(spec.schedule, now()),
      });
    return { before, after: await this.require(taskId) };
  }

  /** Deletes a task and its runs; refused (409) while it runs. */
  async delete(taskId: string): Promise<TaskRow> {
    await this.sweepExpired();
    const t = await this.require(taskId);
    const n = await this.db('tasks').where({ id: t.id }).whereNull('lease_owner').delete();
    if (n === 0) throw new AppError('CONFLICT', `Task '${t.name}' is running; stop it first`);
    return t;
  }

  private rows() {
    return this.db('tasks').leftJoin('task_runs', 'tasks.run_id', 'task_runs.id').select('tasks.*', 'task_runs.processed as run_processed', 'task_runs.total as run_total');
  }

  /** Tasks in creation order; `afterId` (a row id) and `limit` page through them. */
  async list(type?: string, page: { afterId?: number; limit?: number } = {}): Promise<TaskRow[]> {
    const q = this.rows().orderBy('tasks.id');
    if (type) q.where('tasks.type', type);
    if (page.afterId !== undefined) q.where('tasks.id', '>', page.afterId);
    if (page.limit !== undefined) q.limit(page.limit);
    return (await q).map(task);
  }

  async get(taskId: string): Promise<TaskRow | undefined> {
    const r = await this.rows().where('tasks.task_id', taskId).first();
    return r ? task(r) : undefined;
  }

  async require(taskId: string): Promise<TaskRow> {
    const t = await this.get(taskId);
    if (!t) throw notFound(`Task '${taskId}' not found`);
    return t;
  }

  /** Runs a task now and waits for it. Refused (409) while it runs anywhere. */
  async run(taskId: string, overrides: Record<string, unknown> = {}): Promise<TaskRow> {
    return (await this.begin(taskId, overrides)).done;
  }

  /**
   * Takes the lease and starts a run; resolves once the run is recorded as started, with the
   * run's id and a promise of the task row after the run (it never rejects).
   */
  async begin(taskId: string, overrides: Record<string, unknown> = {}): Promise<{ runId: number; done: Promise<TaskRow> }> {
    const t = await this.require(taskId);
    const type = this.types.get(t.type);
    if (!type) throw new AppError('CONFLICT', `Task type '${t.type}' is not available on this node`);
    const start = now();
    const stale = await this.db('tasks').where({ id: t.id }).first('run_id', 'lease_until', 'lease_owner');
    const leased = await this.db('tasks')
      .where({ id: t.id })
      .andWhere((w) => w.whereNull('lease_until').orWhere('lease_until', '<', start))
      .update({ lease_owner: this.node, lease_until: start + this.leaseMs, current_state: 'RUNNING', run_id: null, stop_requested: false });
    if (leased === 0) throw new AppError('CONFLICT', `Task '${t.name}' is already running`);
    if (stale?.run_id != null) {
      await interruptRun(this.db, num(stale.run_id), num(stale.lease_until ?? start), `Interrupted: node ${String(stale.lease_owner)} stopped renewing its lease`);
    }
    const runId = await startRun(this.db, t.id, this.node);
    await this.db('tasks').where({ id: t.id, lease_owner: this.node }).update({ run_id: runId });
    const recorder = new RunRecorder(this.db, t.id, runId, this.node);
    this.active.set(taskId, recorder);
    recorder.log(`Task '${t.name}' (${t.type}) started on node ${this.node}`);
    const done = this.execute(t, type, { ...t.attributes, ...overrides }, recorder, start);
    return { runId, done };
  }

  private async execute(t: TaskRow, type: TaskType, attributes: Record<string, unknown>, recorder: RunRecorder, start: number): Promise<TaskRow> {
    const lost = (why: string) => {
      if (!recorder.recording && recorder.signal.aborted) return;
      recorder.recording = false;
      recorder.controller.abort(new Error(why));
      this.app.log.warn(`Task ${t.name}: ${why}; its run on this node stops`);
    };
    const renew = setInterval(
      () => {
        void this.db('tasks')
          .where({ id: t.id, lease_owner: this.node, run_id: recorder.runId })
          .update({ lease_until: now() + this.leaseMs })
          .then((n) => n === 0 && lost('the lease was taken over by another node'))
          .catch((e) => this.app.log.warn(`Task ${t.name}: renewing the lease failed`, e));
      },
      Math.max(10, Math.floor(this.leaseMs / 3)),
    );
    const flush = setInterval(() => {
      void recorder
        .flush()
        .then(async (held) => {
          if (!held) return lost('the lease was taken over by another node');
          const r = await this.db('tasks').where({ id: t.id }).first('stop_requested');
          if (r?.stop_requested && !recorder.signal.aborted) recorder.controller.abort(new Error('stopped by request'));
        })
        .catch((e) => this.app.log.warn(`Task ${t.name}: recording the run failed`, e));
    }, FLUSH_MS);
    renew.unref();
    flush.unref();

    let result: RunResult = 'OK';
    let message: string;
    try {
      message = await type.run(this.app, attributes, recorder);
    } catch (e) {
      const aborted = recorder.signal.aborted;
      result = aborted ? 'CANCELED' : 'FAILED';
      message = aborted ? `Stopped: ${(recorder.signal.reason as Error)?.message ?? 'by request'}` : (e as Error).message;
      if (!aborted) this.app.log.warn(`Task ${t.name} failed`, e);
    } finally {
      clearInterval(renew);
      clearInterval(flush);
      if (this.active.get(t.task_id) === recorder) this.active.delete(t.task_id);
    }
    const end = now();
    await recorder
      .finish(result, message, async (tx) => {
        const cur = await tx('tasks').where({ id: t.id }).first('schedule', 'interval_seconds');
        const schedule = cur ? storedSchedule(cur.schedule, num(cur.interval_seconds)) : t.schedule;
        const n = await tx('tasks')
          .where({ id: t.id, lease_owner: this.node, run_id: recorder.runId })
          .update({
            lease_owner: null,
            lease_until: null,
            run_id: null,
            stop_requested: false,
            current_state: 'WAITING',
            last_result: result,
            last_message: message,
            last_run_at: start,
            next_run_at: nextRun(schedule, end),
          });
        return n === 1;
      })
      .catch((e) => {
        this.app.log.warn(`Task ${t.name}: recording the end of the run failed`, e);
        return false;
      });
    return (await this.get(t.task_id).catch(() => undefined)) ?? t;
  }

  /**
   * Asks a running task to stop: at once on this node, within a flush interval on the node that
   * runs it. The run ends CANCELED when the task honours its signal. 409 when it is not running.
   */
  async cancel(taskId: string): Promise<TaskRow> {
    await this.sweepExpired();
    const t = await this.require(taskId);
    const local = this.active.get(taskId);
    if (local) {
      local.controller.abort(new Error('stopped by request'));
      return t;
    }
    const n = await this.db('tasks').where({ id: t.id }).whereNotNull('lease_owner').where('lease_until', '>=', now()).update({ stop_requested: true });
    if (n === 0) throw new AppError('CONFLICT', `Task '${t.name}' is not running`);
    return t;
  }

  /** Releases leases whose node stopped renewing them, marking their runs INTERRUPTED. */
  async sweepExpired(): Promise<void> {
    const at = now();
    const stale = await this.db('tasks').whereNotNull('lease_owner').where('lease_until', '<', at).select('id', 'run_id', 'lease_owner', 'lease_until');
    for (const r of stale) {
      const message = `Interrupted: node ${String(r.lease_owner)} stopped renewing its lease`;
      await this.db.transaction(async (tx) => {
        const n = await tx('tasks')
          .where({ id: r.id, lease_owner: r.lease_owner, lease_until: r.lease_until })
          .update({ lease_owner: null, lease_until: null, run_id: null, stop_requested: false, current_state: 'WAITING', last_result: 'INTERRUPTED', last_message: message });
        if (n === 1 && r.run_id != null) await interruptRun(tx, num(r.run_id), num(r.lease_until), message);
      });
    }
  }

  /** Checks for due tasks every `pollMs`. */
  start(pollMs = 15_000): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.runDue().catch((e) => this.app.log.warn('Task scheduler', e)), pollMs);
    this.timer.unref();
  }

  /** Starts every enabled task whose next run is due and that no node runs. */
  async runDue(): Promise<void> {
    await this.sweepExpired();
    const at = now();
    const due = await this.db('tasks')
      .where({ enabled: true })
      .whereNotNull('next_run_at')
      .where('next_run_at', '<=', at)
      .andWhere((w) => w.whereNull('lease_until').orWhere('lease_until', '<', at))
      .select('task_id');
    for (const r of due) {
      const taskId = String(r.task_id);
      if (this.active.has(taskId)) continue;
      await this.begin(taskId).catch(() => undefined);
    }
  }

  /**
   * Stops the scheduler. Runs under way are aborted and no longer recorded: their leases lapse
   * and the next node to look marks them INTERRUPTED, as after a crash.
   */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const r of this.active.values()) {
      r.recording = false;
      r.controller.abort(new Error('the server is shutting down'));
    }
  }
}
