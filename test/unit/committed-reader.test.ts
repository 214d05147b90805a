import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { readCommittedRow } from '../../src/db/db.js';
import { withSqlite } from '../helpers/sqlite.js';
import { ContentService } from '../../src/content/content-service.js';

// The tag lookup reads SQLite through a second, read-only connection: it must see what was
// committed and nothing of a transaction still open on the writer connection.
test('tagTarget reads committed data only (SQLite read-only connection)', async () => {
  await withSqlite(async (db) => {
    // Tags alone (no repository row): foreign keys are off.
    const repoId = 1;
    const content = new ContentService(db);
    assert.equal(await content.tagTarget(repoId, 'img', 'latest'), null);
    await content.setTag(db, repoId, 'img', 'latest', 'sha256:a');
    assert.equal(await content.tagTarget(repoId, 'img', 'latest'), 'sha256:a');

    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let inside!: () => void;
    const opened = new Promise<void>((r) => (inside = r));
    const tx = db.transaction(async (trx) => {
      await content.setTag(trx, repoId, 'img', 'latest', 'sha256:b');
      await content.setTag(trx, repoId, 'img', 'new', 'sha256:c');
      inside();
      await held;
    });
    await opened;
    // The writer's transaction is open: the reader still sees the last commit.
    assert.equal(await content.tagTarget(repoId, 'img', 'latest'), 'sha256:a');
    assert.equal(await content.tagTarget(repoId, 'img', 'new'), null);
    release();
    await tx;
    assert.equal(await content.tagTarget(repoId, 'img', 'latest'), 'sha256:b');
    assert.equal(await content.tagTarget(repoId, 'img', 'new'), 'sha256:c');
    await content.deleteTag(db, repoId, 'img', 'new');
    assert.equal(await content.tagTarget(repoId, 'img', 'new'), null);
  });
});

// Rows read are kept until the next commit (PRAGMA data_version): a write by any code path of the
// process must be seen at the next read, one by another connection to the file (another process)
// within a millisecond, and a kept row must not be changed by a caller.
test('kept rows last only until the next commit, whoever commits', async () => {
  await withSqlite(async (db, dir) => {
    const content = new ContentService(db);
    await content.setTag(db, 1, 'img', 'latest', 'sha256:a');
    const sql = 'select * from tags where repository_id = ? and scope = ? and name = ? limit 1';
    const first = readCommittedRow(db, sql, [1, 'img', 'latest'])!;
    assert.equal(first.target, 'sha256:a');
    // The same lookup again is the kept row, frozen.
    assert.equal(readCommittedRow(db, sql, [1, 'img', 'latest']), first);
    assert.throws(() => {
      (first as Record<string, unknown>).target = 'changed';
    }, TypeError);
    // Another parameter is another row.
    assert.equal(readCommittedRow(db, sql, [1, 'img', 'other']), undefined);

    // A raw update through knex (no service method involved): seen at once, however soon.
    for (const target of ['sha256:b0', 'sha256:b1', 'sha256:b']) {
      await db.raw(`update tags set target = '${target}' where name = 'latest'`);
      assert.equal(readCommittedRow(db, sql, [1, 'img', 'latest'])!.target, target);
    }

    // Another connection to the same file (as another process would write).
    const other = new Database(path.join(dir, 'db', 'stowage.sqlite'));
    try {
      other.pragma('foreign_keys = OFF');
      other.prepare("update tags set target = 'sha256:c' where name = 'latest'").run();
      other.prepare("insert into tags (repository_id, scope, name, target, updated_at) values (1, 'img', 'other', 'sha256:d', 0)").run();
    } finally {
      other.close();
    }
    await new Promise((r) => setTimeout(r, 2));
    assert.equal(readCommittedRow(db, sql, [1, 'img', 'latest'])!.target, 'sha256:c');
    assert.equal(readCommittedRow(db, sql, [1, 'img', 'other'])!.target, 'sha256:d');
  });
});
