/** The pypi format's pure parsers: names, file names, PEP 440, core metadata, simple pages. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { filenameMismatch, isValidName, normalizeName, parseDistFilename } from '../../formats/pypi/names.js';
import { canonicalVersion, compareVersions, isPrerelease } from '../../formats/pypi/pep440.js';
import { parseCoreMetadata } from '../../formats/pypi/core-metadata.js';
import {
  negotiate,
  parseProjectHtml,
  parseProjectJson,
  parseProjectList,
  renderListHtml,
  renderListJson,
  renderProjectHtml,
  renderProjectJson,
  type ProjectPage,
} from '../../formats/pypi/simple-page.js';

describe('PEP 503 names', () => {
  it('normalises runs of -_. to one - and lower-cases', () => {
    assert.equal(normalizeName('Friendly-Bard'), 'friendly-bard');
    assert.equal(normalizeName('FRIENDLY__bard'), 'friendly-bard');
    assert.equal(normalizeName('friendly.-_bard'), 'friendly-bard');
    assert.equal(normalizeName('zope.interface'), 'zope-interface');
  });
  it('validates PEP 508 names', () => {
    for (const n of ['a', 'requests', 'zope.interface', 'Flask_Bcrypt', 'x-1']) assert.ok(isValidName(n), n);
    for (const n of ['', '-a', 'a-', '../x', 'a/b', 'a b', '__proto__.', '.x']) assert.ok(!isValidName(n), n);
  });
});

describe('distribution file names', () => {
  it('parses wheels with and without a build tag', () => {
    assert.deepEqual(parseDistFilename('Flask_Bcrypt-1.0.1-py3-none-any.whl'), {
      kind: 'bdist_wheel',
      name: 'Flask_Bcrypt',
      version: '1.0.1',
      tags: { python: 'py3', abi: 'none', platform: 'any' },
    });
    const w = parseDistFilename('Cython-0.29.37-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl');
    assert.equal(w?.build, '1');
    assert.equal(w?.tags?.platform, 'manylinux_2_17_x86_64.manylinux2014_x86_64');
    assert.equal(parseDistFilename('foo-1.0-py3-none.whl'), null);
    assert.equal(parseDistFilename('foo-notaversion-py3-none-any.whl'), null);
  });
  it('parses sdists, legacy names with dashes included', () => {
    assert.deepEqual(parseDistFilename('requests-2.31.0.tar.gz'), { kind: 'sdist', name: 'requests', version: '2.31.0' });
    assert.deepEqual(parseDistFilename('my-pkg-1.0.zip'), { kind: 'sdist', name: 'my-pkg', version: '1.0' });
    assert.deepEqual(parseDistFilename('my-pkg-1.0.tar.gz', { name: 'My_Pkg', version: '1.0' }), { kind: 'sdist', name: 'my-pkg', version: '1.0' });
    assert.equal(parseDistFilename('foo-1.0.rpm'), null);
  });
  it('refuses traversal and odd characters', () => {
    for (const f of ['../foo-1.0.tar.gz', 'a/foo-1.0.tar.gz', '..foo-1.0.tar.gz', 'foo-1.0.tar.gz\0', '.foo-1.0.tar.gz', 'foo 1.0.tar.gz', 'foo\\1.0.tar.gz'])
      assert.equal(parseDistFilename(f), null, f);
  });
  it('checks the file name against the form name and version', () => {
    assert.equal(filenameMismatch('demo_pkg-1.0-py3-none-any.whl', 'Demo.Pkg', '1.0'), null);
    assert.equal(filenameMismatch('demo_pkg-1.0.0-py3-none-any.whl', 'demo-pkg', '1.0'), null, 'Warehouse compares canonical versions: 1.0.0 is 1.0');
    assert.match(filenameMismatch('other-1.0-py3-none-any.whl', 'demo', '1.0')!, /does not match|names project/);
    assert.match(filenameMismatch('demo-1.1-py3-none-any.whl', 'demo', '1.0')!, /does not match|version/);
    assert.match(filenameMismatch('demo-1.0.tar.gz', 'demo', '1.0', 'bdist_wheel')!, /is a sdist/);
    assert.match(filenameMismatch('../demo-1.0.tar.gz', 'demo', '1.0')!, /Invalid file name/);
    assert.equal(filenameMismatch('demo-1.0RC1.tar.gz', 'demo', '1.0rc1'), null);
  });
});

describe('PEP 440', () => {
  it('normalises', () => {
    assert.equal(canonicalVersion('1.0-RC1'), '1.0rc1');
    assert.equal(canonicalVersion('v1.0.post'), '1.0.post0');
    assert.equal(canonicalVersion('1.0-1'), '1.0.post1');
    assert.equal(canonicalVersion('1!2.0a.dev3+Ubuntu-1'), '1!2.0a0.dev3+ubuntu.1');
    assert.equal(canonicalVersion('1.0alpha2'), '1.0a2');
    assert.equal(canonicalVersion('not a version'), null);
    assert.equal(canonicalVersion('1.0.x'), null);
  });
  it('orders as packaging does', () => {
    // The ordering example of PEP 440's "Summary of permitted suffixes and relative ordering".
    const ordered = [
      '0.9',
      '1.0.dev456',
      '1.0a1',
      '1.0a2.dev456',
      '1.0a12.dev456',
      '1.0a12',
      '1.0b1.dev456',
      '1.0b2',
      '1.0b2.post345.dev456',
      '1.0b2.post345',
      '1.0rc1.dev456',
      '1.0rc1',
      '1.0',
      '1.0+abc.5',
      '1.0+abc.7',
      '1.0+5',
      '1.0.post456.dev34',
      '1.0.post456',
      '1.0.15',
      '1.1.dev1',
      '2!0.1',
    ];
    for (let i = 0; i < ordered.length; i++)
      for (let j = 0; j < ordered.length; j++) assert.equal(Math.sign(compareVersions(ordered[i], ordered[j])), Math.sign(i - j), `${ordered[i]} vs ${ordered[j]}`);
    assert.equal(compareVersions('1.0', '1.0.0'), 0);
    assert.equal(compareVersions('1.0', '1.0+0'), -1);
    assert.ok(compareVersions('1.10', '1.9') > 0);
    assert.ok(compareVersions('legacy-thing', '0.1') < 0);
  });
  it('knows prereleases', () => {
    for (const v of ['1.0a1', '1.0.dev0', '1.0rc1', '2.0b3.post1', '1.0.post1.dev2']) assert.ok(isPrerelease(v), v);
    for (const v of ['1.0', '1.0.post1', '1.0+local', 'garbage']) assert.ok(!isPrerelease(v), v);
  });
});

describe('core metadata', () => {
  it('reads headers, multi-use fields and folded lines; stops at the body', () => {
    const m = parseCoreMetadata(
      [
        'Metadata-Version: 2.1',
        'Name: Demo-Pkg',
        'Version: 1.0',
        'Summary: a demo',
        'Requires-Python: >=3.8',
        'Requires-Dist: requests (>=2)',
        'Requires-Dist: idna; extra == "x"',
        'Provides-Extra: x',
        'License: line one',
        '        line two',
        '',
        'Name: not-a-header',
      ].join('\r\n'),
    );
    assert.equal(m.name, 'Demo-Pkg');
    assert.equal(m.version, '1.0');
    assert.equal(m.requiresPython, '>=3.8');
    assert.deepEqual(m.requiresDist, ['requests (>=2)', 'idna; extra == "x"']);
    assert.deepEqual(m.providesExtra, ['x']);
    assert.equal(m.headers.get('license')?.[0], 'line one\nline two');
    assert.deepEqual(m.headers.get('name'), ['Demo-Pkg']);
  });
});

const PAGE: ProjectPage = {
  name: 'demo',
  versions: ['1.0', '2.0'],
  files: [
    {
      filename: 'demo-1.0.tar.gz',
      url: '../../packages/demo/demo-1.0.tar.gz',
      hashes: { sha256: 'a'.repeat(64) },
      requiresPython: '>=3.8,<4',
      yanked: 'broken build',
      size: 10,
      uploadTime: '2024-01-02T03:04:05.000000Z',
    },
    {
      filename: 'demo-2.0-py3-none-any.whl',
      url: '../../packages/demo/demo-2.0-py3-none-any.whl',
      hashes: { sha256: 'b'.repeat(64) },
      coreMetadata: { sha256: 'c'.repeat(64) },
      yanked: false,
      size: 20,
    },
  ],
};

describe('simple pages', () => {
  it('renders PEP 503 HTML with every attribute pip reads, escaped', () => {
    const html = renderProjectHtml(PAGE);
    assert.match(html, /<meta name="pypi:repository-version" content="1.1">/);
    assert.match(html, /href="..\/..\/packages\/demo\/demo-1.0.tar.gz#sha256=a{64}" data-requires-python="&gt;=3.8,&lt;4" data-yanked="broken build">demo-1.0.tar.gz<\/a>/);
    assert.match(html, /data-core-metadata="sha256=c{64}" data-dist-info-metadata="sha256=c{64}">demo-2.0-py3-none-any.whl</);
  });
  it('renders PEP 691 JSON 1.1 with size and versions', () => {
    const doc = JSON.parse(renderProjectJson(PAGE));
    assert.deepEqual(doc.meta, { 'api-version': '1.1' });
    assert.deepEqual(doc.versions, ['1.0', '2.0']);
    assert.equal(doc.files[0].yanked, 'broken build');
    assert.equal(doc.files[0]['requires-python'], '>=3.8,<4');
    assert.equal(doc.files[0]['upload-time'], '2024-01-02T03:04:05.000000Z');
    assert.deepEqual(doc.files[1]['core-metadata'], { sha256: 'c'.repeat(64) });
    assert.deepEqual(doc.files[1]['dist-info-metadata'], { sha256: 'c'.repeat(64) });
    assert.equal(doc.files[1].size, 20);
    // Unknown sizes (a page parsed from HTML): api-version 1.0, which does not promise them.
    const noSize = JSON.parse(renderProjectJson({ ...PAGE, files: [{ ...PAGE.files[0], size: null }] }));
    assert.equal(noSize.meta['api-version'], '1.0');
  });
  it('round-trips through its own HTML and JSON, URLs resolved against the page', () => {
    const pageUrl = 'http://up.example/simple/demo/';
    const fromJson = parseProjectJson(renderProjectJson(PAGE), pageUrl);
    assert.equal(fromJson.files[1].url, 'http://up.example/packages/demo/demo-2.0-py3-none-any.whl');
    assert.deepEqual(fromJson.files[1].coreMetadata, { sha256: 'c'.repeat(64) });
    assert.equal(fromJson.files[0].yanked, 'broken build');
    const fromHtml = parseProjectHtml(renderProjectHtml(PAGE), pageUrl, 'demo');
    assert.deepEqual(
      fromHtml.files.map((f) => [f.filename, f.url, f.hashes.sha256, f.requiresPython, f.yanked, f.coreMetadata]),
      [
        ['demo-1.0.tar.gz', 'http://up.example/packages/demo/demo-1.0.tar.gz', 'a'.repeat(64), '>=3.8,<4', 'broken build', null],
        ['demo-2.0-py3-none-any.whl', 'http://up.example/packages/demo/demo-2.0-py3-none-any.whl', 'b'.repeat(64), null, false, { sha256: 'c'.repeat(64) }],
      ],
    );
    assert.deepEqual(fromHtml.versions, ['1.0', '2.0']);
  });
  it('parses real-world HTML: <base>, absolute links on another host, empty data-yanked, unsafe names dropped', () => {
    const html = `<html><head><base href="https://files.example/x/"></head><body>
      <a href="pkgs/a-1.0.tar.gz#sha256=${'d'.repeat(64)}" data-yanked>a-1.0.tar.gz</a>
      <A HREF='https://cdn.example/a-2.0-py3-none-any.whl#md5=${'e'.repeat(32)}'>a-2.0-py3-none-any.whl</A>
      <a href="../../etc/passwd">../../etc/passwd</a></body></html>`;
    const p = parseProjectHtml(html, 'http://up.example/simple/a/', 'a');
    assert.equal(p.files.length, 2);
    assert.equal(p.files[0].url, 'https://files.example/x/pkgs/a-1.0.tar.gz');
    assert.equal(p.files[0].yanked, true);
    assert.equal(p.files[1].url, 'https://cdn.example/a-2.0-py3-none-any.whl');
    assert.deepEqual(p.files[1].hashes, { md5: 'e'.repeat(32) });
  });
  it('parses the real static tree page of requests', async () => {
    const { readFileSync } = await import('node:fs');
    const text = readFileSync('/opt/pypi/simple/requests/index.html', 'utf8');
    const p = parseProjectHtml(text, 'http://127.0.0.1:1/simple/requests/', 'requests');
    assert.ok(p.files.length >= 1);
    for (const f of p.files) {
      assert.match(f.url, /^http:\/\/127\.0\.0\.1:1\/files\//);
      assert.match(f.hashes.sha256, /^[0-9a-f]{64}$/);
    }
  });
  it('ignores __proto__ and junk keys in JSON', () => {
    const text = `{"meta":{"api-version":"1.1"},"name":"x","files":[{"filename":"x-1.0.tar.gz","url":"x-1.0.tar.gz","hashes":{"__proto__":{"polluted":"yes"},"sha256":"${'f'.repeat(64)}","bad key":"00"},"size":-3}],"__proto__":{"polluted":"yes"}}`;
    const p = parseProjectJson(text, 'http://h/simple/x/');
    assert.deepEqual(Object.keys(p.files[0].hashes), ['sha256']);
    assert.equal(p.files[0].size, null);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.throws(() => parseProjectJson('{"files":[]}', 'http://h/'), /api-version/);
    assert.throws(() => parseProjectJson('<html>', 'http://h/'), /JSON/);
  });
  it('renders and parses project lists', () => {
    assert.deepEqual(parseProjectList(renderListHtml(['a', 'b-c']), false), ['a', 'b-c']);
    assert.deepEqual(parseProjectList(renderListJson(['a', 'b-c']), true), ['a', 'b-c']);
  });
  it('negotiates as PEP 691 says', () => {
    const pip = 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01';
    assert.equal(negotiate(pip), 'json');
    assert.equal(negotiate('application/vnd.pypi.simple.latest+json'), 'json');
    assert.equal(negotiate('text/html'), 'html');
    assert.equal(negotiate(undefined), 'html');
    assert.equal(negotiate('*/*'), 'html');
    assert.equal(negotiate('application/vnd.pypi.simple.v1+json;q=0.2, text/html'), 'html');
    assert.equal(negotiate('application/xml'), null);
  });
});
