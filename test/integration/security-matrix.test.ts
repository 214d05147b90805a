/**
 * The permission matrix: users and roles (built through the security REST API, as an admin's
 * automation would) × raw hosted, proxy and group repositories × content actions (read,
 * browse, add, edit, delete) and admin REST endpoints, each row asserting the status. Then the
 * rules around it: nested roles, cycles, disabled users, change-password, the anonymous switch,
 * unknown privilege names, external (LDAP) roles and mappings, and a second node noticing
 * changes. Runs on SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, ADMIN_PASSWORD, basic, DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import type { Principal } from '../../src/security/principal.js';

const API = '/service/rest/v1';

/** Every user of the matrix and what it stands for. */
const USERS: Record<string, { roles: string[]; status?: string }> = {
  reader: { roles: ['reader-h1'] }, // read + browse on hosted1
  deployer: { roles: ['deployer-h1'] }, // read, add, edit on hosted1 (no delete)
  greader: { roles: ['group-reader'] }, // read + browse on group1 only
  teama: { roles: ['team-a'] }, // content selector: hosted1, paths under /team-a/
  repoadmin: { roles: ['scratch-admin', 'h1-admin'] }, // configuration of hosted1 and scratch
  useradmin: { roles: ['user-admin'] }, // nx-users-all
  nested: { roles: ['nested-outer'] }, // reader-h1's privileges two roles down
  nobody: { roles: [] },
  disabled: { roles: ['reader-h1'], status: 'disabled' },
};

const password = (user: string) => `${user}-pw-1`;
type Who = keyof typeof USERS | 'admin' | 'anon';

function authOf(who: Who): string | null {
  if (who === 'anon') return null;
  if (who === 'admin') return ADMIN;
  return basic(who, password(who));
}

function call(s: TestServer, who: Who | string | null, method: string, p: string, body?: unknown): Promise<Response> {
  const auth = who === null ? null : who.startsWith('Basic ') ? who : authOf(who as Who);
  const init: RequestInit & { auth?: string | null } = { method, auth };
  if (typeof body === 'string') init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'Content-Type': 'application/json' };
  }
  return s.fetch(p, init);
}

async function expectStatus(res: Response, status: number, what: string): Promise<string> {
  const text = await res.text();
  assert.equal(res.status, status, `${what}: ${text.slice(0, 300)}`);
  return text;
}

async function json<T = unknown>(s: TestServer, who: Who, method: string, p: string, body?: unknown, status = 200): Promise<T> {
  const text = await expectStatus(await call(s, who, method, API + p, body), status, `${who} ${method} ${p}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

async function expectField(res: Response, status: number, field: string): Promise<string> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.equal(JSON.parse(text)[0].id, `PARAMETER ${field}`, text);
  return JSON.parse(text)[0].message as string;
}

/** One row of the matrix: who, what request, which status. */
type Row = [Who, string, string, number, unknown?];

async function runRows(s: TestServer, rows: Row[]): Promise<void> {
  const failures: string[] = [];
  for (const [who, method, p, status, body] of rows) {
    const res = await call(s, who, method, p, body ?? (method === 'PUT' && p.startsWith('/repository/') ? `${who} wrote ${p}\n` : undefined));
    const text = await res.text();
    if (res.status !== status) failures.push(`${who} ${method} ${p}: expected ${status}, got ${res.status} ${text.slice(0, 200)}`);
    if (status === 401 && res.status === 401) assert.match(res.headers.get('WWW-Authenticate') ?? '', /^Basic/, `${who} ${method} ${p} challenges`);
  }
  assert.deepEqual(failures, []);
}

const HOSTED_BODY = (name: string) => ({ name, online: true, storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW' } });

for (const db of DATABASES) {
  describe(`security permission matrix (${db})`, { timeout: 180_000 }, () => {
    let s: TestServer;

    before(async () => {
      s = await startServer({ db });
      // Repositories: two hosted, a proxy of hosted2 on this same server, a group of hosted1 and the proxy.
      await s.repo('raw', 'hosted', HOSTED_BODY('hosted1'));
      await s.repo('raw', 'hosted', HOSTED_BODY('hosted2'));
      await s.repo('raw', 'hosted', HOSTED_BODY('scratch'));
      await s.repo('raw', 'proxy', {
        name: 'proxy1',
        proxy: { remoteUrl: `${s.url}/repository/hosted2/` },
        httpClient: { authentication: { type: 'username', username: 'admin', password: ADMIN_PASSWORD }, connection: { retries: 0 } },
      });
      await s.repo('raw', 'group', { name: 'group1', group: { memberNames: ['hosted1', 'proxy1'] } });
      for (const [repo, p] of [
        ['hosted1', 'top.txt'],
        ['hosted1', 'team-a/a.txt'],
        ['hosted1', 'team-b/b.txt'],
        ['hosted1', 'del-me.txt'],
        ['hosted1', 'team-a/del-me.txt'],
        ['hosted2', 'h2.txt'],
      ]) {
        await expectStatus(await call(s, 'admin', 'PUT', `/repository/${repo}/${p}`, `${repo}/${p}\n`), 201, `seed ${repo}/${p}`);
      }

      // The security model, through the REST API.
      await json(s, 'admin', 'POST', '/security/content-selectors', { name: 'team-a-paths', description: 'Team A', expression: 'format == "raw" and path =^ "/team-a/"' }, 204);
      await json(
        s,
        'admin',
        'POST',
        '/security/privileges/repository-content-selector',
        {
          name: 'team-a-content',
          description: 'Team A content in hosted1',
          contentSelector: 'team-a-paths',
          format: 'raw',
          repository: 'hosted1',
          actions: ['READ', 'BROWSE', 'ADD', 'EDIT'],
        },
        201,
      );
      const roles: Array<{ id: string; privileges?: string[]; roles?: string[] }> = [
        { id: 'reader-h1', privileges: ['nx-repository-view-raw-hosted1-read', 'nx-repository-view-raw-hosted1-browse'] },
        { id: 'deployer-h1', privileges: ['nx-repository-view-raw-hosted1-read', 'nx-repository-view-raw-hosted1-add', 'nx-repository-view-raw-hosted1-edit'] },
        { id: 'group-reader', privileges: ['nx-repository-view-raw-group1-read', 'nx-repository-view-raw-group1-browse'] },
        { id: 'team-a', privileges: ['team-a-content'] },
        { id: 'scratch-admin', privileges: ['nx-repository-admin-raw-scratch-*'] },
        { id: 'h1-admin', privileges: ['nx-repository-admin-raw-hosted1-*'] },
        { id: 'user-admin', privileges: ['nx-users-all'] },
        { id: 'nested-inner', roles: ['reader-h1'] },
        { id: 'nested-outer', roles: ['nested-inner'] },
      ];
      for (const r of roles) {
        const created = await json<{ id: string; source: string; readOnly: boolean }>(s, 'admin', 'POST', '/security/roles', {
          name: r.id,
          description: '',
          privileges: [],
          roles: [],
          ...r,
        });
        assert.equal(created.id, r.id);
        assert.equal(created.source, 'default');
        assert.equal(created.readOnly, false);
      }
      for (const [userId, u] of Object.entries(USERS)) {
        const created = await json<{ userId: string; status: string; roles: string[] }>(s, 'admin', 'POST', '/security/users', {
          userId,
          firstName: userId,
          lastName: 'Test',
          emailAddress: `${userId}@example.org`,
          password: password(userId),
          status: u.status ?? 'active',
          roles: u.roles,
        });
        assert.deepEqual(created.roles, u.roles);
        assert.equal(created.status, u.status ?? 'active');
        assert.equal((created as Record<string, unknown>).password, undefined, 'no password in responses');
      }
      await json(s, 'admin', 'PUT', '/security/anonymous', { enabled: true, userId: 'anonymous', realmName: 'NexusAuthorizingRealm' });
    });

    after(async () => {
      await s?.stop();
    });

    it('content: read, browse, add, edit (overwrite under ALLOW) and delete on hosted, proxy and group', async () => {
      await runRows(s, [
        // hosted1 ---------------------------------------------------------------------------
        ['admin', 'GET', '/repository/hosted1/top.txt', 200],
        ['reader', 'GET', '/repository/hosted1/top.txt', 200],
        ['reader', 'GET', '/repository/hosted1/', 200],
        ['reader', 'PUT', '/repository/hosted1/reader-new.txt', 403],
        ['reader', 'PUT', '/repository/hosted1/top.txt', 403],
        ['reader', 'DELETE', '/repository/hosted1/top.txt', 403],
        ['deployer', 'GET', '/repository/hosted1/top.txt', 200],
        ['deployer', 'GET', '/repository/hosted1/', 403], // read does not imply browse
        ['deployer', 'PUT', '/repository/hosted1/deployer-new.txt', 201],
        ['deployer', 'PUT', '/repository/hosted1/top.txt', 200], // overwrite needs edit
        ['deployer', 'DELETE', '/repository/hosted1/top.txt', 403],
        ['nobody', 'GET', '/repository/hosted1/top.txt', 403],
        ['nobody', 'GET', '/repository/hosted1/', 403],
        ['nobody', 'PUT', '/repository/hosted1/nobody.txt', 403],
        ['greader', 'GET', '/repository/hosted1/top.txt', 403], // only through the group
        ['nested', 'GET', '/repository/hosted1/top.txt', 200],
        ['nested', 'GET', '/repository/hosted1/', 200],
        ['nested', 'PUT', '/repository/hosted1/nested.txt', 403],
        ['repoadmin', 'GET', '/repository/hosted1/top.txt', 403], // configuration is not content
        ['useradmin', 'GET', '/repository/hosted1/top.txt', 403],
        // Content selector: hosted1 under /team-a/ only.
        ['teama', 'GET', '/repository/hosted1/team-a/a.txt', 200],
        ['teama', 'GET', '/repository/hosted1/team-a/', 200],
        ['teama', 'GET', '/repository/hosted1/team-b/b.txt', 403],
        ['teama', 'GET', '/repository/hosted1/top.txt', 403],
        ['teama', 'GET', '/repository/hosted1/', 403],
        ['teama', 'PUT', '/repository/hosted1/team-a/new.txt', 201],
        ['teama', 'PUT', '/repository/hosted1/team-a/a.txt', 200],
        ['teama', 'PUT', '/repository/hosted1/team-b/new.txt', 403],
        ['teama', 'DELETE', '/repository/hosted1/team-a/del-me.txt', 403], // the privilege has no delete
        ['teama', 'GET', '/repository/hosted2/h2.txt', 403], // the privilege names hosted1
        ['teama', 'GET', '/repository/group1/team-a/a.txt', 403],
        // group1 = hosted1 + proxy1 -------------------------------------------------------
        ['greader', 'GET', '/repository/group1/top.txt', 200],
        ['greader', 'GET', '/repository/group1/h2.txt', 200], // fetched through the proxy member
        ['greader', 'GET', '/repository/group1/', 200],
        ['greader', 'GET', '/repository/proxy1/h2.txt', 403],
        ['greader', 'GET', '/repository/hosted2/h2.txt', 403],
        ['reader', 'GET', '/repository/group1/top.txt', 403], // hosted1 rights do not open the group
        ['deployer', 'GET', '/repository/group1/top.txt', 403],
        // proxy1 -------------------------------------------------------------------------
        ['admin', 'GET', '/repository/proxy1/h2.txt', 200],
        ['reader', 'GET', '/repository/proxy1/h2.txt', 403],
        ['nobody', 'GET', '/repository/proxy1/h2.txt', 403],
        // Anonymous (switch on: nx-anonymous reads and browses everything, writes nothing).
        ['anon', 'GET', '/repository/hosted1/top.txt', 200],
        ['anon', 'GET', '/repository/hosted1/', 200],
        ['anon', 'GET', '/repository/proxy1/h2.txt', 200],
        ['anon', 'GET', '/repository/group1/h2.txt', 200],
        ['anon', 'PUT', '/repository/hosted1/anon.txt', 401],
        ['anon', 'DELETE', '/repository/hosted1/top.txt', 401],
        // Disabled users are refused outright.
        ['disabled', 'GET', '/repository/hosted1/top.txt', 401],
        // Deletes last.
        ['admin', 'DELETE', '/repository/hosted1/del-me.txt', 204],
        ['admin', 'GET', '/repository/hosted1/del-me.txt', 404],
      ]);
    });

    it('admin REST endpoints: repository configuration, users, blob stores', async () => {
      const h1 = HOSTED_BODY('hosted1');
      await runRows(s, [
        ['admin', 'GET', `${API}/repositories/raw/hosted/hosted1`, 200],
        ['repoadmin', 'GET', `${API}/repositories/raw/hosted/hosted1`, 200],
        ['repoadmin', 'PUT', `${API}/repositories/raw/hosted/hosted1`, 204, h1],
        ['repoadmin', 'GET', `${API}/repositories/raw/hosted/hosted2`, 403],
        ['repoadmin', 'PUT', `${API}/repositories/raw/hosted/hosted2`, 403, HOSTED_BODY('hosted2')],
        ['reader', 'GET', `${API}/repositories/raw/hosted/hosted1`, 403],
        ['reader', 'PUT', `${API}/repositories/raw/hosted/hosted1`, 403, h1],
        ['deployer', 'PUT', `${API}/repositories/raw/hosted/hosted1`, 403, h1],
        ['useradmin', 'GET', `${API}/repositories/raw/hosted/hosted1`, 403],
        ['anon', 'GET', `${API}/repositories/raw/hosted/hosted1`, 401],
        ['anon', 'PUT', `${API}/repositories/raw/hosted/hosted1`, 401, h1],
        ['reader', 'DELETE', `${API}/repositories/scratch`, 403],
        ['useradmin', 'DELETE', `${API}/repositories/scratch`, 403],
        ['anon', 'DELETE', `${API}/repositories/scratch`, 401],
        ['repoadmin', 'DELETE', `${API}/repositories/hosted2`, 403],
        ['repoadmin', 'DELETE', `${API}/repositories/scratch`, 204],
        // Users: nx-users-*.
        ['admin', 'GET', `${API}/security/users`, 200],
        ['useradmin', 'GET', `${API}/security/users`, 200],
        ['reader', 'GET', `${API}/security/users`, 403],
        ['repoadmin', 'GET', `${API}/security/users`, 403],
        ['anon', 'GET', `${API}/security/users`, 401],
        [
          'useradmin',
          'POST',
          `${API}/security/users`,
          200,
          { userId: 'made-by-useradmin', firstName: 'M', lastName: 'U', emailAddress: 'm@example.org', password: 'x-pw', status: 'active', roles: [] },
        ],
        ['reader', 'POST', `${API}/security/users`, 403, { userId: 'made-by-reader', password: 'x', status: 'active', roles: [] }],
        ['anon', 'POST', `${API}/security/users`, 401, { userId: 'made-by-anon', password: 'x', status: 'active', roles: [] }],
        ['reader', 'DELETE', `${API}/security/users/made-by-useradmin`, 403],
        ['useradmin', 'DELETE', `${API}/security/users/made-by-useradmin`, 204],
        ['useradmin', 'GET', `${API}/security/roles`, 403], // users, not roles
        ['useradmin', 'GET', `${API}/security/privileges`, 403],
        ['useradmin', 'PUT', `${API}/security/anonymous`, 403, { enabled: false }],
        // Blob stores: nx-blobstores-*.
        ['admin', 'GET', `${API}/blobstores`, 200],
        ['useradmin', 'GET', `${API}/blobstores`, 403],
        ['repoadmin', 'GET', `${API}/blobstores`, 403],
        ['reader', 'GET', `${API}/blobstores`, 403],
        ['anon', 'GET', `${API}/blobstores`, 401],
        ['disabled', 'GET', `${API}/blobstores`, 401],
      ]);
    });

    it('the anonymous switch takes effect at once, through REST', async () => {
      const off = await json<{ enabled: boolean; userId: string; realmName: string }>(s, 'admin', 'PUT', '/security/anonymous', {
        enabled: false,
        userId: 'anonymous',
        realmName: 'NexusAuthorizingRealm',
      });
      assert.deepEqual(off, { enabled: false, userId: 'anonymous', realmName: 'NexusAuthorizingRealm' });
      await runRows(s, [
        ['anon', 'GET', '/repository/hosted1/top.txt', 401],
        ['anon', 'GET', '/repository/hosted1/', 401],
        ['anon', 'GET', '/repository/group1/h2.txt', 401],
        ['anon', 'GET', `${API}/search?repository=hosted1`, 401],
        ['reader', 'GET', '/repository/hosted1/top.txt', 200],
      ]);
      assert.deepEqual(await json(s, 'admin', 'GET', '/security/anonymous'), off);
      await json(s, 'admin', 'PUT', '/security/anonymous', { enabled: true });
      await runRows(s, [
        ['anon', 'GET', '/repository/hosted1/top.txt', 200],
        ['anon', 'GET', `${API}/search?repository=hosted1`, 200],
      ]);
      // The anonymous user's roles are what anonymous requests get (as in Nexus).
      await json(
        s,
        'admin',
        'PUT',
        '/security/users/anonymous',
        { userId: 'anonymous', firstName: 'Anonymous', lastName: 'User', emailAddress: 'anonymous@example.org', source: 'default', status: 'active', roles: ['reader-h1'] },
        204,
      );
      await runRows(s, [
        ['anon', 'GET', '/repository/hosted1/top.txt', 200],
        ['anon', 'GET', '/repository/hosted2/h2.txt', 401],
      ]);
      await json(s, 'admin', 'PUT', '/security/users/anonymous', { userId: 'anonymous', source: 'default', status: 'active', roles: ['nx-anonymous'] }, 204);
      await expectField(await call(s, 'admin', 'PUT', `${API}/security/anonymous`, { enabled: true, userId: 'no-such-user' }), 400, 'userId');
      await expectField(await call(s, 'admin', 'DELETE', `${API}/security/users/anonymous`), 400, 'userId');
    });

    it('nested roles grant, cycles are refused naming the field, built-ins are read-only', async () => {
      // nested → nested-outer → nested-inner → reader-h1 (checked in the matrix); a cycle is refused.
      const msg = await expectField(
        await call(s, 'admin', 'PUT', `${API}/security/roles/nested-inner`, { id: 'nested-inner', name: 'nested-inner', privileges: [], roles: ['nested-outer'] }),
        400,
        'roles',
      );
      assert.match(msg, /cycle/);
      await expectField(await call(s, 'admin', 'PUT', `${API}/security/roles/reader-h1`, { id: 'reader-h1', name: 'r', privileges: [], roles: ['reader-h1'] }), 400, 'roles');
      await expectField(await call(s, 'admin', 'POST', `${API}/security/roles`, { id: 'new-role', name: 'n', privileges: [], roles: ['no-such-role'] }), 400, 'roles');
      await expectField(await call(s, 'admin', 'POST', `${API}/security/roles`, { id: 'new-role', name: 'n', privileges: ['no-such-privilege'], roles: [] }), 400, 'privileges');
      assert.equal((await call(s, 'admin', 'POST', `${API}/security/roles`, { id: 'reader-h1', name: 'dup' })).status, 409);
      // Nothing changed: nested still reads.
      await runRows(s, [['nested', 'GET', '/repository/hosted1/top.txt', 200]]);

      const builtins = await json<Array<{ id: string; readOnly: boolean; privileges: string[] }>>(s, 'admin', 'GET', '/security/roles');
      const admin = builtins.find((r) => r.id === 'nx-admin')!;
      assert.deepEqual([admin.readOnly, admin.privileges], [true, ['nx-all']]);
      const anon = builtins.find((r) => r.id === 'nx-anonymous')!;
      assert.deepEqual(anon.privileges.sort(), ['nx-healthcheck-read', 'nx-repository-view-*-*-browse', 'nx-repository-view-*-*-read', 'nx-search-read']);
      await expectField(await call(s, 'admin', 'PUT', `${API}/security/roles/nx-admin`, { id: 'nx-admin', name: 'x', privileges: [] }), 400, 'id');
      await expectField(await call(s, 'admin', 'DELETE', `${API}/security/roles/nx-anonymous`), 400, 'id');
      await expectField(await call(s, 'admin', 'DELETE', `${API}/security/privileges/nx-all`), 400, 'name');
      assert.equal((await call(s, 'admin', 'GET', `${API}/security/roles/no-such-role`)).status, 404);
    });

    it('a disabled user is refused, at once after being disabled, and works again once enabled', async () => {
      await runRows(s, [['disabled', 'GET', '/repository/hosted1/top.txt', 401]]);
      await runRows(s, [['reader', 'GET', '/repository/hosted1/top.txt', 200]]); // cached login
      await json(
        s,
        'admin',
        'PUT',
        '/security/users/reader',
        { userId: 'reader', firstName: 'reader', lastName: 'Test', emailAddress: 'reader@example.org', source: 'default', status: 'disabled', roles: ['reader-h1'] },
        204,
      );
      await runRows(s, [['reader', 'GET', '/repository/hosted1/top.txt', 401]]);
      await json(s, 'admin', 'PUT', '/security/users/reader', { userId: 'reader', source: 'default', status: 'active', roles: ['reader-h1'] }, 204);
      await runRows(s, [['reader', 'GET', '/repository/hosted1/top.txt', 200]]);
      const users = await json<Array<{ userId: string; status: string; source: string; readOnly: boolean }>>(s, 'admin', 'GET', '/security/users?userId=dis');
      assert.deepEqual(
        users.map((u) => [u.userId, u.status, u.source, u.readOnly]),
        [['disabled', 'disabled', 'default', false]],
      );
      await expectField(await call(s, 'admin', 'PUT', `${API}/security/users/reader`, { userId: 'other', status: 'active', roles: [] }), 400, 'userId');
      await expectField(await call(s, 'admin', 'PUT', `${API}/security/users/reader`, { userId: 'reader', status: 'sleeping', roles: [] }), 400, 'status');
      await expectField(await call(s, 'admin', 'POST', `${API}/security/users`, { userId: 'x1', password: 'p', status: 'active', roles: ['no-such-role'] }), 400, 'roles');
      assert.equal((await call(s, 'admin', 'POST', `${API}/security/users`, { userId: 'reader', password: 'p', status: 'active', roles: [] })).status, 409);
    });

    it("change-password: one's own always, another's with nx-users-update only", async () => {
      const change = (who: Who | string | null, user: string, pw: string) =>
        s.fetch(`${API}/security/users/${user}/change-password`, {
          method: 'PUT',
          headers: { 'Content-Type': 'text/plain' },
          body: pw,
          auth: who === null ? null : who.startsWith('Basic ') ? who : authOf(who as Who),
        });
      assert.equal((await change('deployer', 'deployer', 'deployer-pw-2')).status, 204);
      assert.equal((await call(s, basic('deployer', 'deployer-pw-2'), 'GET', '/repository/hosted1/top.txt')).status, 200);
      assert.equal((await call(s, 'deployer', 'GET', '/repository/hosted1/top.txt')).status, 401, 'old password');
      assert.equal((await change(basic('deployer', 'deployer-pw-2'), 'reader', 'hijack')).status, 403);
      assert.equal((await change('nobody', 'reader', 'hijack')).status, 403);
      assert.equal((await change(null, 'reader', 'hijack')).status, 401);
      assert.equal((await change('useradmin', 'deployer', password('deployer'))).status, 204);
      assert.equal((await call(s, 'deployer', 'GET', '/repository/hosted1/top.txt')).status, 200);
      assert.equal((await change('admin', 'no-such-user', 'x')).status, 404);
      await expectField(await change('admin', 'deployer', ''), 400, 'password');
      // A principal from another source with the same id is not the local user.
      const ext: Principal = { userId: 'reader', anonymous: false, roles: [], source: 'LDAP' };
      assert.equal(await s.app.authorizer.canApp(ext, 'nx-users-update'), false);
    });

    it('unknown privilege and role names in a role are harmless; deleting a privilege or role strips it', async () => {
      // Written directly, as an older version or an external role might have left them.
      await s.app.db('roles').insert({
        role_id: 'messy',
        name: 'messy',
        description: '',
        privileges: JSON.stringify(['no-such-privilege', 'nx-', 'nx-repository-view-raw-hosted1-read', 'nexus:*', '']),
        roles: JSON.stringify(['no-such-role', 'messy']),
        source: 'default',
        read_only: false,
        updated_at: Date.now(),
      });
      s.app.security.store.invalidate();
      await json(s, 'admin', 'POST', '/security/users', { userId: 'messy-user', password: 'messy-pw', status: 'active', roles: ['messy'] });
      await runRows(s, [
        [basic('messy-user', 'messy-pw') as Who, 'GET', '/repository/hosted1/top.txt', 200],
        [basic('messy-user', 'messy-pw') as Who, 'GET', '/repository/hosted1/', 403],
        [basic('messy-user', 'messy-pw') as Who, 'GET', `${API}/blobstores`, 403],
      ]);

      // A custom privilege in a role, then deleted: the role loses it (and the access).
      await json(
        s,
        'admin',
        'POST',
        '/security/privileges/repository-view',
        { name: 'h2-read', description: 'read hosted2', format: 'raw', repository: 'hosted2', actions: ['READ'] },
        201,
      );
      await json(s, 'admin', 'POST', '/security/roles', { id: 'h2-reader', name: 'h2', privileges: ['h2-read'], roles: [] });
      await json(s, 'admin', 'POST', '/security/users', { userId: 'h2-user', password: 'h2-pw', status: 'active', roles: ['h2-reader', 'reader-h1'] });
      const h2 = basic('h2-user', 'h2-pw') as Who;
      await runRows(s, [[h2, 'GET', '/repository/hosted2/h2.txt', 200]]);
      await json(s, 'admin', 'DELETE', '/security/privileges/h2-read', undefined, 204);
      assert.deepEqual((await json<{ privileges: string[] }>(s, 'admin', 'GET', '/security/roles/h2-reader')).privileges, []);
      await runRows(s, [[h2, 'GET', '/repository/hosted2/h2.txt', 403]]);
      // Deleting a role removes it from users and from the roles nesting it.
      await json(s, 'admin', 'POST', '/security/roles', { id: 'outer-of-h2', name: 'o', privileges: [], roles: ['h2-reader'] });
      await json(s, 'admin', 'DELETE', '/security/roles/h2-reader', undefined, 204);
      const users = await json<Array<{ userId: string; roles: string[] }>>(s, 'admin', 'GET', '/security/users?userId=h2-user');
      assert.deepEqual(users[0].roles, ['reader-h1']);
      assert.deepEqual((await json<{ roles: string[] }>(s, 'admin', 'GET', '/security/roles/outer-of-h2')).roles, []);
    });

    it('privileges: built-ins for every repository, custom ones of every type, Nexus shapes', async () => {
      const list = await json<Array<Record<string, unknown>>>(s, 'admin', 'GET', '/security/privileges');
      const byName = new Map(list.map((p) => [p.name as string, p]));
      assert.deepEqual(byName.get('nx-repository-view-raw-hosted1-read'), {
        type: 'repository-view',
        name: 'nx-repository-view-raw-hosted1-read',
        description: byName.get('nx-repository-view-raw-hosted1-read')!.description,
        readOnly: true,
        format: 'raw',
        repository: 'hosted1',
        actions: ['READ'],
      });
      assert.equal(byName.get('nx-repository-admin-raw-group1-*')?.type, 'repository-admin');
      assert.deepEqual((byName.get('nx-repository-admin-raw-group1-*') as { actions: string[] }).actions, ['ALL']);
      assert.deepEqual(byName.get('nx-users-read'), {
        type: 'application',
        name: 'nx-users-read',
        description: byName.get('nx-users-read')!.description,
        readOnly: true,
        domain: 'users',
        actions: ['READ'],
      });
      assert.equal(byName.get('nx-all')?.type, 'wildcard');
      assert.equal(byName.get('team-a-content')?.contentSelector, 'team-a-paths');
      assert.equal(byName.get('team-a-content')?.readOnly, false);

      await json(s, 'admin', 'POST', '/security/privileges/application', { name: 'blob-reader', description: 'b', domain: 'blobstores', actions: ['READ'] }, 201);
      await json(s, 'admin', 'POST', '/security/privileges/wildcard', { name: 'all-raw-reads', description: 'w', pattern: 'nexus:repository-view:raw:*:read,browse' }, 201);
      assert.deepEqual(await json(s, 'admin', 'GET', '/security/privileges/all-raw-reads'), {
        type: 'wildcard',
        name: 'all-raw-reads',
        description: 'w',
        readOnly: false,
        pattern: 'nexus:repository-view:raw:*:read,browse',
      });
      await json(s, 'admin', 'POST', '/security/roles', { id: 'custom-privs', name: 'c', privileges: ['blob-reader', 'all-raw-reads'], roles: [] });
      await json(s, 'admin', 'POST', '/security/users', { userId: 'custom-user', password: 'custom-pw', status: 'active', roles: ['custom-privs'] });
      const cu = basic('custom-user', 'custom-pw') as Who;
      await runRows(s, [
        [cu, 'GET', `${API}/blobstores`, 200],
        [cu, 'POST', `${API}/blobstores/file`, 403, { name: 'x', path: 'x' }],
        [cu, 'GET', '/repository/hosted2/h2.txt', 200],
        [cu, 'GET', '/repository/group1/', 200],
        [cu, 'PUT', '/repository/hosted2/custom.txt', 403],
      ]);
      // Update: the wildcard now only reads hosted1.
      await json(
        s,
        'admin',
        'PUT',
        '/security/privileges/wildcard/all-raw-reads',
        { name: 'all-raw-reads', description: 'w2', pattern: 'nexus:repository-view:raw:hosted1:read' },
        204,
      );
      await runRows(s, [
        [cu, 'GET', '/repository/hosted2/h2.txt', 403],
        [cu, 'GET', '/repository/hosted1/top.txt', 200],
      ]);

      await expectField(
        await call(s, 'admin', 'POST', `${API}/security/privileges/repository-view`, { name: 'bad1', format: 'raw', repository: 'no-such-repo', actions: ['READ'] }),
        400,
        'repository',
      );
      await expectField(
        await call(s, 'admin', 'POST', `${API}/security/privileges/repository-view`, { name: 'bad2', format: 'raw', repository: '*', actions: ['FLY'] }),
        400,
        'actions',
      );
      await expectField(
        await call(s, 'admin', 'POST', `${API}/security/privileges/repository-view`, {
          name: 'nx-repository-view-raw-hosted1-read',
          format: 'raw',
          repository: '*',
          actions: ['READ'],
        }),
        400,
        'name',
      );
      await expectField(await call(s, 'admin', 'POST', `${API}/security/privileges/wildcard`, { name: 'bad3', pattern: 'a::b' }), 400, 'pattern');
      await expectField(
        await call(s, 'admin', 'POST', `${API}/security/privileges/repository-content-selector`, {
          name: 'bad4',
          format: 'raw',
          repository: '*',
          contentSelector: 'nope',
          actions: ['READ'],
        }),
        400,
        'contentSelector',
      );
      await expectField(await call(s, 'admin', 'POST', `${API}/security/privileges/script`, { name: 'bad5' }), 400, 'type');
      await expectField(
        await call(s, 'admin', 'PUT', `${API}/security/privileges/application/all-raw-reads`, { name: 'all-raw-reads', domain: 'x', actions: ['READ'] }),
        400,
        'type',
      );
      assert.equal((await call(s, 'admin', 'POST', `${API}/security/privileges/application`, { name: 'blob-reader', domain: 'blobstores', actions: ['READ'] })).status, 409);
      assert.equal((await call(s, 'admin', 'GET', `${API}/security/privileges/nx-repository-view-raw-no-such-repo-read`)).status, 404);
    });

    it('content selectors: CRUD, syntax errors with their position, preview, in-use refusal', async () => {
      const msg = await expectField(await call(s, 'admin', 'POST', `${API}/security/content-selectors`, { name: 'broken', expression: 'format == "raw" and' }), 400, 'expression');
      assert.match(msg, /position 19/);
      await expectField(await call(s, 'admin', 'POST', `${API}/security/content-selectors`, { name: 'broken', expression: 'path =~ "(a+)+"' }), 400, 'expression');
      await json(s, 'admin', 'POST', '/security/content-selectors', { name: 'top-files', description: 'd', expression: "path =~ '/[^/]+'" }, 204);
      assert.deepEqual(await json(s, 'admin', 'GET', '/security/content-selectors/top-files'), {
        name: 'top-files',
        type: 'csel',
        description: 'd',
        expression: "path =~ '/[^/]+'",
      });
      const all = await json<Array<{ name: string }>>(s, 'admin', 'GET', '/security/content-selectors');
      assert.deepEqual(all.map((x) => x.name).sort(), ['team-a-paths', 'top-files']);

      const preview = await json<{ items: Array<{ path: string; repository: string }>; continuationToken: string | null }>(
        s,
        'admin',
        'POST',
        '/security/content-selectors/preview',
        {
          expression: 'path =^ "/team-a/"',
          repository: 'hosted1',
        },
      );
      assert.deepEqual(preview.items.map((a) => a.path).sort(), ['team-a/a.txt', 'team-a/del-me.txt', 'team-a/new.txt']);
      assert.equal(preview.continuationToken, null);
      // Paged; through a group the members' assets show under the group's name.
      const page1 = await json<{ items: Array<{ path: string; repository: string }>; continuationToken: string | null }>(
        s,
        'admin',
        'POST',
        '/security/content-selectors/preview?limit=2',
        {
          expression: 'path =^ "/team-a/"',
          repository: 'group1',
        },
      );
      assert.equal(page1.items.length, 2);
      assert.ok(page1.items.every((a) => a.repository === 'group1'));
      assert.ok(page1.continuationToken);
      const page2 = await json<{ items: Array<{ path: string }>; continuationToken: string | null }>(
        s,
        'admin',
        'POST',
        `/security/content-selectors/preview?limit=2&continuationToken=${encodeURIComponent(page1.continuationToken!)}`,
        { expression: 'path =^ "/team-a/"', repository: 'group1' },
      );
      assert.deepEqual([...page1.items, ...page2.items].map((a) => a.path).sort(), ['team-a/a.txt', 'team-a/del-me.txt', 'team-a/new.txt']);
      const everywhere = await json<{ items: Array<{ path: string; repository: string }> }>(s, 'admin', 'POST', '/security/content-selectors/preview', {
        expression: 'format == "raw" and path == "/h2.txt"',
      });
      assert.deepEqual(everywhere.items.map((a) => `${a.repository}/${a.path}`).sort(), ['hosted2/h2.txt', 'proxy1/h2.txt']);
      await expectField(await call(s, 'admin', 'POST', `${API}/security/content-selectors/preview`, { expression: 'nope' }), 400, 'expression');
      await runRows(s, [['reader', 'POST', `${API}/security/content-selectors/preview`, 403, { expression: 'format == "raw"' }]]);

      // Changing the selector changes what its privilege grants, at once.
      await json(s, 'admin', 'PUT', '/security/content-selectors/team-a-paths', { name: 'team-a-paths', description: 'Team B now', expression: 'path =^ "/team-b/"' }, 204);
      await runRows(s, [
        ['teama', 'GET', '/repository/hosted1/team-a/a.txt', 403],
        ['teama', 'GET', '/repository/hosted1/team-b/b.txt', 200],
      ]);
      assert.equal((await call(s, 'admin', 'DELETE', `${API}/security/content-selectors/team-a-paths`)).status, 409);
      await json(s, 'admin', 'DELETE', '/security/content-selectors/top-files', undefined, 204);
      assert.equal((await call(s, 'admin', 'GET', `${API}/security/content-selectors/top-files`)).status, 404);
    });

    it('realms: available, active order, unknown ids refused', async () => {
      const available = await json<Array<{ id: string; name: string }>>(s, 'admin', 'GET', '/security/realms/available');
      assert.ok(available.some((r) => r.id === 'NexusAuthenticatingRealm'));
      const active = await json<string[]>(s, 'admin', 'GET', '/security/realms/active');
      assert.equal(active[0], 'NexusAuthenticatingRealm');
      await expectField(await call(s, 'admin', 'PUT', `${API}/security/realms/active`, ['NexusAuthenticatingRealm', 'NoSuchRealm']), 400, 'realms');
      await expectField(await call(s, 'admin', 'PUT', `${API}/security/realms/active`, []), 400, 'realms');
      // Older automation sends NexusAuthorizingRealm too: accepted, not stored.
      await json(s, 'admin', 'PUT', '/security/realms/active', ['NexusAuthenticatingRealm', 'NexusAuthorizingRealm'], 204);
      assert.deepEqual(await json(s, 'admin', 'GET', '/security/realms/active'), ['NexusAuthenticatingRealm']);
      await json(s, 'admin', 'PUT', '/security/realms/active', active, 204);
      assert.deepEqual(await json(s, 'admin', 'GET', '/security/realms/active'), active);
      await runRows(s, [
        ['reader', 'GET', `${API}/security/realms/active`, 403],
        ['anon', 'PUT', `${API}/security/realms/active`, 401, active],
      ]);
      const sources = await json<Array<{ id: string }>>(s, 'admin', 'GET', '/security/user-sources');
      assert.equal(sources[0].id, 'default');
    });

    it('external users: groups named as roles grant, mapped local roles are merged, shown by the users API', async () => {
      // An external directory as the LDAP module provides it.
      const directory = [{ userId: 'ext-alice', firstName: 'Alice', lastName: 'Ext', emailAddress: 'alice@example.org', source: 'LDAP', externalRoles: ['ldap-developers'] }];
      s.app.security.externalUsers = async (source, prefix) => (source === 'LDAP' ? directory.filter((u) => u.userId.startsWith(prefix)) : []);
      try {
        await json(s, 'admin', 'POST', '/security/roles', { id: 'ldap-developers', name: 'LDAP developers', privileges: ['nx-repository-view-raw-hosted2-read'], roles: [] });
        const alice: Principal = { userId: 'ext-alice', anonymous: false, roles: ['ldap-developers', 'ldap-unmapped-group'], source: 'LDAP' };
        const can = (repo: string) => s.app.authorizer.canContent(alice, { format: 'raw', repository: repo, action: 'read', path: '/x' });
        assert.equal(await can('hosted2'), true, 'the group named as a role grants');
        assert.equal(await can('hosted1'), false);
        // A local role given to the external user: stored as a mapping, merged into its rights.
        await json(
          s,
          'admin',
          'PUT',
          '/security/users/ext-alice',
          { userId: 'ext-alice', source: 'LDAP', firstName: 'Alice', lastName: 'Ext', emailAddress: 'alice@example.org', status: 'active', roles: ['reader-h1'] },
          204,
        );
        assert.deepEqual(await s.app.security.mappedRoles('ext-alice', 'LDAP'), ['reader-h1']);
        assert.deepEqual(await s.app.security.mappedRoles('ext-alice', 'ldap'), ['reader-h1'], 'sources compare case-insensitively');
        assert.equal(await can('hosted1'), true);
        const listed = await json<Array<Record<string, unknown>>>(s, 'admin', 'GET', '/security/users?source=LDAP');
        assert.deepEqual(listed, [
          {
            userId: 'ext-alice',
            firstName: 'Alice',
            lastName: 'Ext',
            emailAddress: 'alice@example.org',
            source: 'LDAP',
            status: 'active',
            readOnly: true,
            roles: ['reader-h1'],
            externalRoles: ['ldap-developers'],
          },
        ]);
        const both = await json<Array<{ userId: string }>>(s, 'admin', 'GET', '/security/users?userId=ext-');
        assert.deepEqual(
          both.map((u) => u.userId),
          ['ext-alice'],
        );
        assert.ok((await json<Array<{ id: string }>>(s, 'admin', 'GET', '/security/user-sources')).some((x) => x.id === 'LDAP'));
        assert.equal((await call(s, 'admin', 'PUT', `${API}/security/users/ext-bob`, { userId: 'ext-bob', source: 'LDAP', status: 'active', roles: [] })).status, 404);
        await json(s, 'admin', 'DELETE', '/security/users/ext-alice?realm=LDAP', undefined, 204);
        assert.equal(await can('hosted1'), false);
        assert.equal(await can('hosted2'), true);
      } finally {
        delete s.app.security.externalUsers;
      }
    });

    it('a second node sees role, user and anonymous changes within a second', async () => {
      const b = await startServer({ db, dataDir: s.dataDir, dbUrl: s.dbUrl });
      try {
        await runRows(b, [['reader', 'GET', '/repository/hosted1/top.txt', 200]]); // B caches the login
        await json(s, 'admin', 'PUT', '/security/roles/reader-h1', { id: 'reader-h1', name: 'reader-h1', privileges: ['nx-repository-view-raw-hosted2-read'], roles: [] }, 204);
        await json(s, 'admin', 'PUT', '/security/anonymous', { enabled: false });
        await json(s, 'admin', 'PUT', '/security/users/deployer', { userId: 'deployer', source: 'default', status: 'disabled', roles: ['deployer-h1'] }, 204);
        await new Promise((r) => setTimeout(r, 1100));
        await runRows(b, [
          ['reader', 'GET', '/repository/hosted1/top.txt', 403],
          ['reader', 'GET', '/repository/hosted2/h2.txt', 200],
          ['anon', 'GET', '/repository/hosted1/top.txt', 401],
          ['deployer', 'GET', '/repository/hosted1/top.txt', 401],
        ]);
      } finally {
        await b.listener.close(1000);
        await b.app.close();
      }
    });
  });
}
