/**
 * REST API: components and assets (paged listings, get, delete), Nexus multipart upload, and
 * search, over HTTP as Nexus automation uses them. Runs on SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { DATABASES, basic, startServer, type TestServer } from '../helpers/stowage.js';

const API = '/service/rest/v1';

interface AssetXO {
  id: string;
  path: string;
  downloadUrl: string;
  repository: string;
  format: string;
  checksum: { sha1: string; sha256: string; md5: string };
  contentType: string;
  lastModified: string;
  lastDownloaded: string | null;
  fileSize: number;
  blobCreated: string;
  uploader: string | null;
}
interface ComponentXO {
  id: string;
  repository: string;
  format: string;
  group: string | null;
  name: string;
  version: string | null;
  assets: AssetXO[];
}
interface Page<T> {
  items: T[];
  continuationToken: string | null;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const FILES = 25;
const fileBody = (i: number) => `file number ${i}\n`;
const filePath = (i: number) => `dir${i % 3}/f${String(i).padStart(2, '0')}.txt`;

// A role that may search and browse only the `files` repository (tests filtering of results).
const FILES_ONLY = { id: 'test-files-only', privileges: ['nx-search-read', 'nx-repository-view-raw-files-browse', 'nx-repository-view-raw-files-read'] };
const LIMITED = basic('limited', 'limited-pw');

async function getJson<T>(s: TestServer, p: string, init?: RequestInit & { auth?: string | null }): Promise<T> {
  const res = await s.fetch(API + p, init);
  const text = await res.text();
  assert.equal(res.status, 200, `${p}: ${text}`);
  return JSON.parse(text) as T;
}

/** Every page of a listing, following continuationToken; asserts pages are full except the last. */
async function allPages<T>(s: TestServer, p: string, limit: number, param = 'limit'): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let token: string | null = null;
  let pages = 0;
  do {
    const sep = p.includes('?') ? '&' : '?';
    const page: Page<T> = await getJson<Page<T>>(s, `${p}${sep}${param}=${limit}${token ? `&continuationToken=${encodeURIComponent(token)}` : ''}`);
    pages++;
    if (page.continuationToken) assert.equal(page.items.length, limit, 'a page before the last is full');
    items.push(...page.items);
    token = page.continuationToken;
    assert.ok(pages < 100, 'paging does not end');
  } while (token);
  return { items, pages };
}

async function expectField(res: Response, status: number, field: string): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.equal(JSON.parse(text)[0].id, `PARAMETER ${field}`, text);
}

function upload(s: TestServer, repo: string, parts: Array<[string, string | Blob]>, auth?: string | null): Promise<Response> {
  const form = new FormData();
  for (const [k, v] of parts) form.append(k, v);
  return s.fetch(`${API}/components?repository=${repo}`, { method: 'POST', body: form, ...(auth !== undefined ? { auth } : {}) });
}

for (const db of DATABASES) {
  describe(`REST API components, assets and search (${db})`, () => {
    let s: TestServer;
    before(async () => {
      s = await startServer({ db });
      await s.repo('raw', 'hosted', { name: 'files', storage: { writePolicy: 'ALLOW' } });
      await s.repo('raw', 'hosted', { name: 'other' });
      await s.repo('raw', 'group', { name: 'both', group: { memberNames: ['files', 'other'] } });
      await s.app.security.roles.create(FILES_ONLY);
      await s.app.security.users.create({ userId: 'limited', password: 'limited-pw', roles: ['test-files-only'] });
      for (let i = 0; i < FILES; i++) {
        const res = await s.fetch(`/repository/files/${filePath(i)}`, { method: 'PUT', body: fileBody(i) });
        assert.equal(res.status, 201, await res.text());
      }
      assert.equal((await s.fetch('/repository/other/readme.md', { method: 'PUT', body: '# other\n' })).status, 201);
    });
    after(async () => {
      await s?.stop();
    });

    it('pages through components with limit and continuationToken: no duplicates, no gaps', async () => {
      for (const limit of [1, 7, 25, 100]) {
        const { items, pages } = await allPages<ComponentXO>(s, '/components?repository=files', limit);
        assert.equal(pages, Math.max(1, Math.ceil(FILES / limit)), `limit ${limit}`);
        const names = items.map((c) => c.name);
        assert.equal(new Set(names).size, names.length, 'duplicates');
        assert.deepEqual([...names].sort(), Array.from({ length: FILES }, (_, i) => filePath(i)).sort());
      }
      const alias = await allPages<ComponentXO>(s, '/components?repository=files', 10, 'pageSize');
      assert.equal(alias.pages, 3);
      assert.equal(alias.items.length, FILES);
      const dflt = await getJson<Page<ComponentXO>>(s, '/components?repository=files');
      assert.equal(dflt.items.length, FILES);
      assert.equal(dflt.continuationToken, null);
    });

    it('shows components and assets in Nexus shapes', async () => {
      const page = await getJson<Page<ComponentXO>>(s, '/components?repository=files&limit=1');
      const c = page.items[0];
      assert.equal(c.repository, 'files');
      assert.equal(c.format, 'raw');
      assert.equal(c.name, filePath(0));
      assert.equal(c.group, '/dir0');
      assert.equal(c.version, null);
      assert.equal(c.assets.length, 1);
      const a = c.assets[0];
      assert.equal(a.path, filePath(0));
      assert.equal(a.repository, 'files');
      assert.equal(a.format, 'raw');
      assert.equal(a.checksum.sha256, sha256(fileBody(0)));
      assert.equal(a.checksum.sha1, createHash('sha1').update(fileBody(0)).digest('hex'));
      assert.equal(a.checksum.md5, createHash('md5').update(fileBody(0)).digest('hex'));
      assert.equal(a.fileSize, Buffer.byteLength(fileBody(0)));
      assert.match(a.contentType, /^text\/plain/);
      assert.ok(!Number.isNaN(Date.parse(a.lastModified)));
      assert.ok(!Number.isNaN(Date.parse(a.blobCreated)));
      assert.equal(a.lastDownloaded, null);
      assert.equal(a.uploader, 'admin', 'the user who uploaded it');
      assert.equal(a.downloadUrl, `${s.url}/repository/files/${filePath(0)}`);
      assert.deepEqual(await getJson(s, `/components/${c.id}`), c);
      assert.deepEqual(await getJson(s, `/assets/${a.id}`), a);
      // Downloading records lastDownloaded (written in the background).
      assert.equal(await (await fetch(a.downloadUrl)).text(), fileBody(0));
      let downloaded = await getJson<AssetXO>(s, `/assets/${a.id}`);
      for (const deadline = Date.now() + 5000; downloaded.lastDownloaded === null && Date.now() < deadline;) {
        await new Promise((r) => setTimeout(r, 20));
        downloaded = await getJson<AssetXO>(s, `/assets/${a.id}`);
      }
      assert.ok(downloaded.lastDownloaded && !Number.isNaN(Date.parse(downloaded.lastDownloaded)));
      assert.deepEqual({ ...downloaded, lastDownloaded: null }, a);
    });

    it('pages through assets', async () => {
      const { items, pages } = await allPages<AssetXO>(s, '/assets?repository=files', 10);
      assert.equal(pages, 3);
      const paths = items.map((a) => a.path);
      assert.equal(new Set(paths).size, FILES);
      assert.deepEqual([...paths].sort(), Array.from({ length: FILES }, (_, i) => filePath(i)).sort());
    });

    it('lists a group as the union of its members, under the group name', async () => {
      const { items } = await allPages<ComponentXO>(s, '/components?repository=both', 8);
      assert.equal(items.length, FILES + 1);
      assert.ok(items.every((c) => c.repository === 'both'));
      const readme = items.find((c) => c.name === 'readme.md')!;
      assert.equal(readme.assets[0].downloadUrl, `${s.url}/repository/both/readme.md`);
      assert.deepEqual(await getJson(s, `/components/${readme.id}`), readme);
    });

    it('refuses bad paging and missing parameters, and answers 404 for unknown or garbled ids', async () => {
      await expectField(await s.fetch(`${API}/components`), 400, 'repository');
      await expectField(await s.fetch(`${API}/assets`), 400, 'repository');
      await expectField(await s.fetch(`${API}/components?repository=files&limit=0`), 400, 'limit');
      await expectField(await s.fetch(`${API}/components?repository=files&limit=ten`), 400, 'limit');
      await expectField(await s.fetch(`${API}/components?repository=files&pageSize=-1`), 400, 'pageSize');
      await expectField(await s.fetch(`${API}/assets?repository=files&continuationToken=garbage`), 400, 'continuationToken');
      assert.equal((await s.fetch(`${API}/components?repository=nope`)).status, 404);
      const big = await getJson<Page<ComponentXO>>(s, '/components?repository=files&limit=5000');
      assert.equal(big.items.length, FILES);
      const b64 = (x: string) => Buffer.from(x).toString('base64url');
      for (const id of ['abc', '!!!', '%00', b64('nope:1'), b64('files:999999'), b64('files:x'), b64('files'), b64('other:1')]) {
        assert.equal((await s.fetch(`${API}/components/${encodeURIComponent(id)}`)).status, 404, `component ${id}`);
        assert.equal((await s.fetch(`${API}/assets/${encodeURIComponent(id)}`)).status, 404, `asset ${id}`);
        assert.equal((await s.fetch(`${API}/assets/${encodeURIComponent(id)}`, { method: 'DELETE' })).status, 404, `delete asset ${id}`);
      }
    });

    it('deletes components and assets by id', async () => {
      const page = await getJson<Page<ComponentXO>>(s, '/components?repository=files&limit=2');
      const [c1, c2] = page.items;
      assert.equal((await s.fetch(`${API}/components/${c1.id}`, { method: 'DELETE', auth: null })).status, 401);
      assert.equal((await s.fetch(`${API}/components/${c1.id}`, { method: 'DELETE' })).status, 204);
      assert.equal((await s.fetch(`${API}/components/${c1.id}`)).status, 404);
      assert.equal((await s.fetch(`/repository/files/${c1.name}`)).status, 404);
      assert.equal((await s.fetch(`${API}/components/${c1.id}`, { method: 'DELETE' })).status, 404);
      const a2 = c2.assets[0];
      assert.equal((await s.fetch(`${API}/assets/${a2.id}`, { method: 'DELETE' })).status, 204);
      assert.equal((await s.fetch(`${API}/assets/${a2.id}`)).status, 404);
      assert.equal((await s.fetch(`/repository/files/${a2.path}`)).status, 404);
      // The component went with its last asset.
      assert.equal((await s.fetch(`${API}/components/${c2.id}`)).status, 404);
      const rest = await getJson<Page<ComponentXO>>(s, '/components?repository=files');
      assert.equal(rest.items.length, FILES - 2);
    });

    it('uploads raw files with a Nexus multipart form', async () => {
      const res = await upload(s, 'files', [
        ['raw.directory', '/uploads/v1/'],
        ['raw.asset1', new Blob(['first upload\n'])],
        ['raw.asset1.filename', 'one.txt'],
        ['raw.asset2', new Blob([Buffer.alloc(300_000, 7)])],
        ['raw.asset2.filename', 'sub/two.bin'],
      ]);
      assert.equal(res.status, 204, await res.text());
      assert.equal(await (await s.fetch('/repository/files/uploads/v1/one.txt')).text(), 'first upload\n');
      const two = Buffer.from(await (await s.fetch('/repository/files/uploads/v1/sub/two.bin')).arrayBuffer());
      assert.deepEqual(two, Buffer.alloc(300_000, 7));
      const found = await getJson<Page<ComponentXO>>(s, '/search?repository=files&name=uploads/v1/one.txt');
      assert.equal(found.items.length, 1);
      assert.equal(found.items[0].group, '/uploads/v1');
      assert.match(found.items[0].assets[0].contentType, /^text\/plain/);
      // Filename fields may come before the files; no directory means the root.
      const res2 = await upload(s, 'files', [
        ['raw.asset1.filename', 'root.txt'],
        ['raw.asset1', new Blob(['at the root'])],
      ]);
      assert.equal(res2.status, 204, await res2.text());
      assert.equal(await (await s.fetch('/repository/files/root.txt')).text(), 'at the root');
      // Through a group with a writable member.
      await s.repo('raw', 'group', { name: 'writable', group: { memberNames: ['files'], writableMember: 'files' } });
      const res3 = await upload(s, 'writable', [
        ['raw.directory', 'via-group'],
        ['raw.asset1', new Blob(['g'])],
        ['raw.asset1.filename', 'g.txt'],
      ]);
      assert.equal(res3.status, 204, await res3.text());
      assert.equal(await (await s.fetch('/repository/files/via-group/g.txt')).text(), 'g');
    });

    it('refuses invalid uploads with 400 and stores nothing', async () => {
      const before = (await allPages<AssetXO>(s, '/assets?repository=files', 1000)).items.length;
      const good: Array<[string, string | Blob]> = [
        ['raw.asset2', new Blob(['ok'])],
        ['raw.asset2.filename', 'bad-case-ok.txt'],
      ];
      await expectField(await upload(s, 'files', [['raw.directory', 'x'], ['raw.asset1', new Blob(['a'])], ...good]), 400, 'raw.asset1.filename');
      await expectField(
        await upload(s, 'files', [['raw.directory', '../escape'], ['raw.asset1', new Blob(['a'])], ['raw.asset1.filename', 'a.txt'], ...good]),
        400,
        'raw.directory',
      );
      await expectField(
        await upload(s, 'files', [
          ['raw.directory', 'x/./y'],
          ['raw.asset1', new Blob(['a'])],
          ['raw.asset1.filename', 'a.txt'],
        ]),
        400,
        'raw.directory',
      );
      await expectField(await upload(s, 'files', [['raw.asset1', new Blob(['a'])], ['raw.asset1.filename', '../../etc/passwd'], ...good]), 400, 'raw.asset1.filename');
      await expectField(
        await upload(s, 'files', [
          ['raw.asset1', new Blob(['a'])],
          ['raw.asset1.filename', '/abs.txt'],
        ]),
        400,
        'raw.asset1.filename',
      );
      await expectField(
        await upload(s, 'files', [
          ['raw.asset1', new Blob(['a'])],
          ['raw.asset1.filename', 'dir\\..\\a.txt'],
        ]),
        400,
        'raw.asset1.filename',
      );
      await expectField(
        await upload(s, 'files', [
          ['raw.asset1', new Blob(['a'])],
          ['raw.asset1.filename', 'dir/'],
        ]),
        400,
        'raw.asset1.filename',
      );
      await expectField(
        await upload(s, 'files', [
          ['raw.asset1', new Blob(['a'])],
          ['raw.asset1.filename', 'same.txt'],
          ['raw.asset2', new Blob(['b'])],
          ['raw.asset2.filename', 'same.txt'],
        ]),
        400,
        'raw.asset2.filename',
      );
      await expectField(await upload(s, 'files', [['raw.directory', 'only-fields']]), 400, 'raw.asset1');
      await expectField(await upload(s, 'files', [['raw.asset3.filename', 'lonely.txt'], ...good]), 400, 'raw.asset3');
      await expectField(
        await upload(s, 'files', [
          ['file', new Blob(['a'])],
          ['raw.asset1.filename', 'a.txt'],
        ]),
        400,
        'file',
      );
      await expectField(
        await upload(s, 'files', [
          ['npm.asset1', new Blob(['a'])],
          ['npm.asset1.filename', 'a.txt'],
        ]),
        400,
        'npm.asset1',
      );
      const notForm = await s.fetch(`${API}/components?repository=files`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
      assert.equal(notForm.status, 415);
      assert.equal((await upload(s, 'nope', good)).status, 404);
      await expectField(await s.fetch(`${API}/components`, { method: 'POST', body: new FormData() }), 400, 'repository');
      // Write policy: `other` is ALLOW_ONCE and has readme.md; nothing of the form is stored.
      const once = await upload(s, 'other', [
        ['raw.asset1', new Blob(['new'])],
        ['raw.asset1.filename', 'new.md'],
        ['raw.asset2', new Blob(['over'])],
        ['raw.asset2.filename', 'readme.md'],
      ]);
      assert.equal(once.status, 400);
      assert.equal((await s.fetch('/repository/other/new.md')).status, 404);
      assert.equal(await (await s.fetch('/repository/other/readme.md')).text(), '# other\n');
      // Groups without a writable member and anonymous callers are refused.
      assert.equal((await upload(s, 'both', good)).status, 405);
      assert.equal((await upload(s, 'files', good, null)).status, 401);
      assert.equal((await upload(s, 'files', good, LIMITED)).status, 403);
      const after = (await allPages<AssetXO>(s, '/assets?repository=files', 1000)).items.length;
      assert.equal(after, before, 'a refused upload stored something');
      assert.equal((await s.fetch('/repository/files/bad-case-ok.txt')).status, 404);
    });

    it('searches by name (exact and wildcard), keyword, group and digest', async () => {
      const byName = await getJson<Page<ComponentXO>>(s, `/search?name=${filePath(5)}`);
      assert.deepEqual(
        byName.items.map((c) => c.name),
        [filePath(5)],
      );
      const wildcard = await getJson<Page<ComponentXO>>(s, '/search?repository=files&name=dir1/*');
      assert.ok(wildcard.items.length >= 7 && wildcard.items.every((c) => c.name.startsWith('dir1/')), JSON.stringify(wildcard.items.map((c) => c.name)));
      const keyword = await getJson<Page<ComponentXO>>(s, '/search?q=readme');
      assert.deepEqual(
        keyword.items.map((c) => `${c.repository}:${c.name}`),
        ['other:readme.md'],
      );
      const group = await getJson<Page<ComponentXO>>(s, '/search?group=/dir2&repository=files');
      assert.ok(group.items.length > 0 && group.items.every((c) => c.group === '/dir2'));
      const digest = await getJson<Page<ComponentXO>>(s, `/search?sha256=${sha256(fileBody(7))}`);
      assert.deepEqual(
        digest.items.map((c) => c.name),
        [filePath(7)],
      );
      const assets = await getJson<Page<AssetXO>>(s, `/search/assets?sha256=${sha256(fileBody(7))}`);
      assert.deepEqual(
        assets.items.map((a) => a.path),
        [filePath(7)],
      );
      const assetsByName = await getJson<Page<AssetXO>>(s, `/search/assets?q=f1&repository=files&format=raw`);
      assert.ok(assetsByName.items.length > 0 && assetsByName.items.every((a) => /f1/.test(a.path)));
      assert.equal((await getJson<Page<AssetXO>>(s, '/search/assets?format=docker')).items.length, 0);
      const paged = await allPages<ComponentXO>(s, '/search?repository=files&name=dir0/*', 2);
      assert.equal(new Set(paged.items.map((c) => c.id)).size, paged.items.length);
      assert.ok(paged.items.length >= 8);
    });

    it('redirects /search/assets/download to the first match, 404 when none', async () => {
      const res = await s.fetch(`${API}/search/assets/download?sha256=${sha256(fileBody(9))}`);
      assert.equal(res.status, 302);
      assert.equal(res.headers.get('location'), `${s.url}/repository/files/${filePath(9)}`);
      assert.equal((await s.fetch(`${API}/search/assets/download?name=nothing-like-this`)).status, 404);
      const sorted = await s.fetch(`${API}/search/assets/download?repository=files&name=dir0/*&sort=version`);
      assert.equal(sorted.status, 302);
    });

    it('limits search results to what the caller may browse', async () => {
      const mine = await getJson<Page<ComponentXO>>(s, '/search?q=readme', { auth: LIMITED });
      assert.equal(mine.items.length, 0, 'other is not browsable for this user');
      const files = await getJson<Page<ComponentXO>>(s, `/search?name=${filePath(5)}`, { auth: LIMITED });
      assert.equal(files.items.length, 1);
      assert.equal((await getJson<Page<AssetXO>>(s, '/search/assets?repository=other', { auth: LIMITED })).items.length, 0);
      assert.equal((await s.fetch(`${API}/components?repository=other`, { auth: LIMITED })).status, 403);
      assert.equal((await s.fetch(`${API}/search/assets/download?repository=other&name=readme.md`, { auth: LIMITED })).status, 404);
      // Admin endpoints are forbidden (403) for an authenticated user without the privilege.
      assert.equal((await s.fetch(`${API}/blobstores`, { auth: LIMITED })).status, 403);
      assert.equal((await s.fetch(`${API}/repositories/raw/hosted/files`, { auth: LIMITED })).status, 403);
      const listed = await getJson<Array<{ name: string }>>(s, '/repositories', { auth: LIMITED });
      assert.deepEqual(
        listed.map((r) => r.name),
        ['files'],
      );
    });

    it('lets anonymous callers browse and search with the default anonymous role, but not delete', async () => {
      const anon = await getJson<Page<ComponentXO>>(s, '/search?q=readme', { auth: null });
      assert.equal(anon.items.length, 1);
      const page = await getJson<Page<AssetXO>>(s, '/assets?repository=other', { auth: null });
      assert.equal((await s.fetch(`${API}/assets/${page.items[0].id}`, { method: 'DELETE', auth: null })).status, 401);
      await s.app.security.setAnonymous(false);
      try {
        assert.equal((await s.fetch(`${API}/search?q=readme`, { auth: null })).status, 401);
        assert.equal((await s.fetch(`${API}/components?repository=files`, { auth: null })).status, 401);
      } finally {
        await s.app.security.setAnonymous(true);
      }
    });
  });
}
