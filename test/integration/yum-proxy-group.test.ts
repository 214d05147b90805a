/**
 * yum proxy and group repositories with dnf: a proxy of a createrepo_c tree served by nginx
 * (upstream repodata served byte for byte, repomd.xml revalidated, xz metadata passed through),
 * and a group of a hosted repository and that proxy with merged repodata (first member wins on
 * NEVRA, locations through the group), zstd upstream repodata (recompressed with the zstd CLI)
 * passed through and merged; members keeping repodata below the root. Runs on SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { buildRpms, dnf, run } from '../helpers/rpm.js';
import { serveStatic } from '../helpers/nginx.js';
import { decompress } from '../../formats/yum/group-merge.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', textNodeName: '#text', isArray: (n) => ['package', 'data', 'rpm:entry', 'file'].includes(n) });

let work: string;
let upstreamDir: string;
let nginx: { url: string; stop(): void };
let hostedRpms: string[];
let upstreamRpms: string[];
let laterRpm: string;
let zstdDir: string;
let nginxZst: { url: string; stop(): void };

async function createrepo(dir: string, extra: string[] = []): Promise<void> {
  await run('createrepo_c', ['-q', '--no-database', ...extra, dir]);
}

/**
 * createrepo_c's primary/filelists/other recompressed with the zstd CLI (this createrepo_c has no
 * zstd), renamed to their new checksum and repomd.xml's checksum, size and location rewritten.
 */
async function zstdRepodata(dir: string): Promise<void> {
  const repodata = path.join(dir, 'repodata');
  let md = (await readFile(path.join(repodata, 'repomd.xml'))).toString();
  for (const type of ['primary', 'filelists', 'other']) {
    const re = new RegExp(`<data type="${type}">([\\s\\S]*?)</data>`);
    const block = re.exec(md)![1];
    const href = /<location href="([^"]+)"/.exec(block)![1];
    const plain = await decompress(href, await readFile(path.join(dir, href)));
    await writeFile(path.join(repodata, 'plain'), plain);
    await run('zstd', ['-q', '-f', '-19', path.join(repodata, 'plain'), '-o', path.join(repodata, 'plain.zst')]);
    const zst = await readFile(path.join(repodata, 'plain.zst'));
    const name = `repodata/${sha256(zst)}-${type}.xml.zst`;
    await writeFile(path.join(dir, name), zst);
    await rm(path.join(dir, href));
    const next = block
      .replace(/<checksum type="sha256">[0-9a-f]+<\/checksum>/, `<checksum type="sha256">${sha256(zst)}</checksum>`)
      .replace(/<location href="[^"]+"/, `<location href="${name}"`)
      .replace(/<size>\d+<\/size>/, `<size>${zst.length}</size>`);
    md = md.replace(block, next);
  }
  await rm(path.join(repodata, 'plain'));
  await rm(path.join(repodata, 'plain.zst'));
  await writeFile(path.join(repodata, 'repomd.xml'), md);
}

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'stowage-yumpg-'));
  // Same NEVRA yumbar-1.0-1 built twice: different bytes in hosted and upstream.
  hostedRpms = await buildRpms(path.join(work, 'hosted'), [
    { name: 'yumfoo', version: '1.0', requires: ['yumbar >= 1.0'] },
    { name: 'yumbar', version: '1.0', summary: 'hosted bar' },
  ]);
  upstreamRpms = await buildRpms(path.join(work, 'up'), [
    { name: 'yumup', version: '3.0', requires: ['yumbar'] },
    { name: 'yumbar', version: '1.0', summary: 'upstream bar' },
  ]);
  [laterRpm] = await buildRpms(path.join(work, 'later'), [{ name: 'yumlater', version: '1.0' }]);
  upstreamDir = path.join(work, 'tree');
  await mkdir(path.join(upstreamDir, 'Packages'), { recursive: true });
  for (const f of upstreamRpms) await copyFile(f, path.join(upstreamDir, 'Packages', path.basename(f)));
  // xz-compressed repodata (this createrepo_c has no zstd): passed through by the proxy, read by the group's merge.
  await createrepo(upstreamDir, ['--compress-type=xz']);
  nginx = await serveStatic(upstreamDir);
  zstdDir = path.join(work, 'tree-zst');
  await mkdir(path.join(zstdDir, 'Packages'), { recursive: true });
  for (const f of upstreamRpms) await copyFile(f, path.join(zstdDir, 'Packages', path.basename(f)));
  await createrepo(zstdDir);
  await zstdRepodata(zstdDir);
  nginxZst = await serveStatic(zstdDir);
});
after(async () => {
  nginx?.stop();
  nginxZst?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function get(s: TestServer, p: string): Promise<Buffer> {
  const r = await s.fetch(p);
  assert.equal(r.status, 200, `${p}: ${r.status}`);
  assert.equal(r.headers.get('content-encoding'), null);
  return Buffer.from(await r.arrayBuffer());
}

/** Packages a repository's repodata lists: name → [summary, location, checksum], checked against repomd.xml. */
async function listed(s: TestServer, repo: string): Promise<Map<string, { summary: string; href: string; sha256: string }>> {
  const md = xml.parse((await get(s, `/repository/${repo}/repodata/repomd.xml`)).toString());
  const out = new Map<string, { summary: string; href: string; sha256: string }>();
  for (const d of md.repomd.data) {
    if (d.type !== 'primary') continue;
    const bytes = await get(s, `/repository/${repo}/${d.location.href}`);
    assert.equal(sha256(bytes), d.checksum['#text']);
    const doc = xml.parse((await decompress(d.location.href, bytes)).toString());
    for (const p of doc.metadata.package ?? []) out.set(`${p.name}-${p.version.ver}`, { summary: p.summary, href: p.location.href, sha256: p.checksum['#text'] });
  }
  return out;
}

async function installed(root: string): Promise<string[]> {
  return (await run('rpm', ['--root', root, '-qa', '--qf', '%{NAME}-%{VERSION} %{SUMMARY}\\n'])).stdout.trim().split('\n').sort();
}

for (const db of DATABASES) {
  describe(`yum proxy and group (${db})`, () => {
    let s: TestServer;
    before(async () => {
      s = await startServer({ db });
      await s.repo('yum', 'hosted', { name: 'yh' });
      await s.repo('yum', 'proxy', { name: 'yp', proxy: { remoteUrl: nginx.url + '/', contentMaxAge: -1, metadataMaxAge: 0 } });
      await s.repo('yum', 'group', { name: 'yg', group: { memberNames: ['yh', 'yp'] } });
      for (const f of hostedRpms) {
        const r = await s.fetch(`/repository/yh/${path.basename(f)}`, { method: 'PUT', body: (await readFile(f)) as unknown as BodyInit });
        assert.equal(r.status, 201);
      }
    });
    after(() => s?.stop());

    it('proxies upstream repodata byte for byte, and dnf installs through the proxy', async () => {
      const upRepomd = await readFile(path.join(upstreamDir, 'repodata', 'repomd.xml'));
      assert.deepEqual(await get(s, '/repository/yp/repodata/repomd.xml'), upRepomd);
      for (const f of await readdir(path.join(upstreamDir, 'repodata'))) {
        if (f === 'repomd.xml') continue;
        assert.deepEqual(await get(s, `/repository/yp/repodata/${f}`), await readFile(path.join(upstreamDir, 'repodata', f)), f);
      }
      const root = path.join(work, `proxy-root-${db}`);
      await dnf(root, `${s.url}/repository/yp/`, ['install', 'yumup'], ['--nogpgcheck']);
      assert.deepEqual(await installed(root), ['yumbar-1.0 upstream bar', 'yumup-3.0 The yumup test package & <friends>']);
    });

    it('revalidates repomd.xml: a package added upstream is seen through the proxy', async () => {
      await copyFile(laterRpm, path.join(upstreamDir, 'Packages', path.basename(laterRpm)));
      await createrepo(upstreamDir, ['--compress-type=xz']);
      assert.deepEqual(await get(s, '/repository/yp/repodata/repomd.xml'), await readFile(path.join(upstreamDir, 'repodata', 'repomd.xml')));
      assert.ok((await listed(s, 'yp')).has('yumlater-1.0'));
    });

    it('merges member repodata in the group: union, first member wins on NEVRA, locations through the group', async () => {
      const pkgs = await listed(s, 'yg');
      assert.deepEqual([...pkgs.keys()].sort(), ['yumbar-1.0', 'yumfoo-1.0', 'yumlater-1.0', 'yumup-3.0']);
      const bar = pkgs.get('yumbar-1.0')!;
      assert.equal(bar.summary, 'hosted bar');
      assert.equal(bar.href, 'yh/yumbar-1.0-1.noarch.rpm');
      assert.equal(bar.sha256, sha256(await readFile(hostedRpms[1])));
      assert.equal(pkgs.get('yumup-3.0')!.href, 'yp/Packages/yumup-3.0-1.noarch.rpm');
      assert.equal(sha256(await get(s, '/repository/yg/yh/yumbar-1.0-1.noarch.rpm')), bar.sha256);
      assert.equal((await s.fetch('/repository/yg/repodata/repomd.xml.asc')).status, 404);

      const root = path.join(work, `group-root-${db}`);
      await dnf(root, `${s.url}/repository/yg/`, ['install', 'yumfoo', 'yumup'], ['--nogpgcheck']);
      assert.deepEqual(await installed(root), ['yumbar-1.0 hosted bar', 'yumfoo-1.0 The yumfoo test package & <friends>', 'yumup-3.0 The yumup test package & <friends>']);
    });

    it('serves every package of a nested group through it (a group of one group, and of that group and the proxy)', async () => {
      await s.repo('yum', 'group', { name: 'ygg', group: { memberNames: ['yg'] } });
      await s.repo('yum', 'group', { name: 'ygp', group: { memberNames: ['yg', 'yp'] } });
      for (const g of ['ygg', 'ygp']) {
        const pkgs = await listed(s, g);
        assert.deepEqual([...pkgs.keys()].sort(), ['yumbar-1.0', 'yumfoo-1.0', 'yumlater-1.0', 'yumup-3.0'], g);
        for (const [n, p] of pkgs) assert.equal(sha256(await get(s, `/repository/${g}/${p.href}`)), p.sha256, `${g}: ${n}`);
      }
    });

    it('serves packages of members whose repodata is below the root (repodataDepth 1) through the group; dnf installs', async () => {
      // Two members (a group of one serves its member's repodata as it is): yumfoo in one, yumbar it needs in the other.
      for (const [i, name] of ['yhd', 'yhd2'].entries()) {
        await s.repo('yum', 'hosted', { name, yum: { repodataDepth: 1, deployPolicy: 'STRICT' } });
        const r = await s.fetch(`/repository/${name}/el9/${path.basename(hostedRpms[i])}`, { method: 'PUT', body: (await readFile(hostedRpms[i])) as unknown as BodyInit });
        assert.equal(r.status, 201);
      }
      await s.repo('yum', 'group', { name: 'ygd', group: { memberNames: ['yhd', 'yhd2'] } });
      const pkgs = await listed(s, 'ygd/el9');
      assert.deepEqual([...pkgs.keys()].sort(), ['yumbar-1.0', 'yumfoo-1.0']);
      assert.equal(pkgs.get('yumbar-1.0')!.href, 'yhd2/yumbar-1.0-1.noarch.rpm');
      for (const [n, p] of pkgs) assert.equal(sha256(await get(s, `/repository/ygd/el9/${p.href}`)), p.sha256, n);
      const root = path.join(work, `deep-root-${db}`);
      await dnf(root, `${s.url}/repository/ygd/el9/`, ['install', 'yumfoo'], ['--nogpgcheck']);
      assert.deepEqual(await installed(root), ['yumbar-1.0 hosted bar', 'yumfoo-1.0 The yumfoo test package & <friends>']);
    });

    it('passes zstd upstream repodata through a proxy byte for byte, and merges it in a group', async () => {
      await s.repo('yum', 'proxy', { name: 'ypz', proxy: { remoteUrl: nginxZst.url + '/', contentMaxAge: -1, metadataMaxAge: 0 } });
      await s.repo('yum', 'group', { name: 'ygz', group: { memberNames: ['yh', 'ypz'] } });
      const files = await readdir(path.join(zstdDir, 'repodata'));
      assert.equal(files.filter((f) => f.endsWith('.xml.zst')).length, 3);
      assert.deepEqual(await get(s, '/repository/ypz/repodata/repomd.xml'), await readFile(path.join(zstdDir, 'repodata', 'repomd.xml')));
      for (const f of files) assert.deepEqual(await get(s, `/repository/ypz/repodata/${f}`), await readFile(path.join(zstdDir, 'repodata', f)), f);
      assert.deepEqual([...(await listed(s, 'ypz')).keys()].sort(), ['yumbar-1.0', 'yumup-3.0']);

      const pkgs = await listed(s, 'ygz');
      assert.deepEqual([...pkgs.keys()].sort(), ['yumbar-1.0', 'yumfoo-1.0', 'yumup-3.0']);
      assert.equal(pkgs.get('yumup-3.0')!.href, 'ypz/Packages/yumup-3.0-1.noarch.rpm');
      const root = path.join(work, `zst-root-${db}`);
      await dnf(root, `${s.url}/repository/ygz/`, ['install', 'yumup'], ['--nogpgcheck']);
      assert.deepEqual(await installed(root), ['yumbar-1.0 hosted bar', 'yumup-3.0 The yumup test package & <friends>']);
    });

    it('follows a member change: a package deleted from hosted leaves the merged repodata', async () => {
      assert.equal((await s.fetch('/repository/yh/yumfoo-1.0-1.noarch.rpm', { method: 'DELETE' })).status, 204);
      const pkgs = await listed(s, 'yg');
      assert.ok(!pkgs.has('yumfoo-1.0'));
      assert.ok(pkgs.has('yumup-3.0'));
    });
  });
}
