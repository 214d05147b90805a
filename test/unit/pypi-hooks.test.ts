/** The pypi format's pure hooks: hosted pages from assets, group routing by project, paths. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AssetView } from '../../src/content/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { hostedPage } from '../../formats/pypi/maintenance.js';
import { componentOf, groupMembers, isMetadata, upstreamUrl } from '../../formats/pypi/proxy.js';
import { fileOfPath, projectOfPage } from '../../formats/pypi/layout.js';

function asset(id: number, path: string, attrs: Record<string, unknown> = {}): AssetView {
  return {
    id,
    repository_id: 1,
    path,
    component_id: null,
    blob_id: id,
    content_type: 'application/octet-stream',
    kind: 'content',
    attributes: attrs,
    created_at: id,
    updated_at: id,
    last_downloaded: null,
    last_verified: null,
    size: 100 + id,
    sha256: String(id).repeat(64).slice(0, 64),
    sha1: '',
    md5: '',
    blob_created_at: id,
  } as AssetView;
}
const file = (id: number, filename: string, version: string, extra: Record<string, unknown> = {}) =>
  asset(id, `packages/demo/${filename}`, { pypi: { project: 'Demo', version, filename, filetype: 'bdist_wheel', uploadTime: '2026-01-01T00:00:00.000000Z', ...extra } });

describe('hosted pages', () => {
  it('lists files in upload order with sizes and versions, advertises metadata only where the file exists', () => {
    const { page, orphans } = hostedPage('demo', [
      file(2, 'demo-2.0-py3-none-any.whl', '2.0', { yanked: 'bad' }),
      asset(3, 'packages/demo/demo-2.0-py3-none-any.whl.metadata'),
      file(1, 'demo-1.0.tar.gz', '1.0', { requiresPython: '>=3.8' }),
      asset(4, 'packages/demo/gone-1.0-py3-none-any.whl.metadata'),
    ]);
    assert.deepEqual(
      page!.files.map((f) => [f.filename, f.size, f.yanked, f.requiresPython, f.coreMetadata]),
      [
        ['demo-1.0.tar.gz', 101, false, '>=3.8', null],
        ['demo-2.0-py3-none-any.whl', 102, 'bad', null, { sha256: '3'.repeat(64) }],
      ],
    );
    assert.deepEqual(page!.versions, ['1.0', '2.0']);
    assert.equal(page!.files[0].url, '../../packages/demo/demo-1.0.tar.gz');
    assert.deepEqual(orphans, ['packages/demo/gone-1.0-py3-none-any.whl.metadata'], 'a .metadata whose file is gone goes');
  });
  it('has no page when no file is left', () => {
    assert.equal(hostedPage('demo', [asset(3, 'packages/demo/demo-2.0-py3-none-any.whl.metadata')]).page, null);
  });
});

describe('group routing by project', () => {
  const repo = (name: string) => ({ name }) as Repository;
  const members = [repo('hosted'), repo('proxy'), repo('other-hosted')];
  const group = { section: () => ({ pinnedProjects: { 'corp-*': ['hosted'], 'corp-special': ['other-hosted'], tool: ['hosted', 'other-hosted'] } }) } as unknown as Repository;
  const names = (path: string) => groupMembers(path, members, group).map((m) => m.name);
  it('pins projects and prefixes (the exact name first, then the longest prefix)', () => {
    assert.deepEqual(names('simple/corp-app/'), ['hosted']);
    assert.deepEqual(names('packages/corp-app/corp_app-1.0-py3-none-any.whl'), ['hosted']);
    assert.deepEqual(names('packages/corp-app/corp_app-1.0-py3-none-any.whl.metadata'), ['hosted']);
    assert.deepEqual(names('simple/corp-special/'), ['other-hosted']);
    assert.deepEqual(names('simple/tool/'), ['hosted', 'other-hosted']);
    assert.deepEqual(names('simple/requests/'), ['hosted', 'proxy', 'other-hosted']);
    assert.deepEqual(names('simple/'), ['hosted', 'proxy', 'other-hosted'], 'the list asks everyone');
    assert.deepEqual(names('simple/constructor/'), ['hosted', 'proxy', 'other-hosted'], 'no prototype lookups');
  });
});

describe('paths', () => {
  it('tells pages, files and metadata apart', () => {
    assert.ok(isMetadata('simple/') && isMetadata('simple/demo/'));
    assert.ok(!isMetadata('packages/demo/demo-1.0.tar.gz') && !isMetadata('simple/demo/x'));
    assert.equal(projectOfPage('simple/demo/'), 'demo');
    assert.deepEqual(fileOfPath('packages/demo/demo-1.0-py3-none-any.whl.metadata'), { project: 'demo', filename: 'demo-1.0-py3-none-any.whl', metadata: true });
    assert.deepEqual(componentOf('packages/demo/demo-1.0-py3-none-any.whl.metadata'), { name: 'demo', version: '1.0' });
    assert.equal(componentOf('simple/demo/'), null);
  });
  it('asks upstream for absolute file URLs as they are, pages below the remote', () => {
    assert.equal(upstreamUrl('https://pypi.org/', 'simple/demo/'), 'https://pypi.org/simple/demo/');
    assert.equal(upstreamUrl('http://h/repository/x', 'simple/demo/'), 'http://h/repository/x/simple/demo/');
    assert.equal(upstreamUrl('https://pypi.org/', 'https://files.example/a/b.whl'), 'https://files.example/a/b.whl');
  });
});
