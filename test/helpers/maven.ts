/**
 * Maven for tests: nginx serving the machine's static Maven trees (Debian's plugin repository and
 * the local repository of real artifacts) as the stand-in for Maven Central, and mvn run with an
 * empty local repository and a settings.xml whose only mirror is Stowage, so every artifact a
 * build needs really comes through Stowage.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { runNginx } from './nginx.js';
import type { TestServer } from './stowage.js';

/** Debian's Maven plugins (and what they need): what `mvn deploy` runs on. */
export const DEBIAN_MAVEN_REPO = '/usr/share/maven-repo';
/** The machine image's local Maven repository of real artifacts. */
export const LOCAL_MAVEN_REPO = '/root/.m2/repository';

/** The plugin versions Debian ships (a POM must pin them: there is no metadata to pick others). */
export const PLUGINS = `<build><plugins>
  <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-resources-plugin</artifactId><version>3.3.0</version></plugin>
  <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-compiler-plugin</artifactId><version>3.10.1</version><configuration><release>17</release></configuration></plugin>
  <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-surefire-plugin</artifactId><version>2.22.3</version></plugin>
  <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-jar-plugin</artifactId><version>3.3.0</version></plugin>
  <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-install-plugin</artifactId><version>3.1.0</version></plugin>
  <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-deploy-plugin</artifactId><version>3.0.0</version></plugin>
</plugins></build>`;

export interface StaticMaven {
  url: string;
  /** Request paths nginx served so far, with their status (`GET /m2/x.jar 200`). */
  requests(): string[];
  stop(): void;
}

/**
 * nginx on loopback: `/debian/` → Debian's plugin repository, `/m2/` → the local repository, and
 * `extra` locations (`/fixture/` → a directory a test writes).
 */
export async function startMavenNginx(extra: Record<string, string> = {}): Promise<StaticMaven> {
  const nginx = await runNginx({
    http: (dir) => `access_log ${dir}/access.log; sendfile on; default_type application/octet-stream;`,
    servers: [
      () => `location /debian/ { alias ${DEBIAN_MAVEN_REPO}/; }
    location /m2/ { alias ${LOCAL_MAVEN_REPO}/; }
    ${Object.entries(extra)
      .map(([loc, d]) => `location ${loc} { alias ${d}/; }`)
      .join('\n    ')}`,
    ],
  });
  return {
    url: nginx.urls[0],
    requests: () => {
      try {
        return readFileSync(path.join(nginx.dir, 'access.log'), 'utf8')
          .split('\n')
          .map((l) => /"(\w+) (\S+) [^"]*" (\d+)/.exec(l))
          .filter((m): m is RegExpExecArray => !!m)
          .map((m) => `${m[1]} ${m[2]} ${m[3]}`);
      } catch {
        return [];
      }
    },
    stop: () => void nginx.stop(),
  };
}

export interface MavenRun {
  code: number;
  out: string;
}

/** A settings.xml: Stowage (`mirrorUrl`) as the only mirror; the same credentials for every server id. */
export function writeSettings(file: string, mirrorUrl: string, user: string, password: string, checksumPolicy = 'fail'): void {
  const servers = ['stowage', 'releases', 'snapshots', 'group'].map((id) => `<server><id>${id}</id><username>${user}</username><password>${password}</password></server>`).join('');
  writeFileSync(
    file,
    `<settings><servers>${servers}</servers>
<mirrors><mirror><id>stowage</id><mirrorOf>*</mirrorOf><url>${mirrorUrl}</url></mirror></mirrors>
<profiles><profile><id>strict</id><repositories><repository><id>central</id><url>http://central</url>
  <releases><checksumPolicy>${checksumPolicy}</checksumPolicy></releases><snapshots><enabled>true</enabled><checksumPolicy>${checksumPolicy}</checksumPolicy><updatePolicy>always</updatePolicy></snapshots></repository></repositories>
  <pluginRepositories><pluginRepository><id>central</id><url>http://central</url><releases><checksumPolicy>${checksumPolicy}</checksumPolicy></releases></pluginRepository></pluginRepositories></profile></profiles>
<activeProfiles><activeProfile>strict</activeProfile></activeProfiles></settings>`,
  );
}

/** A project directory with a pom and one Java class. */
export function writeProject(dir: string, pom: string, javaPackage = 'demo', className = 'Hello', body = 'public static String hi() { return "hi"; }'): void {
  mkdirSync(path.join(dir, 'src/main/java', javaPackage), { recursive: true });
  writeFileSync(path.join(dir, 'pom.xml'), pom);
  writeFileSync(path.join(dir, 'src/main/java', javaPackage, `${className}.java`), `package ${javaPackage};\npublic class ${className} { ${body} }\n`);
}

/** A POM of `groupId:artifactId:version` (jar), with dependencies and the distribution repositories. */
export function pom(o: {
  groupId: string;
  artifactId: string;
  version: string;
  deps?: string;
  dist?: { releases: string; snapshots: string };
  extra?: string;
  packaging?: string;
}): string {
  const dist = o.dist
    ? `<distributionManagement><repository><id>releases</id><url>${o.dist.releases}</url></repository><snapshotRepository><id>snapshots</id><url>${o.dist.snapshots}</url></snapshotRepository></distributionManagement>`
    : '';
  return `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>${o.groupId}</groupId><artifactId>${o.artifactId}</artifactId><version>${o.version}</version><packaging>${o.packaging ?? 'jar'}</packaging>
<properties><project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>
${o.deps ? `<dependencies>${o.deps}</dependencies>` : ''}${dist}${o.extra ?? ''}${PLUGINS}</project>\n`;
}

/** Runs mvn (batch mode, quiet unless `verbose`) with its own empty local repository. */
export function mvn(cwd: string, settings: string, localRepo: string, args: string[], opts: { verbose?: boolean } = {}): Promise<MavenRun> {
  return new Promise((resolve) => {
    execFile(
      'mvn',
      ['-B', ...(opts.verbose ? [] : ['-q']), '-s', settings, `-Dmaven.repo.local=${localRepo}`, '-Dstyle.color=never', ...args],
      { cwd, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, MAVEN_OPTS: '-Xshare:auto -XX:TieredStopAtLevel=1' } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
  });
}

/** A jar as far as the content type check goes: a zip with one stored entry. */
export function jar(): Buffer {
  const name = Buffer.from('x.txt');
  const data = randomBytes(64);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(10, 4);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(name.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(10, 6);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(data.length, 24);
  central.writeUInt16LE(name.length, 28);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(46 + name.length, 12);
  end.writeUInt32LE(30 + name.length + data.length, 16);
  return Buffer.concat([local, name, data, central, name, end]);
}

/** What the Maven tests ask of a server: the paths stored in a repository, a document that must answer 200. */
export function mavenProbes(s: TestServer): { stored(repo: string, prefix: string): Promise<string[]>; text(p: string): Promise<string> } {
  return {
    stored: async (repo, prefix) => (await s.app.content.findAssets((await s.app.repositories.require(repo)).id, { pathPrefix: prefix })).map((a) => a.path).sort(),
    text: async (p) => {
      const r = await s.fetch(p);
      assert.equal(r.status, 200, p);
      return r.text();
    },
  };
}
