/**
 * Search download and asset uploaders through the REST API, as Nexus automation reads them:
 * `/search/assets/download` answers 400 when several assets match (unless a sort picks one), and
 * assets record who uploaded them and from where (`uploader`, `uploaderIp`) for raw PUTs, Nexus
 * component uploads, docker pushes by skopeo through the token flow and image archive uploads.
 * SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DATABASES, basic, startServer, type TestServer } from '../helpers/stowage.js';
import { buildImage, skopeo } from '../helpers/oci.js';

const API = '/service/rest/v1';
const UPLOADER = basic('uploader1', 'uploader-pw-1');

interface AssetXO {
  id: string;
  path: string;
  repository: string;
  uploader: string | null;
  uploaderIp: string | null;
}
interface Page<T> {
  items: T[];
  continuationToken: string | null;
}

let work: string;
let layout: string;

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'stowage-search-download-'));
  layout = await buildImage(work, 'img', { 'up.txt': 'uploader ' + randomBytes(8).toString('hex') });
});

after(() => rmSync(work, { recursive: true, force: true }));

for (const db of DATABASES) {
  describe(`search download and asset uploaders (${db})`, () => {
    let s: TestServer;

    async function assets(query: string): Promise<AssetXO[]> {
      const r = await s.fetch(`${API}/search/assets?${query}`);
      const text = await r.text();
      assert.equal(r.status, 200, text);
      return (JSON.parse(text) as Page<AssetXO>).items;
    }

    before(async () => {
      s = await startServer({ db });
      await s.repo('raw', 'hosted', { name: 'files', storage: { writePolicy: 'ALLOW' } });
      await s.repo('docker', 'hosted', { name: 'dock', docker: { v1Enabled: false, forceBasicAuth: false } });
      await s.repo('docker', 'hosted', { name: 'loaded', docker: { v1Enabled: false, forceBasicAuth: false } });
      await s.app.security.users.create({ userId: 'uploader1', password: 'uploader-pw-1', roles: ['nx-admin'] });
    });
    after(async () => s?.stop());

    it('answers 400 when several assets match, redirects when one does or a sort picks one', async () => {
      for (const name of ['a.txt', 'b.txt']) assert.equal((await s.fetch(`/repository/files/dup/${name}`, { method: 'PUT', body: `dup ${name}` })).status, 201);
      const several = await s.fetch(`${API}/search/assets/download?repository=files&name=dup/*`);
      const text = await several.text();
      assert.equal(several.status, 400, text);
      assert.match(text, /multiple assets/);
      assert.equal(several.headers.get('location'), null);
      const one = await s.fetch(`${API}/search/assets/download?repository=files&name=dup/b.txt`);
      assert.equal(one.status, 302);
      assert.equal(one.headers.get('location'), `${s.url}/repository/files/dup/b.txt`);
      assert.equal((await s.fetch(`${API}/search/assets/download?repository=files&name=dup/*&sort=version`)).status, 302);
      assert.equal((await s.fetch(`${API}/search/assets/download?repository=files&name=nothing/*`)).status, 404);
    });

    it('records the uploader and address of a raw PUT and of a component upload', async () => {
      assert.equal((await s.fetch('/repository/files/by/put.txt', { method: 'PUT', body: 'put', auth: UPLOADER })).status, 201);
      const form = new FormData();
      form.append('raw.directory', 'by');
      form.append('raw.asset1', new Blob(['form']));
      form.append('raw.asset1.filename', 'form.txt');
      const up = await s.fetch(`${API}/components?repository=files`, { method: 'POST', body: form });
      assert.equal(up.status, 204, await up.text());
      const found = new Map((await assets('repository=files&name=by/*')).map((a) => [a.path, a]));
      assert.equal(found.get('by/put.txt')?.uploader, 'uploader1');
      assert.equal(found.get('by/put.txt')?.uploaderIp, '127.0.0.1');
      assert.equal(found.get('by/form.txt')?.uploader, 'admin');
      assert.equal(found.get('by/form.txt')?.uploaderIp, '127.0.0.1');
      // The same through GET /assets/{id}.
      const byId = await s.fetch(`${API}/assets/${found.get('by/put.txt')!.id}`);
      assert.equal(((await byId.json()) as AssetXO).uploader, 'uploader1');
      // A redeploy by someone else names them.
      const again = await s.fetch('/repository/files/by/put.txt', { method: 'PUT', body: 'put again' });
      assert.ok(again.ok, String(again.status));
      assert.equal((await assets('repository=files&name=by/put.txt'))[0].uploader, 'admin');
    });

    it('records the uploader of a docker push (skopeo, token flow)', async () => {
      const host = s.url.replace(/^http:\/\//, '');
      const push = await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', 'uploader1:uploader-pw-1', `oci:${layout}:latest`, `docker://${host}/dock/app/up:v1`);
      assert.ok(push.ok, push.stderr);
      const items = await assets('repository=dock');
      assert.ok(items.some((a) => /\/manifests\//.test(a.path)) && items.some((a) => /\/blobs\//.test(a.path)), JSON.stringify(items.map((a) => a.path)));
      for (const a of items) {
        assert.equal(a.uploader, 'uploader1', a.path);
        assert.equal(a.uploaderIp, '127.0.0.1', a.path);
      }
    });

    it('records the uploader of an image archive upload (docker save tarball through the REST API)', async () => {
      const tar = path.join(work, `save-${db}.tar`);
      const save = await skopeo('copy', `oci:${layout}:latest`, `docker-archive:${tar}:app/loaded:v1`);
      assert.ok(save.ok, save.stderr);
      const res = await s.fetch(`${API}/docker/archive?repository=loaded`, {
        method: 'POST',
        auth: UPLOADER,
        headers: { 'Content-Type': 'application/x-tar' },
        body: new Uint8Array(readFileSync(tar)),
      });
      assert.equal(res.status, 201, await res.text());
      const items = await assets('repository=loaded');
      assert.ok(items.some((a) => /\/manifests\//.test(a.path)) && items.some((a) => /\/blobs\//.test(a.path)), JSON.stringify(items.map((a) => a.path)));
      for (const a of items) {
        assert.equal(a.uploader, 'uploader1', a.path);
        assert.equal(a.uploaderIp, '127.0.0.1', a.path);
      }
    });
  });
}
