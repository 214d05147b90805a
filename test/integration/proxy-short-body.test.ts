/**
 * Upstream bodies that end with the connection (HTTP/1.1 200, Connection: close, no
 * Content-Length, not chunked) and are cut short. A raw socket server plays the upstream.
 * - raw proxy `.tgz`: half a gzip stream is refused (its trailer is missing) and nothing cached;
 *   the whole stream, close-delimited too, is verified by its trailer and cached for good;
 * - raw proxy `.txt`: nothing can tell, so it is served but cached only until metadataMaxAge; the
 *   next fetch (now with a Content-Length) replaces it and that copy stays;
 * - npm tarball: refused when cut short, and when whole but not what the packument's
 *   `dist.shasum` says; the right one is cached.
 * - raw proxy `.txt`, chunked with Connection: close: cut short before the last chunk is refused
 *   and not cached (the framing tells, so the whole one is cached for good). undici up to 7.25
 *   took such a body for a whole one; later 7.x crash instead (see upstream-client.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { packageTarball } from '../helpers/npm-gen.js';

type Mode = 'half-close' | 'close' | 'length' | 'chunked' | 'chunked-cut';
interface Served {
  body: Buffer;
  mode: Mode;
  type: string;
}

/** A minimal HTTP/1.1 server on raw sockets: answers each GET from `routes`, then closes. */
async function rawUpstream(): Promise<{ url: string; routes: Map<string, Served>; hits: Map<string, number>; close(): Promise<void> }> {
  const routes = new Map<string, Served>();
  const hits = new Map<string, number>();
  const server = net.createServer((sock) => {
    let head = '';
    sock.on('data', (d) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const path = decodeURIComponent(head.split(' ')[1] ?? '/');
      head = '';
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const r = routes.get(path);
      if (!r) {
        sock.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
      const cut = r.mode === 'half-close' || r.mode === 'chunked-cut';
      const body = cut ? r.body.subarray(0, Math.floor(r.body.length / 2)) : r.body;
      const framing = r.mode === 'length' ? `Content-Length: ${body.length}\r\n` : r.mode.startsWith('chunked') ? 'Transfer-Encoding: chunked\r\n' : '';
      sock.write(`HTTP/1.1 200 OK\r\nContent-Type: ${r.type}\r\n${framing}Connection: close\r\n\r\n`);
      if (!r.mode.startsWith('chunked')) return sock.end(body);
      for (let i = 0; i < body.length; i += 16 * 1024) {
        const chunk = body.subarray(i, i + 16 * 1024);
        sock.write(`${chunk.length.toString(16)}\r\n`);
        sock.write(chunk);
        sock.write('\r\n');
      }
      // Cut short: the connection closes where the next chunk (or the last, empty one) should be.
      sock.end(cut ? '' : '0\r\n\r\n');
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, routes, hits, close: () => new Promise((r) => server.close(() => r())) };
}

/** GET, reading the whole body: `body` is null when the response broke off, `status` 0 when it broke off before its head. */
async function get(s: TestServer, p: string): Promise<{ status: number; body: Buffer | null }> {
  const r = await s.fetch(p, { auth: null }).catch(() => null);
  if (!r) return { status: 0, body: null };
  try {
    return { status: r.status, body: Buffer.from(await r.arrayBuffer()) };
  } catch {
    return { status: r.status, body: null };
  }
}

const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

for (const db of DATABASES) {
  describe(`proxy: close-delimited upstream bodies cut short (${db})`, { timeout: 120_000 }, () => {
    let s: TestServer;
    let up: Awaited<ReturnType<typeof rawUpstream>>;
    const assetAt = async (repo: string, path: string) => {
      const id = (await s.app.repositories.require(repo)).id;
      return s.app.db('assets').where({ repository_id: id, path }).first();
    };
    /** A proxied body is committed after its last byte was served. */
    const stored = async (repo: string, path: string) => {
      for (let i = 0; i < 100; i++) {
        const a = await assetAt(repo, path);
        if (a) return a;
        await new Promise((r) => setTimeout(r, 20));
      }
      return undefined;
    };

    before(async () => {
      up = await rawUpstream();
      s = await startServer({ db });
      const httpClient = { autoBlock: false, connection: { retries: 0 } };
      await s.repo('raw', 'proxy', {
        name: 'rawp',
        proxy: { remoteUrl: `${up.url}/raw/`, contentMaxAge: -1, metadataMaxAge: 0 },
        storage: { blobStoreName: 'default', strictContentTypeValidation: true },
        httpClient,
      });
      await s.repo('npm', 'proxy', { name: 'npmp', proxy: { remoteUrl: `${up.url}/npm/`, contentMaxAge: -1, metadataMaxAge: 1440 }, httpClient });
    });
    after(async () => {
      await s?.stop();
      await up?.close();
    });

    it('raw .tgz: half a gzip stream is refused and not cached; the whole one is cached for good', async () => {
      const tgz = gzipSync(randomBytes(300 * 1024));
      up.routes.set('/raw/dist/app.tgz', { body: tgz, mode: 'half-close', type: 'application/gzip' });
      const first = await get(s, '/repository/rawp/dist/app.tgz');
      assert.ok(first.status !== 200 || first.body === null, `half a .tgz must not be answered as a complete 200 (got ${first.status}, ${first.body?.length} bytes)`);
      assert.equal(await assetAt('rawp', 'dist/app.tgz'), undefined, 'nothing cached');

      up.routes.set('/raw/dist/app.tgz', { body: tgz, mode: 'close', type: 'application/gzip' });
      const second = await get(s, '/repository/rawp/dist/app.tgz');
      assert.equal(second.status, 200);
      assert.ok(second.body?.equals(tgz), 'the whole body');
      assert.ok(await stored('rawp', 'dist/app.tgz'));
      const hits = up.hits.get('/raw/dist/app.tgz');
      const third = await get(s, '/repository/rawp/dist/app.tgz');
      assert.ok(third.body?.equals(tgz));
      assert.equal(up.hits.get('/raw/dist/app.tgz'), hits, 'verified by its gzip trailer: a permanent cache entry (contentMaxAge -1)');
    });

    it('raw .txt: an unverifiable close-delimited body is revalidated like metadata, not cached for good', async () => {
      const text = Buffer.from('line of text\n'.repeat(20_000));
      up.routes.set('/raw/docs/notes.txt', { body: text, mode: 'half-close', type: 'text/plain' });
      const first = await get(s, '/repository/rawp/docs/notes.txt');
      assert.equal(first.status, 200, 'nothing can tell the half from a whole file');
      assert.equal(first.body?.length, Math.floor(text.length / 2));
      assert.ok(await stored('rawp', 'docs/notes.txt'), 'served and kept, for stale use');

      // metadataMaxAge 0: the next request asks upstream again, which now sends a Content-Length.
      up.routes.set('/raw/docs/notes.txt', { body: text, mode: 'length', type: 'text/plain' });
      const second = await get(s, '/repository/rawp/docs/notes.txt');
      assert.equal(second.status, 200);
      assert.ok(second.body?.equals(text), 'the short copy was revalidated and replaced by the whole file');
      assert.equal(up.hits.get('/raw/docs/notes.txt'), 2);
      await new Promise((r) => setTimeout(r, 300)); // the replacing commit
      const third = await get(s, '/repository/rawp/docs/notes.txt');
      assert.ok(third.body?.equals(text));
      assert.equal(up.hits.get('/raw/docs/notes.txt'), 2, 'a length-delimited body is a permanent cache entry (contentMaxAge -1)');
    });

    it('raw .txt, chunked: cut short before the last chunk is refused and not cached; the whole one is cached for good', async () => {
      const text = Buffer.from('chunked line of text\n'.repeat(20_000));
      up.routes.set('/raw/docs/chunked.txt', { body: text, mode: 'chunked-cut', type: 'text/plain' });
      const first = await get(s, '/repository/rawp/docs/chunked.txt');
      assert.ok(first.status !== 200 || first.body === null, `half a chunked body must not be answered as a complete 200 (got ${first.status}, ${first.body?.length} bytes)`);
      assert.equal(await assetAt('rawp', 'docs/chunked.txt'), undefined, 'nothing cached');

      up.routes.set('/raw/docs/chunked.txt', { body: text, mode: 'chunked', type: 'text/plain' });
      const second = await get(s, '/repository/rawp/docs/chunked.txt');
      assert.equal(second.status, 200);
      assert.ok(second.body?.equals(text), 'the whole body');
      assert.ok(await stored('rawp', 'docs/chunked.txt'));
      const hits = up.hits.get('/raw/docs/chunked.txt');
      assert.ok((await get(s, '/repository/rawp/docs/chunked.txt')).body?.equals(text));
      assert.equal(up.hits.get('/raw/docs/chunked.txt'), hits, 'chunked framing proves the body whole: a permanent cache entry (contentMaxAge -1)');
    });

    it('npm tarball: cut short, or whole but not what dist.shasum says, is refused; the right one is cached', async () => {
      const { tarball } = packageTarball({ name: 'shortpkg', version: '1.0.0', files: { 'data.bin': randomBytes(200 * 1024).toString('base64') } });
      const { tarball: other } = packageTarball({ name: 'shortpkg', version: '1.0.0', files: { 'other.js': 'module.exports = 1;\n' } });
      const packument = {
        _id: 'shortpkg',
        name: 'shortpkg',
        'dist-tags': { latest: '1.0.0' },
        versions: {
          '1.0.0': { name: 'shortpkg', version: '1.0.0', dist: { shasum: sha1(tarball), tarball: `${up.url}/npm/shortpkg/-/shortpkg-1.0.0.tgz` } },
        },
        time: { '1.0.0': new Date().toISOString() },
      };
      up.routes.set('/npm/shortpkg', { body: Buffer.from(JSON.stringify(packument)), mode: 'length', type: 'application/json' });
      const doc = await get(s, '/repository/npmp/shortpkg');
      assert.equal(doc.status, 200);

      const path = '/npm/shortpkg/-/shortpkg-1.0.0.tgz';
      const url = '/repository/npmp/shortpkg/-/shortpkg-1.0.0.tgz';
      up.routes.set(path, { body: tarball, mode: 'half-close', type: 'application/octet-stream' });
      const half = await get(s, url);
      assert.ok(half.status !== 200 || half.body === null, `half a tarball must not be a complete 200 (got ${half.status})`);
      assert.equal(await assetAt('npmp', 'shortpkg/-/shortpkg-1.0.0.tgz'), undefined);

      up.routes.set(path, { body: other, mode: 'close', type: 'application/octet-stream' });
      const wrong = await get(s, url);
      assert.ok(wrong.status !== 200 || wrong.body === null, `a tarball that is not the packument's must be refused (got ${wrong.status})`);
      assert.equal(await assetAt('npmp', 'shortpkg/-/shortpkg-1.0.0.tgz'), undefined);

      up.routes.set(path, { body: tarball, mode: 'close', type: 'application/octet-stream' });
      const right = await get(s, url);
      assert.equal(right.status, 200);
      assert.ok(right.body?.equals(tarball));
      assert.ok(await stored('npmp', 'shortpkg/-/shortpkg-1.0.0.tgz'));
      const hits = up.hits.get(path);
      assert.ok((await get(s, url)).body?.equals(tarball));
      assert.equal(up.hits.get(path), hits, 'cached');
    });
  });
}
