/**
 * npm audit forwarding with upstream credentials: the audit request goes through the proxy's own
 * upstream client, so the remote receives the credentials as configured (stored encrypted, sent
 * decrypted), exactly as for package downloads. The remote is a small node server that answers
 * only with the right Basic credentials or Bearer token; driven by a direct POST of an audit
 * body (gzip, as npm sends it) and by `npm audit` itself, on SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync, gzipSync } from 'node:zlib';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ADMIN_PASSWORD, DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { NpmClient } from '../helpers/npm-cli.js';

const USER = 'auditor';
const PASSWORD = 'Plain-Upstream-Pw-' + Math.random().toString(36).slice(2, 8);
const TOKEN = 'Plain-Upstream-Token-' + Math.random().toString(36).slice(2, 8);
const BASIC = 'Basic ' + Buffer.from(`${USER}:${PASSWORD}`).toString('base64');

interface Seen {
  url: string;
  authorization?: string;
  encoding?: string;
}

/** An npm registry's audit endpoint that wants credentials: 401 without the right ones. */
async function auditRemote(): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    seen.push({ url: req.url!, authorization: req.headers.authorization, encoding: req.headers['content-encoding'] });
    const auth = req.headers.authorization;
    if (auth !== BASIC && auth !== `Bearer ${TOKEN}`) {
      res.writeHead(401, { 'Content-Type': 'application/json', 'WWW-Authenticate': 'Basic realm="remote"' });
      return void res.end('{"error":"credentials required"}');
    }
    if (req.method !== 'POST' || req.url !== '/-/npm/v1/security/advisories/bulk') {
      res.writeHead(404);
      return void res.end();
    }
    const body = Buffer.concat(chunks);
    const asked = JSON.parse((req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString()) as Record<string, string[]>;
    const out: Record<string, unknown> = {};
    if (asked['up-pkg']) {
      out['up-pkg'] = [
        {
          id: 815,
          url: 'https://example.org/advisories/815',
          title: 'Advisory behind credentials',
          severity: 'critical',
          vulnerable_versions: '<2.0.0',
          cwe: [],
          cvss: { score: 9.8, vectorString: null },
        },
      ];
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(out));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const API = '/service/rest/v1';

async function createProxy(s: TestServer, name: string, remoteUrl: string, authentication: Record<string, string>): Promise<void> {
  const r = await s.fetch(`${API}/repositories/npm/proxy`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      name,
      online: true,
      storage: { blobStoreName: 'default', strictContentTypeValidation: true },
      proxy: { remoteUrl, contentMaxAge: 1440, metadataMaxAge: 1440 },
      negativeCache: { enabled: true, timeToLive: 1440 },
      httpClient: { blocked: false, autoBlock: false, authentication },
    }),
  });
  assert.equal(r.status, 201, await r.text());
}

for (const db of DATABASES) {
  describe(`npm audit forwarding with upstream credentials (${db})`, () => {
    let s: TestServer;
    let remote: Awaited<ReturnType<typeof auditRemote>>;
    before(async () => {
      remote = await auditRemote();
      s = await startServer({ db });
      await createProxy(s, 'npm-basic', remote.url, { type: 'username', username: USER, password: PASSWORD });
      await createProxy(s, 'npm-bearer', remote.url, { type: 'bearerToken', bearerToken: TOKEN });
      const g = await s.fetch(`${API}/repositories/npm/group`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'npm-all', online: true, storage: { blobStoreName: 'default', strictContentTypeValidation: true }, group: { memberNames: ['npm-basic'] } }),
      });
      assert.equal(g.status, 201, await g.text());
    });
    after(async () => {
      await s?.stop();
      await remote?.close();
    });

    it('the stored credentials are encrypted, and the remote refuses anything but the plain ones', async () => {
      const stored = JSON.stringify((await s.app.repositories.require('npm-basic')).config);
      assert.ok(!stored.includes(PASSWORD), 'the password is not stored in clear');
      assert.ok(!JSON.stringify((await s.app.repositories.require('npm-bearer')).config).includes(TOKEN));
      const direct = await fetch(`${remote.url}/-/npm/v1/security/advisories/bulk`, { method: 'POST', body: '{}' });
      assert.equal(direct.status, 401);
    });

    it('a direct POST of an audit body (gzip) reaches the remote with the decrypted Basic credentials and the Bearer token', async () => {
      for (const [repo, expected] of [
        ['npm-basic', BASIC],
        ['npm-bearer', `Bearer ${TOKEN}`],
        ['npm-all', BASIC],
      ]) {
        const before = remote.seen.length;
        const r = await s.fetch(`/repository/${repo}/-/npm/v1/security/advisories/bulk`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' },
          body: gzipSync(JSON.stringify({ 'up-pkg': ['1.0.0'], other: ['3.1.4'] })),
        });
        const text = await r.text();
        assert.equal(r.status, 200, `${repo}: ${text}`);
        const report = JSON.parse(text) as Record<string, Array<{ title: string }>>;
        assert.equal(report['up-pkg'][0].title, 'Advisory behind credentials');
        const seen = remote.seen.slice(before);
        assert.equal(seen.length, 1, `${repo}: one upstream request`);
        assert.equal(seen[0].authorization, expected, `${repo}: the plain credentials`);
        assert.equal(seen[0].encoding, 'gzip', 'the body is forwarded as the client sent it');
      }
    });

    it('npm audit through the group reports the advisory only the credentialed remote has', async () => {
      const client = new NpmClient(`${s.url}/repository/npm-all/`);
      try {
        client.writeConfig(undefined, [`${client.nerfDart}:_auth=${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`]);
        const app = client.project({ name: 'audited', version: '1.0.0', private: true, dependencies: { 'up-pkg': '1.0.0' } });
        // A lockfile is all `npm audit --package-lock-only` reads: no install needed.
        const lock = {
          name: 'audited',
          version: '1.0.0',
          lockfileVersion: 3,
          requires: true,
          packages: {
            '': { name: 'audited', version: '1.0.0', dependencies: { 'up-pkg': '1.0.0' } },
            'node_modules/up-pkg': { version: '1.0.0', resolved: `${s.url}/repository/npm-all/up-pkg/-/up-pkg-1.0.0.tgz`, integrity: 'sha512-' + 'A'.repeat(86) + '==' },
          },
        };
        writeFileSync(path.join(app, 'package-lock.json'), JSON.stringify(lock, null, 2));
        const before = remote.seen.length;
        const r = await client.run(['audit', '--json', '--package-lock-only'], { cwd: app });
        const report = JSON.parse(r.stdout) as { vulnerabilities: Record<string, { severity: string; via: unknown[] }> };
        assert.equal(report.vulnerabilities['up-pkg']?.severity, 'critical', r.all);
        assert.match(JSON.stringify(report.vulnerabilities['up-pkg'].via), /Advisory behind credentials/);
        assert.ok(remote.seen.slice(before).every((x) => x.authorization === BASIC));
      } finally {
        client.cleanup();
      }
    });
  });
}
