/**
 * Maven end to end with Debian's Gradle (4.4, on OpenJDK 17), unmodified and never offline: it
 * reaches only loopback, where a Stowage group (hosted releases, a second hosted releases, hosted
 * snapshots, proxies of the machine's two static Maven trees served by nginx) is its only repository.
 * Resolves real dependencies with an empty Gradle user home, publishes with the `maven` plugin (a
 * release, a snapshot twice), refuses a release redeploy with Stowage's reason in Gradle's
 * output, resolves what was published (the snapshot to its newest build) and dynamic versions
 * (`1.+`, `latest.release`) through the group's merged metadata with anonymous access off, and
 * sees a newer snapshot build and version with --refresh-dependencies.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ADMIN_PASSWORD, startServer, type TestServer } from '../helpers/stowage.js';
import { DEBIAN_MAVEN_REPO, LOCAL_MAVEN_REPO, jar as jarFile, mavenProbes, startMavenNginx, type StaticMaven } from '../helpers/maven.js';

const G = 'com.example.gradle';
/**
 * Debian's Gradle deploys through Maven Resolver but leaves its Wagon transporter off the plugin's
 * class path: `maven-publish` fails for any http repository ("No transporter factories
 * registered"). The `maven` plugin's documented `deployerJars` configuration (extra Wagon jars
 * for the deployer) supplies it from Debian's own package, without touching Gradle.
 */
const WAGON_TRANSPORTER = '/usr/share/java/maven-resolver-transport-wagon.jar';
const sha1 = (b: Buffer | string) => createHash('sha1').update(b).digest('hex');

interface GradleRun {
  code: number;
  out: string;
}

/**
 * Runs Debian's gradle without a daemon, with its own user home (`-g`) and local Maven repository
 * (Gradle reuses any file of the right sha1 it finds in ~/.m2 instead of downloading it): every
 * artifact comes over the wire.
 */
function gradle(cwd: string, home: string, args: string[]): Promise<GradleRun> {
  return new Promise((resolve) => {
    execFile(
      'gradle',
      ['--no-daemon', '--console=plain', '--stacktrace', '-g', home, `-Dmaven.repo.local=${path.join(home, 'm2')}`, ...args],
      {
        cwd,
        maxBuffer: 64 * 1024 * 1024,
        // The client JVM runs the build (no daemon): a short-lived JVM starts faster without full JIT.
        env: { ...process.env, GRADLE_OPTS: '-Xshare:auto -XX:TieredStopAtLevel=1', JAVA_OPTS: '' },
      },
      (err, stdout, stderr) => {
        // A missing gradle fails the test (its code is no 0), with a message saying why.
        if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') return resolve({ code: 127, out: 'gradle is not installed (Debian package gradle)' });
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
      },
    );
  });
}

/** A Gradle project: build.gradle and one Java class. */
function project(dir: string, build: string, javaPackage?: string, body = 'public static String name() { return "x"; }'): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'build.gradle'), build);
  writeFileSync(path.join(dir, 'settings.gradle'), `rootProject.name = '${path.basename(dir)}'\n`);
  if (javaPackage) {
    mkdirSync(path.join(dir, 'src/main/java', javaPackage), { recursive: true });
    writeFileSync(path.join(dir, 'src/main/java', javaPackage, 'Main.java'), `package ${javaPackage};\npublic class Main { ${body} }\n`);
  }
}

describe('Maven with Gradle (SQLite)', () => {
  let s: TestServer;
  let nginx: StaticMaven;
  let work: string;
  /** The Gradle user home the publishing cases share (the resolving cases start empty). */
  let home: string;

  const create = async (type: string, body: Record<string, unknown>) => {
    const r = await s.fetch(`/service/rest/v1/repositories/maven/${type}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(r.status, 201, await r.text());
  };
  const stored = (repo: string, prefix: string) => mavenProbes(s).stored(repo, prefix);
  const text = (p: string) => mavenProbes(s).text(p);
  const repoBlock = (name: string) => `maven { url '${s.url}/repository/${name}/'; credentials { username 'admin'; password '${ADMIN_PASSWORD}' } }`;
  const javaBuild = (o: { deps?: string; extra?: string; version?: string; repo?: string; configurations?: string }) => `apply plugin: 'java'
apply plugin: 'maven'
group = '${G}'
version = '${o.version ?? '1.0'}'
sourceCompatibility = '1.8'
targetCompatibility = '1.8'
repositories { ${repoBlock('public')} }
${o.configurations ? `configurations { ${o.configurations} }` : ''}
dependencies { ${o.deps ?? ''} }
${
  o.repo
    ? `configurations { deployerJars }
dependencies { deployerJars files('${WAGON_TRANSPORTER}') }
uploadArchives { repositories { mavenDeployer {
  configuration = configurations.deployerJars
  repository(url: '${s.url}/repository/${o.repo}/') { authentication(userName: 'admin', password: '${ADMIN_PASSWORD}') }
} } }`
    : ''
}
task copyDeps(type: Copy) { from configurations.compileClasspath; into 'deps' }
${o.extra ?? ''}
`;

  /** A component `dyn` of `version` uploaded through the REST API, as Nexus's UI does (Stowage generates its POM). */
  const upload = async (repo: string, version: string) => {
    const form = new FormData();
    for (const [k, v] of Object.entries({
      'maven2.groupId': G,
      'maven2.artifactId': 'dyn',
      'maven2.version': version,
      'maven2.generate-pom': 'true',
      'maven2.asset1.extension': 'jar',
    })) {
      form.set(k, v);
    }
    form.set('maven2.asset1', new Blob([new Uint8Array(jarFile())]), 'dyn.jar');
    const r = await s.fetch(`/service/rest/v1/components?repository=${repo}`, { method: 'POST', body: form });
    assert.equal(r.status, 204, await r.text());
  };

  before(async () => {
    s = await startServer();
    nginx = await startMavenNginx();
    work = mkdtempSync(path.join(tmpdir(), 'stowage-gradle-'));
    home = path.join(work, 'gradle-home');
    await create('hosted', { name: 'releases', storage: { writePolicy: 'ALLOW_ONCE' }, maven: { versionPolicy: 'RELEASE', layoutPolicy: 'STRICT' } });
    await create('hosted', { name: 'releases2', storage: { writePolicy: 'ALLOW_ONCE' }, maven: { versionPolicy: 'RELEASE', layoutPolicy: 'STRICT' } });
    await create('hosted', { name: 'snapshots', storage: { writePolicy: 'ALLOW_ONCE' }, maven: { versionPolicy: 'SNAPSHOT', layoutPolicy: 'STRICT' } });
    await create('proxy', { name: 'central', proxy: { remoteUrl: `${nginx.url}/m2/`, contentMaxAge: -1, metadataMaxAge: 1440 }, maven: { versionPolicy: 'RELEASE' } });
    await create('proxy', { name: 'debian', proxy: { remoteUrl: `${nginx.url}/debian/`, contentMaxAge: -1, metadataMaxAge: 1440 }, maven: { versionPolicy: 'MIXED' } });
    await create('group', { name: 'public', group: { memberNames: ['releases', 'releases2', 'snapshots', 'central', 'debian'] } });
  });

  after(async () => {
    nginx?.stop();
    await s?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('resolves real dependencies (with transitive ones) through the group into an empty Gradle user home', async () => {
    const dir = path.join(work, 'resolve');
    project(
      dir,
      javaBuild({
        deps: `compile 'org.apache.commons:commons-lang3:3.12.0'
  compile 'com.google.guava:guava:31.1-jre'
  compile 'com.google.code.gson:gson:2.10.1'
  compile 'commons-cli:commons-cli:1.5.0'`,
      }),
    );
    const r = await gradle(dir, path.join(work, 'home-resolve'), ['copyDeps']);
    assert.equal(r.code, 0, r.out);
    const got = readdirSync(path.join(dir, 'deps')).sort();
    const jars = [
      'org/apache/commons/commons-lang3/3.12.0/commons-lang3-3.12.0.jar',
      'com/google/guava/guava/31.1-jre/guava-31.1-jre.jar',
      'com/google/code/gson/gson/2.10.1/gson-2.10.1.jar',
      // Transitive, from guava's POM.
      'com/google/guava/failureaccess/1.0.1/failureaccess-1.0.1.jar',
    ];
    const check = async (j: string, proxy: string, tree: string, location: string) => {
      const name = path.basename(j);
      assert.ok(got.includes(name), `${name} not in ${got.join(' ')}`);
      assert.equal(sha1(readFileSync(path.join(dir, 'deps', name))), sha1(readFileSync(path.join(tree, j))), name);
      // Through Stowage: Gradle downloaded it, and the proxy fetched it from nginx and keeps it.
      assert.ok(r.out.includes(`Download ${s.url}/repository/public/${j}`), j);
      assert.ok((await stored(proxy, path.dirname(j) + '/')).includes(j), j);
      assert.ok(nginx.requests().includes(`GET ${location}${j} 200`), j);
    };
    for (const j of jars) await check(j, 'central', LOCAL_MAVEN_REPO, '/m2/');
    // Only in Debian's tree (the local repository has other versions).
    await check('commons-cli/commons-cli/1.5.0/commons-cli-1.5.0.jar', 'debian', DEBIAN_MAVEN_REPO, '/debian/');
  });

  it('publishes a release with the maven plugin (uploadArchives): files, checksums and metadata as Stowage serves them', async () => {
    const dir = path.join(work, 'lib');
    project(dir, javaBuild({ repo: 'releases' }), 'lib', 'public static String name() { return "lib"; }');
    const r = await gradle(dir, home, ['uploadArchives']);
    assert.equal(r.code, 0, r.out);
    const base = 'com/example/gradle/lib/';
    assert.deepEqual(await stored('releases', base), [`${base}1.0/lib-1.0.jar`, `${base}1.0/lib-1.0.pom`, `${base}maven-metadata.xml`]);
    const md = await text(`/repository/releases/${base}maven-metadata.xml`);
    assert.match(md, /<release>1\.0<\/release>/);
    assert.match(md, /<version>1\.0<\/version>/);
    assert.equal(await text(`/repository/releases/${base}maven-metadata.xml.sha1`), sha1(md));
    const jarBytes = readFileSync(path.join(dir, 'build/libs/lib-1.0.jar'));
    assert.equal(await text(`/repository/releases/${base}1.0/lib-1.0.jar.sha1`), sha1(jarBytes));
    assert.equal(await text(`/repository/releases/${base}1.0/lib-1.0.jar.md5`), createHash('md5').update(jarBytes).digest('hex'));
  });

  it('refuses a release redeploy under ALLOW_ONCE: Gradle fails and prints the reason', async () => {
    const r = await gradle(path.join(work, 'lib'), home, ['uploadArchives']);
    assert.notEqual(r.code, 0, 'a release redeploy must fail under ALLOW_ONCE');
    assert.match(r.out, /Repository does not allow updating assets: releases/);
  });

  it('publishes a snapshot twice: timestamped builds 1 and 2, snapshot metadata naming build 2', async () => {
    const dir = path.join(work, 'snap');
    project(dir, javaBuild({ repo: 'snapshots', version: '1.0-SNAPSHOT' }), 'snap', 'public static String name() { return "snap"; }');
    for (let i = 1; i <= 2; i++) {
      // Each build's jar differs, so a consumer's copy says which build it got.
      writeFileSync(path.join(dir, 'src/main/java/snap/Main.java'), `package snap;\npublic class Main { public static String name() { return "snap ${i}"; } }\n`);
      const r = await gradle(dir, home, ['uploadArchives']);
      assert.equal(r.code, 0, r.out);
    }
    const files = (await stored('snapshots', 'com/example/gradle/snap/1.0-SNAPSHOT/')).map((p) => p.split('/').pop()!);
    for (const n of [1, 2]) {
      assert.equal(files.filter((f) => new RegExp(`^snap-1\\.0-\\d{8}\\.\\d{6}-${n}\\.(jar|pom)$`).test(f)).length, 2, files.join(' '));
    }
    const md = await text('/repository/snapshots/com/example/gradle/snap/1.0-SNAPSHOT/maven-metadata.xml');
    assert.match(md, /<buildNumber>2<\/buildNumber>/);
    assert.match(md, /<extension>jar<\/extension>\s*<value>1\.0-\d{8}\.\d{6}-2<\/value>/);
    assert.equal(await text('/repository/snapshots/com/example/gradle/snap/1.0-SNAPSHOT/maven-metadata.xml.sha1'), sha1(md));
    const top = await text('/repository/snapshots/com/example/gradle/snap/maven-metadata.xml');
    assert.match(top, /<version>1\.0-SNAPSHOT<\/version>/);
  });

  it('resolves what was published (the snapshot to build 2) and dynamic versions through the merged metadata, anonymous access off', async () => {
    // Versions of one artifact in two hosted members: the group's metadata lists them all.
    await upload('releases', '1.2');
    await upload('releases', '2.0');
    await upload('releases2', '1.10');
    await upload('releases2', '1.9');
    const md = await text('/repository/public/com/example/gradle/dyn/maven-metadata.xml');
    for (const v of ['1.2', '1.9', '1.10', '2.0']) assert.match(md, new RegExp(`<version>${v.replace('.', '\\.')}</version>`));

    // Anonymous reads off: Gradle sends the build's credentials only when challenged.
    const anon = await s.fetch('/service/rest/v1/security/anonymous', {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ enabled: false, userId: 'anonymous', realmName: 'NexusAuthorizingRealm' }),
    });
    assert.equal(anon.status, 200, await anon.text());
    assert.equal((await s.fetch('/repository/public/com/example/gradle/dyn/maven-metadata.xml', { auth: null })).status, 401);

    const dir = path.join(work, 'app');
    // Two configurations: `1.+` and `latest.release` of the same module would be conflict-resolved into one.
    project(
      dir,
      javaBuild({
        deps: `compile '${G}:lib:1.0'
  compile '${G}:snap:1.0-SNAPSHOT'
  compile '${G}:dyn:1.+'
  latest '${G}:dyn:latest.release'`,
        configurations: 'latest',
        extra: `task copyLatest(type: Copy) { from configurations.latest; into 'latest' }`,
      }),
    );
    const r = await gradle(dir, path.join(work, 'home-app'), ['copyDeps', 'copyLatest']);
    assert.equal(r.code, 0, r.out);
    const got = readdirSync(path.join(dir, 'deps')).sort();
    assert.ok(got.includes('lib-1.0.jar'), got.join(' '));
    assert.deepEqual(readFileSync(path.join(dir, 'deps/lib-1.0.jar')), readFileSync(path.join(work, 'lib/build/libs/lib-1.0.jar')));
    // Gradle names a resolved snapshot by its base version; its bytes are build 2's.
    const snap = 'snap-1.0-SNAPSHOT.jar';
    assert.ok(got.includes(snap), got.join(' '));
    const builds = (await stored('snapshots', 'com/example/gradle/snap/1.0-SNAPSHOT/')).filter((p) => p.endsWith('.jar'));
    const [first, newest] = [builds.find((p) => /-1\.jar$/.test(p))!, builds.find((p) => /-2\.jar$/.test(p))!];
    assert.notEqual(await text(`/repository/snapshots/${first}.sha1`), await text(`/repository/snapshots/${newest}.sha1`));
    assert.equal(sha1(readFileSync(path.join(dir, 'deps', snap))), await text(`/repository/snapshots/${newest}.sha1`));
    assert.ok(got.includes('dyn-1.10.jar'), `1.+ must pick 1.10: ${got.join(' ')}`);
    assert.deepEqual(readdirSync(path.join(dir, 'latest')), ['dyn-2.0.jar']);
  });

  it('sees a new snapshot build and a new version with --refresh-dependencies (the group metadata is not stale)', async () => {
    const snapDir = path.join(work, 'snap');
    writeFileSync(path.join(snapDir, 'src/main/java/snap/Main.java'), 'package snap;\npublic class Main { public static String name() { return "snap 3"; } }\n');
    const pub = await gradle(snapDir, home, ['uploadArchives']);
    assert.equal(pub.code, 0, pub.out);
    await upload('releases2', '1.11');
    const dir = path.join(work, 'app');
    rmSync(path.join(dir, 'deps'), { recursive: true });
    const r = await gradle(dir, path.join(work, 'home-app'), ['copyDeps', '--refresh-dependencies']);
    assert.equal(r.code, 0, r.out);
    const got = readdirSync(path.join(dir, 'deps')).sort();
    assert.ok(got.includes('dyn-1.11.jar'), `1.+ must now pick 1.11: ${got.join(' ')}`);
    const third = (await stored('snapshots', 'com/example/gradle/snap/1.0-SNAPSHOT/')).find((p) => /-3\.jar$/.test(p));
    assert.ok(third);
    assert.equal(sha1(readFileSync(path.join(dir, 'deps/snap-1.0-SNAPSHOT.jar'))), sha1(readFileSync(path.join(snapDir, 'build/libs/snap-1.0-SNAPSHOT.jar'))), got.join(' '));
  });
});
