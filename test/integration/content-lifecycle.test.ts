/**
 * The core's content lifecycle: the unit of work (retry on conflict, skip, nothing left behind
 * when the commit fails), the maintenance hook (an npm version deleted through the REST API
 * leaves the packument, as the npm CLI shows), and the group walk (a broken proxy member never
 * hides what a hosted member has). Runs on SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { DATABASES, basic, startServer, type TestServer } from '../helpers/stowage.js';
import { NpmClient } from '../helpers/npm-cli.js';
import { publish } from '../helpers/npm-gen.js';
import type { Repository } from '../../src/repository/repository.js';
import { changeProperties } from '../../src/repository/unit-of-work.js';

const API = '/service/rest/v1';

interface SearchItem {
  id: string;
  version: string;
  assets: Array<{ id: string; path: string }>;
}

/** Every storage key under `content/` in the repository's blob store. */
async function storedKeys(s: TestServer, repo: Repository): Promise<string[]> {
  const driver = await s.app.blobs.stores.driver(repo.blobStoreId);
  const keys: string[] = [];
  for await (const e of driver.list('content/')) keys.push(e.key);
  return keys.sort();
}

/**
 * A broken upstream registry: every request answered with 500, or (`html`) with a 200 error page
 * (what a misconfigured remote or a captive portal sends).
 */
async function failingUpstream(mode: '500' | 'html'): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits++;
    req.resume();
    if (mode === 'html') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<html><body>Service unavailable</body></html>');
      return;
    }
    res.writeHead(500, { 'Content-Type': 'text/plain' });
    res.end('upstream is broken');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    hits: () => hits,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

for (const db of DATABASES) {
  describe(`content lifecycle (${db})`, () => {
    let s: TestServer;
    let upstream: Awaited<ReturnType<typeof failingUpstream>>;
    let garbage: Awaited<ReturnType<typeof failingUpstream>>;
    const warnings: string[] = [];

    before(async () => {
      s = await startServer({ db });
      // Records what the group walk logs (the server's own logger, wrapped, still logs).
      const warn = s.app.log.warn.bind(s.app.log);
      s.app.log.warn = (msg: string, ...rest: unknown[]) => {
        warnings.push([msg, ...rest.map(String)].join(' '));
        warn(msg, ...rest);
      };
      upstream = await failingUpstream('500');
      garbage = await failingUpstream('html');
      await s.repo('npm', 'hosted', { name: 'npm-hosted', storage: { writePolicy: 'ALLOW_ONCE' } });
      await s.repo('npm', 'proxy', { name: 'npm-broken', proxy: { remoteUrl: upstream.url, contentMaxAge: 1440, metadataMaxAge: 1440 } });
      await s.repo('npm', 'proxy', { name: 'npm-down', proxy: { remoteUrl: 'http://127.0.0.1:9/', contentMaxAge: 1440, metadataMaxAge: 1440 } });
      await s.repo('npm', 'proxy', { name: 'npm-garbage', proxy: { remoteUrl: garbage.url, contentMaxAge: 1440, metadataMaxAge: 1440 } });
      // The broken members come first: they are asked before the hosted member.
      await s.repo('npm', 'group', { name: 'npm-all', group: { memberNames: ['npm-broken', 'npm-down', 'npm-garbage', 'npm-hosted'] } });
      await s.repo('raw', 'hosted', { name: 'files', storage: { writePolicy: 'ALLOW' } });
    });
    after(async () => {
      await s?.stop();
      await upstream?.close();
      await garbage?.close();
    });

    const registry = () => `${s.url}/repository/npm-hosted/`;

    async function component(name: string, version: string): Promise<SearchItem> {
      const r = await s.fetch(`${API}/search?repository=npm-hosted&name=${encodeURIComponent(name)}&version=${encodeURIComponent(version)}`);
      assert.equal(r.status, 200);
      const items = (await r.json()).items as SearchItem[];
      assert.equal(items.length, 1, `${name}@${version} is a component`);
      return items[0];
    }

    async function view(npm: NpmClient, name: string): Promise<{ versions: string[]; 'dist-tags': Record<string, string> }> {
      const r = await npm.run(['view', name, 'versions', 'dist-tags', '--json']);
      assert.equal(r.code, 0, r.all);
      const v = JSON.parse(r.stdout) as { versions: string | string[]; 'dist-tags': Record<string, string> };
      // npm prints a single version as a string.
      return { versions: ([] as string[]).concat(v.versions), 'dist-tags': v['dist-tags'] };
    }

    async function publishVersions(name: string): Promise<void> {
      for (const [version, tag] of [
        ['1.0.0', 'latest'],
        ['1.1.0', 'latest'],
        ['2.0.0-beta.1', 'next'],
      ]) {
        const r = await publish(registry(), { name, version }, basic('admin', 'admin-test-pw'), { tag });
        assert.equal(r.status, 200, await r.text());
      }
    }

    it('a REST delete of an npm version (component) removes it from the packument; latest moves to the highest release', async () => {
      await publishVersions('rest-comp');
      const npm = new NpmClient(registry());
      try {
        assert.deepEqual((await view(npm, 'rest-comp'))['dist-tags'], { latest: '1.1.0', next: '2.0.0-beta.1' });
        const c = await component('rest-comp', '1.1.0');
        const del = await s.fetch(`${API}/components/${c.id}`, { method: 'DELETE' });
        assert.equal(del.status, 204, await del.text());
        const v = await view(npm, 'rest-comp');
        assert.deepEqual(v.versions, ['1.0.0', '2.0.0-beta.1']);
        // Never to the prerelease while a release is left.
        assert.deepEqual(v['dist-tags'], { latest: '1.0.0', next: '2.0.0-beta.1' });
        const tags = await s.fetch('/repository/npm-hosted/-/package/rest-comp/dist-tags');
        assert.deepEqual(await tags.json(), { latest: '1.0.0', next: '2.0.0-beta.1' });
        // Deleting the prerelease too removes the tag that named it.
        const beta = await component('rest-comp', '2.0.0-beta.1');
        assert.equal((await s.fetch(`${API}/components/${beta.id}`, { method: 'DELETE' })).status, 204);
        assert.deepEqual(await view(npm, 'rest-comp'), { versions: ['1.0.0'], 'dist-tags': { latest: '1.0.0' } });
      } finally {
        npm.cleanup();
      }
    });

    it('a REST delete of the tarball asset removes the version too; the last one removes the package', async () => {
      await publishVersions('rest-asset');
      const npm = new NpmClient(registry());
      try {
        const c = await component('rest-asset', '1.1.0');
        assert.equal(c.assets.length, 1);
        const del = await s.fetch(`${API}/assets/${c.assets[0].id}`, { method: 'DELETE' });
        assert.equal(del.status, 204, await del.text());
        const v = await view(npm, 'rest-asset');
        assert.deepEqual(v.versions, ['1.0.0', '2.0.0-beta.1']);
        assert.equal(v['dist-tags'].latest, '1.0.0');
        for (const version of ['1.0.0', '2.0.0-beta.1']) {
          const x = await component('rest-asset', version);
          assert.equal((await s.fetch(`${API}/assets/${x.assets[0].id}`, { method: 'DELETE' })).status, 204);
        }
        assert.equal((await s.fetch('/repository/npm-hosted/rest-asset')).status, 404);
        const gone = await npm.run(['view', 'rest-asset']);
        assert.notEqual(gone.code, 0, gone.all);
        assert.match(gone.all, /E404/);
      } finally {
        npm.cleanup();
      }
    });

    it('a broken proxy member (500, unreachable, an error page) does not hide the hosted member’s package in a group; the failure is logged', async () => {
      const r = await publish(registry(), { name: 'grouped-lib', version: '1.2.3' }, basic('admin', 'admin-test-pw'));
      assert.equal(r.status, 200, await r.text());
      warnings.length = 0;
      const before = upstream.hits();
      const npm = new NpmClient(`${s.url}/repository/npm-all/`);
      try {
        const app = npm.project({ name: 'app', version: '1.0.0', private: true, dependencies: { 'grouped-lib': '^1.0.0' } });
        const install = await npm.run(['install', '--no-audit'], { cwd: app });
        assert.equal(install.code, 0, install.all);
        const v = await npm.run(['view', 'grouped-lib', 'version']);
        assert.equal(v.code, 0, v.all);
        assert.equal(v.stdout.trim(), '1.2.3');
      } finally {
        npm.cleanup();
      }
      assert.ok(upstream.hits() > before, 'the broken member was asked');
      assert.ok(
        warnings.some((w) => /npm-all.*npm-broken/.test(w)),
        `a warning names the broken member: ${warnings.join('\n')}`,
      );
      assert.ok(
        warnings.some((w) => /npm-all.*npm-down/.test(w)),
        `a warning names the unreachable member: ${warnings.join('\n')}`,
      );
      assert.ok(
        warnings.some((w) => /npm-all.*npm-garbage/.test(w)),
        `a warning names the member serving an error page: ${warnings.join('\n')}`,
      );
      // A miss everywhere stays a miss.
      const missing = await s.fetch('/repository/npm-all/nobody-has-this/-/nobody-has-this-1.0.0.tgz');
      assert.ok(missing.status === 404, `${missing.status} ${await missing.text()}`);
    });

    it('write policy in one place: DENY and overwrite without edit refused for raw PUT, multipart upload and npm publish; nothing stored', async () => {
      await s.repo('raw', 'hosted', { name: 'open', storage: { writePolicy: 'ALLOW' } });
      await s.repo('raw', 'hosted', { name: 'closed', storage: { writePolicy: 'DENY' } });
      await s.repo('npm', 'hosted', { name: 'npm-open', storage: { writePolicy: 'ALLOW' } });
      await s.app.security.roles.create({
        id: 'adder',
        privileges: ['nx-component-upload', 'nx-repository-view-*-*-add', 'nx-repository-view-*-*-read', 'nx-repository-view-*-*-browse'],
      });
      await s.app.security.users.create({ userId: 'adder', password: 'adder-pw', roles: ['adder'] });
      const ADDER = basic('adder', 'adder-pw');
      const form = (files: Record<string, string>) => {
        const f = new FormData();
        let i = 0;
        for (const [name, body] of Object.entries(files)) {
          i++;
          f.append(`raw.asset${i}`, new Blob([body]));
          f.append(`raw.asset${i}.filename`, name);
        }
        return f;
      };
      const upload = (repo: string, files: Record<string, string>, auth?: string) => s.fetch(`${API}/components?repository=${repo}`, { method: 'POST', body: form(files), auth });

      // DENY: raw PUT, upload and DELETE refused, nothing stored.
      const put = await s.fetch('/repository/closed/a.txt', { method: 'PUT', body: 'a' });
      assert.equal(put.status, 400);
      assert.match(await put.text(), /read only/);
      const denied = await upload('closed', { 'b.txt': 'b' });
      assert.equal(denied.status, 400);
      assert.match(await denied.text(), /read only/);
      assert.equal((await s.fetch(`${API}/assets?repository=closed`).then((r) => r.json())).items.length, 0);

      // ALLOW: a new file needs add; replacing one needs edit too (raw PUT, and the whole upload).
      assert.equal((await s.fetch('/repository/open/x.txt', { method: 'PUT', body: 'first', auth: ADDER })).status, 201);
      assert.equal((await s.fetch('/repository/open/x.txt', { method: 'PUT', body: 'second', auth: ADDER })).status, 403);
      const mixed = await upload('open', { 'new.txt': 'new', 'x.txt': 'third' }, ADDER);
      assert.equal(mixed.status, 403, await mixed.text());
      assert.equal((await s.fetch('/repository/open/new.txt')).status, 404, 'nothing of a refused upload is stored');
      assert.equal(await (await s.fetch('/repository/open/x.txt')).text(), 'first');
      assert.equal((await upload('open', { 'x.txt': 'by admin' })).status, 204);
      assert.equal(await (await s.fetch('/repository/open/x.txt')).text(), 'by admin');

      // npm under ALLOW: republishing a version is an overwrite (edit), a new version is not.
      const npmReg = `${s.url}/repository/npm-open/`;
      assert.equal((await publish(npmReg, { name: 'over', version: '1.0.0' }, ADDER)).status, 200);
      const again = await publish(npmReg, { name: 'over', version: '1.0.0', files: { 'extra.js': '1' } }, ADDER);
      assert.equal(again.status, 403, await again.text());
      assert.equal((await publish(npmReg, { name: 'over', version: '1.0.1' }, ADDER)).status, 200);
      assert.equal((await publish(npmReg, { name: 'over', version: '1.0.0', files: { 'extra.js': '1' } }, basic('admin', 'admin-test-pw'))).status, 200);
    });

    it('unit of work: a commit that fails leaves no staged blob behind (none visible, no orphan for GC)', async () => {
      const repo = (await s.app.repositories.find('files'))!;
      const keysBefore = await storedKeys(s, repo);
      const blobsBefore = await s.app.blobs.usage(repo.blobStoreId);
      await assert.rejects(
        repo.change({ source: 'client' }, async (c) => {
          const staged = await c.stageBytes('bytes of a change that fails\n');
          c.put('fails/a.txt', staged, { contentType: 'text/plain' });
          // A blob that does not exist: the transaction fails after the staged blob was attached.
          c.put('fails/b.txt', { blobId: 987654321 }, { contentType: 'text/plain' });
        }),
        /no longer stored/,
      );
      assert.equal(await s.app.content.findAsset(repo.id, 'fails/a.txt'), undefined);
      assert.deepEqual(await s.app.blobs.usage(repo.blobStoreId), blobsBefore);
      assert.deepEqual(await storedKeys(s, repo), keysBefore);
      assert.equal((await s.fetch('/repository/files/fails/a.txt')).status, 404);
      const gc = await s.app.blobs.gc(0, repo.blobStoreId);
      assert.equal(gc.orphansDeleted, 0, 'nothing was left for GC to find');
    });

    it('unit of work: a change whose expectation fails is computed again and commits once', async () => {
      const repo = (await s.app.repositories.find('files'))!;
      const put = (path: string, text: string) => repo.put(path, Readable.from([Buffer.from(text)]), { contentType: 'text/plain' });
      await put('counter.txt', '0');
      let attempts = 0;
      const { value } = await repo.change({ source: 'client', key: 'counter' }, async (c) => {
        attempts++;
        const cur = await repo.local('counter.txt');
        const n = Number((await Readable.from(await cur!.open()).toArray()).join(''));
        // Another writer commits between the read and this change's commit, on the first try only.
        if (attempts === 1) await put('counter.txt', String(n + 100));
        c.expectAsset('counter.txt', cur!.blob.id);
        c.put('counter.txt', await c.stageBytes(String(n + 1)), { contentType: 'text/plain' });
        return n + 1;
      });
      assert.equal(attempts, 2);
      assert.equal(value, 101);
      const res = await s.fetch('/repository/files/counter.txt');
      assert.equal(await res.text(), '101');
      // The first attempt's staged bytes were discarded: every stored key is a blob row.
      const rows = await s.app.db('blobs').where({ store_id: repo.blobStoreId }).select('storage_key');
      assert.deepEqual(await storedKeys(s, repo), rows.map((r) => String(r.storage_key)).sort());
    });

    it('unit of work: onConflict skip gives up quietly; a verify check reads inside the transaction', async () => {
      const repo = (await s.app.repositories.find('files'))!;
      await repo.put('keep.txt', Readable.from([Buffer.from('keep')]), { contentType: 'text/plain' });
      let attempts = 0;
      const out = await repo.change({ source: 'gc', onConflict: 'skip' }, (c) => {
        attempts++;
        c.verify(async (read) => (await read.asset('keep.txt')) === undefined);
        c.deleteAsset('keep.txt');
      });
      assert.equal(out.skipped, true);
      assert.equal(attempts, 1);
      assert.equal((await s.fetch('/repository/files/keep.txt')).status, 200);
      // A put skipped by ifAbsent keeps the asset, and its staged bytes are not left behind.
      await repo.change({ source: 'client' }, async (c) => {
        c.put('keep.txt', await c.stageBytes('not stored: keep.txt exists'), { contentType: 'text/plain', ifAbsent: true });
      });
      assert.equal(await (await s.fetch('/repository/files/keep.txt')).text(), 'keep');
      const rows = await s.app.db('blobs').where({ store_id: repo.blobStoreId }).select('storage_key');
      assert.deepEqual(await storedKeys(s, repo), rows.map((r) => String(r.storage_key)).sort());
      // Changes of one key run one at a time on a node: concurrent increments all land.
      await repo.put('n.txt', Readable.from([Buffer.from('0')]), { contentType: 'text/plain' });
      const inc = () =>
        repo.change({ source: 'client', key: 'n' }, async (c) => {
          const cur = (await repo.local('n.txt'))!;
          const n = Number((await Readable.from(await cur.open()).toArray()).join(''));
          c.expectAsset('n.txt', cur.blob.id);
          c.put('n.txt', await c.stageBytes(String(n + 1)), { contentType: 'text/plain' });
        });
      await Promise.all(Array.from({ length: 8 }, inc));
      assert.equal(await (await s.fetch('/repository/files/n.txt')).text(), '8');
      // Properties of no repository: one transaction, set and deleted together.
      await changeProperties(s.app, (c) => {
        c.set('test.scope', 'a', '1');
        c.set('test.scope', 'b', '2');
      });
      await changeProperties(s.app, (c) => {
        c.delete('test.scope', 'a');
        c.set('test.scope', 'b', '3');
      });
      assert.deepEqual(await s.app.content.listProperties('test.scope'), [{ key: 'b', value: '3' }]);
    });

    it('unit of work: of concurrent changes that each expect a tag absent and set it, exactly one wins (a lease)', async () => {
      const repo = (await s.app.repositories.find('files'))!;
      // No key: the changes run at once, and all of them may see the tag absent before any commits.
      const take = (who: string) =>
        repo.change({ source: 'maintenance' }, async (c) => {
          const cur = await s.app.content.tagTarget(repo.id, 'test-lease', 'holder');
          c.expectTag('test-lease', 'holder', cur);
          if (cur !== null) return false;
          c.setTag('test-lease', 'holder', who);
          return true;
        });
      const who = Array.from({ length: 8 }, (_, i) => `node${i}`);
      const won = (await Promise.all(who.map(take))).map((o) => o.value);
      assert.equal(won.filter(Boolean).length, 1, `winners: ${who.filter((_, i) => won[i]).join(', ')}`);
      assert.equal(await s.app.content.tagTarget(repo.id, 'test-lease', 'holder'), who[won.indexOf(true)]);
    });
  });
}
