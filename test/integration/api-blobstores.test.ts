/**
 * REST API: blob stores (file and S3) with Nexus bodies, usage numbers that follow uploads,
 * soft quota status, tasks, and the blob GC task reclaiming the bytes of deleted content.
 * Runs on SQLite and PostgreSQL; the S3 store is a real S3-protocol server (s3rver).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { startS3, type S3Server } from '../helpers/s3.js';

const API = '/service/rest/v1';

interface BlobStoreXO {
  name: string;
  type: string;
  blobCount: number;
  totalSizeInBytes: number;
  availableSpaceInBytes: number | null;
  unavailable: boolean;
  softQuota: unknown;
}

function sendJson(s: TestServer, method: string, p: string, body: unknown): Promise<Response> {
  return s.fetch(API + p, { method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
}

async function store(s: TestServer, name: string): Promise<BlobStoreXO> {
  const res = await s.fetch(`${API}/blobstores`);
  assert.equal(res.status, 200);
  const found = ((await res.json()) as BlobStoreXO[]).find((b) => b.name === name);
  assert.ok(found, `blob store ${name} not listed`);
  return found;
}

async function put(s: TestServer, repo: string, p: string, body: string): Promise<void> {
  const res = await s.fetch(`/repository/${repo}/${p}`, { method: 'PUT', body });
  assert.ok(res.status === 201 || res.status === 200, `PUT ${p}: ${res.status} ${await res.text()}`);
}

/** Starts the blob GC task through the API and waits until this run has finished. */
async function runBlobGc(s: TestServer): Promise<{ lastRunResult: string; message: string }> {
  const tasks = await (await s.fetch(`${API}/tasks?type=assetBlob.cleanup`)).json();
  assert.equal(tasks.items.length, 1);
  const task = tasks.items[0];
  const before = task.lastRun;
  assert.equal((await s.fetch(`${API}/tasks/${task.id}/run`, { method: 'POST' })).status, 204);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const t = await (await s.fetch(`${API}/tasks/${task.id}`)).json();
    if (t.lastRun !== before && t.currentState === 'WAITING') return t;
    assert.ok(Date.now() < deadline, 'blob GC did not finish');
    await new Promise((r) => setTimeout(r, 25));
  }
}

for (const db of DATABASES) {
  describe(`REST API blob stores and tasks (${db})`, () => {
    let s: TestServer;
    let s3: S3Server;
    before(async () => {
      s = await startServer({ db, env: { STOWAGE_BLOB_GC_GRACE: '0' } });
      s3 = await startS3();
    });
    after(async () => {
      await s?.stop();
      await s3?.stop();
    });

    it('lists the default file blob store with Nexus fields', async () => {
      const d = await store(s, 'default');
      assert.equal(d.type, 'File');
      assert.equal(d.blobCount, 0);
      assert.equal(d.totalSizeInBytes, 0);
      assert.equal(d.unavailable, false);
      assert.equal(d.softQuota, null);
      assert.ok(typeof d.availableSpaceInBytes === 'number' && d.availableSpaceInBytes > 0);
    });

    it('creates, reads and updates a file blob store', async () => {
      const res = await sendJson(s, 'POST', '/blobstores/file', { name: 'disk2', path: 'disk2' });
      assert.equal(res.status, 204, await res.text());
      assert.ok(existsSync(path.join(s.dataDir, 'blobs', 'disk2')));
      assert.deepEqual(await (await s.fetch(`${API}/blobstores/file/disk2`)).json(), { name: 'disk2', path: 'disk2', softQuota: null });
      const upd = await sendJson(s, 'PUT', '/blobstores/file/disk2', { path: 'disk2', softQuota: { type: 'spaceUsedQuota', limit: 10 } });
      assert.equal(upd.status, 204, await upd.text());
      const got = await (await s.fetch(`${API}/blobstores/file/disk2`)).json();
      assert.deepEqual(got.softQuota, { type: 'spaceUsedQuota', limit: 10 });
      assert.equal((await s.fetch(`${API}/blobstores/file/nope`)).status, 404);
    });

    it('refuses invalid file blob store bodies naming the field, and duplicates with 409', async () => {
      const field = async (res: Response, f: string) => {
        const text = await res.text();
        assert.equal(res.status, 400, text);
        assert.equal(JSON.parse(text)[0].id, `PARAMETER ${f}`);
      };
      await field(await sendJson(s, 'POST', '/blobstores/file', { name: 'x' }), 'path');
      await field(await sendJson(s, 'POST', '/blobstores/file', { path: 'x' }), 'name');
      await field(await sendJson(s, 'POST', '/blobstores/file', { name: 'bad name!', path: 'x' }), 'name');
      await field(await sendJson(s, 'POST', '/blobstores/file', { name: 'x', path: 'x', softQuota: { type: 'lots', limit: 1 } }), 'softQuota.type');
      await field(await sendJson(s, 'PUT', '/blobstores/file/disk2', { name: 'other', path: 'disk2' }), 'name');
      assert.equal((await sendJson(s, 'POST', '/blobstores/file', { name: 'disk2', path: 'elsewhere' })).status, 409);
    });

    it('counts blobs and bytes as content is uploaded, and reports quota violations', async () => {
      assert.equal((await sendJson(s, 'POST', '/repositories/raw/hosted', { name: 'on-disk2', storage: { blobStoreName: 'disk2', writePolicy: 'ALLOW' } })).status, 201);
      await put(s, 'on-disk2', 'a.txt', 'hello');
      await put(s, 'on-disk2', 'b.txt', 'world!!');
      await put(s, 'on-disk2', 'c.txt', 'hello'); // same bytes as a.txt: deduplicated
      const b = await store(s, 'disk2');
      assert.equal(b.blobCount, 2);
      assert.equal(b.totalSizeInBytes, 12);
      const q = await (await s.fetch(`${API}/blobstores/disk2/quota-status`)).json();
      assert.equal(q.isViolation, true);
      assert.equal(q.blobStoreName, 'disk2');
      const dq = await (await s.fetch(`${API}/blobstores/default/quota-status`)).json();
      assert.equal(dq.isViolation, false);
    });

    it('keeps the path of a blob store that holds blobs, and refuses deleting one in use', async () => {
      const res = await sendJson(s, 'PUT', '/blobstores/file/disk2', { path: 'moved' });
      assert.equal(res.status, 400);
      assert.equal((await res.json())[0].id, 'PARAMETER path');
      assert.equal((await s.fetch(`${API}/blobstores/disk2`, { method: 'DELETE' })).status, 409);
    });

    it('lists tasks with Nexus TaskXO fields', async () => {
      const res = await (await s.fetch(`${API}/tasks`)).json();
      assert.equal(res.continuationToken, null);
      const gc = res.items.find((t: { type: string }) => t.type === 'assetBlob.cleanup');
      assert.ok(gc);
      for (const k of ['id', 'name', 'type', 'message', 'currentState', 'lastRunResult', 'nextRun', 'lastRun']) assert.ok(k in gc, k);
      assert.equal(gc.currentState, 'WAITING');
      assert.deepEqual(await (await s.fetch(`${API}/tasks/${gc.id}`)).json(), gc);
      assert.equal((await s.fetch(`${API}/tasks/nope`)).status, 404);
      assert.equal((await s.fetch(`${API}/tasks/nope/run`, { method: 'POST' })).status, 404);
    });

    it('reclaims the bytes of deleted content with the blob GC task', async () => {
      // Deleting b.txt frees its blob; a.txt and c.txt still share theirs.
      assert.equal((await s.fetch('/repository/on-disk2/b.txt', { method: 'DELETE' })).status, 204);
      assert.equal((await store(s, 'disk2')).blobCount, 2, 'bytes stay until GC');
      const t = await runBlobGc(s);
      assert.equal(t.lastRunResult, 'OK');
      assert.match(t.message, /reclaimed/);
      const after = await store(s, 'disk2');
      assert.equal(after.blobCount, 1);
      assert.equal(after.totalSizeInBytes, 5);
      // Deleting the repository leaves the last blob to GC too; then the store can go.
      assert.equal((await s.fetch(`${API}/repositories/on-disk2`, { method: 'DELETE' })).status, 204);
      await runBlobGc(s);
      assert.equal((await store(s, 'disk2')).blobCount, 0);
      assert.equal((await s.fetch(`${API}/blobstores/disk2`, { method: 'DELETE' })).status, 204);
      assert.equal((await s.fetch(`${API}/blobstores/file/disk2`)).status, 404);
      assert.equal((await s.fetch(`${API}/blobstores/disk2`, { method: 'DELETE' })).status, 404);
    });

    it('creates an S3 blob store from Nexus bucketConfiguration; the secret is never returned', async () => {
      const body = {
        name: 'bucket1',
        softQuota: null,
        bucketConfiguration: {
          bucket: { region: 'us-east-1', name: s3.bucket, prefix: `stowage-${db}`, expiration: 3 },
          bucketSecurity: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
          advancedBucketConnection: { endpoint: s3.endpoint, forcePathStyle: true },
        },
      };
      const res = await sendJson(s, 'POST', '/blobstores/s3', body);
      assert.equal(res.status, 201, await res.text());
      const row = await s.app.blobStores.byName('bucket1');
      // The secret key is stored encrypted (secrets at rest).
      assert.ok(s.app.secrets.isEncrypted(String(row!.attributes.secretAccessKey)));
      assert.deepEqual(
        { ...row!.attributes, secretAccessKey: s.app.secrets.decrypt(String(row!.attributes.secretAccessKey)) },
        {
          bucket: s3.bucket,
          region: 'us-east-1',
          prefix: `stowage-${db}`,
          endpoint: s3.endpoint,
          forcePathStyle: true,
          accessKeyId: s3.accessKeyId,
          secretAccessKey: s3.secretAccessKey,
          expiration: 3,
        },
      );
      const got = await s.fetch(`${API}/blobstores/s3/bucket1`);
      const text = await got.text();
      assert.equal(got.status, 200, text);
      assert.ok(!text.includes('secretAccessKey'), text);
      const xo = JSON.parse(text);
      assert.deepEqual(xo.bucketConfiguration.bucket, { region: 'us-east-1', name: s3.bucket, prefix: `stowage-${db}`, expiration: 3 });
      assert.equal(xo.bucketConfiguration.bucketSecurity.accessKeyId, s3.accessKeyId);
      assert.equal(xo.bucketConfiguration.advancedBucketConnection.endpoint, s3.endpoint);
      assert.equal(xo.bucketConfiguration.advancedBucketConnection.forcePathStyle, true);
      assert.equal((await s.fetch(`${API}/blobstores/file/bucket1`)).status, 404);
      assert.equal((await store(s, 'bucket1')).type, 'S3');

      // GET → PUT (no secret in it) keeps the stored secret.
      xo.softQuota = { type: 'spaceUsedQuota', limit: 1_000_000 };
      const upd = await sendJson(s, 'PUT', '/blobstores/s3/bucket1', xo);
      assert.equal(upd.status, 204, await upd.text());
      const row2 = await s.app.blobStores.byName('bucket1');
      assert.equal(s.app.secrets.decrypt(String(row2!.attributes.secretAccessKey)), s3.secretAccessKey);
      assert.deepEqual(row2!.attributes.softQuota, { type: 'spaceUsedQuota', limit: 1_000_000 });
    });

    it('refuses invalid S3 bodies naming the field', async () => {
      const field = async (body: unknown, f: string) => {
        const res = await sendJson(s, 'POST', '/blobstores/s3', body);
        const text = await res.text();
        assert.equal(res.status, 400, text);
        assert.equal(JSON.parse(text)[0].id, `PARAMETER ${f}`);
      };
      await field({ name: 'b2' }, 'bucketConfiguration');
      await field({ name: 'b2', bucketConfiguration: { bucket: { region: 'x' } } }, 'bucketConfiguration.bucket.name');
      await field({ name: 'b2', bucketConfiguration: { bucket: { name: 'abc' }, bucketSecurity: { accessKeyId: 'k' } } }, 'bucketConfiguration.bucketSecurity.secretAccessKey');
      await field({ name: 'b2', bucketConfiguration: { bucket: { name: 'abc' }, bucketSecurity: { role: 'arn:aws:iam::1:role/x' } } }, 'bucketConfiguration.bucketSecurity.role');
      await field(
        { name: 'b2', bucketConfiguration: { bucket: { name: 'abc' }, advancedBucketConnection: { endpoint: 'ftp://host/x' } } },
        'bucketConfiguration.advancedBucketConnection.endpoint',
      );
      assert.equal(await s.app.blobStores.byName('b2'), undefined);
    });

    it('stores content in the S3 blob store and reports its usage', async () => {
      assert.equal((await sendJson(s, 'POST', '/repositories/raw/hosted', { name: 'on-s3', storage: { blobStoreName: 'bucket1' } })).status, 201);
      await put(s, 'on-s3', 'dir/x.bin', 'x'.repeat(1000));
      const b = await store(s, 'bucket1');
      assert.equal(b.blobCount, 1);
      assert.equal(b.totalSizeInBytes, 1000);
      assert.equal(b.unavailable, false);
      assert.equal(await (await s.fetch('/repository/on-s3/dir/x.bin')).text(), 'x'.repeat(1000));
      assert.equal((await s.fetch(`${API}/blobstores/bucket1`, { method: 'DELETE' })).status, 409);
      assert.equal((await s.fetch(`${API}/repositories/on-s3`, { method: 'DELETE' })).status, 204);
      await runBlobGc(s);
      assert.equal((await store(s, 'bucket1')).blobCount, 0);
      assert.equal((await s.fetch(`${API}/blobstores/bucket1`, { method: 'DELETE' })).status, 204);
    });

    it('asks anonymous callers to authenticate', async () => {
      for (const [method, p] of [
        ['GET', '/blobstores'],
        ['POST', '/blobstores/file'],
        ['GET', '/blobstores/file/default'],
        ['GET', '/blobstores/default/quota-status'],
        ['DELETE', '/blobstores/default'],
        ['GET', '/tasks'],
      ]) {
        assert.equal((await s.fetch(API + p, { method, auth: null })).status, 401, `${method} ${p}`);
      }
      const tasks = await (await s.fetch(`${API}/tasks`)).json();
      assert.equal((await s.fetch(`${API}/tasks/${tasks.items[0].id}/run`, { method: 'POST', auth: null })).status, 401);
    });
  });
}
