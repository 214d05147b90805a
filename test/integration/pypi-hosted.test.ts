/**
 * PyPI hosted repositories with the real twine and pip (empty cache, the machine's global pip
 * configuration off): uploads of wheels and sdists, the write policy (`--skip-existing`), digest,
 * wheel and name checks, the simple API in HTML and JSON (PEP 503/691/592/658/700/714), the JSON
 * API, yanking, and deletes keeping every page true. Runs on SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ADMIN_PASSWORD, DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { buildSdist, buildWheel } from '../helpers/pypi-dist.js';
import { filesUnder } from '../helpers/files.js';
import { NEW_PIP, pipInstall, run, twineUpload } from '../helpers/pip-cli.js';

const API = '/service/rest/v1';
const PIP_ACCEPT = 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** A twine-shaped upload form, for the requests twine would never send. */
function form(fields: Record<string, string>, file: { name: string; bytes: Buffer }): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  f.append('content', new Blob([new Uint8Array(file.bytes)]), file.name);
  return f;
}

for (const db of DATABASES) {
  describe(`pypi hosted (${db})`, () => {
    let s: TestServer;
    let work: string;
    let repoUrl: string;
    let index: string;
    const wheels: Record<string, string> = {};
    let sdist = '';

    /** Files in the data directory apart from the SQLite database. */
    const storedFiles = () => filesUnder(s.dataDir).filter((f) => !/\.(sqlite|db)(-wal|-shm|-journal)?$/.test(f) && !f.includes('admin.password'));
    const assetCount = async () => (await s.app.content.findAssets((await s.app.repositories.require('py-hosted')).id, { pathPrefix: '' })).length;

    before(async () => {
      work = mkdtempSync(path.join(tmpdir(), 'pypi-hosted-'));
      s = await startServer({ db });
      const r = await s.fetch(`${API}/repositories/pypi/hosted`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'py-hosted', online: true, storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW_ONCE' } }),
      });
      assert.equal(r.status, 201, await r.text());
      repoUrl = `${s.url}/repository/py-hosted/`;
      index = `${s.url.replace('://', `://admin:${ADMIN_PASSWORD}@`)}/repository/py-hosted/simple/`;
      wheels.demo1 = buildWheel(path.join(work, 'd1'), { name: 'Demo.Pkg', version: '1.0', requiresPython: '>=3.7', requiresDist: ['dep-lib>=0.5'] });
      wheels.demo2 = buildWheel(path.join(work, 'd2'), { name: 'Demo.Pkg', version: '2.0', requiresPython: '>=3.7', requiresDist: ['dep-lib>=0.5'] });
      wheels.dep = buildWheel(path.join(work, 'dep'), { name: 'dep_lib', version: '0.5' });
      sdist = buildSdist(work, { name: 'Demo.Pkg', version: '1.0', requiresPython: '>=3.7' });
    });
    after(async () => {
      await s?.stop();
      rmSync(work, { recursive: true, force: true });
    });

    it('twine uploads wheels and an sdist; a duplicate is refused with "File already exists", --skip-existing skips it', async () => {
      const up = await twineUpload(repoUrl, 'admin', ADMIN_PASSWORD, [wheels.demo1, wheels.demo2, wheels.dep, sdist]);
      assert.equal(up.code, 0, up.all);
      const again = await twineUpload(repoUrl, 'admin', ADMIN_PASSWORD, [wheels.demo1]);
      assert.notEqual(again.code, 0, again.all);
      assert.match(again.all, /File already exists/);
      const skip = await twineUpload(repoUrl, 'admin', ADMIN_PASSWORD, [wheels.demo1], ['--skip-existing']);
      assert.equal(skip.code, 0, skip.all);
      assert.match(skip.all, /Skipping/);
      const denied = await twineUpload(repoUrl, 'admin', 'wrong-password', [wheels.dep], ['--skip-existing']);
      assert.notEqual(denied.code, 0, denied.all);
      assert.match(denied.all, /401|403|Invalid or non-existent authentication/);
    });

    it('serves the project page as PEP 691 JSON and PEP 503 HTML by negotiation, with Vary, ETag/304 and every PEP 592/658/700/714 field', async () => {
      const w1 = readFileSync(wheels.demo1);
      const j = await s.fetch('/repository/py-hosted/simple/demo-pkg/', { headers: { Accept: PIP_ACCEPT } });
      assert.equal(j.status, 200);
      assert.equal(j.headers.get('content-type'), 'application/vnd.pypi.simple.v1+json');
      assert.equal(j.headers.get('vary'), 'Accept');
      const doc = await j.json();
      assert.equal(doc.meta['api-version'], '1.1');
      assert.equal(doc.name, 'demo-pkg');
      assert.deepEqual(doc.versions, ['1.0', '2.0']);
      const f1 = doc.files.find((f: { filename: string }) => f.filename === 'Demo.Pkg-1.0-py3-none-any.whl' || f.filename === 'Demo_Pkg-1.0-py3-none-any.whl');
      assert.ok(f1, JSON.stringify(doc.files.map((f: { filename: string }) => f.filename)));
      assert.equal(f1.hashes.sha256, sha256(w1));
      assert.deepEqual(Object.keys(f1.hashes), ['sha256'], 'sha256 only, as pypi.org');
      assert.equal(f1.size, w1.length);
      assert.equal(f1['requires-python'], '>=3.7');
      assert.match(f1['upload-time'], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      assert.equal(f1.yanked, false);
      assert.deepEqual(f1['core-metadata'], f1['dist-info-metadata']);
      assert.match(f1['core-metadata'].sha256, /^[0-9a-f]{64}$/);
      assert.equal(f1.url, `../../packages/demo-pkg/${encodeURIComponent(f1.filename)}`);
      const sd = doc.files.find((f: { filename: string }) => f.filename.endsWith('.tar.gz'));
      assert.ok(sd && !sd['core-metadata'], 'sdists advertise no core metadata');
      // The .metadata file is the wheel's METADATA, with the advertised hash.
      const meta = await s.fetch(`/repository/py-hosted/simple/demo-pkg/${f1.url}.metadata`.replace('/simple/demo-pkg/../../', '/'));
      assert.equal(meta.status, 200);
      const metaBytes = Buffer.from(await meta.arrayBuffer());
      assert.equal(sha256(metaBytes), f1['core-metadata'].sha256);
      assert.match(metaBytes.toString(), /^Metadata-Version: 2.1\nName: Demo.Pkg\nVersion: 1.0/);

      const h = await s.fetch('/repository/py-hosted/simple/demo-pkg/', { headers: { Accept: 'text/html' } });
      assert.equal(h.status, 200);
      assert.match(h.headers.get('content-type')!, /^text\/html/);
      const html = await h.text();
      assert.match(html, /<meta name="pypi:repository-version" content="1.1">/);
      assert.match(
        html,
        new RegExp(
          `href="../../packages/demo-pkg/[^"]+-1.0-py3-none-any.whl#sha256=${sha256(w1)}" data-requires-python="&gt;=3.7" data-core-metadata="sha256=[0-9a-f]{64}" data-dist-info-metadata="sha256=[0-9a-f]{64}"`,
        ),
      );
      assert.notEqual(h.headers.get('etag'), j.headers.get('etag'), 'each representation has its own validator');
      const again = await s.fetch('/repository/py-hosted/simple/demo-pkg/', { headers: { Accept: PIP_ACCEPT, 'If-None-Match': j.headers.get('etag')! } });
      assert.equal(again.status, 304);
      // Non-normalised names and a missing slash redirect to the canonical page.
      for (const p of ['Demo.Pkg/', 'DEMO_pkg', 'demo-pkg']) {
        const r = await s.fetch(`/repository/py-hosted/simple/${p}`);
        assert.equal(r.status, 301, p);
        assert.equal(new URL(r.headers.get('location')!, s.url).pathname, '/repository/py-hosted/simple/demo-pkg/');
      }
      for (const accept of [PIP_ACCEPT, 'text/html']) {
        const head = await s.fetch('/repository/py-hosted/simple/demo-pkg/', { method: 'HEAD', headers: { Accept: accept } });
        assert.equal(head.status, 200, accept);
        assert.ok(Number(head.headers.get('content-length')) > 100, accept);
        assert.equal((await head.arrayBuffer()).byteLength, 0);
      }
      assert.equal((await s.fetch('/repository/py-hosted/simple/nope/')).status, 404);
      assert.equal((await s.fetch('/repository/py-hosted/simple/demo-pkg/', { headers: { Accept: 'application/xml' } })).status, 406);
    });

    it('lists projects in HTML and JSON', async () => {
      const j = await (await s.fetch('/repository/py-hosted/simple/', { headers: { Accept: PIP_ACCEPT } })).json();
      assert.deepEqual(j.projects, [{ name: 'demo-pkg' }, { name: 'dep-lib' }]);
      const h = await (await s.fetch('/repository/py-hosted/simple/')).text();
      assert.match(h, /<a href="demo-pkg\/">demo-pkg<\/a>/);
    });

    it('serves the Warehouse JSON API', async () => {
      const r = await s.fetch('/repository/py-hosted/pypi/Demo_Pkg/json');
      assert.equal(r.status, 200);
      const doc = await r.json();
      assert.equal(doc.info.name, 'Demo.Pkg');
      assert.equal(doc.info.version, '2.0');
      assert.deepEqual(doc.info.requires_dist, ['dep-lib>=0.5']);
      assert.deepEqual(Object.keys(doc.releases), ['1.0', '2.0']);
      assert.equal(doc.releases['1.0'].length, 2);
      assert.match(doc.urls[0].url, /^http:\/\/127\.0\.0\.1:\d+\/repository\/py-hosted\/packages\/demo-pkg\//);
      const w2 = readFileSync(wheels.demo2);
      const u = doc.urls.find((x: { filename: string }) => x.filename.endsWith('.whl'));
      assert.deepEqual(u.digests.sha256, sha256(w2));
      assert.deepEqual(u.md5_digest, md5(w2));
      assert.equal(
        u.digests.blake2b_256,
        execFileSync('python3', ['-c', 'import hashlib,sys; print(hashlib.blake2b(open(sys.argv[1],"rb").read(), digest_size=32).hexdigest())', wheels.demo2]).toString().trim(),
      );
      const v = await (await s.fetch('/repository/py-hosted/pypi/demo-pkg/1.0/json')).json();
      assert.equal(v.info.version, '1.0');
      assert.equal(v.releases, undefined);
      assert.equal((await s.fetch('/repository/py-hosted/pypi/demo-pkg/9.9/json')).status, 404);
    });

    it('pip installs from hosted with an empty cache, through the PEP 658 metadata, resolving dependencies', async () => {
      const target = path.join(work, 'site1');
      const r = await pipInstall(index, target, ['demo-pkg']);
      assert.equal(r.code, 0, r.all);
      assert.match(r.all, /Successfully installed Demo.Pkg-2.0 dep[-_]lib-0.5/i);
      assert.ok(existsSync(path.join(target, 'demo_pkg', '__init__.py')));
      // Stowage served the files and pip read the metadata files (it did not take them from disk).
      const repo = await s.app.repositories.require('py-hosted');
      await s.app.content.flushDownloads(); // downloads are recorded in batches
      const assets = await s.app.content.findAssets(repo.id, { pathPrefix: 'packages/' });
      const served = (p: RegExp) => assets.filter((a) => p.test(a.path) && a.last_downloaded !== null).length;
      assert.ok(served(/demo-pkg\/.*-2\.0-py3-none-any\.whl$/) === 1, 'the wheel was downloaded');
      assert.ok(served(/\.whl\.metadata$/) >= 1, 'a .metadata file was fetched');
    });

    it('a recent pip (26) installs from hosted too, reading PEP 714 core-metadata', async () => {
      const fresh = buildWheel(path.join(work, 'fresh'), { name: 'fresh-pkg', version: '3.0', requiresDist: ['dep-lib'] });
      const up = await twineUpload(repoUrl, 'admin', ADMIN_PASSWORD, [fresh]);
      assert.equal(up.code, 0, up.all);
      const target = path.join(work, 'site-newpip');
      const r = await pipInstall(index, target, ['fresh-pkg'], NEW_PIP);
      assert.equal(r.code, 0, r.all);
      assert.match(r.all, /Successfully installed dep[-_]lib-0.5 fresh[-_]pkg-3.0/i);
      const repo = await s.app.repositories.require('py-hosted');
      await s.app.content.flushDownloads();
      const meta = await s.app.content.findAsset(repo.id, 'packages/fresh-pkg/fresh_pkg-3.0-py3-none-any.whl.metadata');
      assert.notEqual(meta?.last_downloaded ?? null, null, 'pip 26 fetched the .metadata');
      assert.equal((await s.fetch('/repository/py-hosted/packages/fresh-pkg/', { method: 'DELETE' })).status, 204);
    });

    it('refuses bad uploads with a 400 and stores nothing', async () => {
      const before = await assetCount();
      const blobsBefore = Number((await s.app.db('blobs').count({ n: '*' }).first())!.n);
      const filesBefore = storedFiles().length;
      const w = readFileSync(wheels.dep);
      const base = { ':action': 'file_upload', protocol_version: '1', name: 'dep_lib', version: '0.6', filetype: 'bdist_wheel', pyversion: 'py3', metadata_version: '2.1' };
      const post = (f: FormData) => s.fetch('/repository/py-hosted/', { method: 'POST', body: f });
      const name06 = 'dep_lib-0.6-py3-none-any.whl';
      const cases: Array<[string, FormData, RegExp]> = [
        ['wrong sha256', form({ ...base, sha256_digest: 'a'.repeat(64) }, { name: name06, bytes: w }), /sha256 does not match/],
        ['wrong md5', form({ ...base, md5_digest: 'b'.repeat(32) }, { name: name06, bytes: w }), /md5 does not match/],
        ['wrong blake2', form({ ...base, blake2_256_digest: 'c'.repeat(64) }, { name: name06, bytes: w }), /blake2b256 does not match/],
        ['malformed wheel', form(base, { name: name06, bytes: Buffer.from('not a zip at all') }), /Invalid wheel/],
        ['METADATA of another version', form(base, { name: name06, bytes: w }), /no dep_lib-0.6.dist-info\/METADATA|version/],
        ['name mismatch', form({ ...base, name: 'other' }, { name: name06, bytes: w }), /does not match|names project/],
        ['version mismatch', form({ ...base, version: '0.7' }, { name: name06, bytes: w }), /does not match|version/],
        ['traversal', form(base, { name: '../../dep_lib-0.6-py3-none-any.whl', bytes: w }), /Invalid file name|not a valid/],
        ['not a PEP 440 version', form({ ...base, version: 'latest!' }, { name: name06, bytes: w }), /Invalid version/],
        ['wrong action', form({ ...base, ':action': 'submit' }, { name: name06, bytes: w }), /Unsupported :action/],
      ];
      for (const [what, body, message] of cases) {
        const r = await post(body);
        assert.equal(r.status, 400, what);
        assert.match(await r.text(), message, what);
        assert.match(r.statusText, message, `${what}: twine prints the reason phrase`);
      }
      // A wheel whose METADATA names another project.
      const liar = buildWheel(path.join(work, 'liar'), { name: 'liar', version: '1.0', metadataName: 'someone-else' });
      const r = await post(form({ ...base, name: 'liar', version: '1.0' }, { name: path.basename(liar), bytes: readFileSync(liar) }));
      assert.equal(r.status, 400);
      assert.match(await r.text(), /METADATA names project 'someone-else'/);
      // Anonymous: refused before the body is read.
      const anon = await s.fetch('/repository/py-hosted/', { method: 'POST', body: form(base, { name: name06, bytes: w }), auth: null });
      assert.equal(anon.status, 401);
      assert.match(anon.headers.get('www-authenticate') ?? '', /^Basic/);
      assert.equal(await assetCount(), before);
      // Nothing staged was left in the blob store either.
      assert.equal(Number((await s.app.db('blobs').count({ n: '*' }).first())!.n), blobsBefore);
      assert.deepEqual(storedFiles().length, filesBefore);
      // `__proto__` in the yank body.
      const y = await s.fetch(`${API}/pypi/yank`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{"repository":"py-hosted","project":"demo-pkg","version":"2.0","__proto__":{"x":1}}',
      });
      assert.equal(y.status, 400);
    });

    it('yanks through the REST API: pip skips the yanked version unless pinned; un-yank restores it', async () => {
      const y = await s.fetch(`${API}/pypi/yank`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ repository: 'py-hosted', project: 'Demo_Pkg', version: '2.0', reason: 'broken' }),
      });
      assert.equal(y.status, 200, await y.text());
      const doc = await (await s.fetch('/repository/py-hosted/simple/demo-pkg/', { headers: { Accept: PIP_ACCEPT } })).json();
      assert.deepEqual(
        doc.files.map((f: { filename: string; yanked: unknown }) => [f.filename.includes('2.0'), f.yanked]).sort(),
        [
          [false, false],
          [false, false],
          [true, 'broken'],
        ].sort(),
      );
      const html = await (await s.fetch('/repository/py-hosted/simple/demo-pkg/')).text();
      assert.match(html, /data-yanked="broken"/);
      const t1 = path.join(work, 'site-yank');
      const r1 = await pipInstall(index, t1, ['demo-pkg']);
      assert.equal(r1.code, 0, r1.all);
      assert.match(r1.all, /Successfully installed Demo.Pkg-1.0/i);
      const t2 = path.join(work, 'site-pinned');
      const r2 = await pipInstall(index, t2, ['demo-pkg==2.0']);
      assert.equal(r2.code, 0, r2.all);
      assert.match(r2.all, /Successfully installed Demo.Pkg-2.0/i);
      assert.match(r2.all, /yanked/i);
      const noPerm = await s.fetch(`${API}/pypi/yank`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ repository: 'py-hosted', project: 'demo-pkg', version: '2.0' }),
        auth: null,
      });
      assert.equal(noPerm.status, 401);
      const un = await s.fetch(`${API}/pypi/yank`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ repository: 'py-hosted', project: 'demo-pkg', version: '2.0', yanked: false }),
      });
      assert.equal(un.status, 200);
      const after = await (await s.fetch('/repository/py-hosted/simple/demo-pkg/', { headers: { Accept: PIP_ACCEPT } })).json();
      assert.ok(after.files.every((f: { yanked: unknown }) => f.yanked === false));
    });

    it('deletes keep every page true: a file through the protocol, a version through the REST API, the last file of a project', async () => {
      const repo = await s.app.repositories.require('py-hosted');
      const page = async () =>
        (await (await s.fetch('/repository/py-hosted/simple/demo-pkg/', { headers: { Accept: PIP_ACCEPT } })).json()) as { files: Array<{ filename: string }>; versions: string[] };
      const w2 = (await page()).files.find((f) => f.filename.endsWith('-2.0-py3-none-any.whl'))!.filename;
      const del = await s.fetch(`/repository/py-hosted/packages/demo-pkg/${w2}`, { method: 'DELETE' });
      assert.equal(del.status, 204);
      const p1 = await page();
      assert.deepEqual(p1.versions, ['1.0']);
      assert.ok(!p1.files.some((f) => f.filename === w2));
      assert.equal((await s.fetch(`/repository/py-hosted/packages/demo-pkg/${w2}.metadata`)).status, 404, 'its .metadata went with it');
      // The REST API deletes the 1.0 component (wheel, sdist and .metadata): the page and the list lose it.
      const comps = await s.fetch(`${API}/search?repository=py-hosted&name=demo-pkg`);
      const items = (await comps.json()).items as Array<{ id: string; version: string }>;
      const v1 = items.find((c) => c.version === '1.0')!;
      assert.ok(v1, JSON.stringify(items));
      assert.equal((await s.fetch(`${API}/components/${v1.id}`, { method: 'DELETE' })).status, 204);
      assert.equal((await s.fetch('/repository/py-hosted/simple/demo-pkg/')).status, 404);
      const list = await (await s.fetch('/repository/py-hosted/simple/', { headers: { Accept: PIP_ACCEPT } })).json();
      assert.deepEqual(list.projects, [{ name: 'dep-lib' }]);
      assert.equal((await s.app.content.findAssets(repo.id, { pathPrefix: 'packages/demo-pkg/' })).length, 0);
      // Uploading again after a delete is allowed (the file is gone), and the page comes back.
      const up = await twineUpload(repoUrl, 'admin', ADMIN_PASSWORD, [wheels.demo1]);
      assert.equal(up.code, 0, up.all);
      assert.deepEqual((await page()).versions, ['1.0']);
      // A whole project through the protocol: its files, its page and its place in the list go.
      assert.equal((await s.fetch('/repository/py-hosted/packages/Dep_Lib/', { method: 'DELETE' })).status, 204);
      assert.equal((await s.fetch('/repository/py-hosted/simple/dep-lib/')).status, 404);
      assert.equal((await s.app.content.findAssets(repo.id, { pathPrefix: 'packages/dep-lib/' })).length, 0);
      const list2 = await (await s.fetch('/repository/py-hosted/simple/', { headers: { Accept: PIP_ACCEPT } })).json();
      assert.deepEqual(list2.projects, [{ name: 'demo-pkg' }]);
      assert.equal((await s.fetch('/repository/py-hosted/packages/dep-lib/', { method: 'DELETE' })).status, 404);
    });
  });
}

describe('pypi test tools', () => {
  it('twine and pip are installed (the tests fail without them)', async () => {
    assert.equal((await run('twine', ['--version'])).code, 0);
    assert.equal((await run('python3', ['-m', 'pip', '--version'])).code, 0);
    assert.equal((await run('python3', [NEW_PIP, '--version'])).code, 0);
  });
});
