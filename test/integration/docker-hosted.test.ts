/**
 * Docker hosted repositories end to end: the real skopeo against the path-routed `/v2/<repo>/…`
 * on the main port (push, inspect, list-tags, pull, delete, anonymous pull, refused push), and
 * the protocol details clients rely on over fetch at `/repository/<repo>/v2/…` (chunked uploads,
 * 416, digest verification, manifest references, paging, mount, write policy). SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ADMIN_PASSWORD, DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { freePort } from '../helpers/net.js';
import { buildImage, skopeo } from '../helpers/oci.js';

const sha256 = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const sha512 = (b: Buffer | string) => 'sha512:' + createHash('sha512').update(b).digest('hex');
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** The layer digests of an OCI layout's image (index → manifest). */
function layoutLayers(dir: string): string[] {
  const index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const blob = (d: string) => readFileSync(path.join(dir, 'blobs', ...d.split(':')), 'utf8');
  const manifest = JSON.parse(blob(index.manifests[0].digest)) as { layers: Array<{ digest: string }> };
  return manifest.layers.map((l) => l.digest);
}

let work: string;
let layout: string;

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'stowage-docker-'));
  layout = await buildImage(work, 'img', {
    'hello.txt': 'hello from stowage ' + randomBytes(8).toString('hex'),
    'random.bin': randomBytes(300_000),
  });
});

after(() => rmSync(work, { recursive: true, force: true }));

for (const db of DATABASES) {
  describe(`docker hosted (${db})`, () => {
    let s: TestServer;
    let host: string;
    const creds = `admin:${ADMIN_PASSWORD}`;
    const v2 = (p: string) => `/repository/dock/v2/${p}`;

    before(async () => {
      s = await startServer({ db });
      host = s.url.replace(/^http:\/\//, '');
      await s.repo('docker', 'hosted', { name: 'dock', docker: { v1Enabled: false, forceBasicAuth: false } });
      await s.repo('docker', 'hosted', { name: 'other', docker: { v1Enabled: false, forceBasicAuth: false } });
      // Through the REST API, with Nexus's JSON (its dedicated port really opens: take a free one).
      const httpPort = await freePort();
      const created = await s.fetch('/service/rest/v1/repositories/docker/hosted', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          name: 'latestonly',
          online: true,
          storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW_ONCE' },
          docker: { v1Enabled: false, forceBasicAuth: true, httpPort, latestPolicy: true },
        }),
      });
      assert.equal(created.status, 201, await created.text());
    });
    after(async () => s?.stop());

    /** Uploads a blob with POST + PUT ?digest= (monolithic) to /repository/<repo>. */
    async function pushBlob(repo: string, name: string, body: Buffer): Promise<string> {
      const digest = sha256(body);
      const r = await s.fetch(`/repository/${repo}/v2/${name}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: new Uint8Array(body) });
      assert.equal(r.status, 201, await r.text());
      return digest;
    }

    async function pushImage(name: string, tag: string, layerBytes = randomBytes(100)): Promise<{ digest: string; body: string; config: string; layer: string }> {
      const config = await pushBlob('dock', name, Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', n: randomBytes(4).toString('hex') })));
      const layer = await pushBlob('dock', name, layerBytes);
      const body = JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 1 },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size: layerBytes.length }],
      });
      const r = await s.fetch(v2(`${name}/manifests/${tag}`), { method: 'PUT', body, headers: { 'Content-Type': OCI_MANIFEST } });
      assert.equal(r.status, 201, await r.text());
      assert.equal(r.headers.get('docker-content-digest'), sha256(body));
      return { digest: sha256(body), body, config, layer };
    }

    it('answers the version check', async () => {
      // Without credentials the version check always challenges (the token flow), even when
      // anonymous read is allowed; with credentials it answers 200.
      const r = await s.fetch(v2(''), { auth: null });
      assert.equal(r.status, 401);
      assert.equal(r.headers.get('docker-distribution-api-version'), 'registry/2.0');
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm="http:\/\/[^"]+\/repository\/dock\/v2\/token"/);
      assert.deepEqual(await (await s.fetch(v2(''))).json(), {});
      // forceBasicAuth (latestonly): Basic only, as Nexus.
      const forced = await s.fetch('/repository/latestonly/v2/', { auth: null });
      assert.equal(forced.status, 401);
      assert.match(forced.headers.get('www-authenticate') ?? '', /^Basic realm=/);
      const root = await s.fetch('/v2/', { auth: null });
      assert.equal(root.status, 401, 'the root version check challenges anonymous callers');
      assert.equal((await root.json()).errors[0].code, 'UNAUTHORIZED');
      assert.equal((await s.fetch('/v2/')).status, 200);
    });

    it('skopeo pushes, inspects, lists tags and pulls through /v2/<repo>/<image>', async () => {
      const ref = `docker://${host}/dock/app/hello`;
      const push = await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:latest`, `${ref}:v1`);
      assert.ok(push.ok, push.stderr);
      const inspect = await skopeo('inspect', '--tls-verify=false', '--creds', creds, `${ref}:v1`);
      assert.ok(inspect.ok, inspect.stderr);
      const info = JSON.parse(inspect.stdout) as { Digest: string; Layers: string[] };
      assert.deepEqual(info.Layers, layoutLayers(layout));
      const tags = await skopeo('list-tags', '--tls-verify=false', '--creds', creds, ref);
      assert.ok(tags.ok, tags.stderr);
      assert.deepEqual(JSON.parse(tags.stdout).Tags, ['v1']);
      // Pushing the same image again (another tag): blobs exist and are skipped.
      const seen: string[] = [];
      const record = (req: { method?: string; url?: string }) => seen.push(`${req.method} ${req.url}`);
      s.listener.server.on('request', record);
      const again = await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:latest`, `${ref}:v2`);
      s.listener.server.off('request', record);
      assert.ok(again.ok, again.stderr);
      assert.ok(
        seen.some((r) => /^HEAD \/v2\/dock\/app\/hello\/blobs\/sha256:/.test(r)),
        seen.join('\n'),
      );
      assert.ok(!seen.some((r) => /blobs\/uploads/.test(r)), `no upload for existing blobs:\n${seen.join('\n')}`);
      // Anonymous pull (empty credentials become the anonymous user).
      const out = path.join(work, `pulled-${db}`);
      const pull = await skopeo('copy', '--src-tls-verify=false', `${ref}:v1`, `oci:${out}:v1`);
      assert.ok(pull.ok, pull.stderr);
      assert.deepEqual(layoutLayers(out), layoutLayers(layout));
      // Same content through /repository/<repo>/v2/…
      const m = await s.fetch(v2('app/hello/manifests/v1'), { auth: null });
      assert.equal(m.status, 200);
      assert.equal(m.headers.get('docker-content-digest'), info.Digest);
      assert.equal(sha256(Buffer.from(await m.arrayBuffer())), info.Digest);
    });

    it('refuses a push without credentials', async () => {
      const r = await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://${host}/dock/app/anon:v1`);
      assert.ok(!r.ok);
      const post = await s.fetch(v2('app/anon/blobs/uploads/'), { method: 'POST', auth: null });
      assert.equal(post.status, 401);
      assert.match(post.headers.get('www-authenticate') ?? '', /^Bearer realm="[^"]+",service="[^"]+",scope="repository:app\/anon:pull,push"$/);
      assert.equal((await post.json()).errors[0].code, 'UNAUTHORIZED');
    });

    it('skopeo deletes by tag (the manifest and every tag pointing at it)', async () => {
      const ref = `docker://${host}/dock/app/hello`;
      const del = await skopeo('delete', '--tls-verify=false', '--creds', creds, `${ref}:v1`);
      assert.ok(del.ok, del.stderr);
      assert.equal((await s.fetch(v2('app/hello/manifests/v1'))).status, 404);
      assert.equal((await s.fetch(v2('app/hello/manifests/v2'))).status, 404);
      const gone = await skopeo('inspect', '--tls-verify=false', '--creds', creds, `${ref}:v2`);
      assert.ok(!gone.ok);
    });

    it('uploads in chunks: 416 out of order, status, resume, verified PUT, ranges', async () => {
      const blob = randomBytes(42);
      const post = await s.fetch(v2('chunks/blobs/uploads/'), { method: 'POST', headers: { 'Content-Length': '0' } });
      assert.equal(post.status, 202);
      const loc = post.headers.get('location')!;
      assert.match(loc, /^\/repository\/dock\/v2\/chunks\/blobs\/uploads\/[0-9a-f-]{36}$/);
      assert.equal(post.headers.get('range'), '0-0');
      const ooo = await s.fetch(loc, { method: 'PATCH', body: blob.subarray(22), headers: { 'Content-Range': '22-41', 'Content-Type': 'application/octet-stream' } });
      assert.equal(ooo.status, 416);
      assert.equal((await ooo.json()).errors[0].code, 'BLOB_UPLOAD_INVALID');
      const p1 = await s.fetch(loc, { method: 'PATCH', body: blob.subarray(0, 22), headers: { 'Content-Range': '0-21' } });
      assert.equal(p1.status, 202);
      assert.equal(p1.headers.get('range'), '0-21');
      assert.ok(p1.headers.get('location'));
      assert.equal((await s.fetch(loc, { method: 'PATCH', body: blob.subarray(0, 22), headers: { 'Content-Range': '0-21' } })).status, 416, 'a repeated chunk');
      const st = await s.fetch(loc);
      assert.equal(st.status, 204);
      assert.equal(st.headers.get('range'), '0-21');
      const p2 = await s.fetch(st.headers.get('location')!, { method: 'PATCH', body: blob.subarray(22) });
      assert.equal(p2.status, 202);
      assert.equal(p2.headers.get('range'), '0-41');
      const put = await s.fetch(`${loc}?digest=${sha256(blob)}`, { method: 'PUT', headers: { 'Content-Length': '0' } });
      assert.equal(put.status, 201, await put.text());
      assert.equal(put.headers.get('location'), `/repository/dock/v2/chunks/blobs/${sha256(blob)}`);
      const get = await s.fetch(put.headers.get('location')!, { auth: null });
      assert.equal(get.status, 200);
      assert.equal(get.headers.get('content-type'), 'application/octet-stream');
      assert.equal(get.headers.get('docker-content-digest'), sha256(blob));
      assert.deepEqual(Buffer.from(await get.arrayBuffer()), blob);
      const head = await s.fetch(v2(`chunks/blobs/${sha256(blob)}`), { method: 'HEAD' });
      assert.equal(head.headers.get('content-length'), '42');
      const range = await s.fetch(v2(`chunks/blobs/${sha256(blob)}`), { headers: { Range: 'bytes=10-19' } });
      assert.equal(range.status, 206);
      assert.deepEqual(Buffer.from(await range.arrayBuffer()), blob.subarray(10, 20));
      assert.equal((await s.fetch(loc)).status, 404, 'the session is over');
      // Cancel.
      const c = await s.fetch(v2('chunks/blobs/uploads/'), { method: 'POST' });
      const cl = c.headers.get('location')!;
      assert.equal((await s.fetch(cl, { method: 'DELETE' })).status, 204);
      const after = await s.fetch(cl);
      assert.equal(after.status, 404);
      assert.equal((await after.json()).errors[0].code, 'BLOB_UPLOAD_UNKNOWN');
    });

    it('verifies digests: DIGEST_INVALID and nothing stored', async () => {
      const body = randomBytes(1000);
      const wrong = sha256(Buffer.from('something else'));
      const post = await s.fetch(v2('bad/blobs/uploads/'), { method: 'POST' });
      const put = await s.fetch(`${post.headers.get('location')}?digest=${wrong}`, { method: 'PUT', body });
      assert.equal(put.status, 400);
      assert.equal((await put.json()).errors[0].code, 'DIGEST_INVALID');
      const mono = await s.fetch(v2(`bad/blobs/uploads/?digest=${wrong}`), { method: 'POST', body });
      assert.equal(mono.status, 400);
      assert.equal((await mono.json()).errors[0].code, 'DIGEST_INVALID');
      for (const d of [wrong, sha256(body)]) {
        const h = await s.fetch(v2(`bad/blobs/${d}`), { method: 'HEAD' });
        assert.equal(h.status, 404);
      }
      const g = await s.fetch(v2(`bad/blobs/${wrong}`));
      assert.equal((await g.json()).errors[0].code, 'BLOB_UNKNOWN');
      // sha512 digests are verified too.
      const ok = await s.fetch(v2(`bad/blobs/uploads/?digest=${sha512(body)}`), { method: 'POST', body });
      assert.equal(ok.status, 201);
      assert.equal((await s.fetch(v2(`bad/blobs/${sha512(body)}`), { method: 'HEAD' })).status, 200);
      const bad512 = await s.fetch(v2(`bad/blobs/uploads/?digest=${sha512('x')}`), { method: 'POST', body: randomBytes(10) });
      assert.equal(bad512.status, 400);
      assert.equal((await s.fetch(v2(`bad/blobs/${sha512('x')}`), { method: 'HEAD' })).status, 404);
    });

    it('checks manifests: references, JSON, size, names', async () => {
      const missing = sha256('not pushed');
      const config = await pushBlob('dock', 'refs', Buffer.from('{}'));
      const body = JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'x', digest: config, size: 2 },
        layers: [{ mediaType: 'y', digest: missing, size: 1 }],
      });
      const r = await s.fetch(v2('refs/manifests/t'), { method: 'PUT', body, headers: { 'Content-Type': OCI_MANIFEST } });
      assert.equal(r.status, 400);
      assert.equal((await r.json()).errors[0].code, 'MANIFEST_BLOB_UNKNOWN');
      const index = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: OCI_MANIFEST, digest: missing, size: 1 }] });
      const ri = await s.fetch(v2('refs/manifests/i'), { method: 'PUT', body: index, headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' } });
      assert.equal(ri.status, 400);
      assert.equal((await ri.json()).errors[0].code, 'MANIFEST_UNKNOWN');
      const bad = await s.fetch(v2('refs/manifests/t'), { method: 'PUT', body: '{nope', headers: { 'Content-Type': OCI_MANIFEST } });
      assert.equal((await bad.json()).errors[0].code, 'MANIFEST_INVALID');
      const big = await s.fetch(v2('refs/manifests/t'), { method: 'PUT', body: Buffer.alloc(4 * 1024 * 1024 + 1, 0x20), headers: { 'Content-Type': OCI_MANIFEST } });
      assert.equal(big.status, 413);
      const name = await s.fetch(v2('Bad_Name/manifests/t'), { method: 'PUT', body, headers: { 'Content-Type': OCI_MANIFEST } });
      assert.equal((await name.json()).errors[0].code, 'NAME_INVALID');
      assert.equal((await s.fetch(v2('refs/manifests/.INVALID_MANIFEST_NAME'), { method: 'HEAD' })).status, 404);
      assert.equal((await s.fetch(v2('refs/tags/list'))).status, 404);
    });

    it('stores manifests byte-exact with their media type; by digest; index; delete', async () => {
      const img = await pushImage('exact/img', 'one');
      const list = JSON.stringify(
        {
          schemaVersion: 2,
          mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
          manifests: [{ mediaType: OCI_MANIFEST, digest: img.digest, size: img.body.length, platform: { architecture: 'amd64', os: 'linux' } }],
        },
        null,
        3,
      );
      const byDigest = await s.fetch(v2(`exact/img/manifests/${sha256(list)}`), {
        method: 'PUT',
        body: list,
        headers: { 'Content-Type': 'application/vnd.docker.distribution.manifest.list.v2+json' },
      });
      assert.equal(byDigest.status, 201, await byDigest.text());
      const g = await s.fetch(v2(`exact/img/manifests/${sha256(list)}`));
      assert.equal(g.headers.get('content-type'), 'application/vnd.docker.distribution.manifest.list.v2+json');
      assert.equal(await g.text(), list);
      const h = await s.fetch(v2('exact/img/manifests/one'), { method: 'HEAD' });
      assert.equal(h.status, 200);
      assert.equal(h.headers.get('content-type'), OCI_MANIFEST);
      assert.equal(h.headers.get('content-length'), String(img.body.length));
      assert.equal(h.headers.get('docker-content-digest'), img.digest);
      const wrongDigest = await s.fetch(v2(`exact/img/manifests/${sha256('x')}`), { method: 'PUT', body: img.body, headers: { 'Content-Type': OCI_MANIFEST } });
      assert.equal((await wrongDigest.json()).errors[0].code, 'DIGEST_INVALID');
      // Tag delete removes the tag only; blob delete.
      assert.equal((await s.fetch(v2('exact/img/manifests/one'), { method: 'DELETE' })).status, 202);
      assert.equal((await s.fetch(v2('exact/img/manifests/one'))).status, 404);
      assert.equal((await s.fetch(v2(`exact/img/manifests/${img.digest}`))).status, 200);
      assert.equal((await s.fetch(v2(`exact/img/blobs/${img.layer}`), { method: 'DELETE' })).status, 202);
      assert.equal((await s.fetch(v2(`exact/img/blobs/${img.layer}`), { method: 'HEAD' })).status, 404);
    });

    it('pages tags and the catalog with Link', async () => {
      const img = await pushImage('paged', 't0');
      for (const t of ['t1', 't2', 't3', 't4']) {
        const r = await s.fetch(v2(`paged/manifests/${t}`), { method: 'PUT', body: img.body, headers: { 'Content-Type': OCI_MANIFEST } });
        assert.equal(r.status, 201);
      }
      const all = await (await s.fetch(v2('paged/tags/list'), { auth: null })).json();
      assert.deepEqual(all, { name: 'paged', tags: ['t0', 't1', 't2', 't3', 't4'] });
      const p1 = await s.fetch(v2('paged/tags/list?n=2'));
      assert.deepEqual((await p1.json()).tags, ['t0', 't1']);
      const link = p1.headers.get('link')!;
      assert.equal(link, '</repository/dock/v2/paged/tags/list?n=2&last=t1>; rel="next"');
      const p2 = await s.fetch(/<([^>]+)>/.exec(link)![1]);
      assert.deepEqual((await p2.json()).tags, ['t2', 't3']);
      const p3 = await s.fetch(v2('paged/tags/list?n=2&last=t3'));
      assert.deepEqual((await p3.json()).tags, ['t4']);
      assert.equal(p3.headers.get('link'), null);
      const cat = await (await s.fetch(v2('_catalog'))).json();
      assert.ok(cat.repositories.includes('paged') && cat.repositories.includes('exact/img'), JSON.stringify(cat));
      const c1 = await s.fetch(v2('_catalog?n=1'));
      assert.equal((await c1.json()).repositories.length, 1);
      assert.match(c1.headers.get('link') ?? '', /rel="next"/);
      // Through the path-routed form the image name includes the repository.
      const routed = await (await s.fetch('/v2/dock/paged/tags/list?n=1')).json();
      assert.deepEqual(routed, { name: 'dock/paged', tags: ['t0'] });
    });

    it('mounts blobs across repositories without copying; falls back to an upload', async () => {
      const img = await pushImage('mount/src', 'x');
      const r = await s.fetch(`/v2/other/mounted/blobs/uploads/?mount=${img.layer}&from=dock/mount/src`, { method: 'POST' });
      assert.equal(r.status, 201);
      assert.equal(r.headers.get('location'), `/v2/other/mounted/blobs/${img.layer}`);
      assert.equal((await s.fetch(`/v2/other/mounted/blobs/${img.layer}`, { method: 'HEAD' })).status, 200);
      const a = await s.app.content.findAsset((await s.app.repositories.find('dock'))!.id, `v2/-/blobs/${img.layer}`);
      const b = await s.app.content.findAsset((await s.app.repositories.find('other'))!.id, `v2/-/blobs/${img.layer}`);
      assert.equal(a!.blob_id, b!.blob_id);
      const miss = await s.fetch(`/v2/other/mounted/blobs/uploads/?mount=${sha256('nothing')}&from=dock/mount/src`, { method: 'POST' });
      assert.equal(miss.status, 202);
      assert.match(miss.headers.get('location') ?? '', /^\/v2\/other\/mounted\/blobs\/uploads\//);
    });

    it('applies the write policy to tags (ALLOW_ONCE, latestPolicy)', async () => {
      await pushImage('policy', 'fixed');
      const other = await pushImage('policy', 'other');
      const r = await s.fetch(v2('policy/manifests/fixed'), { method: 'PUT', body: other.body, headers: { 'Content-Type': OCI_MANIFEST } });
      assert.equal(r.status, 403);
      assert.equal((await r.json()).errors[0].code, 'DENIED');
      // Same digest again is fine.
      assert.equal((await s.fetch(v2('policy/manifests/other'), { method: 'PUT', body: other.body, headers: { 'Content-Type': OCI_MANIFEST } })).status, 201);
      // latestPolicy: `latest` may be re-pointed, other tags not.
      const lo = (p: string) => `/repository/latestonly/v2/${p}`;
      const cfg = await pushBlob('latestonly', 'l', Buffer.from('{"a":1}'));
      const m = (n: number) => JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'c', digest: cfg, size: 7 }, layers: [], n });
      for (const [tag, n, status] of [
        ['latest', 1, 201],
        ['latest', 2, 201],
        ['v1', 1, 201],
        ['v1', 2, 403],
      ] as const) {
        const x = await s.fetch(lo(`l/manifests/${tag}`), { method: 'PUT', body: m(n), headers: { 'Content-Type': OCI_MANIFEST } });
        assert.equal(x.status, status, `${tag} ${n}`);
      }
    });
  });
}
