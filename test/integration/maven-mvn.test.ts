/**
 * Maven end to end with Debian's mvn (3.8) and its offline plugins: every plugin and dependency
 * comes through Stowage (a group of hosted releases and snapshots and two proxies of static Maven
 * trees served by nginx), never from disk. Deploys a multi-module release with a classifier, a
 * redeploy the write policy refuses (mvn prints the reason), a snapshot twice (buildNumber 2),
 * then builds a dependent project with an empty local repository and checksum policy `fail` (one
 * dependency uploaded through the REST API with a generated POM).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ADMIN_PASSWORD, startServer, type TestServer } from '../helpers/stowage.js';
import { LOCAL_MAVEN_REPO, PLUGINS, jar as jarFile, mavenProbes, mvn, pom, startMavenNginx, writeProject, writeSettings, type StaticMaven } from '../helpers/maven.js';

const G = 'com.example.it';

describe('Maven with mvn (SQLite)', () => {
  let s: TestServer;
  let nginx: StaticMaven;
  let work: string;
  let settings: string;
  let deployRepo: string;
  let dist: { releases: string; snapshots: string };

  const create = async (type: string, body: Record<string, unknown>) => {
    const r = await s.fetch(`/service/rest/v1/repositories/maven/${type}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(r.status, 201, await r.text());
  };

  before(async () => {
    s = await startServer();
    nginx = await startMavenNginx();
    work = mkdtempSync(path.join(tmpdir(), 'stowage-mvn-'));
    await create('hosted', { name: 'releases', storage: { writePolicy: 'ALLOW_ONCE' }, maven: { versionPolicy: 'RELEASE', layoutPolicy: 'STRICT' } });
    // ALLOW_ONCE: timestamped snapshot builds are new files, and metadata is always writable.
    await create('hosted', { name: 'snapshots', storage: { writePolicy: 'ALLOW_ONCE' }, maven: { versionPolicy: 'SNAPSHOT', layoutPolicy: 'STRICT' } });
    await create('proxy', { name: 'debian', proxy: { remoteUrl: `${nginx.url}/debian/`, contentMaxAge: -1, metadataMaxAge: 1440 }, maven: { versionPolicy: 'MIXED' } });
    await create('proxy', { name: 'central', proxy: { remoteUrl: `${nginx.url}/m2/`, contentMaxAge: -1, metadataMaxAge: 1440 }, maven: { versionPolicy: 'RELEASE' } });
    await create('group', { name: 'public', group: { memberNames: ['releases', 'snapshots', 'debian', 'central'] } });
    settings = path.join(work, 'settings.xml');
    writeSettings(settings, `${s.url}/repository/public/`, 'admin', ADMIN_PASSWORD);
    deployRepo = path.join(work, 'm2-deploy');
    dist = { releases: `${s.url}/repository/releases/`, snapshots: `${s.url}/repository/snapshots/` };
  });

  after(async () => {
    nginx?.stop();
    await s?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const stored = (repo: string, prefix: string) => mavenProbes(s).stored(repo, prefix);
  const text = (p: string) => mavenProbes(s).text(p);

  it('deploys a multi-module release with a classifier, and refuses its redeploy with the reason mvn prints', async () => {
    const dir = path.join(work, 'multi');
    mkdirSync(dir, { recursive: true });
    const parent = `<?xml version="1.0"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>${G}</groupId><artifactId>parent</artifactId><version>1.0</version><packaging>pom</packaging>
<modules><module>core</module><module>util</module></modules>
<distributionManagement><repository><id>releases</id><url>${dist.releases}</url></repository><snapshotRepository><id>snapshots</id><url>${dist.snapshots}</url></snapshotRepository></distributionManagement>
${PLUGINS}</project>\n`;
    writeFileSync(path.join(dir, 'pom.xml'), parent);
    const child = (artifactId: string, extra = '') =>
      `<?xml version="1.0"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<parent><groupId>${G}</groupId><artifactId>parent</artifactId><version>1.0</version></parent>
<artifactId>${artifactId}</artifactId><properties><project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>${extra}</project>\n`;
    // util also attaches a second jar with the classifier `extra`.
    const extraJar = `<build><plugins><plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-jar-plugin</artifactId><version>3.3.0</version>
<executions><execution><id>extra</id><goals><goal>jar</goal></goals><configuration><classifier>extra</classifier></configuration></execution></executions></plugin></plugins></build>`;
    writeProject(path.join(dir, 'core'), child('core'), 'core', 'Core', 'public static String name() { return "core"; }');
    writeProject(path.join(dir, 'util'), child('util', extraJar), 'util', 'Util', 'public static String name() { return "util"; }');

    const first = await mvn(dir, settings, deployRepo, ['deploy']);
    assert.equal(first.code, 0, first.out);
    const base = 'com/example/it/';
    assert.deepEqual(await stored('releases', base), [
      'com/example/it/core/1.0/core-1.0.jar',
      'com/example/it/core/1.0/core-1.0.pom',
      'com/example/it/core/maven-metadata.xml',
      'com/example/it/parent/1.0/parent-1.0.pom',
      'com/example/it/parent/maven-metadata.xml',
      'com/example/it/util/1.0/util-1.0-extra.jar',
      'com/example/it/util/1.0/util-1.0.jar',
      'com/example/it/util/1.0/util-1.0.pom',
      'com/example/it/util/maven-metadata.xml',
    ]);
    const md = await text('/repository/releases/com/example/it/util/maven-metadata.xml');
    assert.match(md, /<release>1\.0<\/release>/);
    assert.match(md, /<version>1\.0<\/version>/);
    // Components as Nexus has them: groupId, artifactId, version.
    const comps = await s.app.content.listComponents({ repositoryIds: [(await s.app.repositories.require('releases')).id] }, null, 100);
    assert.deepEqual(comps.items.map((c) => `${c.namespace}:${c.name}:${c.version}`).sort(), [`${G}:core:1.0`, `${G}:parent:1.0`, `${G}:util:1.0`]);

    const again = await mvn(dir, settings, deployRepo, ['deploy']);
    assert.notEqual(again.code, 0, 'a release redeploy must fail under ALLOW_ONCE');
    assert.match(again.out, /400.*Repository does not allow updating assets: releases/);
  });

  it('deploys a snapshot twice: timestamped builds 1 and 2, snapshot metadata naming build 2', async () => {
    const dir = path.join(work, 'snap');
    writeProject(dir, pom({ groupId: G, artifactId: 'snap', version: '2.0-SNAPSHOT', dist }), 'snap', 'Snap', 'public static String name() { return "snap"; }');
    for (let i = 0; i < 2; i++) {
      const r = await mvn(dir, settings, deployRepo, ['deploy']);
      assert.equal(r.code, 0, r.out);
    }
    const files = (await stored('snapshots', 'com/example/it/snap/2.0-SNAPSHOT/')).map((p) => p.split('/').pop()!);
    assert.equal(files.filter((f) => /^snap-2\.0-\d{8}\.\d{6}-1\.(jar|pom)$/.test(f)).length, 2, files.join(' '));
    assert.equal(files.filter((f) => /^snap-2\.0-\d{8}\.\d{6}-2\.(jar|pom)$/.test(f)).length, 2, files.join(' '));
    const md = await text('/repository/snapshots/com/example/it/snap/2.0-SNAPSHOT/maven-metadata.xml');
    assert.match(md, /<buildNumber>2<\/buildNumber>/);
    assert.match(md, /<extension>jar<\/extension>\s*<value>2\.0-\d{8}\.\d{6}-2<\/value>/);
    // Served with checksums over the exact bytes served.
    const sha1 = await text('/repository/snapshots/com/example/it/snap/2.0-SNAPSHOT/maven-metadata.xml.sha1');
    assert.equal(sha1, createHash('sha1').update(md).digest('hex'));
  });

  it('builds a dependent project with an empty local repository through the group, checksum policy fail', async () => {
    const dir = path.join(work, 'app');
    // Uploaded as Nexus's UI does, without a POM: Stowage generates one (maven2.generate-pom).
    const form = new FormData();
    for (const [k, v] of Object.entries({
      'maven2.groupId': G,
      'maven2.artifactId': 'uploaded',
      'maven2.version': '1.0',
      'maven2.generate-pom': 'true',
      'maven2.asset1.extension': 'jar',
    })) {
      form.set(k, v);
    }
    form.set('maven2.asset1', new Blob([new Uint8Array(jarFile())]), 'uploaded.jar');
    const uploaded = await s.fetch('/service/rest/v1/components?repository=releases', { method: 'POST', body: form });
    assert.equal(uploaded.status, 204, await uploaded.text());
    const deps = [
      `<dependency><groupId>${G}</groupId><artifactId>core</artifactId><version>1.0</version></dependency>`,
      `<dependency><groupId>${G}</groupId><artifactId>util</artifactId><version>1.0</version><classifier>extra</classifier></dependency>`,
      `<dependency><groupId>${G}</groupId><artifactId>snap</artifactId><version>2.0-SNAPSHOT</version></dependency>`,
      `<dependency><groupId>${G}</groupId><artifactId>uploaded</artifactId><version>1.0</version></dependency>`,
      // Not in Debian's repository: only the proxy of the local repository has it.
      `<dependency><groupId>com.google.code.gson</groupId><artifactId>gson</artifactId><version>2.10.1</version></dependency>`,
    ].join('');
    writeProject(
      dir,
      pom({ groupId: G, artifactId: 'app', version: '1.0', deps }),
      'app',
      'App',
      'public static String all() { return core.Core.name() + util.Util.name() + snap.Snap.name() + new com.google.gson.Gson().toJson(1); }',
    );
    const local = path.join(work, 'm2-app');
    const r = await mvn(dir, settings, local, ['package']);
    assert.equal(r.code, 0, r.out);
    assert.ok(existsSync(path.join(dir, 'target/app-1.0.jar')));
    // The snapshot resolved to build 2, the classifier jar and the real artifact through the proxy.
    const snapFiles = readdirSync(path.join(local, 'com/example/it/snap/2.0-SNAPSHOT'));
    assert.ok(
      snapFiles.some((f) => /^snap-2\.0-\d{8}\.\d{6}-2\.jar$/.test(f)),
      snapFiles.join(' '),
    );
    assert.ok(existsSync(path.join(local, 'com/example/it/util/1.0/util-1.0-extra.jar')));
    // The generated POM resolved (checked against its .sha1 under checksum policy fail), not just the jar.
    assert.match(readFileSync(path.join(local, 'com/example/it/uploaded/1.0/uploaded-1.0.pom'), 'utf8'), /<packaging>jar<\/packaging>/);
    assert.ok(existsSync(path.join(local, 'com/example/it/uploaded/1.0/uploaded-1.0.jar')));
    const jar = 'com/google/code/gson/gson/2.10.1/gson-2.10.1.jar';
    assert.ok(nginx.requests().includes(`GET /m2/${jar} 200`), nginx.requests().join('\n'));
    assert.ok((await stored('central', 'com/google/code/gson/')).includes(jar));
    assert.deepEqual(readFileSync(path.join(local, jar)), readFileSync(path.join(LOCAL_MAVEN_REPO, jar)));
    // mvn fetched and checked the checksum Stowage computed (the tree nginx serves has none).
    assert.equal(
      readFileSync(path.join(local, jar + '.sha1'), 'utf8').trim(),
      createHash('sha1')
        .update(readFileSync(path.join(local, jar)))
        .digest('hex'),
    );
    assert.ok(!existsSync(path.join(LOCAL_MAVEN_REPO, jar + '.sha1')));
  });
});
