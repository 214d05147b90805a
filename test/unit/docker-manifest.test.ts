/** The docker format's pure parsers: name, tag and digest grammar, route table, manifests, paging. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  MT_DOCKER_LIST,
  MT_DOCKER_MANIFEST,
  MT_OCI_INDEX,
  MT_OCI_MANIFEST,
  ManifestError,
  bareMediaType,
  extraTags,
  isInvertedRange,
  isValidDigest,
  isValidName,
  isValidTag,
  page,
  parseChunkRange,
  parseManifest,
  parsePageSize,
  referrerArtifactType,
} from '../../formats/docker/manifest.js';
import { parseReferrersIndex, referrersIndex, referrersScope } from '../../formats/docker/referrers.js';
import { docker } from '../../formats/docker/index.js';

const D = (c: string) => 'sha256:' + c.repeat(64);

describe('docker name, tag and digest grammar', () => {
  it('accepts distribution names', () => {
    for (const n of ['a', 'library/nginx', 'a.b_c__d-e---f', 'x/y/z', 'blobs/manifests', 'a0/b1']) assert.ok(isValidName(n), n);
  });
  it('refuses bad names', () => {
    for (const n of ['', 'A', 'a/', '/a', 'a//b', 'a..b', '-a', 'a_', 'a___b', 'x'.repeat(256), 'a b']) assert.ok(!isValidName(n), n);
  });
  it('accepts and refuses tags', () => {
    for (const t of ['latest', 'v1.0', '_x', 'A-b.c_d', 'x'.repeat(128)]) assert.ok(isValidTag(t), t);
    for (const t of ['', '.x', '-x', 'x'.repeat(129), 'a:b', 'a/b']) assert.ok(!isValidTag(t), t);
  });
  it('accepts sha256 and sha512 digests only', () => {
    assert.ok(isValidDigest(D('a')));
    assert.ok(isValidDigest('sha512:' + 'b'.repeat(128)));
    for (const d of ['sha256:' + 'a'.repeat(63), 'sha256:' + 'A'.repeat(64), 'md5:abc', 'sha256:totallywrong', 'sha512:' + 'b'.repeat(64)]) assert.ok(!isValidDigest(d), d);
  });
});

describe('docker route table', () => {
  /** The endpoint a repository path is: the first row's params, and the methods of every row matching it. */
  const endpoint = (path: string) => {
    const rows = docker.routes.filter((r) => r.path.test(path));
    if (rows.length === 0) return 'unknown';
    return {
      params: { ...rows[0].path.exec(path)!.groups },
      methods: rows
        .flatMap((r) => r.methods)
        .sort()
        .join(','),
    };
  };
  it('matches every endpoint, anchored at the end', () => {
    assert.deepEqual(endpoint('v2/'), { params: {}, methods: 'GET' });
    assert.deepEqual(endpoint('v2'), { params: {}, methods: 'GET' });
    assert.deepEqual(endpoint('v2/_catalog'), { params: {}, methods: 'GET' });
    assert.deepEqual(endpoint('v2/token'), { params: {}, methods: 'GET' });
    assert.deepEqual(endpoint('v2/a/b/tags/list'), { params: { name: 'a/b' }, methods: 'GET' });
    assert.deepEqual(endpoint('v2/a/blobs/uploads/'), { params: { name: 'a' }, methods: 'POST' });
    assert.deepEqual(endpoint('v2/a/blobs/uploads'), { params: { name: 'a' }, methods: 'POST' });
    assert.deepEqual(endpoint('v2/a/blobs/uploads/u-1'), { params: { name: 'a', uuid: 'u-1' }, methods: 'DELETE,GET,PATCH,PUT' });
    assert.deepEqual(endpoint(`v2/x/blobs/y/blobs/${D('a')}`), { params: { name: 'x/blobs/y', digest: D('a') }, methods: 'DELETE,GET' });
    assert.deepEqual(endpoint('v2/manifests/manifests/latest'), { params: { name: 'manifests', reference: 'latest' }, methods: 'DELETE,GET,PUT' });
    assert.deepEqual(endpoint('v2/a/other'), 'unknown');
    assert.deepEqual(endpoint('v2/a/blobs/uploadsx'), { params: { name: 'a', digest: 'uploadsx' }, methods: 'DELETE,GET' });
    assert.deepEqual(endpoint(`v2/a/b/referrers/${D('a')}`), { params: { name: 'a/b', digest: D('a') }, methods: 'GET' });
    assert.deepEqual(endpoint(`v2/referrers/referrers/${D('a')}`), { params: { name: 'referrers', digest: D('a') }, methods: 'GET' });
    assert.deepEqual(endpoint(`v2/a/referrers/${D('a')}/x`), 'unknown');
  });
});

describe('docker manifests', () => {
  const image = (mediaType?: string, extra: Record<string, unknown> = {}) =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        ...(mediaType ? { mediaType } : {}),
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: D('c'), size: 2, data: 'e30=', newUnspecifiedField: null },
        layers: [
          { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D('1'), size: 10 },
          { mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', digest: D('2'), size: 10 },
          { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: D('3'), size: 10, urls: ['https://x'] },
        ],
        ...extra,
      }),
    );

  it('takes the media type from the body, else the Content-Type without parameters', () => {
    assert.equal(parseManifest(image(MT_DOCKER_MANIFEST), MT_OCI_MANIFEST).mediaType, MT_DOCKER_MANIFEST);
    assert.equal(parseManifest(image(), `${MT_OCI_MANIFEST}; charset=utf-8`).mediaType, MT_OCI_MANIFEST);
    assert.equal(parseManifest(image(), undefined).mediaType, MT_OCI_MANIFEST);
    assert.equal(bareMediaType('a/b ; x=y'), 'a/b');
  });

  it('lists config and distributable layers, and the subject', () => {
    const m = parseManifest(image(MT_OCI_MANIFEST, { subject: { mediaType: MT_OCI_MANIFEST, digest: D('5'), size: 3 } }), undefined);
    assert.equal(m.isIndex, false);
    assert.deepEqual(
      m.blobs.map((b) => b.digest),
      [D('c'), D('1')],
    );
    assert.equal(m.subject?.digest, D('5'));
  });

  it('lists the children of manifest lists and indexes', () => {
    for (const mt of [MT_DOCKER_LIST, MT_OCI_INDEX]) {
      const body = Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: mt, manifests: [{ mediaType: MT_OCI_MANIFEST, digest: D('d'), size: 5, platform: { os: 'linux' } }] }),
      );
      const m = parseManifest(body, mt);
      assert.equal(m.isIndex, true);
      assert.equal(m.mediaType, mt);
      assert.deepEqual(
        m.manifests.map((d) => d.digest),
        [D('d')],
      );
      assert.deepEqual(m.blobs, []);
    }
  });

  it('accepts an image without layers', () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'x', digest: D('c'), size: 2 }, layers: [] }));
    assert.deepEqual(
      parseManifest(body, MT_OCI_MANIFEST).blobs.map((b) => b.digest),
      [D('c')],
    );
  });

  it('refuses malformed manifests with MANIFEST_INVALID', () => {
    const bad = [
      '{',
      '[]',
      '"x"',
      JSON.stringify({ schemaVersion: 1 }),
      JSON.stringify({ schemaVersion: 2, mediaType: MT_OCI_MANIFEST }),
      JSON.stringify({ schemaVersion: 2, config: { digest: 'sha256:nope' } }),
      JSON.stringify({ schemaVersion: 2, mediaType: MT_OCI_INDEX, manifests: 'x' }),
    ];
    for (const b of bad) {
      assert.throws(
        () => parseManifest(Buffer.from(b), MT_OCI_MANIFEST),
        (e: unknown) => e instanceof ManifestError && e.code === 'MANIFEST_INVALID',
        b,
      );
    }
  });
});

describe('docker referrers (OCI 1.1)', () => {
  const cfg = (mediaType: string) => ({ mediaType, digest: D('c'), size: 2 });
  const parse = (o: Record<string, unknown>) => parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, ...o })), undefined);

  it('reads artifactType, the config media type and annotations exactly', () => {
    const m = parse({
      mediaType: MT_OCI_MANIFEST,
      artifactType: 'application/x.sbom',
      config: cfg('application/vnd.oci.empty.v1+json'),
      layers: [],
      annotations: { a: '1', 'org.b': '' },
    });
    assert.equal(m.artifactType, 'application/x.sbom');
    assert.equal(m.configMediaType, 'application/vnd.oci.empty.v1+json');
    assert.deepEqual(m.annotations, { a: '1', 'org.b': '' });
    assert.equal(referrerArtifactType(m), 'application/x.sbom');
  });

  it('falls back to config.mediaType for an image, and to nothing for an index without artifactType', () => {
    assert.equal(
      referrerArtifactType(parse({ mediaType: MT_OCI_MANIFEST, config: cfg('application/vnd.nhl.peanut.butter.bagel'), layers: [] })),
      'application/vnd.nhl.peanut.butter.bagel',
    );
    const idx = parse({ mediaType: MT_OCI_INDEX, manifests: [] });
    assert.equal(referrerArtifactType(idx), undefined);
    assert.equal(idx.annotations, undefined);
    assert.equal(referrerArtifactType(parse({ mediaType: MT_OCI_INDEX, artifactType: 'x/y', manifests: [] })), 'x/y');
  });

  it('refuses a non-string artifactType and non-string annotations', () => {
    for (const o of [{ artifactType: 5 }, { annotations: { a: 1 } }, { annotations: ['a'] }, { annotations: 'a' }]) {
      assert.throws(
        () => parse({ mediaType: MT_OCI_MANIFEST, config: cfg('x/y'), layers: [], ...o }),
        (e: unknown) => e instanceof ManifestError && e.code === 'MANIFEST_INVALID',
        JSON.stringify(o),
      );
    }
  });

  it('renders the index, filtered by artifact type, annotations as stored and nothing added', () => {
    const list = [
      { mediaType: MT_OCI_MANIFEST, digest: D('1'), size: 10, artifactType: 'a/b', annotations: { k: 'v' } },
      { mediaType: MT_OCI_INDEX, digest: D('2'), size: 20 },
      { mediaType: MT_OCI_MANIFEST, digest: D('3'), size: 30, artifactType: 'c/d' },
    ];
    assert.equal(referrersIndex(list), JSON.stringify({ schemaVersion: 2, mediaType: MT_OCI_INDEX, manifests: list }));
    assert.deepEqual(JSON.parse(referrersIndex(list, 'c/d')).manifests, [list[2]]);
    assert.deepEqual(JSON.parse(referrersIndex([], 'c/d')), { schemaVersion: 2, mediaType: MT_OCI_INDEX, manifests: [] });
  });

  it('reads an upstream index, dropping malformed entries', () => {
    const good = { mediaType: MT_OCI_MANIFEST, digest: D('1'), size: 10 };
    assert.deepEqual(parseReferrersIndex(Buffer.from(JSON.stringify({ manifests: [good, { digest: 5 }, null, 'x'] }))), [good]);
    assert.deepEqual(parseReferrersIndex(Buffer.from('not json')), []);
    assert.deepEqual(parseReferrersIndex(Buffer.from('{"manifests":null}')), []);
  });

  it('keeps referrer rows in a tags scope no image name can have', () => {
    assert.equal(referrersScope('a/b', D('1')), `a/b@${D('1')}`);
    assert.ok(!isValidName(referrersScope('a/b', D('1'))));
  });

  it('checks ?tag= values and inverted ranges', () => {
    assert.deepEqual(extraTags(['a', 'b', 'a']), { tags: ['a', 'b'] });
    assert.deepEqual(extraTags([]), { tags: [] });
    assert.equal(extraTags(['ok', '-bad']).invalid, '-bad');
    assert.equal(extraTags(['x'.repeat(129)]).invalid, 'x'.repeat(129));
    assert.ok(isInvertedRange('bytes=500-0'));
    assert.ok(!isInvertedRange('bytes=0-500'));
    assert.ok(!isInvertedRange('bytes=-500'));
    assert.ok(!isInvertedRange(undefined));
  });
});

describe('docker paging and chunk ranges', () => {
  it('pages in byte order after last, with more when entries remain', () => {
    const names = ['b', 'a', 'C', 'c', 'B'];
    assert.deepEqual(page(names, undefined, undefined), { items: ['B', 'C', 'a', 'b', 'c'], more: false });
    assert.deepEqual(page(names, 2, undefined), { items: ['B', 'C'], more: true });
    assert.deepEqual(page(names, 2, 'C'), { items: ['a', 'b'], more: true });
    assert.deepEqual(page(names, 3, 'a'), { items: ['b', 'c'], more: false });
    assert.deepEqual(page(names, 0, undefined), { items: [], more: false });
    assert.equal(parsePageSize(undefined), undefined);
    assert.equal(parsePageSize('5'), 5);
    assert.throws(() => parsePageSize('-1'));
  });
  it('parses Content-Range of a chunk', () => {
    assert.equal(parseChunkRange(undefined), null);
    assert.deepEqual(parseChunkRange('0-21'), { start: 0, end: 21 });
    assert.deepEqual(parseChunkRange('bytes=22-41'), { start: 22, end: 41 });
    assert.equal(parseChunkRange('5-1'), 'invalid');
    assert.equal(parseChunkRange('x'), 'invalid');
  });
});
