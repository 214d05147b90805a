/**
 * npm proxy and group repositories with the real npm CLI: a proxy of verdaccio (through a
 * recording pass-through, to see what reaches the remote), a proxy of a second Stowage, a group
 * over hosted + proxy (merged documents, publish through the group, a scope pinned to the hosted
 * member), a generated package with 3,000 versions, and `npm audit` forwarded upstream.
 * Runs on SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ADMIN, DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { NpmClient } from '../helpers/npm-cli.js';
import { integrityOf, packageTarball, publish } from '../helpers/npm-gen.js';
import { startVerdaccio, type Verdaccio } from '../helpers/verdaccio.js';

const API = '/service/rest/v1';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * An upstream in front of `target`: records every request, answers npm's audit endpoint with a
 * canned advisory (verdaccio has none), passes everything else through. `routes` answers some
 * paths itself (a generated package).
 */
async function recorder(target: string, routes: (url: string) => { status: number; type: string; body: Buffer; etag?: string } | null = () => null) {
  const seen: Seen[] = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
    if (req.url === '/-/npm/v1/security/advisories/bulk') {
      const asked = JSON.parse((req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString()) as Record<string, string[]>;
      const out: Record<string, unknown> = {};
      if (asked['up-pkg']) {
        out['up-pkg'] = [
          {
            id: 4711,
            url: 'https://example.org/advisories/4711',
            title: 'Recorded advisory for up-pkg',
            severity: 'high',
            vulnerable_versions: '<2.0.0',
            cwe: ['CWE-400'],
            cvss: { score: 7.5, vectorString: null },
          },
        ];
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(out));
      return;
    }
    const own = routes(req.url!);
    if (own) {
      if (own.etag && req.headers['if-none-match'] === own.etag) {
        res.writeHead(304, { ETag: own.etag });
        res.end();
        return;
      }
      res.writeHead(own.status, { 'Content-Type': own.type, ...(own.etag ? { ETag: own.etag } : {}) });
      res.end(own.body);
      return;
    }
    const headers: Record<string, string> = {};
    for (const h of ['accept', 'if-none-match', 'if-modified-since', 'authorization', 'content-type']) if (req.headers[h]) headers[h] = String(req.headers[h]);
    try {
      const r = await fetch(target + req.url, { method: req.method, headers, body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body });
      const out: Record<string, string> = {};
      for (const h of ['content-type', 'etag', 'last-modified']) {
        const v = r.headers.get(h);
        if (v) out[h] = v;
      }
      res.writeHead(r.status, out);
      res.end(Buffer.from(await r.arrayBuffer()));
    } catch (e) {
      res.writeHead(502);
      res.end(String(e));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A package with `count` versions (1.0.0 … 1.0.<count-1>), served by the recorder. */
function bigPackage(name: string, count: number, base: () => string) {
  const tarballs = new Map<string, Buffer>();
  const versions: Record<string, unknown> = {};
  const time: Record<string, string> = { created: '2020-01-01T00:00:00.000Z', modified: '2021-01-01T00:00:00.000Z' };
  for (let i = 0; i < count; i++) {
    const version = `1.0.${i}`;
    const { manifest, tarball } = packageTarball({ name, version, manifest: { description: 'x'.repeat(200), keywords: ['big', 'generated'] } });
    tarballs.set(`${name}-${version}.tgz`, tarball);
    versions[version] = {
      ...manifest,
      _id: `${name}@${version}`,
      readme: 'r'.repeat(300),
      dist: { ...integrityOf(tarball), tarball: `__BASE__/${name}/-/${name}-${version}.tgz` },
    };
    time[version] = new Date(Date.UTC(2020, 0, 1) + i * 60_000).toISOString();
  }
  let doc: Buffer | null = null;
  return (url: string) => {
    if (url === `/${name}`) {
      doc ??= Buffer.from(JSON.stringify({ _id: name, name, 'dist-tags': { latest: `1.0.${count - 1}` }, versions, time }).replaceAll('__BASE__', base()));
      return { status: 200, type: 'application/json', body: doc, etag: '"big-v1"' };
    }
    const m = new RegExp(`^/${name}/-/(.+\\.tgz)$`).exec(url);
    if (m && tarballs.has(m[1])) return { status: 200, type: 'application/octet-stream', body: tarballs.get(m[1])! };
    return null;
  };
}

async function create(s: TestServer, type: string, body: Record<string, unknown>): Promise<void> {
  const r = await s.fetch(`${API}/repositories/npm/${type}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ online: true, storage: { blobStoreName: 'default', strictContentTypeValidation: true }, ...body }),
  });
  assert.equal(r.status, 201, `${type} ${String(body.name)}: ${await r.text()}`);
}

const proxyOf = (remoteUrl: string, extra: Record<string, unknown> = {}) => ({
  proxy: { remoteUrl, contentMaxAge: 1440, metadataMaxAge: 1440 },
  negativeCache: { enabled: true, timeToLive: 1440 },
  httpClient: { blocked: false, autoBlock: false },
  npm: { removeNonCataloged: false, removeQuarantined: false },
  ...extra,
});

for (const db of DATABASES) {
  describe(`npm proxy and group (${db})`, () => {
    let v: Verdaccio;
    let rec: Awaited<ReturnType<typeof recorder>>;
    let s: TestServer;
    let s2: TestServer;
    let npm: NpmClient;
    const groupUrl = () => `${s.url}/repository/npm-group/`;

    before(async () => {
      v = await startVerdaccio();
      for (const p of [
        { name: 'up-pkg', version: '1.0.0' },
        { name: 'up-pkg', version: '1.1.0' },
        { name: 'shared-pkg', version: '1.0.0', manifest: { description: 'upstream copy' } },
        { name: 'shared-pkg', version: '2.0.0' },
        { name: '@corp/secret', version: '6.6.6' },
        { name: '@corp/lib', version: '99.0.0', manifest: { description: 'dependency confusion' } },
      ]) {
        const r = await publish(v.url, p);
        assert.equal(r.status, 201, await r.text());
      }
      const big = bigPackage('big-pkg', 3000, () => rec.url);
      rec = await recorder(v.url, big);
      s = await startServer({ db });
      s2 = await startServer({ db: 'sqlite' });
      await create(s2, 'hosted', { name: 'npm-hosted', storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW_ONCE' } });
      assert.equal((await publish(`${s2.url}/repository/npm-hosted/`, { name: 'from-second', version: '3.0.0' }, ADMIN)).status, 200);

      await create(s, 'hosted', { name: 'npm-hosted', storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW_ONCE' } });
      await create(s, 'proxy', { name: 'npm-proxy', ...proxyOf(rec.url) });
      await create(s, 'proxy', { name: 'npm-proxy2', ...proxyOf(`${s2.url}/repository/npm-hosted/`) });
      await create(s, 'group', {
        name: 'npm-group',
        group: { memberNames: ['npm-hosted', 'npm-proxy', 'npm-proxy2'], writableMember: 'npm-hosted' },
        npm: { scopes: { '@corp': ['npm-hosted'] } },
      });
      npm = new NpmClient(groupUrl());
      const login = await npm.run(['login'], { input: ['admin', 'admin-test-pw'] });
      assert.equal(login.code, 0, login.all);
    });
    after(async () => {
      npm?.cleanup();
      await s?.stop();
      await s2?.stop();
      await rec?.close();
      await v?.stop();
    });

    it('proxy of verdaccio: npm install with an empty cache, tarball URLs under the proxy, tarballs cached', async () => {
      const client = new NpmClient(`${s.url}/repository/npm-proxy/`);
      const app = client.project({ name: 'p', version: '1.0.0', private: true, dependencies: { 'up-pkg': '^1.0.0' } });
      const r = await client.run(['install', '--no-audit'], { cwd: app });
      assert.equal(r.code, 0, r.all);
      assert.equal(readFileSync(path.join(app, 'node_modules/up-pkg/index.js'), 'utf8'), 'module.exports = "up-pkg@1.1.0";\n');
      const lock = JSON.parse(readFileSync(path.join(app, 'package-lock.json'), 'utf8'));
      assert.equal(lock.packages['node_modules/up-pkg'].resolved, `${s.url}/repository/npm-proxy/up-pkg/-/up-pkg-1.1.0.tgz`);
      const doc = await (await s.fetch('/repository/npm-proxy/up-pkg', { auth: null })).json();
      assert.deepEqual(Object.keys(doc.versions).sort(), ['1.0.0', '1.1.0']);
      for (const man of Object.values(doc.versions) as Array<{ dist: { tarball: string } }>) assert.match(man.dist.tarball, new RegExp(`^${s.url}/repository/npm-proxy/up-pkg/-/`));
      // Cached for good: a second install does not fetch the tarball upstream again.
      const before = rec.seen.filter((x) => x.url.endsWith('.tgz')).length;
      const app2 = client.project({ name: 'p2', version: '1.0.0', private: true, dependencies: { 'up-pkg': '1.1.0' } });
      assert.equal((await client.run(['install', '--no-audit'], { cwd: app2 })).code, 0);
      assert.equal(rec.seen.filter((x) => x.url.endsWith('.tgz')).length, before);
      // Components of cached tarballs are in the core tables.
      const found = await (await s.fetch(`${API}/search?format=npm&repository=npm-proxy&name=up-pkg`)).json();
      assert.deepEqual(
        found.items.map((i: { version: string }) => i.version),
        ['1.1.0'],
      );
      client.cleanup();
    });

    it('proxy revalidates packuments with the upstream ETag and serves the stale copy when the remote is down', async () => {
      await create(s, 'proxy', { name: 'npm-proxy-fast', ...proxyOf(rec.url), proxy: { remoteUrl: rec.url, contentMaxAge: 1440, metadataMaxAge: 0 } });
      const first = await s.fetch('/repository/npm-proxy-fast/up-pkg');
      assert.equal(first.status, 200);
      const second = await s.fetch('/repository/npm-proxy-fast/up-pkg');
      assert.equal(second.status, 200);
      const asks = rec.seen.filter((x) => x.url === '/up-pkg');
      assert.ok(asks.length >= 2);
      assert.ok(asks[asks.length - 1].headers['if-none-match'], 'revalidated with If-None-Match');
      // Scoped names go upstream as @scope%2fname.
      assert.equal((await s.fetch('/repository/npm-proxy-fast/@corp%2fsecret')).status, 200);
      assert.ok(rec.seen.some((x) => x.url === '/@corp%2fsecret'));
      const r = await s.fetch(`${API}/repositories/npm/proxy/npm-proxy-fast`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          name: 'npm-proxy-fast',
          online: true,
          storage: { blobStoreName: 'default', strictContentTypeValidation: true },
          ...proxyOf('http://127.0.0.1:9/'),
          proxy: { remoteUrl: 'http://127.0.0.1:9/', contentMaxAge: 1440, metadataMaxAge: 0 },
        }),
      });
      assert.equal(r.status, 204, await r.text());
      const stale = await s.fetch('/repository/npm-proxy-fast/up-pkg');
      assert.equal(stale.status, 200);
      assert.deepEqual(Object.keys((await stale.json()).versions).sort(), ['1.0.0', '1.1.0']);
      assert.equal((await s.fetch('/repository/npm-proxy-fast/never-fetched')).status, 502);
    });

    it('proxy of a second Stowage', async () => {
      const client = new NpmClient(`${s.url}/repository/npm-proxy2/`);
      const app = client.project({ name: 'p3', version: '1.0.0', private: true });
      const r = await client.run(['install', '--no-audit', 'from-second@3.0.0'], { cwd: app });
      assert.equal(r.code, 0, r.all);
      assert.equal(readFileSync(path.join(app, 'node_modules/from-second/index.js'), 'utf8'), 'module.exports = "from-second@3.0.0";\n');
      client.cleanup();
    });

    it('publish through the group lands in the writable member; install through the group merges members', async () => {
      const dir = npm.project(
        { name: 'group-pub', version: '1.0.0', description: 'published through the group', main: 'index.js' },
        { 'index.js': "module.exports = 'via group';\n" },
      );
      const pub = await npm.run(['publish'], { cwd: dir });
      assert.equal(pub.code, 0, pub.all);
      assert.equal((await s.fetch('/repository/npm-hosted/group-pub')).status, 200);
      const viaGroup = await (await s.fetch('/repository/npm-group/group-pub')).json();
      assert.equal(viaGroup.versions['1.0.0'].dist.tarball, `${groupUrl()}group-pub/-/group-pub-1.0.0.tgz`);
      // npm itself refuses to publish through the group a version a member already offers.
      const dup = npm.project({ name: 'up-pkg', version: '1.0.0', main: 'index.js' }, { 'index.js': '\n' });
      const refused = await npm.run(['publish'], { cwd: dup });
      assert.notEqual(refused.code, 0);
      assert.match(refused.all, /cannot publish over the previously published versions: 1\.0\.0/);
      // The same version in the hosted member and upstream: the hosted one (first member) wins.
      const hostedCopy = await publish(
        `${s.url}/repository/npm-hosted/`,
        { name: 'shared-pkg', version: '1.0.0', manifest: { description: 'hosted copy' }, files: { 'index.js': "module.exports = 'hosted';\n" } },
        ADMIN,
      );
      assert.equal(hostedCopy.status, 200, await hostedCopy.text());
      const doc = await (await s.fetch('/repository/npm-group/shared-pkg')).json();
      assert.deepEqual(Object.keys(doc.versions).sort(), ['1.0.0', '2.0.0']);
      const hosted = await (await s.fetch('/repository/npm-hosted/shared-pkg')).json();
      // First member wins a duplicate version and the tags it defines.
      assert.equal(doc.versions['1.0.0'].dist.integrity, hosted.versions['1.0.0'].dist.integrity);
      assert.equal(doc['dist-tags'].latest, '1.0.0');
      assert.ok(doc.time['2.0.0'] && doc.time['1.0.0']);
      for (const man of Object.values(doc.versions) as Array<{ dist: { tarball: string } }>)
        assert.match(man.dist.tarball, new RegExp(`^${s.url}/repository/npm-group/shared-pkg/-/`));
      const app = npm.project({
        name: 'g',
        version: '1.0.0',
        private: true,
        dependencies: { 'shared-pkg': '2.0.0', 'up-pkg': '1.0.0', 'from-second': '3.0.0', 'group-pub': '1.0.0' },
      });
      const r = await npm.run(['install', '--no-audit'], { cwd: app });
      assert.equal(r.code, 0, r.all);
      const lock = JSON.parse(readFileSync(path.join(app, 'package-lock.json'), 'utf8'));
      assert.equal(lock.packages['node_modules/shared-pkg'].resolved, `${groupUrl()}shared-pkg/-/shared-pkg-2.0.0.tgz`);
      const app2 = npm.project({ name: 'g2', version: '1.0.0', private: true, dependencies: { 'shared-pkg': '1.0.0' } });
      assert.equal((await npm.run(['install', '--no-audit'], { cwd: app2 })).code, 0);
      assert.equal(readFileSync(path.join(app2, 'node_modules/shared-pkg/index.js'), 'utf8'), "module.exports = 'hosted';\n");
    });

    it('a scope pinned to the hosted member is never looked up on the proxy (dependency confusion)', async () => {
      const dir = npm.project({ name: '@corp/lib', version: '1.0.0', main: 'index.js' }, { 'index.js': "module.exports = 'internal';\n" });
      assert.equal((await npm.run(['publish'], { cwd: dir })).code, 0);
      const count = () => rec.seen.filter((x) => x.url.startsWith('/@corp')).length;
      const before = count();
      const doc = await (await s.fetch('/repository/npm-group/@corp%2flib')).json();
      assert.deepEqual(Object.keys(doc.versions), ['1.0.0'], 'the public 99.0.0 is not offered');
      assert.equal((await s.fetch('/repository/npm-group/@corp%2fsecret')).status, 404);
      assert.equal((await s.fetch('/repository/npm-group/@corp/secret/-/secret-6.6.6.tgz')).status, 404);
      const app = npm.project({ name: 'c', version: '1.0.0', private: true, dependencies: { '@corp/lib': '*' } });
      const r = await npm.run(['install', '--no-audit'], { cwd: app });
      assert.equal(r.code, 0, r.all);
      assert.equal(readFileSync(path.join(app, 'node_modules/@corp/lib/index.js'), 'utf8'), "module.exports = 'internal';\n");
      assert.equal(count(), before, 'the proxy was not asked for @corp packages');
    });

    it('a package with 3,000 versions through proxy and group', async () => {
      for (const repo of ['npm-proxy', 'npm-group']) {
        const t0 = Date.now();
        const full = await s.fetch(`/repository/${repo}/big-pkg`);
        assert.equal(full.status, 200);
        const doc = await full.json();
        assert.equal(Object.keys(doc.versions).length, 3000);
        assert.match(doc.versions['1.0.1234'].dist.tarball, new RegExp(`^${s.url}/repository/${repo}/big-pkg/-/big-pkg-1\\.0\\.1234\\.tgz$`));
        const corgi = await s.fetch(`/repository/${repo}/big-pkg`, { headers: { Accept: 'application/vnd.npm.install-v1+json' } });
        const c = await corgi.json();
        assert.equal(Object.keys(c.versions).length, 3000);
        assert.equal(c.versions['1.0.5'].readme, undefined);
        const etag = corgi.headers.get('etag')!;
        assert.equal((await s.fetch(`/repository/${repo}/big-pkg`, { headers: { Accept: 'application/vnd.npm.install-v1+json', 'If-None-Match': etag } })).status, 304);
        assert.ok(Date.now() - t0 < 30_000);
      }
      const app = npm.project({ name: 'b', version: '1.0.0', private: true, dependencies: { 'big-pkg': '1.0.2999' } });
      const r = await npm.run(['install', '--no-audit'], { cwd: app });
      assert.equal(r.code, 0, r.all);
      assert.equal(readFileSync(path.join(app, 'node_modules/big-pkg/index.js'), 'utf8'), 'module.exports = "big-pkg@1.0.2999";\n');
    });

    it('npm audit is forwarded to the remote of the first proxy (group and proxy)', async () => {
      for (const reg of [groupUrl(), `${s.url}/repository/npm-proxy/`]) {
        const before = rec.seen.filter((x) => x.url.includes('/security/')).length;
        const client = new NpmClient(reg);
        const app = client.project({ name: 'a', version: '1.0.0', private: true, dependencies: { 'up-pkg': '1.0.0' } });
        assert.equal((await client.run(['install', '--no-audit'], { cwd: app })).code, 0);
        const r = await client.run(['audit', '--json'], { cwd: app });
        const report = JSON.parse(r.stdout);
        assert.equal(report.vulnerabilities['up-pkg'].severity, 'high', r.all);
        assert.match(JSON.stringify(report.vulnerabilities['up-pkg'].via), /Recorded advisory for up-pkg/);
        assert.ok(rec.seen.filter((x) => x.url.includes('/security/')).length > before);
        client.cleanup();
      }
      // A hosted repository has no advisories: an empty answer.
      const hosted = await s.fetch('/repository/npm-hosted/-/npm/v1/security/advisories/bulk', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{"x":["1.0.0"]}',
      });
      assert.deepEqual(await hosted.json(), {});
    });
  });
}
