/**
 * Hardening of the HTTP surface (issue 11, items 1 REST half, 3, 4, 5, 9, 19):
 * - every JSON-accepting REST endpoint (enumerated from the routers) refuses `__proto__`,
 *   `constructor` and `prototype` keys at any depth with a 400 naming the key; nothing changes;
 * - `/` lists only the repositories the caller may browse;
 * - the login lock is per (user, address) plus a per-address limit, and a valid API token is
 *   never refused;
 * - X-Forwarded-Host/Proto change generated URLs (docker's Bearer realm, npm tarballs) only
 *   with trust-proxy on;
 * - raw files named with characters above U+00FF are served (Content-Disposition encoded);
 * - a second server on the same port exits 2 with one line naming the setting.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, ADMIN_PASSWORD, DATABASES, basic, spawnServer, startServer, type TestServer } from '../helpers/stowage.js';
import { publish } from '../helpers/npm-gen.js';
import { startS3, type S3Server } from '../helpers/s3.js';
import type { Stowage } from '../../src/stowage.js';
import { apiRoutes } from '../../src/api/index.js';

const API = '/service/rest/v1';

function send(s: TestServer, method: string, p: string, body: string, auth: string | null = ADMIN, type = 'application/json'): Promise<Response> {
  return s.fetch(API + p, { method, auth, headers: { 'Content-Type': type }, body });
}

/** POST/PUT/PATCH routes of the REST API (formats' endpoints included), from the route declarations (`POST /security/roles`). */
function bodyRoutes(app: Stowage): string[] {
  return apiRoutes(app)
    .filter((r) => !['GET', 'HEAD', 'DELETE'].includes(r.method))
    .map((r) => `${r.method} ${r.path}`);
}

/** Body routes that take no JSON at all (no body, multipart, a tar archive). */
const NOT_JSON = new Set([
  'POST /repositories/:repositoryName/invalidate-cache',
  'POST /components',
  'POST /tasks/:id/run',
  'POST /tasks/:id/stop',
  'POST /security/ldap/clear-cache',
  'POST /docker/archive',
  'POST /cleanup-policies/:name/run',
]);

/** Three ways of hiding a prototype key in a JSON object body. */
function pollutedObjects(valid: Record<string, unknown>): Array<[string, string]> {
  const text = JSON.stringify(valid);
  const tail = text.slice(1);
  return [
    ['__proto__', `{"__proto__":{"polluted":"yes"},${tail}`],
    ['constructor', `{"extra":{"constructor":{"prototype":{"polluted":"yes"}}},${tail}`],
    ['prototype', `{"list":[1,{"deep":{"prototype":{"polluted":"yes"}}}],${tail}`],
  ];
}

function pollutedArrays(valid: unknown[]): Array<[string, string]> {
  const tail = JSON.stringify(valid).slice(1);
  return [
    ['__proto__', `[{"__proto__":{"polluted":"yes"}},${tail}`],
    ['constructor', `[{"constructor":{"prototype":{"polluted":"yes"}}},${tail}`],
  ];
}

const LDAP = {
  name: 'corp',
  protocol: 'ldap',
  useTrustStore: false,
  host: '127.0.0.1',
  port: 1,
  searchBase: 'dc=example,dc=org',
  authScheme: 'NONE',
  connectionTimeoutSeconds: 1,
  connectionRetryDelaySeconds: 1,
  maxIncidentsCount: 1,
  userBaseDn: 'ou=people',
  userSubtree: false,
  userObjectClass: 'inetOrgPerson',
  userLdapFilter: '',
  userIdAttribute: 'uid',
  userRealNameAttribute: 'cn',
  userEmailAddressAttribute: 'mail',
  userPasswordAttribute: '',
  ldapGroupsAsRoles: false,
};

/** Valid repository bodies per format and type (members and names fixed below). */
function repositoryBody(format: string, type: string, name: string): Record<string, unknown> {
  const body: Record<string, unknown> = {
    name,
    online: true,
    storage: { blobStoreName: 'default', strictContentTypeValidation: true, ...(type === 'hosted' ? { writePolicy: 'ALLOW' } : {}) },
  };
  if (type === 'proxy') {
    body.proxy = { remoteUrl: 'http://127.0.0.1:1/', contentMaxAge: 60, metadataMaxAge: 60 };
    body.negativeCache = { enabled: true, timeToLive: 60 };
    body.httpClient = { blocked: false, autoBlock: true };
  }
  if (type === 'group') body.group = { memberNames: [`${format}-hosted`] };
  if (format === 'docker') body.docker = { v1Enabled: false, forceBasicAuth: true };
  return body;
}

for (const db of DATABASES) {
  describe(`HTTP surface hardening (${db})`, () => {
    let s: TestServer;
    let bucket: S3Server;

    before(async () => {
      s = await startServer({ db });
      bucket = await startS3();
    });
    after(async () => {
      await s?.stop();
      await bucket?.stop();
    });

    describe('prototype keys in REST JSON bodies (item 1)', () => {
      const tested = new Set<string>();
      const cases: Array<{ route: string; method: string; path: string; bodies: Array<[string, string]>; type?: string }> = [];

      before(async () => {
        const formats = [...s.app.formats.keys()];
        for (const format of formats) {
          for (const type of ['hosted', 'proxy', 'group']) {
            const res = await send(s, 'POST', `/repositories/${format}/${type}`, JSON.stringify(repositoryBody(format, type, `${format}-${type}`)));
            assert.equal(res.status, 201, `${format} ${type}: ${await res.text()}`);
          }
        }
        const ok = async (method: string, p: string, body: unknown) => {
          const res = await send(s, method, p, JSON.stringify(body));
          assert.ok(res.status < 300, `${method} ${p}: ${res.status} ${await res.text()}`);
        };
        await ok('POST', '/blobstores/file', { name: 'disk2', path: 'disk2' });
        const s3 = {
          bucketConfiguration: {
            bucket: { region: 'us-east-1', name: bucket.bucket, prefix: db, expiration: 3 },
            bucketSecurity: { accessKeyId: bucket.accessKeyId, secretAccessKey: bucket.secretAccessKey },
            advancedBucketConnection: { endpoint: bucket.endpoint, forcePathStyle: true },
          },
        };
        await ok('POST', '/blobstores/s3', { name: 'bucket2', ...s3 });
        await ok('POST', '/security/users', {
          userId: 'u1',
          firstName: 'U',
          lastName: 'One',
          emailAddress: 'u1@example.org',
          password: 'u1-pw-1',
          status: 'active',
          roles: ['nx-anonymous'],
        });
        await ok('POST', '/security/roles', { id: 'r1', name: 'r1', description: 'd', privileges: [], roles: [] });
        await ok('POST', '/security/content-selectors', { name: 'sel1', description: '', expression: 'format == "raw"' });
        const privileges: Record<string, Record<string, unknown>> = {
          application: { domain: 'users', actions: ['READ'] },
          'repository-view': { format: 'raw', repository: 'raw-hosted', actions: ['READ'] },
          'repository-admin': { format: 'raw', repository: 'raw-hosted', actions: ['READ'] },
          'repository-content-selector': { format: 'raw', repository: 'raw-hosted', contentSelector: 'sel1', actions: ['READ'] },
          wildcard: { pattern: 'nexus:things:read' },
        };
        for (const [type, b] of Object.entries(privileges)) await ok('POST', `/security/privileges/${type}`, { name: `p-${type}`, description: 'd', ...b });
        await ok('POST', '/security/ldap', LDAP);

        const add = (route: string, method: string, p: string, bodies: Array<[string, string]>, type?: string) => {
          tested.add(route);
          cases.push({ route, method, path: p, bodies, type });
        };
        for (const format of formats) {
          for (const type of ['hosted', 'proxy', 'group']) {
            add('POST /repositories/:format/:type', 'POST', `/repositories/${format}/${type}`, pollutedObjects(repositoryBody(format, type, `${format}-${type}-new`)));
            add(
              'PUT /repositories/:format/:type/:repositoryName',
              'PUT',
              `/repositories/${format}/${type}/${format}-${type}`,
              pollutedObjects(repositoryBody(format, type, `${format}-${type}`)),
            );
          }
        }
        add('POST /blobstores/file', 'POST', '/blobstores/file', pollutedObjects({ name: 'disk3', path: 'disk3' }));
        add('PUT /blobstores/file/:name', 'PUT', '/blobstores/file/disk2', pollutedObjects({ path: 'disk2' }));
        add('POST /blobstores/s3', 'POST', '/blobstores/s3', pollutedObjects({ name: 'bucket3', ...s3 }));
        add('PUT /blobstores/s3/:name', 'PUT', '/blobstores/s3/bucket2', pollutedObjects({ name: 'bucket2', ...s3 }));
        add(
          'POST /security/users',
          'POST',
          '/security/users',
          pollutedObjects({ userId: 'u2', firstName: 'U', lastName: 'Two', emailAddress: 'u2@example.org', password: 'u2-pw-1', status: 'active', roles: [] }),
        );
        add(
          'PUT /security/users/:userId',
          'PUT',
          '/security/users/u1',
          pollutedObjects({ userId: 'u1', firstName: 'U', lastName: 'Changed', emailAddress: 'u1@example.org', status: 'active', roles: ['nx-anonymous'], source: 'default' }),
        );
        add('PUT /security/users/:userId/change-password', 'PUT', '/security/users/u1/change-password', pollutedObjects({ password: 'changed-pw-1' }));
        add('POST /security/roles', 'POST', '/security/roles', pollutedObjects({ id: 'r2', name: 'r2', description: 'd', privileges: [], roles: [] }));
        add('PUT /security/roles/:id', 'PUT', '/security/roles/r1', pollutedObjects({ id: 'r1', name: 'r1', description: 'changed', privileges: [], roles: [] }));
        for (const [type, b] of Object.entries(privileges)) {
          add('POST /security/privileges/:type', 'POST', `/security/privileges/${type}`, pollutedObjects({ name: `q-${type}`, description: 'd', ...b }));
          add(
            'PUT /security/privileges/:type/:privilegeName',
            'PUT',
            `/security/privileges/${type}/p-${type}`,
            pollutedObjects({ name: `p-${type}`, description: 'changed', ...b }),
          );
        }
        add('POST /security/content-selectors/preview', 'POST', '/security/content-selectors/preview', pollutedObjects({ type: 'csel', expression: 'format == "raw"' }));
        add('POST /security/content-selectors', 'POST', '/security/content-selectors', pollutedObjects({ name: 'sel2', description: '', expression: 'format == "raw"' }));
        add(
          'PUT /security/content-selectors/:name',
          'PUT',
          '/security/content-selectors/sel1',
          pollutedObjects({ name: 'sel1', description: 'changed', expression: 'format == "npm"' }),
        );
        add('PUT /security/realms/active', 'PUT', '/security/realms/active', pollutedArrays(['NexusAuthenticatingRealm']));
        add('PUT /security/anonymous', 'PUT', '/security/anonymous', pollutedObjects({ enabled: false, userId: 'anonymous', realmName: 'NexusAuthorizingRealm' }));
        add('POST /security/ldap', 'POST', '/security/ldap', pollutedObjects({ ...LDAP, name: 'corp2' }));
        add('PUT /security/ldap/:name', 'PUT', '/security/ldap/corp', pollutedObjects({ ...LDAP, port: 2 }));
        add('POST /security/ldap/change-order', 'POST', '/security/ldap/change-order', pollutedArrays(['corp']));
        add('POST /security/ldap/verify-connection', 'POST', '/security/ldap/verify-connection', pollutedObjects(LDAP));
        add('POST /security/ldap/verify-user-mapping', 'POST', '/security/ldap/verify-user-mapping', pollutedObjects(LDAP));
        add('POST /security/ldap/verify-login', 'POST', '/security/ldap/verify-login', pollutedObjects({ server: LDAP, username: 'x', password: 'y' }));
        add('POST /security/user-tokens', 'POST', '/security/user-tokens', pollutedObjects({ name: 'ci' }));
        await ok('POST', '/cleanup-policies', { name: 'pol1', format: 'raw', criteriaLastBlobUpdated: 30 });
        add('POST /cleanup-policies', 'POST', '/cleanup-policies', pollutedObjects({ name: 'pol2', format: 'raw', criteriaLastBlobUpdated: 30 }));
        add('PUT /cleanup-policies/:name', 'PUT', '/cleanup-policies/pol1', pollutedObjects({ name: 'pol1', format: 'raw', criteriaLastBlobUpdated: 60 }));
        const task = { type: 'repository.docker.upload-purge', name: 'purge-x', enabled: true, frequency: { schedule: 'manual' }, properties: { age: 12 } };
        const created = await send(s, 'POST', '/tasks', JSON.stringify(task));
        assert.equal(created.status, 201, await created.clone().text());
        const taskId = ((await created.json()) as { id: string }).id;
        add('POST /tasks', 'POST', '/tasks', pollutedObjects({ ...task, name: 'purge-y' }));
        add('PUT /tasks/:id', 'PUT', `/tasks/${taskId}`, pollutedObjects({ ...task, name: 'purge-changed' }));
        add('PUT /yum/signing', 'PUT', '/yum/signing?repository=yum-hosted', pollutedObjects({ keypair: 'not a key', passphrase: '' }));
        add('POST /pypi/yank', 'POST', '/pypi/yank', pollutedObjects({ repository: 'pypi-hosted', project: 'demo', version: '1.0' }));
      });

      it('covers every POST/PUT route of the REST API that takes JSON', () => {
        const missing = bodyRoutes(s.app).filter((r) => !NOT_JSON.has(r) && !tested.has(r));
        assert.deepEqual(missing, [], 'JSON routes without a prototype-key case here');
      });

      it('answers 400 naming the key, changes nothing, and the server still answers', async () => {
        const state = async () => {
          const out: Record<string, unknown> = {};
          for (const p of [
            '/repositories',
            '/repositorySettings',
            '/blobstores',
            '/security/users',
            '/security/roles',
            '/security/privileges',
            '/security/content-selectors',
            '/security/realms/active',
            '/security/anonymous',
            '/security/ldap',
            '/security/user-tokens',
            '/cleanup-policies',
          ]) {
            const res = await s.fetch(API + p);
            assert.equal(res.status, 200, p);
            // Free disk space moves on its own.
            out[p] = JSON.parse(await res.text(), (k, v: unknown) => (k === 'availableSpaceInBytes' ? undefined : v));
          }
          out.password = (await s.app.security.users.authenticate('u1', 'u1-pw-1'))?.userId ?? null;
          return out;
        };
        const before = await state();
        let count = 0;
        for (const c of cases) {
          for (const [key, body] of c.bodies) {
            const res = await send(s, c.method, c.path, body, ADMIN, c.type);
            const text = await res.text();
            assert.equal(res.status, 400, `${c.method} ${c.path} with ${key}: ${res.status} ${text}`);
            assert.ok(text.includes(`'${key}'`), `${c.method} ${c.path}: the message names ${key}: ${text}`);
            count++;
          }
        }
        assert.ok(count > 100, `${count} requests`);
        assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched');
        assert.deepEqual(await state(), before);
        // Reads and writes still work everywhere.
        assert.equal((await s.fetch('/repository/raw-hosted/after.txt', { method: 'PUT', body: 'ok' })).status, 201);
        assert.equal(await (await s.fetch('/repository/raw-hosted/after.txt')).text(), 'ok');
        assert.equal((await s.fetch(`${API}/status`)).status, 200);
      });

      it('a privilege named after an Object.prototype member is no built-in', async () => {
        const res = await send(s, 'PUT', '/security/roles/r1', JSON.stringify({ id: 'r1', name: 'r1', description: 'd', privileges: ['toString'], roles: [] }));
        assert.equal(res.status, 400, await res.text());
        assert.match(await (await s.fetch(`${API}/security/privileges/constructor`)).text(), /not found/i);
      });
    });

    describe('the front page lists only what the caller may browse (item 3)', () => {
      before(async () => {
        await s.repo('raw', 'hosted', { name: 'ui-secret', storage: { writePolicy: 'ALLOW' } });
        await s.repo('raw', 'hosted', { name: 'ui-shared', storage: { writePolicy: 'ALLOW' } });
        await s.app.security.roles.create({ id: 'ui-one', name: 'ui-one', description: '', privileges: ['nx-repository-view-raw-ui-shared-browse'], roles: [] });
        await s.app.security.users.create({ userId: 'ui-user', password: 'ui-user-pw-1', roles: ['ui-one'] });
      });

      const names = async (auth: string | null) => {
        const res = await s.fetch('/', { auth });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('cache-control'), 'private, no-store');
        return [...(await res.text()).matchAll(/<a href="\/repository\/([^/"]+)\/">/g)].map((m) => decodeURIComponent(m[1]));
      };

      it('anonymous access off: nothing without credentials; one repository for a user who may browse one', async () => {
        await s.app.security.setAnonymous(false);
        try {
          assert.deepEqual(await names(null), []);
          assert.deepEqual(await names(basic('ui-user', 'ui-user-pw-1')), ['ui-shared']);
          const all = await names(ADMIN);
          assert.ok(all.includes('ui-secret') && all.includes('ui-shared'), all.join());
        } finally {
          await s.app.security.setAnonymous(true);
        }
      });

      it('anonymous access on: what the anonymous role may browse', async () => {
        const role = (await s.app.security.users.get('anonymous'))!.roles;
        await s.app.security.users.update('anonymous', { roles: ['ui-one'] });
        try {
          assert.deepEqual(await names(null), ['ui-shared']);
        } finally {
          await s.app.security.users.update('anonymous', { roles: role });
        }
      });
    });

    describe('raw files named beyond Latin-1 (item 9)', () => {
      it('uploads and serves them with GET and HEAD, names encoded per RFC 6266', async () => {
        await s.repo('raw', 'hosted', { name: 'unicode', storage: { writePolicy: 'ALLOW' } });
        for (const name of ['отчёт.txt', '日本語 ファイル.bin', 'emoji-🙂.txt', 'café "quoted".txt']) {
          const p = `/repository/unicode/dir/${encodeURIComponent(name)}`;
          assert.equal((await s.fetch(p, { method: 'PUT', body: `content of ${name}` })).status, 201, name);
          for (const method of ['GET', 'HEAD']) {
            const res = await s.fetch(p, { method });
            assert.equal(res.status, 200, `${method} ${name}`);
            const cd = res.headers.get('content-disposition')!;
            assert.match(cd, /^attachment; filename="[\x20-\x7e]+"; filename\*=UTF-8''/, cd);
            assert.equal(decodeURIComponent(/filename\*=UTF-8''(.+)$/.exec(cd)![1]), name);
            if (method === 'GET') assert.equal(await res.text(), `content of ${name}`);
          }
        }
      });
    });
  });
}

describe('login lock per user and address; tokens never refused (item 4)', () => {
  let s: TestServer;
  let token: string;
  const API_ROOT = `${API}/repositories`;
  const call = async (auth: string, from: string) => (await s.fetch(API_ROOT, { auth, headers: { 'X-Forwarded-For': from } })).status;

  before(async () => {
    s = await startServer({ env: { STOWAGE_ANONYMOUS: 'false', STOWAGE_TRUST_PROXY: 'true' } });
    await s.app.security.users.create({ userId: 'ci', password: 'ci-pw-1', roles: ['nx-admin'] });
    const res = await s.fetch(`${API}/security/user-tokens`, {
      method: 'POST',
      auth: basic('ci', 'ci-pw-1'),
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'ci' }),
    });
    const text = await res.text();
    assert.equal(res.status, 201, text);
    token = (JSON.parse(text) as { token: string }).token;
    Object.assign(s.app.loginThrottle.options, { userThreshold: 5, addressThreshold: 12, baseLockMs: 60_000, maxLockMs: 60_000 });
  });
  after(async () => s?.stop());

  it('five bad passwords from one address lock the user there only', async () => {
    for (let i = 0; i < 5; i++) assert.equal(await call(basic('ci', `guess-${i}`), '198.51.100.10'), 401);
    assert.equal(await call(basic('ci', 'ci-pw-1'), '198.51.100.10'), 429, 'locked where the guesses came from');
    assert.equal(await call(basic('ci', 'ci-pw-1'), '198.51.100.11'), 200, 'not elsewhere');
    assert.equal(await call(ADMIN, '198.51.100.10'), 200, 'other users from that address are not locked');
  });

  it('a valid API token is accepted even where the user is locked (Basic password and Bearer)', async () => {
    assert.equal(await call(basic('ci', token), '198.51.100.10'), 200);
    assert.equal(await call(`Bearer ${token}`, '198.51.100.10'), 200);
    // An invalid token stays refused with the lock's answer.
    assert.equal(await call(basic('ci', token.slice(0, -2) + 'xx'), '198.51.100.10'), 429);
  });

  it('an address failing for many users is locked for passwords, not for valid tokens', async () => {
    const from = '203.0.113.50';
    for (let i = 0; i < 12; i++) assert.equal(await call(basic(`user${i}`, 'x'), from), 401);
    assert.equal(await call(ADMIN, from), 429);
    assert.equal(await call(basic('ci', token), from), 200);
    assert.equal(await call(ADMIN, '203.0.113.51'), 200);
    const audit = await s.fetch(`${API}/audit?domain=security.login&type=locked&context=ci`);
    const items = ((await audit.json()) as { items: Array<{ attributes: { kind: string; address: string } }> }).items;
    assert.ok(
      items.some((e) => e.attributes.kind === 'user' && e.attributes.address === '198.51.100.10'),
      JSON.stringify(items),
    );
  });
});

describe('X-Forwarded-* only behind a trusted proxy (item 5)', () => {
  const forged = { 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Proto': 'https' };

  for (const trust of [false, true]) {
    describe(`STOWAGE_TRUST_PROXY=${trust}`, () => {
      let s: TestServer;
      before(async () => {
        s = await startServer({ env: { STOWAGE_TRUST_PROXY: String(trust) } });
        await s.repo('docker', 'hosted', { name: 'dock', storage: { writePolicy: 'ALLOW' }, docker: { v1Enabled: false, forceBasicAuth: false } });
        await s.repo('npm', 'hosted', { name: 'npm-h', storage: { writePolicy: 'ALLOW' } });
        const res = await publish(`${s.url}/repository/npm-h/`, { name: 'fwd-pkg', version: '1.0.0' }, ADMIN);
        assert.ok(res.ok, `${res.status} ${await res.text()}`);
      });
      after(async () => s?.stop());

      it('the docker /v2/ Bearer realm', async () => {
        for (const p of ['/v2/', '/repository/dock/v2/']) {
          const res = await s.fetch(p, { auth: null, headers: forged });
          assert.equal(res.status, 401);
          const realm = /realm="([^"]+)"/.exec(res.headers.get('www-authenticate') ?? '')![1];
          if (trust) assert.match(realm, /^https:\/\/evil\.example\//);
          else assert.equal(new URL(realm).origin, s.url, realm);
        }
      });

      it("an npm packument's tarball URL", async () => {
        const doc = (await (await s.fetch('/repository/npm-h/fwd-pkg', { headers: forged })).json()) as { versions: Record<string, { dist: { tarball: string } }> };
        const tarball = doc.versions['1.0.0'].dist.tarball;
        if (trust) assert.equal(tarball, 'https://evil.example/repository/npm-h/fwd-pkg/-/fwd-pkg-1.0.0.tgz');
        else assert.equal(tarball, `${s.url}/repository/npm-h/fwd-pkg/-/fwd-pkg-1.0.0.tgz`);
      });
    });
  }
});

describe('a port in use at start (item 19)', () => {
  it('prints one line naming the setting and the port, and exits 2', async () => {
    const first = await spawnServer();
    try {
      const port = new URL(first.url).port;
      const { spawn } = await import('node:child_process');
      const { mkdtempSync, rmSync } = await import('node:fs');
      const { tmpdir } = await import('node:os');
      const path = await import('node:path');
      const dir = mkdtempSync(path.join(tmpdir(), 'stowage-port-'));
      const main = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../src/main.js');
      const proc = spawn(process.execPath, [main, 'serve'], {
        env: {
          PATH: process.env.PATH ?? '',
          STOWAGE_DATA_DIR: dir,
          STOWAGE_HTTP_HOST: '127.0.0.1',
          STOWAGE_HTTP_PORT: port,
          STOWAGE_ADMIN_PASSWORD: ADMIN_PASSWORD,
          STOWAGE_LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let err = '';
      proc.stderr.on('data', (d) => (err += d));
      proc.stdout.on('data', (d) => (err += d));
      const code = await new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
      rmSync(dir, { recursive: true, force: true });
      assert.equal(code, 2, err);
      const lines = err.trim().split('\n');
      assert.equal(lines.length, 1, err);
      assert.equal(lines[0], `stowage: Invalid setting STOWAGE_HTTP_PORT (http.port): port ${port} is already in use`);
      // The first server is unaffected.
      assert.equal((await fetch(first.url + `${API}/status`)).status, 200);
    } finally {
      await first.stop();
    }
  });
});
