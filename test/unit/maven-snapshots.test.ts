/** Which snapshot builds "Maven - Delete SNAPSHOT" removes (formats/maven/tasks.ts), POM and checksum file checks. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ComponentRow } from '../../src/content/types.js';
import { builtAt, snapshotsToDelete } from '../../formats/maven/tasks.js';
import { parseChecksumFile } from '../../formats/maven/checksums.js';
import { pomProblem } from '../../formats/maven/pom.js';

const DAY = 24 * 3600 * 1000;
const NOW = Date.UTC(2026, 11, 10);
let id = 0;
const comp = (name: string, version: string, created = NOW): ComponentRow => ({
  id: ++id,
  repository_id: 1,
  namespace: 'g',
  name,
  version,
  attributes: {},
  created_at: created,
  updated_at: created,
});

describe('Maven - Delete SNAPSHOT rules', () => {
  const builds = [comp('a', '1.0-20261201.000000-1'), comp('a', '1.0-20261205.000000-2'), comp('a', '1.0-20261209.000000-3'), comp('a', '0.9'), comp('b', '2.0-20261201.000000-1')];
  const versions = (rows: ComponentRow[]) => rows.map((c) => `${c.name}:${c.version}`).sort();

  it('keeps the newest N builds of each snapshot version and removes older ones past the retention', () => {
    assert.deepEqual(versions(snapshotsToDelete(builds, { minimumRetained: 1, snapshotRetentionDays: 3, removeIfReleased: false, gracePeriodInDays: 0 }, NOW)), [
      'a:1.0-20261201.000000-1',
      'a:1.0-20261205.000000-2',
    ]);
    assert.deepEqual(versions(snapshotsToDelete(builds, { minimumRetained: 1, snapshotRetentionDays: 7, removeIfReleased: false, gracePeriodInDays: 0 }, NOW)), [
      'a:1.0-20261201.000000-1',
    ]);
    assert.deepEqual(versions(snapshotsToDelete(builds, { minimumRetained: 3, snapshotRetentionDays: 0, removeIfReleased: false, gracePeriodInDays: 0 }, NOW)), []);
  });

  it('removes every build of a released version once the grace period passed', () => {
    const withRelease = [...builds, comp('b', '2.0', NOW - 2 * DAY)];
    const rules = { minimumRetained: 5, snapshotRetentionDays: 100, removeIfReleased: true, gracePeriodInDays: 1 };
    assert.deepEqual(versions(snapshotsToDelete(withRelease, rules, NOW)), ['b:2.0-20261201.000000-1']);
    assert.deepEqual(versions(snapshotsToDelete(withRelease, { ...rules, gracePeriodInDays: 3 }, NOW)), []);
  });

  it('dates a build by its timestamp, a non-unique snapshot by when it was stored', () => {
    assert.equal(builtAt(comp('a', '1.0-20261201.123456-1')), Date.UTC(2026, 11, 1, 12, 34, 56));
    assert.equal(builtAt(comp('a', '1.0-SNAPSHOT', 42)), 42);
  });
});

describe('Maven checksum files and POMs', () => {
  it('reads the first token of a checksum file, lowercase, of the right length', () => {
    assert.equal(parseChecksumFile('DA39A3EE5E6B4B0D3255BFEF95601890AFD80709  lib-1.0.jar\n', 'sha1'), 'da39a3ee5e6b4b0d3255bfef95601890afd80709');
    assert.equal(parseChecksumFile('d41d8cd98f00b204e9800998ecf8427e', 'sha1'), null);
    assert.equal(parseChecksumFile('', 'md5'), null);
    assert.equal(parseChecksumFile('zz'.repeat(16), 'md5'), null);
  });

  it('accepts a <project> document, refuses anything else', () => {
    assert.equal(pomProblem('<?xml version="1.0"?>\n<!-- c -->\n<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion></project>'), null);
    assert.match(pomProblem('<project>')!, /not well-formed/);
    assert.match(pomProblem('<metadata/>')!, /root element is <metadata>/);
    assert.match(pomProblem('<!DOCTYPE project [<!ENTITY a "b">]><project>&a;</project>')!, /DOCTYPE/);
  });
});
