import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migrate, openDb } from '../../src/db/db.js';
import { ContentService } from '../../src/content/content-service.js';

// The tag lookup reads SQLite through a second, read-only connection: it must see what was
// committed and nothing of a transaction still open on the writer connection.
test('tagTarget reads committed data only (SQLite read-only connection)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'stowage-reader-'));
  const db = openDb(undefined, dir);
  try {
    await migrate(db);
    // Tags alone (no repository row): the one connection of the pool skips the foreign key.
    await db.raw('pragma foreign_keys = OFF');
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
  } finally {
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
