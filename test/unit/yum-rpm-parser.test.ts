/**
 * The RPM parser against rpm itself: packages built by rpmbuild here, every field compared with
 * `rpm -qp --queryformat`; the streaming inspector against the pure parser; corrupt, truncated
 * and foreign files refused with RpmFormatError.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { buildRpms, run } from '../helpers/rpm.js';
import { headersLength, RpmFormatError, RpmInspector, readRpmHeaders } from '../../formats/yum/rpm-header.js';
import { packageFromHeaders, parseRpm, splitEvr, type RpmPackage } from '../../formats/yum/rpm-package.js';

let work: string;
let foo: string;
let bar: string;

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'stowage-rpmparse-'));
  [foo, bar] = await buildRpms(work, [
    {
      name: 'pfoo',
      version: '1.2.3',
      release: '4.test',
      epoch: 2,
      requires: ['pbar >= 1:1.0-2', 'pbaz'],
      requiresPre: ['coreutils'],
      provides: ['pfoo-api = 3.1'],
      conflicts: ['pold < 1'],
      obsoletes: ['polder <= 0.9'],
      recommends: ['prec'],
      suggests: ['psug > 2'],
      supplements: ['psup'],
      enhances: ['penh'],
      changelog: [
        { date: 'Tue Jan 02 2024', author: 'B <b@example.test> - 1.2.3-4', text: '- Second' },
        { date: 'Mon Jan 01 2024', author: 'A <a@example.test> - 1.0-1', text: '- First' },
      ],
    },
    { name: 'pbar', version: '0.1' },
  ]);
});
after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function rpmQuery(file: string, fmt: string): Promise<string> {
  return (await run('rpm', ['-qp', '--nosignature', '--nodigest', '--qf', fmt, file])).stdout;
}

function deps(p: RpmPackage, kind: keyof RpmPackage['deps']): string[] {
  return p.deps[kind].map((d) => {
    if (!d.flags) return d.name;
    const op = { EQ: '=', LT: '<', LE: '<=', GT: '>', GE: '>=' }[d.flags];
    const evr = `${d.epoch !== '0' ? `${d.epoch}:` : ''}${d.ver}${d.rel !== undefined ? `-${d.rel}` : ''}`;
    return `${d.name} ${op} ${evr}`;
  });
}

describe('RPM parser', () => {
  it('reads what rpm reads: NEVRA, descriptions, sizes, times and header range', async () => {
    const p = parseRpm(await readFile(foo));
    const fields: Array<[keyof RpmPackage, string]> = [
      ['name', 'NAME'],
      ['epoch', 'EPOCH'],
      ['version', 'VERSION'],
      ['release', 'RELEASE'],
      ['arch', 'ARCH'],
      ['summary', 'SUMMARY'],
      ['url', 'URL'],
      ['license', 'LICENSE'],
      ['vendor', 'VENDOR'],
      ['group', 'GROUP'],
      ['buildhost', 'BUILDHOST'],
      ['sourcerpm', 'SOURCERPM'],
      ['packager', 'PACKAGER'],
      ['buildTime', 'BUILDTIME'],
      ['installedSize', 'LONGSIZE'],
      ['archiveSize', 'LONGARCHIVESIZE'],
    ];
    const values = (await rpmQuery(foo, fields.map(([, t]) => `%{${t}}\\n`).join(''))).split('\n');
    for (const [i, [key]] of fields.entries()) assert.equal(String(p[key]), values[i], key);
    assert.equal(p.description, (await rpmQuery(foo, '%{DESCRIPTION}')).trim());
    // The main header starts after the 96-byte lead and the 8-aligned signature header; rpm's
    // own digest of it (SHA256HEADER) must match the bytes we say it spans.
    const buf = await readFile(foo);
    const { createHash } = await import('node:crypto');
    const digest = createHash('sha256').update(buf.subarray(p.headerStart, p.headerEnd)).digest('hex');
    assert.equal(digest, (await rpmQuery(foo, '%{SHA256HEADER}')).trim());
  });

  it('reads every dependency kind with flags, EVR and pre, as rpm lists them', async () => {
    const p = parseRpm(await readFile(foo));
    const kinds = {
      provides: 'PROVIDE',
      requires: 'REQUIRE',
      conflicts: 'CONFLICT',
      obsoletes: 'OBSOLETE',
      recommends: 'RECOMMEND',
      suggests: 'SUGGEST',
      supplements: 'SUPPLEMENT',
      enhances: 'ENHANCE',
    } as const;
    for (const [kind, tag] of Object.entries(kinds)) {
      const want = (await rpmQuery(foo, `[%{${tag}NEVRS}\\n]`)).split('\n').filter(Boolean);
      assert.deepEqual(deps(p, kind as keyof RpmPackage['deps']), want, kind);
    }
    assert.ok(p.deps.requires.some((d) => d.name === 'pbar' && d.flags === 'GE' && d.epoch === '1' && d.ver === '1.0' && d.rel === '2'));
    assert.deepEqual(
      p.deps.requires.filter((d) => d.pre).map((d) => d.name),
      ['coreutils'],
    );
    assert.ok(
      p.deps.requires.some((d) => d.name.startsWith('rpmlib(')),
      'the parser keeps rpmlib() requires (repodata leaves them out)',
    );
  });

  it('reads files with directories and ghosts, and the changelog', async () => {
    const p = parseRpm(await readFile(foo));
    const want = (await rpmQuery(foo, '[%{FILENAMES}\\n]')).split('\n').filter(Boolean);
    assert.deepEqual(
      p.files.map((f) => f.path),
      want,
    );
    assert.deepEqual(
      p.files.filter((f) => f.type === 'dir').map((f) => f.path),
      ['/usr/share/pfoo', '/usr/share/pfoo/data'],
    );
    assert.deepEqual(
      p.files.filter((f) => f.type === 'ghost').map((f) => f.path),
      ['/var/log/pfoo.log'],
    );
    assert.deepEqual(
      p.changelog.map((c) => [c.author, c.text]),
      [
        ['B <b@example.test> - 1.2.3-4', '- Second'],
        ['A <a@example.test> - 1.0-1', '- First'],
      ],
    );
    assert.equal(p.changelog[0].date, Number((await rpmQuery(foo, '%{CHANGELOGTIME}')).trim()));
  });

  it('finds the same headers streaming, whatever the chunk size', async () => {
    const buf = await readFile(bar);
    const pure = parseRpm(buf);
    for (const size of [1, 7, 96, 4096, buf.length]) {
      const chunks = [];
      for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
      const inspector = new RpmInspector();
      let passed = 0;
      await pipeline(Readable.from(chunks), inspector, new Writable({ write: (c, _e, cb) => ((passed += c.length), cb()) }));
      assert.equal(passed, buf.length, 'every byte passes through');
      assert.deepEqual(packageFromHeaders(await inspector.result), pure, `chunks of ${size}`);
    }
    assert.equal(headersLength(buf.subarray(0, 50)), null);
    assert.equal(headersLength(buf), pure.headerEnd);
  });

  it('refuses a file that is not an RPM, a corrupt header and a truncated file with RpmFormatError', async () => {
    const buf = await readFile(bar);
    const refuse = async (bytes: Buffer, msg: RegExp) => {
      const inspector = new RpmInspector();
      await assert.rejects(
        pipeline(Readable.from([bytes]), inspector, new Writable({ write: (_c, _e, cb) => cb() })).then(() => inspector.result),
        (e: Error) => e instanceof RpmFormatError && msg.test(e.message),
      );
    };
    await refuse(Buffer.from('PK\x03\x04 a zip file, not an rpm'.repeat(10)), /Not an RPM/);
    await refuse(buf.subarray(0, 500), /Truncated/);
    await refuse(buf.subarray(0, buf.length - 1), /Truncated or damaged/);
    const badMagic = Buffer.from(buf);
    badMagic[96] = 0; // the signature header's magic
    await refuse(badMagic, /bad header magic/);
    // An index entry whose offset points outside the data store.
    const badOffset = Buffer.from(buf);
    const { headerStart } = readRpmHeaders(buf);
    badOffset.writeInt32BE(0x7fffff00, headerStart + 16 + 8);
    assert.throws(() => parseRpm(badOffset), RpmFormatError);
    // Impossibly many entries.
    const huge = Buffer.from(buf);
    huge.writeUInt32BE(0xffffff, headerStart + 8);
    assert.throws(() => parseRpm(huge), /impossible size/);
  });

  it('splits EVR strings as rpm does', () => {
    assert.deepEqual(splitEvr('1:2.0-3'), { epoch: '1', ver: '2.0', rel: '3' });
    assert.deepEqual(splitEvr('2.0'), { epoch: undefined, ver: '2.0' });
    assert.deepEqual(splitEvr('2.0-3.el9-x'), { epoch: undefined, ver: '2.0-3.el9', rel: 'x' });
  });
});
