/**
 * A proxy never caches metadata its format cannot use (issue 11, item 11): an upstream answering
 * 200 with an HTML portal page or a packument cut short gets a 502 naming why and nothing stored,
 * the group over it does not serve it, and once the upstream recovers the next request is served
 * (no waiting for metadataMaxAge). An unusable copy already in the cache counts as stale: fetched
 * again, and replaced; a usable cached copy is still served when the upstream sends garbage.
 * A real upstream under the test's control; the npm CLI installs after the recovery.
 * Runs on SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { ADMIN_PASSWORD, DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { NpmClient } from '../helpers/npm-cli.js';
import { integrityOf, packageTarball } from '../helpers/npm-gen.js';
import { fakeUpstream, type Answer } from '../helpers/fake-upstream.js';

const API = '/service/rest/v1';
const PORTAL = '<!DOCTYPE html>\n<html><head><title>Wi-Fi sign in</title></head><body>Accept the terms to continue</body></html>\n';

type Mode = 'good' | 'html' | 'truncated' | 'other-name' | 'down';

for (const db of DATABASES) {
  describe(`proxy metadata that cannot be used (${db})`, () => {
    let s: TestServer;
    let up: Awaited<ReturnType<typeof fakeUpstream>>;
    const mode = new Map<string, Mode>();
    const tarballs = new Map<string, Buffer>();

    const packument = (name: string, versions: string[]): string => {
      const doc = {
        _id: name,
        name,
        'dist-tags': { latest: versions[versions.length - 1] },
        versions: {} as Record<string, unknown>,
        time: { created: '2020-01-01T00:00:00.000Z', modified: '2020-01-02T00:00:00.000Z' },
      };
      for (const v of versions) {
        const { manifest, tarball } = packageTarball({ name, version: v });
        tarballs.set(`/${name}/-/${name}-${v}.tgz`, tarball);
        doc.versions[v] = { ...manifest, dist: { ...integrityOf(tarball), tarball: `${up.url}/${name}/-/${name}-${v}.tgz` } };
      }
      return JSON.stringify(doc);
    };
    const answer = (p: string): Answer => {
      const tgz = tarballs.get(p);
      if (tgz) return { status: 200, type: 'application/octet-stream', body: tgz };
      const name = p.slice(1);
      const m = mode.get(name);
      if (!m) return null;
      const good = packument(name, ['1.0.0', '1.1.0']);
      switch (m) {
        case 'good':
          return { status: 200, type: 'application/json', body: good };
        case 'html':
          return { status: 200, type: 'text/html', body: PORTAL };
        case 'truncated':
          return { status: 200, type: 'application/json', body: good.slice(0, Math.floor(good.length / 2)) };
        case 'other-name':
          return { status: 200, type: 'application/json', body: packument('someone-else', ['1.0.0']) };
        case 'down':
          return { status: 503, type: 'text/plain', body: 'maintenance' };
      }
    };
    const create = async (type: string, body: Record<string, unknown>) => {
      const r = await s.fetch(`${API}/repositories/npm/${type}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ online: true, storage: { blobStoreName: 'default', strictContentTypeValidation: true }, ...body }),
      });
      assert.equal(r.status, 201, await r.text());
    };
    const stored = async (name: string) => {
      const repo = (await s.app.repositories.find('npm-meta-proxy'))!;
      return s.app.content.findAsset(repo.id, name);
    };

    before(async () => {
      up = await fakeUpstream(answer);
      s = await startServer({ db });
      await create('hosted', { name: 'npm-meta-hosted', storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW_ONCE' } });
      await create('proxy', {
        name: 'npm-meta-proxy',
        proxy: { remoteUrl: up.url, contentMaxAge: 1440, metadataMaxAge: 60 },
        negativeCache: { enabled: false, timeToLive: 1440 },
        // Auto-block would hold the recovered upstream back: these tests are about the cache.
        httpClient: { blocked: false, autoBlock: false },
      });
      await create('group', { name: 'npm-meta-group', group: { memberNames: ['npm-meta-hosted', 'npm-meta-proxy'] } });
    });
    after(async () => {
      await s?.stop();
      await up?.close();
    });

    for (const bad of ['html', 'truncated', 'other-name'] as const) {
      it(`an upstream answering 200 with ${bad === 'html' ? 'an HTML portal page' : bad === 'truncated' ? 'truncated JSON' : "another package's document"}: 502, not cached; served once the upstream recovers`, async () => {
        const name = `pkg-${bad}`;
        mode.set(name, bad);
        const r = await s.fetch(`/repository/npm-meta-proxy/${name}`);
        const text = await r.text();
        assert.equal(r.status, 502, text);
        assert.match(JSON.parse(text).error, /cannot be used/);
        assert.equal(await stored(name), undefined, 'nothing cached');
        // The group does not serve it either (a failing member is skipped).
        const g = await s.fetch(`/repository/npm-meta-group/${name}`);
        assert.notEqual(g.status, 200, await g.text());
        // Asked again: the upstream is asked again (nothing fresh in the way).
        const before = up.hits.get(`/${name}`) ?? 0;
        assert.equal((await s.fetch(`/repository/npm-meta-proxy/${name}`)).status, 502);
        assert.ok((up.hits.get(`/${name}`) ?? 0) > before, 'the upstream was asked again');

        mode.set(name, 'good');
        const ok = await s.fetch(`/repository/npm-meta-group/${name}`);
        const doc = JSON.parse(await ok.text());
        assert.equal(ok.status, 200);
        assert.deepEqual(Object.keys(doc.versions), ['1.0.0', '1.1.0']);
        assert.ok(await stored(name));
        assert.equal((await s.fetch(`/repository/npm-meta-proxy/${name}`)).status, 200);
      });
    }

    it('an unusable copy already cached counts as stale: fetched again and replaced; never served when the upstream is down', async () => {
      const repo = (await s.app.repositories.find('npm-meta-proxy'))!;
      const plant = async (name: string, body: string) => {
        const staged = await s.app.blobs.stage(repo.blobStoreId, Readable.from([Buffer.from(body)]));
        await s.app.blobs.ingest(staged, (tx, blob) =>
          s.app.content.putAsset(tx, { repositoryId: repo.id, path: name, blobId: blob.id, contentType: 'application/json', kind: 'metadata', lastVerified: Date.now() }),
        );
        await s.app.blobs.settle(staged);
      };
      // As a proxy before this fix left it: a fresh entry holding a portal page.
      await plant('pkg-planted', PORTAL);
      mode.set('pkg-planted', 'good');
      const r = await s.fetch('/repository/npm-meta-proxy/pkg-planted');
      assert.equal(r.status, 200, await r.text());
      const again = await s.fetch('/repository/npm-meta-group/pkg-planted');
      assert.equal(again.status, 200);
      assert.deepEqual(Object.keys((await again.json()).versions), ['1.0.0', '1.1.0']);
      const asset = (await stored('pkg-planted'))!;
      const blob = (await s.app.blobs.get(asset.blob_id))!;
      assert.notEqual(blob.size, Buffer.byteLength(PORTAL), 'the cached copy was replaced');

      // Unusable cached copy and the upstream down: a 502, not the garbage.
      await plant('pkg-planted-down', '{"name":"pkg-planted-down","versions":{"1.0.0":');
      mode.set('pkg-planted-down', 'down');
      const down = await s.fetch('/repository/npm-meta-proxy/pkg-planted-down');
      assert.equal(down.status, 502, await down.text());
      mode.set('pkg-planted-down', 'good');
      assert.equal((await s.fetch('/repository/npm-meta-proxy/pkg-planted-down')).status, 200);
    });

    it('a usable cached copy past its max age is still served while the upstream sends garbage, and kept', async () => {
      mode.set('pkg-stale', 'good');
      assert.equal((await s.fetch('/repository/npm-meta-proxy/pkg-stale')).status, 200);
      const first = (await stored('pkg-stale'))!;
      await s.app.db('assets').where({ id: first.id }).update({ last_verified: 1 });
      mode.set('pkg-stale', 'html');
      const hits = up.hits.get('/pkg-stale') ?? 0;
      const r = await s.fetch('/repository/npm-meta-proxy/pkg-stale');
      assert.equal(r.status, 200);
      assert.deepEqual(Object.keys((await r.json()).versions), ['1.0.0', '1.1.0']);
      assert.equal(up.hits.get('/pkg-stale'), hits + 1, 'revalidated upstream');
      assert.equal((await stored('pkg-stale'))!.blob_id, first.blob_id, 'the good copy was kept');
    });

    it('npm installs through the group once the upstream recovered from a portal page', async () => {
      mode.set('pkg-cli', 'html');
      assert.equal((await s.fetch('/repository/npm-meta-proxy/pkg-cli')).status, 502);
      mode.set('pkg-cli', 'good');
      const reg = `${s.url}/repository/npm-meta-group/`;
      const npm = new NpmClient(reg, {
        lines: [`//127.0.0.1:${new URL(s.url).port}/repository/npm-meta-group/:_auth=${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`],
      });
      try {
        const app = npm.project({ name: 'consumer', version: '1.0.0', private: true, dependencies: { 'pkg-cli': '^1.0.0' } });
        const r = await npm.run(['install', '--no-audit'], { cwd: app });
        assert.equal(r.code, 0, r.all);
        const lock = JSON.parse((await import('node:fs')).readFileSync(`${app}/package-lock.json`, 'utf8'));
        assert.equal(lock.packages['node_modules/pkg-cli'].version, '1.1.0');
      } finally {
        npm.cleanup();
      }
    });
  });
}
