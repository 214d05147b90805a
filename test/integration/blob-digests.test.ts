/**
 * Digests per format: a docker push stores sha256 only, a raw upload of the same bytes fills sha1
 * and md5 on the same row, a wrong declared digest stores nothing, digests asked for later are
 * computed once (`ensureDigests`, the backfill task), and migration 040 on a database with rows.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { DATABASES, runTask, startServer, type TestServer } from '../helpers/stowage.js';
import { createDatabase } from '../helpers/postgres.js';
import { openDb } from '../../src/db/db.js';
import { isAppError } from '../../src/errors.js';
import type { BlobRow } from '../../src/blob/blob-service.js';

const hex = (algo: string, b: Buffer) => createHash(algo).update(b).digest('hex');
const OCT = { 'Content-Type': 'application/octet-stream' };

/** One docker blob upload over the registry protocol (POST, then PUT with the body and its digest). */
async function dockerPush(s: TestServer, body: Buffer): Promise<void> {
  const p = await s.fetch('/repository/dock/v2/img/blobs/uploads/', { method: 'POST' });
  assert.equal(p.status, 202, await p.text());
  const loc = p.headers.get('location')!;
  const put = await s.fetch(`${loc}${loc.includes('?') ? '&' : '?'}digest=sha256:${hex('sha256', body)}`, { method: 'PUT', body: new Uint8Array(body), headers: OCT });
  assert.equal(put.status, 201, await put.text());
}

for (const db of DATABASES) {
  describe(`digests per format (${db})`, () => {
    let s: TestServer;
    const row = async (body: Buffer) =>
      (await s.app
        .db<BlobRow>('blobs')
        .where({ sha256: hex('sha256', body) })
        .first()) ?? null;
    before(async () => {
      s = await startServer({ db });
      await s.repo('raw', 'hosted', { name: 'r', storage: { blobStoreName: 'default', writePolicy: 'ALLOW' } });
      await s.repo('docker', 'hosted', { name: 'dock', storage: { blobStoreName: 'default', writePolicy: 'ALLOW' }, docker: { forceBasicAuth: true, v1Enabled: false } });
    });
    after(() => s.stop());

    it('a docker push stores sha256 only; a raw upload of the same bytes fills sha1 and md5 on the same row', async () => {
      // Above 1 MiB: the hashing worker takes part.
      const body = randomBytes(2 * 1024 * 1024 + 5);
      await dockerPush(s, body);
      const pushed = (await row(body))!;
      assert.equal(pushed.sha1, null);
      assert.equal(pushed.md5, null);
      assert.equal(pushed.sha512, null);
      assert.equal((await s.fetch('/repository/r/same.bin', { method: 'PUT', body: new Uint8Array(body) })).status, 201);
      const filled = (await row(body))!;
      assert.equal(filled.id, pushed.id);
      assert.equal(filled.sha1, hex('sha1', body));
      assert.equal(filled.md5, hex('md5', body));
      assert.equal(filled.sha512, null);
      assert.equal(
        Number(
          (await s.app
            .db('blobs')
            .where({ sha256: hex('sha256', body) })
            .count({ n: '*' })
            .first())!.n,
        ),
        1,
      );
    });

    it('a raw upload with a wrong X-Checksum-Sha1 is a 400 naming sha1, and stores nothing', async () => {
      const body = randomBytes(3000);
      const r = await s.fetch('/repository/r/wrong.bin', { method: 'PUT', body: new Uint8Array(body), headers: { 'X-Checksum-Sha1': hex('sha1', Buffer.from('other')) } });
      assert.equal(r.status, 400);
      assert.match(await r.text(), /sha1/);
      assert.equal(await row(body), null);
      assert.equal((await s.fetch('/repository/r/wrong.bin')).status, 404);
    });

    it('expected digests of every algorithm are checked (BLAKE2b-256, sha512), computed even when the format does not declare them', async () => {
      const storeId = (await s.app.blobStores.byName('default'))!.id;
      const body = Buffer.from('abc');
      const ok = await s.app.blobs.stage(storeId, Readable.from([body]), {
        digests: ['sha256'],
        expected: { blake2b256: 'bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319', sha512: hex('sha512', body) },
      });
      assert.equal(ok.blake2b256, 'bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319');
      assert.equal(ok.sha1, undefined);
      await s.app.blobs.discard(ok);
      await assert.rejects(
        s.app.blobs.stage(storeId, Readable.from([body]), { digests: ['sha256'], expected: { blake2b256: '00'.repeat(32) } }),
        (e: unknown) => isAppError(e) && e.status === 400 && /blake2b256/.test(e.message),
      );
    });

    it('ensureDigests computes a missing sha512 once, stores it, and concurrent callers share the read', async () => {
      const body = randomBytes(1024 * 1024 + 99);
      assert.equal((await s.fetch('/repository/r/e.bin', { method: 'PUT', body: new Uint8Array(body) })).status, 201);
      const before = (await row(body))!;
      assert.equal(before.sha512, null);
      const reads = s.app.blobs.digestsComputed;
      const blob = (await s.app.blobs.get(before.id))!;
      const [a, b] = await Promise.all([s.app.blobs.ensureDigests(blob, ['sha512']), s.app.blobs.ensureDigests(blob, ['sha512'])]);
      assert.equal(a.sha512, hex('sha512', body));
      assert.equal(b.sha512, hex('sha512', body));
      assert.equal(s.app.blobs.digestsComputed, reads + 1);
      assert.equal((await row(body))!.sha512, hex('sha512', body));
      await s.app.blobs.ensureDigests((await s.app.blobs.get(before.id))!, ['sha512', 'sha1']);
      assert.equal(s.app.blobs.digestsComputed, reads + 1);
    });

    it('search by sha1 finds a raw asset; a docker blob is found once the backfill task computed its sha1', async () => {
      const rawBody = randomBytes(5000);
      assert.equal((await s.fetch('/repository/r/found.bin', { method: 'PUT', body: new Uint8Array(rawBody) })).status, 201);
      const found = (await (await s.fetch(`/service/rest/v1/search/assets?sha1=${hex('sha1', rawBody)}`)).json()) as {
        items: Array<{ path: string; checksum: Record<string, string> }>;
      };
      assert.deepEqual(
        found.items.map((i) => i.path),
        ['found.bin'],
      );
      assert.deepEqual(Object.keys(found.items[0].checksum).sort(), ['md5', 'sha1', 'sha256']);

      const layer = randomBytes(7000);
      await dockerPush(s, layer);
      const search = async () =>
        (
          (await (await s.fetch(`/service/rest/v1/search/assets?repository=dock&sha1=${hex('sha1', layer)}`)).json()) as {
            items: Array<{ path: string; checksum: Record<string, string> }>;
          }
        ).items;
      assert.deepEqual(await search(), []);
      const message = await runTask(s, 'blobstore.digests', { blobStoreName: 'default', algorithms: 'sha1,md5' });
      assert.match(message, /of [1-9]\d* blobs/);
      const items = await search();
      assert.equal(items.length, 1);
      assert.equal(items[0].checksum.sha1, hex('sha1', layer));
      assert.equal(items[0].checksum.md5, hex('md5', layer));
      assert.equal((await row(layer))!.sha1, hex('sha1', layer));
    });
  });
}

for (const db of DATABASES) {
  describe(`migration 040: blob digests on an existing database (${db})`, () => {
    it('keeps rows and the assets → blobs foreign key, makes sha1/md5 nullable, adds sha512 and blake2b256', async () => {
      const dataDir = mkdtempSync(path.join(tmpdir(), 'stowage-mig040-'));
      const url = db === 'postgres' ? await createDatabase() : undefined;
      const knex = openDb(url, dataDir);
      try {
        // Every migration before 040, one at a time.
        for (;;) {
          const [, pending] = (await knex.migrate.list()) as [unknown[], Array<{ file?: string } | [string, unknown]>];
          const next = pending[0];
          const name = Array.isArray(next) ? next[0] : next?.file;
          if (!name || name.startsWith('20261202_040')) break;
          await knex.migrate.up();
        }
        const t = Date.now();
        const [store] = await knex('blob_stores').insert({ name: 'default', type: 'file', attributes: '{}', created_at: t }).returning('id');
        const storeId = typeof store === 'object' ? store.id : store;
        const [blob] = await knex('blobs')
          .insert({ store_id: storeId, sha256: 'a'.repeat(64), sha1: 'b'.repeat(40), md5: 'c'.repeat(32), size: 3, storage_key: 'content/k', created_at: t, touched_at: t })
          .returning('id');
        const blobId = typeof blob === 'object' ? blob.id : blob;
        const [repo] = await knex('repositories')
          .insert({ name: 'r', format: 'raw', type: 'hosted', blob_store_id: storeId, attributes: '{}', created_at: t, updated_at: t })
          .returning('id');
        const repoId = typeof repo === 'object' ? repo.id : repo;
        await knex('assets').insert({
          repository_id: repoId,
          path: 'x',
          blob_id: blobId,
          content_type: 'text/plain',
          kind: 'content',
          attributes: '{}',
          created_at: t,
          updated_at: t,
        });

        await knex.migrate.up();

        const after = await knex('blobs').where({ id: blobId }).first();
        assert.equal(after.sha1, 'b'.repeat(40));
        assert.equal(after.md5, 'c'.repeat(32));
        assert.equal(after.sha512, null);
        assert.equal(after.blake2b256, null);
        assert.equal(Number((await knex('assets').where({ blob_id: blobId }).count({ n: '*' }).first())!.n), 1);
        // sha1 and md5 may be null now.
        await knex('blobs').insert({
          store_id: storeId,
          sha256: 'd'.repeat(64),
          sha1: null,
          md5: null,
          sha512: 'e'.repeat(128),
          size: 1,
          storage_key: 'content/k2',
          created_at: t,
          touched_at: t,
        });
        // The foreign key from assets still holds: a referenced blob cannot go, an unknown blob cannot be referenced.
        await assert.rejects(knex('blobs').where({ id: blobId }).delete());
        await assert.rejects(
          knex('assets').insert({ repository_id: repoId, path: 'y', blob_id: 999999, content_type: 'text/plain', kind: 'content', attributes: '{}', created_at: t, updated_at: t }),
        );
        // The unique (store, sha256) is still there.
        await assert.rejects(knex('blobs').insert({ store_id: storeId, sha256: 'a'.repeat(64), size: 1, storage_key: 'content/k3', created_at: t, touched_at: t }));
        if (db === 'sqlite') assert.equal((await knex.raw('PRAGMA foreign_keys'))[0].foreign_keys, 1);
      } finally {
        await knex.destroy();
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });
}
