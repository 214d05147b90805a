/**
 * Cleanup policies: the REST shape (Nexus CleanupPolicyXO, 400s naming the field, inUseCount, a
 * policy in use cannot go), repositories referencing them with `cleanup.policyNames`, and raw
 * content cleaned by asset regex, age and last download — preview and run select the same
 * components, the bytes leave the blob store in the same run, the run is in the audit log, and a
 * run cut short is finished from its journal without deleting anything it did not name.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DATABASES, basic, startServer, type TestServer } from '../helpers/stowage.js';
import { DAY, createPolicy, errorMessage, json, label, previewAll, runPolicy } from '../helpers/cleanup.js';

const API = '/service/rest/v1';
const FILES = ['old/a.txt', 'old/b.log', 'new/c.txt', 'new/d.log', 'used/e.txt', 'used/f.txt'];

for (const db of DATABASES) {
  describe(`cleanup policies (${db})`, () => {
    let s: TestServer;
    const content = new Map(FILES.map((f) => [f, randomBytes(4096 + FILES.indexOf(f))]));

    before(async () => {
      s = await startServer({ db });
    });
    after(() => s?.stop());

    const usage = async () => {
      const r = await json<Array<{ name: string; totalSizeInBytes: number; blobCount: number }>>(s, `${API}/blobstores`);
      return r.body.find((b) => b.name === 'default')!;
    };
    const setPolicies = async (repo: string, policyNames: string[]) =>
      json(s, `${API}/repositories/raw/hosted/${repo}`, {
        method: 'PUT',
        body: JSON.stringify({
          name: repo,
          online: true,
          storage: { blobStoreName: 'default', strictContentTypeValidation: false, writePolicy: 'ALLOW' },
          cleanup: { policyNames },
        }),
      });

    it('keeps policies in Nexus’s shape; a bad field is a 400 naming it; a policy in use cannot go', async () => {
      await createPolicy(s, { name: 'npm-pre', format: 'npm', notes: 'old prereleases', criteriaLastBlobUpdated: 30, criteriaReleaseType: 'PRERELEASES', retain: 2 });
      const got = await json(s, `${API}/cleanup-policies/npm-pre`);
      assert.deepEqual(got.body, {
        name: 'npm-pre',
        notes: 'old prereleases',
        format: 'npm',
        criteriaLastBlobUpdated: 30,
        criteriaLastDownloaded: null,
        criteriaReleaseType: 'PRERELEASES',
        criteriaAssetRegex: null,
        retain: 2,
        sortBy: 'version',
        inUseCount: 0,
      });
      const bad: Array<[Record<string, unknown>, string]> = [
        [{ format: 'raw' }, 'name'],
        [{ name: 'x', format: 'nope' }, 'format'],
        [{ name: 'x', format: 'raw', criteriaLastBlobUpdated: -1 }, 'criteriaLastBlobUpdated'],
        [{ name: 'x', format: 'raw', criteriaLastDownloaded: 'soon' }, 'criteriaLastDownloaded'],
        [{ name: 'x', format: 'npm', criteriaReleaseType: 'BETA' }, 'criteriaReleaseType'],
        [{ name: 'x', format: 'raw', criteriaAssetRegex: '([' }, 'criteriaAssetRegex'],
        [{ name: 'x', format: 'npm', retain: 1.5 }, 'retain'],
        [{ name: 'x', format: 'npm', retain: 3, sortBy: 'size' }, 'sortBy'],
        [{ name: 'x', format: 'raw', criteriaLastBlobUpdate: 3 }, 'criteriaLastBlobUpdate'],
        [{ name: 'npm-pre', format: 'npm', criteriaLastBlobUpdated: 3 }, 'name'],
      ];
      for (const [body, field] of bad) {
        const r = await json<{ message: string }>(s, `${API}/cleanup-policies`, { method: 'POST', body: JSON.stringify(body) });
        assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.status}`);
        assert.ok(errorMessage(r.body).startsWith(`${field}:`), `${JSON.stringify(body)}: ${errorMessage(r.body)}`);
      }
      assert.equal((await json(s, `${API}/cleanup-policies`)).body instanceof Array, true);
      assert.equal((await json(s, `${API}/cleanup-policies/nope`)).status, 404);

      // Anonymous and a user without the privilege are refused before anything is read.
      assert.equal((await json(s, `${API}/cleanup-policies`, { auth: null })).status, 401);
      await json(s, `${API}/security/users`, {
        method: 'POST',
        body: JSON.stringify({ userId: 'dev', firstName: 'D', lastName: 'V', emailAddress: 'd@example.com', password: 'dev-pw-123', status: 'active', roles: ['nx-anonymous'] }),
      });
      assert.equal((await json(s, `${API}/cleanup-policies/npm-pre`, { method: 'DELETE', auth: basic('dev', 'dev-pw-123') })).status, 403);

      // Repositories reference policies (several, in order); unknown, wrong-format, and group references are 400s.
      await createPolicy(s, { name: 'raw-logs', format: 'raw', criteriaAssetRegex: '\\.log$', criteriaLastDownloaded: 30 });
      await createPolicy(s, { name: 'raw-unused', format: '*', criteriaLastDownloaded: 30 });
      await createPolicy(s, { name: 'raw-age', format: 'raw', criteriaLastBlobUpdated: 30 });
      const created = await json(s, `${API}/repositories/raw/hosted`, {
        method: 'POST',
        body: JSON.stringify({
          name: 'files',
          online: true,
          storage: { blobStoreName: 'default', strictContentTypeValidation: false, writePolicy: 'ALLOW' },
          cleanup: { policyNames: ['raw-logs', 'raw-age'] },
        }),
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const settings = await json<{ cleanup: unknown }>(s, `${API}/repositories/raw/hosted/files`);
      assert.deepEqual(settings.body.cleanup, { policyNames: ['raw-logs', 'raw-age'] });
      assert.equal((await json<{ inUseCount: number }>(s, `${API}/cleanup-policies/raw-logs`)).body.inUseCount, 1);
      for (const [names, why] of [
        [['nope'], /does not exist/],
        [['npm-pre'], /is for npm, not raw/],
        [['raw-age', 'raw-age'], /twice/],
      ] as Array<[string[], RegExp]>) {
        const r = await setPolicies('files', names);
        assert.equal(r.status, 400);
        assert.match(errorMessage(r.body), /^cleanup\.policyNames: /);
        assert.match(errorMessage(r.body), why);
      }
      const group = await json<{ message: string }>(s, `${API}/repositories/raw/group`, {
        method: 'POST',
        body: JSON.stringify({ name: 'all', online: true, storage: { blobStoreName: 'default' }, group: { memberNames: ['files'] }, cleanup: { policyNames: ['raw-age'] } }),
      });
      assert.equal(group.status, 400);
      assert.match(errorMessage(group.body), /^cleanup\.policyNames: group/);

      const refused = await json<{ message: string }>(s, `${API}/cleanup-policies/raw-logs`, { method: 'DELETE' });
      assert.equal(refused.status, 409);
      assert.match(errorMessage(refused.body), /used by 1 repository/);
      // A policy in use keeps a format its repositories have.
      const reformat = await json<{ message: string }>(s, `${API}/cleanup-policies/raw-logs`, { method: 'PUT', body: JSON.stringify({ name: 'raw-logs', format: 'npm' }) });
      assert.equal(reformat.status, 400);
      assert.match(errorMessage(reformat.body), /^format: /);
      const updated = await json<{ notes: string; criteriaAssetRegex: string }>(s, `${API}/cleanup-policies/raw-logs`, {
        method: 'PUT',
        body: JSON.stringify({ name: 'raw-logs', format: 'raw', notes: 'logs', criteriaAssetRegex: '\\.log$', criteriaLastDownloaded: 30, inUseCount: 1 }),
      });
      assert.equal(updated.status, 200, JSON.stringify(updated.body));
      assert.equal(updated.body.notes, 'logs');
      const audit = await s.app.db('audit_events').where({ domain: 'cleanup.policy' }).select('type', 'context');
      assert.deepEqual(
        audit.filter((a) => a.context === 'raw-logs').map((a) => a.type),
        ['created', 'updated'],
      );
      assert.equal((await json(s, `${API}/cleanup-policies/npm-pre`, { method: 'DELETE' })).status, 204);
    });

    it('cleans raw content by regex, age and last download: the preview is what the run deletes, and the bytes go in the same run', async () => {
      for (const f of FILES) {
        const r = await s.fetch(`/repository/files/${f}`, { method: 'PUT', body: content.get(f), headers: { 'Content-Type': 'application/octet-stream' } });
        assert.equal(r.status, 201, `${f}: ${r.status}`);
      }
      // Stored 40 days ago: old/ and used/.
      const repoId = (await s.app.repositories.require('files')).id;
      await s.app
        .db('assets')
        .where({ repository_id: repoId })
        .andWhere('path', 'not like', 'new/%')
        .update({ updated_at: Date.now() - 40 * DAY, created_at: Date.now() - 40 * DAY });
      // The first download is recorded (batched, written before cleanup judges it).
      assert.equal((await s.fetch('/repository/files/used/e.txt')).status, 200);

      const names = async (policy: string) => (await previewAll(s, policy, 'files')).items.map(label).sort();
      assert.deepEqual(await names('raw-age'), ['/old:old/a.txt', '/old:old/b.log', '/used:used/e.txt', '/used:used/f.txt']);
      assert.deepEqual(await names('raw-unused'), ['/old:old/a.txt', '/old:old/b.log', '/used:used/f.txt'], 'e.txt was downloaded; new/ counts from when it was stored');
      const logs = await previewAll(s, 'raw-logs', 'files');
      assert.deepEqual(logs.items.map(label), ['/old:old/b.log']);
      assert.deepEqual(logs.totals, { components: 1, assets: 1, bytes: content.get('old/b.log')!.length });

      // Nexus's internal preview: unsaved criteria against a repository.
      const internal = await json<{ total: number; results: Array<{ name: string }> }>(s, '/service/rest/internal/cleanup-policies/preview/components', {
        method: 'POST',
        body: JSON.stringify({ repository: 'files', criteriaLastBlobUpdated: 30, criteriaAssetRegex: 'txt$' }),
      });
      assert.equal(internal.status, 200, JSON.stringify(internal.body));
      assert.deepEqual(internal.body.results.map((r) => r.name).sort(), ['old/a.txt', 'used/e.txt', 'used/f.txt']);
      assert.equal(internal.body.total, 3);

      const before = await usage();
      const run = await runPolicy(s, 'raw-logs');
      assert.equal(run.result, 'OK', run.message);
      assert.match(run.log, /files: deleted 1 components and 1 assets; removed 1 blobs, reclaimed 4097 bytes/);
      assert.equal((await s.fetch('/repository/files/old/b.log')).status, 404);
      const afterRun = await usage();
      assert.equal(before.totalSizeInBytes - afterRun.totalSizeInBytes, content.get('old/b.log')!.length, 'blob store usage drops in the same run');
      assert.equal(before.blobCount - afterRun.blobCount, 1);

      // Several policies on one repository: a component any of them selects goes.
      assert.equal((await setPolicies('files', ['raw-logs', 'raw-unused'])).status, 204);
      const expected = await names('raw-unused');
      assert.deepEqual(expected, ['/old:old/a.txt', '/used:used/f.txt']);
      const run2 = await runPolicy(s, 'raw-unused');
      assert.equal(run2.result, 'OK', run2.message);
      const left = (await json<{ items: Array<{ name: string }> }>(s, `${API}/components?repository=files`)).body.items.map((c) => c.name).sort();
      assert.deepEqual(left, ['new/c.txt', 'new/d.log', 'used/e.txt'], 'exactly what the preview named went');
      for (const f of ['new/c.txt', 'new/d.log', 'used/e.txt']) assert.deepEqual(Buffer.from(await (await s.fetch(`/repository/files/${f}`)).arrayBuffer()), content.get(f));
      const audit = await s.app.db('audit_events').where({ domain: 'repository.cleanup', context: 'files' }).select('attributes');
      const reports = audit.map((a) => JSON.parse(String(a.attributes)) as { componentsDeleted: number; bytesReclaimed: number });
      assert.deepEqual(
        reports.map((r) => [r.componentsDeleted, r.bytesReclaimed]),
        [
          [1, 4097],
          [2, content.get('old/a.txt')!.length + content.get('used/f.txt')!.length],
        ],
      );
    });

    it('finishes a run cut short from its journal, deleting only what it names', async () => {
      const repo = await s.app.repositories.require('files');
      // A crash after the selection was journaled: new/c.txt was selected then (the policies select nothing now).
      const c = await s.app.db('components').where({ repository_id: repo.id, name: 'new/c.txt' }).first('id');
      const a = await s.app.db('assets').where({ component_id: c.id }).first('updated_at');
      await s.app.db('cleanup_journal').insert({ repository_id: repo.id, component_id: c.id, last_updated: a.updated_at, created_at: Date.now() });
      // And a component stored again since it was selected stays.
      const d = await s.app.db('components').where({ repository_id: repo.id, name: 'new/d.log' }).first('id');
      await s.app.db('cleanup_journal').insert({ repository_id: repo.id, component_id: d.id, last_updated: 1, created_at: Date.now() });
      const run = await runPolicy(s, 'raw-logs');
      assert.equal(run.result, 'OK', run.message);
      assert.match(run.log, /finishing an interrupted run: 2 components/);
      assert.equal((await s.fetch('/repository/files/new/c.txt')).status, 404);
      assert.equal((await s.fetch('/repository/files/new/d.log')).status, 200);
      assert.equal((await s.fetch('/repository/files/used/e.txt')).status, 200);
      assert.equal((await s.app.db('cleanup_journal').count({ n: '*' }).first())!.n, db === 'postgres' ? '0' : 0);
    });

    it('records the first download through a proxy (batched), and cleanup judges proxies by it', async () => {
      const created = await json(s, `${API}/repositories/raw/proxy`, {
        method: 'POST',
        body: JSON.stringify({
          name: 'files-proxy',
          online: true,
          storage: { blobStoreName: 'default', strictContentTypeValidation: false },
          proxy: { remoteUrl: `${s.url}/repository/files/`, contentMaxAge: 1440, metadataMaxAge: 1440 },
          cleanup: { policyNames: ['raw-unused'] },
        }),
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const body = Buffer.from(await (await s.fetch('/repository/files-proxy/used/e.txt')).arrayBuffer());
      assert.deepEqual(body, content.get('used/e.txt'));
      // Written off the hot path: within the flush interval, or when cleanup asks.
      let assets: Array<{ path: string; lastDownloaded: string | null }> = [];
      for (const deadline = Date.now() + 5000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
        assets = (await json<{ items: typeof assets }>(s, `${API}/assets?repository=files-proxy`)).body.items;
        if (assets[0]?.lastDownloaded) break;
      }
      assert.equal(assets.length, 1);
      assert.ok(assets[0].lastDownloaded, 'the first, proxied download is recorded');
      // Stored 40 days ago but downloaded now: not unused.
      const repo = await s.app.repositories.require('files-proxy');
      await s.app
        .db('assets')
        .where({ repository_id: repo.id })
        .update({ updated_at: Date.now() - 40 * DAY });
      assert.equal((await previewAll(s, 'raw-unused', 'files-proxy')).totals.components, 0);
      await s.app
        .db('assets')
        .where({ repository_id: repo.id })
        .update({ last_downloaded: Date.now() - 35 * DAY });
      assert.equal((await previewAll(s, 'raw-unused', 'files-proxy')).totals.components, 1);
    });

    it('never runs on two nodes at once: a run while another node holds the task is refused', async () => {
      const taskId = await s.app.cleanup.task();
      // What a second node sees while this one runs cleanup: the task's lease, held and renewed.
      await s.app
        .db('tasks')
        .where({ task_id: taskId })
        .update({ lease_owner: 'another-node', lease_until: Date.now() + 60_000, current_state: 'RUNNING' });
      const r = await json(s, `${API}/cleanup-policies/raw-logs/run`, { method: 'POST' });
      assert.equal(r.status, 409);
      assert.match(errorMessage(r.body), /already running/);
      await s.app.db('tasks').where({ task_id: taskId }).update({ lease_owner: null, lease_until: null, current_state: 'WAITING' });
      assert.equal((await runPolicy(s, 'raw-logs')).result, 'OK');
    });

    it('keeps a blob another asset still uses, or an upload reuses while the run goes on', async () => {
      const bytes = randomBytes(10_000);
      const put = (p: string) => s.fetch(`/repository/files/${p}`, { method: 'PUT', body: bytes, headers: { 'Content-Type': 'application/octet-stream' } });
      for (const p of ['old/z.bin', 'old/z2.bin']) assert.equal((await put(p)).status, 201);
      const repo = await s.app.repositories.require('files');
      await s.app
        .db('assets')
        .where({ repository_id: repo.id })
        .whereIn('path', ['old/z.bin', 'old/z2.bin'])
        .update({ updated_at: Date.now() - 40 * DAY });
      // Both copies go; uploads of the same bytes keep arriving meanwhile.
      const uploads = (async () => {
        const codes: number[] = [];
        for (let i = 0; i < 8; i++) codes.push((await put(`new/z-${i}.bin`)).status);
        return codes;
      })();
      const run = await runPolicy(s, 'raw-unused');
      assert.equal(run.result, 'OK', run.message);
      assert.deepEqual(await uploads, Array(8).fill(201));
      assert.equal((await s.fetch('/repository/files/old/z.bin')).status, 404);
      for (let i = 0; i < 8; i++) assert.deepEqual(Buffer.from(await (await s.fetch(`/repository/files/new/z-${i}.bin`)).arrayBuffer()), bytes, `new/z-${i}.bin`);
      // A blob GC with no grace afterwards finds the store and the rows in agreement: nothing named is missing.
      await s.app.blobs.gc(0);
      for (let i = 0; i < 8; i++) assert.deepEqual(Buffer.from(await (await s.fetch(`/repository/files/new/z-${i}.bin`)).arrayBuffer()), bytes);
    });

    it('creates the daily cleanup task at first start', async () => {
      const tasks = await json<{ items: Array<{ type: string; name: string; frequency: { schedule: string } }> }>(s, `${API}/tasks?type=repository.cleanup`);
      assert.equal(tasks.body.items.length, 1);
      assert.equal(tasks.body.items[0].name, 'Admin - Cleanup repositories using their associated policies');
      assert.equal(tasks.body.items[0].frequency.schedule, 'daily');
    });
  });
}
