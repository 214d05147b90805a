/**
 * Tasks through the REST API, in Nexus's shapes: the task types and their properties; create
 * with every schedule kind (next runs in UTC); a cron schedule firing by itself; run, progress
 * while running, stop, the run history and its log; update, delete; validation 400s that name
 * the field; privileges; paging; audit. The docker GC task is created and run this way.
 *
 * A test task type (`test.steps`) is registered in-process: a real type run by the real
 * scheduler, whose steps the test can watch and stop.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, DATABASES, basic, startServer, type TestServer } from '../helpers/stowage.js';
import type { TaskType } from '../../src/tasks/task-service.js';
import { LOG_LINES_KEPT, RUNS_KEPT } from '../../src/tasks/task-runs.js';
import { num } from '../../src/db/db.js';

const API = '/service/rest/v1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HOUR = 3600_000;
const DAY = 24 * HOUR;

interface TaskXO {
  id: string;
  name: string;
  type: string;
  enabled: boolean;
  message: string | null;
  currentState: string;
  lastRunResult: string | null;
  nextRun: string | null;
  lastRun: string | null;
  frequency: Record<string, unknown>;
  properties: Record<string, string>;
  progress: { processed: number; total: number | null } | null;
}
interface RunXO {
  id: string;
  node: string;
  started: string;
  ended: string | null;
  result: string;
  message: string | null;
  processed: number;
  total: number | null;
}

/** Steps every `stepMs`, logging and reporting progress; honours the stop signal between steps. */
const stepsType: TaskType = {
  id: 'test.steps',
  name: 'Test - steps',
  properties: [
    { id: 'steps', label: 'Steps', type: 'number', required: true, min: 1 },
    { id: 'stepMs', label: 'Step length (ms)', type: 'number', default: 50 },
    { id: 'fail', label: 'Fail at the end', type: 'boolean' },
  ],
  async run(_app, attributes, ctx) {
    const steps = Number(attributes.steps);
    for (let i = 1; i <= steps; i++) {
      ctx.signal.throwIfAborted();
      await sleep(Number(attributes.stepMs ?? 50));
      ctx.log(`step ${i}`);
      ctx.progress(i, steps);
    }
    if (attributes.fail) throw new Error('failed on purpose');
    return `${steps} steps done`;
  },
};

for (const db of DATABASES) {
  describe(`tasks REST API (${db})`, { timeout: 180_000 }, () => {
    let s: TestServer;

    const send = (method: string, p: string, body?: unknown, auth?: string | null) =>
      s.fetch(API + p, {
        method,
        ...(auth !== undefined ? { auth } : {}),
        ...(body !== undefined ? { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) } : {}),
      });
    const getTask = async (id: string) => (await (await send('GET', `/tasks/${id}`)).json()) as TaskXO;
    const create = async (body: Record<string, unknown>) => {
      const res = await send('POST', '/tasks', body);
      const text = await res.text();
      assert.equal(res.status, 201, text);
      return JSON.parse(text) as TaskXO;
    };
    const runs = async (id: string) => ((await (await send('GET', `/tasks/${id}/runs`)).json()) as { items: RunXO[] }).items;
    async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
      const deadline = Date.now() + ms;
      for (;;) {
        const v = await get();
        if (ok(v)) return v;
        assert.ok(Date.now() < deadline, `${what}: last seen ${JSON.stringify(v)}`);
        await sleep(25);
      }
    }
    const finished = (id: string) =>
      until(
        `task ${id} finished`,
        () => getTask(id),
        (t) => t.currentState === 'WAITING' && t.lastRun !== null,
      );

    before(async () => {
      s = await startServer({ db });
      s.app.tasks.register(stepsType);
    });
    after(async () => {
      await s?.stop();
    });

    it('lists the task types with their properties', async () => {
      const res = await send('GET', '/tasks/types');
      assert.equal(res.status, 200);
      const types = (await res.json()) as Array<{ type: string; name: string; properties: Array<{ id: string; type: string; required: boolean; default: unknown }> }>;
      const byId = new Map(types.map((t) => [t.type, t]));
      const gc = byId.get('repository.docker.gc');
      assert.ok(gc, JSON.stringify(types.map((t) => t.type)));
      assert.deepEqual(
        gc.properties.filter((p) => p.id !== 'graceSeconds').map((p) => [p.id, p.type, p.default]),
        [
          ['repositoryName', 'repository', null],
          ['deployOffset', 'number', 24],
        ],
      );
      assert.deepEqual(
        byId.get('repository.docker.upload-purge')!.properties.map((p) => p.id),
        ['age'],
      );
      assert.deepEqual(
        byId.get('assetBlob.cleanup')!.properties.map((p) => [p.id, p.type]),
        [
          ['blobStoreName', 'blobstore'],
          ['graceSeconds', 'number'],
        ],
      );
      assert.equal(byId.get('test.steps')!.properties.find((p) => p.id === 'steps')!.required, true);
    });

    it('shows the built-in tasks with Nexus schedules', async () => {
      const items = ((await (await send('GET', '/tasks')).json()) as { items: TaskXO[] }).items;
      for (const type of ['assetBlob.cleanup', 'repository.docker.upload-purge']) {
        const t = items.find((x) => x.type === type);
        assert.ok(t, type);
        assert.equal(t.frequency.schedule, 'daily', JSON.stringify(t));
        assert.equal(t.nextRun, new Date(t.frequency.startDate as number).toISOString());
        assert.equal(t.progress, null);
      }
    });

    it('creates tasks with every schedule kind; next runs are computed in UTC', async () => {
      const now = Date.now();
      const manual = await create({ type: 'test.steps', name: 'manual', frequency: { schedule: 'manual' }, properties: { steps: '1' } });
      assert.equal(manual.nextRun, null);
      assert.deepEqual(manual.frequency, { schedule: 'manual' });
      assert.deepEqual(manual.properties, { steps: '1' });
      assert.equal(manual.enabled, true);
      assert.equal(manual.currentState, 'WAITING');

      const onceAt = now + 3 * DAY;
      const once = await create({ type: 'test.steps', name: 'once', frequency: { schedule: 'once', startDate: onceAt }, properties: { steps: 1 } });
      assert.equal(once.nextRun, new Date(onceAt).toISOString());

      const hourlyStart = now - 30 * 60_000;
      const hourly = await create({ type: 'test.steps', name: 'hourly', frequency: { schedule: 'hourly', startDate: hourlyStart }, properties: { steps: 1 } });
      assert.equal(hourly.nextRun, new Date(hourlyStart + HOUR).toISOString());

      const dailyStart = new Date(now + DAY).toISOString();
      const daily = await create({ type: 'test.steps', name: 'daily', frequency: { schedule: 'daily', startDate: dailyStart }, properties: { steps: 1 } });
      assert.equal(daily.nextRun, dailyStart);

      // Every day of the week at 03:00 UTC: the next 03:00 UTC.
      const at3 = Date.UTC(2026, 0, 1, 3);
      const weekly = await create({
        type: 'test.steps',
        name: 'weekly',
        frequency: { schedule: 'weekly', startDate: at3, recurringDays: [1, 2, 3, 4, 5, 6, 7] },
        properties: { steps: 1 },
      });
      const today3 = Math.floor(now / DAY) * DAY + 3 * HOUR;
      assert.equal(weekly.nextRun, new Date(today3 > now ? today3 : today3 + DAY).toISOString());
      assert.deepEqual(weekly.frequency.recurringDays, [1, 2, 3, 4, 5, 6, 7]);

      // The last day of the month at 03:00 UTC.
      const monthly = await create({ type: 'test.steps', name: 'monthly', frequency: { schedule: 'monthly', startDate: at3, recurringDays: [999] }, properties: { steps: 1 } });
      const d = new Date(now);
      let last = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0, 3);
      if (last <= now) last = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 2, 0, 3);
      assert.equal(monthly.nextRun, new Date(last).toISOString());

      // Nexus's Quartz form: 01:00:00 UTC every day.
      const cron = await create({ type: 'test.steps', name: 'cron', frequency: { schedule: 'cron', cronExpression: '0 0 1 * * ?' }, properties: { steps: 1 } });
      const today1 = Math.floor(now / DAY) * DAY + HOUR;
      assert.equal(cron.nextRun, new Date(today1 > now ? today1 : today1 + DAY).toISOString());
      assert.deepEqual(cron.frequency, { schedule: 'cron', cronExpression: '0 0 1 * * ?' });

      const disabled = await create({ type: 'test.steps', name: 'disabled', enabled: false, frequency: { schedule: 'hourly' }, properties: { steps: 1 } });
      assert.equal(disabled.enabled, false);
      assert.equal(disabled.nextRun, null);

      for (const t of [manual, once, hourly, daily, weekly, monthly, cron, disabled]) assert.deepEqual(await getTask(t.id), t);
    });

    it('creates the docker GC task, runs it, and keeps its run and log', async () => {
      await s.repo('docker', 'hosted', { name: 'imgs', storage: { blobStoreName: 'default', writePolicy: 'ALLOW' }, docker: { v1Enabled: false, forceBasicAuth: true } });
      const gc = await create({
        type: 'repository.docker.gc',
        name: 'docker gc imgs',
        frequency: { schedule: 'manual' },
        properties: { repositoryName: 'imgs', deployOffset: '0' },
      });
      assert.deepEqual(gc.properties, { repositoryName: 'imgs', deployOffset: '0' });
      assert.equal((await send('POST', `/tasks/${gc.id}/run`)).status, 204);
      const done = await finished(gc.id);
      assert.equal(done.lastRunResult, 'OK', done.message ?? '');
      assert.match(done.message!, /^Deleted 0 unused manifests and 0 unreferenced blob assets in 1 docker repositories/);
      const [run] = await runs(gc.id);
      assert.equal(run.result, 'OK');
      assert.equal(run.message, done.message);
      assert.ok(run.ended && run.started <= run.ended);
      assert.deepEqual([run.processed, run.total], [1, 1]);
      const log = await send('GET', `/tasks/${gc.id}/runs/${run.id}/log`);
      assert.equal(log.status, 200);
      assert.match(log.headers.get('content-type') ?? '', /^text\/plain/);
      const text = await log.text();
      assert.match(text, /started on node/);
      assert.match(text, /imgs: deleted 0 manifests and 0 blob assets/);
      assert.match(text, /Finished: OK: Deleted 0 unused manifests/);
      assert.equal((await send('GET', `/tasks/${gc.id}/runs/999999/log`)).status, 404);
    });

    it('runs a task, shows its progress while it runs, stops it, and keeps its log', async () => {
      const t = await create({ type: 'test.steps', name: 'long', properties: { steps: 400, stepMs: 25 } });
      assert.equal((await send('POST', `/tasks/${t.id}/stop`)).status, 409);
      assert.equal((await send('POST', `/tasks/${t.id}/run`)).status, 204);
      assert.equal((await getTask(t.id)).currentState, 'RUNNING');
      const running = await until(
        'progress',
        () => getTask(t.id),
        (x) => (x.progress?.processed ?? 0) >= 3,
      );
      assert.equal(running.currentState, 'RUNNING');
      assert.equal(running.progress!.total, 400);
      // A second run while it runs changes nothing; a delete is refused.
      assert.equal((await send('POST', `/tasks/${t.id}/run`)).status, 204);
      assert.equal((await send('DELETE', `/tasks/${t.id}`)).status, 409);
      assert.equal((await runs(t.id))[0].result, 'RUNNING');

      assert.equal((await send('POST', `/tasks/${t.id}/stop`)).status, 204);
      const stopped = await finished(t.id);
      assert.equal(stopped.lastRunResult, 'CANCELED');
      assert.equal(stopped.progress, null);
      const list = await runs(t.id);
      assert.equal(list.length, 1);
      assert.equal(list[0].result, 'CANCELED');
      assert.ok(list[0].processed >= 3 && list[0].processed < 400, String(list[0].processed));
      const text = await (await send('GET', `/tasks/${t.id}/runs/${list[0].id}/log`)).text();
      assert.match(text, /^\S+Z Task 'long' \(test\.steps\) started on node/);
      assert.match(text, /\S+Z step 1\n\S+Z step 2\n/);
      assert.match(text, /Finished: CANCELED: Stopped: stopped by request\n$/);

      // A failing run is recorded as such; the newest run comes first.
      const put = await send('PUT', `/tasks/${t.id}`, { name: 'long', enabled: true, frequency: { schedule: 'manual' }, properties: { steps: 1, fail: 'true' } });
      assert.equal(put.status, 200, await put.text());
      assert.equal((await send('POST', `/tasks/${t.id}/run`)).status, 204);
      const failed = await until(
        'failed run',
        () => runs(t.id),
        (r) => r.length === 2 && r[0].result !== 'RUNNING',
      );
      assert.equal(failed[0].result, 'FAILED');
      assert.equal(failed[0].message, 'failed on purpose');
      assert.equal((await finished(t.id)).lastRunResult, 'FAILED');
    });

    it(`keeps ${LOG_LINES_KEPT} log lines per run and the newest ${RUNS_KEPT} runs per task`, async () => {
      const t = await create({ type: 'test.steps', name: 'chatty', properties: { steps: LOG_LINES_KEPT + 10, stepMs: 0 } });
      const first = await s.app.tasks.begin(t.id);
      await first.done;
      const lines = (await (await send('GET', `/tasks/${t.id}/runs/${first.runId}/log`)).text()).split('\n').filter(Boolean);
      assert.equal(lines.length, LOG_LINES_KEPT + 2);
      assert.match(lines[LOG_LINES_KEPT - 1], / step 4999$/);
      assert.match(lines[LOG_LINES_KEPT], / \(11 further lines were not kept\)$/);
      assert.match(lines[LOG_LINES_KEPT + 1], / Finished: OK: 5010 steps done$/);

      await send('PUT', `/tasks/${t.id}`, { name: 'chatty', properties: { steps: 1, stepMs: 0 } });
      for (let i = 0; i < RUNS_KEPT; i++) await s.app.tasks.run(t.id);
      const all = ((await (await send('GET', `/tasks/${t.id}/runs?limit=1000`)).json()) as { items: RunXO[] }).items;
      assert.equal(all.length, RUNS_KEPT);
      assert.ok(!all.some((r) => r.id === String(first.runId)));
      assert.equal((await send('GET', `/tasks/${t.id}/runs/${first.runId}/log`)).status, 404);
      assert.equal(num((await s.app.db('task_run_logs').where({ run_id: first.runId }).count({ n: '*' }).first())?.n), 0);
      // Paged, newest first.
      const page = (await (await send('GET', `/tasks/${t.id}/runs?limit=20`)).json()) as { items: RunXO[]; continuationToken: string };
      assert.deepEqual(
        page.items.map((r) => r.id),
        all.slice(0, 20).map((r) => r.id),
      );
      const next = (await (await send('GET', `/tasks/${t.id}/runs?limit=20&continuationToken=${page.continuationToken}`)).json()) as { items: RunXO[] };
      assert.deepEqual(
        next.items.map((r) => r.id),
        all.slice(20, 40).map((r) => r.id),
      );
    });

    it('runs a task on its cron schedule by itself', async () => {
      const t = await create({ type: 'test.steps', name: 'every second', frequency: { schedule: 'cron', cronExpression: '* * * * * ?' }, properties: { steps: 1, stepMs: 1 } });
      const first = Date.parse(t.nextRun!);
      assert.ok(first - Date.now() <= 1000, t.nextRun!);
      s.app.tasks.start(100);
      try {
        const done = await until(
          'scheduled run',
          () => runs(t.id),
          (r) => r.length >= 1 && r[0].result === 'OK',
          10_000,
        );
        assert.equal(done[0].message, '1 steps done');
        const after = await getTask(t.id);
        assert.ok(Date.parse(after.nextRun!) > first, `${after.nextRun} after ${t.nextRun}`);
        // Switched to manual, it runs no more.
        assert.equal((await send('PUT', `/tasks/${t.id}`, { name: t.name, enabled: true, frequency: { schedule: 'manual' }, properties: { steps: 1, stepMs: 1 } })).status, 200);
        await sleep(300);
        const count = (await runs(t.id)).length;
        await sleep(1500);
        assert.equal((await runs(t.id)).length, count);
      } finally {
        s.app.tasks.stop();
      }
    });

    it('updates a task; its type cannot change', async () => {
      const t = await create({ type: 'repository.docker.upload-purge', name: 'purge', frequency: { schedule: 'daily', startDate: Date.now() + HOUR }, properties: { age: 12 } });
      const res = await send('PUT', `/tasks/${t.id}`, {
        name: 'purge old uploads',
        enabled: false,
        frequency: { schedule: 'cron', cronExpression: '0 30 2 * * ?' },
        properties: { age: '48' },
      });
      assert.equal(res.status, 200);
      const updated = (await res.json()) as TaskXO;
      assert.equal(updated.name, 'purge old uploads');
      assert.equal(updated.enabled, false);
      assert.deepEqual(updated.frequency, { schedule: 'cron', cronExpression: '0 30 2 * * ?' });
      assert.deepEqual(updated.properties, { age: '48' });
      assert.deepEqual(await getTask(t.id), updated);
      // Disabled: not run by hand either (Nexus answers 405).
      assert.equal((await send('POST', `/tasks/${t.id}/run`)).status, 405);

      const typeChange = await send('PUT', `/tasks/${t.id}`, { type: 'test.steps', name: 'x', frequency: { schedule: 'manual' } });
      assert.equal(typeChange.status, 400);
      assert.equal(((await typeChange.json()) as Array<{ id: string }>)[0].id, 'PARAMETER type');
      assert.equal((await send('PUT', '/tasks/nope', { name: 'x' })).status, 404);
    });

    it('deletes a task with its runs', async () => {
      const t = await create({ type: 'test.steps', name: 'short-lived', properties: { steps: 1, stepMs: 1 } });
      assert.equal((await send('POST', `/tasks/${t.id}/run`)).status, 204);
      await finished(t.id);
      assert.equal((await send('DELETE', `/tasks/${t.id}`)).status, 204);
      assert.equal((await send('GET', `/tasks/${t.id}`)).status, 404);
      assert.equal((await send('GET', `/tasks/${t.id}/runs`)).status, 404);
      assert.equal((await send('DELETE', `/tasks/${t.id}`)).status, 404);
      const row = await s.app.db('task_runs').whereNotIn('task_id', s.app.db('tasks').select('id')).first();
      assert.equal(row, undefined);
    });

    it('refuses bad bodies with a 400 naming the field, and stores nothing', async () => {
      const before = ((await (await send('GET', '/tasks?limit=1000')).json()) as { items: unknown[] }).items.length;
      const BAD: Array<[unknown, string]> = [
        [{ name: 'x', frequency: { schedule: 'manual' } }, 'type'],
        [{ type: 'no.such.type', name: 'x' }, 'type'],
        [{ type: 'test.steps', properties: { steps: 1 } }, 'name'],
        [{ type: 'test.steps', name: 'x', enabled: 'yes', properties: { steps: 1 } }, 'enabled'],
        [{ type: 'test.steps', name: 'x', properties: {} }, 'properties.steps'],
        [{ type: 'test.steps', name: 'x', properties: { steps: 'many' } }, 'properties.steps'],
        [{ type: 'test.steps', name: 'x', properties: { steps: 0 } }, 'properties.steps'],
        [{ type: 'test.steps', name: 'x', properties: { steps: 1, fail: 'maybe' } }, 'properties.fail'],
        [{ type: 'test.steps', name: 'x', properties: { steps: 1, colour: 'red' } }, 'properties.colour'],
        [{ type: 'test.steps', name: 'x', properties: [] }, 'properties'],
        [{ type: 'repository.docker.gc', name: 'x', properties: { repositoryName: 'no-such-repo' } }, 'properties.repositoryName'],
        [{ type: 'repository.docker.gc', name: 'x', properties: { deployOffset: '-1' } }, 'properties.deployOffset'],
        [{ type: 'assetBlob.cleanup', name: 'x', properties: { blobStoreName: 'no-such-store' } }, 'properties.blobStoreName'],
        [{ type: 'test.steps', name: 'x', frequency: { schedule: 'fortnightly' }, properties: { steps: 1 } }, 'frequency.schedule'],
        [{ type: 'test.steps', name: 'x', frequency: { schedule: 'once', startDate: Date.now() - 1000 }, properties: { steps: 1 } }, 'frequency.startDate'],
        [{ type: 'test.steps', name: 'x', frequency: { schedule: 'weekly', recurringDays: [0] }, properties: { steps: 1 } }, 'frequency.recurringDays'],
        [{ type: 'test.steps', name: 'x', frequency: { schedule: 'cron', cronExpression: '0 0 32 * *' }, properties: { steps: 1 } }, 'frequency.cronExpression'],
        [{ type: 'test.steps', name: 'x', frequency: { schedule: 'cron' }, properties: { steps: 1 } }, 'frequency.cronExpression'],
        [[1, 2], 'body'],
      ];
      for (const [body, field] of BAD) {
        const res = await send('POST', '/tasks', body);
        const text = await res.text();
        assert.equal(res.status, 400, `${JSON.stringify(body)}: ${text}`);
        const [err] = JSON.parse(text) as Array<{ id: string; message: string }>;
        assert.equal(err.id, `PARAMETER ${field}`, text);
        assert.ok(err.message.startsWith(field), text);
      }
      const malformed = await s.fetch(`${API}/tasks`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"type":' });
      assert.equal(malformed.status, 400);
      assert.equal(((await (await send('GET', '/tasks?limit=1000')).json()) as { items: unknown[] }).items.length, before);
      assert.equal((await send('GET', '/tasks?continuationToken=zzz')).status, 400);
    });

    it('pages the list with continuationToken and filters by type', async () => {
      for (let i = 0; i < 3; i++) await create({ type: 'repository.docker.upload-purge', name: `purge ${i}`, properties: { age: i } });
      const all = ((await (await send('GET', '/tasks?limit=1000')).json()) as { items: TaskXO[] }).items;
      const seen: string[] = [];
      let token: string | null = null;
      do {
        const page = (await (await send('GET', `/tasks?limit=2${token ? `&continuationToken=${token}` : ''}`)).json()) as { items: TaskXO[]; continuationToken: string | null };
        assert.ok(page.items.length <= 2);
        seen.push(...page.items.map((t) => t.id));
        token = page.continuationToken;
      } while (token);
      assert.deepEqual(
        seen,
        all.map((t) => t.id),
      );
      const purges = ((await (await send('GET', '/tasks?type=repository.docker.upload-purge')).json()) as { items: TaskXO[] }).items;
      assert.ok(purges.length >= 4, String(purges.length)); // the default one and these three
      assert.ok(purges.every((t) => t.type === 'repository.docker.upload-purge'));
    });

    it('needs nx-tasks-* privileges; a refused request changes nothing', async () => {
      const role = await send('POST', '/security/roles', { id: 'task-reader', name: 'task-reader', privileges: ['nx-tasks-read'], roles: [] });
      assert.equal(role.status, 200, await role.text());
      const user = await send('POST', '/security/users', {
        userId: 'tasker',
        firstName: 'T',
        lastName: 'R',
        emailAddress: 't@example.org',
        password: 'tasker-pw',
        status: 'active',
        roles: ['task-reader'],
      });
      assert.equal(user.status, 200, await user.text());
      const reader = basic('tasker', 'tasker-pw');
      const t = await create({ type: 'test.steps', name: 'guarded', properties: { steps: 1 } });
      assert.equal((await send('GET', '/tasks', undefined, reader)).status, 200);
      assert.equal((await send('GET', `/tasks/${t.id}`, undefined, reader)).status, 200);
      assert.equal((await send('GET', '/tasks/types', undefined, reader)).status, 200);
      assert.equal((await send('GET', `/tasks/${t.id}/runs`, undefined, reader)).status, 200);
      const body = { type: 'test.steps', name: 'sneaky', properties: { steps: 1 } };
      for (const [method, p, b] of [
        ['POST', '/tasks', body],
        ['PUT', `/tasks/${t.id}`, { ...body, name: 'renamed' }],
        ['DELETE', `/tasks/${t.id}`],
        ['POST', `/tasks/${t.id}/run`],
        ['POST', `/tasks/${t.id}/stop`],
      ] as Array<[string, string, unknown?]>) {
        assert.equal((await send(method, p, b, reader)).status, 403, `${method} ${p}`);
        assert.equal((await send(method, p, b, null)).status, 401, `${method} ${p} anonymous`);
      }
      assert.equal((await send('GET', '/tasks', undefined, null)).status, 401);
      const after = await getTask(t.id);
      assert.equal(after.name, 'guarded');
      assert.equal(after.lastRun, null);
      assert.deepEqual(await runs(t.id), []);
      const names = ((await (await send('GET', '/tasks?limit=1000', undefined, ADMIN)).json()) as { items: TaskXO[] }).items.map((x) => x.name);
      assert.ok(!names.includes('sneaky'));
    });

    it('audits create, update, run, stop and delete', async () => {
      const t = await create({ type: 'test.steps', name: 'audited', properties: { steps: 200, stepMs: 20 } });
      await send('PUT', `/tasks/${t.id}`, { name: 'audited 2', frequency: { schedule: 'manual' }, properties: { steps: 200, stepMs: 20 } });
      await send('POST', `/tasks/${t.id}/run`);
      await until(
        'running',
        () => getTask(t.id),
        (x) => x.currentState === 'RUNNING',
      );
      assert.equal((await send('POST', `/tasks/${t.id}/stop`)).status, 204);
      await finished(t.id);
      await send('DELETE', `/tasks/${t.id}`);
      const page = (await (await send('GET', `/audit?domain=scheduling&context=${t.id}`)).json()) as { items: Array<{ type: string }> };
      assert.deepEqual(page.items.map((i) => i.type).sort(), ['created', 'deleted', 'run', 'stop', 'updated']);
    });
  });
}
