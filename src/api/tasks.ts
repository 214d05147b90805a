import Router from '@koa/router';
import type { Stowage } from '../stowage.js';
import { AppError, notFound } from '../errors.js';
import { auditOrigin, requireApp } from '../http/auth.js';
import type { TaskRow } from '../tasks/task-service.js';
import { iso, queryParam } from './params.js';

/** Nexus TaskXO. */
function taskXO(t: TaskRow) {
  return {
    id: t.task_id,
    name: t.name,
    type: t.type,
    message: t.last_message,
    currentState: t.current_state,
    lastRunResult: t.last_result,
    nextRun: iso(t.next_run_at),
    lastRun: iso(t.last_run_at),
  };
}

/** `/tasks`: list (optionally by type), get, run now. */
export function taskRoutes(app: Stowage): Router {
  const r = new Router();

  r.get('/tasks', async (ctx) => {
    await requireApp(app, ctx, 'nx-tasks-read');
    ctx.body = { items: (await app.tasks.list(queryParam(ctx, 'type'))).map(taskXO), continuationToken: null };
  });

  r.get('/tasks/:id', async (ctx) => {
    await requireApp(app, ctx, 'nx-tasks-read');
    const t = await app.tasks.get(ctx.params.id);
    if (!t) throw notFound(`Task '${ctx.params.id}' not found`);
    ctx.body = taskXO(t);
  });

  // As in Nexus the run starts and the call returns at once; clients poll the task for its result.
  r.post('/tasks/:id/run', async (ctx) => {
    await requireApp(app, ctx, 'nx-tasks-run');
    const t = await app.tasks.get(ctx.params.id);
    if (!t) throw notFound(`Task '${ctx.params.id}' not found`);
    if (!t.enabled) throw new AppError('METHOD_NOT_ALLOWED', `Task '${t.name}' is disabled`);
    // A run already under way (on any node) keeps its lease; this request then changes nothing.
    void app.tasks.run(t.task_id).catch((e) => app.log.warn(`Task ${t.name} was not started: ${(e as Error).message}`));
    await app.audit.record(auditOrigin(ctx), { domain: 'scheduling', type: 'run', context: t.task_id, attributes: { name: t.name, type: t.type } });
    ctx.status = 204;
  });

  return r;
}
