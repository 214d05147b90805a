/**
 * Two Stowage nodes, each with a data directory of its own, sharing only PostgreSQL and the blob
 * store (a file store on a shared volume, and an S3 bucket), as a highly-available deployment runs
 * them: both start at once on an empty database, and everything one node changes — repositories,
 * content, proxy block state, task leases, bearer tokens, upload sessions — the other sees. Nothing
 * one node needs may live in the other's data directory.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createDatabase } from '../helpers/postgres.js';
import { ADMIN, ADMIN_PASSWORD, basic, startServer, type TestServer } from '../helpers/stowage.js';
import { createS3BlobStore, startS3, type S3Server } from '../helpers/s3.js';
import { filesUnder } from '../helpers/files.js';

/** The one setting every node of a cluster must share (it signs bearer tokens, encrypts secrets). */
const CLUSTER_ENV = { STOWAGE_SECRET_KEY: 'multi-node-test-secret-key-0123456789' };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Polls until `check` passes (other nodes revalidate their caches about once a second). */
async function eventually(check: () => Promise<void>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(100);
    }
  }
}

describe('two nodes on one PostgreSQL', { timeout: 120_000 }, () => {
  let a: TestServer;
  let b: TestServer;
  let dirA: string;
  let dirB: string;
  let sharedVolume: string;
  let s3: S3Server;
  let down: http.Server;

  before(async () => {
    dirA = mkdtempSync(path.join(tmpdir(), 'stowage-node-a-'));
    dirB = mkdtempSync(path.join(tmpdir(), 'stowage-node-b-'));
    sharedVolume = mkdtempSync(path.join(tmpdir(), 'stowage-shared-blobs-'));
    const dbUrl = await createDatabase();
    // Both nodes start at the same moment on an empty database: migrations, the admin user and
    // the default tasks must each be created exactly once, and neither start may fail.
    [a, b] = await Promise.all([startServer({ dataDir: dirA, dbUrl, env: CLUSTER_ENV }), startServer({ dataDir: dirB, dbUrl, env: CLUSTER_ENV })]);
    // The blob stores both nodes share: a directory on a shared volume (absolute path), an S3 bucket.
    const created = await a.fetch('/service/rest/v1/blobstores/file', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'shared', path: sharedVolume }),
    });
    assert.equal(created.status, 204, await created.text());
    s3 = await startS3();
    await createS3BlobStore((p, i) => a.fetch(p, i), s3, 'bucket', { prefix: 'cluster' });
    // A remote that always fails, for the shared auto-block state.
    down = http.createServer((_req, res) => {
      res.statusCode = 503;
      res.end('down');
    });
    await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    await a?.stop({ keepData: true });
    await b?.stop({ keepData: true });
    down?.closeAllConnections();
    down?.close();
    await s3?.stop();
    for (const d of [dirA, dirB, sharedVolume]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('started together: one admin, one set of default tasks, both answer', async () => {
    for (const n of [a, b]) assert.equal((await n.fetch('/service/rest/v1/status/writable')).status, 200);
    const users = await a.app.db('users').where({ user_id: 'admin' });
    assert.equal(users.length, 1);
    const tasks = (await (await b.fetch('/service/rest/v1/tasks')).json()) as { items: Array<{ type: string }> };
    const types = tasks.items.map((t) => t.type);
    assert.equal(types.length, new Set(types).size, `duplicate default tasks: ${types.join(', ')}`);
    assert.ok(types.includes('assetBlob.cleanup'));
  });

  it('a repository created on one node serves content on the other; deleting it is seen too', async () => {
    const res = await a.fetch('/service/rest/v1/repositories/raw/hosted', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'shared', online: true, storage: { blobStoreName: 'shared', strictContentTypeValidation: false, writePolicy: 'ALLOW' } }),
    });
    assert.equal(res.status, 201, await res.text());
    const body = randomBytes(300_000);
    await eventually(async () => {
      const put = await b.fetch('/repository/shared/dir/file.bin', { method: 'PUT', body });
      assert.equal(put.status, 201);
    });
    const got = await a.fetch('/repository/shared/dir/file.bin');
    assert.equal(got.status, 200);
    assert.equal(sha256(Buffer.from(await got.arrayBuffer())), sha256(body));

    // A redeploy on A replaces what B serves.
    const next = randomBytes(1000);
    assert.ok([200, 201].includes((await a.fetch('/repository/shared/dir/file.bin', { method: 'PUT', body: next })).status));
    assert.equal(sha256(Buffer.from(await (await b.fetch('/repository/shared/dir/file.bin')).arrayBuffer())), sha256(next));

    assert.equal((await b.fetch('/service/rest/v1/repositories/shared', { method: 'DELETE' })).status, 204);
    await eventually(async () => assert.equal((await a.fetch('/repository/shared/dir/file.bin')).status, 404));
  });

  it('a proxy auto-blocked by one node shows the same block on the other', async () => {
    const remoteUrl = `http://127.0.0.1:${(down.address() as AddressInfo).port}/`;
    const res = await a.fetch('/service/rest/v1/repositories/raw/proxy', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        name: 'flaky',
        online: true,
        storage: { blobStoreName: 'shared', strictContentTypeValidation: false },
        proxy: { remoteUrl, contentMaxAge: 1440, metadataMaxAge: 1440 },
        negativeCache: { enabled: false, timeToLive: 1 },
        httpClient: { blocked: false, autoBlock: true, connection: { retries: 0, timeout: 5 } },
      }),
    });
    assert.equal(res.status, 201, await res.text());
    await eventually(async () => {
      const r = await a.fetch('/repository/flaky/x.txt');
      assert.ok(r.status >= 500, `expected a gateway error, got ${r.status}`);
    });
    const statusOn = async (n: TestServer) => (await (await n.fetch('/service/rest/v1/repositories/flaky/status')).json()) as { status?: string; blocked?: boolean };
    const sa = await statusOn(a);
    await eventually(async () => {
      const sb = await statusOn(b);
      assert.deepEqual(sb, sa);
      assert.match(JSON.stringify(sb), /block/i);
    });
  });

  it('a task runs on exactly one node at a time (the lease is in the database)', async () => {
    let runs = 0;
    let concurrent = 0;
    let maxConcurrent = 0;
    const slow = {
      id: 'test.slow',
      name: 'Test - slow',
      async run() {
        runs++;
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        await sleep(400);
        concurrent--;
        return 'slept';
      },
    };
    a.app.tasks.register(slow);
    b.app.tasks.register(slow);
    const t = await a.app.tasks.create('slow', 'test.slow', 0, {});
    const results = await Promise.allSettled([a.app.tasks.run(t.task_id), b.app.tasks.run(t.task_id)]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.match(String(refused.reason?.message), /already running/);
    assert.equal(runs, 1);
    assert.equal(maxConcurrent, 1);
    // Once finished, the other node may run it.
    const again = await b.app.tasks.run(t.task_id);
    assert.equal(again.last_result, 'OK');
    assert.equal(runs, 2);
  });

  for (const store of ['shared', 'bucket']) {
    it(`a bearer token issued by one node is accepted by the other; a chunked push moves between nodes (${store} blob store)`, async () => {
      const repo = `images-${store}`;
      const res = await a.fetch('/service/rest/v1/repositories/docker/hosted', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          name: repo,
          online: true,
          storage: { blobStoreName: store, strictContentTypeValidation: true, writePolicy: 'ALLOW' },
          docker: { v1Enabled: false, forceBasicAuth: false },
        }),
      });
      assert.equal(res.status, 201, await res.text());
      const tokenRes = await a.fetch('/v2/token?service=stowage&scope=' + encodeURIComponent(`repository:${repo}/app:pull,push`), { auth: basic('admin', ADMIN_PASSWORD) });
      const tokenText = await tokenRes.text();
      assert.equal(tokenRes.status, 200, tokenText);
      const { token } = JSON.parse(tokenText) as { token: string };
      const bearer = `Bearer ${token}`;

      // Start a chunked upload on B, send the first chunk to A and the second to B, finish on A.
      const blob = randomBytes(3 * 1024 * 1024 + 7);
      const cut = 2 * 1024 * 1024;
      const digest = `sha256:${sha256(blob)}`;
      let r = await eventually2(() => b.fetch(`/v2/${repo}/app/blobs/uploads/`, { method: 'POST', auth: bearer }), 202);
      let location = r.headers.get('location')!;
      const rel = (u: string) => (u.startsWith('http') ? new URL(u).pathname + new URL(u).search : u);
      r = await a.fetch(rel(location), {
        method: 'PATCH',
        auth: bearer,
        body: blob.subarray(0, cut),
        headers: { 'Content-Range': `0-${cut - 1}`, 'Content-Type': 'application/octet-stream' },
      });
      assert.equal(r.status, 202, await r.text());
      location = r.headers.get('location')!;
      // B never saw the first chunk: it reads those bytes back from the shared store to hash them.
      r = await b.fetch(rel(location), {
        method: 'PATCH',
        auth: bearer,
        body: blob.subarray(cut),
        headers: { 'Content-Range': `${cut}-${blob.length - 1}`, 'Content-Type': 'application/octet-stream' },
      });
      assert.equal(r.status, 202, await r.text());
      assert.equal(r.headers.get('range'), `0-${blob.length - 1}`);
      location = r.headers.get('location')!;
      const status = await a.fetch(rel(location), { auth: bearer });
      assert.equal(status.status, 204);
      assert.equal(status.headers.get('range'), `0-${blob.length - 1}`, 'A sees every byte B received');
      const sep = location.includes('?') ? '&' : '?';
      r = await a.fetch(rel(location) + `${sep}digest=${digest}`, { method: 'PUT', auth: bearer });
      assert.equal(r.status, 201, await r.text());
      const pulled = await b.fetch(`/v2/${repo}/app/blobs/${digest}`, { auth: bearer });
      assert.equal(pulled.status, 200);
      assert.equal(sha256(Buffer.from(await pulled.arrayBuffer())), sha256(blob));
      // Basic still works alongside.
      assert.equal((await b.fetch(`/v2/${repo}/app/blobs/${digest}`, { method: 'HEAD', auth: ADMIN })).status, 200);
      // Nothing of the upload was kept in either node's data directory.
      for (const dir of [dirA, dirB]) assert.deepEqual(filesUnder(path.join(dir, 'tmp')), [], `${dir}/tmp holds upload bytes`);
    });
  }
});

/** Retries a request until it answers `status` (the other node's repository cache catching up). */
async function eventually2(req: () => Promise<Response>, status: number, ms = 5000): Promise<Response> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await req();
    if (r.status === status || Date.now() > deadline) {
      assert.equal(r.status, status, await r.clone().text());
      return r;
    }
    await r.arrayBuffer();
    await sleep(100);
  }
}
