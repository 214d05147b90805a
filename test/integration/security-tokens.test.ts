/**
 * User tokens through the REST API and in use, the way CI jobs and scripts use them: created by a
 * local user with their password, sent as the Basic password (with the user's own id) and as
 * `Authorization: Bearer`, for raw uploads and downloads; expiry, revocation, read-only scope,
 * disabled and deleted users, roles followed live, no token minted by a token, and only a hash of
 * the secret in the database. Anonymous access is off, so every success here is the token's.
 * Runs on SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ADMIN, DATABASES, basic, startServer, type TestServer } from '../helpers/stowage.js';

const API = '/service/rest/v1';
const TOKENS = `${API}/security/user-tokens`;

interface TokenXO {
  id: string;
  name: string;
  userId: string;
  source: string;
  scope: 'read' | 'write';
  kind: string;
  created: string;
  expires: string | null;
  expired: boolean;
  lastUsed: string | null;
  token?: string;
}

const bearer = (secret: string) => `Bearer ${secret}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const db of DATABASES) {
  describe(`user tokens (${db})`, () => {
    let s: TestServer;
    const ALICE = basic('alice', 'alice-pw-1');
    const BOB = basic('bob', 'bob-pw-1');

    async function create(auth: string, body: Record<string, unknown>): Promise<TokenXO> {
      const res = await s.fetch(TOKENS, { method: 'POST', auth, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      const text = await res.text();
      assert.equal(res.status, 201, text);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      return JSON.parse(text) as TokenXO;
    }

    async function put(auth: string, p: string, body: string): Promise<number> {
      const res = await s.fetch(`/repository/files/${p}`, { method: 'PUT', auth, body });
      await res.arrayBuffer();
      return res.status;
    }

    async function get(auth: string | null, p: string): Promise<{ status: number; body: string }> {
      const res = await s.fetch(`/repository/files/${p}`, { auth });
      return { status: res.status, body: await res.text() };
    }

    before(async () => {
      s = await startServer({ db, env: { STOWAGE_ANONYMOUS: 'false' } });
      // Many refusals are expected here; the throttle has its own test.
      s.app.loginThrottle.options.userThreshold = 1000;
      s.app.loginThrottle.options.addressThreshold = 1000;
      await s.repo('raw', 'hosted', { name: 'files', storage: { blobStoreName: 'default', writePolicy: 'ALLOW' } });
      await s.app.security.users.create({ userId: 'alice', password: 'alice-pw-1', roles: ['nx-admin'] });
      // bob may read (the anonymous role's privileges) but not write.
      await s.app.security.users.create({ userId: 'bob', password: 'bob-pw-1', roles: ['nx-anonymous'] });
    });
    after(async () => {
      await s?.stop();
    });

    it('anonymous callers have no tokens to manage', async () => {
      const res = await s.fetch(TOKENS, { auth: null });
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Basic/);
    });

    it('creates a token (secret shown once) and lists it without the secret', async () => {
      const t = await create(ALICE, { name: 'ci upload', scope: 'write', expiresInDays: 30 });
      assert.match(t.token!, /^stw_[A-Za-z0-9_-]{43}$/);
      assert.equal(t.name, 'ci upload');
      assert.equal(t.userId, 'alice');
      assert.equal(t.source, 'default');
      assert.equal(t.scope, 'write');
      assert.equal(t.kind, 'api');
      assert.equal(t.expired, false);
      const days = (Date.parse(t.expires!) - Date.now()) / 86_400_000;
      assert.ok(days > 29.9 && days <= 30, String(days));

      const res = await s.fetch(TOKENS, { auth: ALICE });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      assert.ok(!text.includes(t.token!), 'the secret is listed');
      const list = JSON.parse(text) as TokenXO[];
      assert.deepEqual(
        list.map((x) => [x.id, x.name, x.token]),
        [[t.id, 'ci upload', undefined]],
      );
      // Another user sees only their own.
      assert.deepEqual(await (await s.fetch(TOKENS, { auth: BOB })).json(), []);
    });

    it('works as the Basic password of its own user and as a Bearer token, for PUT and GET', async () => {
      const t = await create(ALICE, { name: 'both ways' });
      assert.equal(t.scope, 'write', 'write is the default scope');
      assert.equal(t.expires, null);
      assert.equal(await put(basic('alice', t.token!), 'basic/a.txt', 'via basic'), 201);
      assert.deepEqual(await get(basic('alice', t.token!), 'basic/a.txt'), { status: 200, body: 'via basic' });
      assert.equal(await put(bearer(t.token!), 'bearer/b.txt', 'via bearer'), 201);
      assert.deepEqual(await get(bearer(t.token!), 'bearer/b.txt'), { status: 200, body: 'via bearer' });
      // REST too, with the user's privileges.
      assert.equal((await s.fetch(`${API}/repositories`, { auth: bearer(t.token!) })).status, 200);

      // With Basic the user name must be the token's user: another name (even an existing one) is refused.
      assert.equal((await get(basic('bob', t.token!), 'basic/a.txt')).status, 401);
      assert.equal((await get(basic('nobody', t.token!), 'basic/a.txt')).status, 401);
      // A token that was never issued, and garbage, the same way.
      const forged = 'stw_' + 'A'.repeat(43);
      assert.equal((await get(bearer(forged), 'basic/a.txt')).status, 401);
      assert.equal((await get(basic('alice', forged), 'basic/a.txt')).status, 401);
      assert.equal((await get(bearer('not-a-token'), 'basic/a.txt')).status, 401);
    });

    it('records when a token was last used', async () => {
      const t = await create(ALICE, { name: 'usage' });
      assert.equal(t.lastUsed, null);
      assert.equal((await get(bearer(t.token!), 'basic/a.txt')).status, 200);
      for (let i = 0; i < 50; i++) {
        const mine = ((await (await s.fetch(TOKENS, { auth: ALICE })).json()) as TokenXO[]).find((x) => x.id === t.id)!;
        if (mine.lastUsed) {
          assert.ok(Math.abs(Date.parse(mine.lastUsed) - Date.now()) < 60_000);
          return;
        }
        await sleep(20);
      }
      assert.fail('lastUsed was not recorded');
    });

    it('stores only a sha256 of the secret', async () => {
      const t = await create(ALICE, { name: 'hash check' });
      const rows = await s.app.db('user_tokens').select();
      const dump = JSON.stringify(rows);
      assert.ok(!dump.includes(t.token!), 'secret stored in clear');
      assert.ok(!dump.includes(t.token!.slice(4)), 'secret body stored in clear');
      const row = rows.find((r) => r.token_id === t.id);
      assert.equal(row.token_hash, createHash('sha256').update(t.token!).digest('hex'));
    });

    it('refuses a token after it expires', async () => {
      const t = await create(ALICE, { name: 'short', expiresAt: new Date(Date.now() + 1500).toISOString() });
      assert.equal(await put(bearer(t.token!), 'short/x.txt', 'in time'), 201);
      await sleep(1700);
      assert.equal(await put(bearer(t.token!), 'short/y.txt', 'too late'), 401);
      assert.equal((await get(basic('alice', t.token!), 'short/x.txt')).status, 401);
      const listed = ((await (await s.fetch(TOKENS, { auth: ALICE })).json()) as TokenXO[]).find((x) => x.id === t.id)!;
      assert.equal(listed.expired, true);
    });

    it('refuses a token once revoked; only its user (or a token administrator) may revoke it', async () => {
      const t = await create(ALICE, { name: 'to revoke' });
      assert.equal((await get(bearer(t.token!), 'basic/a.txt')).status, 200);
      // bob cannot see or revoke alice's token: it is simply not found for him.
      assert.equal((await s.fetch(`${TOKENS}/${t.id}`, { method: 'DELETE', auth: BOB })).status, 404);
      assert.equal((await s.fetch(`${TOKENS}?userId=alice`, { auth: BOB })).status, 403);
      assert.equal((await get(bearer(t.token!), 'basic/a.txt')).status, 200);

      const del = await s.fetch(`${TOKENS}/${t.id}`, { method: 'DELETE', auth: ALICE });
      assert.equal(del.status, 204, await del.text());
      assert.equal((await get(bearer(t.token!), 'basic/a.txt')).status, 401);
      assert.equal((await get(basic('alice', t.token!), 'basic/a.txt')).status, 401);
      assert.equal((await s.fetch(`${TOKENS}/${t.id}`, { method: 'DELETE', auth: ALICE })).status, 404);
      const ids = ((await (await s.fetch(TOKENS, { auth: ALICE })).json()) as TokenXO[]).map((x) => x.id);
      assert.ok(!ids.includes(t.id));

      // The administrator (nx-all includes nx-apikey-all) lists and revokes other users' tokens.
      const u = await create(ALICE, { name: 'admin revokes' });
      const listed = (await (await s.fetch(`${TOKENS}?userId=alice`, { auth: ADMIN })).json()) as TokenXO[];
      assert.ok(listed.some((x) => x.id === u.id));
      assert.equal((await s.fetch(`${TOKENS}/${u.id}`, { method: 'DELETE', auth: ADMIN })).status, 204);
      assert.equal((await get(bearer(u.token!), 'basic/a.txt')).status, 401);
    });

    it('a read-only token reads but may not write or delete, whatever its user may do', async () => {
      const t = await create(ALICE, { name: 'reader', scope: 'read' });
      assert.equal(t.scope, 'read');
      assert.deepEqual(await get(bearer(t.token!), 'basic/a.txt'), { status: 200, body: 'via basic' });
      assert.deepEqual(await get(basic('alice', t.token!), 'basic/a.txt'), { status: 200, body: 'via basic' });
      assert.equal((await s.fetch('/repository/files/', { auth: bearer(t.token!) })).status, 200, 'browse');
      assert.equal(await put(bearer(t.token!), 'ro/new.txt', 'nope'), 403);
      assert.equal(await put(basic('alice', t.token!), 'ro/new.txt', 'nope'), 403);
      const del = await s.fetch('/repository/files/basic/a.txt', { method: 'DELETE', auth: bearer(t.token!) });
      assert.equal(del.status, 403);
      assert.deepEqual(await get(ALICE, 'basic/a.txt'), { status: 200, body: 'via basic' });
      // Read-only REST works, configuration changes do not.
      assert.equal((await s.fetch(`${API}/repositories/raw/hosted/files`, { auth: bearer(t.token!) })).status, 200);
      const delRepo = await s.fetch(`${API}/repositories/files`, { method: 'DELETE', auth: bearer(t.token!) });
      assert.equal(delRepo.status, 403);
      // Nor can it revoke tokens.
      const other = await create(ALICE, { name: 'victim' });
      assert.equal((await s.fetch(`${TOKENS}/${other.id}`, { method: 'DELETE', auth: bearer(t.token!) })).status, 403);
    });

    it('a token cannot mint tokens', async () => {
      const t = await create(ALICE, { name: 'minter' });
      for (const auth of [bearer(t.token!), basic('alice', t.token!)]) {
        const res = await s.fetch(TOKENS, { method: 'POST', auth, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'child' }) });
        assert.equal(res.status, 403, await res.text());
      }
      // But it can list its user's tokens and revoke one (npm logout revokes the token it uses).
      assert.equal((await s.fetch(TOKENS, { auth: bearer(t.token!) })).status, 200);
      assert.equal((await s.fetch(`${TOKENS}/${t.id}`, { method: 'DELETE', auth: bearer(t.token!) })).status, 204);
      assert.equal((await s.fetch(TOKENS, { auth: bearer(t.token!) })).status, 401);
    });

    it("carries the user's current roles: taken away or given, the token follows", async () => {
      const t = await create(BOB, { name: 'bob reads' });
      assert.equal((await get(bearer(t.token!), 'basic/a.txt')).status, 200);
      assert.equal(await put(bearer(t.token!), 'bob/1.txt', 'no'), 403);
      await s.app.security.users.update('bob', { roles: ['nx-admin'] });
      assert.equal(await put(bearer(t.token!), 'bob/1.txt', 'yes'), 201);
      await s.app.security.users.update('bob', { roles: [] });
      assert.equal((await get(bearer(t.token!), 'bob/1.txt')).status, 403);
      await s.app.security.users.update('bob', { roles: ['nx-anonymous'] });
    });

    it("refuses a disabled user's tokens, and a deleted user's tokens go with the user", async () => {
      await s.app.security.users.create({ userId: 'carol', password: 'carol-pw-1', roles: ['nx-admin'] });
      const t = await create(basic('carol', 'carol-pw-1'), { name: 'carol ci' });
      assert.equal(await put(bearer(t.token!), 'carol/1.txt', 'one'), 201);
      await s.app.security.users.update('carol', { status: 'disabled' });
      assert.equal(await put(bearer(t.token!), 'carol/2.txt', 'two'), 401);
      assert.equal((await get(basic('carol', t.token!), 'carol/1.txt')).status, 401);
      await s.app.security.users.update('carol', { status: 'active' });
      assert.equal((await get(bearer(t.token!), 'carol/1.txt')).status, 200);

      await s.app.security.users.delete('carol');
      assert.equal((await get(bearer(t.token!), 'carol/1.txt')).status, 401);
      assert.equal((await s.app.db('user_tokens').where({ user_id: 'carol' })).length, 0);
      // A new user with the same id inherits nothing.
      await s.app.security.users.create({ userId: 'carol', password: 'carol-pw-2', roles: ['nx-admin'] });
      assert.equal((await get(bearer(t.token!), 'carol/1.txt')).status, 401);
    });

    it('validates the creation body', async () => {
      const bad = async (body: unknown, field: string) => {
        const res = await s.fetch(TOKENS, { method: 'POST', auth: ALICE, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
        const text = await res.text();
        assert.equal(res.status, 400, text);
        assert.equal((JSON.parse(text) as Array<{ id: string }>)[0].id, `PARAMETER ${field}`, text);
      };
      await bad({}, 'name');
      await bad({ name: '  ' }, 'name');
      await bad({ name: 'x', scope: 'admin' }, 'scope');
      await bad({ name: 'x', expiresAt: 'tomorrow' }, 'expiresAt');
      await bad({ name: 'x', expiresAt: new Date(Date.now() - 1000).toISOString() }, 'expiresAt');
      await bad({ name: 'x', expiresAt: new Date(Date.now() + 86_400_000).toISOString(), expiresInDays: 1 }, 'expiresAt');
      await bad({ name: 'x', expiresInDays: 0 }, 'expiresInDays');
      await bad({ name: 'x', userId: 'bob' }, 'userId');
    });

    it('the audit log names the token that did something', async () => {
      const t = await create(ALICE, { name: 'deleter' });
      assert.equal(await put(bearer(t.token!), 'audit/gone.txt', 'bye'), 201);
      const del = await s.fetch('/repository/files/audit/gone.txt', { method: 'DELETE', auth: bearer(t.token!) });
      assert.equal(del.status, 204);
      const page = (await (await s.fetch(`${API}/audit?domain=repository.asset&type=deleted&context=audit/gone.txt`)).json()) as {
        items: Array<{ initiator: string; attributes: Record<string, unknown> }>;
      };
      assert.equal(page.items.length, 1);
      assert.equal(page.items[0].initiator, 'alice');
      assert.equal(page.items[0].attributes.initiatorTokenId, t.id);
    });

    it('records token creation and revocation in the audit log, without the secret', async () => {
      const t = await create(ALICE, { name: 'audited' });
      assert.equal((await s.fetch(`${TOKENS}/${t.id}`, { method: 'DELETE', auth: ALICE })).status, 204);
      const res = await s.fetch(`${API}/audit?domain=security.user-token&context=alice`);
      const text = await res.text();
      assert.equal(res.status, 200, text);
      assert.ok(!text.includes(t.token!));
      const events = (JSON.parse(text) as { items: Array<{ type: string; initiator: string; attributes: { tokenId: string } }> }).items.filter(
        (e) => e.attributes.tokenId === t.id,
      );
      assert.deepEqual(
        events.map((e) => [e.type, e.initiator]),
        [
          ['created', 'alice'],
          ['deleted', 'alice'],
        ],
      );
    });
  });
}
