/**
 * REST API: repository configuration with Nexus JSON bodies, as Nexus automation sends them
 * (curl, Terraform, Ansible): create, read, update, delete for raw hosted / proxy / group,
 * validation errors in Nexus's shape, permissions, and the OpenAPI document. Runs on SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DATABASES, startServer, type TestServer } from '../helpers/stowage.js';

const API = '/service/rest/v1';

interface ValidationError {
  id: string;
  message: string;
}

function sendJson(s: TestServer, method: string, p: string, body: unknown, auth?: string | null): Promise<Response> {
  return s.fetch(API + p, {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(auth !== undefined ? { auth } : {}),
  });
}

async function expectField(res: Response, status: number, field: string): Promise<ValidationError[]> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  const body = JSON.parse(text) as ValidationError[];
  assert.ok(Array.isArray(body), text);
  assert.equal(body[0].id, `PARAMETER ${field}`, text);
  assert.ok(body[0].message.length > 0);
  return body;
}

for (const db of DATABASES) {
  describe(`REST API repositories (${db})`, () => {
    let s: TestServer;
    before(async () => {
      s = await startServer({ db });
    });
    after(async () => {
      await s?.stop();
    });

    it('creates a raw hosted repository from a minimal body and fills Nexus defaults', async () => {
      const res = await sendJson(s, 'POST', '/repositories/raw/hosted', { name: 'files' });
      assert.equal(res.status, 201, await res.text());
      const got = await s.fetch(`${API}/repositories/raw/hosted/files`);
      assert.equal(got.status, 200);
      const cfg = await got.json();
      assert.equal(cfg.name, 'files');
      assert.equal(cfg.format, 'raw');
      assert.equal(cfg.type, 'hosted');
      assert.equal(cfg.online, true);
      assert.equal(cfg.url, `${s.url}/repository/files`);
      assert.deepEqual(cfg.storage, { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW_ONCE' });
      assert.deepEqual(cfg.raw, { contentDisposition: 'ATTACHMENT' });
      assert.equal(cfg.cleanup, null);
      assert.equal(cfg.proxy, undefined);
    });

    it('creates a raw proxy repository; the upstream password is never returned', async () => {
      const body = {
        name: 'upstream',
        online: true,
        storage: { blobStoreName: 'default', strictContentTypeValidation: false },
        proxy: { remoteUrl: 'https://example.invalid/files/', contentMaxAge: 60 },
        httpClient: { blocked: false, autoBlock: true, authentication: { type: 'username', username: 'bob', password: 'top-secret-pw' } },
        raw: { contentDisposition: 'INLINE' },
      };
      const res = await sendJson(s, 'POST', '/repositories/raw/proxy', body);
      assert.equal(res.status, 201, await res.text());
      const got = await s.fetch(`${API}/repositories/raw/proxy/upstream`);
      const text = await got.text();
      assert.equal(got.status, 200, text);
      assert.ok(!text.includes('top-secret-pw'), 'password leaked: ' + text);
      const cfg = JSON.parse(text);
      assert.deepEqual(cfg.proxy, { remoteUrl: 'https://example.invalid/files/', contentMaxAge: 60, metadataMaxAge: 1440 });
      assert.deepEqual(cfg.negativeCache, { enabled: true, timeToLive: 1440 });
      assert.equal(cfg.httpClient.blocked, false);
      assert.equal(cfg.httpClient.autoBlock, true);
      assert.equal(cfg.httpClient.authentication.username, 'bob');
      assert.equal(cfg.httpClient.authentication.password, null);
      assert.equal(cfg.storage.writePolicy, undefined);
      assert.deepEqual(cfg.raw, { contentDisposition: 'INLINE' });

      const settings = await (await s.fetch(`${API}/repositorySettings`)).text();
      assert.ok(!settings.includes('top-secret-pw'), 'password leaked by /repositorySettings');

      const list = (await (await s.fetch(`${API}/repositories`)).json()) as Array<Record<string, unknown>>;
      const xo = list.find((r) => r.name === 'upstream');
      assert.deepEqual(xo, {
        name: 'upstream',
        format: 'raw',
        type: 'proxy',
        url: `${s.url}/repository/upstream`,
        attributes: { proxy: { remoteUrl: 'https://example.invalid/files/' } },
      });
      const hosted = list.find((r) => r.name === 'files');
      assert.deepEqual(hosted?.attributes, {});
    });

    it('round-trips GET → PUT without losing the stored password', async () => {
      const cfg = await (await s.fetch(`${API}/repositories/raw/proxy/upstream`)).json();
      cfg.proxy.metadataMaxAge = 5;
      const res = await sendJson(s, 'PUT', '/repositories/raw/proxy/upstream', cfg);
      assert.equal(res.status, 204, await res.text());
      const after = await (await s.fetch(`${API}/repositories/raw/proxy/upstream`)).json();
      assert.equal(after.proxy.metadataMaxAge, 5);
      const stored = await s.app.repositories.find('upstream');
      // Stored encrypted (secrets at rest), the same password inside.
      const password = stored?.config.httpClient?.authentication?.password ?? '';
      assert.ok(s.app.secrets.isEncrypted(password), password);
      assert.equal(s.app.secrets.decrypt(password), 'top-secret-pw');
    });

    it('creates a group with members and a writable member', async () => {
      const res = await sendJson(s, 'POST', '/repositories/raw/group', {
        name: 'all',
        storage: { blobStoreName: 'default' },
        group: { memberNames: ['files', 'upstream'], writableMember: 'files' },
      });
      assert.equal(res.status, 201, await res.text());
      const cfg = await (await s.fetch(`${API}/repositories/raw/group/all`)).json();
      assert.deepEqual(cfg.group, { memberNames: ['files', 'upstream'], writableMember: 'files' });
      assert.equal(cfg.type, 'group');
      const one = await (await s.fetch(`${API}/repositories/all`)).json();
      assert.deepEqual(one, { name: 'all', format: 'raw', type: 'group', url: `${s.url}/repository/all`, attributes: {} });
    });

    it('updates a hosted repository (write policy, online) with PUT', async () => {
      const cfg = await (await s.fetch(`${API}/repositories/raw/hosted/files`)).json();
      cfg.storage.writePolicy = 'ALLOW';
      cfg.online = false;
      assert.equal((await sendJson(s, 'PUT', '/repositories/raw/hosted/files', cfg)).status, 204);
      const after = await (await s.fetch(`${API}/repositories/raw/hosted/files`)).json();
      assert.equal(after.storage.writePolicy, 'ALLOW');
      assert.equal(after.online, false);
      cfg.online = true;
      assert.equal((await sendJson(s, 'PUT', '/repositories/raw/hosted/files', cfg)).status, 204);
    });

    it('lists full configurations at /repositorySettings', async () => {
      const all = (await (await s.fetch(`${API}/repositorySettings`)).json()) as Array<Record<string, unknown>>;
      assert.deepEqual(all.map((r) => r.name).sort(), ['all', 'files', 'upstream']);
      const proxy = all.find((r) => r.name === 'upstream') as { proxy: { remoteUrl: string } };
      assert.equal(proxy.proxy.remoteUrl, 'https://example.invalid/files/');
    });

    it('refuses malformed and invalid bodies with Nexus validation errors naming the field', async () => {
      await expectField(await sendJson(s, 'POST', '/repositories/raw/hosted', '{"name": "x",'), 400, 'body');
      await expectField(await sendJson(s, 'POST', '/repositories/raw/hosted', '[]'), 400, 'body');
      await expectField(await sendJson(s, 'POST', '/repositories/raw/hosted', { name: 'x', online: 'yes' }), 400, 'online');
      await expectField(await sendJson(s, 'POST', '/repositories/raw/hosted', { name: 'x', storage: { writePolicy: 'SOMETIMES' } }), 400, 'storage.writePolicy');
      await expectField(await sendJson(s, 'POST', '/repositories/raw/hosted', { name: '../evil' }), 400, 'name');
      await expectField(await sendJson(s, 'POST', '/repositories/raw/hosted', { online: true }), 400, 'name');
      await expectField(await sendJson(s, 'POST', '/repositories/raw/hosted', { name: 'x', raw: { contentDisposition: 'SIDEWAYS' } }), 400, 'raw.contentDisposition');
      await expectField(await sendJson(s, 'POST', '/repositories/raw/proxy', { name: 'x' }), 400, 'proxy');
      await expectField(await sendJson(s, 'POST', '/repositories/raw/proxy', { name: 'x', proxy: { remoteUrl: 'ftp://example.invalid/' } }), 400, 'proxy.remoteUrl');
      await expectField(await sendJson(s, 'POST', '/repositories/nosuchformat/hosted', { name: 'x' }), 400, 'format');
      await expectField(await sendJson(s, 'POST', '/repositories/raw/mirror', { name: 'x' }), 400, 'type');
      await expectField(await sendJson(s, 'POST', '/repositories/raw/hosted', { name: 'x', storage: { blobStoreName: 'nope' } }), 400, 'storage.blobStoreName');
      assert.equal(await s.app.repositories.find('x'), undefined);
    });

    it('refuses a duplicate name with 409', async () => {
      const res = await sendJson(s, 'POST', '/repositories/raw/hosted', { name: 'files' });
      assert.equal(res.status, 409);
      assert.match((await res.json()).message, /already exists/);
    });

    it('refuses group cycles, missing members and bad writable members naming the field', async () => {
      assert.equal((await sendJson(s, 'POST', '/repositories/raw/group', { name: 'outer', group: { memberNames: ['all'] } })).status, 201);
      const all = await (await s.fetch(`${API}/repositories/raw/group/all`)).json();
      all.group.memberNames = ['files', 'outer'];
      await expectField(await sendJson(s, 'PUT', '/repositories/raw/group/all', all), 400, 'group.memberNames');
      await expectField(await sendJson(s, 'POST', '/repositories/raw/group', { name: 'self', group: { memberNames: ['self'] } }), 400, 'group.memberNames');
      await expectField(await sendJson(s, 'POST', '/repositories/raw/group', { name: 'g2', group: { memberNames: ['files', 'ghost'] } }), 400, 'group.memberNames');
      await expectField(
        await sendJson(s, 'POST', '/repositories/raw/group', { name: 'g3', group: { memberNames: ['files'], writableMember: 'upstream' } }),
        400,
        'group.writableMember',
      );
      await expectField(
        await sendJson(s, 'POST', '/repositories/raw/group', { name: 'g4', group: { memberNames: ['upstream'], writableMember: 'upstream' } }),
        400,
        'group.writableMember',
      );
      // The group is unchanged.
      const still = await (await s.fetch(`${API}/repositories/raw/group/all`)).json();
      assert.deepEqual(still.group.memberNames, ['files', 'upstream']);
    });

    it('refuses renames, blob store changes and type mismatches on PUT', async () => {
      const cfg = await (await s.fetch(`${API}/repositories/raw/hosted/files`)).json();
      await expectField(await sendJson(s, 'PUT', '/repositories/raw/hosted/files', { ...cfg, name: 'renamed' }), 400, 'name');
      await expectField(await sendJson(s, 'PUT', '/repositories/raw/hosted/files', { ...cfg, storage: { ...cfg.storage, blobStoreName: 'other' } }), 400, 'storage.blobStoreName');
      assert.equal((await sendJson(s, 'PUT', '/repositories/raw/proxy/files', cfg)).status, 404);
      assert.equal((await sendJson(s, 'PUT', '/repositories/raw/hosted/missing', { ...cfg, name: 'missing' })).status, 404);
      assert.equal((await s.fetch(`${API}/repositories/raw/hosted/upstream`)).status, 404);
      assert.equal((await s.fetch(`${API}/repositories/nope`)).status, 404);
    });

    it('invalidates caches of proxies and groups only', async () => {
      await expectField(await s.fetch(`${API}/repositories/files/invalidate-cache`, { method: 'POST' }), 400, 'name');
      assert.equal((await s.fetch(`${API}/repositories/upstream/invalidate-cache`, { method: 'POST' })).status, 204);
      assert.equal((await s.fetch(`${API}/repositories/all/invalidate-cache`, { method: 'POST' })).status, 204);
      assert.equal((await s.fetch(`${API}/repositories/ghost/invalidate-cache`, { method: 'POST' })).status, 404);
    });

    it('reports repository status (online; upstream state for proxies)', async () => {
      const hosted = await (await s.fetch(`${API}/repositories/files/status`)).json();
      assert.deepEqual(hosted, { name: 'files', format: 'raw', type: 'hosted', online: true });
      const proxy = await (await s.fetch(`${API}/repositories/upstream/status`)).json();
      assert.deepEqual(proxy, {
        name: 'upstream',
        format: 'raw',
        type: 'proxy',
        online: true,
        blocked: false,
        autoBlocked: false,
        blockedUntil: null,
        failures: 0,
        lastError: null,
      });
      // A manual block shows at once.
      const cfg = await (await s.fetch(`${API}/repositories/raw/proxy/upstream`)).json();
      cfg.httpClient.blocked = true;
      assert.equal((await sendJson(s, 'PUT', '/repositories/raw/proxy/upstream', cfg)).status, 204);
      assert.equal((await (await s.fetch(`${API}/repositories/upstream/status`)).json()).blocked, true);
      cfg.httpClient.blocked = false;
      assert.equal((await sendJson(s, 'PUT', '/repositories/raw/proxy/upstream', cfg)).status, 204);
    });

    it('asks anonymous callers to authenticate on admin endpoints', async () => {
      const anon = { auth: null };
      for (const [method, p] of [
        ['GET', '/repositorySettings'],
        ['GET', '/repositories/raw/hosted/files'],
        ['PUT', '/repositories/raw/hosted/files'],
        ['DELETE', '/repositories/files'],
        ['POST', '/repositories/upstream/invalidate-cache'],
        ['GET', '/repositories/upstream/status'],
      ]) {
        const res = await s.fetch(API + p, { method, ...anon, headers: { 'Content-Type': 'application/json' }, body: method === 'PUT' ? '{}' : undefined });
        assert.equal(res.status, 401, `${method} ${p}`);
        assert.match(res.headers.get('www-authenticate') ?? '', /^Basic/);
      }
      // Even with a malformed body, an anonymous create learns nothing but 401.
      assert.equal((await sendJson(s, 'POST', '/repositories/raw/hosted', '{oops', null)).status, 401);
      assert.equal((await sendJson(s, 'POST', '/repositories/raw/hosted', { name: 'anon' }, null)).status, 401);
      // Listing follows browse permission, which anonymous has by default.
      const list = await s.fetch(`${API}/repositories`, anon);
      assert.equal(list.status, 200);
      assert.ok(((await list.json()) as unknown[]).length >= 3);
      // Wrong credentials are a 401, not anonymous access.
      assert.equal((await s.fetch(`${API}/repositories`, { auth: 'Basic ' + Buffer.from('admin:wrong').toString('base64') })).status, 401);
    });

    it('answers unknown methods and endpoints', async () => {
      assert.equal((await s.fetch(`${API}/repositories/raw/hosted`, { method: 'PUT' })).status, 405);
      const nf = await s.fetch(`${API}/nothing-here`);
      assert.equal(nf.status, 404);
      assert.match((await nf.json()).message, /No such API endpoint/);
    });

    it('deletes repositories; groups drop the deleted member', async () => {
      assert.equal((await s.fetch(`${API}/repositories/upstream`, { method: 'DELETE' })).status, 204);
      assert.equal((await s.fetch(`${API}/repositories/upstream`)).status, 404);
      assert.equal((await s.fetch(`${API}/repositories/upstream`, { method: 'DELETE' })).status, 404);
      const all = await (await s.fetch(`${API}/repositories/raw/group/all`)).json();
      assert.deepEqual(all.group.memberNames, ['files']);
      for (const n of ['outer', 'all', 'files']) assert.equal((await s.fetch(`${API}/repositories/${n}`, { method: 'DELETE' })).status, 204, n);
      assert.deepEqual(await (await s.fetch(`${API}/repositories`)).json(), []);
    });
  });
}

describe('REST API OpenAPI document', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(async () => {
    await s?.stop();
  });

  it('is served at /service/rest/swagger.json and /v1/openapi.json and describes every endpoint', async () => {
    const res = await s.fetch('/service/rest/swagger.json', { auth: null });
    assert.equal(res.status, 200);
    const doc = await res.json();
    assert.equal(doc.openapi, '3.0.3');
    assert.deepEqual(await (await s.fetch(`${API}/openapi.json`, { auth: null })).json(), doc);
    const expected: Record<string, string[]> = {
      '/v1/repositories': ['get'],
      '/v1/repositorySettings': ['get'],
      '/v1/repositories/{repositoryName}': ['get', 'delete'],
      '/v1/repositories/{repositoryName}/invalidate-cache': ['post'],
      '/v1/repositories/{repositoryName}/status': ['get'],
      '/v1/repositories/{format}/{type}': ['post'],
      '/v1/repositories/{format}/{type}/{repositoryName}': ['get', 'put'],
      '/v1/blobstores': ['get'],
      '/v1/blobstores/{name}': ['delete'],
      '/v1/blobstores/{name}/quota-status': ['get'],
      '/v1/blobstores/file': ['post'],
      '/v1/blobstores/file/{name}': ['get', 'put'],
      '/v1/blobstores/s3': ['post'],
      '/v1/blobstores/s3/{name}': ['get', 'put'],
      '/v1/components': ['get', 'post'],
      '/v1/components/{id}': ['get', 'delete'],
      '/v1/assets': ['get'],
      '/v1/assets/{id}': ['get', 'delete'],
      '/v1/search': ['get'],
      '/v1/search/assets': ['get'],
      '/v1/search/assets/download': ['get'],
      '/v1/tasks': ['get', 'post'],
      '/v1/tasks/types': ['get'],
      '/v1/tasks/{id}': ['get', 'put', 'delete'],
      '/v1/tasks/{id}/run': ['post'],
      '/v1/tasks/{id}/stop': ['post'],
      '/v1/tasks/{id}/runs': ['get'],
      '/v1/tasks/{id}/runs/{runId}/log': ['get'],
      '/v1/status': ['get'],
      '/v1/status/writable': ['get'],
      '/v1/status/check': ['get'],
    };
    for (const [p, methods] of Object.entries(expected)) {
      assert.ok(doc.paths[p], `missing ${p}`);
      assert.deepEqual(Object.keys(doc.paths[p]).sort(), [...methods].sort(), p);
    }
    // Format-specific parts come from the formats compiled in.
    assert.deepEqual(doc.components.schemas.RepositoryConfig.properties.raw.properties.contentDisposition.enum, ['INLINE', 'ATTACHMENT']);
    assert.ok(doc.paths['/v1/components'].post.requestBody.content['multipart/form-data'].schema.properties['raw.asset1.filename']);
    assert.ok(doc.paths['/v1/repositories/{format}/{type}'].post.parameters[0].schema.enum.includes('raw'));
    // Every $ref resolves.
    const refs = JSON.stringify(doc).match(/#\/components\/schemas\/[A-Za-z0-9]+/g) ?? [];
    for (const r of new Set(refs)) assert.ok(doc.components.schemas[r.split('/').pop()!], `dangling ${r}`);
  });

  it('keeps /status, /status/writable and /status/check working', async () => {
    assert.equal((await s.fetch(`${API}/status`, { auth: null })).status, 200);
    assert.equal((await s.fetch(`${API}/status/writable`, { auth: null })).status, 200);
    assert.equal((await s.fetch(`${API}/status/check`, { auth: null })).status, 401);
    const check = await (await s.fetch(`${API}/status/check`)).json();
    assert.equal(check.Database.healthy, true);
  });
});
