import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { ChunkRefused, ChunkedBlob, ChunkedBlobs } from '../../src/blob/chunked-blob.js';
import { Hasher } from '../../src/blob/digest-stream.js';
import { FileBlobDriver } from '../../src/blob/file-driver.js';

const hex = (algo: string, data: Buffer) => createHash(algo).update(data).digest('hex');
const dir = mkdtempSync(path.join(tmpdir(), 'stowage-chunked-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const store = new FileBlobDriver(dir);
let n = 0;
/** A new upload in the store: its id, and the file the file driver keeps its bytes in. */
const newUpload = () => {
  const id = `u${n++}`;
  return { id, file: path.join(dir, '.uploads', id) };
};
const expectAll = (d: { sha256: string; sha1?: string; md5?: string; size: number }, data: Buffer) =>
  assert.deepEqual(d, { sha256: hex('sha256', data), sha1: hex('sha1', data), md5: hex('md5', data), size: data.length });

describe('Hasher', () => {
  it('gives the three digests of chunks fed across pauses (worker path and inline)', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    for (const hint of [undefined, 100]) {
      const h = new Hasher(hint);
      for (let off = 0; off < data.length; off += 70_000) {
        await h.update(data.subarray(off, off + 70_000));
        if (off % 700_000 === 0) h.pause();
      }
      expectAll(await h.digest(), data);
    }
  });
});

describe('ChunkedBlob', () => {
  it('appends pieces, hashing them as they arrive, and checks the offset', async () => {
    const data = randomBytes(2 * 1024 * 1024 + 5);
    const { id, file } = newUpload();
    const b = new ChunkedBlob(store, id);
    assert.equal(await b.append(Readable.from([data.subarray(0, 1000)]), { at: 0 }), 1000);
    await assert.rejects(b.append(Readable.from([data.subarray(1000)]), { at: 0 }), (e) => e instanceof ChunkRefused && e.size === 1000);
    assert.equal(await b.append(Readable.from([data.subarray(1000)]), { at: 1000 }), data.length);
    assert.equal(b.rehashed, 0);
    expectAll(await b.finish(), data);
    assert.deepEqual(readFileSync(file), data);
  });

  it('hashes from the store what it has not seen: a new process, or bytes appended elsewhere', async () => {
    const data = randomBytes(1024 * 1024 + 3);
    const { id, file } = newUpload();
    await store.append(id, 0, Readable.from([data.subarray(0, 500_000)]));
    const b = new ChunkedBlob(store, id);
    await b.append(Readable.from([data.subarray(500_000, 600_000)]));
    assert.equal(b.rehashed, 500_000);
    appendFileSync(file, data.subarray(600_000)); // "another node"
    expectAll(await b.finish(), data);
    assert.equal(b.rehashed, data.length - 100_000);
  });

  it('refuses a second piece while one is arriving; a failed piece leaves the state rebuilt from the store', async () => {
    const { id, file } = newUpload();
    const b = new ChunkedBlob(store, id);
    const slow = new PassThrough();
    const first = b.append(slow);
    slow.write(Buffer.alloc(10, 1));
    await new Promise((r) => setTimeout(r, 20));
    await assert.rejects(b.append(Readable.from([Buffer.alloc(5)])), ChunkRefused);
    await assert.rejects(b.finish(), ChunkRefused);
    slow.destroy(new Error('client went away'));
    await assert.rejects(first);
    const onDisk = readFileSync(file);
    await b.append(Readable.from([Buffer.from('tail')]));
    expectAll(await b.finish(), Buffer.concat([onDisk, Buffer.from('tail')]));
  });

  it('a limit on the total size', async () => {
    const b = new ChunkedBlob(store, newUpload().id);
    await b.append(Readable.from([Buffer.alloc(60)]), { maxSize: 100 });
    await assert.rejects(b.append(Readable.from([Buffer.alloc(60)]), { maxSize: 100 }), { code: 'PAYLOAD_TOO_LARGE' });
  });

  it('ChunkedBlobs keeps one state per id and forgets removed ones', () => {
    const reg = new ChunkedBlobs();
    const a = reg.get('x', store);
    assert.equal(reg.get('x', store), a);
    reg.remove('x');
    assert.notEqual(reg.get('x', store), a);
    assert.equal(reg.size, 1);
  });
});
