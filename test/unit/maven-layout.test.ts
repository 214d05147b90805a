/** The Maven 2 path layout (formats/maven/layout.ts) and componentOf: fixtures of real paths. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { contentTypeOf, fileName, parseMavenPath } from '../../formats/maven/layout.js';
import { componentOf } from '../../formats/maven/components.js';

describe('Maven path layout', () => {
  it('parses a release artifact', () => {
    const p = parseMavenPath('org/apache/commons/commons-lang3/3.12.0/commons-lang3-3.12.0.jar');
    assert.deepEqual(p, {
      kind: 'artifact',
      path: 'org/apache/commons/commons-lang3/3.12.0/commons-lang3-3.12.0.jar',
      coords: {
        groupId: 'org.apache.commons',
        artifactId: 'commons-lang3',
        baseVersion: '3.12.0',
        version: '3.12.0',
        classifier: null,
        extension: 'jar',
        timestamp: null,
        buildNumber: null,
      },
    });
  });

  it('parses classifiers, compound extensions and signatures', () => {
    const c = (path: string) => {
      const p = parseMavenPath(path);
      assert.ok(p && p.kind === 'artifact', path);
      return p.coords;
    };
    assert.deepEqual([c('g/a/1.0/a-1.0-sources.jar').classifier, c('g/a/1.0/a-1.0-sources.jar').extension], ['sources', 'jar']);
    assert.deepEqual([c('g/a/1.0/a-1.0-bin.tar.gz').classifier, c('g/a/1.0/a-1.0-bin.tar.gz').extension], ['bin', 'tar.gz']);
    assert.deepEqual([c('g/a/1.0/a-1.0.tar.gz').classifier, c('g/a/1.0/a-1.0.tar.gz').extension], [null, 'tar.gz']);
    assert.equal(c('g/a/1.0/a-1.0.jar.asc').extension, 'jar.asc');
    assert.equal(c('com/x/my-lib/2.0-rc1/my-lib-2.0-rc1-tests.jar').classifier, 'tests');
  });

  it('parses timestamped and non-unique snapshots', () => {
    const t = parseMavenPath('com/example/app/1.0-SNAPSHOT/app-1.0-20261201.120000-3-javadoc.jar');
    assert.ok(t && t.kind === 'artifact');
    assert.deepEqual(t.coords, {
      groupId: 'com.example',
      artifactId: 'app',
      baseVersion: '1.0-SNAPSHOT',
      version: '1.0-20261201.120000-3',
      classifier: 'javadoc',
      extension: 'jar',
      timestamp: '20261201.120000',
      buildNumber: 3,
    });
    const n = parseMavenPath('com/example/app/1.0-SNAPSHOT/app-1.0-SNAPSHOT.pom');
    assert.ok(n && n.kind === 'artifact');
    assert.equal(n.coords.version, '1.0-SNAPSHOT');
    assert.equal(n.coords.timestamp, null);
    assert.equal(fileName(t.coords), 'app-1.0-20261201.120000-3-javadoc.jar');
  });

  it('parses metadata at artifact, snapshot-version and group level, and checksum paths', () => {
    assert.deepEqual(parseMavenPath('com/example/app/maven-metadata.xml'), {
      kind: 'metadata',
      path: 'com/example/app/maven-metadata.xml',
      dir: 'com/example/app',
      snapshotVersion: null,
    });
    assert.deepEqual(parseMavenPath('com/example/app/1.0-SNAPSHOT/maven-metadata.xml'), {
      kind: 'metadata',
      path: 'com/example/app/1.0-SNAPSHOT/maven-metadata.xml',
      dir: 'com/example/app/1.0-SNAPSHOT',
      snapshotVersion: '1.0-SNAPSHOT',
    });
    const s = parseMavenPath('com/example/app/1.0/app-1.0.jar.sha512');
    assert.ok(s && s.kind === 'checksum');
    assert.equal(s.algorithm, 'sha512');
    assert.equal(s.target, 'com/example/app/1.0/app-1.0.jar');
    assert.equal(s.of.kind, 'artifact');
    const m = parseMavenPath('com/example/app/maven-metadata.xml.md5');
    assert.ok(m && m.kind === 'checksum' && m.of.kind === 'metadata');
  });

  it('refuses what is not the Maven 2 layout', () => {
    for (const bad of [
      'readme.txt',
      'g/a/1.0/other-1.0.jar', // file of another artifact
      'g/a/1.0/a-1.1.jar', // another version
      'g/a/1.0/a-1.0', // no extension
      'g/a/1.0/a-1.0-.jar', // empty classifier
      'g/a/1.0-SNAPSHOT/a-1.0-2026.jar', // not a timestamp
      'g/../a/1.0/a-1.0.jar',
      'g/a/1.0/a-1.0.jar.sha1.sha1',
      'g/a b/1.0/a b-1.0.jar',
    ]) {
      assert.equal(parseMavenPath(bad), null, bad);
    }
  });

  it('names the component of an artifact, none for metadata', () => {
    assert.deepEqual(componentOf('com/example/app/1.0-SNAPSHOT/app-1.0-20261201.120000-3.jar'), {
      namespace: 'com.example',
      name: 'app',
      version: '1.0-20261201.120000-3',
      attributes: { maven2: { groupId: 'com.example', artifactId: 'app', version: '1.0-20261201.120000-3', baseVersion: '1.0-SNAPSHOT' } },
    });
    assert.equal(componentOf('com/example/app/maven-metadata.xml'), null);
    assert.equal(componentOf('com/example/app/1.0/app-1.0.jar.sha1'), null);
  });

  it('serves the content types clients expect', () => {
    assert.equal(contentTypeOf('g/a/1.0/a-1.0.pom'), 'application/xml');
    assert.equal(contentTypeOf('g/a/1.0/a-1.0.jar'), 'application/java-archive');
    assert.equal(contentTypeOf('g/a/1.0/a-1.0.jar.sha1'), 'text/plain');
  });
});
