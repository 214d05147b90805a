/**
 * Cleanup of Maven, PyPI and yum hosted repositories, content uploaded over HTTP as their clients
 * do: each format's version order drives `retain` (Maven's ComparableVersion with a timestamped
 * snapshot build ordered as its `-SNAPSHOT` base version, PEP 440, rpmvercmp over EVR), its
 * prerelease rule drives `criteriaReleaseType`, and its maintenance hook keeps the derived
 * documents true after cleanup's deletes (maven-metadata.xml, the simple pages and `.metadata`
 * files, repodata). Preview names exactly what the run deletes, and the run reports the bytes
 * it reclaimed per repository.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { XMLParser } from 'fast-xml-parser';
import { DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { jar } from '../helpers/maven.js';
import { buildWheel } from '../helpers/pypi-dist.js';
import { buildRpms } from '../helpers/rpm.js';
import { createPolicy, json, label, previewAll, runPolicy, type Preview } from '../helpers/cleanup.js';

const API = '/service/rest/v1';
const hash = (alg: string, b: Buffer | string) => createHash(alg).update(b).digest('hex');
const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  textNodeName: '#text',
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (n) => ['package', 'data', 'version'].includes(n),
});
const pomOf = (g: string, a: string, v: string, build: string) =>
  `<?xml version="1.0"?><project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion><groupId>${g}</groupId><artifactId>${a}</artifactId><version>${v}</version><!-- ${build} --></project>\n`;
const PIP_JSON = 'application/vnd.pypi.simple.v1+json';

let work: string;
let wheels: Map<string, string>;
let rpms: string[];

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'stowage-cleanup-formats-'));
  wheels = new Map();
  for (const [name, version] of [
    ['alpha', '1.9'],
    ['alpha', '1.10'],
    ['beta', '2.0'],
    ['beta', '2.0rc1'],
    ['gamma', '1.0'],
    ['gamma', '1.1rc1'],
    ['gamma', '1.2.dev3'],
    ['gamma', '1.3a1'],
  ])
    wheels.set(`${name}:${version}`, buildWheel(path.join(work, 'wheels'), { name, version }));
  // Built (and uploaded) in an order that neither text nor date order would rank right.
  rpms = await buildRpms(path.join(work, 'rpm'), [
    { name: 'ym', version: '0.5', epoch: 1 },
    { name: 'ym', version: '1.10' },
    { name: 'ym', version: '1.9' },
  ]);
});
after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** `<repo>: deleted C components and A assets; removed B blobs, reclaimed N bytes` of a run's log. */
function reported(log: string, repo: string): { components: number; assets: number; bytes: number } {
  const m = new RegExp(`${repo}: deleted (\\d+) components and (\\d+) assets.*reclaimed (\\d+) bytes`).exec(log);
  assert.ok(m, `no report for ${repo} in:\n${log}`);
  return { components: Number(m[1]), assets: Number(m[2]), bytes: Number(m[3]) };
}

/** Previews, runs, and checks the run deleted and reclaimed exactly what the preview named. */
async function previewAndRun(s: TestServer, policy: string, repo: string): Promise<Preview> {
  const preview = await previewAll(s, policy, repo);
  const run = await runPolicy(s, policy, repo);
  assert.equal(run.result, 'OK', run.message);
  assert.deepEqual(reported(run.log, repo), preview.totals, 'the run deleted and reclaimed what the preview said');
  const left = await json<{ items: Array<{ group: string | null; name: string; version: string }> }>(s, `${API}/components?repository=${repo}`);
  const gone = new Set(preview.items.map(label));
  assert.deepEqual(
    left.body.items.map(label).filter((l) => gone.has(l)),
    [],
    'every previewed component is gone',
  );
  return preview;
}

const usePolicies = (s: TestServer, format: string, name: string, policyNames: string[], extra: Record<string, unknown> = {}) =>
  json(s, `${API}/repositories/${format}/hosted/${name}`, {
    method: 'PUT',
    body: JSON.stringify({
      name,
      online: true,
      storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW' },
      cleanup: { policyNames },
      ...extra,
    }),
  });

for (const db of DATABASES) {
  describe(`cleanup of Maven, PyPI and yum (${db})`, () => {
    let s: TestServer;
    const get = (repo: string, p: string, headers: Record<string, string> = {}) => s.fetch(`/repository/${repo}/${p}`, { headers });

    before(async () => {
      s = await startServer({ db });
      await s.repo('maven2', 'hosted', { name: 'mvn', storage: { writePolicy: 'ALLOW' }, maven: { versionPolicy: 'MIXED', layoutPolicy: 'STRICT' } });
      await s.repo('pypi', 'hosted', { name: 'py', storage: { writePolicy: 'ALLOW' } });
      await s.repo('yum', 'hosted', { name: 'yum', storage: { writePolicy: 'ALLOW' } });
    });
    after(async () => s?.stop());

    describe('Maven', () => {
      const put = async (p: string, body: Buffer | string) => {
        const r = await s.fetch(`/repository/mvn/${p}`, { method: 'PUT', body: typeof body === 'string' ? body : new Uint8Array(body) });
        assert.ok(r.status === 201 || r.status === 200, `${p}: ${r.status} ${r.statusText}`);
        for (const alg of ['sha1', 'md5']) assert.equal((await s.fetch(`/repository/mvn/${p}.${alg}`, { method: 'PUT', body: hash(alg, body) })).status, 201);
      };
      const deploy = async (artifact: string, version: string, fileVersion = version) => {
        const dir = `org/acme/${artifact}/${version}`;
        await put(`${dir}/${artifact}-${fileVersion}.jar`, jar());
        await put(`${dir}/${artifact}-${fileVersion}.pom`, pomOf('org.acme', artifact, version, fileVersion));
      };
      /** A metadata document over HTTP, checked against the checksums served beside it. */
      const metadata = async (p: string) => {
        const r = await get('mvn', `${p}/maven-metadata.xml`);
        if (r.status === 404) return null;
        assert.equal(r.status, 200, p);
        const text = await r.text();
        for (const alg of ['sha1', 'md5', 'sha256']) assert.equal(await (await get('mvn', `${p}/maven-metadata.xml.${alg}`)).text(), hash(alg, text), `${p} ${alg}`);
        return text;
      };
      const versionsOf = (text: string) => (xml.parse(text).metadata.versioning.versions?.version ?? []).map(String);

      before(async () => {
        // Deployed out of version order: retain by version follows neither the dates nor the text.
        for (const v of ['1.10', '1.0', '1.9', '1.0-alpha']) await deploy('lib', v);
        for (const b of ['20261101.100000-1', '20261102.100000-2', '20261103.100000-3']) await deploy('lib', '2.0-SNAPSHOT', `2.0-${b}`);
        // A snapshot whose release is out: its builds rank below the release.
        for (const b of ['20261101.100000-1', '20261102.100000-2']) await deploy('tool', '1.1-SNAPSHOT', `1.1-${b}`);
        await deploy('tool', '1.1');
        await deploy('tool', '1.0');
      });

      it('PRERELEASES + retain removes old snapshot builds, leaves releases, and rebuilds both metadata levels', async () => {
        await createPolicy(s, { name: 'mvn-snapshots', format: 'maven2', criteriaReleaseType: 'PRERELEASES', retain: 2, sortBy: 'version' });
        assert.equal((await usePolicies(s, 'maven', 'mvn', ['mvn-snapshots'], { maven: { versionPolicy: 'MIXED', layoutPolicy: 'STRICT' } })).status, 204);
        const preview = await previewAndRun(s, 'mvn-snapshots', 'mvn');
        // lib: its two newest are the builds 3 and 2; tool: release 1.1 ranks above its own snapshot builds.
        assert.deepEqual(preview.items.map(label).sort(), ['org.acme:lib:2.0-20261101.100000-1', 'org.acme:tool:1.1-20261101.100000-1']);
        assert.equal(preview.totals.assets, 4);
        assert.deepEqual(versionsOf((await metadata('org/acme/lib'))!), ['1.0-alpha', '1.0', '1.9', '1.10', '2.0-SNAPSHOT']);
        for (const v of ['1.0-alpha', '1.0', '1.9', '1.10']) assert.equal((await get('mvn', `org/acme/lib/${v}/lib-${v}.jar`)).status, 200, v);
        assert.equal((await get('mvn', 'org/acme/lib/2.0-SNAPSHOT/lib-2.0-20261101.100000-1.jar')).status, 404);
        assert.equal((await get('mvn', 'org/acme/lib/2.0-SNAPSHOT/lib-2.0-20261102.100000-2.jar')).status, 200);

        // The newest build deleted: the snapshot metadata names the one before it.
        await createPolicy(s, { name: 'mvn-build-3', format: 'maven2', criteriaReleaseType: 'PRERELEASES', criteriaAssetRegex: '-20261103\\.100000-3\\.' });
        assert.equal((await usePolicies(s, 'maven', 'mvn', ['mvn-build-3'], { maven: { versionPolicy: 'MIXED', layoutPolicy: 'STRICT' } })).status, 204);
        assert.match((await metadata('org/acme/lib/2.0-SNAPSHOT'))!, /<buildNumber>3<\/buildNumber>/);
        await previewAndRun(s, 'mvn-build-3', 'mvn');
        const snap = (await metadata('org/acme/lib/2.0-SNAPSHOT'))!;
        assert.doesNotMatch(snap, /20261103\.100000|-3</, 'the deleted build is no longer listed');
        assert.match(snap, /<timestamp>20261102\.100000<\/timestamp>\s*<buildNumber>2<\/buildNumber>/);
        assert.match(snap, /<extension>pom<\/extension>\s*<value>2\.0-20261102\.100000-2<\/value>/);
        assert.match((await metadata('org/acme/tool/1.1-SNAPSHOT'))!, /<buildNumber>2<\/buildNumber>/);
      });

      it('retain N by version follows Maven order (1.0-alpha before 1.0, 1.10 after 1.9); a snapshot wholly deleted leaves the artifact metadata', async () => {
        const policy = async (body: Record<string, unknown>) => {
          await createPolicy(s, { format: 'maven2', ...body });
          assert.equal((await usePolicies(s, 'maven', 'mvn', [String(body.name)], { maven: { versionPolicy: 'MIXED', layoutPolicy: 'STRICT' } })).status, 204);
          return previewAndRun(s, String(body.name), 'mvn');
        };
        // lib, newest first: 2.0-…-2 (2.0-SNAPSHOT is after 1.10), 1.10, 1.9, 1.0; 1.0-alpha goes.
        let preview = await policy({ name: 'mvn-keep-4', retain: 4, sortBy: 'version', criteriaAssetRegex: '/lib/' });
        assert.deepEqual(preview.items.map(label), ['org.acme:lib:1.0-alpha']);
        assert.deepEqual(versionsOf((await metadata('org/acme/lib'))!), ['1.0', '1.9', '1.10', '2.0-SNAPSHOT']);

        await policy({ name: 'mvn-all-snapshots', criteriaReleaseType: 'PRERELEASES' });
        assert.equal(await metadata('org/acme/lib/2.0-SNAPSHOT'), null, 'no builds left: no snapshot metadata');
        assert.equal(await metadata('org/acme/tool/1.1-SNAPSHOT'), null);
        assert.deepEqual(versionsOf((await metadata('org/acme/lib'))!), ['1.0', '1.9', '1.10']);
        assert.deepEqual(versionsOf((await metadata('org/acme/tool'))!), ['1.0', '1.1']);

        preview = await policy({ name: 'mvn-keep-1', retain: 1, sortBy: 'version', criteriaAssetRegex: '/lib/' });
        assert.deepEqual(preview.items.map(label).sort(), ['org.acme:lib:1.0', 'org.acme:lib:1.9']);
        const md = (await metadata('org/acme/lib'))!;
        assert.deepEqual(versionsOf(md), ['1.10']);
        assert.match(md, /<latest>1\.10<\/latest>\s*<release>1\.10<\/release>/);
      });
    });

    describe('PyPI', () => {
      const upload = async (key: string) => {
        const [name, version] = key.split(':');
        const file = wheels.get(key)!;
        const bytes = await readFile(file);
        const f = new FormData();
        const fields = {
          ':action': 'file_upload',
          protocol_version: '1',
          name,
          version,
          filetype: 'bdist_wheel',
          pyversion: 'py3',
          metadata_version: '2.1',
          sha256_digest: hash('sha256', bytes),
        };
        for (const [k, v] of Object.entries(fields)) f.append(k, v);
        f.append('content', new Blob([new Uint8Array(bytes)]), path.basename(file));
        const r = await s.fetch('/repository/py/', { method: 'POST', body: f });
        assert.equal(r.status, 200, `${key}: ${r.status} ${await r.text()}`);
      };
      /** The file names a project's simple page lists, in JSON and in HTML (asserted the same). */
      const listed = async (project: string): Promise<string[]> => {
        const j = await get('py', `simple/${project}/`, { Accept: PIP_JSON });
        if (j.status === 404) return [];
        assert.equal(j.status, 200);
        const body = (await j.json()) as { files: Array<{ filename: string; url: string }> };
        const fromJson = body.files.map((f) => f.filename).sort();
        const h = await (await get('py', `simple/${project}/`, { Accept: 'text/html' })).text();
        const fromHtml = [...h.matchAll(/<a [^>]*>([^<]+)<\/a>/g)].map((m) => m[1]).sort();
        assert.deepEqual(fromHtml, fromJson, 'HTML and JSON list the same files');
        return fromJson;
      };
      const metadataStatus = async (project: string, file: string) => (await get('py', `packages/${project}/${file}.metadata`)).status;

      before(async () => {
        for (const k of ['alpha:1.10', 'alpha:1.9', 'beta:2.0', 'beta:2.0rc1', 'gamma:1.0', 'gamma:1.1rc1', 'gamma:1.2.dev3', 'gamma:1.3a1']) await upload(k);
      });

      it('retain by PEP 440 order: 1.10 > 1.9 and 2.0rc1 < 2.0, whatever the upload order', async () => {
        await createPolicy(s, { name: 'py-keep-1', format: 'pypi', retain: 1, sortBy: 'version', criteriaAssetRegex: '/(alpha|beta)-' });
        assert.equal((await usePolicies(s, 'pypi', 'py', ['py-keep-1'])).status, 204);
        assert.equal(await metadataStatus('alpha', 'alpha-1.9-py3-none-any.whl'), 200);
        const preview = await previewAndRun(s, 'py-keep-1', 'py');
        assert.deepEqual(preview.items.map(label).sort(), ['alpha:1.9', 'beta:2.0rc1']);
        assert.equal(preview.totals.assets, 4, 'each wheel and its .metadata file');
        assert.deepEqual(await listed('alpha'), ['alpha-1.10-py3-none-any.whl']);
        assert.deepEqual(await listed('beta'), ['beta-2.0-py3-none-any.whl']);
        assert.equal(await metadataStatus('alpha', 'alpha-1.9-py3-none-any.whl'), 404);
        assert.equal(await metadataStatus('beta', 'beta-2.0rc1-py3-none-any.whl'), 404);
        assert.equal(await metadataStatus('alpha', 'alpha-1.10-py3-none-any.whl'), 200);
      });

      it('PRERELEASES selects rc, dev and alpha versions; the pages and .metadata files follow', async () => {
        await createPolicy(s, { name: 'py-pre', format: 'pypi', criteriaReleaseType: 'PRERELEASES' });
        assert.equal((await usePolicies(s, 'pypi', 'py', ['py-pre'])).status, 204);
        const preview = await previewAndRun(s, 'py-pre', 'py');
        assert.deepEqual(preview.items.map(label).sort(), ['gamma:1.1rc1', 'gamma:1.2.dev3', 'gamma:1.3a1']);
        assert.deepEqual(await listed('gamma'), ['gamma-1.0-py3-none-any.whl']);
        for (const v of ['1.1rc1', '1.2.dev3', '1.3a1']) assert.equal(await metadataStatus('gamma', `gamma-${v}-py3-none-any.whl`), 404, v);
        const info = await get('py', 'pypi/gamma/json');
        assert.equal(info.status, 200);
        const body = (await info.json()) as { info: { version: string }; releases: Record<string, unknown> };
        assert.equal(body.info.version, '1.0');
        assert.deepEqual(Object.keys(body.releases), ['1.0'], 'the JSON API lists no deleted release');
      });
    });

    describe('yum', () => {
      /** repomd.xml's entries, each file fetched and checked against its checksum; primary's packages as name-[epoch:]ver-rel. */
      const packages = async () => {
        const repomd = xml.parse(await (await get('yum', 'repodata/repomd.xml')).text());
        let primary: string[] | null = null;
        for (const d of repomd.repomd.data) {
          const r = await get('yum', d.location.href);
          assert.equal(r.status, 200, d.location.href);
          const gz = Buffer.from(await r.arrayBuffer());
          assert.equal(hash('sha256', gz), d.checksum['#text'], `${d.type} checksum`);
          assert.equal(gz.length, Number(d.size), `${d.type} size`);
          if (d.type === 'primary') {
            const doc = xml.parse(gunzipSync(gz).toString());
            primary = (doc.metadata.package ?? []).map((p: { name: string; version: { epoch: string; ver: string; rel: string }[] }) => {
              const v = p.version[0];
              return `${p.name}-${v.epoch === '0' ? '' : `${v.epoch}:`}${v.ver}-${v.rel}`;
            });
          }
        }
        assert.ok(primary, 'repomd lists primary');
        return primary.sort();
      };

      before(async () => {
        for (const f of rpms) {
          const r = await s.fetch(`/repository/yum/${path.basename(f)}`, {
            method: 'PUT',
            body: new Uint8Array(await readFile(f)),
            headers: { 'Content-Type': 'application/x-rpm' },
          });
          assert.equal(r.status, 201, f);
        }
      });

      it('retain by rpmvercmp over EVR; repodata rebuilt without the deleted package', async () => {
        assert.deepEqual(await packages(), ['ym-1.10-1', 'ym-1.9-1', 'ym-1:0.5-1']);
        await createPolicy(s, { name: 'yum-keep-2', format: 'yum', retain: 2, sortBy: 'version' });
        assert.equal((await usePolicies(s, 'yum', 'yum', ['yum-keep-2'], { yum: { repodataDepth: 0, deployPolicy: 'STRICT' } })).status, 204);
        const preview = await previewAndRun(s, 'yum-keep-2', 'yum');
        // The epoch wins over any version; 1.10 is after 1.9.
        assert.deepEqual(preview.items.map(label), ['ym:1.9-1']);
        assert.ok(preview.totals.bytes > 0);
        assert.deepEqual(await packages(), ['ym-1.10-1', 'ym-1:0.5-1']);
        assert.equal((await get('yum', 'ym-1.9-1.noarch.rpm')).status, 404);
      });
    });
  });
}
