/**
 * Task leases across two Stowage nodes on one PostgreSQL database (separate data directories):
 * a task that runs far longer than its lease runs on one node only, because that node renews the
 * lease while the run lives; a node whose lease was taken over stops recording and aborts; a run
 * whose node stopped renewing (a crash) is marked INTERRUPTED by the other node, which may then
 * run the task.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createDatabase } from '../helpers/postgres.js';
import { startServer, type TestServer } from '../helpers/stowage.js';
import type { TaskType } from '../../src/tasks/task-service.js';
import { num } from '../../src/db/db.js';

const API = '/service/rest/v1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// Long enough that a loaded test machine still renews in time (every 500 ms); the run lasts five leases.
const LEASE_MS = 1500;
const RUN_MS = 5 * LEASE_MS;

describe('task leases on two nodes', { timeout: 120_000 }, () => {
  let a: TestServer;
  let b: TestServer;
  /** Node ids that ran a step, in order; and how runs ended as the task saw it. */
  const ranOn: string[] = [];
  const endings: string[] = [];

  /** Runs `ms` in 50 ms steps, logging each; stops between steps when its signal is aborted. */
  const longType = (node: () => string): TaskType => ({
    id: 'test.long',
    name: 'Test - long',
    properties: [{ id: 'ms', label: 'Duration (ms)', type: 'number', required: true }],
    async run(_app, attributes, ctx) {
      const steps = Math.ceil(Number(attributes.ms) / 50);
      try {
        for (let i = 1; i <= steps; i++) {
          ctx.signal.throwIfAborted();
          ranOn.push(node());
          ctx.log(`step ${i} on ${node()}`);
          ctx.progress(i, steps);
          await sleep(50);
        }
      } catch (e) {
        endings.push(`aborted: ${(ctx.signal.reason as Error)?.message}`);
        throw e;
      }
      endings.push('done');
      return 'done';
    },
  });

  before(async () => {
    const dbUrl = await createDatabase();
    [a, b] = await Promise.all([startServer({ dbUrl }), startServer({ dbUrl })]);
    for (const s of [a, b]) {
      s.app.tasks.leaseMs = LEASE_MS;
      s.app.tasks.register(longType(() => s.app.tasks.node));
    }
  });

  after(async () => {
    await a?.stop();
    await b?.stop();
  });

  const create = async (s: TestServer, name: string, ms: number) => {
    const res = await s.fetch(`${API}/tasks`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ type: 'test.long', name, properties: { ms } }),
    });
    const text = await res.text();
    assert.equal(res.status, 201, text);
    return (JSON.parse(text) as { id: string }).id;
  };
  const taskRow = (s: TestServer, id: string) => s.app.db('tasks').where({ task_id: id }).first();
  const runsOf = async (s: TestServer, id: string) =>
    ((await (await s.fetch(`${API}/tasks/${id}/runs`)).json()) as { items: Array<{ id: string; node: string; result: string; message: string | null }> }).items;

  it('a run five times longer than its lease stays on one node; the lease is renewed past its length', async () => {
    ranOn.length = 0;
    endings.length = 0;
    const id = await create(a, 'long', RUN_MS);
    const started = Date.now();
    assert.equal((await a.fetch(`${API}/tasks/${id}/run`, { method: 'POST' })).status, 204);
    const leaseUntils: number[] = [];
    let refused = 0;
    // Node b keeps trying, through the API, through its scheduler and directly, while a surely
    // runs (the run takes at least RUN_MS; the last second is left out, where it may end).
    await b.app.db('tasks').where({ task_id: id }).update({ next_run_at: Date.now() });
    while (Date.now() - started < RUN_MS - 1000) {
      const row = await taskRow(a, id);
      assert.equal(row.current_state, 'RUNNING');
      assert.equal(row.lease_owner, a.app.tasks.node);
      leaseUntils.push(num(row.lease_until));
      assert.equal((await b.fetch(`${API}/tasks/${id}/run`, { method: 'POST' })).status, 204);
      await b.app.tasks.runDue();
      await assert.rejects(b.app.tasks.run(id), /already running/);
      refused++;
      await sleep(100);
    }
    for (let i = 0; (await taskRow(a, id)).current_state === 'RUNNING'; i++) {
      assert.ok(i < 400, 'the run did not end');
      await sleep(50);
    }
    assert.ok(refused >= 10, `only ${refused} attempts were made while it ran`);
    assert.ok(Date.now() - started >= RUN_MS);
    // Renewed: the lease reached well past the first lease's end.
    assert.ok(Math.max(...leaseUntils) > started + 3 * LEASE_MS, `lease ends seen: ${leaseUntils.map((t) => t - started).join(',')}`);
    assert.equal(ranOn.length, RUN_MS / 50);
    assert.deepEqual(new Set(ranOn), new Set([a.app.tasks.node]));
    assert.deepEqual(endings, ['done']);
    const runs = await runsOf(b, id);
    assert.equal(runs.length, 1);
    assert.equal(runs[0].node, a.app.tasks.node);
    assert.equal(runs[0].result, 'OK');
    const row = await taskRow(b, id);
    assert.equal(row.lease_owner, null);
    assert.equal(row.last_result, 'OK');
  });

  it('a stop sent to the other node stops the run where it runs', async () => {
    endings.length = 0;
    const id = await create(a, 'stoppable', 10_000);
    assert.equal((await a.fetch(`${API}/tasks/${id}/run`, { method: 'POST' })).status, 204);
    await sleep(200);
    assert.equal((await b.fetch(`${API}/tasks/${id}/stop`, { method: 'POST' })).status, 204);
    for (let i = 0; (await taskRow(a, id)).current_state === 'RUNNING'; i++) {
      assert.ok(i < 100, 'not stopped');
      await sleep(50);
    }
    assert.equal((await runsOf(b, id))[0].result, 'CANCELED');
    assert.deepEqual(endings, ['aborted: stopped by request']);
  });

  it('a node whose lease was taken over stops recording and aborts its run', async () => {
    endings.length = 0;
    const id = await create(a, 'taken over', 10_000);
    assert.equal((await a.fetch(`${API}/tasks/${id}/run`, { method: 'POST' })).status, 204);
    await sleep(300);
    const [run] = await runsOf(a, id);
    // As if node b had found the lease expired and taken the task.
    await b.app
      .db('tasks')
      .where({ task_id: id })
      .update({ lease_owner: b.app.tasks.node, lease_until: Date.now() + 60_000, run_id: null });
    for (let i = 0; endings.length === 0; i++) {
      assert.ok(i < 100, 'node a did not notice');
      await sleep(50);
    }
    assert.match(endings[0], /aborted: the lease was taken over/);
    const lines = await b.app
      .db('task_run_logs')
      .where({ run_id: Number(run.id) })
      .count({ n: '*' })
      .first();
    await sleep(1500);
    const later = await b.app
      .db('task_run_logs')
      .where({ run_id: Number(run.id) })
      .count({ n: '*' })
      .first();
    assert.equal(num(later?.n), num(lines?.n));
    const row = await b.app
      .db('task_runs')
      .where({ id: Number(run.id) })
      .first();
    assert.equal(row.ended, null, 'node a recorded the end of a run it no longer owned');
    assert.equal((await taskRow(b, id)).lease_owner, b.app.tasks.node);
    await b.app.db('tasks').where({ task_id: id }).update({ lease_owner: null, lease_until: null, current_state: 'WAITING' });
  });

  it('a run whose node stops renewing is marked INTERRUPTED by the other node, which may run the task again', async () => {
    endings.length = 0;
    const id = await create(a, 'crashing', 10_000);
    assert.equal((await a.fetch(`${API}/tasks/${id}/run`, { method: 'POST' })).status, 204);
    await sleep(300);
    const [run] = await runsOf(a, id);
    // What a crash leaves: node a neither renews nor records any more.
    a.app.tasks.stop();
    assert.equal((await taskRow(b, id)).current_state, 'RUNNING');
    await sleep(LEASE_MS + 200);
    const xo = (await (await b.fetch(`${API}/tasks/${id}`)).json()) as { currentState: string; lastRunResult: string; message: string };
    assert.equal(xo.currentState, 'WAITING');
    assert.equal(xo.lastRunResult, 'INTERRUPTED');
    assert.match(xo.message, new RegExp(`node ${a.app.tasks.node} stopped renewing its lease`));
    const [interrupted] = await runsOf(b, id);
    assert.equal(interrupted.id, run.id);
    assert.equal(interrupted.result, 'INTERRUPTED');

    await b.fetch(`${API}/tasks/${id}`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'crashing', properties: { ms: 100 } }) });
    const again = await b.app.tasks.run(id);
    assert.equal(again.last_result, 'OK');
    const runs = await runsOf(b, id);
    assert.deepEqual(
      runs.map((r) => [r.node, r.result]),
      [
        [b.app.tasks.node, 'OK'],
        [a.app.tasks.node, 'INTERRUPTED'],
      ],
    );
  });
});
