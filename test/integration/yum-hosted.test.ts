/* eslint-disable @typescript-eslint/no-explicit-any -- parsed repodata is walked as plain JSON */
/**
 * Hosted yum repositories end to end: RPMs built by rpmbuild, uploaded with PUT and the Nexus
 * component upload, repodata kept true by the maintenance hook, installed by dnf for real, and
 * compared with createrepo_c's repodata for the same RPMs. Runs on SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { XMLParser } from 'fast-xml-parser';
import { DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { buildRpms, dnf, run, type RpmSpec } from '../helpers/rpm.js';
import { generationStats } from '../../formats/yum/repodata-service.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  textNodeName: '#text',
  isArray: (n) => ['package', 'entry', 'file', 'changelog', 'data'].includes(n) || n.startsWith('rpm:'),
});

const SPECS: RpmSpec[] = [
  {
    name: 'yumfoo',
    version: '1.0',
    epoch: 1,
    requires: ['yumbar >= 1.0'],
    provides: ['yumfoo-api = 2:3.1-4'],
    conflicts: ['yumbaz < 1'],
    obsoletes: ['yumold <= 0.9'],
    recommends: ['yumbar'],
    suggests: ['yumqux'],
    supplements: ['yumbar'],
    enhances: ['yumbar'],
    changelog: [
      { date: 'Tue Jan 02 2024', author: 'B <b@example.test> - 1.0-1', text: '- Second entry & <more>' },
      { date: 'Tue Jan 02 2024', author: 'A <a@example.test>  ', text: '- Same day' },
      { date: 'Mon Jan 01 2024', author: 'A <a@example.test> - 0.9-1', text: '- First' },
    ],
  },
  { name: 'yumbar', version: '1.0' },
  { name: 'yumbar', version: '2.0' },
];

let work: string;
let rpms: string[];

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'stowage-yum-'));
  rpms = await buildRpms(path.join(work, 'build'), SPECS);
});
after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function put(s: TestServer, repo: string, p: string, body: Buffer): Promise<Response> {
  return s.fetch(`/repository/${repo}/${p}`, { method: 'PUT', body: body as unknown as BodyInit, headers: { 'Content-Type': 'application/x-rpm' } });
}

async function repomd(s: TestServer, repo: string, base = ''): Promise<Record<string, { href: string; sha256: string; size: number }>> {
  const r = await s.fetch(`/repository/${repo}/${base}repodata/repomd.xml`);
  assert.equal(r.status, 200);
  const doc = xml.parse(await r.text());
  const out: Record<string, { href: string; sha256: string; size: number }> = {};
  for (const d of doc.repomd.data) out[d.type] = { href: d.location.href, sha256: d.checksum['#text'], size: Number(d.size) };
  return out;
}

/** primary/filelists/other of a repository over HTTP, checked against repomd's checksums and sizes. */
async function repodata(s: TestServer, repo: string, base = ''): Promise<Record<string, unknown>> {
  const md = await repomd(s, repo, base);
  const out: Record<string, unknown> = {};
  for (const [type, d] of Object.entries(md)) {
    const r = await s.fetch(`/repository/${repo}/${base}${d.href}`);
    assert.equal(r.status, 200, d.href);
    assert.equal(r.headers.get('content-encoding'), null);
    const gz = Buffer.from(await r.arrayBuffer());
    assert.equal(sha256(gz), d.sha256, `${type} checksum`);
    assert.equal(gz.length, d.size, `${type} size`);
    out[type] = xml.parse(gunzipSync(gz).toString());
  }
  return out;
}

/** Packages of parsed repodata keyed by pkgid, with what must match createrepo_c (not file times). */
function normalized(docs: Record<string, unknown>): Record<string, unknown> {
  const d = docs as { primary: any; filelists: any; other: any };
  const out: Record<string, any> = {};
  for (const p of d.primary.metadata.package ?? []) {
    const id = p.checksum['#text'];
    delete p.time.file;
    out[id] = { primary: p };
  }
  for (const p of d.filelists.filelists.package ?? []) out[p.pkgid].filelists = p;
  for (const p of d.other.otherdata.package ?? []) out[p.pkgid].other = p;
  return out;
}

async function createrepo(files: string[]): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(path.join(work, 'cr-'));
  for (const f of files) await copyFile(f, path.join(dir, path.basename(f)));
  await run('createrepo_c', ['-q', '--no-database', dir]);
  const out: Record<string, unknown> = {};
  for (const f of await readdir(path.join(dir, 'repodata'))) {
    const m = /-(primary|filelists|other)\.xml\.gz$/.exec(f);
    if (m) out[m[1]] = xml.parse(gunzipSync(await readFile(path.join(dir, 'repodata', f))).toString());
  }
  return out;
}

for (const db of DATABASES) {
  describe(`yum hosted (${db})`, () => {
    let s: TestServer;
    before(async () => {
      s = await startServer({ db });
      await s.repo('yum', 'hosted', { name: 'yum-hosted', storage: { writePolicy: 'ALLOW' } });
      // Nexus's REST shape: POST /repositories/yum/hosted with the yum section.
      const created = await s.fetch('/service/rest/v1/repositories/yum/hosted', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          name: 'yum-deep',
          online: true,
          storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW_ONCE' },
          yum: { repodataDepth: 1, deployPolicy: 'STRICT' },
        }),
      });
      assert.equal(created.status, 201, await created.text());
      const cfg = (await (await s.fetch('/service/rest/v1/repositories/yum/hosted/yum-deep')).json()) as { yum: unknown };
      assert.deepEqual(cfg.yum, { repodataDepth: 1, deployPolicy: 'STRICT' });
      const bad = await s.fetch('/service/rest/v1/repositories/yum/hosted', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'yum-bad', yum: { repodataDepth: 9 } }),
      });
      assert.equal(bad.status, 400);
      assert.match(await bad.text(), /yum\.repodataDepth/);
    });
    after(() => s?.stop());

    it('stores PUT RPMs and lists them in repodata as createrepo_c does', async () => {
      for (const f of rpms) assert.equal((await put(s, 'yum-hosted', path.basename(f), await readFile(f))).status, 201);
      const ours = normalized(await repodata(s, 'yum-hosted'));
      const theirs = normalized(await createrepo(rpms));
      assert.equal(Object.keys(ours).length, 3);
      assert.deepEqual(ours, theirs);
    });

    it('dnf installs a package with its dependency, and resolves the older one after a delete', async () => {
      const url = `${s.url}/repository/yum-hosted/`;
      const root = path.join(work, `root-${db}`);
      await dnf(root, url, ['install', 'yumfoo'], ['--nogpgcheck', '--setopt=install_weak_deps=False']);
      const q = await run('rpm', ['--root', root, '-qa', '--qf', '%{NAME}-%{VERSION}\\n']);
      assert.deepEqual(q.stdout.trim().split('\n').sort(), ['yumbar-2.0', 'yumfoo-1.0']);
      assert.ok(existsSync(path.join(root, 'usr/bin/yumfoo')));

      assert.equal((await s.fetch('/repository/yum-hosted/yumbar-2.0-1.noarch.rpm', { method: 'DELETE' })).status, 204);
      const root2 = path.join(work, `root2-${db}`);
      await dnf(root2, url, ['install', 'yumfoo'], ['--nogpgcheck', '--setopt=install_weak_deps=False']);
      const q2 = await run('rpm', ['--root', root2, '-qa', '--qf', '%{NAME}-%{VERSION}\\n']);
      assert.deepEqual(q2.stdout.trim().split('\n').sort(), ['yumbar-1.0', 'yumfoo-1.0']);
      const ours = normalized(await repodata(s, 'yum-hosted'));
      assert.deepEqual(ours, normalized(await createrepo([rpms[0], rpms[1]])));
    });

    it('refuses what is not an RPM, a truncated RPM, a path STRICT does not allow and traversal; stores nothing', async () => {
      const before = await repomd(s, 'yum-hosted');
      const good = await readFile(rpms[1]);
      const cases: Array<[string, string, Buffer, RegExp]> = [
        ['yum-hosted', 'notes.rpm', Buffer.from('this is not an rpm, just text that is long enough to look like something '.repeat(3)), /Not an RPM/],
        ['yum-hosted', 'cut.rpm', good.subarray(0, good.length - 100), /Truncated/],
        ['yum-hosted', 'head.rpm', good.subarray(0, 2000), /Truncated/],
        ['yum-hosted', 'a/b/yumbar-1.0-1.noarch.rpm', good, /1 directory deep|0 directories deep/],
        ['yum-hosted', 'readme.txt', Buffer.from('hi'), /only RPMs/],
        ['yum-hosted', 'repodata/repomd.xml', Buffer.from('<x/>'), /generated/],
        ['yum-deep', 'x.rpm', good, /1 directory deep/],
      ];
      for (const [repo, p, body, msg] of cases) {
        const r = await put(s, repo, p, body);
        const text = await r.text();
        assert.equal(r.status, 400, `${p}: ${r.status} ${text}`);
        assert.match(text, msg, p);
        // repomd.xml exists (the repository's own): checked unchanged below.
        if (!p.startsWith('repodata/')) assert.equal((await s.fetch(`/repository/${repo}/${p}`)).status, 404, p);
      }
      const trav = await s.fetch('/repository/yum-hosted/%2e%2e/x.rpm', { method: 'PUT', body: good as unknown as BodyInit });
      assert.ok(trav.status >= 400 && trav.status < 500, String(trav.status));
      assert.deepEqual(await repomd(s, 'yum-hosted'), before);
      const assets = await s.app.content.findAssets((await s.app.repositories.find('yum-hosted'))!.id, {});
      assert.deepEqual(
        assets
          .filter((a) => a.kind === 'content')
          .map((a) => a.path)
          .sort(),
        ['yumbar-1.0-1.noarch.rpm', 'yumfoo-1.0-1.noarch.rpm'],
      );
    });

    it('takes the Nexus component upload (yum.asset, yum.asset.filename, yum.directory) with repodataDepth 1', async () => {
      const form = new FormData();
      form.set('yum.asset', new Blob([new Uint8Array(await readFile(rpms[2]))]), 'ignored.rpm');
      form.set('yum.asset.filename', 'yumbar-2.0-1.noarch.rpm');
      form.set('yum.directory', '/el9/');
      const r = await s.fetch('/service/rest/v1/components?repository=yum-deep', { method: 'POST', body: form });
      assert.equal(r.status, 204, await r.text());
      const docs = (await repodata(s, 'yum-deep', 'el9/')) as any;
      assert.equal(docs.primary.metadata.package.length, 1);
      assert.equal(docs.primary.metadata.package[0].location.href, 'yumbar-2.0-1.noarch.rpm');
      assert.equal(docs.primary.metadata.package[0].checksum['#text'], sha256(await readFile(rpms[2])));
      // A file that is no RPM is refused before anything is stored.
      const bad = new FormData();
      bad.set('yum.asset', new Blob(['not an rpm at all, really not. '.repeat(5)]), 'x.rpm');
      bad.set('yum.asset.filename', 'junk-1-1.noarch.rpm');
      bad.set('yum.directory', 'el9');
      const rb = await s.fetch('/service/rest/v1/components?repository=yum-deep', { method: 'POST', body: bad });
      assert.equal(rb.status, 400);
      assert.match(await rb.text(), /Not an RPM/);
      assert.equal((await s.fetch('/repository/yum-deep/el9/junk-1-1.noarch.rpm')).status, 404);
      // Components: name, version-release, the arch; searchable by name and version.
      const search = await s.fetch('/service/rest/v1/search?repository=yum-deep&name=yumbar&version=2.0-1');
      const items = ((await search.json()) as any).items;
      assert.equal(items.length, 1);
      assert.equal(items[0].name, 'yumbar');
      assert.equal(items[0].version, '2.0-1');
      // A component deleted through the REST API leaves the repodata (the maintenance hook).
      assert.equal((await s.fetch(`/service/rest/v1/components/${items[0].id}`, { method: 'DELETE' })).status, 204);
      const after = (await repodata(s, 'yum-deep', 'el9/')) as any;
      assert.equal(after.primary.metadata.package, undefined);
      assert.match(JSON.stringify(after.primary.metadata), /"packages":"0"|"packages":0/);
    });

    it('coalesces a burst of 20 uploads into a few generations, each file listed', async () => {
      await s.repo('yum', 'hosted', { name: 'yum-burst' });
      // Before any upload: an empty repository, as createrepo_c makes one (dnf reads it without error).
      const empty = (await repodata(s, 'yum-burst')) as any;
      assert.equal(empty.primary.metadata.packages, '0');
      const body = await readFile(rpms[1]);
      const start = generationStats.count;
      // Repodata comes from the metadata stored at upload: no stored blob is read to make it.
      const blobs = s.app.blobs;
      const open = blobs.open.bind(blobs);
      let opened = 0;
      blobs.open = ((...args: Parameters<typeof open>) => (opened++, open(...args))) as typeof blobs.open;
      let rs: Response[];
      try {
        rs = await Promise.all(Array.from({ length: 20 }, (_, i) => put(s, 'yum-burst', `copy-${i}.rpm`, body)));
      } finally {
        blobs.open = open;
      }
      assert.equal(opened, 0, 'blobs read while generating repodata');
      assert.deepEqual(
        rs.map((r) => r.status),
        Array(20).fill(201),
      );
      const made = generationStats.count - start;
      assert.ok(made <= 6, `${made} generations for 20 uploads`);
      const docs = (await repodata(s, 'yum-burst')) as any;
      assert.equal(docs.primary.metadata.package.length, 20);
    });
  });
}
