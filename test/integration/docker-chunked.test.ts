/**
 * Chunked docker uploads hashed as the chunks arrive (one pass over the bytes): the hash state
 * kept between PATCHes, rebuilt from the session file after a restart, a wrong digest after many
 * chunks storing nothing, a second chunk refused while one is being received, sha512 digests, and
 * the same uploads onto an S3 blob store (the session file is uploaded at the PUT).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ADMIN, startServer, type TestServer } from '../helpers/stowage.js';
import { createS3BlobStore, startS3, type S3Server } from '../helpers/s3.js';

const sha256 = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const sha512 = (b: Buffer) => 'sha512:' + createHash('sha512').update(b).digest('hex');
const OCT = { 'Content-Type': 'application/octet-stream' };
const MiB = 1024 * 1024;

async function blobCount(s: TestServer): Promise<number> {
  const r = (await s.app.db('blobs').count({ n: '*' }).first()) as { n: unknown };
  return Number(r.n);
}

/** Uploads `body` as `chunks` PATCHes with Content-Range; returns the upload's location (relative). */
async function patchAll(s: TestServer, repo: string, body: Buffer, chunks: number): Promise<string> {
  const p = await s.fetch(`/repository/${repo}/v2/img/blobs/uploads/`, { method: 'POST' });
  assert.equal(p.status, 202);
  return patchFrom(s, p.headers.get('location')!, body, chunks, 0);
}

/** Sends `body` as `chunks` PATCHes starting at `offset` of the upload at `location`; returns the last location. */

async function patchFrom(s: TestServer, location: string, body: Buffer, chunks: number, offset: number): Promise<string> {
  const step = Math.ceil(body.length / chunks);
  for (let off = 0; off < body.length; off += step) {
    const part = body.subarray(off, off + step);
    const r = await s.fetch(location, {
      method: 'PATCH',
      body: new Uint8Array(part),
      headers: { ...OCT, 'Content-Range': `${offset + off}-${offset + off + part.length - 1}` },
    });
    assert.equal(r.status, 202, await r.text());
    assert.equal(r.headers.get('range'), `0-${offset + off + part.length - 1}`);
    location = r.headers.get('location')!;
  }
  return location;
}

const withDigest = (location: string, digest: string) => `${location}${location.includes('?') ? '&' : '?'}digest=${digest}`;
const uuidOf = (location: string) => /uploads\/([0-9a-f-]{36})/.exec(location)![1];

/** A PATCH whose body stalls after `first`; `finish()` sends the rest and resolves with the status. */
function stalledPatch(url: string, first: Buffer, rest: Buffer): { finish(): Promise<number> } {
  const req = http.request(url, { method: 'PATCH', headers: { Authorization: ADMIN, ...OCT, 'Transfer-Encoding': 'chunked' } });
  const done = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
  });
  req.write(first);
  return {
    finish() {
      req.end(rest);
      return done;
    },
  };
}

describe('docker chunked uploads, hashed as they arrive (file store)', { timeout: 120_000 }, () => {
  let s: TestServer;
  let dataDir: string;
  // Upload bytes live in the blob store (beside the blobs), not in the node's data directory.
  const uploads = () => path.join(dataDir, 'blobs', 'default', '.uploads');
  const chunkState = async (uuid: string) => s.app.blobs.chunkedBlob((await s.app.blobStores.require('default')).id, uuid);

  before(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'stowage-chunked-'));
    s = await startServer({ dataDir });
    await s.repo('docker', 'hosted', { name: 'dock', docker: { v1Enabled: false, forceBasicAuth: false } });
  });

  after(async () => {
    await s?.stop({ keepData: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('many PATCHes then PUT: stored, every byte hashed as it arrived (nothing read back)', async () => {
    const body = randomBytes(5 * MiB + 123);
    const location = await patchAll(s, 'dock', body, 17);
    const uuid = uuidOf(location);
    assert.ok(existsSync(path.join(uploads(), uuid)), 'the bytes so far are in the blob store');
    assert.ok(!existsSync(path.join(dataDir, 'tmp', 'docker-uploads')), "nothing in the node's data directory");
    const state = await chunkState(uuid);
    assert.equal(state.rehashed, 0, 'no byte was hashed from the session file');
    const put = await s.fetch(withDigest(location, sha256(body)), { method: 'PUT' });
    assert.equal(put.status, 201, await put.text());
    const g = await s.fetch(`/repository/dock/v2/img/blobs/${sha256(body)}`);
    assert.equal(g.status, 200);
    assert.deepEqual(Buffer.from(await g.arrayBuffer()), body);
    // The row carries the digests docker declares (sha256 only), computed in the one pass.
    const row = await s.app
      .db('blobs')
      .where({ sha256: sha256(body).slice(7) })
      .first();
    assert.equal(row.sha1, null);
    assert.equal(row.md5, null);
    assert.equal(Number(row.size), body.length);
    assert.ok(!existsSync(path.join(uploads(), uuid)), 'the session file was moved into the store');
  });

  it('a wrong digest after many PATCHes stores nothing and ends the session', async () => {
    const body = randomBytes(3 * MiB);
    const before = await blobCount(s);
    const location = await patchAll(s, 'dock', body, 12);
    const wrong = sha256(Buffer.from('something else'));
    const put = await s.fetch(withDigest(location, wrong), { method: 'PUT' });
    assert.equal(put.status, 400);
    assert.equal(((await put.json()) as { errors: Array<{ code: string }> }).errors[0].code, 'DIGEST_INVALID');
    assert.equal(await blobCount(s), before);
    assert.equal((await s.fetch(`/repository/dock/v2/img/blobs/${sha256(body)}`)).status, 404);
    assert.equal((await s.fetch(`/repository/dock/v2/img/blobs/${wrong}`)).status, 404);
    assert.equal((await s.fetch(location)).status, 404, 'the session is over');
    assert.ok(!existsSync(path.join(uploads(), uuidOf(location))));
  });

  it('a final chunk on the PUT, and a sha512 digest', async () => {
    const body = randomBytes(2 * MiB + 7);
    const p = await s.fetch('/repository/dock/v2/img/blobs/uploads/', { method: 'POST' });
    let location = p.headers.get('location')!;
    location = await patchFrom(s, location, body.subarray(0, MiB), 3, 0);
    const put = await s.fetch(withDigest(location, sha512(body)), {
      method: 'PUT',
      body: new Uint8Array(body.subarray(MiB)),
      headers: { ...OCT, 'Content-Range': `${MiB}-${body.length - 1}` },
    });
    assert.equal(put.status, 201, await put.text());
    const g = await s.fetch(`/repository/dock/v2/img/blobs/${sha512(body)}`);
    assert.equal(g.status, 200);
    assert.deepEqual(Buffer.from(await g.arrayBuffer()), body);
  });

  it('a second PATCH (or the PUT) while a chunk is arriving is refused with 416; the first completes', async () => {
    const body = randomBytes(2 * MiB);
    const p = await s.fetch('/repository/dock/v2/img/blobs/uploads/', { method: 'POST' });
    const location = p.headers.get('location')!;
    const slow = stalledPatch(s.url + location, body.subarray(0, MiB), body.subarray(MiB));
    const uuid = uuidOf(location);
    // Wait until the first chunk's bytes are arriving.
    for (let i = 0; i < 200 && !(await chunkState(uuid)).inProgress; i++) await new Promise((r) => setTimeout(r, 20));
    const second = await s.fetch(location, { method: 'PATCH', body: new Uint8Array(body.subarray(0, 10)), headers: { ...OCT, 'Content-Range': '0-9' } });
    assert.equal(second.status, 416);
    assert.equal(((await second.json()) as { errors: Array<{ code: string }> }).errors[0].code, 'BLOB_UPLOAD_INVALID');
    assert.ok(second.headers.get('range'));
    const earlyPut = await s.fetch(withDigest(location, sha256(body)), { method: 'PUT' });
    assert.equal(earlyPut.status, 416);
    assert.equal(await slow.finish(), 202);
    const st = await s.fetch(location);
    assert.equal(st.status, 204, 'the session survived the refused PUT');
    assert.equal(st.headers.get('range'), `0-${body.length - 1}`);
    const put = await s.fetch(withDigest(location, sha256(body)), { method: 'PUT' });
    assert.equal(put.status, 201, await put.text());
    const g = await s.fetch(`/repository/dock/v2/img/blobs/${sha256(body)}`);
    assert.deepEqual(Buffer.from(await g.arrayBuffer()), body);
  });

  it('after a restart the hash state is rebuilt from the session file', async () => {
    const body = randomBytes(4 * MiB + 5);
    const half = 2 * MiB;
    const p = await s.fetch('/repository/dock/v2/img/blobs/uploads/', { method: 'POST' });
    let location = await patchFrom(s, p.headers.get('location')!, body.subarray(0, half), 4, 0);
    await s.stop({ keepData: true });
    s = await startServer({ dataDir });
    const uuid = uuidOf(location);
    location = await patchFrom(s, location, body.subarray(half), 2, half);
    const state = await chunkState(uuid);
    assert.equal(state.rehashed, half, 'the bytes received before the restart were hashed from the file once');
    const wrong = await s.fetch(withDigest(location, sha256(body.subarray(1))), { method: 'PUT' });
    assert.equal(wrong.status, 400);
    // A fresh upload of the same bytes, finished by the restarted node from a state it never held.
    const p2 = await s.fetch('/repository/dock/v2/img/blobs/uploads/', { method: 'POST' });
    const loc2 = await patchFrom(s, p2.headers.get('location')!, body, 3, 0);
    await s.stop({ keepData: true });
    s = await startServer({ dataDir });
    const put = await s.fetch(withDigest(loc2, sha256(body)), { method: 'PUT' });
    assert.equal(put.status, 201, await put.text());
    const g = await s.fetch(`/repository/dock/v2/img/blobs/${sha256(body)}`);
    assert.deepEqual(Buffer.from(await g.arrayBuffer()), body);
    const row = await s.app
      .db('blobs')
      .where({ sha256: sha256(body).slice(7) })
      .first();
    assert.equal(Number(row.size), body.length);
    assert.equal(row.md5, null, 'docker declares sha256 only');
  });
});

describe('docker chunked uploads onto an S3 blob store', { timeout: 120_000 }, () => {
  let s: TestServer;
  let s3: S3Server;

  before(async () => {
    s3 = await startS3();
    s = await startServer();
    await createS3BlobStore((p, i) => s.fetch(p, i), s3, 'bucket1', { prefix: 'chunked' });
    await s.repo('docker', 'hosted', { name: 'ons3', storage: { blobStoreName: 'bucket1', writePolicy: 'ALLOW_ONCE' }, docker: { v1Enabled: false, forceBasicAuth: false } });
  });

  after(async () => {
    await s?.stop();
    await s3?.stop();
  });

  const storeId = async () => (await s.app.blobStores.require('bucket1')).id;
  const chunkState = async (uuid: string) => s.app.blobs.chunkedBlob(await storeId(), uuid);
  const appendedIn = async () => {
    const out: Array<{ id: string; size: number }> = [];
    for await (const u of (await s.app.blobStores.driver(await storeId())).listAppended()) out.push({ id: u.id, size: u.size });
    return out;
  };

  it('many PATCHes then PUT: the blob lands in the bucket; a wrong digest stores nothing', async () => {
    const body = randomBytes(9 * MiB + 11);
    const location = await patchAll(s, 'ons3', body, 6);
    const put = await s.fetch(withDigest(location, sha256(body)), { method: 'PUT' });
    assert.equal(put.status, 201, await put.text());
    const g = await s.fetch(`/repository/ons3/v2/img/blobs/${sha256(body)}`);
    assert.equal(g.status, 200);
    assert.deepEqual(Buffer.from(await g.arrayBuffer()), body);
    const row = await s.app
      .db('blobs')
      .where({ sha256: sha256(body).slice(7) })
      .first();
    const store = await s.app.db('blob_stores').where({ id: row.store_id }).first();
    assert.equal(store.name, 'bucket1');
    assert.ok(!existsSync(path.join(s.dataDir, 'tmp', 'docker-uploads')), "nothing on the node's disk");
    assert.deepEqual(await appendedIn(), [], "the upload's pieces are gone from the bucket");

    const before = await blobCount(s);
    const other = randomBytes(2 * MiB);
    const loc2 = await patchAll(s, 'ons3', other, 4);
    const bad = await s.fetch(withDigest(loc2, sha256(body.subarray(5))), { method: 'PUT' });
    assert.equal(bad.status, 400);
    assert.equal(await blobCount(s), before);
    assert.deepEqual(await appendedIn(), []);
  });

  it('the bytes of an upload in progress are in the bucket; another process (node) finishes it', async () => {
    const body = randomBytes(3 * MiB + 5);
    const location = await patchAll(s, 'ons3', body.subarray(0, 2 * MiB), 2);
    const uuid = uuidOf(location);
    assert.deepEqual(
      (await appendedIn()).map((u) => [u.id, u.size]),
      [[uuid, 2 * MiB]],
    );
    // Forget this process's hash state: the next chunk is hashed after reading the first ones back.
    s.app.blobs.chunked.remove(uuid);
    const loc = await patchFrom(s, location, body.subarray(2 * MiB), 1, 2 * MiB);
    assert.equal((await chunkState(uuid)).rehashed, 2 * MiB);
    const put = await s.fetch(withDigest(loc, sha256(body)), { method: 'PUT' });
    assert.equal(put.status, 201, await put.text());
    const g = await s.fetch(`/repository/ons3/v2/img/blobs/${sha256(body)}`);
    assert.deepEqual(Buffer.from(await g.arrayBuffer()), body);
    assert.deepEqual(await appendedIn(), []);
  });
});
