/**
 * Packuments are served from bytes rendered once per stored document (issue 10): after every kind
 * of change (publish, dist-tag, deprecate, unpublish with the npm CLI, a REST delete of a version
 * through the maintenance hook) the very next GET, full and abbreviated, shows it, with a new
 * ETag; the old ETag no longer answers 304, the new one does; links follow the addressed host.
 * Runs on SQLite (the read-only fast path) and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, ADMIN_PASSWORD, DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { NpmClient } from '../helpers/npm-cli.js';
import { publish } from '../helpers/npm-gen.js';

const API = '/service/rest/v1';
const CORGI = 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*';
const PKG = 'prepared-pkg';

interface Seen {
  etag: string;
  doc: { 'dist-tags': Record<string, string>; versions: Record<string, { deprecated?: string; dist: { tarball: string } }>; modified?: string };
}

for (const db of DATABASES) {
  describe(`npm packuments served prepared (${db})`, () => {
    let s: TestServer;
    let npm: NpmClient;
    const docPath = `/repository/npm-hosted/${PKG}`;

    /** One anonymous GET of the document; asserts 200 and the content type of its kind. */
    async function get(kind: 'full' | 'corgi', headers: Record<string, string> = {}): Promise<Seen> {
      const r = await s.fetch(docPath, { auth: null, headers: { Accept: kind === 'corgi' ? CORGI : 'application/json', ...headers } });
      assert.equal(r.status, 200, await r.clone().text());
      assert.equal(r.headers.get('content-type')?.split(';')[0], kind === 'corgi' ? 'application/vnd.npm.install-v1+json' : 'application/json');
      return { etag: r.headers.get('etag')!, doc: (await r.json()) as Seen['doc'] };
    }

    async function status(etag: string, kind: 'full' | 'corgi' = 'corgi'): Promise<number> {
      const r = await s.fetch(docPath, { auth: null, headers: { Accept: kind === 'corgi' ? CORGI : 'application/json', 'If-None-Match': etag } });
      await r.arrayBuffer();
      return r.status;
    }

    /** Both kinds fetched twice (the second from the prepared bytes), the same both times; the corgi returned. */
    async function current(): Promise<Seen> {
      const full = await get('full');
      const corgi = await get('corgi');
      assert.deepEqual(await get('full'), full);
      const again = await get('corgi');
      assert.deepEqual(again, corgi);
      assert.notEqual(full.etag, corgi.etag);
      assert.deepEqual(Object.keys(full.doc.versions).sort(), Object.keys(corgi.doc.versions).sort());
      assert.equal(await status(corgi.etag), 304);
      assert.equal(await status(full.etag, 'full'), 304);
      return corgi;
    }

    /** After a change: the document differs, the old ETag gets the new document, the new one a 304. */
    async function changed(before: Seen): Promise<Seen> {
      const now = await current();
      assert.notEqual(now.etag, before.etag);
      assert.equal(await status(before.etag), 200);
      return now;
    }

    before(async () => {
      s = await startServer({ db, env: { STOWAGE_TRUST_PROXY: 'true' } });
      const r = await s.fetch(`${API}/repositories/npm/hosted`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'npm-hosted', online: true, storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW' } }),
      });
      assert.equal(r.status, 201, await r.text());
      const reg = `${s.url}/repository/npm-hosted/`;
      const login = await s.fetch(`/repository/npm-hosted/-/user/org.couchdb.user:admin`, {
        method: 'PUT',
        auth: null,
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'admin', password: ADMIN_PASSWORD }),
      });
      assert.equal(login.status, 201, await login.clone().text());
      npm = new NpmClient(reg, { token: ((await login.json()) as { token: string }).token });
      for (const v of ['1.0.0', '1.1.0']) assert.equal((await publish(`${s.url}/repository/npm-hosted`, { name: PKG, version: v }, ADMIN)).status, 200);
    });
    after(async () => {
      npm?.cleanup();
      await s?.stop();
    });

    it('publish: the next GET has the new version and a new ETag; the old ETag gets the new document', async () => {
      const first = await current();
      assert.deepEqual(Object.keys(first.doc.versions).sort(), ['1.0.0', '1.1.0']);
      assert.equal((await publish(`${s.url}/repository/npm-hosted`, { name: PKG, version: '1.2.0' }, ADMIN)).status, 200);
      const now = await changed(first);
      assert.ok(now.doc.versions['1.2.0']);
      assert.equal(now.doc['dist-tags'].latest, '1.2.0');
    });

    it('dist-tag add and remove with the npm CLI', async () => {
      const before = await current();
      const add = await npm.run(['dist-tag', 'add', `${PKG}@1.0.0`, 'stable']);
      assert.equal(add.code, 0, add.all);
      const tagged = await changed(before);
      assert.equal(tagged.doc['dist-tags'].stable, '1.0.0');
      const rm = await npm.run(['dist-tag', 'rm', PKG, 'stable']);
      assert.equal(rm.code, 0, rm.all);
      const untagged = await changed(tagged);
      assert.equal(untagged.doc['dist-tags'].stable, undefined);
    });

    it('deprecate with the npm CLI', async () => {
      const before = await current();
      const r = await npm.run(['deprecate', `${PKG}@1.0.0`, 'use 1.2']);
      assert.equal(r.code, 0, r.all);
      const now = await changed(before);
      assert.equal(now.doc.versions['1.0.0'].deprecated, 'use 1.2');
    });

    it('unpublish of one version with the npm CLI', async () => {
      const before = await current();
      const r = await npm.run(['unpublish', `${PKG}@1.1.0`]);
      assert.equal(r.code, 0, r.all);
      const now = await changed(before);
      assert.deepEqual(Object.keys(now.doc.versions).sort(), ['1.0.0', '1.2.0']);
    });

    it('a REST delete of a version component: the maintenance hook rewrites the document', async () => {
      const before = await current();
      const found = (await (await s.fetch(`${API}/search?repository=npm-hosted&name=${PKG}&version=1.0.0`)).json()) as { items: Array<{ id: string }> };
      assert.equal(found.items.length, 1);
      const del = await s.fetch(`${API}/components/${found.items[0].id}`, { method: 'DELETE' });
      assert.equal(del.status, 204, await del.text());
      const now = await changed(before);
      assert.deepEqual(Object.keys(now.doc.versions), ['1.2.0']);
    });

    it('tarball links follow the host addressed, each from its own prepared document', async () => {
      const plain = await get('corgi');
      const other = await get('corgi', { 'X-Forwarded-Host': 'npm.example.org', 'X-Forwarded-Proto': 'https' });
      assert.equal(plain.doc.versions['1.2.0'].dist.tarball, `${s.url}/repository/npm-hosted/${PKG}/-/${PKG}-1.2.0.tgz`);
      assert.equal(other.doc.versions['1.2.0'].dist.tarball, `https://npm.example.org/repository/npm-hosted/${PKG}/-/${PKG}-1.2.0.tgz`);
      assert.notEqual(plain.etag, other.etag);
      // Again, now both are prepared.
      assert.deepEqual(await get('corgi', { 'X-Forwarded-Host': 'npm.example.org', 'X-Forwarded-Proto': 'https' }), other);
      assert.deepEqual(await get('corgi'), plain);
    });

    it('HEAD answers the headers of the prepared document; the whole package unpublished is a 404', async () => {
      const seen = await get('corgi');
      const head = await s.fetch(docPath, { method: 'HEAD', auth: null, headers: { Accept: CORGI } });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('etag'), seen.etag);
      assert.equal(Number(head.headers.get('content-length')), Buffer.byteLength(JSON.stringify(seen.doc)));
      const r = await npm.run(['unpublish', PKG, '--force']);
      assert.equal(r.code, 0, r.all);
      const gone = await s.fetch(docPath, { auth: null, headers: { Accept: CORGI } });
      assert.equal(gone.status, 404);
      assert.equal(await status(seen.etag), 404);
    });
  });
}
