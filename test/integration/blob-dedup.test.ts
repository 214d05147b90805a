import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { DATABASES, startServer, type TestServer } from '../helpers/stowage.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

for (const db of DATABASES) {
  describe(`content-addressed blobs (${db})`, () => {
    let s: TestServer;
    before(async () => {
      // Grace 0: the GC task may reclaim anything unreferenced at once.
      s = await startServer({ db, env: { STOWAGE_BLOB_GC_GRACE: '0' } });
      for (const name of ['d1', 'd2']) {
        await s.repo('raw', 'hosted', { name, storage: { blobStoreName: 'default', writePolicy: 'ALLOW' } });
      }
    });
    after(() => s.stop());

    const blobRows = async (digest: string) => Number((await s.app.db('blobs').where({ sha256: digest }).count({ n: '*' }).first())!.n);

    it('concurrent uploads of the same new content all succeed and share one blob', async () => {
      const body = randomBytes(2 * 1024 * 1024 + 17);
      const puts = await Promise.all(Array.from({ length: 12 }, (_, i) => s.fetch(`/repository/${i % 2 ? 'd1' : 'd2'}/same/${i}.bin`, { method: 'PUT', body })));
      assert.deepEqual(
        puts.map((r) => r.status),
        puts.map(() => 201),
      );
      assert.equal(await blobRows(sha256(body)), 1);
      for (let i = 0; i < 12; i++) {
        const r = await s.fetch(`/repository/${i % 2 ? 'd1' : 'd2'}/same/${i}.bin`);
        assert.equal(r.status, 200);
        assert.equal(sha256(Buffer.from(await r.arrayBuffer())), sha256(body));
      }
      // Duplicate bytes were dropped from the store: one file per distinct blob row.
      const keys = await s.app.db('blobs').select('storage_key');
      const driver = await s.app.blobStores.driver((await s.app.blobStores.byName('default'))!.id);
      let files = 0;
      for await (const _ of driver.list('content/')) files++;
      assert.equal(files, keys.length);
    });

    it('a blob shared by two repositories survives deleting one copy and GC, and goes when both are deleted', async () => {
      const body = randomBytes(300_000);
      assert.equal((await s.fetch('/repository/d1/shared.bin', { method: 'PUT', body })).status, 201);
      assert.equal((await s.fetch('/repository/d2/shared.bin', { method: 'PUT', body })).status, 201);
      assert.equal(await blobRows(sha256(body)), 1);
      assert.equal((await s.fetch('/repository/d1/shared.bin', { method: 'DELETE' })).status, 204);
      const [task] = await s.app.tasks.list('assetBlob.cleanup');
      await s.app.tasks.run(task.task_id);
      const r = await s.fetch('/repository/d2/shared.bin');
      assert.equal(r.status, 200);
      assert.equal(sha256(Buffer.from(await r.arrayBuffer())), sha256(body));
      assert.equal((await s.fetch('/repository/d2/shared.bin', { method: 'DELETE' })).status, 204);
      const after = await s.app.tasks.run(task.task_id);
      assert.equal(after.last_result, 'OK');
      assert.match(after.last_message ?? '', /reclaimed [1-9]\d* bytes/);
      assert.equal(await blobRows(sha256(body)), 0);
    });
  });
}
