/**
 * One conformance suite for every BlobDriver (DESIGN.md §2), run against the file driver (a temp
 * directory) and the S3 driver (a real s3rver on a free port).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client } from 'minio';
import type { BlobDriver, BlobEntry } from '../../src/blob/driver.js';
import { FileBlobDriver } from '../../src/blob/file-driver.js';
import { S3BlobDriver } from '../../src/blob/s3-driver.js';
import { DigestStream } from '../../src/blob/digest-stream.js';
import { AppError } from '../../src/errors.js';
import { startS3, type S3Server } from '../helpers/s3.js';

const MiB = 1024 * 1024;
/** Every test fails instead of hanging the run (a stuck request, a stream that never ends). */
const T = { timeout: 120_000 };

interface MultipartCounts {
  count: number;
  bytes: number;
  initiated: number;
  aborted: number;
}

interface DriverFixture {
  driver: BlobDriver;
  /** Temp files a failed write left behind; always [] where the backend cannot tell. */
  leftovers(): Promise<string[]>;
  /** Multipart traffic so far (parts sent and their bytes, uploads started and aborted), where the driver uploads in parts. */
  parts?(): MultipartCounts;
  /** Largest part the driver holds in memory. */
  partSize?: number;
  cleanup(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Sources

/**
 * `size` bytes generated on the fly in 1 MiB chunks (never held whole): one random block with a
 * chunk counter stamped into it, so no two chunks are equal. sha256() is known once it has ended.
 */
function generated(size: number, onChunk?: (producedSoFar: number) => void): { stream: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  const block = randomBytes(MiB);
  let produced = 0;
  let counter = 0;
  const stream = new Readable({
    highWaterMark: MiB,
    read() {
      if (produced >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(MiB, size - produced);
      const chunk = Buffer.from(block.subarray(0, n));
      if (n >= 4) chunk.writeUInt32BE(counter++, 0);
      produced += n;
      hash.update(chunk);
      onChunk?.(produced);
      this.push(chunk);
    },
  });
  return { stream, sha256: () => hash.digest('hex') };
}

/** Emits `bytes` bytes, then fails (`error`) or is destroyed without an error (`destroy`). */
function failing(bytes: number, how: 'error' | 'destroy'): Readable {
  let sent = 0;
  return new Readable({
    highWaterMark: 256 * 1024,
    read() {
      if (sent >= bytes) {
        // Fail on a later tick, as a socket would, not inside read().
        setImmediate(() => (how === 'error' ? this.destroy(new Error('source failed midway')) : this.destroy()));
        return;
      }
      const n = Math.min(256 * 1024, bytes - sent);
      sent += n;
      this.push(randomBytes(n));
    },
  });
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function sha256Of(s: Readable): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of s) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

async function collect(it: AsyncIterable<BlobEntry>): Promise<BlobEntry[]> {
  const out: BlobEntry[] = [];
  for await (const e of it) out.push(e);
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

const isAppError = (code: string) => (e: unknown) => {
  assert.ok(e instanceof AppError, `expected an AppError, got ${String(e)}`);
  assert.equal(e.code, code);
  return true;
};

let keySeq = 0;
/** Keys are never reused (content-addressed store): every test writes fresh ones. */
const fresh = (tag: string) => `t/${tag}/${Date.now().toString(36)}-${(keySeq++).toString(36)}`;

// ---------------------------------------------------------------------------------------------
// The suite

/**
 * `folderRace`: whether the delete/write race in one folder applies. It tests the file driver's
 * own folder pruning; s3rver (unlike real S3, which has no folders) crashes on that race itself.
 */
function conformance(name: string, setup: () => Promise<DriverFixture>, opts: { folderRace: boolean }): void {
  describe(`BlobDriver conformance: ${name}`, () => {
    let fx: DriverFixture;
    let d: BlobDriver;

    before(async () => {
      fx = await setup();
      d = fx.driver;
      await d.check();
    });
    after(async () => {
      await d?.close?.();
      await fx?.cleanup();
    });

    it('round-trips exact bytes and resolves with the size', T, async () => {
      const key = fresh('rt');
      const body = randomBytes(100_003);
      const n = await d.write(key, Readable.from([body.subarray(0, 50_000), body.subarray(50_000)]), body.length);
      assert.equal(n, body.length);
      assert.deepEqual(await readAll(await d.read(key)), body);
    });

    it('round-trips an empty body', T, async () => {
      const key = fresh('empty');
      assert.equal(await d.write(key, Readable.from([])), 0);
      assert.equal((await d.stat(key))?.size, 0);
      assert.equal((await readAll(await d.read(key))).length, 0);
    });

    it('streams a large body (40 MiB + change) without buffering it, and reads back the same sha256', T, async () => {
      const key = fresh('large');
      const size = 40 * MiB + 12_345;
      let maxAhead = 0;
      const src = generated(size, (produced) => {
        if (fx.parts) maxAhead = Math.max(maxAhead, produced - fx.parts().bytes);
      });
      const before = fx.parts?.();
      const n = await d.write(key, src.stream, size);
      assert.equal(n, size);
      const expected = src.sha256();
      if (fx.parts && before) {
        const after = fx.parts();
        // 40 MiB in parts of at most partSize: several parts, i.e. multipart really happened.
        assert.ok(after.count - before.count >= Math.ceil(size / fx.partSize!), `expected multipart, got ${after.count - before.count} parts`);
        assert.equal(after.bytes - before.bytes, size);
        // Never more than ~two parts pulled from the source ahead of what was handed to the service.
        assert.ok(maxAhead <= 2 * fx.partSize! + 2 * MiB, `driver read ${maxAhead} bytes ahead of the upload`);
      }
      assert.equal((await d.stat(key))?.size, size);
      const back = await sha256Of(await d.read(key));
      assert.equal(back.size, size);
      assert.equal(back.sha256, expected);
    });

    it('a body of exactly one part plus one byte and of exactly one part both round-trip', T, async () => {
      const part = fx.partSize ?? 8 * MiB;
      for (const size of [part, part + 1]) {
        const key = fresh('edge');
        const src = generated(size);
        // No size hint: the driver finds the end by itself.
        assert.equal(await d.write(key, src.stream), size);
        const back = await sha256Of(await d.read(key));
        assert.deepEqual(back, { sha256: src.sha256(), size });
      }
    });

    it('reads inclusive byte ranges: first byte, middle, last byte, whole', T, async () => {
      const key = fresh('range');
      const body = randomBytes(1000);
      await d.write(key, Readable.from([body]), body.length);
      assert.deepEqual(await readAll(await d.read(key, { start: 0, end: 0 })), body.subarray(0, 1));
      assert.deepEqual(await readAll(await d.read(key, { start: 10, end: 19 })), body.subarray(10, 20));
      assert.deepEqual(await readAll(await d.read(key, { start: 999, end: 999 })), body.subarray(999, 1000));
      assert.deepEqual(await readAll(await d.read(key, { start: 0, end: 999 })), body);
      assert.deepEqual(await readAll(await d.read(key, { start: 500, end: 999 })), body.subarray(500));
    });

    it('stat: size and modified of a present key, null for an absent one', T, async () => {
      const key = fresh('stat');
      const t0 = Date.now();
      await d.write(key, Readable.from([Buffer.from('hello stat')]));
      const s = await d.stat(key);
      assert.ok(s);
      assert.equal(s.size, 10);
      assert.ok(s.modified instanceof Date);
      // Second granularity on S3 (Last-Modified): allow a little slack both ways.
      assert.ok(Math.abs(s.modified.getTime() - t0) < 60_000, `modified ${s.modified.toISOString()} is not now`);
      assert.equal(await d.stat(fresh('absent')), null);
    });

    it('read of an absent key throws AppError NOT_FOUND before returning a stream', T, async () => {
      await assert.rejects(d.read(fresh('absent')), isAppError('NOT_FOUND'));
      await assert.rejects(d.read(fresh('absent'), { start: 0, end: 0 }), isAppError('NOT_FOUND'));
    });

    it('delete removes a key; deleting an absent key is not an error', T, async () => {
      const key = fresh('del');
      await d.write(key, Readable.from([Buffer.from('bye')]));
      assert.ok(await d.stat(key));
      await d.delete(key);
      assert.equal(await d.stat(key), null);
      await assert.rejects(d.read(key), isAppError('NOT_FOUND'));
      await d.delete(key);
      await d.delete(fresh('never-written'));
    });

    it('lists keys under a prefix with their sizes', T, async () => {
      const root = fresh('list');
      const files: Record<string, number> = {
        [`${root}/a/1`]: 3,
        [`${root}/a/2`]: 5,
        [`${root}/ab/3`]: 11,
        [`${root}/b/1`]: 7,
      };
      for (const [k, size] of Object.entries(files)) await d.write(k, Readable.from([randomBytes(size)]), size);

      const under = await collect(d.list(`${root}/a/`));
      assert.deepEqual(
        under.map((e) => [e.key, e.size]),
        [
          [`${root}/a/1`, 3],
          [`${root}/a/2`, 5],
        ],
      );
      for (const e of under) assert.ok(e.modified instanceof Date && !Number.isNaN(e.modified.getTime()));

      // A prefix is a string prefix, not a directory: `a` matches `a/…` and `ab/…`.
      assert.deepEqual(
        (await collect(d.list(`${root}/a`))).map((e) => e.key),
        [`${root}/a/1`, `${root}/a/2`, `${root}/ab/3`],
      );
      assert.deepEqual(
        (await collect(d.list(`${root}/`))).map((e) => [e.key, e.size]),
        Object.entries(files).sort(),
      );
      const all = (await collect(d.list())).map((e) => e.key);
      for (const k of Object.keys(files)) assert.ok(all.includes(k), `${k} missing from list()`);
      assert.deepEqual(await collect(d.list(fresh('nothing-here'))), []);
    });

    it('writeFile publishes a local file and consumes it', T, async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'stowage-wf-'));
      try {
        const file = path.join(dir, 'upload.bin');
        const body = randomBytes(300_000);
        await writeFile(file, body);
        const key = fresh('wf');
        await d.writeFile(key, file);
        assert.deepEqual(await readAll(await d.read(key)), body);
        assert.equal((await d.stat(key))?.size, body.length);
        await assert.rejects(access(file), /ENOENT/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('writeFile of a file larger than one part', T, async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'stowage-wf-'));
      try {
        const file = path.join(dir, 'big.bin');
        const size = (fx.partSize ?? 8 * MiB) * 2 + 777;
        const src = generated(size);
        await pipeline(src.stream, (await import('node:fs')).createWriteStream(file));
        const key = fresh('wf-big');
        await d.writeFile(key, file);
        assert.deepEqual(await sha256Of(await d.read(key)), { sha256: src.sha256(), size });
        await assert.rejects(access(file), /ENOENT/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    const cases: [string, number, 'error' | 'destroy'][] = [
      ['errors before the first part', 3 * MiB, 'error'],
      ['errors after several parts', 20 * MiB + 5, 'error'],
      ['is destroyed without an error after several parts', 17 * MiB, 'destroy'],
      ['is destroyed without an error right away', 0, 'destroy'],
    ];
    for (const [what, bytes, how] of cases) {
      it(`atomic: a source that ${what} leaves the key absent`, T, async () => {
        const key = fresh('atomic');
        const before = fx.parts?.();
        await assert.rejects(d.write(key, failing(bytes, how)));
        if (fx.parts && before) {
          const after = fx.parts();
          if (bytes > fx.partSize!) assert.equal(after.initiated - before.initiated, 1, 'expected a multipart upload to have started');
          // Every multipart upload the failed write started was aborted.
          assert.equal(after.aborted - before.aborted, after.initiated - before.initiated);
        }
        assert.equal(await d.stat(key), null);
        await assert.rejects(d.read(key), isAppError('NOT_FOUND'));
        const listed = (await collect(d.list('t/atomic/'))).map((e) => e.key);
        assert.ok(!listed.includes(key), `${key} is listed after a failed write`);
        assert.deepEqual(await fx.leftovers(), []);
      });
    }

    it('atomic: a body cut short of its declared size (DigestStream fails at the end) leaves the key absent', T, async () => {
      const key = fresh('atomic');
      const size = 9 * MiB;
      const digest = new DigestStream({ expectedSize: size + 1 });
      const src = generated(size);
      src.stream.pipe(digest);
      await assert.rejects(d.write(key, digest, size + 1), isAppError('SIZE_INVALID'));
      assert.equal(await d.stat(key), null);
      assert.deepEqual(await fx.leftovers(), []);
    });

    it('atomic: a body longer than allowed fails and leaves the key absent', T, async () => {
      const key = fresh('atomic');
      const digest = new DigestStream({ maxSize: 10 * MiB });
      generated(12 * MiB).stream.pipe(digest);
      await assert.rejects(d.write(key, digest), isAppError('PAYLOAD_TOO_LARGE'));
      assert.equal(await d.stat(key), null);
      assert.deepEqual(await fx.leftovers(), []);
    });

    it('concurrent writes to different keys all land intact', T, async () => {
      const sizes = [0, 1, 4096, 1 * MiB + 3, 9 * MiB + 17, 300_000, 17 * MiB, 65_536];
      const srcs = sizes.map((size) => ({ key: fresh('conc'), size, src: generated(size) }));
      const written = await Promise.all(srcs.map((s) => d.write(s.key, s.src.stream, s.size)));
      assert.deepEqual(written, sizes);
      for (const s of srcs) assert.deepEqual(await sha256Of(await d.read(s.key)), { sha256: s.src.sha256(), size: s.size });
    });

    if (opts.folderRace)
      it('concurrent writes and deletes in the same folder do not trip over each other', T, async () => {
        const dir = fresh('churn');
        const ticks = (n: number) =>
          new Promise<void>((resolve) => {
            let i = 0;
            const step = () => (++i >= n ? resolve() : setImmediate(step));
            step();
          });
        for (let round = 0; round < 120; round++) {
          const folder = `${dir}/${round % 5}`;
          const old = `${folder}/old-${round}`;
          await d.write(old, Readable.from([Buffer.from('old')]));
          const neu = `${folder}/new-${round}`;
          // Deleting the last key of a folder (which may prune the folder) while another key is
          // being written into it, the delete starting at staggered points of the write.
          await Promise.all([ticks(round % 12).then(() => d.delete(old)), d.write(neu, Readable.from([Buffer.from('new')]))]);
          assert.equal((await d.stat(neu))?.size, 3, `round ${round}: ${neu} missing`);
          assert.equal(await d.stat(old), null);
          await d.delete(neu);
        }
      });

    it('concurrent reads return the right bytes while other keys are written', T, async () => {
      const stored = await Promise.all(
        Array.from({ length: 12 }, async (_, i) => {
          const key = fresh('cread');
          const body = randomBytes(150_000 + i);
          await d.write(key, Readable.from([body]), body.length);
          return { key, body };
        }),
      );
      const readers = Array.from({ length: 6 }, async (_, j) => {
        for (let r = 0; r < 25; r++) {
          const { key, body } = stored[(r * 5 + j) % stored.length];
          const ranged = r % 3 === 0;
          const got = await readAll(await d.read(key, ranged ? { start: 1000, end: 99_999 } : undefined));
          assert.ok(got.equals(ranged ? body.subarray(1000, 100_000) : body), `wrong bytes for ${key}`);
        }
      });
      const writers = Array.from({ length: 3 }, async () => {
        for (let r = 0; r < 10; r++) {
          const key = fresh('cwrite');
          await d.write(key, Readable.from([randomBytes(80_000)]));
          assert.equal((await d.stat(key))?.size, 80_000);
        }
      });
      await Promise.all([...readers, ...writers]);
    });

    // Uploads in pieces (BlobAppender): docker's chunked uploads keep their bytes in the store.
    let uploadSeq = 0;
    const freshUpload = () => `up-${Date.now().toString(36)}-${(uploadSeq++).toString(36)}`;
    const appended = async () => {
      const out = new Map<string, { size: number; modified: Date }>();
      for await (const u of d.listAppended()) out.set(u.id, { size: u.size, modified: u.modified });
      return out;
    };

    it('appends pieces in order, reads them back from any offset, publishes them as one key', T, async () => {
      const id = freshUpload();
      const body = randomBytes(3 * MiB + 17);
      assert.equal(await d.appendedSize(id), 0);
      assert.equal(await d.append(id, 0, Readable.from([body.subarray(0, MiB)])), MiB);
      assert.equal(await d.append(id, MiB, Readable.from([body.subarray(MiB, MiB + 5)])), MiB + 5);
      assert.equal(await d.append(id, MiB + 5, Readable.from([body.subarray(MiB + 5)])), body.length);
      assert.equal(await d.appendedSize(id), body.length);
      assert.deepEqual(await readAll(await d.readAppended(id, 0)), body);
      assert.deepEqual(await readAll(await d.readAppended(id, MiB + 3)), body.subarray(MiB + 3));
      assert.equal((await readAll(await d.readAppended(id, body.length))).length, 0);
      assert.equal((await appended()).get(id)?.size, body.length);
      // Upload pieces are not blobs: a listing of keys never shows them.
      assert.ok(!(await collect(d.list(''))).some((e) => e.key.includes(id)));
      const key = fresh('published');
      await d.publishAppended(id, key);
      assert.deepEqual(await readAll(await d.read(key)), body);
      assert.equal(await d.appendedSize(id), 0);
      assert.ok(!(await appended()).has(id), 'the upload is gone once published');
    });

    it('a single-piece upload and an empty upload publish too', T, async () => {
      const one = freshUpload();
      const body = randomBytes(70_001);
      await d.append(one, 0, Readable.from([body]));
      const k1 = fresh('one-piece');
      await d.publishAppended(one, k1);
      assert.deepEqual(await readAll(await d.read(k1)), body);
      const none = freshUpload();
      const k2 = fresh('no-piece');
      await d.publishAppended(none, k2);
      assert.equal((await d.stat(k2))?.size, 0);
    });

    it('refuses a piece that does not start where the upload ends; delete removes an upload', T, async () => {
      const id = freshUpload();
      await d.append(id, 0, Readable.from([Buffer.alloc(10, 1)]));
      await assert.rejects(d.append(id, 5, Readable.from([Buffer.alloc(3)])), isAppError('RANGE_NOT_SATISFIABLE'));
      await assert.rejects(d.append(id, 11, Readable.from([Buffer.alloc(3)])), isAppError('RANGE_NOT_SATISFIABLE'));
      assert.equal(await d.appendedSize(id), 10);
      await d.deleteAppended(id);
      await d.deleteAppended(id);
      assert.equal(await d.appendedSize(id), 0);
      assert.ok(!(await appended()).has(id));
    });

    it('rejects upload ids that are not one plain name', T, async () => {
      for (const bad of ['../x', 'a/b', '', '.hidden']) {
        await assert.rejects(d.append(bad, 0, Readable.from([Buffer.from('x')])), isAppError('BAD_REQUEST'));
        await assert.rejects(d.appendedSize(bad), isAppError('BAD_REQUEST'));
      }
    });

    it('rejects keys that would escape the store', T, async () => {
      for (const bad of ['../x', 'a/../../x', '/abs', 'a//b', '']) {
        await assert.rejects(d.write(bad, Readable.from([Buffer.from('x')])), isAppError('BAD_REQUEST'));
        await assert.rejects(d.read(bad), isAppError('BAD_REQUEST'));
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Drivers

conformance(
  'file',
  async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'stowage-file-driver-'));
    const driver = new FileBlobDriver(root);
    return {
      driver,
      leftovers: async () => (await readdir(path.join(root, '.tmp')).catch(() => [] as string[])).filter((n) => !n.startsWith('.')),
      cleanup: () => rm(root, { recursive: true, force: true }),
    };
  },
  { folderRace: true },
);

let s3: S3Server | undefined;
const s3Server = async (): Promise<S3Server> => (s3 ??= await startS3());
after(async () => {
  await s3?.stop();
});

/** Counts the multipart calls a driver makes by wrapping its minio client. */
function countParts(driver: S3BlobDriver): () => MultipartCounts {
  const client = (driver as unknown as { client: Client }).client;
  const seen: MultipartCounts = { count: 0, bytes: 0, initiated: 0, aborted: 0 };
  const uploadPart = client.uploadPart.bind(client);
  client.uploadPart = (cfg, payload) => {
    seen.count++;
    seen.bytes += payload ? Buffer.byteLength(payload) : 0;
    return uploadPart(cfg, payload);
  };
  const initiate = client.initiateNewMultipartUpload.bind(client);
  client.initiateNewMultipartUpload = (...args) => {
    seen.initiated++;
    return initiate(...args);
  };
  const abort = client.abortMultipartUpload.bind(client);
  client.abortMultipartUpload = (...args) => {
    seen.aborted++;
    return abort(...args);
  };
  return () => ({ ...seen });
}

conformance(
  's3 (s3rver, with a prefix)',
  async () => {
    const srv = await s3Server();
    const driver = new S3BlobDriver({
      endpoint: srv.endpoint,
      bucket: srv.bucket,
      region: 'us-east-1',
      prefix: '/stores/conformance/',
      accessKeyId: srv.accessKeyId,
      secretAccessKey: srv.secretAccessKey,
      forcePathStyle: true,
    });
    return {
      driver,
      leftovers: async () => [],
      parts: countParts(driver),
      partSize: 8 * MiB,
      cleanup: async () => undefined,
    };
  },
  { folderRace: false },
);

describe('S3BlobDriver specifics', () => {
  let srv: S3Server;
  const drivers: S3BlobDriver[] = [];
  const make = (over: Partial<ConstructorParameters<typeof S3BlobDriver>[0]> = {}) => {
    const dr = new S3BlobDriver({
      endpoint: srv.endpoint,
      bucket: srv.bucket,
      accessKeyId: srv.accessKeyId,
      secretAccessKey: srv.secretAccessKey,
      ...over,
    });
    drivers.push(dr);
    return dr;
  };
  before(async () => {
    srv = await s3Server();
  });
  after(async () => {
    for (const dr of drivers) await dr.close();
  });

  it('stores keys under the prefix, without double slashes, and lists them relative to it', T, async () => {
    const a = make({ prefix: 'iso/a/' });
    const b = make({ prefix: 'iso/b' });
    const root = make();
    await a.write('k/1', Readable.from([Buffer.from('from a')]));
    await b.write('k/1', Readable.from([Buffer.from('from b!')]));
    assert.deepEqual(
      (await collect(a.list('k/'))).map((e) => [e.key, e.size]),
      [['k/1', 6]],
    );
    assert.deepEqual(
      (await collect(b.list())).map((e) => [e.key, e.size]),
      [['k/1', 7]],
    );
    // The raw bucket, seen through a driver without a prefix.
    const raw = (await collect(root.list('iso/'))).map((e) => e.key);
    assert.deepEqual(raw, ['iso/a/k/1', 'iso/b/k/1']);
    assert.equal((await readAll(await root.read('iso/a/k/1'))).toString(), 'from a');
    await a.delete('k/1');
    assert.equal(await a.stat('k/1'), null);
    assert.equal((await b.stat('k/1'))?.size, 7);
  });

  it('check() creates a missing bucket and then uses it', T, async () => {
    const client = new Client({ endPoint: '127.0.0.1', port: Number(new URL(srv.endpoint).port), useSSL: false, accessKey: 'S3RVER', secretKey: 'S3RVER' });
    for (const region of ['us-east-1', undefined]) {
      const bucket = `made-${region ?? 'noregion'}-${Date.now().toString(36)}`;
      assert.equal(await client.bucketExists(bucket), false);
      const dr = make({ bucket, region });
      await dr.check();
      await dr.check();
      await dr.write('x', Readable.from([Buffer.from('in a new bucket')]));
      assert.equal((await dr.stat('x'))?.size, 15);
      assert.equal(await client.bucketExists(bucket), true);
    }
  });

  it('check() fails with a clear message when the service is unreachable or refuses the keys', T, async () => {
    const down = make({ endpoint: 'http://127.0.0.1:1', bucket: 'nowhere' });
    await assert.rejects(down.check(), (e: Error) => /S3 bucket 'nowhere' at http:\/\/127\.0\.0\.1:1/.test(e.message));
    // s3rver does not verify v4 signatures, but it does know its access key ids.
    const wrongKeys = make({ accessKeyId: 'NOT-A-KEY', region: 'us-east-1' });
    await assert.rejects(wrongKeys.check(), (e: Error) => e.message.includes(`S3 bucket '${srv.bucket}' at ${srv.endpoint} is not usable`));
  });

  it('a service that accepts requests and never answers fails them after the request timeout', T, async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      sock.resume(); // read and ignore everything
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    const dr = new S3BlobDriver({ endpoint: `http://127.0.0.1:${port}`, bucket: 'silent', region: 'us-east-1', accessKeyId: 'a', secretAccessKey: 'b' }, { requestTimeoutMs: 300 });
    drivers.push(dr);
    try {
      const t0 = Date.now();
      await assert.rejects(dr.check(), /timed out/);
      await assert.rejects(dr.write('k', Readable.from([Buffer.from('small')])), /timed out/);
      await assert.rejects(dr.write('k', generated(9 * MiB).stream), /timed out/);
      await assert.rejects(dr.read('k'), /timed out/);
      assert.ok(Date.now() - t0 < 20_000);
    } finally {
      for (const sock of sockets) sock.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('list pages past 1000 keys', T, async () => {
    const dr = make({ prefix: 'paging' });
    const n = 1205;
    for (let i = 0; i < n; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => dr.write(`p/${String(i + j).padStart(5, '0')}`, Readable.from([Buffer.from('z')]))));
    }
    const listed = await collect(dr.list('p/'));
    assert.equal(listed.length, n);
    assert.equal(new Set(listed.map((e) => e.key)).size, n);
  });

  it('rejects settings without a bucket or with a bad endpoint', T, () => {
    assert.throws(() => new S3BlobDriver({} as never), isAppError('BAD_REQUEST'));
    assert.throws(() => new S3BlobDriver({ bucket: 'abc', endpoint: 'ftp://x' }), isAppError('BAD_REQUEST'));
    assert.throws(() => new S3BlobDriver({ bucket: 'abc', endpoint: 'http://x:9000/some/path' }), isAppError('BAD_REQUEST'));
  });
});
