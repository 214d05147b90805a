/** npm's version order and the packument after versions are gone (maintenance.ts): pure functions. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compareVersions, highestVersion, isPrerelease } from '../../formats/npm/versions.js';
import { withoutVersions } from '../../formats/npm/maintenance.js';
import type { Packument } from '../../formats/npm/packument.js';

describe('npm versions', () => {
  it('orders by semver, not by text; invalid versions first', () => {
    const sorted = ['1.10.0', '1.2.0', '1.2.0-rc.1', '1.2.0-alpha', 'not-semver', '0.9.9'].sort(compareVersions);
    assert.deepEqual(sorted, ['not-semver', '0.9.9', '1.2.0-alpha', '1.2.0-rc.1', '1.2.0', '1.10.0']);
  });

  it('knows prereleases', () => {
    assert.equal(isPrerelease('2.0.0-beta.1'), true);
    assert.equal(isPrerelease('2.0.0'), false);
    assert.equal(isPrerelease('banana'), false);
  });

  it('the highest release wins over a higher prerelease; a prerelease only when no release is left', () => {
    assert.equal(highestVersion(['1.0.0', '2.0.0-beta.1', '1.9.9']), '1.9.9');
    assert.equal(highestVersion(['2.0.0-beta.1', '2.0.0-beta.2']), '2.0.0-beta.2');
    assert.equal(highestVersion([]), null);
  });
});

describe('npm packument without versions', () => {
  const doc = (): Packument => ({
    _id: 'p',
    _rev: '3-abc',
    name: 'p',
    'dist-tags': { latest: '1.1.0', next: '2.0.0-beta.1', old: '1.0.0' },
    versions: { '1.0.0': { version: '1.0.0' }, '1.1.0': { version: '1.1.0' }, '2.0.0-beta.1': { version: '2.0.0-beta.1' } },
    time: { created: '2020-01-01T00:00:00.000Z', '1.0.0': '2020-01-01T00:00:00.000Z', '1.1.0': '2020-02-01T00:00:00.000Z', '2.0.0-beta.1': '2020-03-01T00:00:00.000Z' },
  });

  it('drops the versions and their times, re-points latest to the highest release, removes other tags naming them', () => {
    const at = new Date('2024-05-05T00:00:00.000Z');
    const next = withoutVersions(doc(), ['1.1.0'], at)!;
    assert.deepEqual(Object.keys(next.versions), ['1.0.0', '2.0.0-beta.1']);
    assert.deepEqual(next['dist-tags'], { next: '2.0.0-beta.1', old: '1.0.0', latest: '1.0.0' });
    assert.equal(next.time!['1.1.0'], undefined);
    assert.equal(next.time!.modified, at.toISOString());
    assert.notEqual(next._rev, '3-abc');
    const fewer = withoutVersions(doc(), ['1.0.0', '2.0.0-beta.1'], at)!;
    assert.deepEqual(fewer['dist-tags'], { latest: '1.1.0' });
  });

  it('no version left: no packument', () => {
    assert.equal(withoutVersions(doc(), ['1.0.0', '1.1.0', '2.0.0-beta.1'], new Date()), null);
  });
});
