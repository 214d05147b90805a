/**
 * The audit log: configuration changes made through the REST API (repositories, blob stores,
 * tasks), content deletions (REST components and assets, raw DELETE) and token events are
 * recorded with who, when, from where and before/after (secrets left out); `GET /audit` filters
 * by domain, type, initiator, context and time and pages with continuationToken; it needs
 * nx-audit-read; every record is also a JSON line in <dataDir>/log/audit.log.
 * Runs on SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DATABASES, basic, startServer, type TestServer } from '../helpers/stowage.js';

const API = '/service/rest/v1';

interface AuditItem {
  id: string;
  timestamp: string;
  domain: string;
  type: string;
  context: string;
  initiator: string;
  remoteAddress: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- free-form JSON the assertions walk
  attributes: Record<string, any>;
}
interface AuditPage {
  items: AuditItem[];
  continuationToken: string | null;
}

for (const db of DATABASES) {
  describe(`audit log (${db})`, () => {
    let s: TestServer;
    let started: string;

    async function audit(query: string, auth?: string): Promise<AuditPage> {
      const res = await s.fetch(`${API}/audit${query ? '?' + query : ''}`, auth ? { auth } : {});
      const text = await res.text();
      assert.equal(res.status, 200, text);
      return JSON.parse(text) as AuditPage;
    }

    function send(method: string, p: string, body?: unknown, auth?: string): Promise<Response> {
      return s.fetch(API + p, {
        method,
        headers: { 'Content-Type': 'application/json', 'X-Forwarded-For': '192.0.2.44' },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(auth ? { auth } : {}),
      });
    }

    before(async () => {
      // Behind a reverse proxy: the client address comes from X-Forwarded-For.
      s = await startServer({ db, env: { STOWAGE_TRUST_PROXY: 'true' } });
      started = new Date().toISOString();
      await s.app.security.users.create({ userId: 'reader', password: 'reader-pw-1', roles: ['nx-anonymous'] });
    });
    after(async () => {
      await s?.stop();
    });

    it('needs nx-audit-read', async () => {
      assert.equal((await s.fetch(`${API}/audit`, { auth: null })).status, 401);
      assert.equal((await s.fetch(`${API}/audit`, { auth: basic('reader', 'reader-pw-1') })).status, 403);
      assert.equal((await s.fetch(`${API}/audit`)).status, 200);
    });

    it('records repository create, update, invalidate-cache and delete with before and after, secrets left out', async () => {
      const proxy = {
        name: 'up',
        online: true,
        storage: { blobStoreName: 'default', strictContentTypeValidation: false },
        proxy: { remoteUrl: 'http://127.0.0.1:9/', contentMaxAge: 60 },
        httpClient: { authentication: { type: 'username', username: 'u', password: 'very-secret-pw' } },
      };
      assert.equal((await send('POST', '/repositories/raw/proxy', proxy)).status, 201);
      const cfg = await (await s.fetch(`${API}/repositories/raw/proxy/up`)).json();
      cfg.proxy.contentMaxAge = 99;
      assert.equal((await send('PUT', '/repositories/raw/proxy/up', cfg)).status, 204);
      assert.equal((await send('POST', '/repositories/up/invalidate-cache')).status, 204);
      assert.equal((await send('DELETE', '/repositories/up')).status, 204);

      const page = await audit('domain=repository.repository&context=up');
      const text = JSON.stringify(page);
      assert.ok(!text.includes('very-secret-pw') && !text.includes('enc:v1:'), text);
      assert.deepEqual(
        page.items.map((e) => e.type),
        ['created', 'updated', 'invalidated-cache', 'deleted'],
      );
      for (const e of page.items) {
        assert.equal(e.initiator, 'admin');
        assert.equal(e.remoteAddress, '192.0.2.44');
        assert.equal(e.context, 'up');
        assert.ok(Date.parse(e.timestamp) >= Date.parse(started));
      }
      const [created, updated, , deleted] = page.items;
      assert.equal(created.attributes.format, 'raw');
      assert.equal(created.attributes.after.proxy.contentMaxAge, 60);
      assert.equal(created.attributes.after.httpClient.authentication.password, '<secret>');
      assert.equal(updated.attributes.before.proxy.contentMaxAge, 60);
      assert.equal(updated.attributes.after.proxy.contentMaxAge, 99);
      assert.equal(deleted.attributes.before.proxy.contentMaxAge, 99);
    });

    it('records blob store create, update and delete', async () => {
      assert.equal((await send('POST', '/blobstores/file', { name: 'disk2', path: 'disk2' })).status, 204);
      assert.equal((await send('PUT', '/blobstores/file/disk2', { path: 'disk2', softQuota: { type: 'spaceUsedQuota', limit: 1000 } })).status, 204);
      assert.equal((await send('DELETE', '/blobstores/disk2')).status, 204);
      const page = await audit('domain=blobstore&context=disk2');
      assert.deepEqual(
        page.items.map((e) => [e.type, e.initiator]),
        [
          ['created', 'admin'],
          ['updated', 'admin'],
          ['deleted', 'admin'],
        ],
      );
      assert.deepEqual(page.items[1].attributes.before, { path: 'disk2' });
      assert.deepEqual(page.items[1].attributes.after, { path: 'disk2', softQuota: { type: 'spaceUsedQuota', limit: 1000 } });
    });

    it('records a task run', async () => {
      const tasks = (await (await s.fetch(`${API}/tasks`)).json()) as { items: Array<{ id: string; name: string }> };
      const t = tasks.items[0];
      assert.equal((await send('POST', `/tasks/${t.id}/run`)).status, 204);
      const page = await audit(`domain=scheduling&type=run&context=${t.id}`);
      assert.equal(page.items.length, 1);
      assert.equal(page.items[0].attributes.name, t.name);
    });

    it('records content deletions: raw DELETE, REST asset and component delete', async () => {
      await s.repo('raw', 'hosted', { name: 'files', storage: { blobStoreName: 'default', writePolicy: 'ALLOW' } });
      for (const p of ['a/one.txt', 'a/two.txt', 'b/three.txt']) {
        assert.equal((await s.fetch(`/repository/files/${p}`, { method: 'PUT', body: p })).status, 201);
      }
      const del = await s.fetch('/repository/files/a/one.txt', { method: 'DELETE', headers: { 'X-Forwarded-For': '192.0.2.45' } });
      assert.equal(del.status, 204);

      const assets = (await (await s.fetch(`${API}/assets?repository=files`)).json()) as { items: Array<{ id: string; path: string }> };
      const two = assets.items.find((a) => a.path === 'a/two.txt')!;
      assert.equal((await send('DELETE', `/assets/${two.id}`)).status, 204);
      const comps = (await (await s.fetch(`${API}/components?repository=files`)).json()) as { items: Array<{ id: string; name: string; group: string | null }> };
      const three = comps.items.find((c) => c.name === 'b/three.txt' || c.name === 'three.txt')!;
      assert.ok(three, JSON.stringify(comps));
      assert.equal((await send('DELETE', `/components/${three.id}`)).status, 204);

      const assetEvents = await audit('domain=repository.asset&type=deleted');
      assert.deepEqual(
        assetEvents.items.map((e) => [e.context, e.initiator, e.remoteAddress, e.attributes.repository]),
        [
          ['a/one.txt', 'admin', '192.0.2.45', 'files'],
          ['a/two.txt', 'admin', '192.0.2.44', 'files'],
        ],
      );
      const compEvents = await audit('domain=repository.component');
      assert.equal(compEvents.items.length, 1);
      assert.equal(compEvents.items[0].attributes.repository, 'files');
      assert.deepEqual(compEvents.items[0].attributes.assets, ['b/three.txt']);
    });

    it('filters by initiator and time, and pages with continuationToken', async () => {
      const all = await audit('limit=1000');
      assert.ok(all.items.length >= 10, String(all.items.length));
      assert.equal(all.continuationToken, null);
      const ids = all.items.map((e) => Number(e.id));
      assert.deepEqual(
        ids,
        [...ids].sort((a, b) => a - b),
        'oldest first',
      );

      // Paging walks the same records, each once.
      const seen: string[] = [];
      let token: string | null = null;
      let pages = 0;
      do {
        const page = await audit(`limit=3${token ? '&continuationToken=' + encodeURIComponent(token) : ''}`);
        assert.ok(page.items.length <= 3);
        seen.push(...page.items.map((e) => e.id));
        token = page.continuationToken;
        pages++;
      } while (token);
      assert.deepEqual(
        seen,
        all.items.map((e) => e.id),
      );
      assert.equal(pages, Math.ceil(all.items.length / 3));

      assert.equal((await audit('initiator=nobody')).items.length, 0);
      assert.ok((await audit('initiator=admin')).items.every((e) => e.initiator === 'admin'));
      const middle = all.items[Math.floor(all.items.length / 2)];
      const since = await audit(`since=${encodeURIComponent(middle.timestamp)}&limit=1000`);
      assert.ok(since.items.length > 0 && since.items.every((e) => e.timestamp >= middle.timestamp));
      const until = await audit(`until=${encodeURIComponent(middle.timestamp)}&limit=1000`);
      assert.ok(until.items.every((e) => e.timestamp < middle.timestamp));
      assert.equal(since.items.length + until.items.length, all.items.length);
      assert.equal((await audit('until=2000-01-01')).items.length, 0);

      for (const [q, field] of [
        ['since=yesterday', 'since'],
        ['until=2024-13-45T00:00:00Z', 'until'],
        ['continuationToken=bogus', 'continuationToken'],
        ['limit=0', 'limit'],
      ]) {
        const res = await s.fetch(`${API}/audit?${q}`);
        const text = await res.text();
        assert.equal(res.status, 400, `${q}: ${text}`);
        assert.equal((JSON.parse(text) as Array<{ id: string }>)[0].id, `PARAMETER ${field}`);
      }
    });

    it('writes every record as a JSON line to <dataDir>/log/audit.log', async () => {
      const lines = readFileSync(path.join(s.dataDir, 'log', 'audit.log'), 'utf8')
        .trim()
        .split('\n');
      const records = lines.map((l) => JSON.parse(l) as AuditItem);
      const all = await audit('limit=1000');
      assert.equal(records.length, all.items.length);
      assert.ok(records.some((r) => r.domain === 'repository.repository' && r.type === 'deleted' && r.context === 'up'));
      assert.ok(!lines.join('\n').includes('very-secret-pw'));
    });
  });
}

describe('audit origin without a trusted proxy', () => {
  it('ignores X-Forwarded-For by default: a client cannot choose the address recorded', async () => {
    const s = await startServer();
    try {
      await s.repo('raw', 'hosted', { name: 'direct', storage: { blobStoreName: 'default', writePolicy: 'ALLOW' } });
      assert.equal((await s.fetch('/repository/direct/x.txt', { method: 'PUT', body: 'x' })).status, 201);
      const del = await s.fetch('/repository/direct/x.txt', { method: 'DELETE', headers: { 'X-Forwarded-For': '192.0.2.99' } });
      assert.equal(del.status, 204);
      const res = await s.fetch(`${API}/audit?domain=repository.asset&limit=100`);
      const page = JSON.parse(await res.text()) as AuditPage;
      const event = page.items.find((e) => e.context === 'x.txt');
      assert.ok(event, 'the deletion is audited');
      assert.equal(event.remoteAddress.replace(/^::ffff:/, ''), '127.0.0.1');
    } finally {
      await s.stop();
    }
  });
});
