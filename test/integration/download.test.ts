/**
 * The download path of stored files (src/http/send-file.ts), on both of its paths: sendfile(2)
 * through the native helper (the default; the helper must be built, or these tests fail) and the
 * JavaScript path (`STOWAGE_SENDFILE=false`). Whole bodies and ranges across the
 * buffer boundaries, HEAD, 304, clients that abort mid-body (no descriptor or buffer left
 * behind), clients that stop reading (memory stays bounded: backpressure), many downloads at
 * once, a file shorter on disk than its record (the connection is cut, nothing hangs), and the
 * same downloads from an S3 blob store, which keeps the stream path.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readlinkSync, truncateSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { startServer, type TestServer } from '../helpers/stowage.js';
import { createS3BlobStore, startS3, type S3Server } from '../helpers/s3.js';
import { SEND_CHUNK, SEND_DEPTH, pooledBuffers } from '../../src/http/send-file.js';
import { kernelSends, sendfileStatus } from '../../src/http/sendfile-native.js';

const T = { timeout: 120_000 };
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Not a multiple of the chunk: the last read is short. */
const SIZE = 5 * SEND_CHUNK + 12_345;
const BIG = 64 * 1024 * 1024 + 7;

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('aborted')));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Descriptors this process has open on files of the blob stores under `dataDir`. */
function blobFds(dataDir: string): string[] {
  const root = path.join(dataDir, 'blobs') + path.sep;
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(root) && !target.includes(`${path.sep}.tmp${path.sep}`)) out.push(target);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

async function waitFor(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await sleep(20);
  }
}

async function put(s: TestServer, repo: string, p: string, body: Buffer): Promise<void> {
  const res = await s.fetch(`/repository/${repo}/${p}`, { method: 'PUT', body: body as unknown as BodyInit });
  assert.equal(res.status, 201, await res.text());
}

/**
 * Opens a raw connection, sends a GET and reads `readBytes` of the response (headers included),
 * then stops reading (paused) and resolves with the socket.
 */
function stalledGet(port: number, p: string, readBytes: number): Promise<{ sock: net.Socket; chunks: Buffer[] }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = 0;
    const chunks: Buffer[] = [];
    sock.on('error', () => undefined);
    sock.on('connect', () => sock.write(`GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`));
    const onData = (c: Buffer) => {
      got += c.length;
      chunks.push(c);
      if (got >= readBytes) {
        sock.off('data', onData);
        sock.pause();
        sock.removeAllListeners('close');
        resolve({ sock, chunks });
      }
    };
    sock.on('data', onData);
    sock.on('close', () => reject(new Error(`closed after ${got} bytes`)));
  });
}

it('the native sendfile helper is built and active by default', () => {
  assert.deepEqual(sendfileStatus(), { active: true }, 'run `npm run build` with a C compiler (cc) installed');
});

for (const mode of ['sendfile', 'javascript'] as const)
  describe(`downloads of stored files (${mode} path)`, () => {
    let s: TestServer;
    const data = randomBytes(SIZE);
    const big = randomBytes(BIG);
    let url: string;
    let startedBefore = 0;

    before(async () => {
      s = await startServer({ env: { STOWAGE_SENDFILE: mode === 'sendfile' ? 'true' : 'false' } });
      startedBefore = kernelSends().started;
      await s.repo('raw', 'hosted', { name: 'dl', online: true, storage: { blobStoreName: 'default', strictContentTypeValidation: false, writePolicy: 'ALLOW' } });
      await put(s, 'dl', 'data.bin', data);
      await put(s, 'dl', 'big.bin', big);
      url = `${s.url}/repository/dl`;
    });
    after(async () => {
      await s?.stop();
    });

    it(`large files go through ${mode === 'sendfile' ? 'sendfile' : 'reads and writes'}; small ones always by reads`, T, async () => {
      const before = kernelSends().started;
      const r = await get(`${url}/data.bin`);
      assert.equal(sha256(r.body), sha256(data));
      assert.equal(kernelSends().started - before, mode === 'sendfile' ? 1 : 0);
      const small = randomBytes(1000);
      await put(s, 'dl', 'small.bin', small);
      const r2 = await get(`${url}/small.bin`);
      assert.ok(r2.body.equals(small));
      assert.equal(kernelSends().started - before, mode === 'sendfile' ? 1 : 0, 'a small file is read and written');
    });

    if (mode === 'sendfile')
      it('a body the socket takes at once goes without a thread; a larger one carries on on a thread from where it stopped', T, async () => {
        const mid = randomBytes(100_000); // above SENDFILE_MIN, well under a loopback socket's buffer
        await put(s, 'dl', 'mid.bin', mid);
        let before = kernelSends();
        const r = await get(`${url}/mid.bin`);
        assert.ok(r.body.equals(mid));
        assert.equal(kernelSends().started - before.started, 1);
        assert.equal(kernelSends().atOnce - before.atOnce, 1, 'sent whole at once, no thread');
        // 10 MB: the socket's buffer fills while this (the client's) event loop is busy sending,
        // so the copy stops part-way and a thread sends the rest, from the offset reached.
        before = kernelSends();
        const big10 = await get(`${url}/data.bin`);
        assert.equal(sha256(big10.body), sha256(data));
        assert.equal(kernelSends().started - before.started, 1);
        assert.equal(kernelSends().atOnce - before.atOnce, 0, 'the rest went on a thread');
        // A range that starts mid-file and crosses where the first copy stopped.
        before = kernelSends();
        const part = await get(`${url}/data.bin`, { Range: `bytes=777-${SIZE - 3}` });
        assert.equal(part.status, 206);
        assert.ok(part.body.equals(data.subarray(777, SIZE - 2)));
        assert.equal(kernelSends().atOnce - before.atOnce, 0);
      });

    it('sends the whole body, exact Content-Length, no descriptor left open', T, async () => {
      for (let i = 0; i < 3; i++) {
        const r = await get(`${url}/data.bin`);
        assert.equal(r.status, 200);
        assert.equal(r.headers['content-length'], String(SIZE));
        assert.equal(r.headers['accept-ranges'], 'bytes');
        assert.equal(r.body.length, SIZE);
        assert.equal(sha256(r.body), sha256(data));
      }
      await waitFor('no blob descriptor open', () => blobFds(s.dataDir).length === 0);
      assert.ok(pooledBuffers() <= 8, `pool holds ${pooledBuffers()} buffers`);
    });

    it('sends ranges exactly, across buffer boundaries; 416 past the end', T, async () => {
      const C = SEND_CHUNK;
      const ranges: Array<[string, number, number]> = [
        ['bytes=0-0', 0, 0],
        ['bytes=0-', 0, SIZE - 1],
        [`bytes=${C - 1}-${C}`, C - 1, C],
        [`bytes=${C}-${3 * C}`, C, 3 * C],
        [`bytes=1-${SIZE - 2}`, 1, SIZE - 2],
        ['bytes=-1', SIZE - 1, SIZE - 1],
        [`bytes=-${C + 5}`, SIZE - C - 5, SIZE - 1],
        [`bytes=${SIZE - 10}-${SIZE + 1000}`, SIZE - 10, SIZE - 1],
      ];
      for (const [h, start, end] of ranges) {
        const r = await get(`${url}/data.bin`, { Range: h });
        assert.equal(r.status, 206, h);
        assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${SIZE}`, h);
        assert.equal(r.headers['content-length'], String(end - start + 1), h);
        assert.ok(r.body.equals(data.subarray(start, end + 1)), `${h}: bytes differ`);
      }
      const bad = await get(`${url}/data.bin`, { Range: `bytes=${SIZE}-` });
      assert.equal(bad.status, 416);
      assert.equal(bad.headers['content-range'], `bytes */${SIZE}`);
      await waitFor('no blob descriptor open', () => blobFds(s.dataDir).length === 0);
    });

    it('HEAD has the length and no body; a matching ETag is 304; a stale If-Range sends it all', T, async () => {
      const head = await get(`${url}/data.bin`, {}, 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-length'], String(SIZE));
      assert.equal(head.body.length, 0);
      const etag = head.headers.etag!;
      const cached = await get(`${url}/data.bin`, { 'If-None-Match': etag });
      assert.equal(cached.status, 304);
      assert.equal(cached.body.length, 0);
      const stale = await get(`${url}/data.bin`, { Range: 'bytes=0-9', 'If-Range': '"nope"' });
      assert.equal(stale.status, 200);
      assert.equal(sha256(stale.body), sha256(data));
      const fresh = await get(`${url}/data.bin`, { Range: 'bytes=0-9', 'If-Range': etag });
      assert.equal(fresh.status, 206);
      assert.ok(fresh.body.equals(data.subarray(0, 10)));
      await waitFor('no blob descriptor open', () => blobFds(s.dataDir).length === 0);
    });

    it('clients that abort mid-body leave no descriptor open and the server serves on', T, async () => {
      const port = Number(new URL(s.url).port);
      for (let round = 0; round < 3; round++) {
        const socks = await Promise.all(Array.from({ length: 10 }, (_, i) => stalledGet(port, '/repository/dl/big.bin', 1000 + i * 100_000)));
        // Mid-body: the files are open now.
        assert.ok(blobFds(s.dataDir).length > 0, 'expected the downloads to hold their files open');
        for (const { sock } of socks) sock.destroy();
        await waitFor('every blob descriptor closed after the aborts', () => blobFds(s.dataDir).length === 0);
      }
      // Aborts while reading (no pause): reset after a few chunks.
      for (let i = 0; i < 5; i++) {
        await new Promise<void>((resolve) => {
          const req = http.get(`${url}/big.bin`, { agent: false }, (res) => {
            let n = 0;
            res.on('data', (c: Buffer) => {
              n += c.length;
              if (n > (i + 1) * 3_000_000) req.destroy();
            });
            res.on('error', () => undefined);
          });
          req.on('error', () => undefined);
          req.on('close', () => resolve());
        });
      }
      await waitFor('every blob descriptor closed after the resets', () => blobFds(s.dataDir).length === 0);
      assert.ok(pooledBuffers() <= 8, `pool holds ${pooledBuffers()} buffers`);
      const r = await get(`${url}/big.bin`);
      assert.equal(r.status, 200);
      assert.equal(sha256(r.body), sha256(big));
    });

    it('clients that stop reading hold a bounded amount of memory (backpressure), then get every byte', T, async () => {
      const port = Number(new URL(s.url).port);
      const n = 6;
      global.gc?.();
      const base = process.memoryUsage().arrayBuffers;
      const socks = await Promise.all(Array.from({ length: n }, () => stalledGet(port, '/repository/dl/big.bin', 1)));
      // Give the server ample time to run ahead if nothing held it back.
      await sleep(1500);
      const held = process.memoryUsage().arrayBuffers - base;
      // Each stalled download may hold SEND_DEPTH buffers; the rest waits in kernel socket buffers.
      // Without backpressure each would buffer the whole 64 MiB file (384 MiB).
      const bound = n * SEND_DEPTH * SEND_CHUNK + 16 * 1024 * 1024;
      assert.ok(held < bound, `stalled downloads hold ${(held / 2 ** 20).toFixed(1)} MiB of buffers (bound ${(bound / 2 ** 20).toFixed(1)} MiB)`);
      assert.equal(blobFds(s.dataDir).length, n);
      // Resume one: it must receive the whole body after the stall.
      const { sock, chunks } = socks.pop()!;
      // The headers came with the first byte read: count the rest without concatenating each time.
      const head = Buffer.concat(chunks);
      const headLength = head.indexOf('\r\n\r\n') + 4;
      assert.ok(headLength > 4, 'the headers were read before the stall');
      let received = head.length;
      await new Promise<void>((resolve) => {
        sock.on('data', (c: Buffer) => {
          chunks.push(c);
          received += c.length;
          if (received - headLength >= BIG) resolve();
        });
        sock.resume();
      });
      const all = Buffer.concat(chunks);
      const headEnd = all.indexOf('\r\n\r\n');
      const body = all.subarray(headEnd + 4);
      assert.equal(body.length, BIG);
      assert.equal(sha256(body), sha256(big));
      sock.destroy();
      for (const x of socks) x.sock.destroy();
      await waitFor('every blob descriptor closed', () => blobFds(s.dataDir).length === 0);
    });

    it('many downloads at once all get the right bytes', T, async () => {
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => get(`${url}/${i % 2 ? 'big' : 'data'}.bin`)));
      results.forEach((r, i) => {
        assert.equal(r.status, 200);
        assert.equal(sha256(r.body), sha256(i % 2 ? big : data));
      });
      await waitFor('no blob descriptor open', () => blobFds(s.dataDir).length === 0);
      assert.ok(pooledBuffers() <= 8);
    });

    it('a file shorter on disk than its record: the connection is cut, nothing hangs or leaks', T, async () => {
      const short = randomBytes(3 * SEND_CHUNK);
      await put(s, 'dl', 'short.bin', short);
      const files: string[] = [];
      const walk = (d: string) => {
        for (const e of readdirSync(d, { withFileTypes: true })) {
          const p = path.join(d, e.name);
          if (e.isDirectory()) walk(p);
          else if (statSync(p).size === short.length) files.push(p);
        }
      };
      walk(path.join(s.dataDir, 'blobs'));
      assert.equal(files.length, 1, 'the stored file');
      truncateSync(files[0], SEND_CHUNK + 100);
      // Whole body and a range: both stop where the file does.
      const variants: Array<Record<string, string>> = [{}, { Range: `bytes=10-${short.length - 1}` }];
      for (const headers of variants) {
        const r = await get(`${url}/short.bin`, headers).then(
          (x) => x,
          (e: Error) => e,
        );
        assert.ok(r instanceof Error || r.body.length < short.length - 10, `${JSON.stringify(headers)}: expected a cut body`);
      }
      await waitFor('no blob descriptor open', () => blobFds(s.dataDir).length === 0);
      const ok = await get(`${url}/data.bin`);
      assert.equal(sha256(ok.body), sha256(data));
    });

    it('keep-alive and pipelined requests on one connection get every response whole, in order', T, async () => {
      const port = Number(new URL(s.url).port);
      const sock = net.connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      sock.on('data', (c: Buffer) => chunks.push(c));
      await new Promise<void>((r) => sock.on('connect', () => r()));
      // Three requests written at once: the second response may only start after the first body.
      const req = (p: string, extra = '') => `GET /repository/dl/${p} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;
      sock.write(req('data.bin') + req('data.bin', 'Range: bytes=100-200000\r\n') + req('big.bin', 'Connection: close\r\n'));
      await new Promise<void>((r) => sock.on('end', () => r()));
      let all = Buffer.concat(chunks);
      const bodies: Buffer[] = [];
      for (let i = 0; i < 3; i++) {
        const headEnd = all.indexOf('\r\n\r\n');
        assert.ok(headEnd > 0, `response ${i} has headers`);
        const head = all.subarray(0, headEnd).toString('latin1');
        const len = Number(/content-length: (\d+)/i.exec(head)![1]);
        bodies.push(all.subarray(headEnd + 4, headEnd + 4 + len));
        all = all.subarray(headEnd + 4 + len);
      }
      assert.equal(all.length, 0, 'nothing after the last body');
      assert.equal(sha256(bodies[0]), sha256(data));
      assert.ok(bodies[1].equals(data.subarray(100, 200001)));
      assert.equal(sha256(bodies[2]), sha256(big));
      sock.destroy();
      await waitFor('no blob descriptor open', () => blobFds(s.dataDir).length === 0);
    });

    it(`every download above went through the ${mode} path`, () => {
      const { active, started } = kernelSends();
      assert.equal(active, 0, 'no kernel transfer left running');
      if (mode === 'sendfile') assert.ok(started - startedBefore >= 40, `only ${started - startedBefore} kernel transfers`);
      else assert.equal(started, startedBefore);
    });
  });

describe('downloads from an S3 blob store (stream path)', () => {
  let s: TestServer;
  let s3: S3Server;
  const data = randomBytes(3 * SEND_CHUNK + 777);

  before(async () => {
    s3 = await startS3();
    s = await startServer();
    await createS3BlobStore((p, i) => s.fetch(p, i), s3, 'bucket1', { prefix: 'dl', expiration: 3 });
    await s.repo('raw', 'hosted', { name: 'on-s3', online: true, storage: { blobStoreName: 'bucket1', strictContentTypeValidation: false, writePolicy: 'ALLOW' } });
    await put(s, 'on-s3', 'x.bin', data);
  });
  after(async () => {
    await s?.stop();
    await s3?.stop();
  });

  it('whole body, ranges, HEAD', T, async () => {
    const u = `${s.url}/repository/on-s3/x.bin`;
    const whole = await get(u);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers['content-length'], String(data.length));
    assert.equal(sha256(whole.body), sha256(data));
    const part = await get(u, { Range: `bytes=${SEND_CHUNK - 3}-${SEND_CHUNK + 3}` });
    assert.equal(part.status, 206);
    assert.ok(part.body.equals(data.subarray(SEND_CHUNK - 3, SEND_CHUNK + 4)));
    const head = await get(u, {}, 'HEAD');
    assert.equal(head.headers['content-length'], String(data.length));
    assert.equal(head.body.length, 0);
  });
});
