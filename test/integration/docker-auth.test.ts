/**
 * Docker token auth and dedicated ports: the `/v2/` Bearer challenge, the token endpoint (grants =
 * requested ∩ allowed, anonymous tokens, forged and expired tokens refused), the real skopeo and
 * podman doing the token dance on the main port and on a dedicated port created through REST, and
 * dedicated ports opening, moving and closing with the repository. SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ADMIN, ADMIN_PASSWORD, DATABASES, basic, spawnServer, startServer, type TestServer } from '../helpers/stowage.js';
import { buildImage, skopeo, tool } from '../helpers/oci.js';
import { freePort } from '../helpers/net.js';

const API = '/service/rest/v1';

function claims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>;
}

async function refused(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/v2/`);
    return false;
  } catch (e) {
    return /ECONNREFUSED/.test(String((e as { cause?: unknown }).cause ?? e));
  }
}

let work: string;
let layout: string;

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'stowage-docker-auth-'));
  layout = await buildImage(work, 'img', { 'hello.txt': 'token flow ' + randomBytes(8).toString('hex') });
});

after(() => rmSync(work, { recursive: true, force: true }));

for (const db of DATABASES) {
  describe(`docker token auth and dedicated ports (${db})`, () => {
    let s: TestServer;
    let host: string;
    const creds = `admin:${ADMIN_PASSWORD}`;
    const READER = basic('reader', 'reader-pw-1');

    async function api(method: string, p: string, body?: unknown): Promise<Response> {
      return s.fetch(API + p, { method, headers: body ? { 'Content-Type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
    }
    async function token(q: string, auth: string | null): Promise<{ status: number; body: Record<string, unknown> }> {
      const r = await s.fetch(`/v2/token?${q}`, { auth });
      return { status: r.status, body: r.status === 200 ? ((await r.json()) as Record<string, unknown>) : { text: await r.text() } };
    }
    function hostedBody(name: string, httpPort?: number) {
      return {
        name,
        online: true,
        storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW' },
        docker: { v1Enabled: false, forceBasicAuth: false, ...(httpPort ? { httpPort } : {}) },
      };
    }

    before(async () => {
      s = await startServer({ db });
      host = s.url.replace(/^http:\/\//, '');
      assert.equal((await api('POST', '/repositories/docker/hosted', hostedBody('dock'))).status, 201);
      assert.equal(
        (
          await api('POST', '/security/roles', {
            id: 'dock-reader',
            name: 'dock-reader',
            description: '',
            privileges: ['nx-repository-view-docker-dock-read', 'nx-repository-view-docker-dock-browse'],
            roles: [],
          })
        ).status,
        200,
      );
      const u = await api('POST', '/security/users', {
        userId: 'reader',
        firstName: 'R',
        lastName: 'R',
        emailAddress: 'r@example.org',
        password: 'reader-pw-1',
        status: 'active',
        roles: ['dock-reader'],
      });
      assert.equal(u.status, 200, await u.text());
    });
    after(async () => s?.stop());

    it('challenges /v2/ with an absolute Bearer realm even when anonymous pull is allowed', async () => {
      for (const p of ['/v2/', '/repository/dock/v2/']) {
        const r = await s.fetch(p, { auth: null });
        assert.equal(r.status, 401, p);
        const challenge = r.headers.get('www-authenticate') ?? '';
        const m = /^Bearer realm="([^"]+)",service="([^"]+)"$/.exec(challenge);
        assert.ok(m, challenge);
        const realm = new URL(m[1]);
        assert.equal(realm.host, host);
        assert.match(realm.pathname, /\/v2\/token$/);
        assert.equal(m[2], host);
        assert.equal((await r.json()).errors[0].code, 'UNAUTHORIZED');
      }
      assert.equal((await s.fetch('/v2/')).status, 200, 'Basic is accepted directly');
      // Anonymous pull needs no challenge beyond the version check.
      assert.notEqual((await s.fetch('/v2/dock/x/tags/list', { auth: null })).status, 401);
    });

    it('issues tokens whose access is the requested actions intersected with what the user may do', async () => {
      const admin = await token(`service=${host}&scope=repository:dock/app:pull,push`, basic('admin', ADMIN_PASSWORD));
      assert.equal(admin.status, 200, JSON.stringify(admin.body));
      const t = admin.body.token as string;
      assert.equal(admin.body.access_token, t);
      assert.equal(admin.body.expires_in, 300);
      assert.ok(!Number.isNaN(Date.parse(String(admin.body.issued_at))));
      assert.equal(admin.body.refresh_token, undefined);
      assert.deepEqual(claims(t).access, [{ type: 'repository', name: 'dock/app', actions: ['pull', 'push'] }]);
      assert.equal((await s.fetch('/v2/', { auth: `Bearer ${t}` })).status, 200);
      // docker login: Basic, no scope.
      const login = await token(`service=${host}`, basic('admin', ADMIN_PASSWORD));
      assert.equal(login.status, 200);
      assert.equal((await token(`service=${host}`, basic('admin', 'wrong'))).status, 401);

      // Anonymous: pull only, while anonymous read is allowed.
      const anon = await token(`service=${host}&scope=repository:dock/app:pull,push`, null);
      assert.equal(anon.status, 200);
      assert.deepEqual(claims(anon.body.token as string).access, [{ type: 'repository', name: 'dock/app', actions: ['pull'] }]);
      const off = await api('PUT', '/security/anonymous', { enabled: false, userId: 'anonymous', realmName: 'NexusAuthorizingRealm' });
      assert.equal(off.status, 200);
      assert.equal((await token(`service=${host}&scope=repository:dock/app:pull`, null)).status, 401);
      assert.equal((await s.fetch('/v2/dock/app/tags/list', { auth: `Bearer ${anon.body.token as string}` })).status, 401, 'anonymous tokens die with anonymous access');
      await api('PUT', '/security/anonymous', { enabled: true, userId: 'anonymous', realmName: 'NexusAuthorizingRealm' });

      // A reader asking pull,push gets pull; a push with that token is refused with the OCI body.
      const rd = await token(`service=${host}&scope=repository:dock/app:pull,push&account=reader`, READER);
      assert.equal(rd.status, 200);
      const rt = rd.body.token as string;
      assert.deepEqual(claims(rt).access, [{ type: 'repository', name: 'dock/app', actions: ['pull'] }]);
      const post = await s.fetch('/v2/dock/app/blobs/uploads/', { method: 'POST', auth: `Bearer ${rt}` });
      assert.ok(post.status === 401 || post.status === 403, String(post.status));
      assert.match((await post.json()).errors[0].code, /^(DENIED|UNAUTHORIZED)$/);
      assert.notEqual((await s.fetch('/v2/dock/app/tags/list', { auth: `Bearer ${rt}` })).status, 403, 'pull allowed');
      // A token for one repository does not open another.
      assert.equal((await api('POST', '/repositories/docker/hosted', hostedBody('dock2'))).status, 201);
      const other = await s.fetch('/v2/dock2/app/blobs/uploads/', { method: 'POST', auth: `Bearer ${t}` });
      assert.equal(other.status, 403);
      // Nor the REST API.
      assert.equal((await s.fetch(`${API}/security/users`, { auth: `Bearer ${t}` })).status, 403);
    });

    it('refuses forged and expired tokens', async () => {
      const good = (await token(`service=${host}&scope=repository:dock/app:pull,push`, basic('admin', ADMIN_PASSWORD))).body.token as string;
      const [h, p] = good.split('.');
      const forgedClaims = { ...claims(good), grants: [{ repository: 'dock2', actions: ['read', 'add', 'delete'] }] };
      const forgedBody = `${h}.${Buffer.from(JSON.stringify(forgedClaims)).toString('base64url')}`;
      const forged = `${forgedBody}.${createHmac('sha256', 'guess').update(forgedBody).digest('base64url')}`;
      const tampered = `${forgedBody}.${good.split('.')[2]}`;
      const expiredClaims = { ...claims(good), exp: Math.floor(Date.now() / 1000) - 10 };
      const expiredBody = `${h}.${Buffer.from(JSON.stringify(expiredClaims)).toString('base64url')}`;
      // Signed with the real key (derived like the server does) but expired.
      const key = s.app.secrets.deriveKey('scoped-bearer-token');
      const expired = `${expiredBody}.${createHmac('sha256', key).update(expiredBody).digest('base64url')}`;
      assert.ok(p);
      for (const bad of [forged, tampered, expired, 'not.a.jwt', good + 'x']) {
        const r = await s.fetch('/v2/dock/app/tags/list', { auth: `Bearer ${bad}` });
        assert.equal(r.status, 401, bad);
        assert.equal((await r.json()).errors[0].code, 'UNAUTHORIZED');
      }
    });

    it('skopeo pushes and inspects through the token flow on the main port', async () => {
      const seen: string[] = [];
      const record = (req: { method?: string; url?: string }) => seen.push(`${req.method} ${req.url}`);
      s.listener.server.on('request', record);
      const ref = `docker://${host}/dock/tok/hello`;
      const push = await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:latest`, `${ref}:v1`);
      s.listener.server.off('request', record);
      assert.ok(push.ok, push.stderr);
      assert.ok(
        seen.some((r) => r.startsWith('GET /v2/token?')),
        seen.join('\n'),
      );
      const inspect = await skopeo('inspect', '--tls-verify=false', '--creds', creds, `${ref}:v1`);
      assert.ok(inspect.ok, inspect.stderr);
      const anon = await skopeo('inspect', '--tls-verify=false', `${ref}:v1`);
      assert.ok(anon.ok, anon.stderr);
      const denied = await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', 'reader:reader-pw-1', `oci:${layout}:latest`, `${ref}:v2`);
      assert.ok(!denied.ok);
    });

    it('opens a dedicated port on create, serves /v2/ at its root, moves it and closes it on delete', async () => {
      const port = await freePort();
      const created = await api('POST', '/repositories/docker/hosted', hostedBody('ported', port));
      assert.equal(created.status, 201, await created.text());
      assert.equal(s.app.listeners.ports().get('ported'), port);
      const ping = await fetch(`http://127.0.0.1:${port}/v2/`);
      assert.equal(ping.status, 401);
      assert.match(ping.headers.get('www-authenticate') ?? '', new RegExp(`^Bearer realm="http://127\\.0\\.0\\.1:${port}/v2/token",service="127\\.0\\.0\\.1:${port}"$`));

      const ref = `docker://127.0.0.1:${port}/app/hello`;
      const push = await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:latest`, `${ref}:v1`);
      assert.ok(push.ok, push.stderr);
      const inspect = await skopeo('inspect', '--tls-verify=false', '--creds', creds, `${ref}:v1`);
      assert.ok(inspect.ok, inspect.stderr);
      const tags = await skopeo('list-tags', '--tls-verify=false', '--creds', creds, ref);
      assert.ok(tags.ok, tags.stderr);
      assert.deepEqual((JSON.parse(tags.stdout) as { Tags: string[] }).Tags, ['v1']);
      // The same image is in the repository (reachable on the main port too).
      assert.equal((await s.fetch('/repository/ported/v2/app/hello/manifests/v1')).status, 200);

      const authfile = path.join(work, `auth-${db}.json`);
      const login = await tool('podman', 'login', '--tls-verify=false', '--authfile', authfile, `127.0.0.1:${port}`, '-u', 'admin', '-p', ADMIN_PASSWORD);
      assert.ok(login.ok, login.stderr);
      const badLogin = await tool('podman', 'login', '--tls-verify=false', '--authfile', authfile, `127.0.0.1:${port}`, '-u', 'admin', '-p', 'wrong');
      assert.ok(!badLogin.ok);
      const mainLogin = await tool('podman', 'login', '--tls-verify=false', '--authfile', authfile, host, '-u', 'admin', '-p', ADMIN_PASSWORD);
      assert.ok(mainLogin.ok, mainLogin.stderr);

      // Conflicts: another repository with the same port, or a port in use elsewhere.
      const dup = await api('POST', '/repositories/docker/hosted', hostedBody('dup', port));
      assert.equal(dup.status, 400);
      assert.match(await dup.text(), /docker\.httpPort/);
      const mainPort = Number(new URL(s.url).port);
      const busy = await api('POST', '/repositories/docker/hosted', hostedBody('busy', mainPort));
      assert.equal(busy.status, 400);
      assert.match(await busy.text(), /docker\.httpPort/);

      // Changing the port moves it.
      const port2 = await freePort();
      const updated = await api('PUT', '/repositories/docker/hosted/ported', hostedBody('ported', port2));
      assert.equal(updated.status, 204, await updated.text());
      assert.ok(await refused(port), 'old port closed');
      assert.equal((await fetch(`http://127.0.0.1:${port2}/v2/`, { headers: { Authorization: basic('admin', ADMIN_PASSWORD) } })).status, 200);
      const moved = await skopeo('inspect', '--tls-verify=false', '--creds', creds, `docker://127.0.0.1:${port2}/app/hello:v1`);
      assert.ok(moved.ok, moved.stderr);

      // Deleting the repository closes it.
      assert.equal((await api('DELETE', '/repositories/ported')).status, 204);
      assert.ok(await refused(port2), 'port closed on delete');
      assert.equal(s.app.listeners.ports().has('ported'), false);
    });

    it('picks up a port configured on another node within seconds', async () => {
      const port = await freePort();
      // Written straight to the database, as another node would (no local change notification).
      const row = await s.app.db('repositories').where({ name: 'dock2' }).first();
      const attrs = typeof row.attributes === 'string' ? JSON.parse(row.attributes) : row.attributes;
      attrs.docker = { ...attrs.docker, httpPort: port };
      await s.app
        .db('repositories')
        .where({ name: 'dock2' })
        .update({ attributes: JSON.stringify(attrs), updated_at: Number(row.updated_at) + 1 });
      const deadline = Date.now() + 10_000;
      while (s.app.listeners.ports().get('dock2') !== port) {
        assert.ok(Date.now() < deadline, 'listener opened');
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal((await fetch(`http://127.0.0.1:${port}/v2/`, { headers: { Authorization: basic('admin', ADMIN_PASSWORD) } })).status, 200);
    });

    it('opens dedicated ports at start and closes them on SIGTERM', async () => {
      const child = await spawnServer({ db });
      try {
        const port = await freePort();
        const r = await fetch(`${child.url}${API}/repositories/docker/hosted`, {
          method: 'POST',
          headers: { Authorization: ADMIN, 'Content-Type': 'application/json' },
          body: JSON.stringify(hostedBody('child', port)),
        });
        assert.equal(r.status, 201, await r.text());
        assert.equal((await fetch(`http://127.0.0.1:${port}/v2/`, { headers: { Authorization: ADMIN } })).status, 200);
        child.proc.kill('SIGTERM');
        assert.equal(await child.exited, 0);
        assert.ok(await refused(port));
      } finally {
        await child.stop();
      }
    });
  });
}
