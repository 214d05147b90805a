import { Readable } from 'node:stream';
import Router from '@koa/router';
import type { Stowage } from '../stowage.js';
import { AppError, badRequest, notFound } from '../errors.js';
import { auditOrigin, requireApp } from '../http/auth.js';
import type { TaskRow, TaskSpec, TaskType } from '../tasks/task-service.js';
import { frequencyXO, parseFrequency } from '../tasks/schedule.js';
import { validateProperties } from '../tasks/task-properties.js';
import { getRun, listRuns, logLines, type TaskRunRow } from '../tasks/task-runs.js';
import { readJson } from './body.js';
import { iso, pageParams, queryParam } from './params.js';

const DOMAIN = 'scheduling';

/** Nexus TaskXO, plus what Stowage adds: enabled, frequency, properties (as strings, as Nexus sends them) and the progress of a run under way. */
function taskXO(t: TaskRow) {
  return {
    id: t.task_id,
    name: t.name,
    type: t.type,
    enabled: t.enabled,
    message: t.last_message,
    currentState: t.current_state,
    lastRunResult: t.last_result,
    nextRun: t.enabled ? iso(t.next_run_at) : null,
    lastRun: iso(t.last_run_at),
    frequency: frequencyXO(t.schedule),
    properties: Object.fromEntries(Object.entries(t.attributes).map(([k, v]) => [k, String(v)])),
    progress: t.current_state === 'RUNNING' ? (t.progress ?? { processed: 0, total: null }) : null,
  };
}

function runXO(r: TaskRunRow) {
  return {
    id: String(r.id),
    node: r.node,
    started: iso(r.started),
    ended: iso(r.ended),
    result: r.result ?? 'RUNNING',
    message: r.message,
    processed: r.processed,
    total: r.total,
  };
}

function typeXO(t: TaskType) {
  return {
    type: t.id,
    name: t.name,
    properties: (t.properties ?? []).map((p) => ({ id: p.id, label: p.label, type: p.type, required: !!p.required, default: p.default ?? null, help: p.help ?? null })),
  };
}

/** A page position: the row id of the last item sent. */
function afterId(token: string | null): number | undefined {
  if (token === null) return undefined;
  if (!/^\d+$/.test(token)) throw badRequest('continuationToken: not a token this API sent', { field: 'continuationToken' });
  return Number(token);
}

async function taskSpec(app: Stowage, type: TaskType | undefined, typeId: string, body: Record<string, unknown>): Promise<Omit<TaskSpec, 'type'>> {
  if (!type) throw badRequest(`type: unknown task type '${typeId}' (see GET /service/rest/v1/tasks/types)`, { field: 'type' });
  if (typeof body.name !== 'string' || body.name.trim() === '') throw badRequest('name: required', { field: 'name' });
  if (body.name.length > 255) throw badRequest('name: at most 255 characters', { field: 'name' });
  if (body.enabled !== undefined && typeof body.enabled !== 'boolean') throw badRequest('enabled: expected true or false', { field: 'enabled' });
  return {
    name: body.name.trim(),
    enabled: body.enabled ?? true,
    schedule: parseFrequency(body.frequency, Date.now()),
    attributes: await validateProperties(app, type.properties ?? [], body.properties),
  };
}

function object(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest('body: expected a JSON object', { field: 'body' });
  return v as Record<string, unknown>;
}

/**
 * `/tasks` in Nexus's shapes: list (by type, paged), get, create, update, delete, run, stop, the
 * task types and their properties, and each task's runs and run logs.
 */
export function taskRoutes(app: Stowage): Router {
  const r = new Router();
  const maxJson = app.config.http.maxJsonBytes;

  const load = async (id: string) => {
    await app.tasks.sweepExpired();
    return app.tasks.require(id);
  };

  r.get('/tasks', async (ctx) => {
    await requireApp(app, ctx, 'nx-tasks-read');
    const { token, limit } = pageParams(ctx);
    await app.tasks.sweepExpired();
    const rows = await app.tasks.list(queryParam(ctx, 'type'), { afterId: afterId(token), limit: limit + 1 });
    const more = rows.length > limit;
    const items = rows.slice(0, limit);
    ctx.body = { items: items.map(taskXO), continuationToken: more ? String(items[items.length - 1].id) : null };
  });

  r.get('/tasks/types', async (ctx) => {
    await requireApp(app, ctx, 'nx-tasks-read');
    ctx.body = [...app.tasks.types.values()].sort((a, b) => a.id.localeCompare(b.id)).map(typeXO);
  });

  r.get('/tasks/:id', async (ctx) => {
    await requireApp(app, ctx, 'nx-tasks-read');
    ctx.body = taskXO(await load(ctx.params.id));
  });

  r.post('/tasks', async (ctx) => {
    await requireApp(app, ctx, 'nx-tasks-create');
    const body = object(await readJson(ctx, maxJson));
    const typeId = typeof body.type === 'string' ? body.type : '';
    if (!typeId) throw badRequest('type: required', { field: 'type' });
    const spec = await taskSpec(app, app.tasks.types.get(typeId), typeId, body);
    const created = await app.tasks.createTask({ ...spec, type: typeId });
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'created', context: created.task_id, attributes: { after: taskXO(created) } });
    ctx.status = 201;
    ctx.set('Location', `${app.baseUrl(ctx)}/service/rest/v1/tasks/${created.task_id}`);
    ctx.body = taskXO(created);
  });

  r.put('/tasks/:id', async (ctx) => {
    await requireApp(app, ctx, 'nx-tasks-update');
    const current = await load(ctx.params.id);
    const body = object(await readJson(ctx, maxJson));
    if (body.type !== undefined && body.type !== current.type) throw badRequest(`type: a task's type cannot change (is '${current.type}')`, { field: 'type' });
    const spec = await taskSpec(app, app.tasks.types.get(current.type), current.type, body);
    const { before, after } = await app.tasks.update(current.task_id, spec);
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'updated', context: after.task_id, attributes: { before: taskXO(before), after: taskXO(after) } });
    ctx.body = taskXO(after);
  });

  r.delete('/tasks/:id', async (ctx) => {
    await requireApp(app, ctx, 'nx-tasks-delete');
    const before = await app.tasks.delete(ctx.params.id);
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'deleted', context: before.task_id, attributes: { before: taskXO(before) } });
    ctx.status = 204;
  });

  // As in Nexus the call returns once the run has started; clients poll the task for its result.
  r.post('/tasks/:id/run', async (ctx) => {
    await requireApp(app, ctx, 'nx-tasks-run');
    const t = await load(ctx.params.id);
    if (!t.enabled) throw new AppError('METHOD_NOT_ALLOWED', `Task '${t.name}' is disabled`);
    if (!app.tasks.types.has(t.type)) throw new AppError('CONFLICT', `Task type '${t.type}' is not available on this node`);
    // A run already under way (on any node) keeps its lease; this request then changes nothing.
    let runId: number | null = null;
    try {
      const started = await app.tasks.begin(t.task_id);
      runId = started.runId;
      void started.done;
    } catch (e) {
      if (!(e instanceof AppError && e.code === 'CONFLICT')) throw e;
      app.log.warn(`Task ${t.name} was not started: ${e.message}`);
    }
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'run', context: t.task_id, attributes: { name: t.name, type: t.type, runId } });
    ctx.status = 204;
  });

  r.post('/tasks/:id/stop', async (ctx) => {
    await requireApp(app, ctx, 'nx-tasks-stop');
    const t = await app.tasks.cancel(ctx.params.id);
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'stop', context: t.task_id, attributes: { name: t.name, type: t.type } });
    ctx.status = 204;
  });

  r.get('/tasks/:id/runs', async (ctx) => {
    await requireApp(app, ctx, 'nx-tasks-read');
    const t = await load(ctx.params.id);
    const { token, limit } = pageParams(ctx);
    const rows = await listRuns(app.db, t.id, afterId(token) ?? null, limit + 1);
    const more = rows.length > limit;
    const items = rows.slice(0, limit);
    ctx.body = { items: items.map(runXO), continuationToken: more ? String(items[items.length - 1].id) : null };
  });

  r.get('/tasks/:id/runs/:runId/log', async (ctx) => {
    await requireApp(app, ctx, 'nx-tasks-read');
    const t = await load(ctx.params.id);
    const run = /^\d+$/.test(ctx.params.runId) ? await getRun(app.db, t.id, Number(ctx.params.runId)) : undefined;
    if (!run) throw notFound(`Run '${ctx.params.runId}' of task '${t.task_id}' not found`);
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = Readable.from(logLines(app.db, run.id));
  });

  return r;
}
