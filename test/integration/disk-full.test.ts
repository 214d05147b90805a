/**
 * A full disk, for real: the data directory (SQLite database, blob store, upload sessions) on a
 * 32 MiB tmpfs. A raw PUT and a docker PATCH larger than the free space hit ENOSPC mid-body and
 * answer 507 with a message (not 500, not 400), leaving nothing behind; uploads that bring the
 * free space under STOWAGE_BLOB_MIN_FREE make the store report itself unwritable and further raw,
 * docker and npm uploads answer 507; a DELETE through the REST API still commits, and once the
 * blob GC has freed the bytes the store is writable again. And when another program fills the
 * disk completely, the space reserve is given back so a DELETE through the API still commits.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, rmdirSync, rmSync, statfsSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ADMIN, DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { publishBody } from '../helpers/npm-gen.js';
import { filesUnder } from '../helpers/files.js';

const MiB = 1024 * 1024;
const MIN_FREE = 6 * MiB;
const RESERVE = 2 * MiB;
const API = '/service/rest/v1';

function mountTmpfs(dir: string): void {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(
      `This test needs a small tmpfs (mount -t tmpfs -o size=32m tmpfs ${dir}, as root) to fill a disk for real; mount failed: ${(e as { stderr?: Buffer }).stderr?.toString() ?? e}`,
      { cause: e },
    );
  }
}

const free = (dir: string) => {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
};

/** A body of `size` random-ish bytes, streamed (never whole in memory). */
function bigBody(size: number): ReadableStream<Uint8Array> {
  const chunk = randomBytes(MiB);
  let left = size;
  return Readable.toWeb(
    Readable.from(
      (function* () {
        while (left > 0) {
          const n = Math.min(left, chunk.length);
          left -= n;
          yield chunk.subarray(0, n);
        }
      })(),
    ),
  ) as ReadableStream<Uint8Array>;
}

for (const db of DATABASES) {
  describe(`disk full: 507, nothing left behind, deletes still work (${db})`, { timeout: 180_000 }, () => {
    let s: TestServer;
    let dir: string;
    let mounted = false;
    const assetCount = async () => Number(((await s.app.db('assets').count({ n: '*' }).first()) as { n: unknown }).n);
    const blobStore = () => path.join(dir, 'blobs', 'default');
    const until = async (what: string, ok: () => boolean) => {
      for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(ok(), what);
    };

    before(async () => {
      dir = mkdtempSync(path.join(tmpdir(), 'stowage-diskfull-'));
      mountTmpfs(dir);
      mounted = true;
      s = await startServer({ db, dataDir: dir, env: { STOWAGE_BLOB_MIN_FREE: String(MIN_FREE), STOWAGE_SPACE_RESERVE: String(RESERVE) } });
      await s.repo('raw', 'hosted', { name: 'files', storage: { blobStoreName: 'default', writePolicy: 'ALLOW' } });
      await s.repo('docker', 'hosted', { name: 'dock', docker: { v1Enabled: false, forceBasicAuth: false } });
      await s.repo('npm', 'hosted', { name: 'npmh', storage: { blobStoreName: 'default', writePolicy: 'ALLOW_ONCE' } });
    });
    after(async () => {
      await s?.stop({ keepData: true });
      if (mounted) execFileSync('umount', [dir]);
      rmdirSync(dir);
    });

    it('a raw PUT larger than the free space answers 507 with a message and stores nothing', async () => {
      const reserve = path.join(dir, 'space-reserve');
      await until('the space reserve is written at start', () => existsSync(reserve) && statSync(reserve).size === RESERVE);
      const before = free(dir);
      const assets = await assetCount();
      const r = await s.fetch('/repository/files/huge.bin', {
        method: 'PUT',
        body: bigBody(48 * MiB),
        headers: { 'Content-Type': 'application/octet-stream' },
        duplex: 'half',
      } as RequestInit);
      assert.equal(r.status, 507, 'Insufficient Storage');
      assert.match(await r.text(), /storage space.*ENOSPC/i);
      assert.equal(await assetCount(), assets, 'no asset');
      assert.equal((await s.fetch('/repository/files/huge.bin')).status, 404);
      assert.deepEqual(filesUnder(path.join(blobStore(), '.tmp')), [], 'no temp file left');
      // The reserve may have been given back while the disk was full, and not yet written again.
      const held = existsSync(reserve) ? statSync(reserve).size : 0;
      assert.ok(free(dir) + held >= before + RESERVE - MiB, `the space is free again (${free(dir)} + ${held} of ${before})`);
    });

    it('a raw PUT whose Content-Length exceeds the free space is refused with 507 before its body is read', async () => {
      const assets = await assetCount();
      const size = 64 * MiB;
      const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = http.request(`${s.url}/repository/files/declared.bin`, {
          method: 'PUT',
          headers: { Authorization: ADMIN, 'Content-Type': 'application/octet-stream', 'Content-Length': size },
        });
        req.on('response', (r) => {
          let text = '';
          r.on('data', (d) => (text += d));
          r.on('end', () => resolve({ status: r.statusCode!, text }));
          r.on('error', reject);
        });
        req.on('error', () => undefined); // the server may close before we stop writing
        // Only a first piece: the answer must come without the rest.
        req.write(randomBytes(64 * 1024));
      });
      assert.equal(res.status, 507);
      assert.match(res.text, /storing \d+ more would leave less than the minimum/);
      assert.equal(await assetCount(), assets);
    });

    it('a docker PATCH larger than the free space answers 507 (not 400) and the session keeps none of it', async () => {
      const p = await s.fetch('/repository/dock/v2/img/blobs/uploads/', { method: 'POST' });
      assert.equal(p.status, 202);
      const location = p.headers.get('location')!;
      const r = await s.fetch(location, { method: 'PATCH', body: bigBody(48 * MiB), headers: { 'Content-Type': 'application/octet-stream' }, duplex: 'half' } as RequestInit);
      assert.equal(r.status, 507);
      const err = (await r.json()) as { errors: Array<{ message: string }> };
      assert.match(err.errors[0].message, /storage space/i);
      const st = await s.fetch(location);
      assert.equal(st.status, 204, 'the session is still there');
      assert.equal(st.headers.get('range'), '0-0', 'with no bytes of the refused chunk');
      // The session's bytes live in the blob store (`.uploads/`); the refused chunk left none there.
      const sessions = filesUnder(path.join(blobStore(), '.uploads'));
      assert.ok(sessions.length > 0, 'the session was written to before the disk filled');
      assert.ok(
        sessions.every((f) => statSync(f).size === 0),
        'the session file holds nothing',
      );
      // It can still be used once space allows.
      const small = randomBytes(1000);
      const put = await s.fetch(`${location}${location.includes('?') ? '&' : '?'}digest=sha256:${(await import('node:crypto')).createHash('sha256').update(small).digest('hex')}`, {
        method: 'PUT',
        body: new Uint8Array(small),
        headers: { 'Content-Type': 'application/octet-stream' },
      });
      assert.equal(put.status, 201, await put.text());
    });

    it('below the free-space threshold: unwritable status, 507 for raw, docker and npm; a DELETE then frees space', async () => {
      assert.equal((await s.fetch('/service/rest/v1/status/writable', { auth: null })).status, 200, 'writable while there is room');
      // Fill with uploads that each fit, until the threshold refuses one. Sent chunked (no declared
      // size, which would be refused before crossing the threshold): the store ends up below it.
      const stored: string[] = [];
      let refused: Response | undefined;
      for (let i = 0; i < 40 && !refused; i++) {
        const r = await s.fetch(`/repository/files/fill/${i}.bin`, {
          method: 'PUT',
          body: bigBody(3 * MiB),
          headers: { 'Content-Type': 'application/octet-stream' },
          duplex: 'half',
        } as RequestInit);
        if (r.status === 201) stored.push(`fill/${i}.bin`);
        else refused = r;
      }
      assert.ok(refused, 'the disk filled up');
      assert.equal(refused.status, 507);
      assert.match(await refused.text(), /storage space/i);
      assert.ok(stored.length > 0);
      const assets = await assetCount();

      const w = await s.fetch('/service/rest/v1/status/writable', { auth: null });
      assert.equal(w.status, 503, 'not writable');
      assert.match(await w.text(), /bytes free, below the minimum/);
      const check = (await (await s.fetch(`${API}/status/check`)).json()) as Record<string, { healthy: boolean; message: string }>;
      assert.equal(check['Free space']?.healthy === false || check['Blob store default']?.healthy === false, true, JSON.stringify(check));

      // docker: a chunk is refused before it is read.
      const p = await s.fetch('/repository/dock/v2/img/blobs/uploads/', { method: 'POST' });
      if (p.status === 202) {
        const r = await s.fetch(p.headers.get('location')!, {
          method: 'PATCH',
          body: new Uint8Array(randomBytes(64 * 1024)),
          headers: { 'Content-Type': 'application/octet-stream' },
        });
        assert.equal(r.status, 507);
        assert.match(((await r.json()) as { errors: Array<{ message: string }> }).errors[0].message, /storage space/i);
      } else {
        assert.equal(p.status, 507, 'or the upload cannot even start');
      }

      // npm: the publish is refused with a message npm prints, nothing stored.
      const registry = `${s.url}/repository/npmh`;
      const pub = await fetch(`${registry}/full-pkg`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json', Authorization: ADMIN },
        body: JSON.stringify(publishBody({ name: 'full-pkg', version: '1.0.0' }, registry)),
      });
      assert.equal(pub.status, 507);
      assert.match(((await pub.json()) as { error: string }).error, /storage space/i);
      assert.equal((await s.fetch('/repository/npmh/full-pkg')).status, 404, 'no packument');
      assert.equal(await assetCount(), assets, 'nothing stored by the refused uploads');

      // A DELETE through the REST API commits (the database had room), and the GC frees the bytes.
      const list = (await (await s.fetch(`${API}/assets?repository=files`)).json()) as { items: Array<{ id: string; path: string }> };
      for (const a of list.items.filter((x) => x.path.startsWith('fill/')).slice(0, 3)) {
        const d = await s.fetch(`${API}/assets/${a.id}`, { method: 'DELETE' });
        assert.equal(d.status, 204, await d.text());
      }
      const gc = await s.app.blobs.gc(0);
      assert.ok(gc.bytesReclaimed >= 9 * MiB, `GC reclaimed ${gc.bytesReclaimed} bytes`);
      assert.equal((await s.fetch('/service/rest/v1/status/writable', { auth: null })).status, 200, 'writable again');
      const again = await s.fetch('/repository/files/after.bin', {
        method: 'PUT',
        body: new Uint8Array(randomBytes(MiB)),
        headers: { 'Content-Type': 'application/octet-stream' },
      });
      assert.equal(again.status, 201);
    });

    it('completely full (another program filled the disk): the reserve is given back and a DELETE still commits', async () => {
      const reserve = path.join(dir, 'space-reserve');
      await until('the reserve is written while there is room', () => existsSync(reserve) && statSync(reserve).size === RESERVE);
      const filler = path.join(dir, 'filler');
      const fd = openSync(filler, 'w');
      try {
        for (const size of [MiB, 64 * 1024, 4096]) {
          const buf = Buffer.alloc(size, 1);
          try {
            for (;;) writeSync(fd, buf);
          } catch (e) {
            assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
          }
        }
      } finally {
        closeSync(fd);
      }
      await until('the reserve is given back on a full disk', () => !existsSync(reserve));
      const list = (await (await s.fetch(`${API}/assets?repository=files`)).json()) as { items: Array<{ id: string; path: string }> };
      const victim = list.items.find((x) => x.path.startsWith('fill/'))!;
      const d = await s.fetch(`${API}/assets/${victim.id}`, { method: 'DELETE' });
      assert.equal(d.status, 204, `DELETE on a full disk: ${await d.text()}`);
      assert.equal((await s.fetch(`/repository/files/${victim.path}`)).status, 404);

      rmSync(filler);
      await s.app.blobs.gc(0);
      await until('the reserve is written again once there is room', () => existsSync(reserve) && statSync(reserve).size === RESERVE);
      assert.equal((await s.fetch('/service/rest/v1/status/writable', { auth: null })).status, 200);
    });
  });
}
