/**
 * How the HTTP surface treats request bodies, over real sockets (issue 11, items 2, 13, 14):
 * - authorization before any body is read (an anonymous flood of large repository-create bodies
 *   is refused at once), a cap on bytes buffered by callers that have not signed in;
 * - a header timeout and an idle (not total) body timeout: a stalled body is answered 408, a slow
 *   upload that keeps sending is not cut;
 * - an oversized JSON body or chunked docker manifest is answered 413 with its message, never
 *   a reset connection;
 * - an early answer (refused overwrite, 401) reaches a client that is still sending, with curl
 *   and with a raw socket.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ADMIN, DATABASES, basic, startServer, type TestServer } from '../helpers/stowage.js';

const API = '/service/rest/v1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A raw client connection: what the server answered so far, and when it closed. */
interface Raw {
  sock: net.Socket;
  text(): string;
  closed: Promise<void>;
  /** Resolves with the answer once `pattern` is in it; rejects after `ms`. */
  waitFor(pattern: RegExp, ms: number): Promise<string>;
  /** Writes as long as the socket accepts; false once the server closed or reset it. */
  send(data: Buffer | string): Promise<boolean>;
}

function connect(url: string): Promise<Raw> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname, () => {
      let answer = '';
      const waiters: Array<() => void> = [];
      sock.on('data', (d) => {
        answer += d.toString('latin1');
        for (const w of waiters.splice(0)) w();
      });
      sock.on('error', () => undefined);
      const closed = new Promise<void>((r) => sock.once('close', () => r()));
      void closed.then(() => {
        for (const w of waiters.splice(0)) w();
      });
      resolve({
        sock,
        text: () => answer,
        closed,
        waitFor(pattern, ms) {
          return new Promise((res, rej) => {
            const timer = setTimeout(() => rej(new Error(`no ${pattern} within ${ms} ms; got: ${answer.slice(0, 300)}`)), ms);
            const check = () => {
              if (pattern.test(answer)) {
                clearTimeout(timer);
                res(answer);
              } else if (sock.destroyed) {
                clearTimeout(timer);
                rej(new Error(`closed without ${pattern}; got: ${answer.slice(0, 300)}`));
              } else waiters.push(check);
            };
            check();
          });
        },
        send(data) {
          if (sock.destroyed || !sock.writable) return Promise.resolve(false);
          return new Promise((res) => {
            sock.write(data, (err) => res(!err));
          });
        },
      });
    });
    sock.once('error', reject);
  });
}

/** curl in a child process (the server is in this one: spawnSync would stall it). */
function curl(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('curl', args);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/**
 * Sends a request head, leaves the answer unread while it sends the body (as a client busy
 * uploading does), then reads: a server that closed at once has reset the connection by then.
 */
async function sendWithoutReading(url: string, requestHead: string, bodyBytes: number): Promise<{ answer: string; error: string | null }> {
  const { hostname, port } = new URL(url);
  const sock = net.connect(Number(port), hostname);
  await new Promise((r) => sock.once('connect', r));
  sock.pause();
  let answer = '';
  let error: string | null = null;
  sock.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
  sock.write(requestHead);
  await sleep(500);
  const piece = Buffer.alloc(256 * 1024, 1);
  for (let sent = 0; sent < bodyBytes && !sock.destroyed; sent += piece.length) await new Promise<void>((r) => sock.write(piece, () => r()));
  sock.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  sock.resume();
  await new Promise<void>((r) => {
    sock.once('close', () => r());
    setTimeout(r, 5000);
  });
  sock.destroy();
  return { answer, error };
}

function head(method: string, p: string, headers: Record<string, string | number>): string {
  return `${method} ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
}

for (const db of DATABASES) {
  describe(`request bodies over real sockets (${db})`, () => {
    let s: TestServer;
    let work: string;

    before(async () => {
      work = mkdtempSync(path.join(tmpdir(), 'stowage-bodies-'));
      s = await startServer({
        db,
        env: { STOWAGE_ANONYMOUS: 'false', STOWAGE_MAX_JSON_BYTES: String(256 * 1024), STOWAGE_BODY_IDLE_TIMEOUT: '2', STOWAGE_HEADERS_TIMEOUT: '2' },
      });
      await s.repo('raw', 'hosted', { name: 'once', storage: { writePolicy: 'ALLOW_ONCE' } });
      await s.repo('docker', 'hosted', { name: 'dock', storage: { writePolicy: 'ALLOW' }, docker: { v1Enabled: false, forceBasicAuth: true } });
      await s.app.security.users.create({ userId: 'plain', password: 'plain-pw-1', roles: [] });
    });
    after(async () => {
      await s?.stop();
      rmSync(work, { recursive: true, force: true });
    });

    describe('authorization before the body (item 2)', () => {
      it('an anonymous repository create is refused before its body is sent', async () => {
        const c = await connect(s.url);
        await c.send(head('POST', `${API}/repositories/raw/hosted`, { 'Content-Type': 'application/json', 'Content-Length': 10 * 1024 * 1024 }));
        await c.send('{"name":"flood","padding":"' + 'x'.repeat(64 * 1024));
        const answer = await c.waitFor(/\r\n\r\n[\s\S]*\S/, 3000);
        assert.match(answer, /^HTTP\/1\.1 401 /);
        assert.match(answer, /\r\nconnection: close\r\n/i);
        assert.match(answer, /Authentication required/);
        c.sock.destroy();
        assert.ok(!(await s.app.repositories.find('flood')));
      });

      it('so is a signed-in user who may add no repository (403), before the body', async () => {
        const c = await connect(s.url);
        await c.send(
          head('POST', `${API}/repositories/raw/hosted`, { 'Content-Type': 'application/json', 'Content-Length': 10 * 1024 * 1024, Authorization: basic('plain', 'plain-pw-1') }),
        );
        await c.send('{"name":"flood2"');
        const answer = await c.waitFor(/\r\n\r\n[\s\S]*\S/, 3000);
        assert.match(answer, /^HTTP\/1\.1 403 /);
        assert.match(answer, /not permitted/);
        c.sock.destroy();
      });

      it('100 anonymous connections sending large bodies are all refused at once and hold no memory', async () => {
        // The default 10 MiB JSON limit: buffered, 100 bodies of 1 MiB each would be 100 MiB.
        const t = await startServer({ db: 'sqlite', env: { STOWAGE_ANONYMOUS: 'false' } });
        try {
          const before = process.memoryUsage().rss;
          const conns = await Promise.all(Array.from({ length: 100 }, () => connect(t.url)));
          const chunk = Buffer.alloc(256 * 1024, 'x');
          await Promise.all(
            conns.map(async (c) => {
              await c.send(head('POST', `${API}/repositories/raw/hosted`, { 'Content-Type': 'application/json', 'Content-Length': 10 * 1024 * 1024 }));
              for (let i = 0; i < 4; i++) if (!(await Promise.race([c.send(chunk), sleep(500).then(() => false)]))) break;
            }),
          );
          // Answered although 9 MiB of each body never comes.
          const answers = await Promise.all(conns.map((c) => c.waitFor(/^HTTP\/1\.1 \d+/, 5000)));
          for (const a of answers) assert.match(a, /^HTTP\/1\.1 401 /);
          const grown = process.memoryUsage().rss - before;
          for (const c of conns) c.sock.destroy();
          assert.ok(grown < 60 * 1024 * 1024, `RSS grew by ${(grown / 1048576).toFixed(0)} MiB`);
        } finally {
          await t.stop();
        }
      });

      it('caps what callers that have not signed in may have buffered at once (npm login bodies)', async () => {
        // Two slow logins of 40 KiB each: a 64 KiB cap takes one at a time.
        const t = await startServer({ db: 'sqlite', env: { STOWAGE_ANONYMOUS: 'false', STOWAGE_MAX_UNAUTHENTICATED_BODY_BYTES: String(64 * 1024) } });
        try {
          await t.repo('npm', 'hosted', { name: 'npm-in', storage: { writePolicy: 'ALLOW' } });
          const login = '/repository/npm-in/-/user/org.couchdb.user:someone';
          const first = await connect(t.url);
          await first.send(head('PUT', login, { 'Content-Type': 'application/json', 'Content-Length': 60_000 }));
          await first.send('{"name":"someone","password":"' + 'p'.repeat(40 * 1024));
          await sleep(300);
          const second = await connect(t.url);
          await second.send(head('PUT', login, { 'Content-Type': 'application/json', 'Content-Length': 60_000 }));
          await second.send('{"name":"someone","password":"' + 'p'.repeat(40 * 1024));
          const refused = await second.waitFor(/\r\n\r\n[\s\S]*\S/, 3000);
          assert.match(refused, /^HTTP\/1\.1 503 /);
          assert.match(refused, /retry-after: 5/i);
          assert.match(refused, /have not signed in/);
          second.sock.destroy();
          first.sock.destroy();
          await sleep(300);
          // Released when those requests end: a small login body goes through again.
          const again = await t.fetch(login, {
            method: 'PUT',
            auth: null,
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ name: 'someone', password: 'wrong' }),
          });
          assert.equal(again.status, 401, await again.text());
          // A signed-in caller is not charged: a body over the cap passes the budget (and fails later for its own reasons).
          const big = await t.fetch(`${API}/security/roles`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ id: 'r1', name: 'r1', description: 'd'.repeat(100 * 1024), privileges: [], roles: [] }),
          });
          assert.equal(big.status, 200, await big.text());
        } finally {
          await t.stop();
        }
      });
    });

    describe('timeouts (item 2)', () => {
      it('a request whose headers never end is answered 408 and closed', async () => {
        const c = await connect(s.url);
        const t0 = Date.now();
        await c.send('GET /service/rest/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
        await c.closed;
        assert.match(c.text(), /^HTTP\/1\.1 408 /);
        assert.ok(Date.now() - t0 < 6000, `${Date.now() - t0} ms`);
      });

      it('a body that stalls is answered 408 with a message, then closed', async () => {
        const c = await connect(s.url);
        await c.send(head('POST', `${API}/security/roles`, { 'Content-Type': 'application/json', 'Content-Length': 5000, Authorization: ADMIN }));
        await c.send('{"id":"slow-role",');
        const t0 = Date.now();
        await c.closed;
        assert.match(c.text(), /^HTTP\/1\.1 408 /);
        assert.match(c.text(), /nothing arrived for 2 s/);
        assert.ok(Date.now() - t0 >= 1500 && Date.now() - t0 < 9000, `${Date.now() - t0} ms`);
      });

      it('a slow upload that keeps sending is not cut (idle, not total)', async () => {
        const c = await connect(s.url);
        const body = Buffer.alloc(12, 'a');
        await c.send(head('PUT', '/repository/once/slow/upload.bin', { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length * 6, Authorization: ADMIN }));
        // 6 pieces 1 s apart: 5 s in all, more than twice the idle timeout.
        for (let i = 0; i < 6; i++) {
          await c.send(body);
          if (i < 5) await sleep(1000);
        }
        const answer = await c.waitFor(/^HTTP\/1\.1 \d+/, 5000);
        assert.match(answer, /^HTTP\/1\.1 201 /);
        c.sock.destroy();
        assert.equal((await s.fetch('/repository/once/slow/upload.bin')).status, 200);
      });
    });

    describe('oversized bodies (item 13)', () => {
      it('JSON over the limit is a 413 with its message, not a reset', async () => {
        const big = JSON.stringify({ id: 'big-role', name: 'big', description: 'x'.repeat(1024 * 1024), privileges: [], roles: [] });
        const res = await s.fetch(`${API}/security/roles`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: big });
        assert.equal(res.status, 413);
        assert.match(await res.text(), /exceeds the limit of 262144 bytes/);
        assert.equal((await s.fetch(`${API}/security/roles/big-role`)).status, 404);
        assert.equal((await s.fetch(`${API}/status`)).status, 200);
      });

      it('a chunked docker manifest over 4 MiB is a 413 in the OCI shape', async () => {
        const c = await connect(s.url);
        await c.send(
          head('PUT', '/repository/dock/v2/big/manifests/latest', {
            'Content-Type': 'application/vnd.oci.image.manifest.v1+json',
            'Transfer-Encoding': 'chunked',
            Authorization: ADMIN,
          }),
        );
        const piece = Buffer.alloc(256 * 1024, ' ');
        const chunk = Buffer.concat([Buffer.from(piece.length.toString(16) + '\r\n'), piece, Buffer.from('\r\n')]);
        for (let i = 0; i < 24 && !/^HTTP/.test(c.text()); i++) if (!(await c.send(chunk))) break;
        const answer = await c.waitFor(/\r\n\r\n[\s\S]*\}/, 5000);
        assert.match(answer, /^HTTP\/1\.1 413 /);
        assert.match(answer, /exceeds the limit/);
        c.sock.destroy();
      });
    });

    describe('early answers reach a client still sending (item 14)', () => {
      it('curl uploading several MB over a write-once path sees the 400 and its message', async () => {
        assert.equal((await s.fetch('/repository/once/rel/app.bin', { method: 'PUT', body: 'first' })).status, 201);
        const file = path.join(work, 'big.bin');
        writeFileSync(file, Buffer.alloc(8 * 1024 * 1024, 7));
        for (let i = 0; i < 3; i++) {
          const r = await curl(['-sS', '-u', 'admin:admin-test-pw', '-T', file, '-w', '\n%{http_code}', `${s.url}/repository/once/rel/app.bin`]);
          assert.equal(r.status, 0, `curl exit ${r.status}: ${r.stderr}`);
          assert.match(r.stdout, /does not allow updating[\s\S]*\n400$/);
        }
        assert.equal(await (await s.fetch('/repository/once/rel/app.bin')).text(), 'first');
      });

      it('a raw socket busy sending (not reading) when the answer comes still reads it', async () => {
        for (const [p, auth, expected] of [
          ['/repository/once/rel/app.bin', ADMIN, /^HTTP\/1\.1 400 [\s\S]*does not allow updating/],
          ['/repository/once/rel/anon.bin', null, /^HTTP\/1\.1 401 [\s\S]*Authentication required/],
        ] as const) {
          const { answer, error } = await sendWithoutReading(
            s.url,
            head('PUT', p, { 'Content-Length': 8 * 1024 * 1024, ...(auth ? { Authorization: auth } : {}) }),
            8 * 1024 * 1024,
          );
          assert.match(answer, expected, `${p}: ${error ?? ''}`);
          assert.equal(error, null, p);
        }
      });

      it('a 401 to an upload without credentials reaches the client too', async () => {
        const file = path.join(work, 'big.bin');
        const r = await curl(['-sS', '-H', 'Expect:', '-T', file, '-w', '\n%{http_code}', `${s.url}/repository/once/rel/other.bin`]);
        assert.equal(r.status, 0, `curl exit ${r.status}: ${r.stderr}`);
        assert.match(r.stdout, /\n401$/);
      });

      it('Expect: 100-continue is answered only when the body is read: a refused upload is never sent', async () => {
        const file = path.join(work, 'big.bin');
        const refused = await curl(['-sS', '-T', file, '-w', '\n%{http_code} %{size_upload}', `${s.url}/repository/once/rel/expect.bin`]);
        assert.equal(refused.status, 0, refused.stderr);
        assert.match(refused.stdout, /\n401 0$/);
        const overwrite = await curl(['-sS', '-u', 'admin:admin-test-pw', '-T', file, '-w', '\n%{http_code} %{size_upload}', `${s.url}/repository/once/rel/app.bin`]);
        assert.match(overwrite.stdout, /does not allow updating[\s\S]*\n400 0$/);
        // Accepted uploads get their "100 Continue" and go through whole.
        const stored = await curl(['-sS', '-u', 'admin:admin-test-pw', '-T', file, '-w', '\n%{http_code} %{size_upload}', `${s.url}/repository/once/rel/expect.bin`]);
        assert.match(stored.stdout, new RegExp(`\\n201 ${8 * 1024 * 1024}$`));
        const head = await s.fetch('/repository/once/rel/expect.bin', { method: 'HEAD' });
        assert.equal(head.headers.get('content-length'), String(8 * 1024 * 1024));
      });
    });
  });
}
