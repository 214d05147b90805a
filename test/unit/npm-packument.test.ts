import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  NpmInputError,
  abbreviate,
  applyPublish,
  applyUpdate,
  invalidName,
  mergePackuments,
  parsePackagePath,
  parsePublish,
  rewriteTarballs,
  setDistTag,
  tarballBasename,
  versionOfFile,
  type Packument,
} from '../../formats/npm/packument.js';
import { groupMembers, isMetadata, proxyAsset, upstreamUrl } from '../../formats/npm/proxy.js';
import { publishBody } from '../helpers/npm-gen.js';

const doc = (name: string, versions: Record<string, Record<string, unknown>>, tags: Record<string, string>, time: Record<string, string> = {}): Packument => ({
  _id: name,
  name,
  'dist-tags': tags,
  versions: Object.fromEntries(Object.entries(versions).map(([v, m]) => [v, { name, version: v, ...m }])),
  time,
});

describe('npm names and paths', () => {
  it('validates names as npm does', () => {
    for (const ok of ['lodash', '@babel/core', 'a-b.c_d', '~tilde', 'JSONStream']) assert.equal(invalidName(ok), null, ok);
    for (const bad of ['', '.hidden', '_under', 'a b', '@scope', '@/x', 'a/b', 'x'.repeat(215), 'node_modules', 'é']) assert.notEqual(invalidName(bad), null, bad);
    assert.notEqual(invalidName('JSONStream', true), null, 'new packages must be lowercase');
  });

  it('splits repository paths into package and rest', () => {
    assert.deepEqual(parsePackagePath('@scope/name'), { name: '@scope/name', rest: [] });
    assert.deepEqual(parsePackagePath('@scope/name/-/name-1.0.0.tgz'), { name: '@scope/name', rest: ['-', 'name-1.0.0.tgz'] });
    assert.deepEqual(parsePackagePath('lodash/-rev/3-abc'), { name: 'lodash', rest: ['-rev', '3-abc'] });
    assert.equal(parsePackagePath('-/ping'), null);
    assert.equal(parsePackagePath('@scope'), null);
    assert.equal(versionOfFile('@s/name', 'name-1.2.3-beta.1.tgz'), '1.2.3-beta.1');
    assert.equal(versionOfFile('name', 'other-1.0.0.tgz'), null);
    assert.equal(isMetadata('@s/n'), true);
    assert.equal(isMetadata('@s/n/-/n-1.0.0.tgz'), false);
    assert.deepEqual(proxyAsset('@s/n/-/n-1.0.0.tgz').component, { namespace: 's', name: 'n', version: '1.0.0' });
  });

  it('asks upstream for scoped packuments as @scope%2fname, tarballs by path', () => {
    assert.equal(upstreamUrl('https://registry.example/', '@scope/name'), 'https://registry.example/@scope%2fname');
    assert.equal(upstreamUrl('https://registry.example', 'lodash'), 'https://registry.example/lodash');
    assert.equal(upstreamUrl('https://r.example/npm/', '@s/n/-/n-1.0.0.tgz'), 'https://r.example/npm/@s/n/-/n-1.0.0.tgz');
  });
});

describe('tarball URL rewriting', () => {
  it('points every version at the addressed repository, keeping file names and digests', () => {
    const d = doc(
      '@s/n',
      { '1.0.0': { dist: { tarball: 'https://registry.npmjs.org/@s/n/-/n-1.0.0.tgz', integrity: 'sha512-x', shasum: 'ab' } }, '2.0.0': { dist: {} } },
      { latest: '2.0.0' },
    );
    const out = rewriteTarballs(d, 'http://h:1/repository/grp/');
    assert.equal(out.versions['1.0.0'].dist!.tarball, 'http://h:1/repository/grp/@s/n/-/n-1.0.0.tgz');
    assert.equal(out.versions['1.0.0'].dist!.integrity, 'sha512-x');
    assert.equal(out.versions['2.0.0'].dist!.tarball, 'http://h:1/repository/grp/@s/n/-/n-2.0.0.tgz');
    assert.equal(d.versions['1.0.0'].dist!.tarball, 'https://registry.npmjs.org/@s/n/-/n-1.0.0.tgz', 'input untouched');
    assert.equal(tarballBasename('http://x/a/-/a-1.0.0.tgz?y=1', 'a', '1.0.0'), 'a-1.0.0.tgz');
    assert.equal(tarballBasename(undefined, '@s/a', '1.0.0'), 'a-1.0.0.tgz');
  });
});

describe('abbreviated documents', () => {
  it('keeps what installers need and drops the rest', () => {
    const d = doc(
      'n',
      { '1.0.0': { readme: 'long', description: 'd', dependencies: { a: '1' }, scripts: { postinstall: 'x' }, dist: { tarball: 't' }, deprecated: 'old' } },
      { latest: '1.0.0' },
      { modified: '2024-01-01T00:00:00.000Z' },
    );
    const c = abbreviate(d) as { modified: string; versions: Record<string, Record<string, unknown>> };
    assert.equal(c.modified, '2024-01-01T00:00:00.000Z');
    assert.deepEqual(Object.keys(c.versions['1.0.0']).sort(), ['dependencies', 'deprecated', 'dist', 'hasInstallScript', 'name', 'version']);
    assert.equal(c.versions['1.0.0'].hasInstallScript, true);
  });
});

describe('publish and updates', () => {
  const body = (version: string, tag = 'latest') => publishBody({ name: '@s/n', version }, 'http://r/', { tag });

  it('merges a publish into the packument', () => {
    const p1 = parsePublish(body('1.0.0'), '@s/n');
    assert.equal(p1.attachment.file, 'n-1.0.0.tgz');
    const d1 = applyPublish(null, '@s/n', p1, new Date('2024-01-01T00:00:00Z'));
    assert.deepEqual(d1['dist-tags'], { latest: '1.0.0' });
    assert.equal(d1.time!.created, '2024-01-01T00:00:00.000Z');
    assert.equal(d1.versions['1.0.0'].dist!.tarball, 'n-1.0.0.tgz');
    assert.equal(d1._attachments, undefined);
    const d2 = applyPublish(d1, '@s/n', parsePublish(body('2.0.0-rc.1', 'next'), '@s/n'), new Date('2024-02-01T00:00:00Z'));
    assert.deepEqual(d2['dist-tags'], { latest: '1.0.0', next: '2.0.0-rc.1' });
    assert.equal(d2.time!.modified, '2024-02-01T00:00:00.000Z');
    assert.notEqual(d2._rev, d1._rev);
    assert.throws(() => parsePublish({ ...body('1.0.0'), name: 'other' }, '@s/n'), NpmInputError);
    assert.throws(() => parsePublish({ ...body('1.0.0'), _attachments: {} }, '@s/n'), NpmInputError);
  });

  it('unpublishes versions and fixes dist-tags; deprecates', () => {
    const d = doc('n', { '1.0.0': {}, '2.0.0': {} }, { latest: '2.0.0', beta: '2.0.0' }, { '1.0.0': '2024-01-01', '2.0.0': '2024-02-01' });
    const { doc: out, removed } = applyUpdate(d, { versions: { '1.0.0': { deprecated: 'no' } }, 'dist-tags': { latest: '2.0.0', beta: '2.0.0' } }, new Date());
    assert.deepEqual(removed, ['2.0.0']);
    assert.deepEqual(out['dist-tags'], { latest: '1.0.0' });
    assert.equal(out.versions['1.0.0'].deprecated, 'no');
    assert.equal(out.time!['2.0.0'], undefined);
    assert.throws(() => applyUpdate(d, { versions: { '3.0.0': {} } }, new Date()), NpmInputError);
    assert.throws(() => setDistTag(d, 'x', '9.9.9', new Date()), NpmInputError);
    assert.throws(() => setDistTag(d, '1.0', '1.0.0', new Date()), NpmInputError);
    assert.deepEqual(setDistTag(d, 'beta', null, new Date())['dist-tags'], { latest: '2.0.0' });
  });
});

describe('group merge', () => {
  it('unions versions (first member wins), tags by member order, times merged', () => {
    const a = doc('n', { '1.0.0': { dist: { integrity: 'A' } } }, { latest: '1.0.0' }, { created: '2020', modified: '2021', '1.0.0': '2020' });
    const b = doc(
      'n',
      { '1.0.0': { dist: { integrity: 'B' } }, '2.0.0': {} },
      { latest: '2.0.0', next: '2.0.0' },
      { created: '2019', modified: '2023', '1.0.0': '2019', '2.0.0': '2023' },
    );
    const m = mergePackuments([a, b]);
    assert.deepEqual(Object.keys(m.versions).sort(), ['1.0.0', '2.0.0']);
    assert.equal(m.versions['1.0.0'].dist!.integrity, 'A');
    assert.deepEqual(m['dist-tags'], { latest: '1.0.0', next: '2.0.0' });
    assert.deepEqual(m.time, { created: '2020', modified: '2023', '1.0.0': '2020', '2.0.0': '2023' });
  });

  it('routes a pinned scope to its members only', () => {
    const members = ['hosted', 'proxy'].map((name) => ({ name }) as never);
    const group = { section: () => ({ scopes: { '@corp': ['hosted'] } }) } as never;
    assert.deepEqual(
      groupMembers('@corp/x', members, group).map((m: { name: string }) => m.name),
      ['hosted'],
    );
    assert.deepEqual(
      groupMembers('@corp/x/-/x-1.0.0.tgz', members, group).map((m: { name: string }) => m.name),
      ['hosted'],
    );
    assert.deepEqual(
      groupMembers('@other/x', members, group).map((m: { name: string }) => m.name),
      ['hosted', 'proxy'],
    );
    assert.deepEqual(
      groupMembers('plain', members, group).map((m: { name: string }) => m.name),
      ['hosted', 'proxy'],
    );
  });
});
