/**
 * Two nodes on one PostgreSQL and one shared blob store take RPMs for the same hosted yum
 * repository at once: both then serve repodata listing every package (no generation lost), and
 * the two never generated the directory at the same time (the lease). Each generation pauses
 * (a test hook) so that, without the lease, generations of the two nodes do overlap.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { startServer, type TestServer } from '../helpers/stowage.js';
import { createDatabase } from '../helpers/postgres.js';
import { generationStats } from '../../formats/yum/repodata-service.js';
import { buildRpms } from '../helpers/rpm.js';

const CLUSTER_ENV = { STOWAGE_SECRET_KEY: 'yum-cluster-test-secret-key-0123456789' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('yum repodata on two nodes', { timeout: 120_000 }, () => {
  let a: TestServer;
  let b: TestServer;
  let work: string;
  let rpm: Buffer;

  before(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'stowage-yumcluster-'));
    const [f] = await buildRpms(path.join(work, 'b'), [{ name: 'yumclu', version: '1.0' }]);
    rpm = await readFile(f);
    const dbUrl = await createDatabase();
    a = await startServer({ dataDir: mkdtempSync(path.join(work, 'a-')), dbUrl, env: CLUSTER_ENV });
    b = await startServer({ dataDir: mkdtempSync(path.join(work, 'b-')), dbUrl, env: CLUSTER_ENV });
    const store = await a.fetch('/service/rest/v1/blobstores/file', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'shared', path: path.join(work, 'blobs') }),
    });
    assert.equal(store.status, 204, await store.text());
    const repo = await a.fetch('/service/rest/v1/repositories/yum/hosted', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'yc', storage: { blobStoreName: 'shared' } }),
    });
    assert.equal(repo.status, 201, await repo.text());
    for (let i = 0; (await b.fetch('/repository/yc/')).status === 404 && i < 100; i++) await sleep(100);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function listed(s: TestServer): Promise<string[]> {
    const md = await (await s.fetch('/repository/yc/repodata/repomd.xml')).text();
    const href = /<data type="primary">[\s\S]*?<location href="([^"]+)"/.exec(md)![1];
    const gz = Buffer.from(await (await s.fetch(`/repository/yc/${href}`)).arrayBuffer());
    return [
      ...gunzipSync(gz)
        .toString()
        .matchAll(/<location href="([^"]+)"/g),
    ]
      .map((m) => m[1])
      .sort();
  }

  it('lists every RPM uploaded through either node, one node generating at a time', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `n${String(i).padStart(2, '0')}.rpm`);
    generationStats.pauseMs = 300;
    const overlapsBefore = generationStats.overlaps;
    const countBefore = generationStats.count;
    try {
      // In waves, so that uploads keep arriving on both nodes while generations run.
      const rs: Response[] = [];
      for (let w = 0; w < names.length; w += 4) {
        rs.push(...(await Promise.all(names.slice(w, w + 4).map((n, i) => (i % 2 ? b : a).fetch(`/repository/yc/${n}`, { method: 'PUT', body: rpm as unknown as BodyInit })))));
      }
      // One upload on each node with the second arriving while the first node's generation runs
      // (it read the packages before the second upload): the second node must leave a request.
      const first = a.fetch('/repository/yc/z-late-a.rpm', { method: 'PUT', body: rpm as unknown as BodyInit });
      for (let i = 0; generationStats.active === 0 && i < 1000; i++) await sleep(10);
      rs.push(await b.fetch('/repository/yc/z-late-b.rpm', { method: 'PUT', body: rpm as unknown as BodyInit }), await first);
      names.push('z-late-a.rpm', 'z-late-b.rpm');
      assert.deepEqual(
        rs.map((r) => r.status),
        Array(14).fill(201),
      );
      // An upload that found the other node's lease left it a request: its generation may still run.
      const until = Date.now() + 30_000;
      while (Date.now() < until && (JSON.stringify(await listed(a)) !== JSON.stringify(names) || (await a.app.content.listTags(await repoId(), {})).length > 0)) await sleep(100);
      assert.deepEqual(await listed(a), names);
      assert.deepEqual(await listed(b), names);
      assert.ok(generationStats.count - countBefore >= 2, `generations: ${generationStats.count - countBefore}`);
      assert.equal(generationStats.overlaps - overlapsBefore, 0, 'two nodes generated the same repodata directory at the same time');
      assert.deepEqual(await a.app.content.listTags(await repoId(), {}), [], 'every lease released');
    } finally {
      generationStats.pauseMs = 0;
    }
  });

  async function repoId(): Promise<number> {
    return (await a.app.repositories.require('yc')).id;
  }
});
