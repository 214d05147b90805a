/**
 * The one request pipeline: a content request's repository is resolved once (whichever way it
 * arrives: `/repository/<name>/`, docker's root route, a dedicated port, the shared docker port),
 * and the error shape is chosen from it before authentication, so unknown repositories and
 * refused credentials are answered in the shape the client reads. Runs on SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, DATABASES, basic, startServer, type TestServer } from '../helpers/stowage.js';
import { freePort } from '../helpers/net.js';

for (const db of DATABASES) {
  describe(`request pipeline (${db})`, () => {
    let s: TestServer;
    let dedicated: string;
    let shared: string;
    /** Repository names looked up through app.repositories.find since the last reset. */
    let lookups: string[] = [];

    before(async () => {
      const sharedPort = await freePort();
      s = await startServer({ db, env: { STOWAGE_FORMAT_PORTS: `docker:${sharedPort}` } });
      shared = `http://127.0.0.1:${sharedPort}`;
      await s.repo('raw', 'hosted', { name: 'files' });
      await s.repo('npm', 'hosted', { name: 'npm-hosted' });
      const httpPort = await freePort();
      await s.repo('docker', 'hosted', { name: 'dock', docker: { v1Enabled: false, forceBasicAuth: false, httpPort } });
      for (let i = 0; i < 20 && s.app.listeners.ports().get('dock') !== httpPort; i++) await s.app.listeners.sync();
      assert.equal(s.app.listeners.ports().get('dock'), httpPort);
      dedicated = `http://127.0.0.1:${httpPort}`;
      const repositories = s.app.repositories;
      const find = repositories.find.bind(repositories);
      repositories.find = (name: string) => {
        lookups.push(name);
        return find(name);
      };
    });
    after(async () => s?.stop());

    /** The lookups `request` makes of repository `name`. */
    async function lookupsOf(name: string, request: () => Promise<Response>, status: number): Promise<number> {
      lookups = [];
      const r = await request();
      assert.equal(r.status, status, await r.text());
      return lookups.filter((n) => n === name).length;
    }
    const at = (base: string, p: string, init: RequestInit = {}) => fetch(base + p, { ...init, headers: { Authorization: ADMIN, ...init.headers } });

    it('a content request resolves its repository once, however it arrives', async () => {
      assert.equal(await lookupsOf('files', () => s.fetch('/repository/files/a.txt', { method: 'PUT', body: 'hello' }), 201), 1);
      assert.equal(await lookupsOf('files', () => s.fetch('/repository/files/a.txt'), 200), 1);
      assert.equal(await lookupsOf('npm-hosted', () => s.fetch('/repository/npm-hosted/-/ping'), 200), 1);
      assert.equal(await lookupsOf('dock', () => s.fetch('/repository/dock/v2/'), 200), 1);
      assert.equal(await lookupsOf('dock', () => s.fetch('/v2/dock/img/tags/list'), 404), 1);
      assert.equal(await lookupsOf('dock', () => at(dedicated, '/v2/_catalog'), 200), 1);
      assert.equal(await lookupsOf('dock', () => at(shared, '/v2/dock/img/tags/list'), 404), 1);
    });

    it('an unknown repository is a 404 in the shape its path implies', async () => {
      const plain = await s.fetch('/repository/nope/a.txt');
      assert.equal(plain.status, 404);
      assert.match(plain.headers.get('content-type') ?? '', /^text\/plain/);
      assert.match(await plain.text(), /Repository 'nope' not found/);
      for (const r of [await s.fetch('/v2/nope/img/manifests/latest'), await at(shared, '/v2/nope/img/manifests/latest'), await at(shared, '/elsewhere')]) {
        assert.equal(r.status, 404);
        assert.equal(r.headers.get('docker-distribution-api-version'), 'registry/2.0');
        assert.equal((await r.json()).errors[0].code, 'NAME_UNKNOWN');
      }
      // Through docker's root route only docker repositories are reachable.
      const raw = await s.fetch('/v2/files/img/tags/list');
      assert.equal(raw.status, 404);
      assert.equal((await raw.json()).errors[0].code, 'NAME_UNKNOWN');
    });

    it('a refused credential is answered in the format shape (chosen before authentication)', async () => {
      const wrong = basic('admin', 'wrong');
      const oci = await s.fetch('/repository/dock/v2/', { auth: wrong });
      assert.equal(oci.status, 401);
      assert.ok(oci.headers.get('www-authenticate'));
      assert.equal((await oci.json()).errors[0].code, 'UNAUTHORIZED');
      const onPort = await fetch(dedicated + '/v2/', { headers: { Authorization: wrong } });
      assert.equal(onPort.status, 401);
      assert.equal((await onPort.json()).errors[0].code, 'UNAUTHORIZED');
      const npm = await s.fetch('/repository/npm-hosted/some-pkg', { auth: wrong });
      assert.equal(npm.status, 401);
      assert.match((await npm.json()).error, /Invalid username or password/);
      // Authentication still comes before the 404 of an unknown repository.
      assert.equal((await s.fetch('/repository/nope/a.txt', { auth: wrong })).status, 401);
    });

    it('a path no row of the format matches is a 404, another method a 405 with Allow, in the format shape', async () => {
      const npmPut = await s.fetch('/repository/npm-hosted/some-pkg/1.0.0', { method: 'PUT', body: '{}' });
      assert.equal(npmPut.status, 405);
      assert.equal(npmPut.headers.get('allow'), 'GET, HEAD');
      assert.ok((await npmPut.json()).error);
      const npmMissing = await s.fetch('/repository/npm-hosted/-/nothing-here');
      assert.equal(npmMissing.status, 404);
      assert.ok((await npmMissing.json()).error);
      const dockPost = await s.fetch('/repository/dock/v2/img/manifests/latest', { method: 'POST' });
      assert.equal(dockPost.status, 405);
      assert.deepEqual(new Set(dockPost.headers.get('allow')!.split(', ')), new Set(['GET', 'HEAD', 'PUT', 'DELETE']));
      assert.equal((await dockPost.json()).errors[0].code, 'UNSUPPORTED');
      const dockOther = await s.fetch('/repository/dock/v2/img/other');
      assert.equal(dockOther.status, 404);
      assert.equal((await dockOther.json()).errors[0].code, 'NAME_UNKNOWN');
    });
  });
}
