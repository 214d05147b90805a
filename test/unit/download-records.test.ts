import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withSqlite } from '../helpers/sqlite.js';
import { ContentService } from '../../src/content/content-service.js';

// Rows served from the committed reader are shared and frozen: recording a download must not
// write into the row (it once did, threw inside a swallowed promise, and the record was lost).
test('a download of a frozen (shared) row is recorded, once a minute per asset', async () => {
  await withSqlite(async (db) => {
    await db('blobs').insert({ id: 1, store_id: 1, sha256: 'a'.repeat(64), sha1: 'b'.repeat(40), md5: 'c'.repeat(32), size: 3, storage_key: 'k', created_at: 1, touched_at: 1 });
    await db('assets').insert({ id: 7, repository_id: 1, path: 'a/b.jar', blob_id: 1, content_type: 'application/java-archive', created_at: 1, updated_at: 1 });
    const content = new ContentService(db);
    const row = content.findAssetWithBlob(1, 'a/b.jar');
    assert.ok(row, 'found through the committed reader');
    assert.ok(Object.isFrozen(row.asset), 'the kept row is frozen (shared between requests)');

    const before = Date.now();
    await content.markDownloaded(row.asset);
    await content.flushDownloads();
    const first = (await db('assets').where({ id: 7 }).first()) as { last_downloaded: number | null };
    assert.ok(first.last_downloaded !== null && first.last_downloaded >= before, `recorded (got ${first.last_downloaded})`);
    assert.equal(row.asset.last_downloaded, null, 'the shared row itself is unchanged');

    // Within the minute, the same (still stale) row is not recorded again.
    await db('assets').where({ id: 7 }).update({ last_downloaded: 5 });
    await content.markDownloaded(row.asset);
    await content.flushDownloads();
    assert.equal(((await db('assets').where({ id: 7 }).first()) as { last_downloaded: number }).last_downloaded, 5, 'throttled');
  });
});
