/** The repodata writer: what createrepo_c lists and leaves out, escaping, and self-consistent repomd.xml. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { XMLParser } from 'fast-xml-parser';
import { isPrimaryFile, listedChangelog, listedRequires, primaryPackage, repodataFiles, repomdXml, xmlEscape, type RepoPackage } from '../../formats/yum/repodata.js';
import type { RpmPackage } from '../../formats/yum/rpm-package.js';

function pkg(over: Partial<RpmPackage> = {}): RpmPackage {
  return {
    name: 'x',
    epoch: 0,
    version: '1',
    release: '1',
    arch: 'noarch',
    summary: 'S',
    description: 'D',
    url: '',
    license: 'MIT',
    vendor: '',
    group: '',
    buildhost: 'h',
    sourcerpm: 'x-1-1.src.rpm',
    packager: '',
    buildTime: 1,
    installedSize: 2,
    archiveSize: 3,
    headerStart: 4504,
    headerEnd: 5000,
    deps: { provides: [], requires: [], conflicts: [], obsoletes: [], suggests: [], enhances: [], recommends: [], supplements: [] },
    files: [],
    changelog: [],
    ...over,
  };
}
const repoPkg = (p: RpmPackage, href = 'x-1-1.noarch.rpm'): RepoPackage => ({ pkg: p, href, sha256: 'a'.repeat(64), size: 10, fileTime: 5 });

describe('repodata writer', () => {
  it('lists only primary files in primary (createrepo_c cr_is_primary)', () => {
    assert.ok(isPrimaryFile('/etc/x.conf'));
    assert.ok(isPrimaryFile('/usr/sbin/x'));
    assert.ok(isPrimaryFile('/usr/lib/sendmail'));
    assert.ok(!isPrimaryFile('/usr/share/doc/x'));
    assert.ok(!isPrimaryFile('/etc'));
  });

  it('leaves out rpmlib(), self-provided and own-primary-file requires, and repeats', () => {
    const p = pkg({
      deps: {
        ...pkg().deps,
        provides: [{ name: 'x', flags: 'EQ', epoch: '0', ver: '1', rel: '1' }, { name: 'config(x)' }],
        requires: [
          { name: 'rpmlib(PayloadIsXz)', flags: 'LE', epoch: '0', ver: '5.2', rel: '1' },
          { name: 'config(x)', flags: 'EQ', epoch: '0', ver: '1', rel: '1' },
          { name: '/usr/bin/x' },
          { name: '/usr/share/x/f' },
          { name: 'y', flags: 'GE', epoch: '0', ver: '2' },
          { name: 'y', flags: 'GE', epoch: '0', ver: '2' },
          { name: 'z', pre: true },
        ],
      },
      files: [{ path: '/usr/bin/x' }, { path: '/usr/share/x/f' }],
    });
    assert.deepEqual(
      listedRequires(p).map((d) => d.name),
      ['/usr/share/x/f', 'y', 'z'],
    );
    assert.match(primaryPackage(repoPkg(p)), /<rpm:entry name="z" pre="1"\/>/);
  });

  it('keeps the 10 newest changelog entries, oldest first, same dates made distinct', () => {
    const log = Array.from({ length: 12 }, (_, i) => ({ author: `a${i} `, date: 1000 - Math.floor(i / 2) * 10, text: `t${i}` }));
    const out = listedChangelog(pkg({ changelog: log }));
    assert.equal(out.length, 10);
    assert.deepEqual(
      out.map((c) => c.text),
      ['t9', 't8', 't7', 't6', 't5', 't4', 't3', 't2', 't1', 't0'],
    );
    assert.deepEqual(
      out.map((c) => c.date),
      [960, 961, 970, 971, 980, 981, 990, 991, 1000, 1001],
    );
    assert.equal(out[0].author, 'a9');
  });

  it('escapes XML and drops characters XML cannot carry', () => {
    assert.equal(xmlEscape('a & <b> "c"\u0001'), 'a &amp; &lt;b&gt; &quot;c&quot;');
    const p = new XMLParser({ ignoreAttributes: false }).parse(primaryPackage(repoPkg(pkg({ summary: 'x & <y>\u0007', description: ']]> "q"' }), 'a&b.rpm')));
    assert.equal(p.package.summary, 'x & <y>');
    assert.equal(p.package.location['@_href'], 'a&b.rpm');
  });

  it('names each file by the digest of its compressed bytes; repomd.xml states digests and sizes', async () => {
    const files = await repodataFiles([repoPkg(pkg())]);
    const md = new XMLParser({ ignoreAttributes: false }).parse(repomdXml(files, 1700000000));
    for (const f of files) {
      const gzSha = createHash('sha256').update(f.gz).digest('hex');
      assert.equal(f.href, `repodata/${gzSha}-${f.type}.xml.gz`);
      const open = gunzipSync(f.gz);
      assert.equal(f.openSha256, createHash('sha256').update(open).digest('hex'));
      const d = md.repomd.data.find((x: { '@_type': string }) => x['@_type'] === f.type);
      assert.equal(d.checksum['#text'], gzSha);
      assert.equal(Number(d.size), f.gz.length);
      assert.equal(Number(d['open-size']), open.length);
      assert.match(open.toString(), /packages="1"/);
    }
  });
});
