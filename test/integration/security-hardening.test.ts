/**
 * Hardening of sign-in and of stored secrets:
 * - login throttling per user id and per address (X-Forwarded-For, as behind a proxy), with a
 *   doubling, capped lock that even the right password does not pass, cleared by a success;
 * - no user enumeration: unknown user, wrong password and disabled user answer alike, in status,
 *   body, headers and (roughly) time, and a lock looks the same for users that do not exist;
 * - secrets at rest: proxy upstream passwords and bearer tokens and S3 secret keys are stored
 *   encrypted, used decrypted, never returned; values stored plain before keep working.
 * Runs on SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ADMIN, ADMIN_PASSWORD, DATABASES, basic, startServer, type TestServer } from '../helpers/stowage.js';
import { startS3, type S3Server } from '../helpers/s3.js';
import { DEFAULT_THROTTLE, LoginThrottle } from '../../src/security/throttle.js';

const API = '/service/rest/v1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('LoginThrottle', () => {
  const opts = { userThreshold: 3, addressThreshold: 5, windowMs: 60_000, baseLockMs: 1000, maxLockMs: 8000 };

  it('locks a user after the threshold, doubling each further failure up to the cap', () => {
    const th = new LoginThrottle(opts);
    const a = { user: 'bob', address: '10.0.0.1' };
    let t = 1_000_000;
    assert.deepEqual(th.failure(a, t), []);
    assert.deepEqual(th.failure(a, t), []);
    assert.equal(th.retryAfter(a, t), 0);
    assert.deepEqual(th.failure(a, t), [{ kind: 'user', key: 'bob', address: '10.0.0.1', until: t + 1000, failures: 3 }]);
    assert.equal(th.retryAfter(a, t), 1000);
    // Other spellings of the id from that address share the lock; the user from elsewhere, and
    // other users, are not locked (otherwise anyone could lock anyone out).
    assert.equal(th.retryAfter({ user: 'BOB', address: '10.0.0.1' }, t), 1000);
    assert.equal(th.retryAfter({ user: 'bob', address: '10.9.9.9' }, t), 0);
    assert.equal(th.retryAfter({ user: 'alice', address: '10.9.9.9' }, t), 0);
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      t += th.retryAfter(a, t);
      th.failure(a, t);
      waits.push(th.retryAfter({ user: 'bob', address: '10.0.0.1' }, t));
    }
    assert.deepEqual(waits, [2000, 4000, 8000, 8000, 8000]);
  });

  it('a success clears the user; old failures run out with the window', () => {
    const th = new LoginThrottle(opts);
    const a = { user: 'carol', address: '10.0.0.2' };
    const t = 5_000_000;
    th.failure(a, t);
    th.failure(a, t);
    th.success(a);
    assert.deepEqual(th.failure(a, t), [], 'count started over after the success');
    th.failure(a, t);
    assert.deepEqual(th.failure(a, t + 61_000), [], 'failures older than the window forgotten');
  });

  it('locks an address after its own threshold, whatever the user ids', () => {
    const th = new LoginThrottle(opts);
    const t = 9_000_000;
    for (let i = 0; i < 4; i++) assert.deepEqual(th.failure({ user: `u${i}`, address: '10.0.0.3' }, t), []);
    assert.deepEqual(th.failure({ address: '10.0.0.3' }, t), [{ kind: 'address', key: '10.0.0.3', address: '10.0.0.3', until: t + 1000, failures: 5 }]);
    assert.equal(th.retryAfter({ user: 'anyone', address: '10.0.0.3' }, t), 1000);
    assert.equal(th.retryAfter({ user: 'anyone', address: '10.0.0.4' }, t), 0);
  });

  it('stays bounded in memory', () => {
    const th = new LoginThrottle({ ...opts, maxEntries: 100 });
    for (let i = 0; i < 1000; i++) th.failure({ user: `flood${i}`, address: `10.1.${i >> 8}.${i & 255}` }, 1000);
    const sizes = th as unknown as { users: Map<string, unknown>; addresses: Map<string, unknown> };
    assert.ok(sizes.users.size <= 100 && sizes.addresses.size <= 100, `${sizes.users.size} / ${sizes.addresses.size}`);
  });

  it('has sensible defaults', () => {
    assert.equal(DEFAULT_THROTTLE.userThreshold, 5);
    assert.equal(DEFAULT_THROTTLE.windowMs, 5 * 60_000);
    assert.ok(DEFAULT_THROTTLE.addressThreshold > DEFAULT_THROTTLE.userThreshold);
  });
});

interface Answer {
  status: number;
  body: string;
  challenge: string | null;
  retryAfter: string | null;
  ms: number;
}

for (const db of DATABASES) {
  describe(`security hardening (${db})`, () => {
    let s: TestServer;

    async function call(auth: string, from = '198.51.100.1', p = `${API}/repositories`): Promise<Answer> {
      const t0 = performance.now();
      const res = await s.fetch(p, { auth, headers: { 'X-Forwarded-For': from } });
      const body = await res.text();
      return { status: res.status, body, challenge: res.headers.get('www-authenticate'), retryAfter: res.headers.get('retry-after'), ms: performance.now() - t0 };
    }

    before(async () => {
      s = await startServer({ db, env: { STOWAGE_ANONYMOUS: 'false', STOWAGE_TRUST_PROXY: 'true' } });
      await s.app.security.users.create({ userId: 'victim', password: 'victim-pw-1', roles: ['nx-admin'] });
      await s.app.security.users.create({ userId: 'sleeper', password: 'sleeper-pw-1', roles: ['nx-admin'], status: 'disabled' });
    });
    after(async () => {
      await s?.stop();
    });

    describe('login throttling', () => {
      before(() => {
        Object.assign(s.app.loginThrottle.options, { userThreshold: 3, addressThreshold: 1000, baseLockMs: 1000, maxLockMs: 4000, windowMs: 60_000 });
      });

      it('locks a user id from an address after repeated failures; even the right password waits there; a success resets', async () => {
        for (let i = 0; i < 3; i++) assert.equal((await call(basic('victim', 'guess-' + i))).status, 401);
        const locked = await call(basic('victim', 'victim-pw-1'));
        assert.equal(locked.status, 429, locked.body);
        assert.equal(locked.retryAfter, '1');
        // Not from another address: the lock is on the user id from that address only.
        assert.equal((await call(basic('victim', 'victim-pw-1'), '198.51.100.99')).status, 200);
        // Other users are not affected.
        assert.equal((await call(ADMIN)).status, 200);

        await sleep(1100);
        assert.equal((await call(basic('victim', 'victim-pw-1'))).status, 200);
        // The success cleared the count: two more failures do not lock.
        for (let i = 0; i < 2; i++) assert.equal((await call(basic('victim', 'again-' + i))).status, 401);
        assert.equal((await call(basic('victim', 'victim-pw-1'))).status, 200);
      });

      it('the window grows with further failures', async () => {
        for (let i = 0; i < 3; i++) assert.equal((await call(basic('victim', 'grow-' + i))).status, 401);
        assert.equal((await call(basic('victim', 'x'))).retryAfter, '1');
        await sleep(1100);
        assert.equal((await call(basic('victim', 'grow-4'))).status, 401);
        const next = await call(basic('victim', 'victim-pw-1'));
        assert.equal(next.status, 429);
        assert.equal(next.retryAfter, '2');
        await sleep(2100);
        assert.equal((await call(basic('victim', 'victim-pw-1'))).status, 200);
      });

      it('a lock looks the same whether or not the user exists, and is audited', async () => {
        for (let i = 0; i < 3; i++) assert.equal((await call(basic('no-such-user', 'guess-' + i))).status, 401);
        for (let i = 0; i < 3; i++) assert.equal((await call(basic('victim', 'guess-' + i))).status, 401);
        const ghost = await call(basic('no-such-user', 'p'));
        const real = await call(basic('victim', 'p'));
        assert.equal(ghost.status, 429);
        assert.deepEqual([ghost.status, ghost.body, ghost.retryAfter, ghost.challenge], [real.status, real.body, real.retryAfter, real.challenge]);

        const res = await s.fetch(`${API}/audit?domain=security.login&type=locked&context=no-such-user`);
        const events = (await res.json()) as { items: Array<{ remoteAddress: string; initiator: string; attributes: { kind: string; failures: number } }> };
        assert.equal(events.items.length, 1);
        assert.equal(events.items[0].remoteAddress, '198.51.100.1');
        assert.equal(events.items[0].initiator, 'anonymous');
        assert.deepEqual(events.items[0].attributes.kind, 'user');
        await sleep(1100);
      });

      it('locks an address after repeated failures for any users, Basic or Bearer', async () => {
        s.app.loginThrottle.options.addressThreshold = 4;
        try {
          const from = '203.0.113.7';
          for (const auth of [basic('u1', 'x'), basic('u2', 'x'), 'Bearer stw_' + 'B'.repeat(43), 'Bearer nonsense']) {
            assert.equal((await call(auth, from)).status, 401);
          }
          const locked = await call(ADMIN, from);
          assert.equal(locked.status, 429);
          assert.ok(Number(locked.retryAfter) >= 1);
          // The admin from anywhere else is fine; requests without credentials are not throttled.
          assert.equal((await call(ADMIN, '203.0.113.8')).status, 200);
          assert.equal((await call('', from)).status, 401);
          assert.equal((await call('', from)).challenge?.startsWith('Basic'), true);
        } finally {
          s.app.loginThrottle.options.addressThreshold = 1000;
        }
      });
    });

    describe('no user enumeration', () => {
      before(() => {
        Object.assign(s.app.loginThrottle.options, { userThreshold: 1000, addressThreshold: 1000 });
      });

      it('unknown user, wrong password and disabled user get the same answer', async () => {
        const answers = [await call(basic('nobody-here', 'pw')), await call(basic('victim', 'wrong-pw')), await call(basic('sleeper', 'sleeper-pw-1'))];
        for (const a of answers) {
          assert.equal(a.status, 401);
          assert.deepEqual([a.body, a.challenge], [answers[0].body, answers[0].challenge]);
        }
        assert.doesNotMatch(answers[0].body, /nobody-here|victim|exist|unknown|disabled/i);
      });

      it('and take about as long (the slow hash runs for unknown users too)', async () => {
        // Interleaved, and the fastest of 7 each: load from other processes only adds time, so the
        // minimum shows what the server itself spends (a skipped hash would be ~50× faster).
        const users = ['nobody-at-all', 'victim', 'sleeper'];
        await call(basic('warm-up', 'wrong'));
        const best = new Map(users.map((u) => [u, Infinity]));
        for (let i = 0; i < 7; i++) {
          for (const u of users) best.set(u, Math.min(best.get(u)!, (await call(basic(u, 'wrong-' + i))).ms));
        }
        const [unknown, known, disabled] = users.map((u) => best.get(u)!);
        // scrypt dominates: an unknown user is not answered in a fraction of the time.
        assert.ok(unknown > known * 0.5 && known > unknown * 0.5, `unknown ${unknown.toFixed(1)} ms vs known ${known.toFixed(1)} ms`);
        assert.ok(disabled > known * 0.5, `disabled ${disabled.toFixed(1)} ms vs known ${known.toFixed(1)} ms`);
      });
    });

    describe('secrets at rest', () => {
      let upstream: http.Server;
      let upstreamUrl: string;
      const seen: string[] = [];
      let s3: S3Server;

      before(async () => {
        upstream = http.createServer((req, res) => {
          const auth = req.headers.authorization ?? '';
          seen.push(auth);
          if (auth !== basic('proxyuser', 'upstream-pw-1') && auth !== 'Bearer upstream-token-1') {
            res.statusCode = 401;
            return void res.end('who are you');
          }
          res.end('upstream says hi');
        });
        await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
        upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
        s3 = await startS3();
      });
      after(async () => {
        upstream?.closeAllConnections();
        await new Promise((r) => upstream?.close(r));
        await s3?.stop();
      });

      async function rawAttributes(name: string): Promise<string> {
        const row = await s.app.db('repositories').where({ name }).first();
        return String(row.attributes);
      }

      const proxyBody = (name: string, authentication: Record<string, unknown>) => ({
        name,
        online: true,
        storage: { blobStoreName: 'default', strictContentTypeValidation: false },
        proxy: { remoteUrl: upstreamUrl, contentMaxAge: 0, metadataMaxAge: 0 },
        negativeCache: { enabled: false, timeToLive: 1 },
        httpClient: { blocked: false, autoBlock: false, connection: { retries: 0 }, authentication },
      });

      async function post(p: string, body: unknown): Promise<Response> {
        return s.fetch(API + p, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      }

      it('stores a proxy upstream password and bearer token encrypted and uses them decrypted', async () => {
        assert.equal((await post('/repositories/raw/proxy', proxyBody('up-basic', { type: 'username', username: 'proxyuser', password: 'upstream-pw-1' }))).status, 201);
        assert.equal((await post('/repositories/raw/proxy', proxyBody('up-bearer', { type: 'bearerToken', bearerToken: 'upstream-token-1' }))).status, 201);
        const basicRow = await rawAttributes('up-basic');
        const bearerRow = await rawAttributes('up-bearer');
        assert.ok(!basicRow.includes('upstream-pw-1') && basicRow.includes('enc:v1:'), basicRow);
        assert.ok(!bearerRow.includes('upstream-token-1') && bearerRow.includes('enc:v1:'), bearerRow);

        for (const name of ['up-basic', 'up-bearer']) {
          const res = await s.fetch(`/repository/${name}/hello.txt`);
          assert.deepEqual([res.status, await res.text()], [200, 'upstream says hi']);
          const cfg = await (await s.fetch(`${API}/repositories/raw/proxy/${name}`)).text();
          assert.ok(!cfg.includes('upstream-') && !cfg.includes('enc:v1:'), cfg);
        }
        assert.ok(seen.includes(basic('proxyuser', 'upstream-pw-1')));
        assert.ok(seen.includes('Bearer upstream-token-1'));
      });

      it('keeps the stored secret through GET → PUT, and encrypts a new one', async () => {
        const cfg = await (await s.fetch(`${API}/repositories/raw/proxy/up-basic`)).json();
        assert.equal(cfg.httpClient.authentication.password, null);
        cfg.proxy.contentMaxAge = 1;
        const put = (body: unknown) =>
          s.fetch(`${API}/repositories/raw/proxy/up-basic`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
        assert.equal((await put(cfg)).status, 204);
        const kept = await rawAttributes('up-basic');
        assert.ok(kept.includes('enc:v1:') && !kept.includes('upstream-pw-1'));
        await s.app.proxy.invalidateCache('up-basic');
        assert.equal((await s.fetch('/repository/up-basic/again.txt')).status, 200);

        cfg.httpClient.authentication.password = 'changed-pw-2';
        assert.equal((await put(cfg)).status, 204);
        const changed = await rawAttributes('up-basic');
        assert.ok(changed.includes('enc:v1:') && !changed.includes('changed-pw-2'), changed);
        const stored = (await s.app.repositories.find('up-basic'))!.config.httpClient!.authentication!.password!;
        assert.equal(s.app.secrets.decrypt(stored), 'changed-pw-2');
        // The audit log says the credentials changed, without them.
        const audit = await (await s.fetch(`${API}/audit?domain=repository.repository&type=updated&context=up-basic`)).text();
        assert.ok(!audit.includes('changed-pw-2') && !audit.includes('upstream-pw-1') && !audit.includes('enc:v1:'), audit);
        const items = (JSON.parse(audit) as { items: Array<{ attributes: { credentialsChanged: boolean } }> }).items;
        assert.deepEqual(
          items.map((i) => i.attributes.credentialsChanged),
          [false, true],
        );
      });

      it('refuses an encrypted-looking credential in a request (no decryption oracle)', async () => {
        const stolen = s.app.secrets.encrypt('someone-elses-secret');
        for (const auth of [
          { type: 'username', username: 'proxyuser', password: stolen },
          { type: 'bearerToken', bearerToken: stolen },
        ]) {
          const res = await post('/repositories/raw/proxy', proxyBody('oracle', auth));
          const text = await res.text();
          assert.equal(res.status, 400, text);
          assert.match(text, /httpClient\.authentication\.(password|bearerToken)/);
        }
        const cfg = await (await s.fetch(`${API}/repositories/raw/proxy/up-basic`)).json();
        cfg.httpClient.authentication.password = stolen;
        const put = await s.fetch(`${API}/repositories/raw/proxy/up-basic`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(cfg) });
        assert.equal(put.status, 400);
        const s3Body = {
          name: 'oracle-s3',
          bucketConfiguration: {
            bucket: { region: 'us-east-1', name: s3.bucket, prefix: 'oracle', expiration: 3 },
            bucketSecurity: { accessKeyId: s3.accessKeyId, secretAccessKey: stolen },
            advancedBucketConnection: { endpoint: s3.endpoint, forcePathStyle: true },
          },
        };
        const res = await post('/blobstores/s3', s3Body);
        const text = await res.text();
        assert.equal(res.status, 400, text);
        assert.match(text, /secretAccessKey/);
      });

      it('still uses a plain password stored before encryption existed', async () => {
        await s.repo('raw', 'proxy', proxyBody('up-legacy', { type: 'username', username: 'proxyuser', password: 'upstream-pw-1' }));
        assert.ok((await rawAttributes('up-legacy')).includes('upstream-pw-1'));
        const res = await s.fetch('/repository/up-legacy/old.txt');
        assert.deepEqual([res.status, await res.text()], [200, 'upstream says hi']);
      });

      it('stores an S3 secret key encrypted, uses it, never returns it', async () => {
        const body = {
          name: 'enc-s3',
          bucketConfiguration: {
            bucket: { region: 'us-east-1', name: s3.bucket, prefix: `hardening-${db}`, expiration: 3 },
            bucketSecurity: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
            advancedBucketConnection: { endpoint: s3.endpoint, forcePathStyle: true },
          },
        };
        const res = await post('/blobstores/s3', body);
        assert.equal(res.status, 201, await res.text());
        const row = await s.app.db('blob_stores').where({ name: 'enc-s3' }).first();
        const attrs = JSON.parse(String(row.attributes)) as Record<string, string>;
        assert.ok(attrs.secretAccessKey.startsWith('enc:v1:'), attrs.secretAccessKey);
        assert.equal(s.app.secrets.decrypt(attrs.secretAccessKey), s3.secretAccessKey);
        const got = await (await s.fetch(`${API}/blobstores/s3/enc-s3`)).text();
        assert.ok(!got.includes('secretAccessKey') && !got.includes('enc:v1:'), got);

        // The driver is built with the decrypted key: content goes in and comes out.
        await s.repo('raw', 'hosted', { name: 'on-s3', storage: { blobStoreName: 'enc-s3', writePolicy: 'ALLOW' } });
        const up = await s.fetch('/repository/on-s3/a/b.txt', { method: 'PUT', body: 'in the bucket' });
        assert.equal(up.status, 201, await up.text());
        const down = await s.fetch('/repository/on-s3/a/b.txt');
        assert.deepEqual([down.status, await down.text()], [200, 'in the bucket']);

        // GET → PUT keeps it encrypted.
        const xo = JSON.parse(got);
        xo.softQuota = { type: 'spaceUsedQuota', limit: 1_000_000 };
        const upd = await s.fetch(`${API}/blobstores/s3/enc-s3`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(xo) });
        assert.equal(upd.status, 204, await upd.text());
        const row2 = await s.app.db('blob_stores').where({ name: 'enc-s3' }).first();
        const attrs2 = JSON.parse(String(row2.attributes)) as Record<string, string>;
        assert.ok(attrs2.secretAccessKey.startsWith('enc:v1:'));
        assert.equal(s.app.secrets.decrypt(attrs2.secretAccessKey), s3.secretAccessKey);
        assert.equal((await s.fetch('/repository/on-s3/a/b.txt')).status, 200);
      });
    });

    it('the admin password still works after all this', async () => {
      assert.equal((await call(basic('admin', ADMIN_PASSWORD))).status, 200);
    });
  });
}
