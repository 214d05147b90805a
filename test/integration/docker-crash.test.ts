/**
 * kill -9 during a docker push: a server in its own process receives a large layer four ways at
 * once (chunked PATCH, PUT carrying the body, single-POST monolithic upload, and a manifest PUT),
 * each body stalled half-way, and is killed. Restarted on the same data directory and database:
 * nothing of the push is visible (blob HEAD/GET 404, no catalog entry, no tags, no manifest, no
 * blob row), the interrupted chunked session still answers with what reached the disk and cannot
 * be completed with the wrong bytes, skopeo pushes the image again and pulls it back byte-exact,
 * and the leftovers (upload session files, the blob store's temp file) are swept by the tasks.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ADMIN, ADMIN_PASSWORD, DATABASES, runTask, spawnServer, startServer, type ChildServer, type TestServer } from '../helpers/stowage.js';
import { buildImage, skopeo } from '../helpers/oci.js';

const API = '/service/rest/v1';
const sha256 = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

let work: string;
let layout: string;
let manifestBytes: Buffer;
let layerDigest: string;
let layer: Buffer;

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'stowage-docker-crash-'));
  layout = await buildImage(work, 'big', { 'big.bin': randomBytes(20 * MiB) });
  const blob = (d: string) => readFileSync(path.join(layout, 'blobs', ...d.split(':')));
  const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  manifestBytes = blob(index.manifests[0].digest);
  layerDigest = (JSON.parse(manifestBytes.toString()) as { layers: Array<{ digest: string }> }).layers[0].digest;
  layer = blob(layerDigest);
  assert.ok(layer.length > 19 * MiB, 'a large layer');
});

after(() => rmSync(work, { recursive: true, force: true }));

/**
 * Starts a request and sends only `part` of its body (declared complete by Content-Length), then
 * stalls: the server is mid-body. The request's eventual error (the server dies) is swallowed.
 */
function stalled(url: string, method: string, headers: Record<string, string>, body: Buffer, part: number): http.ClientRequest {
  const req = http.request(url, { method, headers: { Authorization: ADMIN, 'Content-Length': String(body.length), ...headers } });
  req.on('error', () => undefined);
  req.on('response', (res) => res.resume());
  req.write(body.subarray(0, part));
  return req;
}

/** Same, chunked (no Content-Length), as docker and podman stream a PATCH. */
function stalledChunked(url: string, body: Buffer, part: number): http.ClientRequest {
  const req = http.request(url, { method: 'PATCH', headers: { Authorization: ADMIN, 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' } });
  req.on('error', () => undefined);
  req.on('response', (res) => res.resume());
  req.write(body.subarray(0, part));
  return req;
}

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const fileSize = (p: string) => (existsSync(p) ? statSync(p).size : 0);
const filesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

/** sha256 of every file under a directory. */
function digestsUnder(dir: string): Set<string> {
  const out = new Set<string>();
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.add(sha256(readFileSync(p)));
    }
  };
  walk(dir);
  return out;
}

for (const db of DATABASES) {
  describe(`docker push killed with -9 (${db})`, () => {
    let child: ChildServer | undefined;
    let s: TestServer | undefined;
    let dataDir: string;

    after(async () => {
      if (child && child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
      await s?.stop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    it('leaves nothing visible, and the push can be retried', async () => {
      child = await spawnServer({ db });
      dataDir = child.dataDir;
      const base = `${child.url}/repository/crash/v2/big`;
      const created = await fetch(`${child.url}${API}/repositories/docker/hosted`, {
        method: 'POST',
        headers: { Authorization: ADMIN, 'Content-Type': 'application/json' },
        body: JSON.stringify({
          name: 'crash',
          online: true,
          storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW' },
          docker: { v1Enabled: false, forceBasicAuth: false },
        }),
      });
      assert.equal(created.status, 201, await created.text());

      const session = async () => {
        const r = await fetch(`${base}/blobs/uploads/`, { method: 'POST', headers: { Authorization: ADMIN } });
        assert.equal(r.status, 202);
        return { location: new URL(r.headers.get('location')!, child!.url).toString(), uuid: r.headers.get('docker-upload-uuid')! };
      };
      const uploads = path.join(dataDir, 'blobs', 'default', '.uploads');
      const storeTmp = path.join(dataDir, 'blobs', 'default', '.tmp');
      const half = 8 * MiB;

      // 1. Chunked PATCH, 2. PUT carrying the whole body, 3. single-POST monolithic upload, 4. a manifest PUT.
      const patch = await session();
      const put = await session();
      const requests = [
        stalledChunked(patch.location, layer, half),
        stalled(`${put.location}?digest=${layerDigest}`, 'PUT', { 'Content-Type': 'application/octet-stream' }, layer, half),
        stalled(`${base}/blobs/uploads/?digest=${layerDigest}`, 'POST', { 'Content-Type': 'application/octet-stream' }, layer, half),
        stalled(`${base}/manifests/v1`, 'PUT', { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, manifestBytes, manifestBytes.length >> 1),
      ];
      // Mid-body for real: bytes reached the session files and the blob store's temp file.
      await until('the chunked PATCH bytes on disk', () => fileSize(path.join(uploads, patch.uuid)) >= MiB);
      await until('the PUT bytes on disk', () => fileSize(path.join(uploads, put.uuid)) >= MiB);
      await until('the monolithic POST in the store temp area', () => filesIn(storeTmp).some((f) => fileSize(path.join(storeTmp, f)) >= MiB));
      child.proc.kill('SIGKILL');
      assert.equal(await child.exited, 'SIGKILL');
      for (const r of requests) r.destroy();
      const patchBytes = fileSize(path.join(uploads, patch.uuid));
      assert.ok(patchBytes > 0 && patchBytes < layer.length);
      assert.ok(filesIn(storeTmp).length >= 1, 'the killed write left its temp file');

      // Restart on the same data directory and database (in process, for the tasks' internals).
      s = await startServer({ dataDir, dbUrl: child.dbUrl });
      const v2 = (p: string) => `/repository/crash/v2/${p}`;
      assert.equal((await s.fetch(v2(`big/blobs/${layerDigest}`), { method: 'HEAD' })).status, 404);
      const get = await s.fetch(v2(`big/blobs/${layerDigest}`));
      assert.equal(get.status, 404);
      assert.equal((await get.json()).errors[0].code, 'BLOB_UNKNOWN');
      assert.equal((await s.fetch(v2('big/manifests/v1'), { method: 'HEAD' })).status, 404);
      assert.deepEqual(await (await s.fetch(v2('_catalog'))).json(), { repositories: [] });
      assert.equal((await s.fetch(v2('big/tags/list'))).status, 404);
      assert.equal((await s.app.db('blobs').where({ sha256: layerDigest.slice(7) })).length, 0, 'no blob row');
      assert.equal((await s.app.db('assets')).length, 0, 'no asset at all');
      assert.ok(!digestsUnder(path.join(dataDir, 'blobs', 'default', 'content')).has(layerDigest), 'no published bytes');

      // The interrupted session answers with what reached the disk; its partial bytes never verify.
      const status = await s.fetch(v2(`big/blobs/uploads/${patch.uuid}`));
      assert.equal(status.status, 204);
      assert.equal(status.headers.get('range'), `0-${patchBytes - 1}`);
      const wrong = await s.fetch(v2(`big/blobs/uploads/${patch.uuid}?digest=${layerDigest}`), { method: 'PUT' });
      assert.equal(wrong.status, 400);
      assert.equal((await wrong.json()).errors[0].code, 'DIGEST_INVALID');
      assert.equal((await s.fetch(v2(`big/blobs/${layerDigest}`), { method: 'HEAD' })).status, 404);

      // The push again, with the real client, and the pull back.
      const host = s.url.replace(/^http:\/\//, '');
      const creds = `admin:${ADMIN_PASSWORD}`;
      const push = await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:latest`, `docker://${host}/crash/big:v1`);
      assert.ok(push.ok, push.stderr);
      const out = path.join(work, `pulled-${db}`);
      const pull = await skopeo('copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/crash/big:v1`, `oci:${out}:v1`);
      assert.ok(pull.ok, pull.stderr);
      const index = JSON.parse(readFileSync(path.join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
      assert.equal(index.manifests[0].digest, sha256(manifestBytes));
      assert.ok(readFileSync(path.join(out, 'blobs', ...layerDigest.split(':'))).equals(layer), 'the layer pulls back byte-exact');

      // Leftovers: the PUT's session file (purged by the upload-purge task, age 0) and the killed
      // write's temp file in the blob store (swept by the blob GC task).
      assert.ok(filesIn(uploads).includes(put.uuid));
      const defaults = await (await s.fetch(`${API}/tasks?type=repository.docker.upload-purge`)).json();
      assert.equal(defaults.items.length, 1, 'the upload purge is scheduled by default');
      const purge = await runTask(s, 'repository.docker.upload-purge', { age: 0 });
      assert.match(purge, /Deleted 1 incomplete uploads and 1 staging files; reclaimed [1-9]\d* bytes/);
      assert.deepEqual(filesIn(uploads), []);
      assert.equal((await s.fetch(v2(`big/blobs/uploads/${put.uuid}`))).status, 404);
      await runTask(s, 'assetBlob.cleanup', { graceSeconds: 0 });
      assert.deepEqual(filesIn(storeTmp), []);
      // And the image still pulls.
      const again = await skopeo('inspect', '--tls-verify=false', '--creds', creds, `docker://${host}/crash/big:v1`);
      assert.ok(again.ok, again.stderr);
    });
  });
}
