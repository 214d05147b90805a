/** Which docker paths are components (a tag's manifest: image name, tag) and how tags order, as the plugin supplies them. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { docker } from '../../formats/docker/index.js';
import { tagOfPath, tagPath } from '../../formats/docker/components.js';

const D = 'sha256:' + 'a'.repeat(64);

describe('docker components', () => {
  it('a tag manifest path names its image and tag; other paths name none', () => {
    assert.deepEqual(tagOfPath('v2/team/app/manifests/1.0'), { name: 'team/app', tag: '1.0' });
    assert.deepEqual(tagOfPath(tagPath('a/b/manifests/c', 'latest')), { name: 'a/b/manifests/c', tag: 'latest' });
    assert.deepEqual(docker.componentOf!('v2/app/manifests/v2'), { name: 'app', version: 'v2' });
    for (const p of [`v2/app/manifests/${D}`, `v2/-/blobs/${D}`, 'v2/app/tags/list', `v2/app/referrers/${D}`, 'v2/-/manifests/x', 'other']) {
      assert.equal(tagOfPath(p), null, p);
      assert.equal(docker.componentOf!(p), null, p);
    }
  });

  it('tags have no semantic order and no prereleases', () => {
    assert.ok(docker.compareVersions!('1.0', '2.0') < 0);
    assert.ok(docker.compareVersions!('latest', '1.0') > 0);
    assert.equal(docker.compareVersions!('x', 'x'), 0);
    assert.equal(docker.isPrerelease!('1.0-rc1'), false);
  });
});
