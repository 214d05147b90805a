/**
 * The raw format end to end over HTTP, as curl and build tools use it: hosted repositories with
 * every write policy, conditional and partial downloads, listings, access control, bad input
 * (truncated bodies, wrong digests, traversal) and groups. Runs on SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import net from 'node:net';
import path from 'node:path';
import { ADMIN, DATABASES, basic, startServer, type TestServer } from '../helpers/stowage.js';

const sha1 = (b: Buffer | string) => createHash('sha1').update(b).digest('hex');
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** Every byte the server sent, for checks the parsed view hides (a HEAD body, a second response). */
  raw: Buffer;
}

/**
 * One request over a plain socket, written byte for byte (nothing normalises the path or the
 * framing). Resolves when the server closes the connection or `timeoutMs` passes.
 */
function rawRequest(port: number, head: string, body: Buffer = Buffer.alloc(0), timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => sock.destroy(), timeoutMs);
    sock.on('connect', () => sock.write(Buffer.concat([Buffer.from(head), body])));
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', () => undefined); // a reset after the response is not a failure of the request
    sock.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no HTTP response: ${JSON.stringify(raw.toString('latin1').slice(0, 200))}`));
      const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status, headers, body: raw.subarray(end + 4), raw });
    });
  });
}

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
}

/** Polls `check` until it returns true or `ms` passes; returns the last result. */
async function eventually(check: () => boolean | Promise<boolean>, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await sleep(50);
  }
}

for (const db of DATABASES) {
  describe(`raw hosted repositories (${db})`, () => {
    let s: TestServer;
    let port: number;
    let storeDir: string;

    const put = (repo: string, p: string, body: Buffer | string, init: RequestInit & { auth?: string | null } = {}) =>
      s.fetch(`/repository/${repo}/${p}`, { method: 'PUT', body: body as unknown as BodyInit, ...init });
    const get = (repo: string, p: string, init: RequestInit & { auth?: string | null } = {}) => s.fetch(`/repository/${repo}/${p}`, init);
    const bytesOf = async (r: Response) => Buffer.from(await r.arrayBuffer());
    const repoId = async (name: string) => (await s.app.repositories.require(name)).id;
    /** What the database lists for a repository: the ground truth "nothing visible" is checked against. */
    const listed = async (name: string) => (await s.app.content.listAssets({ repositoryIds: [await repoId(name)] }, null, 1000)).items.map((a) => a.path).sort();
    const contentFiles = () => files(path.join(storeDir, 'content'));
    const tmpFiles = () => files(path.join(storeDir, '.tmp'));

    before(async () => {
      s = await startServer({ db });
      port = s.listener.port;
      storeDir = path.join(s.dataDir, 'blobs', 'default');
      await s.repo('raw', 'hosted', { name: 'files', storage: { writePolicy: 'ALLOW' } });
      await s.repo('raw', 'hosted', { name: 'once', storage: { writePolicy: 'ALLOW_ONCE' } });
      await s.repo('raw', 'hosted', { name: 'readonly', storage: { writePolicy: 'ALLOW' } });
      await s.repo('raw', 'hosted', { name: 'inline', storage: { writePolicy: 'ALLOW' }, raw: { contentDisposition: 'INLINE' } });
      await s.repo('raw', 'hosted', { name: 'offline', online: false, storage: { writePolicy: 'ALLOW' } });
    });
    after(() => s.stop());

    it('PUT, GET, HEAD and DELETE a file', async () => {
      const body = Buffer.from('hello, raw world\n');
      const created = await put('files', 'greetings/hello.txt', body);
      assert.equal(created.status, 201);
      assert.equal(created.headers.get('etag'), `"${sha1(body)}"`);

      const r = await get('files', 'greetings/hello.txt');
      assert.equal(r.status, 200);
      assert.deepEqual(await bytesOf(r), body);
      assert.equal(r.headers.get('content-length'), String(body.length));
      assert.equal(r.headers.get('x-checksum-sha256'), sha256(body));
      assert.equal(r.headers.get('x-checksum-sha1'), sha1(body));
      assert.equal(r.headers.get('x-checksum-md5'), createHash('md5').update(body).digest('hex'));
      assert.equal(r.headers.get('accept-ranges'), 'bytes');

      const head = await rawRequest(port, `HEAD /repository/files/greetings/hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-length'], String(body.length), 'HEAD announces the size');
      assert.equal(head.headers['etag'], `"${sha1(body)}"`);
      assert.equal(head.body.length, 0, 'HEAD sends no body');

      const del = await s.fetch('/repository/files/greetings/hello.txt', { method: 'DELETE' });
      assert.equal(del.status, 204);
      assert.equal((await get('files', 'greetings/hello.txt')).status, 404);
      assert.equal((await s.fetch('/repository/files/greetings/hello.txt', { method: 'DELETE' })).status, 404);
      assert.deepEqual(await listed('files'), []);
    });

    it('stores empty files', async () => {
      assert.equal((await put('files', 'empty.bin', Buffer.alloc(0))).status, 201);
      const r = await get('files', 'empty.bin');
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-length'), '0');
      assert.equal((await bytesOf(r)).length, 0);
    });

    it('sets Content-Type from the file name', async () => {
      // Bodies that fit their names (strictContentTypeValidation is on by default).
      const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]);
      const types: Array<[string, string, string | Buffer]> = [
        ['t/readme.txt', 'text/plain', 'x'],
        ['t/data.json', 'application/json', '{"a":1}'],
        ['t/page.html', 'text/html', '<html></html>'],
        ['t/logo.png', 'image/png', png],
        ['t/app.tar.gz', 'application/gzip', gzipSync('tar')],
        ['t/lib.jar', 'application/java-archive', Buffer.from('PK\x03\x04rest', 'latin1')],
        ['t/no-extension', 'application/octet-stream', 'x'],
        ['t/unknown.zzzz', 'application/octet-stream', 'x'],
      ];
      for (const [p, type, body] of types) {
        assert.equal((await put('files', p, body)).status, 201, p);
        const r = await get('files', p);
        assert.equal(r.headers.get('content-type'), type, p);
        await r.arrayBuffer();
      }
    });

    it('strictContentTypeValidation: refuses bytes that do not fit the name, stores nothing; off, anything goes', async () => {
      const html = '<!DOCTYPE html><html><body>Please log in</body></html>';
      for (const [p, expected] of [
        ['strict/lib.jar', 'application/java-archive'],
        ['strict/app.tgz', 'application/gzip'],
        ['strict/data.json', 'application/json'],
        ['strict/logo.png', 'image/png'],
      ]) {
        const r = await put('files', p, html);
        assert.equal(r.status, 400, p);
        const text = await r.text();
        assert.ok(text.includes(`Detected content type [text/html], but expected [${expected}]`), text);
        assert.equal((await get('files', p)).status, 404, `${p} was not stored`);
      }
      // A large body that fails on its first bytes is read to the end, then answered (no reset).
      const big = Buffer.concat([Buffer.from(html), randomBytes(3 * 1024 * 1024)]);
      const r = await put('files', 'strict/big.zip', big);
      assert.equal(r.status, 400);
      assert.match(await r.text(), /expected \[application\/zip\]/);
      // Names without a checkable type, and small valid bodies, pass.
      assert.equal((await put('files', 'strict/notes.txt', html)).status, 201);
      assert.equal((await put('files', 'strict/empty.jar', Buffer.alloc(0))).status, 201);
      // The switch off: stored as sent.
      await s.repo('raw', 'hosted', { name: 'lax', storage: { writePolicy: 'ALLOW', strictContentTypeValidation: false } });
      assert.equal((await put('lax', 'lib.jar', html)).status, 201);
      assert.equal(await (await get('lax', 'lib.jar')).text(), html);
    });

    describe('ranges and conditional requests', () => {
      const body = randomBytes(1000);
      before(async () => assert.equal((await put('files', 'ranges/blob.bin', body)).status, 201));

      const ranged = async (range: string, start: number, end: number) => {
        const r = await get('files', 'ranges/blob.bin', { headers: { Range: range } });
        assert.equal(r.status, 206, range);
        assert.equal(r.headers.get('content-range'), `bytes ${start}-${end}/1000`, range);
        assert.equal(r.headers.get('content-length'), String(end - start + 1), range);
        assert.deepEqual(await bytesOf(r), body.subarray(start, end + 1), range);
      };

      it('serves the first bytes', () => ranged('bytes=0-99', 0, 99));
      it('serves a middle range', () => ranged('bytes=500-599', 500, 599));
      it('serves a suffix range', () => ranged('bytes=-100', 900, 999));
      it('serves an open-ended range', () => ranged('bytes=990-', 990, 999));
      it('clamps a range past the end', () => ranged('bytes=995-5000', 995, 999));

      it('answers 416 with bytes */size for an unsatisfiable range', async () => {
        for (const range of ['bytes=1000-', 'bytes=5000-6000', 'bytes=-0']) {
          const r = await get('files', 'ranges/blob.bin', { headers: { Range: range } });
          assert.equal(r.status, 416, range);
          assert.equal(r.headers.get('content-range'), 'bytes */1000', range);
          await r.arrayBuffer();
        }
      });

      it('ignores a multi-range request and sends everything', async () => {
        const r = await get('files', 'ranges/blob.bin', { headers: { Range: 'bytes=0-1,5-6' } });
        assert.equal(r.status, 200);
        assert.deepEqual(await bytesOf(r), body);
      });

      it('answers If-None-Match with the ETag with 304', async () => {
        const first = await get('files', 'ranges/blob.bin');
        const etag = first.headers.get('etag')!;
        await first.arrayBuffer();
        assert.equal(etag, `"${sha1(body)}"`);
        const r = await get('files', 'ranges/blob.bin', { headers: { 'If-None-Match': etag } });
        assert.equal(r.status, 304);
        assert.equal(r.headers.get('etag'), etag);
        assert.equal((await bytesOf(r)).length, 0);
        const list = await get('files', 'ranges/blob.bin', { headers: { 'If-None-Match': `"nope", ${etag}` } });
        assert.equal(list.status, 304, 'a list of tags that includes the current one');
        const other = await get('files', 'ranges/blob.bin', { headers: { 'If-None-Match': '"0000"' } });
        assert.equal(other.status, 200);
        assert.deepEqual(await bytesOf(other), body);
      });

      it('answers If-Modified-Since with 304 when unchanged, 200 when older', async () => {
        const first = await get('files', 'ranges/blob.bin');
        const lastModified = first.headers.get('last-modified')!;
        await first.arrayBuffer();
        assert.ok(!Number.isNaN(Date.parse(lastModified)), `Last-Modified is an HTTP date: ${lastModified}`);
        const same = await get('files', 'ranges/blob.bin', { headers: { 'If-Modified-Since': lastModified } });
        assert.equal(same.status, 304);
        const later = await get('files', 'ranges/blob.bin', { headers: { 'If-Modified-Since': new Date(Date.now() + 3600_000).toUTCString() } });
        assert.equal(later.status, 304);
        const earlier = new Date(Date.parse(lastModified) - 3600_000).toUTCString();
        const changed = await get('files', 'ranges/blob.bin', { headers: { 'If-Modified-Since': earlier } });
        assert.equal(changed.status, 200);
        assert.deepEqual(await bytesOf(changed), body);
      });
    });

    describe('directory listings', () => {
      before(async () => {
        for (const p of ['docs/a.txt', 'docs/b.txt', 'docs/sub/c.txt', 'docs/sub/deeper/d.txt']) assert.equal((await put('files', p, p)).status, 201);
      });

      it('renders an HTML listing of a folder', async () => {
        const r = await get('files', 'docs/');
        assert.equal(r.status, 200);
        assert.match(r.headers.get('content-type')!, /^text\/html/);
        const html = await r.text();
        assert.match(html, /Index of \/files\/docs\//);
        assert.match(html, /href="a\.txt"/);
        assert.match(html, /href="b\.txt"/);
        assert.match(html, /href="sub\/"/);
        assert.doesNotMatch(html, /c\.txt/, 'only immediate children');
        assert.match(html, /href="\.\.\/"/, 'a link to the parent folder');
      });

      it('lists the repository root', async () => {
        const r = await get('files', '');
        assert.equal(r.status, 200);
        const html = await r.text();
        assert.match(html, /href="docs\/"/);
      });

      it('redirects a folder asked for without its slash', async () => {
        const r = await get('files', 'docs/sub');
        assert.ok(r.status === 301 || r.status === 302, `status ${r.status}`);
        assert.equal(new URL(r.headers.get('location')!, s.url).pathname, '/repository/files/docs/sub/');
        const root = await s.fetch('/repository/files');
        assert.ok(root.status === 301 || root.status === 302, `status ${root.status}`);
        assert.equal(new URL(root.headers.get('location')!, s.url).pathname, '/repository/files/');
      });

      it('answers 404 for a folder that does not exist', async () => {
        assert.equal((await get('files', 'nothing-here/')).status, 404);
        assert.equal((await get('files', 'nothing-here')).status, 404);
      });
    });

    it('sends Content-Disposition as the repository says (ATTACHMENT by default, INLINE)', async () => {
      await put('files', 'disp/report.pdf', '%PDF-1.4');
      await put('inline', 'disp/report.pdf', '%PDF-1.4');
      const att = await get('files', 'disp/report.pdf');
      assert.match(att.headers.get('content-disposition')!, /^attachment; filename="report\.pdf"/);
      const inl = await get('inline', 'disp/report.pdf');
      assert.match(inl.headers.get('content-disposition')!, /^inline; filename="report\.pdf"/);
    });

    describe('write policies', () => {
      it('ALLOW: a second PUT replaces the content', async () => {
        assert.equal((await put('files', 'policy/v.txt', 'one')).status, 201);
        const second = await put('files', 'policy/v.txt', 'two');
        assert.ok(second.status === 200 || second.status === 204, `overwrite status ${second.status}`);
        assert.equal(await (await get('files', 'policy/v.txt')).text(), 'two');
        assert.deepEqual(
          (await listed('files')).filter((p) => p.startsWith('policy/')),
          ['policy/v.txt'],
        );
      });

      it('ALLOW_ONCE: the first PUT is kept, a second one is refused with 400', async () => {
        assert.equal((await put('once', 'release/1.0/app.bin', 'first')).status, 201);
        const again = await put('once', 'release/1.0/app.bin', 'second');
        assert.equal(again.status, 400);
        assert.match(await again.text(), /does not allow updating/);
        assert.equal(await (await get('once', 'release/1.0/app.bin')).text(), 'first');
        assert.equal((await put('once', 'release/1.1/app.bin', 'next')).status, 201, 'new paths are still accepted');
      });

      it('DENY: PUT and DELETE are refused, content stays readable', async () => {
        assert.equal((await put('readonly', 'kept.txt', 'kept')).status, 201);
        const r = await s.app.repositories.require('readonly');
        const cfg = s.app.repositories.parse('raw', 'hosted', { ...r.config, storage: { ...r.config.storage, writePolicy: 'DENY' } });
        await s.app.repositories.update('readonly', cfg);
        const refusedPut = await put('readonly', 'new.txt', 'no');
        assert.equal(refusedPut.status, 400);
        assert.match(await refusedPut.text(), /read only/);
        const refusedOverwrite = await put('readonly', 'kept.txt', 'no');
        assert.equal(refusedOverwrite.status, 400);
        const refusedDelete = await s.fetch('/repository/readonly/kept.txt', { method: 'DELETE' });
        assert.equal(refusedDelete.status, 400);
        assert.equal(await (await get('readonly', 'kept.txt')).text(), 'kept');
        assert.deepEqual(await listed('readonly'), ['kept.txt']);
      });
    });

    it('answers 503 for an offline repository', async () => {
      const r = await get('offline', 'x.txt');
      assert.equal(r.status, 503);
      const p = await put('offline', 'x.txt', 'x');
      assert.equal(p.status, 503);
      assert.deepEqual(await listed('offline'), []);
      await s.app.repositories.setOnline('offline', true);
      assert.equal((await put('offline', 'x.txt', 'x')).status, 201, 'back online, writes work');
      await s.app.repositories.setOnline('offline', false);
      assert.equal((await get('offline', 'x.txt')).status, 503);
    });

    describe('authentication', () => {
      before(async () => assert.equal((await put('files', 'auth/public.txt', 'public')).status, 201));

      it('lets anonymous users read and browse', async () => {
        const r = await get('files', 'auth/public.txt', { auth: null });
        assert.equal(r.status, 200);
        assert.equal(await r.text(), 'public');
        assert.equal((await get('files', 'auth/', { auth: null })).status, 200);
      });

      it('challenges an anonymous PUT with 401 and WWW-Authenticate: Basic', async () => {
        const r = await put('files', 'auth/anon.txt', 'anon', { auth: null });
        assert.equal(r.status, 401);
        assert.match(r.headers.get('www-authenticate') ?? '', /^Basic realm=/);
        assert.equal((await get('files', 'auth/anon.txt')).status, 404);
        const d = await s.fetch('/repository/files/auth/public.txt', { method: 'DELETE', auth: null });
        assert.equal(d.status, 401);
        assert.equal((await get('files', 'auth/public.txt')).status, 200);
      });

      it('refuses a wrong password with 401, also for reads', async () => {
        const wrong = basic('admin', 'not-the-password');
        const p = await put('files', 'auth/wrong.txt', 'x', { auth: wrong });
        assert.equal(p.status, 401);
        assert.match(p.headers.get('www-authenticate') ?? '', /^Basic/);
        assert.equal((await get('files', 'auth/public.txt', { auth: wrong })).status, 401);
        assert.equal((await get('files', 'auth/public.txt', { auth: basic('nobody', 'x') })).status, 401);
        assert.equal((await get('files', 'auth/wrong.txt')).status, 404);
      });
    });

    describe('bad input leaves nothing behind', () => {
      it('a truncated upload (connection closed mid-body) stores nothing', async () => {
        const before = contentFiles();
        await new Promise<void>((resolve, reject) => {
          const sock = net.connect(port, '127.0.0.1', () => {
            sock.write(`PUT /repository/files/bad/truncated.bin HTTP/1.1\r\nHost: x\r\nAuthorization: ${ADMIN}\r\nContent-Length: 1000000\r\n\r\n`);
            sock.write(randomBytes(64 * 1024));
            // Long enough for the server to be streaming the body into its temp file.
            setTimeout(() => {
              sock.destroy();
              resolve();
            }, 300);
          });
          sock.on('error', reject);
        });
        assert.ok(await eventually(() => tmpFiles().length === 0), `the temp file of the aborted upload is removed: ${tmpFiles().join(', ')}`);
        assert.equal((await get('files', 'bad/truncated.bin')).status, 404);
        assert.ok(!(await listed('files')).includes('bad/truncated.bin'));
        assert.deepEqual(contentFiles(), before, 'no blob was published');
      });

      it('a body shorter than Content-Length, then end of stream, stores nothing', async () => {
        const before = contentFiles();
        // Half-close: the server sees the end of the request stream before the declared length.
        const res = await new Promise<string>((resolve) => {
          const sock = net.connect(port, '127.0.0.1', () => {
            sock.end(`PUT /repository/files/bad/short.bin HTTP/1.1\r\nHost: x\r\nAuthorization: ${ADMIN}\r\nContent-Length: 100\r\n\r\nonly-ten!!`);
          });
          let out = '';
          sock.on('data', (d) => (out += d));
          sock.on('error', () => undefined);
          sock.on('close', () => resolve(out));
        });
        if (res) assert.match(res, /^HTTP\/1\.1 4\d\d/, 'if the server answers at all, it is a 4xx');
        assert.ok(await eventually(() => tmpFiles().length === 0), 'temp file removed');
        assert.equal((await get('files', 'bad/short.bin')).status, 404);
        assert.deepEqual(contentFiles(), before);
      });

      it('bytes after the declared Content-Length are never stored', async () => {
        const declared = Buffer.from('0123456789');
        const extra = Buffer.from('EXTRA-BYTES-THAT-ARE-NOT-A-REQUEST');
        const whole = Buffer.concat([declared, extra]);
        // With a digest of the whole (longer) body: the server reads only the declared bytes, the
        // digest cannot match, so nothing is stored; the stray bytes are answered as a bad request.
        const withDigest = await rawRequest(
          port,
          `PUT /repository/files/bad/long-digest.bin HTTP/1.1\r\nHost: x\r\nAuthorization: ${ADMIN}\r\nContent-Length: 10\r\nX-Checksum-Sha256: ${sha256(whole)}\r\n\r\n`,
          whole,
        );
        assert.equal(withDigest.status, 400);
        const all = withDigest.raw.toString('latin1');
        assert.ok(!/HTTP\/1\.1 2\d\d/.test(all), `no success on the connection: ${all}`);
        assert.equal((await get('files', 'bad/long-digest.bin')).status, 404);

        // Without a digest: the declared 10 bytes are the body; the rest is not part of it.
        const plain = await rawRequest(port, `PUT /repository/files/bad/long.bin HTTP/1.1\r\nHost: x\r\nAuthorization: ${ADMIN}\r\nContent-Length: 10\r\n\r\n`, whole);
        assert.ok(plain.status === 201 || plain.status === 400, `status ${plain.status}`);
        assert.match(plain.raw.toString('latin1'), /HTTP\/1\.1 400/, 'the stray bytes are refused as a bad request');
        const r = await get('files', 'bad/long.bin');
        if (r.status === 200) assert.deepEqual(await bytesOf(r), declared, 'never more than the declared length');
        else assert.equal(r.status, 404);
        assert.ok(await eventually(() => tmpFiles().length === 0));
      });

      it('a wrong X-Checksum-Sha256 is refused with 400 and stores nothing', async () => {
        const before = contentFiles();
        const body = randomBytes(4096);
        const r = await put('files', 'bad/digest.bin', body, { headers: { 'X-Checksum-Sha256': sha256('something else') } });
        assert.equal(r.status, 400);
        assert.match(await r.text(), /sha256/);
        assert.equal((await get('files', 'bad/digest.bin')).status, 404);
        assert.ok(!(await listed('files')).includes('bad/digest.bin'));
        assert.deepEqual(contentFiles(), before, 'the staged bytes were discarded');
        assert.deepEqual(tmpFiles(), []);
        const ok = await put('files', 'bad/digest.bin', body, { headers: { 'X-Checksum-Sha256': sha256(body) } });
        assert.equal(ok.status, 201, 'the right digest is accepted');
      });

      it('a wrong X-Checksum-Sha1 or X-Checksum-Md5 is refused too', async () => {
        assert.equal((await put('files', 'bad/sha1.bin', 'x', { headers: { 'X-Checksum-Sha1': sha1('y') } })).status, 400);
        assert.equal((await put('files', 'bad/md5.bin', 'x', { headers: { 'X-Checksum-Md5': '0'.repeat(32) } })).status, 400);
        assert.equal((await get('files', 'bad/sha1.bin')).status, 404);
        assert.equal((await get('files', 'bad/md5.bin')).status, 404);
      });

      const traversals = [
        '../escaped.txt',
        'a/../../escaped.txt',
        '%2e%2e/escaped.txt',
        '%2E%2E%2Fescaped.txt',
        'x/%2e%2e/%2e%2e/escaped.txt',
        '%252e%252e/escaped.txt',
        '%252e%252e%252fescaped.txt',
        '/escaped.txt',
        '/etc/passwd',
        '%2fetc%2fpasswd',
        '..%5c..%5cescaped.txt',
        'a%5cb.txt',
        'escaped.txt%00.png',
        '%00',
      ];
      for (const method of ['GET', 'PUT', 'DELETE']) {
        it(`${method} with a traversal path is 400 (${traversals.length} spellings)`, async () => {
          for (const p of traversals) {
            const body = method === 'PUT' ? 'evil' : '';
            const r = await rawRequest(
              port,
              `${method} /repository/files/${p} HTTP/1.1\r\nHost: x\r\nAuthorization: ${ADMIN}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
              Buffer.from(body),
            );
            assert.equal(r.status, 400, `${method} /repository/files/${p} → ${r.status}`);
          }
        });
      }

      it('a literal backslash in the request line is refused', async () => {
        const r = await rawRequest(port, `GET /repository/files/..\\..\\escaped.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
        assert.equal(r.status, 400);
      });

      it('traversal attempts wrote nothing anywhere', async () => {
        const names = (await listed('files')).filter((p) => /escaped|passwd|\\|\0|%2e/i.test(p));
        assert.deepEqual(names, []);
        for (const d of [s.dataDir, path.dirname(s.dataDir), path.join(s.dataDir, 'blobs'), storeDir, path.join(storeDir, 'content')]) {
          assert.ok(!existsSync(path.join(d, 'escaped.txt')), `no escaped.txt in ${d}`);
        }
      });
    });

    describe('groups', () => {
      before(async () => {
        await s.repo('raw', 'hosted', { name: 'member-a', storage: { writePolicy: 'ALLOW' } });
        await s.repo('raw', 'hosted', { name: 'member-b', storage: { writePolicy: 'ALLOW' } });
        await s.repo('raw', 'group', { name: 'all', group: { memberNames: ['member-a', 'member-b'] } });
        await s.repo('raw', 'group', { name: 'all-writable', group: { memberNames: ['member-a', 'member-b'], writableMember: 'member-b' } });
        for (const [repo, p, body] of [
          ['member-a', 'shared/both.txt', 'from a'],
          ['member-b', 'shared/both.txt', 'from b'],
          ['member-a', 'shared/only-a.txt', 'only a'],
          ['member-b', 'shared/only-b.txt', 'only b'],
          ['member-b', 'b-folder/x.txt', 'x'],
        ]) {
          assert.equal((await put(repo, p, body)).status, 201);
        }
      });

      it('serves the first member that has the path', async () => {
        assert.equal(await (await get('all', 'shared/both.txt')).text(), 'from a');
        assert.equal(await (await get('all', 'shared/only-a.txt')).text(), 'only a');
        assert.equal(await (await get('all', 'shared/only-b.txt')).text(), 'only b');
        assert.equal((await get('all', 'shared/none.txt')).status, 404);
        const head = await s.fetch('/repository/all/shared/only-b.txt', { method: 'HEAD' });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get('content-length'), '6');
      });

      it('merges the members in its listing', async () => {
        const html = await (await get('all', 'shared/')).text();
        for (const n of ['both.txt', 'only-a.txt', 'only-b.txt']) assert.match(html, new RegExp(`href="${n.replace('.', '\\.')}"`));
        assert.equal(html.match(/href="both\.txt"/g)?.length, 1, 'a name in both members is listed once');
        const root = await (await get('all', '')).text();
        assert.match(root, /href="shared\/"/);
        assert.match(root, /href="b-folder\/"/);
      });

      it('sends uploads to the writable member', async () => {
        const r = await put('all-writable', 'uploaded/through-group.txt', 'via group');
        assert.equal(r.status, 201);
        assert.equal(await (await get('member-b', 'uploaded/through-group.txt')).text(), 'via group');
        assert.equal((await get('member-a', 'uploaded/through-group.txt')).status, 404);
        assert.deepEqual(
          (await listed('member-b')).filter((p) => p.startsWith('uploaded/')),
          ['uploaded/through-group.txt'],
        );
        assert.equal(await (await get('all-writable', 'uploaded/through-group.txt')).text(), 'via group');
      });

      it('refuses uploads to a group without a writable member', async () => {
        const r = await put('all', 'uploaded/refused.txt', 'no');
        assert.equal(r.status, 405);
        assert.match(await r.text(), /no writable member/);
        assert.equal((await get('member-a', 'uploaded/refused.txt')).status, 404);
        assert.equal((await get('member-b', 'uploaded/refused.txt')).status, 404);
      });

      it('refuses deletes through a group', async () => {
        const r = await s.fetch('/repository/all/shared/only-a.txt', { method: 'DELETE' });
        assert.ok(r.status >= 400 && r.status < 500, `status ${r.status}`);
        assert.equal((await get('member-a', 'shared/only-a.txt')).status, 200);
      });
    });
  });
}
