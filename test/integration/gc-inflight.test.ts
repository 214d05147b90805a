/**
 * Blob GC with a grace of 0, run in a loop while many raw uploads (bodies sent in slow pieces) and
 * docker chunked uploads are in flight: no upload fails, every stored file is served byte-exact,
 * and once they are over one more GC leaves the store holding exactly the blobs the database names
 * (no orphan, no temp file). File and S3 (s3rver) blob stores, SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { ADMIN, DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { createS3BlobStore, startS3, type S3Server } from '../helpers/s3.js';
import { filesUnder } from '../helpers/files.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const RAW_UPLOADS = 60;
const DOCKER_UPLOADS = 24;
const CONCURRENCY = 12;

/** A raw PUT whose body goes out in pieces with pauses, so its temp file exists across several GC runs. */
function slowPut(url: string, body: Buffer, pieces: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'PUT', headers: { Authorization: ADMIN, 'Content-Type': 'application/octet-stream', 'Content-Length': body.length } });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    void (async () => {
      const step = Math.ceil(body.length / pieces);
      for (let off = 0; off < body.length; off += step) {
        req.write(body.subarray(off, off + step));
        await sleep(15);
      }
      req.end();
    })();
  });
}

async function dockerUpload(s: TestServer, repo: string, body: Buffer): Promise<string | null> {
  const p = await s.fetch(`/repository/${repo}/v2/img/blobs/uploads/`, { method: 'POST' });
  if (p.status !== 202) return `POST ${p.status} ${await p.text()}`;
  let location = p.headers.get('location')!;
  const step = Math.ceil(body.length / 3);
  for (let off = 0; off < body.length; off += step) {
    const part = body.subarray(off, off + step);
    const r = await s.fetch(location, {
      method: 'PATCH',
      body: new Uint8Array(part),
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${off}-${off + part.length - 1}` },
    });
    if (r.status !== 202) return `PATCH ${r.status} ${await r.text()}`;
    location = r.headers.get('location')!;
    await sleep(5);
  }
  const put = await s.fetch(`${location}${location.includes('?') ? '&' : '?'}digest=sha256:${sha256(body)}`, { method: 'PUT' });
  if (put.status !== 201) return `PUT ${put.status} ${await put.text()}`;
  return null;
}

/** Runs `jobs` with at most `n` at a time. */
async function pool(jobs: Array<() => Promise<void>>, n: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < jobs.length) await jobs[next++]();
    }),
  );
}

for (const db of DATABASES) {
  for (const store of ['file', 's3'] as const) {
    describe(`blob GC with grace 0 during uploads (${store} store, ${db})`, { timeout: 300_000 }, () => {
      let s: TestServer;
      let s3: S3Server | undefined;
      const storeName = store === 'file' ? 'default' : 'bucket1';

      before(async () => {
        s = await startServer({ db });
        if (store === 's3') {
          s3 = await startS3();
          await createS3BlobStore((p, i) => s.fetch(p, i), s3, storeName, { prefix: 'gc' });
        }
        await s.repo('raw', 'hosted', { name: 'files', storage: { blobStoreName: storeName, writePolicy: 'ALLOW' } });
        await s.repo('docker', 'hosted', { name: 'dock', storage: { blobStoreName: storeName, writePolicy: 'ALLOW' }, docker: { v1Enabled: false, forceBasicAuth: false } });
      });
      after(async () => {
        await s?.stop();
        await s3?.stop();
      });

      it('never removes the bytes of an upload in flight, and leaves no orphan once they end', async (t) => {
        const raw = Array.from({ length: RAW_UPLOADS }, (_, i) => ({ path: `gc/${i}.bin`, body: randomBytes(48 * 1024 + i) }));
        const dock = Array.from({ length: DOCKER_UPLOADS }, (_, i) => randomBytes(40 * 1024 + i));
        const failures: string[] = [];
        let running = true;
        let gcRuns = 0;
        const gcLoop = (async () => {
          while (running) {
            await s.app.blobs.gc(0);
            gcRuns++;
            await sleep(1);
          }
        })();
        try {
          await pool(
            [
              ...raw.map((u) => async () => {
                const r = await slowPut(`${s.url}/repository/files/${u.path}`, u.body, 4);
                if (r.status !== 201) failures.push(`raw ${u.path}: ${r.status} ${r.text}`);
              }),
              ...dock.map((b, i) => async () => {
                const err = await dockerUpload(s, 'dock', b);
                if (err) failures.push(`docker #${i}: ${err}`);
              }),
            ].sort(() => Math.random() - 0.5),
            CONCURRENCY,
          );
        } finally {
          running = false;
          await gcLoop;
        }
        t.diagnostic(`${gcRuns} GC runs with grace 0 during ${RAW_UPLOADS} raw and ${DOCKER_UPLOADS} docker uploads`);
        assert.deepEqual(failures, [], 'no upload failed');

        // Every upload is served with its bytes: GC took nothing an upload had written.
        for (const u of raw) {
          const r = await s.fetch(`/repository/files/${u.path}`);
          assert.equal(r.status, 200, `${u.path} is served`);
          assert.equal(sha256(Buffer.from(await r.arrayBuffer())), sha256(u.body), `${u.path} bytes`);
        }
        for (const b of dock) {
          const r = await s.fetch(`/repository/dock/v2/img/blobs/sha256:${sha256(b)}`);
          assert.equal(r.status, 200, 'docker blob is served');
          assert.equal(sha256(Buffer.from(await r.arrayBuffer())), sha256(b));
        }

        // Nothing in flight any more: one more GC and the store holds exactly what the database names.
        await s.app.blobs.gc(0);
        const storeId = (await s.app.db('blob_stores').where({ name: storeName }).first()).id as number;
        const keys = (await s.app.db('blobs').where({ store_id: storeId }).select('storage_key')).map((r) => String(r.storage_key)).sort();
        assert.ok(keys.length >= RAW_UPLOADS + DOCKER_UPLOADS, 'a blob per upload');
        const driver = await s.app.blobStores.driver(storeId);
        const stored: string[] = [];
        for await (const e of driver.list('content/')) stored.push(e.key);
        assert.deepEqual(stored.sort(), keys, 'no orphan in the store');
        if (store === 'file') {
          const root = path.join(s.dataDir, 'blobs', 'default');
          assert.deepEqual(filesUnder(path.join(root, '.tmp')), [], 'no temp file left');
        }
      });
    });
  }
}
