/** maven-metadata.xml read, written, generated and merged (formats/maven/metadata.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { artifactMetadata, lastUpdatedOf, mergeMetadata, parseMetadata, snapshotMetadata, writeMetadata, MetadataError } from '../../formats/maven/metadata.js';
import { parseMavenPath, type Coordinates } from '../../formats/maven/layout.js';

const SNAPSHOT_XML = `<?xml version="1.0" encoding="UTF-8"?>
<metadata modelVersion="1.1.0"><groupId>g</groupId><artifactId>a</artifactId><version>1.0-SNAPSHOT</version>
 <versioning><snapshot><timestamp>20240101.123456</timestamp><buildNumber>1</buildNumber></snapshot>
  <lastUpdated>20240101123456</lastUpdated>
  <snapshotVersions><snapshotVersion><extension>jar</extension><value>1.0-20240101.123456-1</value><updated>20240101123456</updated></snapshotVersion>
   <snapshotVersion><classifier>sources</classifier><extension>jar</extension><value>1.0-20240101.123456-1</value><updated>20240101123456</updated></snapshotVersion></snapshotVersions></versioning></metadata>`;

const coords = (path: string): Coordinates => {
  const p = parseMavenPath(path);
  assert.ok(p && p.kind === 'artifact');
  return p.coords;
};

describe('maven-metadata.xml', () => {
  it('reads what mvn uploads and writes it back to the same document', () => {
    const md = parseMetadata(SNAPSHOT_XML);
    assert.equal(md.version, '1.0-SNAPSHOT');
    assert.deepEqual(md.snapshot, { timestamp: '20240101.123456', buildNumber: 1 });
    assert.equal(md.snapshotVersions.length, 2);
    assert.equal(md.snapshotVersions[1].classifier, 'sources');
    assert.deepEqual(parseMetadata(writeMetadata(md)), md);
  });

  it('reads artifact and plugin-group documents', () => {
    const a = parseMetadata(
      '<metadata><groupId>g</groupId><artifactId>a</artifactId><versioning><latest>2.0</latest><release>2.0</release><versions><version>1.0</version><version>2.0</version></versions><lastUpdated>20240101000000</lastUpdated></versioning></metadata>',
    );
    assert.deepEqual(a.versions, ['1.0', '2.0']);
    assert.equal(a.release, '2.0');
    const g = parseMetadata('<metadata><plugins><plugin><name>Foo</name><prefix>foo</prefix><artifactId>foo-maven-plugin</artifactId></plugin></plugins></metadata>');
    assert.deepEqual(g.plugins, [{ name: 'Foo', prefix: 'foo', artifactId: 'foo-maven-plugin' }]);
  });

  it('refuses malformed XML, other roots and entity declarations (no expansion)', () => {
    for (const bad of [
      '<metadata><groupId>g</groupId>',
      '<project/>',
      'not xml at all',
      '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><metadata><groupId>&lol2;</groupId></metadata>',
      '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><metadata><groupId>&x;</groupId></metadata>',
      '<metadata><versioning><snapshot><buildNumber>x</buildNumber></snapshot></versioning></metadata>',
    ]) {
      assert.throws(() => parseMetadata(bad), MetadataError, bad);
    }
  });

  it('escapes what it writes', () => {
    const md = artifactMetadata('g', 'a<b', ['1.0'], '20240101000000');
    assert.match(writeMetadata(md), /<artifactId>a&lt;b<\/artifactId>/);
    assert.equal(parseMetadata(writeMetadata(md)).artifactId, 'a<b');
  });

  it('generates artifact-level metadata in Maven order: latest the highest, release the highest release', () => {
    const md = artifactMetadata('g', 'a', ['1.10', '1.9', '2.0-SNAPSHOT', '1.10'], '20261201120000');
    assert.deepEqual(md.versions, ['1.9', '1.10', '2.0-SNAPSHOT']);
    assert.equal(md.latest, '2.0-SNAPSHOT');
    assert.equal(md.release, '1.10');
    assert.equal(lastUpdatedOf(new Date('2026-12-01T12:00:05.123Z')), '20261201120005');
  });

  it('generates snapshot-version metadata from the builds stored: newest build, newest file per classifier and extension', () => {
    const files = [
      coords('g/a/1.0-SNAPSHOT/a-1.0-20261201.120000-1.jar'),
      coords('g/a/1.0-SNAPSHOT/a-1.0-20261201.120000-1.pom'),
      coords('g/a/1.0-SNAPSHOT/a-1.0-20261201.120000-1-sources.jar'),
      coords('g/a/1.0-SNAPSHOT/a-1.0-20261202.080000-2.jar'),
      coords('g/a/1.0-SNAPSHOT/a-1.0-20261202.080000-2.pom'),
    ];
    const md = snapshotMetadata('g', 'a', '1.0-SNAPSHOT', files)!;
    assert.deepEqual(md.snapshot, { timestamp: '20261202.080000', buildNumber: 2 });
    assert.equal(md.lastUpdated, '20261202080000');
    assert.deepEqual(
      md.snapshotVersions.map((s) => [s.classifier ?? '', s.extension, s.value, s.updated]),
      [
        ['', 'jar', '1.0-20261202.080000-2', '20261202080000'],
        ['', 'pom', '1.0-20261202.080000-2', '20261202080000'],
        ['sources', 'jar', '1.0-20261201.120000-1', '20261201120000'],
      ],
    );
    assert.equal(snapshotMetadata('g', 'a', '1.0-SNAPSHOT', [coords('g/a/1.0-SNAPSHOT/a-1.0-SNAPSHOT.jar')]), null);
  });

  it('merges artifact documents: versions union in Maven order, latest/release max, lastUpdated newest, plugins by prefix', () => {
    const a = artifactMetadata('g', 'a', ['1.0', '1.10'], '20240101000000');
    const b = artifactMetadata('g', 'a', ['1.9', '2.0-SNAPSHOT'], '20250101000000');
    b.plugins = [{ prefix: 'x', artifactId: 'x-maven-plugin' }];
    const r = mergeMetadata([a, b]);
    assert.ok('merged' in r);
    assert.deepEqual(r.merged.versions, ['1.0', '1.9', '1.10', '2.0-SNAPSHOT']);
    assert.equal(r.merged.latest, '2.0-SNAPSHOT');
    assert.equal(r.merged.release, '1.10');
    assert.equal(r.merged.lastUpdated, '20250101000000');
    assert.equal(r.merged.plugins.length, 1);
  });

  it('never mixes snapshot documents: the member with the newest build wins', () => {
    const older = snapshotMetadata('g', 'a', '1.0-SNAPSHOT', [coords('g/a/1.0-SNAPSHOT/a-1.0-20261201.120000-7.jar')])!;
    const newer = snapshotMetadata('g', 'a', '1.0-SNAPSHOT', [coords('g/a/1.0-SNAPSHOT/a-1.0-20261202.120000-1.jar')])!;
    assert.deepEqual(mergeMetadata([older, newer]), { pick: 1 });
    assert.deepEqual(mergeMetadata([newer, older]), { pick: 0 });
  });
});
