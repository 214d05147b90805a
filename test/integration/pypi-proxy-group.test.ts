/**
 * PyPI proxy and group repositories with the real pip (empty cache, global configuration off):
 * a proxy of the machine's static tree of real PyPI projects served by nginx (a pypi.org
 * stand-in: HTML pages, relative links), of a tree whose links point at another host, and of a
 * Stowage hosted repository (JSON pages, PEP 658 metadata); a group merging them, taking uploads
 * into its writable member and pinning projects to hosted members against dependency confusion.
 * Every case runs on SQLite and PostgreSQL; pip itself runs on SQLite only (it costs seconds per
 * install and exercises the same HTTP requests the PostgreSQL run makes directly).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ADMIN_PASSWORD, DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { buildSdist, buildWheel } from '../helpers/pypi-dist.js';
import { pipInstall, twineUpload } from '../helpers/pip-cli.js';
import { startNginx, type Nginx } from '../helpers/nginx.js';

const TREE = '/opt/pypi';
const PIP_ACCEPT = 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01';
const SIX_METADATA_SHA256 = `import zipfile, hashlib
z = zipfile.ZipFile('${TREE}/files/six-1.17.0-py2.py3-none-any.whl')
print(hashlib.sha256(z.read('six-1.17.0.dist-info/METADATA')).hexdigest())`;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const PROXY = (remoteUrl: string, extra: Record<string, unknown> = {}) => ({
  online: true,
  storage: { blobStoreName: 'default', strictContentTypeValidation: true },
  proxy: { remoteUrl, contentMaxAge: 1440, metadataMaxAge: 1440 },
  negativeCache: { enabled: false, timeToLive: 1440 },
  httpClient: { blocked: false, autoBlock: false },
  ...extra,
});

for (const db of DATABASES) {
  describe(`pypi proxy and group (${db})`, () => {
    const withPip = db === 'sqlite';
    let s: TestServer;
    let nginx: Nginx;
    let work: string;
    let far: string;
    const index = (repo: string) => `${s.url.replace('://', `://admin:${ADMIN_PASSWORD}@`)}/repository/${repo}/simple/`;
    // The body read to its end: a proxied file is stored as it streams to the client.
    const status = async (p: string) => {
      const r = await s.fetch(p);
      await r.arrayBuffer();
      return r.status;
    };
    const assetsOf = async (repo: string, prefix = '') => s.app.content.findAssets((await s.app.repositories.require(repo)).id, { pathPrefix: prefix });

    // A proxied file's row is committed just after its last byte reaches the client: wait for `count` rows (5 s at most).
    const storedPaths = async (repo: string, prefix: string, count: number) => {
      for (let i = 0; ; i++) {
        const paths = (await assetsOf(repo, prefix)).map((a) => a.path).sort();
        if (paths.length >= count || i === 50) return paths;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    before(async () => {
      work = mkdtempSync(path.join(tmpdir(), 'pypi-proxy-'));
      far = path.join(work, 'far');
      mkdirSync(path.join(far, 'simple'), { recursive: true });
      nginx = await startNginx([TREE, far]);
      // The second tree's pages link to the first server's files by absolute URL on another host
      // name (as pypi.org's point at files.pythonhosted.org); `corp-evil` exists only there.
      const other = nginx.urls[0].replace('127.0.0.1', 'localhost');
      // six's page there also advertises PEP 658 metadata that the tree does not serve.
      const sixMetadata = execFileSync('python3', ['-c', SIX_METADATA_SHA256]).toString().trim();
      for (const p of ['six', 'corp-evil']) {
        mkdirSync(path.join(far, 'simple', p));
        const src =
          p === 'six'
            ? readFileSync(path.join(TREE, 'simple', 'six', 'index.html'), 'utf8')
            : '<html><body><a href="../../files/six-1.17.0-py2.py3-none-any.whl">corp_evil-1.0-py3-none-any.whl</a></body></html>';
        const page = src.replace(/href="\.\.\/\.\.\/files\//g, `href="${other}/files/`);
        writeFileSync(path.join(far, 'simple', p, 'index.html'), p === 'six' ? page.replace('">six-', `" data-dist-info-metadata="sha256=${sixMetadata}">six-`) : page);
      }
      writeFileSync(path.join(far, 'simple', 'index.html'), '<html><body><a href="six/">six</a><a href="corp-evil/">corp-evil</a></body></html>');
      // An sdist whose page advertises PEP 658 metadata the tree does not serve (the proxy cannot make it).
      const sdist = buildSdist(path.join(work, 'sdist'), { name: 'sdist-only', version: '1.0' });
      mkdirSync(path.join(far, 'files'));
      writeFileSync(path.join(far, 'files', path.basename(sdist)), readFileSync(sdist));
      mkdirSync(path.join(far, 'simple', 'sdist-only'));
      writeFileSync(
        path.join(far, 'simple', 'sdist-only', 'index.html'),
        `<html><body><a href="../../files/${path.basename(sdist)}#sha256=${sha256(readFileSync(sdist))}" data-dist-info-metadata="sha256=${'1'.repeat(64)}">${path.basename(sdist)}</a></body></html>`,
      );

      s = await startServer({ db });
      await s.repo('pypi', 'hosted', { name: 'py-hosted', online: true, storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW_ONCE' } });
      await s.repo('pypi', 'proxy', { name: 'py-proxy', ...PROXY(nginx.urls[0] + '/') });
      await s.repo('pypi', 'proxy', { name: 'py-far', ...PROXY(nginx.urls[1]) });
      await s.repo('pypi', 'proxy', {
        name: 'py-stowage',
        ...PROXY(`${s.url}/repository/py-hosted/`, {
          httpClient: { blocked: false, autoBlock: false, authentication: { type: 'username', username: 'admin', password: ADMIN_PASSWORD } },
        }),
      });
      await s.repo('pypi', 'group', {
        name: 'py-group',
        online: true,
        storage: { blobStoreName: 'default', strictContentTypeValidation: true },
        group: { memberNames: ['py-hosted', 'py-proxy', 'py-far'], writableMember: 'py-hosted' },
        pypi: { pinnedProjects: { 'corp-*': ['py-hosted'] } },
      });
    });
    after(async () => {
      await s?.stop();
      await nginx?.stop();
      rmSync(work, { recursive: true, force: true });
    });

    if (withPip)
      it('pip installs requests and flask with their dependencies through a proxy of the static tree', async () => {
        const target = path.join(work, 'site-proxy');
        const r = await pipInstall(index('py-proxy'), target, ['requests', 'flask']);
        assert.equal(r.code, 0, r.all);
        assert.match(r.all, /Successfully installed .*flask-3\.1\.3.*requests-2\.34\.2/is);
        assert.ok(existsSync(path.join(target, 'requests', '__init__.py')));
        const files = (await assetsOf('py-proxy', 'packages/')).map((a) => a.path);
        for (const p of ['requests', 'flask', 'werkzeug', 'jinja2', 'markupsafe', 'idna', 'urllib3', 'certifi', 'charset-normalizer', 'click', 'itsdangerous', 'blinker'])
          assert.ok(
            files.some((f) => f.startsWith(`packages/${p}/`) && f.endsWith('.whl')),
            `${p} came through the proxy: ${files.join(' ')}`,
          );
      });

    it('rewrites file URLs to itself, keeps hashes, serves JSON and HTML from one cached page, advertises no metadata upstream lacks', async () => {
      const upstream = readFileSync(path.join(TREE, 'simple', 'requests', 'index.html'), 'utf8');
      const hash = /#sha256=([0-9a-f]{64})/.exec(upstream)![1];
      const h = await s.fetch('/repository/py-proxy/simple/requests/', { headers: { Accept: 'text/html' } });
      assert.equal(h.status, 200);
      const html = await h.text();
      assert.match(html, new RegExp(`<a href="../../packages/requests/requests-2.34.2-py3-none-any.whl#sha256=${hash}">requests-2.34.2-py3-none-any.whl</a>`));
      assert.doesNotMatch(html, /data-core-metadata/);
      const j = await s.fetch('/repository/py-proxy/simple/requests/', { headers: { Accept: PIP_ACCEPT } });
      assert.equal(j.headers.get('content-type'), 'application/vnd.pypi.simple.v1+json');
      assert.equal(j.headers.get('vary'), 'Accept');
      const doc = await j.json();
      assert.equal(doc.files[0].url, '../../packages/requests/requests-2.34.2-py3-none-any.whl');
      assert.equal(doc.files[0].hashes.sha256, hash);
      assert.equal(doc.files[0]['core-metadata'], undefined);
      assert.deepEqual(doc.versions, ['2.34.2']);
      // The file through the proxy is upstream's bytes.
      const f = await s.fetch('/repository/py-proxy/packages/requests/requests-2.34.2-py3-none-any.whl');
      assert.equal(f.status, 200);
      assert.equal(sha256(Buffer.from(await f.arrayBuffer())), hash);
      // Unknown projects and files are 404s.
      assert.equal((await s.fetch('/repository/py-proxy/simple/no-such-project-here/')).status, 404);
      assert.equal((await s.fetch('/repository/py-proxy/packages/requests/requests-0.0.1.tar.gz')).status, 404);
      // The project list passes through (843 projects).
      const list = await (await s.fetch('/repository/py-proxy/simple/', { headers: { Accept: PIP_ACCEPT } })).json();
      assert.ok(list.projects.length > 800);
    });

    it('proxies a tree whose links point at another host: pip installs six through it, its advertised metadata read out of the wheel', async () => {
      const page = await (await s.fetch('/repository/py-far/simple/six/', { headers: { Accept: PIP_ACCEPT } })).json();
      assert.equal(page.files[0].url, '../../packages/six/six-1.17.0-py2.py3-none-any.whl');
      assert.match(page.files[0]['core-metadata'].sha256, /^[0-9a-f]{64}$/);
      if (withPip) {
        const target = path.join(work, 'site-far');
        const r = await pipInstall(index('py-far'), target, ['six']);
        assert.equal(r.code, 0, r.all);
        assert.ok(existsSync(path.join(target, 'six.py')));
      } else {
        // pip's order: the metadata first, then the wheel.
        assert.equal(await status('/repository/py-far/packages/six/six-1.17.0-py2.py3-none-any.whl.metadata'), 200);
        assert.equal(await status('/repository/py-far/packages/six/six-1.17.0-py2.py3-none-any.whl'), 200);
      }
      // Upstream has no six-….whl.metadata: the proxy extracted it (its hash is what the page advertised, or pip would have failed).
      assert.deepEqual(await storedPaths('py-far', 'packages/six/', 2), ['packages/six/six-1.17.0-py2.py3-none-any.whl', 'packages/six/six-1.17.0-py2.py3-none-any.whl.metadata']);
      const meta = await s.fetch('/repository/py-far/packages/six/six-1.17.0-py2.py3-none-any.whl.metadata');
      assert.equal(sha256(Buffer.from(await meta.arrayBuffer())), page.files[0]['core-metadata'].sha256);
    });

    it('proxies another Stowage: JSON pages, PEP 658 metadata fetched through the proxy', async () => {
      const wheel = buildWheel(path.join(work, 'hosted'), { name: 'corp-lib', version: '1.0', requiresDist: ['six'] });
      const up = await twineUpload(`${s.url}/repository/py-hosted/`, 'admin', ADMIN_PASSWORD, [wheel]);
      assert.equal(up.code, 0, up.all);
      const doc = await (await s.fetch('/repository/py-stowage/simple/corp-lib/', { headers: { Accept: PIP_ACCEPT } })).json();
      assert.match(doc.files[0]['core-metadata'].sha256, /^[0-9a-f]{64}$/);
      assert.equal(doc.files[0].size, readFileSync(wheel).length);
      assert.match(doc.files[0]['upload-time'], /Z$/);
      const [stored] = await assetsOf('py-stowage', 'simple/corp-lib/');
      assert.equal(stored.content_type, 'application/vnd.pypi.simple.v1+json', 'the proxy asked upstream for JSON');
      if (withPip) {
        const target = path.join(work, 'site-stowage');
        const r = await pipInstall(index('py-stowage'), target, ['corp-lib', '--no-deps']);
        assert.equal(r.code, 0, r.all);
      } else {
        assert.equal(await status('/repository/py-stowage/packages/corp-lib/corp_lib-1.0-py3-none-any.whl.metadata'), 200);
        assert.equal(await status('/repository/py-stowage/packages/corp-lib/corp_lib-1.0-py3-none-any.whl'), 200);
      }
      const cached = await storedPaths('py-stowage', 'packages/corp-lib/', 2);
      assert.deepEqual(cached, ['packages/corp-lib/corp_lib-1.0-py3-none-any.whl', 'packages/corp-lib/corp_lib-1.0-py3-none-any.whl.metadata']);
    });

    it('group: merged pages, union list, upload into the writable member, dependencies resolved across members', async () => {
      // A hosted file with the very name of an upstream one: the first member wins on the group page.
      const own = buildWheel(path.join(work, 'own'), { name: 'blinker', version: '1.9.0' });
      const extra = buildWheel(path.join(work, 'own2'), { name: 'blinker', version: '99.0' });
      const up = await twineUpload(`${s.url}/repository/py-group/`, 'admin', ADMIN_PASSWORD, [own, extra]);
      assert.equal(up.code, 0, up.all);
      assert.equal((await assetsOf('py-hosted', 'packages/blinker/')).filter((a) => a.path.endsWith('.whl')).length, 2, 'stored in the writable member');
      const doc = await (await s.fetch('/repository/py-group/simple/blinker/', { headers: { Accept: PIP_ACCEPT } })).json();
      assert.deepEqual(doc.versions, ['1.9.0', '99.0']);
      assert.deepEqual(doc.files.map((f: { filename: string }) => f.filename).sort(), ['blinker-1.9.0-py3-none-any.whl', 'blinker-99.0-py3-none-any.whl']);
      const mine = doc.files.find((f: { filename: string }) => f.filename === 'blinker-1.9.0-py3-none-any.whl');
      assert.equal(mine.hashes.sha256, sha256(readFileSync(own)), 'the hosted member comes first');
      const html = await (await s.fetch('/repository/py-group/simple/blinker/')).text();
      assert.match(html, new RegExp(`blinker-1.9.0-py3-none-any.whl#sha256=${sha256(readFileSync(own))}`));
      // The file through the group is the first member's.
      const f = await s.fetch('/repository/py-group/packages/blinker/blinker-1.9.0-py3-none-any.whl');
      assert.equal(sha256(Buffer.from(await f.arrayBuffer())), sha256(readFileSync(own)));
      const list = await (await s.fetch('/repository/py-group/simple/', { headers: { Accept: PIP_ACCEPT } })).json();
      const names = list.projects.map((p: { name: string }) => p.name);
      for (const n of ['corp-lib', 'requests', 'six', 'corp-evil', 'blinker']) assert.ok(names.includes(n), n);
      if (!withPip) return;
      // corp-lib (hosted) needs six (proxies): pip resolves across members.
      const target = path.join(work, 'site-group');
      const r = await pipInstall(index('py-group'), target, ['corp-lib', 'requests']);
      assert.equal(r.code, 0, r.all);
      assert.match(r.all, /Successfully installed .*corp[-_]lib-1\.0.*six-1\.17\.0/is);
    });

    it('caches one upstream page per project and renders each representation from it (an upstream answering differently per Accept)', async () => {
      // PEP 691's serializations carry the same data, JSON a superset: the proxy asks for JSON
      // (HTML accepted), keeps that one document, and renders HTML and JSON from it, each with its
      // own type and ETag under Vary: Accept; it never hands a stored document of one type to a
      // client of the other. An upstream that diverges per Accept is thus seen through its JSON.
      const seen: string[] = [];
      const upstream: Server = createServer((req, res) => {
        seen.push(`${req.url} ${req.headers.accept}`);
        const json = (req.headers.accept ?? '').startsWith('application/vnd.pypi.simple.v1+json');
        const file = json ? 'two_faced-1.0-py3-none-any.whl' : 'two_faced-2.0-py3-none-any.whl';
        res.setHeader('Content-Type', json ? 'application/vnd.pypi.simple.v1+json' : 'text/html');
        res.end(
          json
            ? JSON.stringify({ meta: { 'api-version': '1.1' }, name: 'two-faced', files: [{ filename: file, url: `f/${file}`, hashes: { sha256: '2'.repeat(64) }, size: 7 }] })
            : `<html><body><a href="f/${file}#sha256=${'3'.repeat(64)}">${file}</a></body></html>`,
        );
      });
      await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
      try {
        await s.repo('pypi', 'proxy', { name: 'py-two-faced', ...PROXY(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}/`) });
        const html = await s.fetch('/repository/py-two-faced/simple/two-faced/', { headers: { Accept: 'text/html' } });
        assert.equal(html.status, 200);
        assert.match(html.headers.get('content-type')!, /^text\/html/);
        assert.equal(html.headers.get('vary'), 'Accept');
        const htmlBody = await html.text();
        assert.match(htmlBody, new RegExp(`two_faced-1.0-py3-none-any.whl#sha256=${'2'.repeat(64)}`), 'the HTML client sees the JSON document upstream gave');
        const json = await s.fetch('/repository/py-two-faced/simple/two-faced/', { headers: { Accept: PIP_ACCEPT } });
        assert.equal(json.headers.get('content-type'), 'application/vnd.pypi.simple.v1+json');
        const doc = await json.json();
        assert.deepEqual(
          doc.files.map((f: { filename: string; size: number }) => [f.filename, f.size]),
          [['two_faced-1.0-py3-none-any.whl', 7]],
        );
        assert.notEqual(json.headers.get('etag'), html.headers.get('etag'), 'each representation has its own ETag');
        // A conditional request with the HTML ETag does not get a 304 for JSON.
        const cross = await s.fetch('/repository/py-two-faced/simple/two-faced/', { headers: { Accept: PIP_ACCEPT, 'If-None-Match': html.headers.get('etag')! } });
        assert.equal(cross.status, 200);
        await cross.arrayBuffer();
        const again = await s.fetch('/repository/py-two-faced/simple/two-faced/', { headers: { Accept: 'text/html', 'If-None-Match': html.headers.get('etag')! } });
        assert.equal(again.status, 304);
        assert.deepEqual(
          seen,
          [`/simple/two-faced/ application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1`],
          'one upstream request, JSON preferred',
        );
        assert.equal((await assetsOf('py-two-faced', 'simple/')).length, 1, 'one cache entry');
      } finally {
        upstream.close();
      }
    });

    it('group: a pinned project is never looked up on the proxies (dependency confusion)', async () => {
      assert.equal((await s.fetch('/repository/py-far/simple/corp-evil/')).status, 200, 'the proxy alone has it');
      const before = (await assetsOf('py-far', 'simple/corp-evil/')).length;
      assert.equal((await s.fetch('/repository/py-group/simple/corp-evil/')).status, 404);
      assert.equal((await s.fetch('/repository/py-group/packages/corp-evil/corp_evil-1.0-py3-none-any.whl')).status, 404);
      assert.equal((await assetsOf('py-far', 'simple/corp-evil/')).length, before);
      // Unpinned projects still come from every member.
      assert.equal((await s.fetch('/repository/py-group/simple/six/')).status, 200);
    });

    it('does not advertise core metadata for an upstream sdist it cannot serve (pip would fail on the 404)', async () => {
      const page = await (await s.fetch('/repository/py-far/simple/sdist-only/', { headers: { Accept: PIP_ACCEPT } })).json();
      assert.match(page.files[0].filename, /^sdist[-_]only-1\.0\.tar\.gz$/);
      assert.equal(page.files[0]['core-metadata'], undefined);
      assert.equal(page.files[0]['dist-info-metadata'], undefined);
      const html = await (await s.fetch('/repository/py-far/simple/sdist-only/', { headers: { Accept: 'text/html' } })).text();
      assert.doesNotMatch(html, /data-(core|dist-info)-metadata/);
      assert.equal((await s.fetch(`/repository/py-far/packages/sdist-only/${page.files[0].filename}.metadata`)).status, 404);
      // Nor through a group of that proxy (with the static tree, where pip's build isolation finds setuptools).
      await s.repo('pypi', 'group', {
        name: 'py-far-group',
        online: true,
        storage: { blobStoreName: 'default', strictContentTypeValidation: true },
        group: { memberNames: ['py-far', 'py-proxy'] },
      });
      const merged = await (await s.fetch('/repository/py-far-group/simple/sdist-only/', { headers: { Accept: PIP_ACCEPT } })).json();
      assert.equal(merged.files[0]['core-metadata'], undefined);
      if (!withPip) return;
      const r = await pipInstall(index('py-far-group'), path.join(work, 'site-sdist'), ['sdist-only', '--no-deps']);
      assert.equal(r.code, 0, r.all);
      assert.ok(existsSync(path.join(work, 'site-sdist', 'sdist_only.py')));
    });

    it('validates pypi.pinnedProjects in REST bodies (400 naming the field) and documents it in the OpenAPI document', async () => {
      const post = (body: unknown) =>
        s.fetch('/service/rest/v1/repositories/pypi/group', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      const group = (pinnedProjects: unknown) => ({
        name: 'py-pins',
        online: true,
        storage: { blobStoreName: 'default', strictContentTypeValidation: true },
        group: { memberNames: ['py-hosted'] },
        pypi: { pinnedProjects },
      });
      for (const [bad, field] of [
        [{ Corp_Lib: ['py-hosted'] }, 'pypi.pinnedProjects.Corp_Lib'],
        [{ 'corp-*': [] }, 'pypi.pinnedProjects.corp-*'],
        [{ 'corp-*': 'py-hosted' }, 'pypi.pinnedProjects.corp-*'],
        [['corp-*'], 'pypi.pinnedProjects'],
      ] as const) {
        const res = await post(group(bad));
        const text = await res.text();
        assert.equal(res.status, 400, text);
        const [first] = JSON.parse(text) as { id: string; message: string }[];
        assert.ok(first.id.startsWith(`PARAMETER ${field}`), text);
        assert.ok(first.message.length > 0, text);
      }
      assert.equal(await s.app.repositories.find('py-pins'), undefined, 'nothing created');
      const ok = await post(group({ 'corp-*': ['py-hosted'], 'internal-tool': ['py-hosted'] }));
      assert.equal(ok.status, 201, await ok.text());
      const got = await (await s.fetch('/service/rest/v1/repositories/pypi/group/py-pins')).json();
      assert.deepEqual(got.pypi.pinnedProjects, { 'corp-*': ['py-hosted'], 'internal-tool': ['py-hosted'] });
      const doc = await (await s.fetch('/service/rest/v1/openapi.json')).json();
      const text = JSON.stringify(doc.components.schemas.RepositoryConfig);
      assert.match(text, /"pinnedProjects"/, 'the group body documents pypi.pinnedProjects');
      assert.match(text, /corp-\*/, 'with its description');
    });

    it('keeps a page for the metadata max age, then revalidates it', async () => {
      const file = path.join(far, 'simple', 'six', 'index.html');
      const original = readFileSync(file, 'utf8');
      writeFileSync(file, original.replace('</body>', `<a href="../../files/six-9.9-py3-none-any.whl#sha256=${'0'.repeat(64)}">six-9.9-py3-none-any.whl</a></body>`));
      const versions = async () => ((await (await s.fetch('/repository/py-far/simple/six/', { headers: { Accept: PIP_ACCEPT } })).json()) as { versions: string[] }).versions;
      assert.deepEqual(await versions(), ['1.17.0'], 'cached within metadataMaxAge');
      await s.app.repositories.update(
        'py-far',
        s.app.repositories.parse('pypi', 'proxy', { name: 'py-far', ...PROXY(nginx.urls[1], { proxy: { remoteUrl: nginx.urls[1], contentMaxAge: 1440, metadataMaxAge: 0 } }) }),
      );
      assert.deepEqual(await versions(), ['1.17.0', '9.9'], 'revalidated once stale');
      writeFileSync(file, original);
    });

    it('serves cached pages and files when the upstream is down', async () => {
      await s.app.repositories.update(
        'py-proxy',
        s.app.repositories.parse('pypi', 'proxy', {
          name: 'py-proxy',
          ...PROXY(nginx.urls[0] + '/', { proxy: { remoteUrl: nginx.urls[0] + '/', contentMaxAge: 0, metadataMaxAge: 0 } }),
        }),
      );
      await nginx.stop();
      const page = await s.fetch('/repository/py-proxy/simple/requests/', { headers: { Accept: PIP_ACCEPT } });
      assert.equal(page.status, 200);
      const html = await s.fetch('/repository/py-proxy/simple/requests/', { headers: { Accept: 'text/html' } });
      assert.equal(html.status, 200);
      assert.equal((await s.fetch('/repository/py-proxy/packages/requests/requests-2.34.2-py3-none-any.whl')).status, 200);
      assert.equal((await s.fetch('/repository/py-proxy/simple/never-fetched/')).status, 502);
    });
  });
}
