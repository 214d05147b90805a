import { randomBytes } from 'node:crypto';
import type { Db } from '../db/db.js';
import { fromJson, now, num, toJson } from '../db/db.js';
import { notFound, AppError } from '../errors.js';
import type { Stowage } from '../stowage.js';

export interface TaskType {
  id: string;
  name: string;
  /** Runs the task; the returned message is shown as the task's last result. */
  run(app: Stowage, attributes: Record<string, unknown>): Promise<string>;
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
  attributes: Record<string, unknown>;
  current_state: string;
  last_result: string | null;
  last_message: string | null;
  last_run_at: number | null;
  next_run_at: number | null;
}

function task(r: Record<string, unknown>): TaskRow {
  const n = (v: unknown) => (v === null || v === undefined ? null : num(v));
  return {
    id: num(r.id),
    task_id: String(r.task_id),
    name: String(r.name),
    type: String(r.type),
    enabled: !!r.enabled,
    interval_seconds: num(r.interval_seconds),
    attributes: fromJson(r.attributes),
    current_state: String(r.current_state),
    last_result: (r.last_result as string) ?? null,
    last_message: (r.last_message as string) ?? null,
    last_run_at: n(r.last_run_at),
    next_run_at: n(r.next_run_at),
  };
}

/** Removes blobs nothing references after the grace period, and orphaned bytes; reports what it freed. */
const blobGc: TaskType = {
  id: 'assetBlob.cleanup',
  name: 'Admin - Cleanup unused asset blobs',
  async run(app, attributes) {
    const graceSeconds = attributes.graceSeconds !== undefined ? Number(attributes.graceSeconds) : app.config.blobs.gcGraceSeconds;
    const store = attributes.blobStoreName ? await app.blobStores.require(String(attributes.blobStoreName)) : undefined;
    const r = await app.blobs.gc(graceSeconds * 1000, store?.id);
    return `Deleted ${r.blobsDeleted} unused blobs and ${r.orphansDeleted} orphaned files; reclaimed ${r.bytesReclaimed} bytes`;
  },
};

const LEASE_MS = 10 * 60_000;

/**
 * Scheduled tasks. A run takes a lease row in the database first, so with several nodes a task
 * runs on exactly one of them; the lease expires if that node dies.
 */
export class TaskService {
  readonly types = new Map<string, TaskType>([[blobGc.id, blobGc]]);
  private readonly node = randomBytes(8).toString('hex');
  private timer?: NodeJS.Timeout;
  private running = new Set<string>();

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

  async create(name: string, type: string, intervalSeconds: number, attributes: Record<string, unknown>): Promise<TaskRow> {
    if (!this.types.has(type)) throw new AppError('BAD_REQUEST', `type: unknown task type '${type}'`, { detail: { field: 'type' } });
    const taskId = randomBytes(12).toString('hex');
    await this.db('tasks').insert({
      task_id: taskId,
      name,
      type,
      enabled: true,
      interval_seconds: intervalSeconds,
      attributes: toJson(attributes),
      current_state: 'WAITING',
      next_run_at: intervalSeconds > 0 ? now() + intervalSeconds * 1000 : null,
    });
    return (await this.get(taskId))!;
  }

  async list(type?: string): Promise<TaskRow[]> {
    const q = this.db('tasks').orderBy('id');
    if (type) q.where({ type });
    return (await q).map(task);
  }

  async get(taskId: string): Promise<TaskRow | undefined> {
    const r = await this.db('tasks').where({ task_id: taskId }).first();
    return r ? task(r) : undefined;
  }

  /** Runs a task now and waits for it. Refused (409) while it runs anywhere. */
  async run(taskId: string, overrides: Record<string, unknown> = {}): Promise<TaskRow> {
    const t = await this.get(taskId);
    if (!t) throw notFound(`Task '${taskId}' not found`);
    const type = this.types.get(t.type);
    if (!type) throw new AppError('CONFLICT', `Task type '${t.type}' is not available on this node`);
    const start = now();
    const leased = await this.db('tasks')
      .where({ id: t.id })
      .andWhere((w) => w.whereNull('lease_until').orWhere('lease_until', '<', start))
      .update({ lease_owner: this.node, lease_until: start + LEASE_MS, current_state: 'RUNNING' });
    if (leased === 0) throw new AppError('CONFLICT', `Task '${t.name}' is already running`);
    this.running.add(taskId);
    let result = 'OK';
    let message: string;
    try {
      message = await type.run(this.app, { ...t.attributes, ...overrides });
    } catch (e) {
      result = 'FAILED';
      message = (e as Error).message;
      this.app.log.warn(`Task ${t.name} failed`, e);
    } finally {
      this.running.delete(taskId);
    }
    const end = now();
    await this.db('tasks')
      .where({ id: t.id })
      .update({
        lease_owner: null,
        lease_until: null,
        current_state: 'WAITING',
        last_result: result,
        last_message: message,
        last_run_at: start,
        next_run_at: t.interval_seconds > 0 ? end + t.interval_seconds * 1000 : null,
      });
    return (await this.get(taskId))!;
  }

  /** Checks for due tasks every `pollMs`. */
  start(pollMs = 15_000): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.runDue().catch((e) => this.app.log.warn('Task scheduler', e)), pollMs);
    this.timer.unref();
  }

  private async runDue(): Promise<void> {
    const due = await this.db('tasks').where({ enabled: true }).whereNotNull('next_run_at').where('next_run_at', '<=', now());
    for (const r of due) {
      if (this.running.has(String(r.task_id))) continue;
      await this.run(String(r.task_id)).catch(() => undefined);
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
