/**
 * npm hosted repositories with the real npm CLI (empty cache each run, a temp .npmrc): login,
 * whoami, tokens, publish (scoped and unscoped), install, dist-tags, deprecate, unpublish, the
 * write policy, integrity checks, permissions; and the wire details npm relies on (abbreviated
 * documents, ETag/304, tarball URLs). Runs on SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, type Dirent } from 'node:fs';
import path from 'node:path';
import { ADMIN, ADMIN_PASSWORD, DATABASES, basic, spawnServer, startServer, type TestServer } from '../helpers/stowage.js';
import { NpmClient } from '../helpers/npm-cli.js';
import { SERVICE_DN, SERVICE_PASSWORD, SUFFIX, Slapd, user as ldapUser } from '../helpers/slapd.js';
import { integrityOf, packageTarball, publish, publishBody, publishMany } from '../helpers/npm-gen.js';

const API = '/service/rest/v1';

for (const db of DATABASES) {
  describe(`npm hosted (${db})`, () => {
    let s: TestServer;
    let reg: string;
    let npm: NpmClient;
    let token = '';

    before(async () => {
      s = await startServer({ db });
      const r = await s.fetch(`${API}/repositories/npm/hosted`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'npm-hosted', online: true, storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW_ONCE' } }),
      });
      assert.equal(r.status, 201, await r.text());
      reg = `${s.url}/repository/npm-hosted/`;
      npm = new NpmClient(reg);
    });
    after(async () => {
      npm?.cleanup();
      await s?.stop();
    });

    it('npm login (legacy flow after the web login 404s), whoami, token create/list/revoke', async () => {
      const bad = await npm.run(['login'], { input: ['admin', 'wrong-password'] });
      assert.notEqual(bad.code, 0, bad.all);
      assert.doesNotMatch(readFileSync(npm.npmrc, 'utf8'), /_authToken/);

      const r = await npm.run(['login'], { input: ['admin', ADMIN_PASSWORD] });
      assert.equal(r.code, 0, r.all);
      assert.match(r.all, /Logged in on/);
      const m = /:_authToken=(\S+)/.exec(readFileSync(npm.npmrc, 'utf8'));
      assert.ok(m, 'npm stored a token');
      token = m[1];
      const who = await npm.run(['whoami']);
      assert.equal(who.code, 0, who.all);
      assert.equal(who.stdout.trim(), 'admin');

      const created = await npm.run(['token', 'create', '--password', ADMIN_PASSWORD]);
      assert.equal(created.code, 0, created.all);
      const extra = /Created token (\S+)/.exec(created.stdout)![1];
      // The new token works on its own, as Bearer (what .npmrc sends).
      const other = new NpmClient(reg, { token: extra });
      assert.equal((await other.run(['whoami'])).stdout.trim(), 'admin');
      const wrongPw = await npm.run(['token', 'create', '--password', 'nope']);
      assert.notEqual(wrongPw.code, 0);

      const list = await npm.run(['token', 'list', '--json']);
      assert.equal(list.code, 0, list.all);
      const tokens = JSON.parse(list.stdout) as Array<{ key: string; readonly: boolean }>;
      assert.equal(tokens.length, 2);
      // Stored hashed: the database holds no secret.
      const rows = await s.app.db('user_tokens').where({ kind: 'npm' });
      assert.equal(rows.length, 2);
      assert.ok(rows.every((row) => row.token_hash !== extra && row.token_hash !== token));

      const mine = await s.app.tokens.verify(extra);
      const rm = await npm.run(['token', 'revoke', mine!.tokenId!]);
      assert.equal(rm.code, 0, rm.all);
      assert.match(rm.stdout, /Removed 1 token/);
      const gone = await other.run(['whoami']);
      assert.notEqual(gone.code, 0);
      assert.match(gone.all, /401/);
      other.cleanup();
      assert.equal((await npm.run(['whoami'])).stdout.trim(), 'admin');

      // The realm is Nexus's `NpmToken`: listed, and switched off it refuses npm tokens (not API tokens).
      const realms = (await (await s.fetch(`${API}/security/realms/available`)).json()) as Array<{ id: string; name: string }>;
      assert.ok(realms.some((r) => r.id === 'NpmToken' && r.name === 'npm Bearer Token Realm'));
      const active = (await (await s.fetch(`${API}/security/realms/active`)).json()) as string[];
      const put = (ids: string[]) => s.fetch(`${API}/security/realms/active`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(ids) });
      assert.equal((await put(active.filter((id) => id !== 'NpmToken'))).status, 204);
      assert.equal((await s.fetch('/repository/npm-hosted/-/whoami', { auth: `Bearer ${token}` })).status, 401);
      assert.equal((await put(active)).status, 204);
      assert.equal((await s.fetch('/repository/npm-hosted/-/whoami', { auth: `Bearer ${token}` })).status, 200);

      // npm logout revokes the token it held.
      const third = new NpmClient(reg);
      assert.equal((await third.run(['login'], { input: ['admin', ADMIN_PASSWORD] })).code, 0);
      const held = /:_authToken=(\S+)/.exec(readFileSync(third.npmrc, 'utf8'))![1];
      assert.ok(await s.app.tokens.verify(held));
      const out = await third.run(['logout']);
      assert.equal(out.code, 0, out.all);
      assert.equal(await s.app.tokens.verify(held), null);
      third.cleanup();
    });

    it('publishes scoped and unscoped packages; npm install gets them with an empty cache', async () => {
      for (const name of ['@corp/hello', 'plain-pkg']) {
        const dir = npm.project({ name, version: '1.0.0', description: `${name} here`, main: 'index.js', license: 'MIT' }, { 'index.js': `module.exports = '${name}';\n` });
        const r = await npm.run(['publish'], { cwd: dir });
        assert.equal(r.code, 0, r.all);
      }
      const app = npm.project({ name: 'consumer', version: '1.0.0', private: true, dependencies: { '@corp/hello': '^1.0.0', 'plain-pkg': '1.0.0' } });
      const r = await npm.run(['install', '--no-audit'], { cwd: app });
      assert.equal(r.code, 0, r.all);
      assert.equal(readFileSync(path.join(app, 'node_modules/@corp/hello/index.js'), 'utf8'), "module.exports = '@corp/hello';\n");
      const lock = JSON.parse(readFileSync(path.join(app, 'package-lock.json'), 'utf8'));
      assert.equal(lock.packages['node_modules/@corp/hello'].resolved, `${reg}@corp/hello/-/hello-1.0.0.tgz`);

      // Components in the core tables: Nexus search finds them.
      const found = await (await s.fetch(`${API}/search?format=npm&name=hello`)).json();
      assert.equal(found.items.length, 1);
      assert.deepEqual([found.items[0].group, found.items[0].name, found.items[0].version], ['corp', 'hello', '1.0.0']);
      const npmSearch = await (await s.fetch('/repository/npm-hosted/-/v1/search?text=plain&size=5')).json();
      assert.deepEqual(
        npmSearch.objects.map((o: { package: { name: string } }) => o.package.name),
        ['plain-pkg'],
      );
    });

    it('serves full and abbreviated documents with ETag/304 and tarball URLs of the addressed host', async () => {
      const full = await s.fetch('/repository/npm-hosted/@corp%2fhello', { headers: { Accept: 'application/json' } });
      assert.equal(full.status, 200);
      const etag = full.headers.get('etag')!;
      const doc = await full.json();
      assert.ok(doc.time.created && doc.time.modified && doc.time['1.0.0']);
      assert.equal(doc.versions['1.0.0'].dist.tarball, `${s.url}/repository/npm-hosted/@corp/hello/-/hello-1.0.0.tgz`);
      const again = await s.fetch('/repository/npm-hosted/@corp%2fhello', { headers: { Accept: 'application/json', 'If-None-Match': etag } });
      assert.equal(again.status, 304);
      const corgi = await s.fetch('/repository/npm-hosted/@corp%2Fhello', { headers: { Accept: 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*' } });
      assert.equal(corgi.headers.get('content-type'), 'application/vnd.npm.install-v1+json');
      const c = await corgi.json();
      assert.equal(c.modified, doc.time.modified);
      assert.equal(c.versions['1.0.0'].description, undefined);
      assert.ok(c.versions['1.0.0'].dist.integrity);
      // Another host name (as behind a proxy) is reflected in the tarball URL.
      const viaHost = await s.fetch('/repository/npm-hosted/plain-pkg', { headers: { 'X-Forwarded-Host': 'npm.example.org', 'X-Forwarded-Proto': 'https' } });
      const trusted = (await viaHost.json()).versions['1.0.0'].dist.tarball as string;
      assert.match(trusted, /\/repository\/npm-hosted\/plain-pkg\/-\/plain-pkg-1\.0\.0\.tgz$/);
      const tgz = await s.fetch('/repository/npm-hosted/plain-pkg/-/plain-pkg-1.0.0.tgz');
      assert.equal(tgz.status, 200);
      const plain = await (await s.fetch('/repository/npm-hosted/plain-pkg')).json();
      assert.equal(integrityOf(Buffer.from(await tgz.arrayBuffer())).integrity, plain.versions['1.0.0'].dist.integrity);
      const byTag = await (await s.fetch('/repository/npm-hosted/plain-pkg/latest')).json();
      assert.equal(byTag.version, '1.0.0');
      assert.equal(byTag.dist.tarball, `${s.url}/repository/npm-hosted/plain-pkg/-/plain-pkg-1.0.0.tgz`);
      assert.equal((await s.fetch('/repository/npm-hosted/plain-pkg/9.9.9')).status, 404);
      const missing = await s.fetch('/repository/npm-hosted/no-such-pkg');
      assert.equal(missing.status, 404);
      assert.equal((await missing.json()).error.length > 0, true);
      assert.equal((await s.fetch('/repository/npm-hosted/-/ping')).status, 200);
    });

    it('republishing a version under ALLOW_ONCE is refused with npm showing the message', async () => {
      const dir = npm.project({ name: 'plain-pkg', version: '1.0.0', main: 'index.js' }, { 'index.js': 'changed\n' });
      const r = await npm.run(['publish'], { cwd: dir });
      assert.notEqual(r.code, 0);
      assert.match(r.all, /cannot publish over the previously published versions: 1\.0\.0/);
    });

    it('write policies ALLOW (republish replaces) and DENY (nothing), and npm ping', async () => {
      for (const [name, writePolicy] of [
        ['npm-allow', 'ALLOW'],
        ['npm-deny', 'DENY'],
      ]) {
        const r = await s.fetch(`${API}/repositories/npm/hosted`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ name, online: true, storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy } }),
        });
        assert.equal(r.status, 201, await r.text());
      }
      const allow = `${s.url}/repository/npm-allow/`;
      assert.equal((await publish(allow, { name: 'again', version: '1.0.0', files: { 'index.js': 'one\n' } }, ADMIN)).status, 200);
      assert.equal((await publish(allow, { name: 'again', version: '1.0.0', files: { 'index.js': 'two\n' } }, ADMIN)).status, 200);
      const doc = await (await s.fetch('/repository/npm-allow/again')).json();
      const tgz = Buffer.from(await (await s.fetch('/repository/npm-allow/again/-/again-1.0.0.tgz')).arrayBuffer());
      assert.equal(integrityOf(tgz).integrity, doc.versions['1.0.0'].dist.integrity);
      assert.equal(integrityOf(tgz).integrity, integrityOf(packageTarball({ name: 'again', version: '1.0.0', files: { 'index.js': 'two\n' } }).tarball).integrity);
      const denied = await publish(`${s.url}/repository/npm-deny/`, { name: 'nope', version: '1.0.0' }, ADMIN);
      assert.equal(denied.status, 403);
      assert.match((await denied.json()).error, /read only/);
      assert.equal((await s.fetch('/repository/npm-deny/nope')).status, 404);
      const ping = await npm.run(['ping', '--loglevel', 'notice']);
      assert.equal(ping.code, 0, ping.all);
      assert.match(ping.all, /PONG/);
    });

    it('dist-tags: add, list, remove; publish --tag', async () => {
      const dir = npm.project({ name: 'plain-pkg', version: '2.0.0-beta.1', main: 'index.js' }, { 'index.js': 'beta\n' });
      assert.equal((await npm.run(['publish', '--tag', 'beta'], { cwd: dir })).code, 0);
      let ls = await npm.run(['dist-tag', 'ls', 'plain-pkg']);
      assert.match(ls.stdout, /beta: 2\.0\.0-beta\.1/);
      assert.match(ls.stdout, /latest: 1\.0\.0/);
      assert.equal((await npm.run(['dist-tag', 'add', 'plain-pkg@1.0.0', 'stable'])).code, 0);
      assert.equal((await npm.run(['dist-tag', 'rm', 'plain-pkg', 'beta'])).code, 0);
      ls = await npm.run(['dist-tag', 'ls', 'plain-pkg']);
      assert.doesNotMatch(ls.stdout, /beta:/);
      assert.match(ls.stdout, /stable: 1\.0\.0/);
      const bad = await npm.run(['dist-tag', 'add', 'plain-pkg@9.9.9', 'nope']);
      assert.notEqual(bad.code, 0);
      assert.deepEqual(await (await s.fetch('/repository/npm-hosted/-/package/plain-pkg/dist-tags')).json(), { latest: '1.0.0', stable: '1.0.0' });
      // Mirrored in the core tags table.
      const repo = await s.app.repositories.find('npm-hosted');
      assert.deepEqual(
        (await s.app.content.getTags(repo!.id, 'plain-pkg')).map((t) => `${t.name}=${t.target}`),
        ['latest=1.0.0', 'stable=1.0.0'],
      );
    });

    it('deprecate shows in npm view and as a warning on install; undeprecate removes it', async () => {
      const r = await npm.run(['deprecate', 'plain-pkg@1.0.0', 'use 2.x instead']);
      assert.equal(r.code, 0, r.all);
      const view = await npm.run(['view', 'plain-pkg@1.0.0', 'deprecated']);
      assert.equal(view.stdout.trim(), 'use 2.x instead');
      const app = npm.project({ name: 'dep-consumer', version: '1.0.0', private: true });
      const inst = await npm.run(['install', '--no-audit', 'plain-pkg@1.0.0', '--loglevel', 'warn'], { cwd: app });
      assert.equal(inst.code, 0, inst.all);
      assert.match(inst.all, /deprecated plain-pkg@1\.0\.0: use 2\.x instead/);
      assert.equal((await npm.run(['deprecate', 'plain-pkg@1.0.0', ''])).code, 0);
      assert.equal((await npm.run(['view', 'plain-pkg@1.0.0', 'deprecated'])).stdout.trim(), '');
    });

    it('unpublish one version, then the whole package', async () => {
      const r = await npm.run(['unpublish', 'plain-pkg@2.0.0-beta.1']);
      assert.equal(r.code, 0, r.all);
      const versions = await npm.run(['view', 'plain-pkg', 'versions', '--json']);
      assert.deepEqual([JSON.parse(versions.stdout)].flat(), ['1.0.0']);
      assert.equal((await s.fetch('/repository/npm-hosted/plain-pkg/-/plain-pkg-2.0.0-beta.1.tgz')).status, 404);
      const all = await npm.run(['unpublish', 'plain-pkg', '--force']);
      assert.equal(all.code, 0, all.all);
      assert.equal((await s.fetch('/repository/npm-hosted/plain-pkg')).status, 404);
      assert.equal((await s.fetch('/repository/npm-hosted/plain-pkg/-/plain-pkg-1.0.0.tgz')).status, 404);
      const repo = await s.app.repositories.find('npm-hosted');
      assert.deepEqual(await s.app.content.getTags(repo!.id, 'plain-pkg'), []);
      const comps = await (await s.fetch(`${API}/search?format=npm&name=plain-pkg`)).json();
      assert.equal(comps.items.length, 0);
    });

    it('a tarball that does not match dist.integrity or dist.shasum is refused and nothing is stored', async () => {
      const repo = await s.app.repositories.find('npm-hosted');
      const assets = async () => Number((await s.app.db('assets').where({ repository_id: repo!.id }).count({ n: '*' }))[0].n);
      const blobs = async () => Number((await s.app.db('blobs').count({ n: '*' }))[0].n);
      const storedFiles = () =>
        (readdirSync(path.join(s.dataDir, 'blobs'), { recursive: true, withFileTypes: true }) as Dirent[]).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
      const [a0, b0, files0] = [await assets(), await blobs(), storedFiles()];
      const other = packageTarball({ name: 'evil-pkg', version: '9.9.9' }).tarball;
      const good = packageTarball({ name: 'evil-pkg', version: '1.0.0' }).tarball;
      const r1 = await publish(reg, { name: 'evil-pkg', version: '1.0.0' }, ADMIN, { tarball: good, integrity: integrityOf(other).integrity });
      assert.equal(r1.status, 400);
      assert.match((await r1.json()).error, /integrity mismatch/);
      const r2 = await publish(reg, { name: 'evil-pkg', version: '1.0.0' }, ADMIN, { tarball: good, shasum: integrityOf(other).shasum });
      assert.equal(r2.status, 400);
      assert.match((await r2.json()).error, /shasum mismatch/);
      const body = publishBody({ name: 'evil-pkg', version: '1.0.0' }, reg) as { _attachments: Record<string, { length: number }> };
      Object.values(body._attachments)[0].length = 3;
      const r3 = await s.fetch('/repository/npm-hosted/evil-pkg', { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(r3.status, 400);
      const r4 = await s.fetch('/repository/npm-hosted/evil-pkg', { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: '{"name":' });
      assert.equal(r4.status, 400);
      // A body cut off inside the tarball: the bytes already streamed to the store are removed.
      const whole = JSON.stringify(publishBody({ name: 'evil-pkg', version: '1.0.0', files: { 'big.bin': randomBytes(300_000).toString('base64') } }, reg));
      const cut = whole.slice(0, whole.indexOf('"data":"') + 50_000);
      const r5 = await s.fetch('/repository/npm-hosted/evil-pkg', { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: cut });
      assert.equal(r5.status, 400);
      assert.match((await r5.json()).error, /ends inside the tarball/);
      assert.equal(await assets(), a0);
      assert.equal(await blobs(), b0);
      assert.deepEqual(storedFiles().sort(), files0.sort(), 'no bytes left in the blob store');
      assert.equal((await s.fetch('/repository/npm-hosted/evil-pkg')).status, 404);
    });

    it('concurrent publishes of one package lose no version', async () => {
      await publishMany(reg, 'busy-pkg', 24, ADMIN, 6);
      const doc = await (await s.fetch('/repository/npm-hosted/busy-pkg')).json();
      assert.equal(Object.keys(doc.versions).length, 24);
      const found = await (await s.fetch(`${API}/search?format=npm&name=busy-pkg`)).json();
      assert.equal(found.items.length, 24);
      // The same version twice at once: exactly one wins.
      const both = await Promise.all([0, 1].map(() => publish(reg, { name: 'busy-pkg', version: '9.0.0' }, ADMIN)));
      assert.deepEqual(both.map((r) => r.status).sort(), [200, 403]);
      if (db !== 'postgres') return;
      // Two nodes (processes) on one database and blob store: the packument check in the
      // transaction decides (without it, about a third of these versions were lost).
      const node2 = await spawnServer({ dbUrl: s.dbUrl, dataDir: s.dataDir });
      try {
        const reg2 = `${node2.url}/repository/npm-hosted/`;
        await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            (async () => {
              const r = await publish(i % 2 ? reg2 : reg, { name: 'two-nodes', version: `2.0.${i}` }, ADMIN);
              assert.equal(r.status, 200, await r.text());
            })(),
          ),
        );
        const doc2 = await (await s.fetch('/repository/npm-hosted/two-nodes')).json();
        assert.equal(Object.keys(doc2.versions).length, 40);
      } finally {
        await node2.stop();
      }
    });

    it('a read-only user can install but not publish: 403 with the message npm prints', async () => {
      let r = await s.fetch(`${API}/security/roles`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          id: 'npm-reader',
          name: 'npm-reader',
          privileges: ['nx-repository-view-npm-npm-hosted-read', 'nx-repository-view-npm-npm-hosted-browse'],
          roles: [],
        }),
      });
      assert.ok(r.ok, await r.text());
      r = await s.fetch(`${API}/security/users`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ userId: 'reader', firstName: 'R', lastName: 'R', emailAddress: 'r@example.org', password: 'reader-pw', status: 'active', roles: ['npm-reader'] }),
      });
      assert.ok(r.ok, await r.text());
      const reader = new NpmClient(reg);
      const login = await reader.run(['login'], { input: ['reader', 'reader-pw'] });
      assert.equal(login.code, 0, login.all);
      const app = reader.project({ name: 'reader-app', version: '1.0.0', private: true });
      const inst = await reader.run(['install', '--no-audit', '@corp/hello'], { cwd: app });
      assert.equal(inst.code, 0, inst.all);
      const dir = reader.project({ name: 'reader-pkg', version: '1.0.0', main: 'index.js' }, { 'index.js': '\n' });
      const pub = await reader.run(['publish'], { cwd: dir });
      assert.notEqual(pub.code, 0);
      assert.match(pub.all, /403/);
      assert.match(pub.all, /User 'reader' is not permitted to add in repository 'npm-hosted'/);
      reader.cleanup();
      assert.equal((await s.fetch('/repository/npm-hosted/reader-pkg')).status, 404);
      // Basic credentials work too (`_auth` in .npmrc).
      const basicAuth = await s.fetch('/repository/npm-hosted/-/whoami', { auth: basic('reader', 'reader-pw') });
      assert.deepEqual(await basicAuth.json(), { username: 'reader' });
      assert.equal((await s.fetch('/repository/npm-hosted/-/whoami', { auth: null })).status, 401);
    });
  });
}

describe('npm login against LDAP (sqlite)', () => {
  let slapd: Slapd;
  let s: TestServer;
  let npm: NpmClient;

  before(async () => {
    slapd = await Slapd.create();
    s = await startServer({ db: 'sqlite' });
    const active = await s.app.security.activeRealmIds();
    if (!active.includes('LdapRealm')) await s.app.security.setActiveRealmIds([...active, 'LdapRealm']);
    const post = async (p: string, body: unknown) => {
      const r = await s.fetch(`${API}${p}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      assert.ok(r.ok, `${p}: ${r.status} ${await r.text()}`);
    };
    await post('/security/ldap', {
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
    });
    // The LDAP group `devs` is a role that may publish to the repository.
    await post('/security/roles', { id: 'devs', name: 'devs', privileges: ['nx-repository-view-npm-npm-ldap-*'], roles: [] });
    await post('/repositories/npm/hosted', { name: 'npm-ldap', online: true, storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW_ONCE' } });
    npm = new NpmClient(`${s.url}/repository/npm-ldap/`);
  });
  after(async () => {
    npm?.cleanup();
    await s?.stop();
    await slapd?.stop();
  });

  it('an LDAP user logs in with npm, gets a token and publishes with it', async () => {
    const alice = ldapUser('alice');
    const r = await npm.run(['login'], { input: [alice.uid, alice.password] });
    assert.equal(r.code, 0, r.all);
    assert.equal((await npm.run(['whoami'])).stdout.trim(), 'alice');
    const dir = npm.project({ name: 'ldap-pkg', version: '1.0.0', main: 'index.js' }, { 'index.js': '\n' });
    const pub = await npm.run(['publish'], { cwd: dir });
    assert.equal(pub.code, 0, pub.all);
    const rows = await s.app.db('user_tokens').where({ kind: 'npm', user_id: 'alice' });
    assert.equal(rows.length, 1);
    assert.equal(rows[0].user_source, 'LDAP');
    const bob = new NpmClient(`${s.url}/repository/npm-ldap/`);
    const wrong = await bob.run(['login'], { input: ['bob', 'not-his-password'] });
    assert.notEqual(wrong.code, 0);
    bob.cleanup();
  });
});
