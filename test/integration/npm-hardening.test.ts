/**
 * npm input an attacker or a broken client sends (issue 11, items 1, 8, 17): prototype keys
 * (`__proto__`, `constructor`, `prototype`) in every JSON body the npm endpoints accept and in an
 * upstream's packument never reach Object.prototype and are refused with a 400; publishes of
 * non-semver versions, of a dist-tag naming a version the document lacks and of an HTML page as
 * the tarball are refused; `npm search` of npm 11 gets every field it reads.
 * Runs on SQLite and PostgreSQL.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ADMIN, ADMIN_PASSWORD, DATABASES, basic, startServer, type TestServer } from '../helpers/stowage.js';
import { NpmClient } from '../helpers/npm-cli.js';
import { integrityOf, packageTarball, publish, publishBody } from '../helpers/npm-gen.js';
import { fakeUpstream } from '../helpers/fake-upstream.js';

const API = '/service/rest/v1';
const PROTO_BEFORE = Object.getOwnPropertyNames(Object.prototype).sort();

/** Object.prototype of this (the server's) process is as it was. */
function assertPrototypeClean(): void {
  assert.equal(({} as Record<string, unknown>).deprecated, undefined, 'Object.prototype.deprecated was written');
  assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), PROTO_BEFORE);
}

/** Undoes a pollution so one failing test does not take the rest of the file with it. */
function scrubPrototype(): void {
  for (const k of Object.getOwnPropertyNames(Object.prototype)) if (!PROTO_BEFORE.includes(k)) delete (Object.prototype as Record<string, unknown>)[k];
}

for (const db of DATABASES) {
  describe(`npm hardening (${db})`, () => {
    let s: TestServer;
    let reg: string;
    let up: Awaited<ReturnType<typeof fakeUpstream>>;

    const create = async (type: string, body: Record<string, unknown>) => {
      const r = await s.fetch(`${API}/repositories/npm/${type}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ online: true, ...body, storage: { blobStoreName: 'default', strictContentTypeValidation: true, ...((body.storage as object) ?? {}) } }),
      });
      assert.equal(r.status, 201, await r.text());
    };
    const send = (method: string, p: string, body: string, auth: string | null = ADMIN) =>
      s.fetch(`/repository/npm-hosted/${p}`, { method, headers: { 'Content-Type': 'application/json' }, body, auth });
    const expect400 = async (r: Response, what: string, message?: RegExp) => {
      const text = await r.text();
      assert.equal(r.status, 400, `${what}: ${r.status} ${text}`);
      const err = JSON.parse(text).error as string;
      assert.ok(err.length > 0, what);
      if (message) assert.match(err, message, what);
      assertPrototypeClean();
    };

    before(async () => {
      s = await startServer({ db });
      reg = `${s.url}/repository/npm-hosted/`;
      await create('hosted', { name: 'npm-hosted', storage: { strictContentTypeValidation: true, writePolicy: 'ALLOW_ONCE' } });
      await create('hosted', { name: 'npm-other', storage: { strictContentTypeValidation: true, writePolicy: 'ALLOW_ONCE' } });
      await create('hosted', { name: 'npm-lax', storage: { strictContentTypeValidation: false, writePolicy: 'ALLOW_ONCE' } });
      assert.equal((await publish(reg, { name: 'victim', version: '1.0.0' }, ADMIN)).status, 200);
      assert.equal((await publish(`${s.url}/repository/npm-other/`, { name: 'bystander', version: '1.0.0' }, ADMIN)).status, 200);

      // An upstream whose packument carries prototype keys in every map.
      const tgz = packageTarball({ name: 'evil-up', version: '1.0.0' }).tarball;
      const sums = integrityOf(tgz);
      up = await fakeUpstream((p) => {
        if (p === '/evil-up/-/evil-up-1.0.0.tgz') return { status: 200, type: 'application/octet-stream', body: tgz };
        if (p !== '/evil-up') return null;
        const version = `{"name":"evil-up","version":"1.0.0","dist":{"tarball":"${up.url}/evil-up/-/evil-up-1.0.0.tgz","integrity":"${sums.integrity}","shasum":"${sums.shasum}"}}`;
        const body =
          `{"name":"evil-up","__proto__":{"deprecated":"x"},` +
          `"dist-tags":{"latest":"1.0.0","__proto__":{"deprecated":"x"},"constructor":"1.0.0","prototype":"1.0.0"},` +
          `"versions":{"1.0.0":${version},"__proto__":{"deprecated":"x"},"constructor":{"name":"evil-up","version":"constructor","deprecated":"x"},"prototype":{"deprecated":"x"}},` +
          `"time":{"created":"2020-01-01T00:00:00.000Z","modified":"2020-01-01T00:00:00.000Z","1.0.0":"2020-01-01T00:00:00.000Z","__proto__":{"deprecated":"x"},"constructor":"x"},` +
          `"users":{"__proto__":{"deprecated":"x"},"constructor":true}}`;
        return { status: 200, type: 'application/json', body };
      });
      await create('proxy', {
        name: 'npm-evil-proxy',
        proxy: { remoteUrl: up.url, contentMaxAge: 1440, metadataMaxAge: 1440 },
        negativeCache: { enabled: false, timeToLive: 1440 },
        httpClient: { blocked: false, autoBlock: false },
      });
      await create('group', { name: 'npm-evil-group', group: { memberNames: ['npm-other', 'npm-evil-proxy'] } });
    });
    // Each test starts from a clean Object.prototype, whatever an earlier one did to it.
    beforeEach(scrubPrototype);
    after(async () => {
      scrubPrototype();
      await s?.stop();
      await up?.close();
    });

    it('prototype keys in metadata updates (deprecate, unpublish) are a 400 and change nothing', async () => {
      // The issue's attacker: a user who may only publish to and edit this one repository.
      const post = async (p: string, body: unknown) => {
        const r = await s.fetch(`${API}${p}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
        assert.ok(r.ok, await r.text());
      };
      await post('/security/roles', {
        id: 'npm-editor',
        name: 'npm-editor',
        privileges: ['nx-repository-view-npm-npm-hosted-read', 'nx-repository-view-npm-npm-hosted-add', 'nx-repository-view-npm-npm-hosted-edit'],
        roles: [],
      });
      await post('/security/users', {
        userId: 'editor',
        firstName: 'E',
        lastName: 'E',
        emailAddress: 'e@example.org',
        password: 'editor-pw',
        status: 'active',
        roles: ['npm-editor'],
      });
      const issue = '{"name":"victim","versions":{"1.0.0":{},"__proto__":{"deprecated":"x"}}}';
      await expect400(await send('PUT', 'victim', issue, basic('editor', 'editor-pw')), 'the issue body from a user with edit on npm-hosted', /__proto__/);
      await expect400(await send('PUT', 'victim', issue), 'PUT <pkg> with versions.__proto__', /__proto__/);
      await expect400(await send('PUT', 'victim/-rev/1-abc', issue), 'PUT -rev with versions.__proto__', /__proto__/);
      // Every repository still answers (a polluted Object.prototype made every query fail).
      assert.equal((await s.fetch('/repository/npm-other/bystander')).status, 200);
      assert.equal((await s.fetch(`${API}/repositories`)).status, 200);
      for (const key of ['constructor', 'prototype']) {
        await expect400(await send('PUT', 'victim/-rev/1-abc', `{"name":"victim","versions":{"1.0.0":{},"${key}":{"deprecated":"x"}}}`), `versions.${key}`, new RegExp(key));
        await expect400(await send('PUT', 'victim', `{"name":"victim","versions":{"1.0.0":{}},"dist-tags":{"${key}":"1.0.0"}}`), `dist-tags.${key}`, new RegExp(key));
      }
      await expect400(await send('PUT', 'victim', '{"name":"victim","versions":{"1.0.0":{}},"dist-tags":{"__proto__":{"deprecated":"x"}}}'), 'dist-tags.__proto__');
      await expect400(await send('PUT', 'victim', '{"name":"victim","versions":{"1.0.0":{"deprecated":"no"}},"__proto__":{"deprecated":"x"}}'), 'top-level __proto__');

      const doc = await (await s.fetch('/repository/npm-hosted/victim')).json();
      assert.deepEqual(Object.keys(doc.versions), ['1.0.0']);
      assert.equal(doc.versions['1.0.0'].deprecated, undefined);
      assert.deepEqual(doc['dist-tags'], { latest: '1.0.0' });
    });

    it('prototype keys in publish bodies are a 400 and nothing is stored', async () => {
      const body = (name: string) => JSON.stringify(publishBody({ name, version: '1.0.0' }, reg));
      const inject: Array<[string, (b: string) => string]> = [
        ['versions.__proto__', (b) => b.replace('"versions":{', '"versions":{"__proto__":{"deprecated":"x"},')],
        ['versions.constructor', (b) => b.replace('"versions":{', '"versions":{"constructor":{"deprecated":"x"},')],
        ['dist-tags.__proto__', (b) => b.replace('"dist-tags":{', '"dist-tags":{"__proto__":{"deprecated":"x"},')],
        ['dist-tags.constructor', (b) => b.replace('"dist-tags":{', '"dist-tags":{"constructor":"1.0.0",')],
        ['_attachments.__proto__', (b) => b.replace('"_attachments":{', '"_attachments":{"__proto__":{"data":"eA=="},')],
        ['_attachments.prototype', (b) => b.replace('"_attachments":{', '"_attachments":{"prototype":{"data":"eA=="},')],
        ['time.constructor', (b) => b.replace('"versions":{', '"time":{"constructor":"x"},"versions":{')],
        ['users.__proto__', (b) => b.replace('"versions":{', '"users":{"__proto__":{"deprecated":"x"}},"versions":{')],
        ['top-level __proto__', (b) => b.replace('{', '{"__proto__":{"deprecated":"x"},')],
        ['manifest __proto__', (b) => b.replace('"_nodeVersion"', '"__proto__":{"deprecated":"x"},"_nodeVersion"')],
      ];
      for (const [what, f] of inject) {
        const name = `pp-${what.replace(/[^a-z]/g, '')}`;
        const b = f(body(name));
        assert.notEqual(b, body(name), what);
        await expect400(await send('PUT', name, b), what);
        assert.equal((await s.fetch(`/repository/npm-hosted/${name}`)).status, 404, what);
      }
      // Version `constructor`: refused as no version, not as "previously published".
      const r = await publish(reg, { name: 'victim', version: 'constructor' }, ADMIN);
      const text = await r.text();
      assert.equal(r.status, 400, text);
      assert.doesNotMatch(text, /previously published/);
      assert.match(JSON.parse(text).error, /"constructor" is not allowed|semantic version/);
      assertPrototypeClean();
    });

    it('dist-tag endpoints and lookups never answer a prototype member', async () => {
      for (const tag of ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__']) {
        const r = await s.fetch(`/repository/npm-hosted/-/package/victim/dist-tags/${tag}`);
        assert.equal(r.status, 404, `GET dist-tags/${tag}: ${r.status} ${await r.text()}`);
        const v = await s.fetch(`/repository/npm-hosted/victim/${tag}`);
        assert.equal(v.status, 404, `GET victim/${tag}: ${v.status}`);
      }
      for (const tag of ['constructor', 'prototype', '__proto__']) {
        await expect400(await send('PUT', `-/package/victim/dist-tags/${tag}`, '"1.0.0"'), `PUT dist-tags/${tag}`);
        await expect400(await send('DELETE', `-/package/victim/dist-tags/${tag}`, ''), `DELETE dist-tags/${tag}`);
      }
      await expect400(await send('PUT', '-/package/victim/dist-tags/beta', '"constructor"'), 'tag naming version constructor', /does not exist/);
      await expect400(await send('PUT', '-/package/victim/dist-tags/beta', '{"__proto__":{"deprecated":"x"}}'), 'dist-tag body with __proto__');
      const tags = await (await s.fetch('/repository/npm-hosted/-/package/victim/dist-tags')).json();
      assert.deepEqual(tags, { latest: '1.0.0' });
    });

    it('login, token create and audit bodies with __proto__: 400 (audit is forwarded unread), nothing polluted', async () => {
      await expect400(
        await send('PUT', '-/user/org.couchdb.user:admin', JSON.stringify({ name: 'admin', password: ADMIN_PASSWORD }).replace('{', '{"__proto__":{"deprecated":"x"},'), null),
        'login with __proto__',
      );
      await expect400(await send('POST', '-/npm/v1/tokens', `{"password":"${ADMIN_PASSWORD}","__proto__":{"deprecated":"x"}}`), 'token create with __proto__');
      const audit = await send('POST', '-/npm/v1/security/advisories/bulk', '{"__proto__":{"deprecated":"x"},"victim":["1.0.0"]}');
      assert.ok(audit.status < 500, `audit: ${audit.status}`);
      await audit.arrayBuffer();
      assertPrototypeClean();
    });

    it('after all that, every repository still answers and npm deprecate still works', async () => {
      assertPrototypeClean();
      assert.equal((await s.fetch('/repository/npm-other/bystander')).status, 200);
      assert.equal((await s.fetch(`${API}/repositories`)).status, 200);
      assert.equal((await s.fetch(`${API}/search?repository=npm-other`)).status, 200);
      const npm = new NpmClient(reg);
      try {
        assert.equal((await npm.run(['login'], { input: ['admin', ADMIN_PASSWORD] })).code, 0);
        const dep = await npm.run(['deprecate', 'victim@1.0.0', 'use something else']);
        assert.equal(dep.code, 0, dep.all);
        const doc = await (await s.fetch('/repository/npm-hosted/victim')).json();
        assert.equal(doc.versions['1.0.0'].deprecated, 'use something else');
        // npm prints the 400's message.
        const tag = await npm.run(['dist-tag', 'add', 'victim@1.0.0', 'constructor']);
        assert.notEqual(tag.code, 0);
        assert.match(tag.all, /400/);
        assert.match(tag.all, /invalid dist-tag name: constructor/);
      } finally {
        npm.cleanup();
      }
      assertPrototypeClean();
    });

    it('an upstream packument with prototype keys is served without them (proxy and group); npm installs from it', async () => {
      for (const repo of ['npm-evil-proxy', 'npm-evil-group']) {
        for (const accept of ['application/json', 'application/vnd.npm.install-v1+json']) {
          const r = await s.fetch(`/repository/${repo}/evil-up`, { headers: { Accept: accept } });
          const text = await r.text();
          assert.equal(r.status, 200, `${repo}: ${text}`);
          const doc = JSON.parse(text);
          assert.deepEqual(Object.keys(doc.versions), ['1.0.0'], `${repo} ${accept}`);
          assert.deepEqual(doc['dist-tags'], { latest: '1.0.0' }, `${repo} ${accept}`);
          assert.doesNotMatch(text, /"constructor"|"__proto__"|"prototype"/, `${repo} ${accept}`);
        }
        assert.equal((await s.fetch(`/repository/${repo}/evil-up/constructor`)).status, 404);
        assert.equal((await s.fetch(`/repository/${repo}/-/package/evil-up/dist-tags/constructor`)).status, 404);
      }
      assertPrototypeClean();
      const npm = new NpmClient(`${s.url}/repository/npm-evil-group/`, {
        lines: [`//127.0.0.1:${new URL(s.url).port}/repository/npm-evil-group/:_auth=${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`],
      });
      try {
        const app = npm.project({ name: 'consumer', version: '1.0.0', private: true, dependencies: { 'evil-up': '^1.0.0' } });
        const r = await npm.run(['install', '--no-audit'], { cwd: app });
        assert.equal(r.code, 0, r.all);
        assert.match(readFileSync(path.join(app, 'node_modules/evil-up/index.js'), 'utf8'), /evil-up@1\.0\.0/);
      } finally {
        npm.cleanup();
      }
      assertPrototypeClean();
    });

    it('publish refuses versions that are not semver, with the message npm prints', async () => {
      for (const version of ['1', 'latest', 'v1.0.0', '1..0', '.', '-', '01.0.0', '1.0.0 ', '=1.0.0']) {
        const r = await publish(reg, { name: 'badver', version }, ADMIN);
        const text = await r.text();
        assert.equal(r.status, 400, `${JSON.stringify(version)}: ${r.status} ${text}`);
        assert.match(JSON.parse(text).error, /is not a semantic version/, version);
      }
      assert.equal((await s.fetch('/repository/npm-hosted/badver')).status, 404);
      // Prereleases and build metadata are semver.
      assert.equal((await publish(reg, { name: 'goodver', version: '1.0.0-rc.1' }, ADMIN, { tag: 'next' })).status, 200);
      assert.equal((await publish(reg, { name: 'goodver', version: '1.0.0' }, ADMIN)).status, 200);
    });

    it('publish refuses dist-tags naming a version the document does not hold', async () => {
      for (const [tags, re] of [
        [{ latest: '9.9.9' }, /latest points at 9\.9\.9/],
        [{ latest: '1.0.0', beta: '2.0.0' }, /beta points at 2\.0\.0/],
      ] as const) {
        const body = publishBody({ name: 'tagged', version: '1.0.0' }, reg);
        body['dist-tags'] = tags;
        const r = await send('PUT', 'tagged', JSON.stringify(body));
        await expect400(r, JSON.stringify(tags), re);
        assert.equal((await s.fetch('/repository/npm-hosted/tagged')).status, 404);
      }
      // A tag naming an already published version is fine.
      assert.equal((await publish(reg, { name: 'tagged', version: '1.0.0' }, ADMIN)).status, 200);
      const body = publishBody({ name: 'tagged', version: '1.1.0' }, reg);
      body['dist-tags'] = { next: '1.1.0', stable: '1.0.0' };
      const r = await send('PUT', 'tagged', JSON.stringify(body));
      assert.equal(r.status, 200, await r.text());
      const doc = await (await s.fetch('/repository/npm-hosted/tagged')).json();
      assert.deepEqual(doc['dist-tags'], { latest: '1.0.0', next: '1.1.0', stable: '1.0.0' });
    });

    it('publish refuses an HTML page as the tarball under strictContentTypeValidation', async () => {
      const page = Buffer.from('<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Portal</body></html>\n');
      const r = await publish(reg, { name: 'htmlpkg', version: '1.0.0' }, ADMIN, { tarball: page });
      await expect400(r, 'html tarball', /not a gzip'd tar archive.*text\/html.*application\/gzip/);
      assert.equal((await s.fetch('/repository/npm-hosted/htmlpkg')).status, 404);
      assert.equal((await s.fetch('/repository/npm-hosted/htmlpkg/-/htmlpkg-1.0.0.tgz')).status, 404);
      // Without strict validation the repository takes what it is given, as Nexus does.
      const lax = await publish(`${s.url}/repository/npm-lax/`, { name: 'htmlpkg', version: '1.0.0' }, ADMIN, { tarball: page });
      assert.equal(lax.status, 200, await lax.text());
    });

    it('npm search (npm 11) lists packages with maintainers, publisher and keywords', async () => {
      const npm = new NpmClient(reg);
      try {
        assert.equal((await npm.run(['login'], { input: ['admin', ADMIN_PASSWORD] })).code, 0);
        const dir = npm.project(
          { name: 'findme-cli', version: '1.2.3', description: 'found by search', keywords: ['alpha', 'beta'], main: 'index.js', license: 'MIT' },
          { 'index.js': '\n' },
        );
        const pub = await npm.run(['publish'], { cwd: dir });
        assert.equal(pub.code, 0, pub.all);
        assert.equal(
          (
            await publish(
              reg,
              { name: 'findme-raw', version: '2.0.0', manifest: { maintainers: [{ name: 'alice', email: 'alice@example.org' }], keywords: 'gamma, delta' } },
              ADMIN,
            )
          ).status,
          200,
        );

        const text = await npm.run(['search', 'findme']);
        assert.equal(text.code, 0, text.all);
        assert.doesNotMatch(text.all, /Cannot read properties/);
        assert.match(text.stdout, /findme-cli\s*\n\s*found by search/);
        assert.match(text.stdout, /Version 1\.2\.3 published \d{4}-\d\d-\d\d by admin/);
        assert.match(text.stdout, /Maintainers: admin/);
        assert.match(text.stdout, /Keywords: alpha beta/);
        assert.match(text.stdout, /findme-raw/);
        assert.match(text.stdout, /Maintainers: alice/);

        const json = await npm.run(['search', '--json', 'findme']);
        assert.equal(json.code, 0, json.all);
        const found = JSON.parse(json.stdout) as Array<{ name: string; maintainers: Array<{ username: string }>; keywords: string[]; publisher?: { username: string } }>;
        const cli = found.find((p) => p.name === 'findme-cli')!;
        assert.deepEqual(cli.maintainers, [{ username: 'admin' }]);
        assert.deepEqual(cli.keywords, ['alpha', 'beta']);
        assert.equal(cli.publisher?.username, 'admin');
        const raw = found.find((p) => p.name === 'findme-raw')!;
        assert.deepEqual(raw.maintainers, [{ username: 'alice', email: 'alice@example.org' }]);
        assert.deepEqual(raw.keywords, ['gamma', 'delta']);
        // --searchexclude reads maintainers too.
        const excl = await npm.run(['search', '--searchexclude', 'alice', 'findme']);
        assert.equal(excl.code, 0, excl.all);
        assert.doesNotMatch(excl.stdout, /findme-raw/);

        // Components without search attributes (cached through a proxy) are listed too.
        const group = new NpmClient(`${s.url}/repository/npm-evil-group/`, {
          lines: [`//127.0.0.1:${new URL(s.url).port}/repository/npm-evil-group/:_auth=${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`],
        });
        try {
          const g = await group.run(['search', 'evil']);
          assert.equal(g.code, 0, g.all);
          assert.match(g.stdout, /evil-up/);
        } finally {
          group.cleanup();
        }
      } finally {
        npm.cleanup();
      }
    });
  });
}
