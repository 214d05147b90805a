/**
 * Proxy repositories (written once in the core, used here through the raw format) on both
 * databases: a second Stowage as the remote, counting node:http remotes for request counts,
 * negative cache, auto-block, single-flight of a 50 MB download, mid-body failures, upstream
 * authentication, redirects and timeouts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { ADMIN_PASSWORD, DATABASES, basic, startServer, type TestServer } from '../helpers/stowage.js';
import type { Repository } from '../../src/repository/repository.js';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha256 = (b: Buffer | Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Deterministic pseudo-random bytes (xorshift32), so every run serves the same body. */
function pseudoRandom(size: number, seed: number): Buffer {
  const words = new Uint32Array(Math.ceil(size / 4));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return Buffer.from(words.buffer, 0, size);
}

interface Seen {
  path: string;
  headers: http.IncomingHttpHeaders;
}

/** A tiny remote that records every request it receives; `handle` decides the answer. */
interface CountingRemote {
  url: string;
  requests: Seen[];
  count(p: string): number;
  handle: (req: http.IncomingMessage, res: http.ServerResponse) => unknown;
  close(): Promise<void>;
}

async function countingRemote(host = '127.0.0.1'): Promise<CountingRemote> {
  const remote: CountingRemote = {
    url: '',
    requests: [],
    count: (p) => remote.requests.filter((r) => r.path === p).length,
    handle: (_req, res) => {
      res.statusCode = 404;
      res.end('not here');
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = http.createServer((req, res) => {
    remote.requests.push({ path: decodeURIComponent(new URL(req.url!, 'http://x').pathname), headers: req.headers });
    // No keep-alive: every request is a new connection, so counts never include a retry on a stale socket.
    res.setHeader('Connection', 'close');
    void Promise.resolve(remote.handle(req, res)).catch(() => res.destroy());
  });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  remote.url = `http://${host}:${(server.address() as AddressInfo).port}`;
  return remote;
}

/** Reads a response body as a stream, hashing it; also reports when the first byte came. */
async function hashBody(res: Response): Promise<{ sha256: string; size: number; firstByteAt: number }> {
  const h = createHash('sha256');
  let size = 0;
  let firstByteAt = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    if (!firstByteAt) firstByteAt = Date.now();
    h.update(chunk);
    size += chunk.length;
  }
  return { sha256: h.digest('hex'), size, firstByteAt };
}

async function spoolFiles(server: TestServer): Promise<string[]> {
  return (await readdir(path.join(server.dataDir, 'tmp')).catch(() => [] as string[])).filter((n) => n.startsWith('proxy-spool-'));
}

/** Waits until `check` holds (spool cleanup happens just after the last reader is gone). */
async function eventually(check: () => Promise<boolean>, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await sleep(25);
  }
  return check();
}

const noRetries = { connection: { retries: 0 } };

for (const db of DATABASES) {
  describe(`proxy repositories (${db})`, { timeout: 120_000 }, () => {
    let upstream: TestServer;
    let server: TestServer;
    const remotes: CountingRemote[] = [];
    const remote = async (host?: string) => {
      const r = await countingRemote(host);
      remotes.push(r);
      return r;
    };
    const upstreamAuth = { authentication: { type: 'username', username: 'admin', password: ADMIN_PASSWORD } };
    let remoteUrl: string;

    const put = async (p: string, body: string | Buffer) => {
      const r = await upstream.fetch(`/repository/up-hosted/${p}`, { method: 'PUT', body: typeof body === 'string' ? body : new Uint8Array(body) });
      assert.ok(r.status === 201 || r.status === 200, `upstream PUT ${p}: ${r.status}`);
    };
    /** A fetched body is committed just after its last byte was streamed: wait for that. */
    const settled = () => eventually(async () => server.app.proxy.flights.size === 0);
    const text = async (p: string) => {
      const r = await server.fetch(p);
      const out = { status: r.status, body: await r.text() };
      assert.ok(await settled(), 'the download was stored');
      return out;
    };
    const asset = async (repo: string, p: string) => {
      const r = (await server.app.repositories.require(repo)) as Repository;
      return server.app.content.findAsset(r.id, p);
    };

    before(async () => {
      // The remote Stowage always runs on SQLite: the database under test is the proxy's.
      upstream = await startServer();
      server = await startServer({ db, env: { STOWAGE_PROXY_AUTOBLOCK_INITIAL: '1', STOWAGE_PROXY_AUTOBLOCK_MAX: '4' } });
      await upstream.repo('raw', 'hosted', { name: 'up-hosted', storage: { writePolicy: 'ALLOW' } });
      remoteUrl = `${upstream.url}/repository/up-hosted/`;
    });

    after(async () => {
      for (const r of remotes) await r.close();
      await server?.stop();
      await upstream?.stop();
    });

    it('(a) fetches through a proxy of another Stowage, honours contentMaxAge, revalidates after invalidate-cache', async () => {
      const bin = randomBytes(MiB + 123);
      await put('dir/hello.txt', 'hello v1');
      await put('dir/a%20b%2Bc%20%C3%BC.txt', 'special');
      await put('dir/data.bin', bin);
      await server.repo('raw', 'proxy', { name: 'p-cache', proxy: { remoteUrl, contentMaxAge: 1440 }, httpClient: { ...upstreamAuth, ...noRetries } });

      assert.deepEqual(await text('/repository/p-cache/dir/hello.txt'), { status: 200, body: 'hello v1' });
      const r = await server.fetch('/repository/p-cache/dir/data.bin');
      assert.equal(r.status, 200);
      assert.equal(sha256(Buffer.from(await r.arrayBuffer())), sha256(bin));
      await settled();
      // Path segments are percent-encoded on the way upstream ('+' and spaces and UTF-8 intact).
      assert.deepEqual(await text('/repository/p-cache/dir/a%20b%2Bc%20%C3%BC.txt'), { status: 200, body: 'special' });

      const cached = await asset('p-cache', 'dir/hello.txt');
      assert.ok(cached, 'the fetched file is stored in the proxy');
      assert.ok(cached.last_verified, 'last_verified set when fetched');
      assert.equal(cached.kind, 'content');
      assert.ok((cached.attributes.upstream as { etag?: string }).etag, 'upstream ETag kept for revalidation');
      // A stored copy answers with the proxy's own validators and digests.
      const again = await server.fetch('/repository/p-cache/dir/data.bin');
      assert.equal(again.headers.get('x-checksum-sha256'), sha256(bin));
      assert.equal(again.headers.get('content-length'), String(bin.length));
      await again.arrayBuffer();

      // Upstream changes and deletes: within contentMaxAge the proxy serves its copies, without asking.
      await put('dir/hello.txt', 'hello v2');
      assert.equal((await upstream.fetch('/repository/up-hosted/dir/data.bin', { method: 'DELETE' })).status, 204);
      assert.deepEqual(await text('/repository/p-cache/dir/hello.txt'), { status: 200, body: 'hello v1' });
      assert.equal((await server.fetch('/repository/p-cache/dir/data.bin')).status, 200);

      // Invalidate cache: every copy is stale, the next request revalidates upstream.
      await server.app.proxy.invalidateCache('p-cache');
      assert.equal((await asset('p-cache', 'dir/hello.txt'))!.last_verified, null);
      assert.deepEqual(await text('/repository/p-cache/dir/hello.txt'), { status: 200, body: 'hello v2' });
      assert.ok((await asset('p-cache', 'dir/hello.txt'))!.last_verified, 'verified again');
      // Gone upstream: the cached copy is still served (as Nexus does), until it is deleted from the proxy.
      const kept = await server.fetch('/repository/p-cache/dir/data.bin');
      assert.equal(kept.status, 200);
      assert.equal(sha256(Buffer.from(await kept.arrayBuffer())), sha256(bin));
      await settled();
      assert.equal((await server.fetch('/repository/p-cache/dir/data.bin', { method: 'DELETE' })).status, 204);
      assert.equal((await server.fetch('/repository/p-cache/dir/data.bin')).status, 404);
      // Uploads are refused on a proxy.
      assert.equal((await server.fetch('/repository/p-cache/dir/new.txt', { method: 'PUT', body: 'x' })).status, 405);

      // contentMaxAge 0: every request revalidates; unchanged upstream → 304 → same asset, verified again.
      await server.repo('raw', 'proxy', { name: 'p-always', proxy: { remoteUrl, contentMaxAge: 0 }, httpClient: { ...upstreamAuth, ...noRetries } });
      assert.deepEqual(await text('/repository/p-always/dir/hello.txt'), { status: 200, body: 'hello v2' });
      const first = (await asset('p-always', 'dir/hello.txt'))!;
      await sleep(5);
      assert.deepEqual(await text('/repository/p-always/dir/hello.txt'), { status: 200, body: 'hello v2' });
      const second = (await asset('p-always', 'dir/hello.txt'))!;
      assert.equal(second.id, first.id);
      assert.equal(second.blob_id, first.blob_id);
      assert.equal(second.updated_at, first.updated_at, 'a 304 does not rewrite the asset');
      assert.ok(second.last_verified! > first.last_verified!, 'a 304 bumps last_verified');
      await put('dir/hello.txt', 'hello v3');
      assert.deepEqual(await text('/repository/p-always/dir/hello.txt'), { status: 200, body: 'hello v3' });
      assert.notEqual((await asset('p-always', 'dir/hello.txt'))!.blob_id, first.blob_id);
    });

    it('(b) groups a hosted repository and a proxy: hosted first, proxy content reachable, listing merged', async () => {
      await server.repo('raw', 'hosted', { name: 'g-hosted' });
      const putLocal = async (p: string, body: string) => assert.equal((await server.fetch(`/repository/g-hosted/${p}`, { method: 'PUT', body })).status, 201);
      await putLocal('common.txt', 'from hosted');
      await putLocal('only-hosted.txt', 'hosted only');
      await put('common.txt', 'from upstream');
      await put('sub/only-upstream.txt', 'upstream only');
      await server.repo('raw', 'proxy', { name: 'g-proxy', proxy: { remoteUrl }, httpClient: { ...upstreamAuth, ...noRetries } });
      await server.repo('raw', 'group', { name: 'g', group: { memberNames: ['g-hosted', 'g-proxy'] } });

      assert.deepEqual(await text('/repository/g/common.txt'), { status: 200, body: 'from hosted' });
      assert.deepEqual(await text('/repository/g/sub/only-upstream.txt'), { status: 200, body: 'upstream only' });
      assert.deepEqual(await text('/repository/g/only-hosted.txt'), { status: 200, body: 'hosted only' });
      assert.equal((await server.fetch('/repository/g/nowhere.txt')).status, 404);
      // The proxy itself still has upstream's copy.
      assert.deepEqual(await text('/repository/g-proxy/common.txt'), { status: 200, body: 'from upstream' });

      const listing = await text('/repository/g/');
      assert.equal(listing.status, 200);
      assert.match(listing.body, /only-hosted\.txt/);
      assert.match(listing.body, /common\.txt/);
      assert.match(listing.body, /sub\//, 'cached proxy folders are listed');
      const sub = await text('/repository/g/sub/');
      assert.match(sub.body, /only-upstream\.txt/);

      // A member whose remote is unreachable does not hide the others, and a miss stays a 404.
      const dead = await remote();
      await dead.close();
      await server.repo('raw', 'proxy', { name: 'g-dead', proxy: { remoteUrl: dead.url + '/' }, httpClient: { autoBlock: false, ...noRetries } });
      await server.repo('raw', 'group', { name: 'g2', group: { memberNames: ['g-dead', 'g-hosted'] } });
      assert.deepEqual(await text('/repository/g2/only-hosted.txt'), { status: 200, body: 'hosted only' });
      assert.equal((await server.fetch('/repository/g2/missing.txt')).status, 404);
    });

    it('(c) negative cache: one upstream request per TTL, expiry, cleared by invalidate-cache (also through a group)', async () => {
      const r = await remote();
      // timeToLive is in minutes: 0.02 min = 1.2 s.
      await server.repo('raw', 'proxy', { name: 'neg', proxy: { remoteUrl: r.url + '/base/' }, negativeCache: { enabled: true, timeToLive: 0.02 }, httpClient: noRetries });
      await server.repo('raw', 'group', { name: 'neg-group', group: { memberNames: ['neg'] } });
      for (let i = 0; i < 3; i++) assert.equal((await server.fetch('/repository/neg/missing.txt')).status, 404);
      assert.equal(r.count('/base/missing.txt'), 1, 'a cached 404 is not asked again within the TTL');
      await sleep(1300);
      assert.equal((await server.fetch('/repository/neg/missing.txt')).status, 404);
      assert.equal(r.count('/base/missing.txt'), 2, 'asked again after the TTL');
      assert.equal((await server.fetch('/repository/neg/missing.txt')).status, 404);
      assert.equal(r.count('/base/missing.txt'), 2);
      await server.app.proxy.invalidateCache('neg');
      assert.equal((await server.fetch('/repository/neg/missing.txt')).status, 404);
      assert.equal(r.count('/base/missing.txt'), 3, 'invalidate-cache clears the negative cache');
      await server.app.proxy.invalidateCache('neg-group');
      assert.equal((await server.fetch('/repository/neg-group/missing.txt')).status, 404);
      assert.equal(r.count('/base/missing.txt'), 4, 'invalidating a group invalidates its members');

      // Once the path appears upstream and the entry expired, it is fetched.
      r.handle = (_req, res) => res.end('now here');
      await sleep(1300);
      assert.deepEqual(await text('/repository/neg/missing.txt'), { status: 200, body: 'now here' });

      // Disabled: every miss goes upstream.
      const r2 = await remote();
      await server.repo('raw', 'proxy', { name: 'neg-off', proxy: { remoteUrl: r2.url }, negativeCache: { enabled: false }, httpClient: noRetries });
      for (let i = 0; i < 2; i++) assert.equal((await server.fetch('/repository/neg-off/x.txt')).status, 404);
      assert.equal(r2.count('/x.txt'), 2);
    });

    it('(d) remote down: stale copy served, 502 without one, auto-block and automatic unblock', async () => {
      const r = await remote();
      let mode: 'ok' | 'reset' | '503' = 'ok';
      r.handle = (req, res) => {
        if (mode === 'reset') return void req.socket.destroy();
        if (mode === '503') {
          res.statusCode = 503;
          return void res.end('maintenance');
        }
        res.end(`body of ${req.url}`);
      };
      const status = () => server.app.proxy.status('flaky');
      await server.repo('raw', 'proxy', { name: 'flaky', proxy: { remoteUrl: r.url, contentMaxAge: 0 }, httpClient: { autoBlock: true, ...noRetries } });
      assert.deepEqual(await text('/repository/flaky/a.txt'), { status: 200, body: 'body of /a.txt' });
      assert.equal(r.requests.length, 1);

      mode = 'reset';
      assert.deepEqual(await text('/repository/flaky/a.txt'), { status: 200, body: 'body of /a.txt' }, 'stale copy served');
      assert.equal(r.requests.length, 2);
      let s = await status();
      assert.equal(s.failures, 1);
      assert.equal(s.autoBlocked, true);
      assert.equal(s.blocked, false);
      assert.ok(s.blockedUntil! > Date.now(), 'blocked for a while');
      assert.match(s.lastError ?? '', /ECONNRESET|hang up|closed/i);

      // While blocked: nothing goes upstream; copies are served, others fail with a clear message.
      const miss = await text('/repository/flaky/b.txt');
      assert.equal(miss.status, 502);
      assert.match(miss.body, /auto-blocked/);
      assert.deepEqual(await text('/repository/flaky/a.txt'), { status: 200, body: 'body of /a.txt' });
      assert.equal(r.requests.length, 2, 'no upstream requests while auto-blocked');

      // After the window one request probes; still down → blocked again, failures counted.
      await sleep(s.blockedUntil! - Date.now() + 50);
      assert.equal((await text('/repository/flaky/b.txt')).status, 502);
      assert.equal(r.requests.length, 3);
      s = await status();
      assert.equal(s.failures, 2);
      assert.equal(s.autoBlocked, true);

      // Remote back: after the window the probe succeeds and unblocks.
      mode = 'ok';
      await sleep(s.blockedUntil! - Date.now() + 50);
      assert.deepEqual(await text('/repository/flaky/b.txt'), { status: 200, body: 'body of /b.txt' });
      assert.equal(r.requests.length, 4);
      s = await status();
      assert.deepEqual({ ...s, blockedUntil: null }, { blocked: false, autoBlocked: false, blockedUntil: null, failures: 0, lastError: null });
      assert.equal(s.blockedUntil, null);

      // 5xx without auto-block: counted, never blocking, 502 naming the status.
      mode = '503';
      await server.repo('raw', 'proxy', { name: 'flaky-nb', proxy: { remoteUrl: r.url }, httpClient: { autoBlock: false, ...noRetries } });
      const before = r.requests.length;
      for (let i = 0; i < 2; i++) {
        const e = await text('/repository/flaky-nb/c.txt');
        assert.equal(e.status, 502);
        assert.match(e.body, /503/);
      }
      assert.equal(r.requests.length, before + 2);
      s = await server.app.proxy.status('flaky-nb');
      assert.equal(s.failures, 2);
      assert.equal(s.autoBlocked, false);
      assert.equal(s.blockedUntil, null);

      // Manually blocked: never upstream.
      mode = 'ok';
      await server.repo('raw', 'proxy', { name: 'manual', proxy: { remoteUrl: r.url }, httpClient: { blocked: true } });
      const m = await text('/repository/manual/d.txt');
      assert.equal(m.status, 502);
      assert.match(m.body, /blocked/);
      assert.equal(r.requests.length, before + 2);
      assert.equal((await server.app.proxy.status('manual')).blocked, true);
    });

    it('(e) 20 concurrent first requests for a 50 MB file: one upstream request, streamed to all while stored', async () => {
      const size = 50 * MiB;
      const data = pseudoRandom(size, 0xc0ffee);
      const expected = sha256(data);
      const r = await remote();
      let finishedAt = 0;
      r.handle = async (_req, res) => {
        res.setHeader('Content-Length', String(size));
        res.setHeader('Content-Type', 'application/octet-stream');
        await sleep(300); // every client is waiting before the first byte
        res.flushHeaders();
        for (let off = 0; off < size; off += MiB) {
          if (!res.write(data.subarray(off, off + MiB))) await new Promise((ok) => res.once('drain', ok));
          await sleep(15);
        }
        finishedAt = Date.now();
        res.end();
      };
      await server.repo('raw', 'proxy', { name: 'big', proxy: { remoteUrl: r.url }, httpClient: noRetries });

      const results = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const res = await server.fetch('/repository/big/big.bin');
          assert.equal(res.status, 200);
          assert.equal(res.headers.get('content-length'), String(size));
          return hashBody(res);
        }),
      );
      assert.equal(r.count('/big.bin'), 1, 'exactly one upstream request');
      for (const x of results) {
        assert.equal(x.size, size);
        assert.equal(x.sha256, expected);
        assert.ok(x.firstByteAt < finishedAt, 'bytes reached the client before upstream finished (streamed, not after)');
      }

      // Stored once, with the right digests; later requests are served from the blob store.
      await eventually(async () => !!(await asset('big', 'big.bin')));
      const view = await server.app.content.findAssetView((await server.app.repositories.require('big')).id, 'big.bin');
      assert.equal(view?.sha256, expected);
      assert.equal(view?.size, size);
      const late = await server.fetch('/repository/big/big.bin');
      assert.equal(late.headers.get('x-checksum-sha256'), expected);
      assert.equal((await hashBody(late)).sha256, expected);
      assert.equal(r.count('/big.bin'), 1);
      assert.ok(await eventually(async () => (await spoolFiles(server)).length === 0), 'no spool file left behind');
    });

    it('(e) a body without Content-Length is streamed chunked to concurrent clients', async () => {
      const data = pseudoRandom(3 * MiB + 7, 42);
      const r = await remote();
      r.handle = async (_req, res) => {
        await sleep(100);
        for (let off = 0; off < data.length; off += 256 * 1024) {
          res.write(data.subarray(off, off + 256 * 1024));
          await sleep(5);
        }
        res.end();
      };
      await server.repo('raw', 'proxy', { name: 'chunked', proxy: { remoteUrl: r.url }, httpClient: noRetries });
      const results = await Promise.all(
        Array.from({ length: 5 }, async () => {
          const res = await server.fetch('/repository/chunked/c.bin');
          assert.equal(res.status, 200);
          assert.equal(res.headers.get('content-length'), null);
          return hashBody(res);
        }),
      );
      for (const x of results) assert.equal(x.sha256, sha256(data));
      assert.equal(r.count('/c.bin'), 1);
    });

    it('(e) clients that go away (the first one included) do not stop the download; ranges are served while it runs', async () => {
      const data = pseudoRandom(8 * MiB, 99);
      const r = await remote();
      r.handle = async (_req, res) => {
        res.setHeader('Content-Length', String(data.length));
        res.flushHeaders();
        for (let off = 0; off < data.length; off += 512 * 1024) {
          res.write(data.subarray(off, off + 512 * 1024));
          await sleep(20);
        }
        res.end();
      };
      await server.repo('raw', 'proxy', { name: 'quitters', proxy: { remoteUrl: r.url }, httpClient: noRetries });
      // The first client (whose request leads the fetch) reads a little and hangs up.
      const quit = new AbortController();
      const first = await server.fetch('/repository/quitters/q.bin', { signal: quit.signal });
      const reader = first.body!.getReader();
      assert.ok((await reader.read()).value!.length > 0);
      quit.abort();
      await reader.cancel().catch(() => undefined);
      const [whole, part] = await Promise.all([
        server.fetch('/repository/quitters/q.bin').then(hashBody),
        server.fetch('/repository/quitters/q.bin', { headers: { Range: 'bytes=5000000-5000099' } }).then(async (res) => {
          assert.equal(res.status, 206);
          assert.equal(res.headers.get('content-range'), `bytes 5000000-5000099/${data.length}`);
          return Buffer.from(await res.arrayBuffer());
        }),
      ]);
      assert.equal(whole.sha256, sha256(data));
      assert.deepEqual(part, data.subarray(5000000, 5000100));
      assert.equal(r.count('/q.bin'), 1);
      assert.ok(await settled());
      const view = await server.app.content.findAssetView((await server.app.repositories.require('quitters')).id, 'q.bin');
      assert.equal(view?.sha256, sha256(data), 'stored in full although its first client left');
    });

    it('(e) an upstream dying mid-body fails every reader, stores nothing, and the next request retries', async () => {
      const data = pseudoRandom(4 * MiB, 7);
      const r = await remote();
      let die = true;
      r.handle = async (_req, res) => {
        res.setHeader('Content-Length', String(data.length));
        res.flushHeaders();
        await sleep(100);
        res.write(data.subarray(0, MiB));
        await sleep(100);
        if (die) return void res.socket?.destroy();
        res.end(data.subarray(MiB));
      };
      await server.repo('raw', 'proxy', { name: 'dies', proxy: { remoteUrl: r.url }, httpClient: noRetries });
      const outcomes = await Promise.all(
        Array.from({ length: 3 }, async () => {
          try {
            const res = await server.fetch('/repository/dies/d.bin');
            const got = await hashBody(res);
            return got.size === data.length ? 'complete' : 'short';
          } catch {
            return 'failed';
          }
        }),
      );
      assert.deepEqual(outcomes, ['failed', 'failed', 'failed'], 'every client sees a broken response');
      assert.equal(r.count('/d.bin'), 1);
      assert.equal(await asset('dies', 'd.bin'), undefined, 'nothing stored');
      assert.ok(await eventually(async () => (await spoolFiles(server)).length === 0), 'the spool file is removed');
      const s = await server.app.proxy.status('dies');
      assert.equal(s.autoBlocked, false, 'a reachable remote that broke mid-body is not auto-blocked');

      die = false;
      const res = await server.fetch('/repository/dies/d.bin');
      assert.equal(res.status, 200);
      assert.equal((await hashBody(res)).sha256, sha256(data));
      assert.equal(r.count('/d.bin'), 2, 'the next request went upstream again');
    });

    it('(g) strictContentTypeValidation: an HTML page served for a .jar is refused and not cached', async () => {
      const r = await remote();
      let jar = false;
      r.handle = (_req, res) => {
        res.setHeader('Content-Type', jar ? 'application/java-archive' : 'text/html');
        res.end(jar ? Buffer.from('PK\x03\x04 a jar', 'latin1') : '<html><body>Sign in to continue</body></html>');
      };
      await server.repo('raw', 'proxy', { name: 'strict-proxy', proxy: { remoteUrl: r.url }, httpClient: noRetries, negativeCache: { enabled: false, timeToLive: 1 } });
      await server.repo('raw', 'proxy', {
        name: 'lax-proxy',
        proxy: { remoteUrl: r.url },
        httpClient: noRetries,
        storage: { blobStoreName: 'default', strictContentTypeValidation: false },
      });
      const refused = await server.fetch('/repository/strict-proxy/lib/x.jar');
      assert.equal(refused.status, 502);
      assert.match(await refused.text(), /Detected content type \[text\/html\], but expected \[application\/java-archive\]/);
      await settled();
      assert.equal(await asset('strict-proxy', 'lib/x.jar'), undefined, 'nothing cached');
      // Not cached, so once the remote serves the real jar it comes through.
      jar = true;
      const ok = await server.fetch('/repository/strict-proxy/lib/x.jar');
      assert.equal(ok.status, 200);
      assert.equal(await ok.text(), 'PK\x03\x04 a jar');
      assert.equal(r.count('/lib/x.jar'), 2);
      // With the validation off, whatever the remote sends is cached as is.
      jar = false;
      const lax = await text('/repository/lax-proxy/lib/x.jar');
      assert.equal(lax.status, 200);
      assert.match(lax.body, /Sign in/);
    });

    it('(f) upstream authentication, redirects without leaking credentials, timeouts', async () => {
      const r = await remote();
      const other = await remote('127.0.0.2');
      const good = basic('proxyuser', 's3cret');
      r.handle = (req, res) => {
        const auth = req.headers.authorization;
        if (req.url === '/hop') {
          res.statusCode = 302;
          res.setHeader('Location', `${other.url}/elsewhere.txt`);
          return void res.end();
        }
        if (req.url === '/same') {
          res.statusCode = 302;
          res.setHeader('Location', '/secret.txt');
          return void res.end();
        }
        if (auth !== good && auth !== 'Bearer tok-123') {
          res.statusCode = 401;
          res.setHeader('WWW-Authenticate', 'Basic realm="x"');
          return void res.end('who are you');
        }
        res.end('secret');
      };
      other.handle = (req, res) => res.end(req.headers.authorization ? 'leaked' : 'clean');

      await server.repo('raw', 'proxy', {
        name: 'auth',
        proxy: { remoteUrl: r.url },
        httpClient: { authentication: { type: 'username', username: 'proxyuser', password: 's3cret' }, ...noRetries },
      });
      assert.deepEqual(await text('/repository/auth/secret.txt'), { status: 200, body: 'secret' });
      assert.equal(r.requests.at(-1)!.headers.authorization, good);
      assert.match(String(r.requests.at(-1)!.headers['user-agent']), /Stowage/);
      // Same-origin redirect keeps the credentials; another host never sees them.
      assert.deepEqual(await text('/repository/auth/same'), { status: 200, body: 'secret' });
      assert.deepEqual(await text('/repository/auth/hop'), { status: 200, body: 'clean' });
      assert.equal(other.count('/elsewhere.txt'), 1);

      await server.repo('raw', 'proxy', {
        name: 'auth-bearer',
        proxy: { remoteUrl: r.url },
        httpClient: { authentication: { type: 'bearerToken', bearerToken: 'tok-123' }, ...noRetries },
      });
      assert.deepEqual(await text('/repository/auth-bearer/secret.txt'), { status: 200, body: 'secret' });

      // Wrong credentials: 502 saying so, and never negative-cached.
      await server.repo('raw', 'proxy', {
        name: 'auth-bad',
        proxy: { remoteUrl: r.url },
        httpClient: { authentication: { type: 'username', username: 'proxyuser', password: 'wrong' }, ...noRetries },
      });
      const before = r.count('/other.txt');
      for (let i = 0; i < 2; i++) {
        const e = await text('/repository/auth-bad/other.txt');
        assert.equal(e.status, 502);
        assert.match(e.body, /401/);
        assert.match(e.body, /authentication/);
      }
      assert.equal(r.count('/other.txt'), before + 2);
      assert.equal((await server.app.proxy.status('auth-bad')).autoBlocked, false);

      // Timeouts: no answer within connection.timeout → 504; a body that stalls is cut and not stored.
      const slow = await remote();
      slow.handle = async (req, res) => {
        if (req.url === '/stall.bin') {
          res.setHeader('Content-Length', '100000');
          res.write(Buffer.alloc(1000));
          return; // never finishes
        }
        await sleep(3000);
        if (!res.destroyed) res.end('too late');
      };
      await server.repo('raw', 'proxy', { name: 'slow', proxy: { remoteUrl: slow.url }, httpClient: { autoBlock: false, connection: { timeout: 1, retries: 0 } } });
      const t0 = Date.now();
      const t = await text('/repository/slow/late.txt');
      const took = Date.now() - t0;
      assert.equal(t.status, 504);
      assert.match(t.body, /did not answer/);
      assert.ok(took >= 900 && took < 2500, `timed out after about 1 s (took ${took} ms)`);
      assert.equal((await server.app.proxy.status('slow')).failures, 1, 'the header timeout counted');
      await assert.rejects(async () => hashBody(await server.fetch('/repository/slow/stall.bin')));
      assert.equal(await asset('slow', 'stall.bin'), undefined);
      assert.equal((await server.app.proxy.status('slow')).failures, 0, 'a stalled body is no remote failure: the remote answered');
    });
  });
}
