/**
 * Maven proxies of a static Maven tree served by nginx, on SQLite and PostgreSQL: upstream
 * checksums verify artifacts (policy STRICT refuses a mismatch and caches nothing, WARN caches),
 * artifacts cached for good, maven-metadata.xml revalidated, 404s negatively cached, the version
 * policy keeping a release proxy out of snapshot lookups, and a group merging a hosted
 * repository's metadata with the proxy's.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { jar, startMavenNginx, type StaticMaven } from '../helpers/maven.js';

const sha1 = (b: Buffer | string) => createHash('sha1').update(b).digest('hex');
const JSON_HEADERS = { 'Content-Type': 'application/json' };
const metadata = (versions: string[]) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<metadata><groupId>org.fx</groupId><artifactId>good</artifactId><versioning><latest>${versions.at(-1)}</latest><release>${versions.at(-1)}</release><versions>${versions.map((v) => `<version>${v}</version>`).join('')}</versions><lastUpdated>20240101000000</lastUpdated></versioning></metadata>\n`;

describe('Maven proxy', () => {
  let nginx: StaticMaven;
  let tree: string;
  const file = (p: string, body: Buffer | string) => {
    mkdirSync(path.dirname(path.join(tree, p)), { recursive: true });
    writeFileSync(path.join(tree, p), body);
  };
  const upstreamHits = (p: string) => nginx.requests().filter((r) => r.startsWith(`GET /fixture/${p} `)).length;

  before(async () => {
    tree = mkdtempSync(path.join(tmpdir(), 'stowage-maven-tree-'));
    nginx = await startMavenNginx({ '/fixture/': tree });
  });
  after(() => {
    nginx?.stop();
    rmSync(tree, { recursive: true, force: true });
  });

  for (const db of DATABASES) {
    describe(db, () => {
      let s: TestServer;
      const create = async (type: string, body: Record<string, unknown>) => {
        const r = await s.fetch(`/service/rest/v1/repositories/maven/${type}`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify(body) });
        assert.equal(r.status, 201, await r.text());
      };
      const proxy = (name: string, dir: string, maven: Record<string, string>, metadataMaxAge = 1440) =>
        create('proxy', { name, proxy: { remoteUrl: `${nginx.url}/fixture/${dir}/`, contentMaxAge: -1, metadataMaxAge }, maven: { versionPolicy: 'MIXED', ...maven } });
      const get = (repo: string, p: string) => s.fetch(`/repository/${repo}/${p}`);
      const cached = async (repo: string, prefix: string) =>
        (await s.app.content.findAssets((await s.app.repositories.require(repo)).id, { pathPrefix: prefix })).map((a) => a.path).sort();

      before(async () => {
        s = await startServer({ db });
        // Each database gets its own upstream directory (the nginx is shared).
        const good = jar();
        const bad = jar();
        file(`${db}/org/fx/good/1.0/good-1.0.jar`, good);
        file(`${db}/org/fx/good/1.0/good-1.0.jar.sha1`, `${sha1(good)}  good-1.0.jar\n`);
        file(`${db}/org/fx/bad/1.0/bad-1.0.jar`, bad);
        file(`${db}/org/fx/bad/1.0/bad-1.0.jar.sha1`, sha1('something else'));
        file(`${db}/org/fx/good/maven-metadata.xml`, metadata(['1.0']));
        await proxy(`strict-${db}`, db, { checksumPolicy: 'STRICT' }, 0);
        await proxy(`warn-${db}`, db, { checksumPolicy: 'WARN' });
        await proxy(`release-${db}`, db, { versionPolicy: 'RELEASE', checksumPolicy: 'IGNORE' });
        await create('hosted', { name: `hosted-${db}`, storage: { writePolicy: 'ALLOW' }, maven: { versionPolicy: 'MIXED' } });
        await create('group', { name: `group-${db}`, group: { memberNames: [`hosted-${db}`, `release-${db}`] } });
      });
      after(async () => s?.stop());

      it('STRICT refuses an artifact whose upstream .sha1 differs and caches nothing; WARN caches it', async () => {
        // Streamed while it arrives: the client sees a 502, or a body cut off once the digest is known.
        const r = await get(`strict-${db}`, 'org/fx/bad/1.0/bad-1.0.jar');
        let refused = r.status === 502;
        if (!refused)
          refused = await r.arrayBuffer().then(
            () => false,
            () => true,
          );
        assert.ok(refused, `status ${r.status}, body delivered whole`);
        assert.deepEqual(await cached(`strict-${db}`, 'org/fx/bad/'), []);
        const ok = await get(`strict-${db}`, 'org/fx/good/1.0/good-1.0.jar');
        assert.equal(ok.status, 200);
        await ok.arrayBuffer();
        const w = await get(`warn-${db}`, 'org/fx/bad/1.0/bad-1.0.jar');
        assert.equal(w.status, 200);
        const body = Buffer.from(await w.arrayBuffer());
        // The checksum Stowage answers is that of the bytes it serves (and cached).
        assert.equal(await (await get(`warn-${db}`, 'org/fx/bad/1.0/bad-1.0.jar.sha1')).text(), sha1(body));
        assert.deepEqual(await cached(`warn-${db}`, 'org/fx/bad/'), ['org/fx/bad/1.0/bad-1.0.jar']);
      });

      it('caches artifacts for good and revalidates metadata', async () => {
        const jarPath = 'org/fx/good/1.0/good-1.0.jar';
        const first = Buffer.from(await (await get(`strict-${db}`, jarPath)).arrayBuffer());
        const hits = upstreamHits(`${db}/${jarPath}`);
        const again = await get(`strict-${db}`, jarPath);
        assert.deepEqual(Buffer.from(await again.arrayBuffer()), first);
        assert.equal(upstreamHits(`${db}/${jarPath}`), hits, 'a cached artifact is not fetched again');

        assert.match(await (await get(`strict-${db}`, 'org/fx/good/maven-metadata.xml')).text(), /<version>1\.0<\/version>/);
        file(`${db}/org/fx/good/maven-metadata.xml`, metadata(['1.0', '1.1']));
        // metadataMaxAge 0: every read revalidates (nginx's Last-Modified has second resolution).
        await new Promise((r) => setTimeout(r, 1100));
        file(`${db}/org/fx/good/maven-metadata.xml`, metadata(['1.0', '1.1']));
        const md = await (await get(`strict-${db}`, 'org/fx/good/maven-metadata.xml')).text();
        assert.match(md, /<version>1\.1<\/version>/);
        assert.equal(await (await get(`strict-${db}`, 'org/fx/good/maven-metadata.xml.sha1')).text(), sha1(md));
      });

      it('keeps the coordinates of what it caches as asset attributes (maven.extension search)', async () => {
        await (await get(`strict-${db}`, 'org/fx/good/1.0/good-1.0.jar')).arrayBuffer();
        const search = async (q: string) =>
          ((await (await s.fetch(`/service/rest/v1/search/assets?repository=strict-${db}&${q}`)).json()) as { items: Array<{ path: string }> }).items.map((a) => a.path);
        assert.deepEqual(await search('maven.extension=jar'), ['org/fx/good/1.0/good-1.0.jar']);
        assert.deepEqual(await search('maven.extension=pom'), []);
      });

      it('remembers a 404 (negative cache): a file appearing upstream later is not asked for again', async () => {
        const p = 'org/fx/late/1.0/late-1.0.jar';
        assert.equal((await get(`warn-${db}`, p)).status, 404);
        file(`${db}/${p}`, jar());
        assert.equal((await get(`warn-${db}`, p)).status, 404);
        assert.equal(upstreamHits(`${db}/${p}`), 1);
        unlinkSync(path.join(tree, db, p));
      });

      it('keeps a release proxy out of snapshot lookups; a group merges hosted and proxy metadata', async () => {
        file(`${db}/org/fx/good/1.1-SNAPSHOT/maven-metadata.xml`, '<metadata/>');
        assert.equal((await get(`release-${db}`, 'org/fx/good/1.1-SNAPSHOT/maven-metadata.xml')).status, 404);
        assert.equal(upstreamHits(`${db}/org/fx/good/1.1-SNAPSHOT/maven-metadata.xml`), 0);

        const put = (p: string, body: string | Buffer) => s.fetch(`/repository/hosted-${db}/${p}`, { method: 'PUT', body: typeof body === 'string' ? body : new Uint8Array(body) });
        assert.equal((await put('org/fx/good/0.9/good-0.9.pom', '<project/>')).status, 201);
        const merged = await (await get(`group-${db}`, 'org/fx/good/maven-metadata.xml')).text();
        assert.match(merged, /<versions>\s*<version>0\.9<\/version>\s*<version>1\.0<\/version>\s*<version>1\.1<\/version>\s*<\/versions>/);
        assert.match(merged, /<release>1\.1<\/release>/);
        assert.equal(await (await get(`group-${db}`, 'org/fx/good/maven-metadata.xml.sha1')).text(), sha1(merged));
      });
    });
  }
});
