/**
 * Maven as Nexus behaves where the first cut differed, on SQLite and PostgreSQL: search by the
 * asset files' extension and classifier and by an exact baseVersion, a proxy's cache ages
 * defaulting to Nexus's maven2 ones, the version policy applied to component uploads, a POM
 * generated on an upload with `maven2.generate-pom`, coordinates taken from an uploaded POM, and plain
 * `-SNAPSHOT` files redeployable under ALLOW_ONCE.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { jar } from '../helpers/maven.js';

const JSON_HEADERS = { 'Content-Type': 'application/json' };

for (const db of DATABASES) {
  describe(`Maven as Nexus (${db})`, () => {
    let s: TestServer;
    const create = async (type: string, body: Record<string, unknown>) => {
      const r = await s.fetch(`/service/rest/v1/repositories/maven/${type}`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify(body) });
      assert.equal(r.status, 201, await r.text());
    };
    const put = (repo: string, path: string, body: Buffer | string) =>
      s.fetch(`/repository/${repo}/${path}`, { method: 'PUT', body: typeof body === 'string' ? body : new Uint8Array(body) });
    const deployed = async (repo: string, path: string, body: Buffer | string = jar()) => {
      const r = await put(repo, path, body);
      assert.ok(r.status === 201 || r.status === 200, `${path}: ${r.status} ${r.statusText}`);
    };

    before(async () => {
      s = await startServer({ db });
      await create('hosted', { name: 'rel', storage: { writePolicy: 'ALLOW_ONCE' }, maven: { versionPolicy: 'RELEASE' } });
      await create('hosted', { name: 'snap', storage: { writePolicy: 'ALLOW_ONCE' }, maven: { versionPolicy: 'SNAPSHOT' } });
      await create('hosted', { name: 'mixed', storage: { writePolicy: 'ALLOW' }, maven: { versionPolicy: 'MIXED' } });
    });
    after(async () => s?.stop());

    it('searches by the asset files’ extension and classifier, and by an exact baseVersion', async () => {
      await deployed('mixed', 'org/nx/lib/1.0/lib-1.0.jar');
      await deployed('mixed', 'org/nx/lib/1.0/lib-1.0-sources.jar');
      await deployed('mixed', 'org/nx/lib/1.0/lib-1.0.pom', '<project><modelVersion>4.0.0</modelVersion></project>');
      await deployed('mixed', 'org/nx/lib/1.0-beta/lib-1.0-beta.jar');
      await deployed('mixed', 'org/nx/lib/1.0-SNAPSHOT/lib-1.0-20261201.120000-1.jar');
      const assets = async (q: string) =>
        ((await (await s.fetch(`/service/rest/v1/search/assets?repository=mixed&maven.artifactId=lib&${q}`)).json()) as { items: Array<{ path: string }> }).items
          .map((a) => a.path)
          .sort();
      const components = async (q: string) =>
        (
          (await (await s.fetch(`/service/rest/v1/search?repository=mixed&maven.artifactId=lib&${q}`)).json()) as {
            items: Array<{ version: string; assets: Array<{ path: string }> }>;
          }
        ).items
          .map((c) => `${c.version}: ${c.assets.map((a) => a.path.split('/').pop()).join(' ')}`)
          .sort();

      assert.deepEqual(await assets('maven.baseVersion=1.0&maven.extension=jar&maven.classifier=sources'), ['org/nx/lib/1.0/lib-1.0-sources.jar']);
      assert.deepEqual(await assets('maven.baseVersion=1.0&maven.extension=pom'), ['org/nx/lib/1.0/lib-1.0.pom']);
      assert.deepEqual(await assets('maven.extension=war'), []);
      // A component matches through one of its files, and lists only the matching ones.
      assert.deepEqual(await components('maven.classifier=sources'), ['1.0: lib-1.0-sources.jar']);
      assert.deepEqual(await components('maven.extension=jar&maven.baseVersion=1.0'), ['1.0: lib-1.0.jar lib-1.0-sources.jar']);
      // A snapshot's builds, not a release whose version merely starts the same way.
      assert.deepEqual(await components('maven.baseVersion=1.0-SNAPSHOT'), ['1.0-20261201.120000-1: lib-1.0-20261201.120000-1.jar']);
      assert.deepEqual(await components('maven.baseVersion=1.0-*'), ['1.0-20261201.120000-1: lib-1.0-20261201.120000-1.jar', '1.0-beta: lib-1.0-beta.jar']);

      const pom = await s.fetch('/service/rest/v1/search/assets/download?repository=mixed&maven.artifactId=lib&maven.baseVersion=1.0&maven.extension=pom', { redirect: 'manual' });
      assert.equal(pom.status, 302);
      assert.match(pom.headers.get('location') ?? '', /\/repository\/mixed\/org\/nx\/lib\/1\.0\/lib-1\.0\.pom$/);
      const latestSources = await s.fetch('/service/rest/v1/search/assets/download?repository=mixed&maven.artifactId=lib&maven.classifier=sources&sort=version', {
        redirect: 'manual',
      });
      assert.equal(latestSources.status, 302);
      assert.match(latestSources.headers.get('location') ?? '', /lib-1\.0-sources\.jar$/);
    });

    it('gives a proxy created without cache ages those of Nexus’s maven2 proxies (content -1, metadata 1440)', async () => {
      await create('proxy', { name: 'central', proxy: { remoteUrl: 'http://127.0.0.1:9/maven2/' }, maven: { versionPolicy: 'RELEASE' } });
      const cfg = (await (await s.fetch('/service/rest/v1/repositories/maven/proxy/central')).json()) as { proxy: { contentMaxAge: number; metadataMaxAge: number } };
      assert.equal(cfg.proxy.contentMaxAge, -1);
      assert.equal(cfg.proxy.metadataMaxAge, 1440);
      await create('proxy', { name: 'central-short', proxy: { remoteUrl: 'http://127.0.0.1:9/maven2/', contentMaxAge: 60, metadataMaxAge: 5 } });
      const own = (await (await s.fetch('/service/rest/v1/repositories/maven/proxy/central-short')).json()) as { proxy: { contentMaxAge: number; metadataMaxAge: number } };
      assert.deepEqual([own.proxy.contentMaxAge, own.proxy.metadataMaxAge], [60, 5]);
    });

    it('applies the version policy to a component upload (400, nothing stored)', async () => {
      const upload = (repo: string, version: string) => {
        const form = new FormData();
        form.set('maven2.groupId', 'org.nx.up');
        form.set('maven2.artifactId', 'up');
        form.set('maven2.version', version);
        form.set('maven2.asset1', new Blob([new Uint8Array(jar())]), 'a.jar');
        form.set('maven2.asset1.extension', 'jar');
        return s.fetch(`/service/rest/v1/components?repository=${repo}`, { method: 'POST', body: form });
      };
      const snapToRelease = await upload('rel', '2.0-SNAPSHOT');
      assert.equal(snapToRelease.status, 400);
      assert.match(await snapToRelease.text(), /Repository version policy: RELEASE does not allow version: 2\.0-SNAPSHOT/);
      const releaseToSnap = await upload('snap', '2.0');
      assert.equal(releaseToSnap.status, 400);
      assert.match(await releaseToSnap.text(), /Repository version policy: SNAPSHOT does not allow version: 2\.0/);
      for (const repo of ['rel', 'snap']) {
        assert.deepEqual(await s.app.content.findAssets((await s.app.repositories.require(repo)).id, { pathPrefix: 'org/nx/up/' }), []);
      }
      const stored = await upload('rel', '2.0');
      assert.equal(stored.status, 204, await stored.text());
    });

    it('generates a POM on a component upload with maven2.generate-pom, checksummed and listed in maven-metadata.xml', async () => {
      const upload = (fields: Record<string, string>, files: Record<string, Buffer>) => {
        const form = new FormData();
        for (const [k, v] of Object.entries({ 'maven2.groupId': 'org.nx.gen', 'maven2.artifactId': 'gen', ...fields })) form.set(k, v);
        for (const [k, v] of Object.entries(files)) form.set(k, new Blob([new Uint8Array(v)]), 'f');
        return s.fetch('/service/rest/v1/components?repository=rel', { method: 'POST', body: form });
      };
      const body = jar();
      const stored = await upload(
        { 'maven2.version': '1.0', 'maven2.generate-pom': 'true', 'maven2.asset1.extension': 'jar', 'maven2.asset2.extension': 'jar', 'maven2.asset2.classifier': 'sources' },
        { 'maven2.asset1': body, 'maven2.asset2': jar() },
      );
      assert.equal(stored.status, 204, await stored.text());
      const pomUrl = '/repository/rel/org/nx/gen/gen/1.0/gen-1.0.pom';
      const pom = await s.fetch(pomUrl);
      assert.equal(pom.status, 200);
      const xml = await pom.text();
      assert.match(xml, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<project [^>]*>/);
      for (const [tag, value] of [
        ['modelVersion', '4.0.0'],
        ['groupId', 'org.nx.gen'],
        ['artifactId', 'gen'],
        ['version', '1.0'],
        ['packaging', 'jar'],
      ]) {
        assert.match(xml, new RegExp(`<${tag}>${value.replace(/\./g, '\\.')}</${tag}>`), tag);
      }
      assert.equal(await (await s.fetch(`${pomUrl}.sha1`)).text(), createHash('sha1').update(xml).digest('hex'));
      assert.deepEqual(Buffer.from(await (await s.fetch('/repository/rel/org/nx/gen/gen/1.0/gen-1.0.jar')).arrayBuffer()), body);
      // The maintenance hook saw the generated POM like any deployed file.
      assert.match(await (await s.fetch('/repository/rel/org/nx/gen/gen/maven-metadata.xml')).text(), /<version>1\.0<\/version>/);
      const search = (await (await s.fetch('/service/rest/v1/search/assets?repository=rel&maven.artifactId=gen&maven.extension=pom')).json()) as { items: Array<{ path: string }> };
      assert.deepEqual(
        search.items.map((a) => a.path),
        ['org/nx/gen/gen/1.0/gen-1.0.pom'],
      );

      // maven2.packaging names the packaging; without it, the main (unclassified) file's extension.
      const war = await upload(
        { 'maven2.version': '2.0', 'maven2.generate-pom': 'true', 'maven2.packaging': 'bundle', 'maven2.asset1.extension': 'jar' },
        { 'maven2.asset1': jar() },
      );
      assert.equal(war.status, 204, await war.text());
      assert.match(await (await s.fetch('/repository/rel/org/nx/gen/gen/2.0/gen-2.0.pom')).text(), /<packaging>bundle<\/packaging>/);
      const zip = await upload({ 'maven2.version': '3.0', 'maven2.generate-pom': 'true', 'maven2.asset1.extension': 'zip' }, { 'maven2.asset1': jar() });
      assert.equal(zip.status, 204, await zip.text());
      assert.match(await (await s.fetch('/repository/rel/org/nx/gen/gen/3.0/gen-3.0.pom')).text(), /<packaging>zip<\/packaging>/);

      // A POM uploaded and one to generate: refused, naming the field; nothing stored.
      const both = await upload(
        { 'maven2.version': '4.0', 'maven2.generate-pom': 'true', 'maven2.asset1.extension': 'jar', 'maven2.asset2.extension': 'pom' },
        { 'maven2.asset1': jar(), 'maven2.asset2': Buffer.from('<project><modelVersion>4.0.0</modelVersion></project>') },
      );
      assert.equal(both.status, 400);
      assert.match(await both.text(), /maven2\.generate-pom/);
      const badPackaging = await upload(
        { 'maven2.version': '4.0', 'maven2.generate-pom': 'true', 'maven2.packaging': '<x>', 'maven2.asset1.extension': 'jar' },
        { 'maven2.asset1': jar() },
      );
      assert.equal(badPackaging.status, 400);
      assert.match(await badPackaging.text(), /maven2\.packaging/);
      assert.deepEqual(await s.app.content.findAssets((await s.app.repositories.require('rel')).id, { pathPrefix: 'org/nx/gen/gen/4.0/' }), []);
      // Without generate-pom no POM appears.
      const plain = await upload({ 'maven2.version': '5.0', 'maven2.generate-pom': 'false', 'maven2.asset1.extension': 'jar' }, { 'maven2.asset1': jar() });
      assert.equal(plain.status, 204, await plain.text());
      assert.equal((await s.fetch('/repository/rel/org/nx/gen/gen/5.0/gen-5.0.pom')).status, 404);
    });

    it('takes coordinates not given as fields from the uploaded POM, inheriting from its parent', async () => {
      const upload = (fields: Record<string, string>, pom: string) => {
        const form = new FormData();
        for (const [k, v] of Object.entries({ 'maven2.asset1.extension': 'jar', 'maven2.asset2.extension': 'pom', ...fields })) form.set(k, v);
        form.set('maven2.asset1', new Blob([new Uint8Array(jar())]), 'a.jar');
        form.set('maven2.asset2', new Blob([pom]), 'pom.xml');
        return s.fetch('/service/rest/v1/components?repository=rel', { method: 'POST', body: form });
      };
      const pom =
        '<project><modelVersion>4.0.0</modelVersion><parent><groupId>org.nx.parent</groupId><artifactId>p</artifactId><version>9</version></parent>' +
        '<groupId>org.nx.frompom</groupId><artifactId>fp</artifactId><version>1.2</version></project>';
      const stored = await upload({}, pom);
      assert.equal(stored.status, 204, await stored.text());
      assert.equal(await (await s.fetch('/repository/rel/org/nx/frompom/fp/1.2/fp-1.2.pom')).text(), pom);
      assert.equal((await s.fetch('/repository/rel/org/nx/frompom/fp/1.2/fp-1.2.jar')).status, 200);
      // groupId and version from <parent>.
      const inherited = await upload(
        {},
        '<project><parent><groupId>org.nx.inh</groupId><artifactId>p</artifactId><version>3.1</version></parent><artifactId>child</artifactId></project>',
      );
      assert.equal(inherited.status, 204, await inherited.text());
      assert.equal((await s.fetch('/repository/rel/org/nx/inh/child/3.1/child-3.1.jar')).status, 200);
      // A field given wins; one the POM leaves to an expression is required.
      const given = await upload({ 'maven2.version': '1.3' }, pom.replace('<version>1.2</version>', '<version>${revision}</version>'));
      assert.equal(given.status, 204, await given.text());
      assert.equal((await s.fetch('/repository/rel/org/nx/frompom/fp/1.3/fp-1.3.jar')).status, 200);
      const expression = await upload({}, pom.replace('<version>1.2</version>', '<version>${revision}</version>'));
      assert.equal(expression.status, 400);
      assert.match(await expression.text(), /maven2\.version: is required/);
      const broken = await upload({}, '<project><artifactId>x</artifactId>');
      assert.equal(broken.status, 400);
      assert.match(await broken.text(), /maven2\.asset2: the POM is not well-formed XML/);
      const notPom = await upload({}, '<settings/>');
      assert.equal(notPom.status, 400);
      assert.match(await notPom.text(), /maven2\.asset2: the POM's root element is <settings>/);
    });

    it('serves a group’s merged metadata again from memory: same bytes, ranges, and a new deploy at once', async () => {
      await create('hosted', { name: 'mixed2', storage: { writePolicy: 'ALLOW' }, maven: { versionPolicy: 'MIXED' } });
      await create('group', { name: 'grp', group: { memberNames: ['mixed', 'mixed2'] } });
      await deployed('mixed2', 'org/nx/lib/7.0/lib-7.0.jar');
      const url = '/repository/grp/org/nx/lib/maven-metadata.xml';
      const first = await (await s.fetch(url)).text();
      assert.match(first, /<version>1\.0<\/version>[\s\S]*<version>7\.0<\/version>/);
      assert.equal(await (await s.fetch(url)).text(), first);
      const part = await s.fetch(url, { headers: { Range: 'bytes=0-9' } });
      assert.equal(part.status, 206);
      assert.equal(await part.text(), first.slice(0, 10));
      await deployed('mixed2', 'org/nx/lib/8.0/lib-8.0.jar');
      assert.match(await (await s.fetch(url)).text(), /<version>8\.0<\/version>/);
    });

    it('redeploys a plain -SNAPSHOT file under ALLOW_ONCE, never a timestamped build', async () => {
      const plain = 'org/nx/snap/3.0-SNAPSHOT/snap-3.0-SNAPSHOT.jar';
      await deployed('snap', plain, jar());
      const second = jar();
      const again = await put('snap', plain, second);
      assert.equal(again.status, 200, again.statusText);
      assert.deepEqual(Buffer.from(await (await s.fetch(`/repository/snap/${plain}`)).arrayBuffer()), second);
      const build = 'org/nx/snap/3.0-SNAPSHOT/snap-3.0-20261201.120000-1.jar';
      await deployed('snap', build);
      const refused = await put('snap', build, jar());
      assert.equal(refused.status, 400);
      assert.equal(refused.statusText, 'Repository does not allow updating assets: snap');
    });
  });
}
