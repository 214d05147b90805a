import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import {
  NpmInputError,
  applyPublish,
  applyUpdate,
  invalidTag,
  invalidVersion,
  mergePackuments,
  parsePackument,
  parsePublish,
  setDistTag,
  type Packument,
} from '../../formats/npm/packument.js';
import { own, parseClientJson } from '../../formats/npm/safe-json.js';
import { searchAttributes, searchPackage } from '../../formats/npm/search.js';
import { tarballRefusal } from '../../formats/npm/validate.js';
import { validateMetadata } from '../../formats/npm/proxy.js';
import type { RepositoryConfig } from '../../src/repository/types.js';
import { publishBody } from '../helpers/npm-gen.js';

const PROTO_BEFORE = Object.getOwnPropertyNames(Object.prototype).sort();
const clean = () => assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), PROTO_BEFORE);

const existing = (): Packument => ({
  _id: 'p',
  name: 'p',
  'dist-tags': { latest: '1.0.0' },
  versions: { '1.0.0': { name: 'p', version: '1.0.0' } },
  time: { '1.0.0': '2020-01-01T00:00:00.000Z' },
});

describe('npm JSON used as maps', () => {
  it('client JSON with __proto__ anywhere is refused; own() never answers inherited members', () => {
    assert.throws(() => parseClientJson('{"a":{"b":[{"__proto__":{"x":1}}]}}'), NpmInputError);
    assert.deepEqual(parseClientJson('{"a":"__proto__"}'), { a: '__proto__' });
    const m = { a: 1 };
    assert.equal(own(m, 'a'), 1);
    assert.equal(own(m, 'constructor'), undefined);
    assert.equal(own(m, 'toString'), undefined);
    assert.equal(own(null, 'a'), undefined);
  });

  it('applyUpdate refuses prototype keys and never writes Object.prototype (the issue body)', () => {
    const body = JSON.parse('{"name":"p","versions":{"1.0.0":{},"__proto__":{"deprecated":"x"}}}');
    assert.throws(() => applyUpdate(existing(), body, new Date()), /__proto__/);
    for (const k of ['constructor', 'prototype']) {
      assert.throws(() => applyUpdate(existing(), { name: 'p', versions: { '1.0.0': {}, [k]: { deprecated: 'x' } } }, new Date()), new RegExp(k));
      assert.throws(() => applyUpdate(existing(), { name: 'p', versions: { '1.0.0': {} }, 'dist-tags': { [k]: '1.0.0' } }, new Date()), new RegExp(k));
    }
    assert.equal(({} as Record<string, unknown>).deprecated, undefined);
    clean();
  });

  it('setDistTag refuses prototype tag names and versions that are not own entries', () => {
    for (const t of ['constructor', 'prototype', '__proto__']) assert.throws(() => setDistTag(existing(), t, '1.0.0', new Date()), /invalid dist-tag/);
    assert.throws(() => setDistTag(existing(), 'beta', 'constructor', new Date()), /does not exist/);
    assert.throws(() => setDistTag(existing(), 'beta', 'toString', new Date()), /does not exist/);
    assert.equal(invalidTag('next'), null);
  });

  it('parsePackument drops prototype keys of a foreign document; merge keeps them out', () => {
    const text =
      '{"name":"p","__proto__":{"deprecated":"x"},"dist-tags":{"latest":"1.0.0","constructor":"1.0.0","__proto__":"1.0.0"},' +
      '"versions":{"1.0.0":{"name":"p","__proto__":{"y":1}},"__proto__":{"deprecated":"x"},"constructor":{},"prototype":{}},' +
      '"time":{"1.0.0":"t","constructor":"x"},"users":{"constructor":true}}';
    const doc = parsePackument(text);
    assert.deepEqual(Object.keys(doc.versions), ['1.0.0']);
    assert.deepEqual(Object.keys(doc['dist-tags']), ['latest']);
    assert.deepEqual(Object.keys(doc.time!), ['1.0.0']);
    assert.deepEqual(Object.keys(doc.users as object), []);
    assert.equal(Object.getPrototypeOf(doc), Object.prototype);
    assert.equal(Object.getPrototypeOf(doc.versions), Object.prototype);
    assert.equal(Object.hasOwn(doc.versions['1.0.0'], '__proto__'), false);
    const merged = mergePackuments([doc, parsePackument(text)]);
    assert.deepEqual(Object.keys(merged.versions), ['1.0.0']);
    clean();
  });
});

describe('npm publish validation', () => {
  it('versions must be semver without a prefix', () => {
    for (const v of ['1', 'latest', 'v1.0.0', '1..0', '.', '-', '01.0.0', 'constructor', '1.0.0 ', '=1.0.0', '1.0']) assert.ok(invalidVersion(v), v);
    for (const v of ['0.0.0', '1.2.3', '1.0.0-rc.1', '1.0.0-alpha+build.5', '10.20.30']) assert.equal(invalidVersion(v), null, v);
    assert.throws(() => parsePublish(publishBody({ name: 'p', version: 'v1.0.0' }, 'http://r/'), 'p'), /semantic version/);
  });

  it('dist-tags of a publish must name a version of the resulting document', () => {
    const body = publishBody({ name: 'p', version: '2.0.0' }, 'http://r/');
    body['dist-tags'] = { latest: '9.9.9' };
    const p = parsePublish(body, 'p');
    assert.throws(() => applyPublish(existing(), 'p', p, new Date()), /latest points at 9\.9\.9/);
    body['dist-tags'] = { latest: '2.0.0', old: '1.0.0' };
    const doc = applyPublish(existing(), 'p', parsePublish(body, 'p'), new Date());
    assert.deepEqual(doc['dist-tags'], { latest: '2.0.0', old: '1.0.0' });
    body['dist-tags'] = { constructor: '2.0.0' };
    assert.throws(() => parsePublish(body, 'p'), /constructor/);
  });

  it('tarballs must be gzip under strict content type validation', () => {
    const strict = { storage: { blobStoreName: 'default', strictContentTypeValidation: true } } as RepositoryConfig;
    const lax = { storage: { blobStoreName: 'default', strictContentTypeValidation: false } } as RepositoryConfig;
    const html = Buffer.from('<!DOCTYPE html><html></html>');
    assert.match(tarballRefusal(strict, '@s/p', '1.0.0', 'p-1.0.0.tgz', html)!, /@s\/p@1\.0\.0 is not a gzip'd tar archive: Detected content type \[text\/html\]/);
    assert.equal(tarballRefusal(lax, 'p', '1.0.0', 'p-1.0.0.tgz', html), null);
    assert.equal(tarballRefusal(strict, 'p', '1.0.0', 'p-1.0.0.tgz', gzipSync(Buffer.from('x'))), null);
  });
});

describe('npm search fields', () => {
  it('keeps description, keywords, maintainers and publisher; search results always hold maintainers and keywords', () => {
    assert.deepEqual(searchAttributes({ description: 'd', keywords: ['a', 3, 'b'], maintainers: ['Bob <bob@x.org> (http://b)', { name: 'al' }, 7] }, 'admin'), {
      description: 'd',
      keywords: ['a', 'b'],
      maintainers: [{ username: 'Bob', email: 'bob@x.org' }, { username: 'al' }],
      publisher: { username: 'admin' },
    });
    assert.deepEqual(searchAttributes({ keywords: 'x, y z' }, 'u'), { keywords: ['x', 'y', 'z'], maintainers: [{ username: 'u' }], publisher: { username: 'u' } });
    assert.deepEqual(searchAttributes({}, null), {});
    const pkg = searchPackage('@s/p', { namespace: 's', version: '1.0.0', created: 0, attributes: {} });
    assert.deepEqual(pkg.maintainers, []);
    assert.deepEqual(pkg.keywords, []);
    assert.equal(pkg.description, '');
    assert.equal(pkg.scope, 's');
  });
});

describe('npm proxy metadata validation', () => {
  const open = (s: string) => () => Promise.resolve(Readable.from([Buffer.from(s)]));
  it('refuses what is not a packument of the package asked for; ignores tarball paths', async () => {
    assert.equal(await validateMetadata('p', open('{"name":"p","versions":{}}')), null);
    assert.equal(await validateMetadata('@s/p', open('{"name":"@s/p"}')), null);
    assert.match((await validateMetadata('p', open('<!DOCTYPE html><html>')))!, /not valid JSON/);
    assert.match((await validateMetadata('p', open('{"name":"p","versions":{"1.0.0":')))!, /not valid JSON/);
    assert.match((await validateMetadata('p', open('[]')))!, /not an object/);
    assert.match((await validateMetadata('p', open('{"error":"x"}')))!, /no name/);
    assert.match((await validateMetadata('p', open('{"name":"q"}')))!, /document of "q"/);
    assert.equal(await validateMetadata('p/-/p-1.0.0.tgz', open('<html>')), null);
  });
});
