/**
 * The LDAP realm against a real OpenLDAP slapd started by the test: servers configured through
 * the Nexus-shaped REST API (bind password encrypted at rest, never returned), the verify
 * endpoints, service-account bind and search, static groups (member DN, memberUid, DN template)
 * and dynamic groups (memberOf) as roles, local roles mapped to LDAP users, hostile user ids,
 * slapd stopped and started again (LDAP users refused promptly, local users unaffected, no
 * Stowage restart), a server that never answers, and servers tried in order. SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { DATABASES, basic, startServer, type TestServer } from '../helpers/stowage.js';
import { freePort } from '../helpers/net.js';
import { SERVICE_DN, SERVICE_PASSWORD, SUFFIX, Slapd, user } from '../helpers/slapd.js';
import { LdapRealm } from '../../src/security/ldap/realm.js';
import { now } from '../../src/db/db.js';

const alice = user('alice');
const bob = user('bob');
const carol = user('carol');
const rob = user('r(o)b*,x');
const as = (u: { uid: string; password: string }) => basic(u.uid, u.password);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP server that accepts connections and never says a word: an LDAP server that hangs. */
async function blackHole(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('LDAP realm against a real slapd', () => {
  let slapd: Slapd;

  before(async () => {
    slapd = await Slapd.create();
  });

  after(async () => {
    await slapd?.destroy();
  });

  /** Nexus LdapServerXO for the test directory, bound as the service account. */
  const serverBody = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    name: 'corp',
    protocol: 'ldap',
    useTrustStore: false,
    host: '127.0.0.1',
    port: slapd.port,
    searchBase: SUFFIX,
    authScheme: 'SIMPLE',
    authUsername: SERVICE_DN,
    authPassword: SERVICE_PASSWORD,
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
    ldapGroupsAsRoles: true,
    groupType: 'static',
    groupBaseDn: 'ou=groups',
    groupSubtree: false,
    groupObjectClass: 'groupOfNames',
    groupIdAttribute: 'cn',
    groupMemberAttribute: 'member',
    groupMemberFormat: '${dn}',
    userMemberOfAttribute: 'memberOf',
    ...over,
  });

  for (const db of DATABASES) {
    describe(`on ${db}`, () => {
      let s: TestServer;
      const json = (method: string, p: string, body?: unknown, auth?: string | null) =>
        s.fetch(`/service/rest/v1${p}`, {
          method,
          auth,
          headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      const get = (p: string, auth?: string | null) => s.fetch(p, { auth });
      const principal = (u: { uid: string; password: string }) => s.app.security.authenticate(u.uid, u.password);
      /** The access check for content: the status of a GET by this user. */
      const read = async (u: { uid: string; password: string }, repo: string) => (await get(`/repository/${repo}/hello.txt`, as(u))).status;
      /** Role and mapping rows written straight to the database: the authorizer must see them now. */
      const securityChanged = () => s.app.security.store.invalidate();

      before(async () => {
        s = await startServer({ db });
        // Many refused logins on purpose: login throttling is tested elsewhere.
        s.app.loginThrottle.options = { ...s.app.loginThrottle.options, userThreshold: 1_000_000, addressThreshold: 1_000_000 };
        const active = await s.app.security.activeRealmIds();
        if (!active.includes('LdapRealm')) await s.app.security.setActiveRealmIds([...active, 'LdapRealm']);
        for (const name of ['ldap-ok', 'ldap-other']) {
          await s.repo('raw', 'hosted', { name, storage: { writePolicy: 'ALLOW' } });
          const put = await s.fetch(`/repository/${name}/hello.txt`, { method: 'PUT', body: `hello from ${name}` });
          assert.equal(put.status, 201);
        }
        // A role per LDAP group name, and one only given through a user_role_mapping.
        const role = (id: string, privileges: string[]) => ({
          role_id: id,
          name: id,
          description: '',
          privileges: JSON.stringify(privileges),
          roles: '[]',
          source: 'default',
          read_only: false,
          updated_at: now(),
        });
        await s.app
          .db('roles')
          .insert([
            role('devs', ['nx-repository-view-raw-ldap-ok-read', 'nx-repository-view-raw-ldap-ok-browse']),
            role('ops', ['nx-repository-view-raw-ldap-other-read']),
            role('builders', ['nx-repository-view-raw-ldap-other-read']),
            role('other-readers', ['nx-repository-view-raw-ldap-other-read']),
          ]);
        securityChanged();
      });

      after(async () => {
        await s?.stop();
        if (!slapd.running) await slapd.start();
      });

      it('validates configurations, stores the bind password encrypted and never returns it', async () => {
        const { host: _h, ...noHost } = serverBody();
        const bad = await json('POST', '/security/ldap', noHost);
        assert.equal(bad.status, 400);
        assert.equal(((await bad.json()) as Array<{ id: string }>)[0].id, 'PARAMETER host');
        const badFilter = await json('POST', '/security/ldap', serverBody({ userLdapFilter: '(|(a=1)' }));
        assert.equal(badFilter.status, 400);
        assert.equal(((await badFilter.json()) as Array<{ id: string }>)[0].id, 'PARAMETER userLdapFilter');

        assert.equal((await json('POST', '/security/ldap', serverBody())).status, 201);
        assert.equal((await json('POST', '/security/ldap', serverBody())).status, 409);

        const list = (await (await json('GET', '/security/ldap')).json()) as Array<Record<string, unknown>>;
        assert.equal(list.length, 1);
        assert.equal(list[0].name, 'corp');
        assert.equal(list[0].order, 1);
        assert.equal(typeof list[0].id, 'string');
        assert.equal(list[0].authUsername, SERVICE_DN);
        assert.equal(list[0].port, slapd.port);
        assert.ok(!('authPassword' in list[0]), 'GET list never returns authPassword');
        const one = await json('GET', '/security/ldap/corp');
        assert.equal(one.status, 200);
        const oneText = await one.text();
        assert.ok(!oneText.includes(SERVICE_PASSWORD) && !oneText.includes('authPassword'), oneText);
        assert.equal((await json('GET', '/security/ldap/nope')).status, 404);

        const row = await s.app.db('ldap_servers').where({ name: 'corp' }).first();
        assert.ok(!String(row.config).includes(SERVICE_PASSWORD), 'not in clear in the database');
        const stored = JSON.parse(String(row.config)) as { authPassword: string };
        assert.ok(s.app.secrets.isEncrypted(stored.authPassword));
        assert.equal(s.app.secrets.decrypt(stored.authPassword), SERVICE_PASSWORD);

        // A PUT without the password keeps it; one that moves the server elsewhere must repeat it.
        const { authPassword: _p, ...noPassword } = serverBody();
        assert.equal((await json('PUT', '/security/ldap/corp', noPassword)).status, 204);
        const after = await s.app.db('ldap_servers').where({ name: 'corp' }).first();
        assert.equal(s.app.secrets.decrypt((JSON.parse(String(after.config)) as { authPassword: string }).authPassword), SERVICE_PASSWORD);
        const moved = await json('PUT', '/security/ldap/corp', { ...noPassword, host: '192.0.2.1' });
        assert.equal(moved.status, 400);
        assert.equal(((await moved.json()) as Array<{ id: string }>)[0].id, 'PARAMETER authPassword');
        const cipher = await json('PUT', '/security/ldap/corp', { ...noPassword, authPassword: stored.authPassword });
        assert.equal(cipher.status, 400, 'a ciphertext is not accepted as a password');
      });

      it('is described in the OpenAPI document', async () => {
        const doc = (await (await s.fetch('/service/rest/swagger.json', { auth: null })).json()) as {
          paths: Record<string, Record<string, unknown>>;
          components: { schemas: Record<string, unknown> };
        };
        const expected: Record<string, string[]> = {
          '/v1/security/ldap': ['get', 'post'],
          '/v1/security/ldap/{name}': ['get', 'put', 'delete'],
          '/v1/security/ldap/change-order': ['post'],
          '/v1/security/ldap/clear-cache': ['post'],
          '/v1/security/ldap/verify-connection': ['post'],
          '/v1/security/ldap/verify-user-mapping': ['post'],
          '/v1/security/ldap/verify-login': ['post'],
        };
        for (const [p, methods] of Object.entries(expected)) assert.deepEqual(Object.keys(doc.paths[p] ?? {}).sort(), methods.sort(), p);
        const refs = [...JSON.stringify(doc).matchAll(/"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]);
        for (const r of refs) assert.ok(doc.components.schemas[r], `schema ${r} is defined`);
        const read = doc.components.schemas.ReadLdapServerXo as { properties: Record<string, unknown> };
        assert.ok(!('authPassword' in read.properties));
      });

      it('requires the nx-ldap privileges', async () => {
        await s.app.security.users.create({ userId: 'plain', password: 'plain-pw', roles: [] });
        const plain = basic('plain', 'plain-pw');
        assert.equal((await json('GET', '/security/ldap', undefined, plain)).status, 403);
        assert.equal((await json('GET', '/security/ldap/corp', undefined, plain)).status, 403);
        assert.equal((await json('POST', '/security/ldap', serverBody({ name: 'x' }), plain)).status, 403);
        assert.equal((await json('PUT', '/security/ldap/corp', serverBody(), plain)).status, 403);
        assert.equal((await json('DELETE', '/security/ldap/corp', undefined, plain)).status, 403);
        assert.equal((await json('POST', '/security/ldap/verify-connection', serverBody(), plain)).status, 403);
        assert.equal((await json('POST', '/security/ldap/clear-cache', undefined, plain)).status, 403);
        assert.equal((await json('GET', '/security/ldap', undefined, null)).status, 401);
      });

      it('verifies connection, user mapping and login without saving', async () => {
        const { authPassword: _p, ...noPassword } = serverBody();
        // The stored password stands in for the missing one: same server, same account.
        assert.equal((await json('POST', '/security/ldap/verify-connection', noPassword)).status, 204);
        assert.equal((await json('POST', '/security/ldap/verify-connection', serverBody({ name: 'new' }))).status, 204);
        const wrongBind = await json('POST', '/security/ldap/verify-connection', serverBody({ authPassword: 'nope' }));
        assert.equal(wrongBind.status, 400);
        assert.match(((await wrongBind.json()) as { message: string }).message, /invalid credentials/i);
        const closed = await freePort();
        const t0 = Date.now();
        const refused = await json('POST', '/security/ldap/verify-connection', serverBody({ name: 'new', port: closed }));
        assert.equal(refused.status, 400);
        assert.match(((await refused.json()) as { message: string }).message, /ECONNREFUSED|connect/i);
        assert.ok(Date.now() - t0 < 3000);
        // Never sends the stored secret to another host.
        const elsewhere = await json('POST', '/security/ldap/verify-connection', { ...noPassword, host: 'localhost' });
        assert.equal(elsewhere.status, 400);
        const badBase = await json('POST', '/security/ldap/verify-connection', serverBody({ searchBase: 'dc=nowhere,dc=org' }));
        assert.equal(badBase.status, 400);

        const mapping = await json('POST', '/security/ldap/verify-user-mapping', noPassword);
        assert.equal(mapping.status, 200);
        const users = (await mapping.json()) as Array<{ username: string; realName: string; email: string; membership: string[] }>;
        const byName = new Map(users.map((u) => [u.username, u]));
        assert.deepEqual(byName.get('alice'), { username: 'alice', realName: alice.cn, email: alice.mail, membership: ['devs'] });
        assert.deepEqual(byName.get('bob')?.membership, ['ops']);
        assert.deepEqual(byName.get('carol')?.membership, []);
        assert.deepEqual(byName.get(rob.uid)?.membership, ['devs']);

        const login = (username: string, password: string) => json('POST', '/security/ldap/verify-login', { ...noPassword, username, password });
        assert.equal((await login('alice', alice.password)).status, 204);
        assert.equal((await login('alice', 'wrong')).status, 400);
        assert.equal((await login('nobody', 'x')).status, 400);
        assert.equal((await login('*', alice.password)).status, 400);
        const empty = await login('alice', '');
        assert.equal(empty.status, 400);
        assert.equal(((await empty.json()) as Array<{ id: string }>)[0].id, 'PARAMETER password');
        // The {server, username, password} spelling too.
        assert.equal((await json('POST', '/security/ldap/verify-login', { server: noPassword, username: 'bob', password: bob.password })).status, 204);
      });

      it('an LDAP user whose static group is a role gets exactly that access', async () => {
        assert.equal(await read(alice, 'ldap-ok'), 200);
        assert.equal(await read(alice, 'ldap-other'), 403);
        const put = await s.fetch('/repository/ldap-ok/alice.txt', { method: 'PUT', auth: as(alice), body: 'x' });
        assert.equal(put.status, 403);
        const p = await principal(alice);
        assert.deepEqual(p, { userId: 'alice', anonymous: false, roles: ['devs'], source: 'LDAP' });
        // Filter specials and a DN comma in the user id: found exactly, group found by DN.
        assert.equal(await read(rob, 'ldap-ok'), 200);
        assert.equal(await read(bob, 'ldap-ok'), 403);
        assert.equal(await read(bob, 'ldap-other'), 200);
      });

      it('refuses wrong passwords, wildcards, injected filters and empty passwords', async () => {
        assert.equal(await read({ uid: 'alice', password: 'wrong' }, 'ldap-ok'), 401);
        assert.equal(await read({ uid: 'bob', password: alice.password }, 'ldap-ok'), 401);
        for (const uid of ['*', 'al*', 'alice)(uid=*', '*)(|(uid=*', 'r(o)b*']) {
          assert.equal(await read({ uid, password: alice.password }, 'ldap-ok'), 401, uid);
          assert.equal(await read({ uid, password: rob.password }, 'ldap-ok'), 401, uid);
        }
        assert.equal(await principal({ uid: 'alice', password: '' }), null);
        assert.equal(await read({ uid: 'nobody', password: 'x' }, 'ldap-ok'), 401);
      });

      it('local roles mapped to an LDAP user apply at once', async () => {
        assert.equal(await read(carol, 'ldap-ok'), 403);
        assert.equal(await read(carol, 'ldap-other'), 403);
        await s.app.db('user_role_mappings').insert({ user_id: 'carol', source: 'LDAP', roles: JSON.stringify(['other-readers']), updated_at: now() });
        securityChanged();
        assert.equal(await read(carol, 'ldap-other'), 200);
        assert.deepEqual((await principal(carol))?.roles, ['other-readers']);
        // The users API sees LDAP users with their groups and mapped roles.
        const listed = await s.app.security.externalUsers?.('LDAP', 'ca');
        assert.deepEqual(listed, [
          {
            userId: 'carol',
            firstName: 'Carol',
            lastName: 'Danvers',
            emailAddress: carol.mail,
            source: 'LDAP',
            status: 'active',
            readOnly: true,
            roles: ['other-readers'],
            externalRoles: [],
          },
        ]);
        const all = (await s.app.security.externalUsers?.('LDAP', '')) ?? [];
        assert.deepEqual(all.map((u) => u.userId).sort(), ['alice', 'bob', 'carol', rob.uid].sort());
        assert.deepEqual(all.find((u) => u.userId === 'alice')?.externalRoles, ['devs']);
        assert.deepEqual(await s.app.security.externalUsers?.('LDAP', '*'), [], 'a prefix is not a pattern');
        assert.deepEqual(await s.app.security.externalUsers?.('default', ''), []);
        // …and so does GET /security/users (the users engineer's endpoint, Nexus shape).
        const viaRest = (await (await json('GET', '/security/users?source=LDAP&userId=ali')).json()) as Array<Record<string, unknown>>;
        assert.deepEqual(
          viaRest.map((u) => [u.userId, u.source, u.externalRoles]),
          [['alice', 'LDAP', ['devs']]],
        );
        // API tokens of LDAP users resolve through the realm's lookup (no password).
        assert.deepEqual((await LdapRealm.of(s.app.security).principal('alice'))?.roles, ['devs']);
        assert.equal(await LdapRealm.of(s.app.security).principal('*'), null);
      });

      it('maps static groups by memberUid and by a DN template', async () => {
        const { authPassword: _p, ...base } = serverBody();
        const posix = { ...base, groupObjectClass: 'posixGroup', groupMemberAttribute: 'memberUid', groupMemberFormat: '${username}' };
        assert.equal((await json('PUT', '/security/ldap/corp', posix)).status, 204);
        assert.deepEqual((await principal(alice))?.roles, ['builders']);
        assert.equal(await read(alice, 'ldap-other'), 200);
        assert.equal(await read(alice, 'ldap-ok'), 403);
        const template = { ...base, groupMemberFormat: `uid=\${username},ou=people,${SUFFIX}` };
        assert.equal((await json('PUT', '/security/ldap/corp', template)).status, 204);
        assert.deepEqual((await principal(rob))?.roles, ['devs']);
        assert.deepEqual((await principal(alice))?.roles, ['devs']);
        // Groups need not be roles.
        assert.equal((await json('PUT', '/security/ldap/corp', { ...base, ldapGroupsAsRoles: false })).status, 204);
        assert.deepEqual((await principal(alice))?.roles, []);
        assert.equal(await read(alice, 'ldap-ok'), 403);
      });

      it('maps dynamic groups from memberOf', { skip: !Slapd.hasMemberOf() && 'slapd has no memberof overlay' }, async () => {
        const { authPassword: _p, ...base } = serverBody();
        assert.equal((await json('PUT', '/security/ldap/corp', { ...base, groupType: 'dynamic', groupObjectClass: '', groupMemberAttribute: '' })).status, 204);
        const got = (await (await json('GET', '/security/ldap/corp')).json()) as Record<string, unknown>;
        assert.equal(got.groupType, 'dynamic');
        assert.deepEqual((await principal(bob))?.roles, ['ops']);
        assert.deepEqual((await principal(rob))?.roles, ['devs']);
        assert.equal(await read(alice, 'ldap-ok'), 200);
        assert.equal(await read(alice, 'ldap-other'), 403);
      });

      it('checks passwords against a password attribute instead of binding', async () => {
        const { authPassword: _p, ...base } = serverBody();
        assert.equal((await json('PUT', '/security/ldap/corp', { ...base, userPasswordAttribute: 'userPassword' })).status, 204);
        assert.equal(await read(alice, 'ldap-ok'), 200);
        assert.equal(await read({ uid: 'alice', password: 'wrong' }, 'ldap-ok'), 401);
        assert.equal((await json('PUT', '/security/ldap/corp', base)).status, 204);
      });

      it('slapd stopped: LDAP users refused promptly, local admin unaffected; back: LDAP works again', async () => {
        assert.equal(await read(alice, 'ldap-ok'), 200);
        // A cached login would outlive the outage; start from an empty cache.
        assert.equal((await json('POST', '/security/ldap/clear-cache')).status, 204);
        await slapd.stop();
        try {
          for (let i = 0; i < 3; i++) {
            const t0 = Date.now();
            assert.equal(await read(alice, 'ldap-ok'), 401);
            const took = Date.now() - t0;
            assert.ok(took < 3000, `refused in ${took} ms (timeout 1 s)`);
          }
          const t1 = Date.now();
          assert.equal((await json('GET', '/security/ldap')).status, 200, 'the local admin still works');
          assert.equal((await s.fetch('/repository/ldap-other/hello.txt')).status, 200);
          assert.ok(Date.now() - t1 < 1000);
          const verify = await json('POST', '/security/ldap/verify-connection', serverBody());
          assert.equal(verify.status, 400);
        } finally {
          await slapd.start();
        }
        // Back without restarting Stowage: the circuit lets a try through after the retry delay (1 s).
        const deadline = Date.now() + 10_000;
        let status = 0;
        while (Date.now() < deadline) {
          status = await read(alice, 'ldap-ok');
          if (status === 200) break;
          await sleep(200);
        }
        assert.equal(status, 200, 'LDAP login works again once slapd is back');
      });

      it('a server that accepts connections and never answers costs one timeout, then is skipped', async () => {
        const hole = await blackHole();
        try {
          const hung = serverBody({ name: 'hung', port: hole.port, connectionRetryDelaySeconds: 60 });
          assert.equal((await json('POST', '/security/ldap', hung)).status, 201);
          assert.equal((await json('POST', '/security/ldap/change-order', ['hung', 'corp'])).status, 204);
          const order = ((await (await json('GET', '/security/ldap')).json()) as Array<{ name: string; order: number }>).map((x) => [x.name, x.order]);
          assert.deepEqual(order, [
            ['hung', 1],
            ['corp', 2],
          ]);
          const t0 = Date.now();
          assert.equal(await read(bob, 'ldap-other'), 200, 'the second server answers');
          const first = Date.now() - t0;
          assert.ok(first >= 900 && first < 3000, `first login waited for the 1 s timeout: ${first} ms`);
          const t1 = Date.now();
          assert.equal(await read(carol, 'ldap-other'), 200);
          const second = Date.now() - t1;
          assert.ok(second < 800, `the hung server is skipped now: ${second} ms`);
          const tv = Date.now();
          const verify = await json('POST', '/security/ldap/verify-connection', hung);
          assert.equal(verify.status, 400);
          assert.ok(Date.now() - tv < 3000);
          assert.equal((await json('DELETE', '/security/ldap/hung')).status, 204);
        } finally {
          await hole.close();
        }
      });

      it('tries servers in order: the first down, the second answers', async () => {
        const closed = await freePort();
        assert.equal((await json('POST', '/security/ldap', serverBody({ name: 'down', port: closed }))).status, 201);
        assert.equal((await json('POST', '/security/ldap/change-order', ['down'])).status, 204);
        const names = ((await (await json('GET', '/security/ldap')).json()) as Array<{ name: string }>).map((x) => x.name);
        assert.deepEqual(names, ['down', 'corp']);
        assert.equal((await json('POST', '/security/ldap/change-order', ['nope'])).status, 400);
        const t0 = Date.now();
        assert.equal(await read(alice, 'ldap-ok'), 200);
        assert.ok(Date.now() - t0 < 3000);
        assert.equal(await read({ uid: 'alice', password: 'wrong' }, 'ldap-ok'), 401);
      });

      it('deleting the servers ends LDAP logins; every change is audited without secrets', async () => {
        assert.equal((await json('DELETE', '/security/ldap/down')).status, 204);
        assert.equal((await json('DELETE', '/security/ldap/corp')).status, 204);
        assert.equal((await json('DELETE', '/security/ldap/corp')).status, 404);
        assert.deepEqual(await (await json('GET', '/security/ldap')).json(), []);
        assert.equal(await read(alice, 'ldap-ok'), 401, 'no cached login survives the deletion');
        assert.equal((await s.fetch('/repository/ldap-ok/hello.txt')).status, 200, 'admin unaffected');

        const events = await s.app.db('audit_events').where({ domain: 'security.ldap' }).orderBy('id');
        const types = new Set(events.map((e) => String(e.type)));
        for (const t of ['created', 'updated', 'deleted', 'order-changed', 'cache-cleared']) assert.ok(types.has(t), `audited: ${t}`);
        const created = events.find((e) => e.type === 'created' && e.context === 'corp');
        assert.ok(created);
        assert.equal(String(created.initiator), 'admin');
        const text = JSON.stringify(events);
        assert.ok(!text.includes(SERVICE_PASSWORD) && !text.includes('enc:v1:') && !text.includes('nope'), 'no passwords in the audit log');
        const updated = events.find((e) => e.type === 'updated');
        assert.ok(Array.isArray(JSON.parse(String(updated.attributes)).changed));
      });
    });
  }
});
