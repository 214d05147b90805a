/**
 * Answers replayed before the pipeline (src/http/hot-responses.ts): kept only until the next
 * commit, so no change of content, configuration or security is ever answered from an old
 * answer. Each case first shows that a replay happened (hotStats), then that a change ends it.
 * PostgreSQL keeps nothing (no commit version to read without a query).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { ADMIN, DATABASES, basic, startServer, type TestServer } from '../helpers/stowage.js';
import { publish } from '../helpers/npm-gen.js';
import { hotStats } from '../../src/http/hot-responses.js';

const API = '/service/rest/v1';
const CORGI = 'application/vnd.npm.install-v1+json';

for (const db of DATABASES) {
  describe(`hot responses (${db})`, () => {
    let s: TestServer;
    const replays = async (fn: () => Promise<unknown>): Promise<number> => {
      const before = hotStats.replayed;
      await fn();
      return hotStats.replayed - before;
    };
    const doc = async (path: string, headers: Record<string, string> = {}, auth: string | null = null) => {
      const r = await s.fetch(path, { auth, headers: { Accept: CORGI, ...headers } });
      return { status: r.status, etag: r.headers.get('etag'), id: r.headers.get('x-request-id'), body: await r.text() };
    };

    before(async () => {
      s = await startServer({ db });
      await s.repo('npm', 'hosted', { name: 'npm-hot', online: true, storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW' } });
      await s.repo('maven2', 'hosted', {
        name: 'mvn-hot',
        online: true,
        storage: { blobStoreName: 'default', strictContentTypeValidation: false, writePolicy: 'ALLOW' },
        maven: { versionPolicy: 'MIXED', layoutPolicy: 'STRICT' },
      });
      assert.equal((await publish(`${s.url}/repository/npm-hot`, { name: 'hot-pkg', version: '1.0.0' }, ADMIN)).status, 200);
    });
    after(() => s?.stop());

    it('replays a packument until a publish, then answers the new document (and 304, HEAD, request ids from replays)', async () => {
      const first = await doc('/repository/npm-hot/hot-pkg');
      assert.equal(first.status, 200);
      const again = await replays(async () => {
        const r = await doc('/repository/npm-hot/hot-pkg');
        assert.equal(r.body, first.body);
        assert.equal(r.etag, first.etag);
        assert.notEqual(r.id, first.id, 'each answer has its own request id');
        assert.equal((await doc('/repository/npm-hot/hot-pkg', { 'If-None-Match': first.etag! })).status, 304);
        const head = await s.fetch('/repository/npm-hot/hot-pkg', { auth: null, method: 'HEAD', headers: { Accept: CORGI } });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get('content-length'), String(Buffer.byteLength(first.body)));
        assert.equal((await head.arrayBuffer()).byteLength, 0);
      });
      assert.equal(again, db === 'sqlite' ? 3 : 0);

      assert.equal((await publish(`${s.url}/repository/npm-hot`, { name: 'hot-pkg', version: '1.1.0' }, ADMIN)).status, 200);
      const after = await doc('/repository/npm-hot/hot-pkg');
      assert.ok(JSON.parse(after.body).versions['1.1.0'], 'the version published after the kept answer is listed');
      assert.notEqual(after.etag, first.etag);
    });

    it('keeps answers per Host (generated links) and per credentials; a security change ends them', async () => {
      // (fetch cannot set Host: node:http can.)
      const viaHost = (host: string) =>
        new Promise<string>((resolve, reject) => {
          const u = new URL(s.url);
          http
            .get({ host: u.hostname, port: u.port, path: '/repository/npm-hot/hot-pkg', headers: { Host: host, Accept: CORGI } }, (res) => {
              let body = '';
              res.setEncoding('utf8');
              res.on('data', (c: string) => (body += c));
              res.on('end', () => resolve(body));
            })
            .on('error', reject);
        });
      assert.match(await viaHost('other.example:8443'), /http:\/\/other\.example:8443\/repository\/npm-hot\//);
      assert.doesNotMatch((await doc('/repository/npm-hot/hot-pkg')).body, /other\.example/);
      const n = await replays(async () => assert.match(await viaHost('other.example:8443'), /other\.example:8443/));
      assert.equal(n, db === 'sqlite' ? 1 : 0);

      // A user's answer, replayed for that user only; disabling anonymous access ends the anonymous one.
      const user = { userId: 'hot-user', firstName: 'H', lastName: 'U', emailAddress: 'h@example.com', password: 'hot-pw-1', status: 'active', roles: ['nx-admin'] };
      assert.equal((await s.fetch(`${API}/security/users`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(user) })).status, 200);
      const creds = basic('hot-user', 'hot-pw-1');
      assert.equal((await doc('/repository/npm-hot/hot-pkg', {}, creds)).status, 200);
      assert.equal(await replays(async () => assert.equal((await doc('/repository/npm-hot/hot-pkg', {}, creds)).status, 200)), db === 'sqlite' ? 1 : 0);
      assert.equal((await doc('/repository/npm-hot/hot-pkg', {}, basic('hot-user', 'wrong'))).status, 401, 'another credential is not answered from the kept answer');
      const anon = await s.fetch(`${API}/security/anonymous`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ enabled: false, userId: 'anonymous', realmName: 'NexusAuthorizingRealm' }),
      });
      assert.equal(anon.status, 200, await anon.text());
      assert.equal((await doc('/repository/npm-hot/hot-pkg')).status, 401);
      // The user disabled: its kept answer is gone too.
      const disabled = await s.fetch(`${API}/security/users/hot-user`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ ...user, status: 'disabled' }),
      });
      assert.equal(disabled.status, 204, await disabled.text());
      assert.equal((await doc('/repository/npm-hot/hot-pkg', {}, creds)).status, 401);
      await s.fetch(`${API}/security/anonymous`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ enabled: true, userId: 'anonymous', realmName: 'NexusAuthorizingRealm' }),
      });
    });

    it('replays maven-metadata.xml and small files until a deploy, and still records their downloads', async () => {
      const put = async (v: string) => {
        for (const ext of ['jar', 'pom']) {
          const r = await s.fetch(`/repository/mvn-hot/org/hot/a/${v}/a-${v}.${ext}`, {
            method: 'PUT',
            body: ext === 'pom' ? `<project><modelVersion>4.0.0</modelVersion><groupId>org.hot</groupId><artifactId>a</artifactId><version>${v}</version></project>` : `jar ${v}`,
          });
          assert.equal(r.status, 201);
        }
      };
      await put('1.0');
      const md = '/repository/mvn-hot/org/hot/a/maven-metadata.xml';
      assert.match((await doc(md, { Accept: '*/*' })).body, /<version>1\.0<\/version>/);
      assert.equal(await replays(async () => assert.match((await doc(md, { Accept: '*/*' })).body, /<latest>1\.0<\/latest>/)), db === 'sqlite' ? 1 : 0);
      await put('1.1');
      assert.match((await doc(md, { Accept: '*/*' })).body, /<latest>1\.1<\/latest>/);

      // A file answered by a replay is still recorded as downloaded (cleanup policies judge by it).
      const jar = '/repository/mvn-hot/org/hot/a/1.1/a-1.1.jar';
      assert.equal((await doc(jar, { Accept: '*/*' })).body, 'jar 1.1');
      const content = s.app.content;
      const record = content.markDownloaded.bind(content);
      const recorded: string[] = [];
      content.markDownloaded = (a) => {
        recorded.push(a.path);
        return record(a);
      };
      try {
        assert.equal(await replays(async () => assert.equal((await doc(jar, { Accept: '*/*' })).body, 'jar 1.1')), db === 'sqlite' ? 1 : 0);
        assert.deepEqual(recorded, ['org/hot/a/1.1/a-1.1.jar']);
      } finally {
        content.markDownloaded = record;
      }
    });
  });
}
