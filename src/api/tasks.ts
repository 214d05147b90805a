import { Readable } from 'node:stream';
import { z } from 'zod';
import type { Stowage } from '../stowage.js';
import { AppError, badRequest, notFound } from '../errors.js';
import { auditOrigin } from '../http/auth.js';
import type { TaskRow, TaskSpec, TaskType } from '../tasks/task-service.js';
import { frequencyXO, parseFrequency } from '../tasks/schedule.js';
import { validateProperties } from '../tasks/task-properties.js';
import { getRun, listRuns, logLines, type TaskRunRow } from '../tasks/task-runs.js';
import { iso, pageParams, queryParam } from './params.js';
import { route, type ApiRoute } from './route.js';
import {
  PageTaskRunXO,
  PageTaskXO,
  TaskTemplateXO,
  TaskTypeXO,
  TaskXO,
  badRequest as badRequestXO,
  noContent,
  notFound as notFoundXO,
  ok,
  paging,
  params,
  pathParam,
} from './schemas.js';

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

const tags = ['Tasks'];
const read = { privilege: 'nx-tasks-read' };
const taskId = params({ id: pathParam('Task id') });

/**
 * `/tasks` in Nexus's shapes: list (by type, paged), get, create, update, delete, run, stop, the
 * task types and their properties, and each task's runs and run logs.
 */
export function taskRoutes(app: Stowage): ApiRoute[] {
  const load = async (id: string) => {
    await app.tasks.sweepExpired();
    return app.tasks.require(id);
  };

  return [
    route({
      method: 'GET',
      path: '/tasks',
      operationId: 'getTasks',
      tags,
      summary: 'List scheduled tasks',
      access: read,
      query: z.object({ type: z.string().optional().describe('Only tasks of this type id'), ...paging }),
      responses: { 200: ok(PageTaskXO), 400: badRequestXO },
      handler: async (ctx) => {
        const { token, limit } = pageParams(ctx);
        await app.tasks.sweepExpired();
        const rows = await app.tasks.list(queryParam(ctx, 'type'), { afterId: afterId(token), limit: limit + 1 });
        const more = rows.length > limit;
        const items = rows.slice(0, limit);
        ctx.body = { items: items.map(taskXO), continuationToken: more ? String(items[items.length - 1].id) : null };
      },
    }),
    route({
      method: 'GET',
      path: '/tasks/types',
      operationId: 'getTaskTypes',
      tags,
      summary: 'Task types and their properties',
      access: read,
      responses: { 200: ok(z.array(TaskTypeXO)) },
      handler: async (ctx) => {
        ctx.body = [...app.tasks.types.values()].sort((a, b) => a.id.localeCompare(b.id)).map(typeXO);
      },
    }),
    route({
      method: 'GET',
      path: '/tasks/:id',
      operationId: 'getTaskById',
      tags,
      summary: 'A task (with its progress while it runs)',
      access: read,
      params: taskId,
      responses: { 200: ok(TaskXO), 404: notFoundXO },
      handler: async (ctx) => {
        ctx.body = taskXO(await load(ctx.params.id));
      },
    }),
    route({
      method: 'POST',
      path: '/tasks',
      operationId: 'createTask',
      tags,
      summary: 'Create a task',
      access: { privilege: 'nx-tasks-create' },
      body: { schema: TaskTemplateXO },
      responses: { 201: ok(TaskXO, 'Created'), 400: badRequestXO },
      handler: async (ctx, input) => {
        const body = object(await input.body());
        const typeId = typeof body.type === 'string' ? body.type : '';
        if (!typeId) throw badRequest('type: required', { field: 'type' });
        const spec = await taskSpec(app, app.tasks.types.get(typeId), typeId, body);
        const created = await app.tasks.createTask({ ...spec, type: typeId });
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'created', context: created.task_id, attributes: { after: taskXO(created) } });
        ctx.status = 201;
        ctx.set('Location', `${app.baseUrl(ctx)}/service/rest/v1/tasks/${created.task_id}`);
        ctx.body = taskXO(created);
      },
    }),
    route({
      method: 'PUT',
      path: '/tasks/:id',
      operationId: 'updateTask',
      tags,
      summary: 'Update a task (its type cannot change)',
      access: { privilege: 'nx-tasks-update' },
      params: taskId,
      body: { schema: TaskTemplateXO },
      responses: { 200: ok(TaskXO), 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx, input) => {
        const current = await load(ctx.params.id);
        const body = object(await input.body());
        if (body.type !== undefined && body.type !== current.type) throw badRequest(`type: a task's type cannot change (is '${current.type}')`, { field: 'type' });
        const spec = await taskSpec(app, app.tasks.types.get(current.type), current.type, body);
        const { before, after } = await app.tasks.update(current.task_id, spec);
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'updated', context: after.task_id, attributes: { before: taskXO(before), after: taskXO(after) } });
        ctx.body = taskXO(after);
      },
    }),
    route({
      method: 'DELETE',
      path: '/tasks/:id',
      operationId: 'deleteTaskById',
      tags,
      summary: 'Delete a task and its runs',
      access: { privilege: 'nx-tasks-delete' },
      params: taskId,
      responses: { 204: noContent, 404: notFoundXO, 409: { description: 'The task is running' } },
      handler: async (ctx) => {
        const before = await app.tasks.delete(ctx.params.id);
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'deleted', context: before.task_id, attributes: { before: taskXO(before) } });
        ctx.status = 204;
      },
    }),
    // As in Nexus the call returns once the run has started; clients poll the task for its result.
    route({
      method: 'POST',
      path: '/tasks/:id/run',
      operationId: 'runTask',
      tags,
      summary: 'Start a task now (returns once started; poll the task for its result)',
      access: { privilege: 'nx-tasks-run' },
      params: taskId,
      responses: { 204: noContent, 404: notFoundXO, 405: { description: 'Task is disabled' } },
      handler: async (ctx) => {
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
      },
    }),
    route({
      method: 'POST',
      path: '/tasks/:id/stop',
      operationId: 'stopTask',
      tags,
      summary: 'Stop a running task (on whichever node runs it; the run ends CANCELED)',
      access: { privilege: 'nx-tasks-stop' },
      params: taskId,
      responses: { 204: noContent, 404: notFoundXO, 409: { description: 'The task is not running' } },
      handler: async (ctx) => {
        const t = await app.tasks.cancel(ctx.params.id);
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'stop', context: t.task_id, attributes: { name: t.name, type: t.type } });
        ctx.status = 204;
      },
    }),
    route({
      method: 'GET',
      path: '/tasks/:id/runs',
      operationId: 'getTaskRuns',
      tags,
      summary: 'Runs of a task, newest first',
      access: read,
      params: taskId,
      query: z.object(paging),
      responses: { 200: ok(PageTaskRunXO), 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx) => {
        const t = await load(ctx.params.id);
        const { token, limit } = pageParams(ctx);
        const rows = await listRuns(app.db, t.id, afterId(token) ?? null, limit + 1);
        const more = rows.length > limit;
        const items = rows.slice(0, limit);
        ctx.body = { items: items.map(runXO), continuationToken: more ? String(items[items.length - 1].id) : null };
      },
    }),
    route({
      method: 'GET',
      path: '/tasks/:id/runs/:runId/log',
      operationId: 'getTaskRunLog',
      tags,
      summary: 'The log of a run (one `<ISO time> <line>` per line)',
      access: read,
      params: params({ id: pathParam('Task id'), runId: pathParam('Run id') }),
      responses: { 200: { description: 'The log', contentType: 'text/plain' }, 404: notFoundXO },
      handler: async (ctx) => {
        const t = await load(ctx.params.id);
        const run = /^\d+$/.test(ctx.params.runId) ? await getRun(app.db, t.id, Number(ctx.params.runId)) : undefined;
        if (!run) throw notFound(`Run '${ctx.params.runId}' of task '${t.task_id}' not found`);
        ctx.type = 'text/plain; charset=utf-8';
        ctx.body = Readable.from(logLines(app.db, run.id));
      },
    }),
  ];
}
