/**
 * kill -9 during 20 concurrent uploads. After a restart on the same data directory and
 * database: every asset the database lists is served with exactly the bytes its client sent,
 * none is listed but missing, no upload that had not sent its whole body left an asset, every
 * upload that was acknowledged survived, and new uploads work. On SQLite and PostgreSQL.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import { Stowage } from '../../src/stowage.js';
import { formats } from '../../formats/index.js';
import { openDb } from '../../src/db/db.js';
import { ADMIN, ADMIN_PASSWORD, DATABASES, spawnServer, type ChildServer } from '../helpers/stowage.js';
import { createDatabase } from '../helpers/postgres.js';

const UPLOADS = 20;
const SIZE = 5 * 1024 * 1024;
const CHUNK = 128 * 1024;
const REPO = 'crash';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
}

interface Upload {
  path: string;
  sha256: string;
  size: number;
  /** The client wrote every byte of the body. */
  sentAll: boolean;
  /** The server's status, when a response arrived before the kill. */
  status?: number;
  error?: string;
  done: Promise<void>;
}

/**
 * A PUT of `size` random bytes streamed in chunks, `intervalMs` apart (so it is in flight for a
 * while); the digest of what was sent is known up front.
 */
function slowUpload(url: string, p: string, size: number, intervalMs: number): Upload {
  const body = randomBytes(size);
  const u: Upload = { path: p, sha256: sha256(body), size, sentAll: false, done: Promise.resolve() };
  u.done = new Promise<void>((resolve) => {
    const req = http.request(`${url}/repository/${REPO}/${p}`, {
      method: 'PUT',
      agent: false,
      headers: { Authorization: ADMIN, 'Content-Length': String(size) },
    });
    req.on('response', (res) => {
      u.status = res.statusCode;
      res.resume();
      res.on('end', resolve);
      res.on('error', resolve);
    });
    req.on('error', (e) => {
      u.error = (e as NodeJS.ErrnoException).code ?? e.message;
      resolve();
    });
    let offset = 0;
    const pump = () => {
      if (req.destroyed) return;
      const end = Math.min(offset + CHUNK, size);
      const last = end === size;
      req.write(body.subarray(offset, end), () => {
        if (last) u.sentAll = true;
      });
      offset = end;
      if (last) req.end();
      else setTimeout(pump, intervalMs);
    };
    pump();
  });
  return u;
}

async function seed(dataDir: string, dbUrl: string | undefined): Promise<void> {
  const app = await Stowage.open(
    loadConfig({ STOWAGE_DATA_DIR: dataDir, STOWAGE_ADMIN_PASSWORD: ADMIN_PASSWORD, STOWAGE_LOG_LEVEL: 'error', ...(dbUrl ? { STOWAGE_DB: dbUrl } : {}) }),
    formats,
  );
  try {
    await app.repositories.create(app.repositories.parse('raw', 'hosted', { name: REPO, storage: { writePolicy: 'ALLOW' } }));
  } finally {
    await app.close();
  }
}

/** What the database lists for the repository, read directly (the server is another process). */
async function listedAssets(dataDir: string, dbUrl: string | undefined): Promise<Array<{ path: string; sha256: string; size: number }>> {
  const db = openDb(dbUrl, dataDir);
  try {
    const rows = await db('assets')
      .join('repositories', 'repositories.id', 'assets.repository_id')
      .join('blobs', 'blobs.id', 'assets.blob_id')
      .where('repositories.name', REPO)
      .orderBy('assets.path')
      .select('assets.path as path', 'blobs.sha256 as sha256', 'blobs.size as size');
    return rows.map((r) => ({ path: String(r.path), sha256: String(r.sha256), size: Number(r.size) }));
  } finally {
    await db.destroy();
  }
}

/** Asset paths of the repository through `/service/rest/v1/assets` (every page); null without that endpoint. */
async function apiAssetPaths(url: string): Promise<string[] | null> {
  const paths: string[] = [];
  let token: string | null = null;
  do {
    const q: URLSearchParams = new URLSearchParams({ repository: REPO, ...(token ? { continuationToken: token } : {}) });
    const r: Response = await fetch(`${url}/service/rest/v1/assets?${q}`, { headers: { Authorization: ADMIN } });
    if (r.status === 404 && paths.length === 0) {
      const text: string = await r.text();
      if (/No such API endpoint/.test(text)) return null;
      assert.fail(`GET /service/rest/v1/assets answered 404: ${text}`);
    }
    assert.equal(r.status, 200, 'GET /service/rest/v1/assets');
    const page = (await r.json()) as { items: Array<{ path: string }>; continuationToken: string | null };
    paths.push(...page.items.map((a) => a.path.replace(/^\//, '')));
    token = page.continuationToken;
  } while (token);
  return paths.sort();
}

const dirs: string[] = [];
const children: ChildServer[] = [];
after(() => {
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

for (const db of DATABASES) {
  describe(`crash during concurrent uploads (${db})`, () => {
    it(`kill -9 during ${UPLOADS} uploads of 5 MiB leaves only complete, exact assets`, async (t) => {
      const dataDir = mkdtempSync(path.join(tmpdir(), 'stowage-crash-'));
      dirs.push(dataDir);
      const dbUrl = db === 'postgres' ? await createDatabase() : undefined;
      await seed(dataDir, dbUrl);
      const first = await spawnServer({ dataDir, dbUrl });
      children.push(first);

      // Staggered speeds: upload i sends its 40 chunks (i * 10 + 8) ms apart, so the fastest
      // finish in about half a second and the slowest take several seconds.
      const uploads = Array.from({ length: UPLOADS }, (_, i) => slowUpload(first.url, `crash/u${String(i).padStart(2, '0')}.bin`, SIZE + i, 8 + i * 10));
      // Kill once a quarter of them were acknowledged, while the others are mid-body.
      const deadline = Date.now() + 60_000;
      while (uploads.filter((u) => u.status === 201).length < UPLOADS / 4) {
        assert.ok(Date.now() < deadline, `uploads never completed: ${JSON.stringify(uploads.map((u) => [u.status, u.error]))}`);
        assert.equal(first.proc.exitCode, null, `server died early:\n${first.output()}`);
        await sleep(10);
      }
      first.proc.kill('SIGKILL');
      assert.equal(await first.exited, 'SIGKILL');
      await Promise.all(uploads.map((u) => u.done));

      const acknowledged = uploads.filter((u) => u.status === 201);
      const unfinished = uploads.filter((u) => !u.sentAll);
      t.diagnostic(
        `at the kill: ${acknowledged.length} acknowledged, ${uploads.filter((u) => u.sentAll && u.status !== 201).length} fully sent without an answer, ${unfinished.length} mid-body`,
      );
      assert.ok(acknowledged.length >= UPLOADS / 4, 'some uploads completed before the kill');
      assert.ok(unfinished.length > 0, 'some uploads were in flight at the kill');
      for (const u of uploads) if (u.status !== undefined) assert.equal(u.status, 201, `${u.path} answered ${u.status}`);

      const second = await spawnServer({ dataDir, dbUrl });
      children.push(second);
      const listed = await listedAssets(dataDir, dbUrl);
      const sent = new Map(uploads.map((u) => [u.path, u]));

      // The REST API, where it exists, lists the same assets as the database.
      const api = await apiAssetPaths(second.url);
      if (api === null) t.diagnostic('REST API /service/rest/v1/assets not available: listing checked in the database only');
      else assert.deepEqual(api, listed.map((a) => a.path).sort(), 'the REST API lists exactly the assets in the database');

      // Every acknowledged upload survived the crash.
      for (const u of acknowledged)
        assert.ok(
          listed.some((a) => a.path === u.path),
          `acknowledged ${u.path} is listed`,
        );

      for (const a of listed) {
        const u = sent.get(a.path);
        assert.ok(u, `listed asset ${a.path} is one of the uploads`);
        assert.ok(u.sentAll, `${a.path} is listed although its client had not sent the whole body`);
        assert.equal(a.size, u.size, `${a.path}: listed size`);
        assert.equal(a.sha256, u.sha256, `${a.path}: listed sha256 is the digest of what the client sent`);
        // Listed means served, with exactly those bytes.
        const r = await fetch(`${second.url}/repository/${REPO}/${a.path}`);
        assert.equal(r.status, 200, `${a.path} is listed but not served (${r.status})`);
        const got = Buffer.from(await r.arrayBuffer());
        assert.equal(got.length, u.size, `${a.path}: served length`);
        assert.equal(sha256(got), u.sha256, `${a.path}: served bytes are what the client sent`);
      }

      // What was not listed is not served either.
      for (const u of uploads.filter((x) => !listed.some((a) => a.path === x.path))) {
        const r = await fetch(`${second.url}/repository/${REPO}/${u.path}`);
        assert.equal(r.status, 404, `${u.path} is not listed, so it must not be served`);
        await r.arrayBuffer();
      }

      // New uploads work, including to a path whose upload was cut off.
      const again = [...unfinished.slice(0, 2).map((u) => u.path), 'crash/after-restart.bin'];
      for (const p of again) {
        const body = randomBytes(256 * 1024 + 17);
        const put = await fetch(`${second.url}/repository/${REPO}/${p}`, { method: 'PUT', body, headers: { Authorization: ADMIN } });
        assert.equal(put.status, 201, `upload of ${p} after the restart`);
        const r = await fetch(`${second.url}/repository/${REPO}/${p}`);
        assert.equal(sha256(Buffer.from(await r.arrayBuffer())), sha256(body));
      }
      t.diagnostic(`after the restart: ${listed.length} assets listed, all served with the exact bytes`);
      await second.stop();
      assert.equal(await second.exited, 0);

      // What the crash left half-written (temp files, blobs published but never committed) is
      // garbage the blob GC collects: afterwards the store holds exactly the referenced blobs.
      const storeDir = path.join(dataDir, 'blobs', 'default');
      const leftTemp = files(path.join(storeDir, '.tmp')).length;
      const app = await Stowage.open(
        loadConfig({ STOWAGE_DATA_DIR: dataDir, STOWAGE_ADMIN_PASSWORD: ADMIN_PASSWORD, STOWAGE_LOG_LEVEL: 'error', ...(dbUrl ? { STOWAGE_DB: dbUrl } : {}) }),
        formats,
      );
      try {
        const gc = await app.blobs.gc(0);
        t.diagnostic(`blob GC after the crash: ${leftTemp} temp files left by the kill; removed ${gc.blobsDeleted} unused blobs and ${gc.orphansDeleted} orphans`);
        assert.deepEqual(files(path.join(storeDir, '.tmp')), [], 'no temp file survives the GC');
        const keys = (await app.db('blobs').select('storage_key')).map((r) => path.join(storeDir, String(r.storage_key))).sort();
        assert.deepEqual(files(path.join(storeDir, 'content')).sort(), keys, 'the store holds exactly the blobs the database names');
        const after = await app.content.listAssets({ repositoryIds: [(await app.repositories.require(REPO)).id] }, null, 1000);
        assert.equal(after.items.length, listed.length + again.length, 'GC kept every asset (and the ones uploaded after the restart)');
      } finally {
        await app.close();
      }
    });
  });
}
