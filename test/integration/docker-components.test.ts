/**
 * Docker images are components, as in Nexus: name = image name, version = tag, owning the asset
 * `v2/<name>/manifests/<tag>`; manifests by digest and layers are shared, component-less assets.
 * Pushed with skopeo, listed and searched through the REST API as Nexus automation does, every
 * `downloadUrl` fetched, a tag deleted as a component (and as an asset), then the docker GC task
 * reclaims what only that tag used. Also: re-pushing a tag moves its component, deleting a
 * manifest by digest removes the components of its tags, a proxy's cached tags are components
 * too, and the migration gives components to tags stored before. SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ADMIN_PASSWORD, DATABASES, runTask, startServer, type TestServer } from '../helpers/stowage.js';
import { skopeo } from '../helpers/oci.js';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { down as unmigrateComponents, up as migrateComponents } from '../../migrations/20261201_020_docker_components.js';

const run = promisify(execFile);
const API = '/service/rest/v1';
const sha256 = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');

interface AssetXO {
  id: string;
  path: string;
  downloadUrl: string;
  repository: string;
  format: string;
  checksum: { sha256: string };
  contentType: string;
  fileSize: number;
}
interface ComponentXO {
  id: string;
  repository: string;
  format: string;
  group: string | null;
  name: string;
  version: string | null;
  assets: AssetXO[];
}
interface Page<T> {
  items: T[];
  continuationToken: string | null;
}
interface Image {
  manifest: string;
  config: string;
  layers: string[];
}

let work: string;
let layout: string;

function blob(digest: string): Buffer {
  return readFileSync(path.join(layout, 'blobs', ...digest.split(':')));
}

function image(tag: string): Image {
  const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const d = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)!.digest;
  const m = JSON.parse(blob(d).toString()) as { config: { digest: string }; layers: Array<{ digest: string }> };
  return { manifest: d, config: m.config.digest, layers: m.layers.map((l) => l.digest) };
}

/** umoci: `base` (one layer), then `a` and `b` on top of it (a layer of their own each). */
before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'stowage-docker-components-'));
  layout = path.join(work, 'img');
  const umoci = (...args: string[]) => run('umoci', args, { cwd: work });
  await umoci('init', '--layout', 'img');
  await umoci('new', '--image', 'img:base');
  await umoci('unpack', '--rootless', '--image', 'img:base', 'b0');
  writeFileSync(path.join(work, 'b0/rootfs/base.bin'), randomBytes(300_000));
  await umoci('repack', '--image', 'img:base', 'b0');
  for (const [tag, size] of [
    ['a', 400_000],
    ['b', 200_000],
  ] as const) {
    await umoci('unpack', '--rootless', '--image', 'img:base', `b-${tag}`);
    writeFileSync(path.join(work, `b-${tag}/rootfs/${tag}.bin`), randomBytes(size));
    await umoci('repack', '--image', `img:${tag}`, `b-${tag}`);
  }
});

after(() => rmSync(work, { recursive: true, force: true }));

for (const db of DATABASES) {
  describe(`docker images as components (${db})`, () => {
    let s: TestServer;
    let host: string;
    const creds = `admin:${ADMIN_PASSWORD}`;
    const REPO = 'dc';

    before(async () => {
      s = await startServer({ db });
      host = s.url.replace(/^http:\/\//, '');
      await s.repo('docker', 'hosted', { name: REPO, storage: { blobStoreName: 'default', writePolicy: 'ALLOW' }, docker: { v1Enabled: false, forceBasicAuth: true } });
    });
    after(() => s.stop());

    const getJson = async <T>(p: string): Promise<T> => {
      const r = await s.fetch(API + p);
      const text = await r.text();
      assert.equal(r.status, 200, `${p}: ${text}`);
      return JSON.parse(text) as T;
    };
    const components = async (repo = REPO) => {
      const out: ComponentXO[] = [];
      let token: string | null = null;
      do {
        const page: Page<ComponentXO> = await getJson(`/components?repository=${repo}${token ? `&continuationToken=${token}` : ''}`);
        out.push(...page.items);
        token = page.continuationToken;
      } while (token);
      return out;
    };
    const versions = async (name: string, repo = REPO) =>
      (await components(repo))
        .filter((c) => c.name === name)
        .map((c) => c.version)
        .sort();
    const push = async (tag: string, ref: string) => {
      const r = await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:${tag}`, `docker://${host}/${ref}`);
      assert.ok(r.ok, r.stderr);
    };
    const listTags = async (ref: string) => {
      const r = await skopeo('list-tags', '--tls-verify=false', '--creds', creds, `docker://${host}/${ref}`);
      assert.ok(r.ok, r.stderr);
      return (JSON.parse(r.stdout) as { Tags: string[] }).Tags.sort();
    };
    const inspectDigest = async (ref: string) => {
      const r = await skopeo('inspect', '--tls-verify=false', '--creds', creds, `docker://${host}/${ref}`);
      return r.ok ? (JSON.parse(r.stdout) as { Digest: string }).Digest : null;
    };
    /** The downloadUrl answers 200 with the asset's bytes (their sha256 is the asset's checksum). */
    const downloads = async (a: AssetXO) => {
      assert.ok(a.downloadUrl.startsWith(s.url + '/repository/'), a.downloadUrl);
      const r = await s.fetch(a.downloadUrl.slice(s.url.length));
      const body = Buffer.from(await r.arrayBuffer());
      assert.equal(r.status, 200, `${a.path}: ${a.downloadUrl}: ${body.toString().slice(0, 300)}`);
      assert.equal(sha256(body), 'sha256:' + a.checksum.sha256, `${a.path}: the asset's bytes`);
      assert.equal(body.length, a.fileSize, a.path);
      return body;
    };

    it('lists and searches pushed tags as components; every downloadUrl answers 200 with the right bytes', async () => {
      const A = image('a');
      const B = image('b');
      await push('a', `${REPO}/team/app:1.0`);
      await push('b', `${REPO}/team/app:2.0`);

      const comps = (await components()).filter((c) => c.name === 'team/app');
      assert.deepEqual(comps.map((c) => c.version).sort(), ['1.0', '2.0']);
      for (const c of comps) {
        assert.equal(c.format, 'docker');
        assert.equal(c.repository, REPO);
        assert.equal(c.group, null);
        const tagAsset = c.assets.find((a) => a.path === `v2/team/app/manifests/${c.version}`);
        assert.ok(tagAsset, `${c.version}: the tag's manifest asset: ${JSON.stringify(c.assets.map((a) => a.path))}`);
        const manifest = c.version === '1.0' ? A.manifest : B.manifest;
        assert.equal('sha256:' + tagAsset.checksum.sha256, manifest);
        assert.equal(tagAsset.contentType, 'application/vnd.oci.image.manifest.v1+json');
        assert.deepEqual(await downloads(tagAsset), blob(manifest));
      }

      const found = await getJson<Page<ComponentXO>>(`/search?format=docker&name=team/app&version=1.0`);
      assert.deepEqual(
        found.items.map((c) => [c.repository, c.name, c.version, c.format]),
        [[REPO, 'team/app', '1.0', 'docker']],
      );
      assert.equal('sha256:' + found.items[0].assets[0].checksum.sha256, A.manifest);
      const wild = await getJson<Page<ComponentXO>>(`/search?format=docker&name=team/*`);
      assert.deepEqual(wild.items.map((c) => c.version).sort(), ['1.0', '2.0']);
      const foundAssets = await getJson<Page<AssetXO>>(`/search/assets?format=docker&name=team/app&version=2.0`);
      assert.deepEqual(
        foundAssets.items.map((a) => a.path),
        ['v2/team/app/manifests/2.0'],
      );
      assert.deepEqual(await downloads(foundAssets.items[0]), blob(B.manifest));

      // Every asset of the repository (tag manifests, manifests by digest, layers and configs).
      const assets: AssetXO[] = [];
      let token: string | null = null;
      do {
        const page: Page<AssetXO> = await getJson(`/assets?repository=${REPO}${token ? `&continuationToken=${token}` : ''}`);
        assets.push(...page.items);
        token = page.continuationToken;
      } while (token);
      const paths = assets.map((a) => a.path);
      for (const d of [A.config, ...A.layers, B.config, ...B.layers]) assert.ok(paths.includes(`v2/-/blobs/${d}`), d);
      for (const d of [A.manifest, B.manifest]) assert.ok(paths.includes(`v2/team/app/manifests/${d}`), d);
      for (const a of assets) {
        assert.equal(a.format, 'docker');
        await downloads(a);
      }
    });

    it('pushing a tag again moves its component to the new manifest', async () => {
      const A = image('a');
      const B = image('b');
      await push('a', `${REPO}/team/moving:m`);
      const first = (await components()).find((c) => c.name === 'team/moving' && c.version === 'm')!;
      assert.equal('sha256:' + first.assets[0].checksum.sha256, A.manifest);
      await push('b', `${REPO}/team/moving:m`);
      const moved = (await components()).filter((c) => c.name === 'team/moving');
      assert.equal(moved.length, 1);
      assert.equal(moved[0].id, first.id, 'the same component');
      assert.deepEqual(
        moved[0].assets.map((a) => [a.path, 'sha256:' + a.checksum.sha256]),
        [['v2/team/moving/manifests/m', B.manifest]],
      );
      assert.equal(await inspectDigest(`${REPO}/team/moving:m`), B.manifest);
    });

    it('DELETE /components/{id} removes that tag; the other still pulls; GC then reclaims what only it used', async () => {
      const A = image('a');
      const B = image('b');
      const one = (await components()).find((c) => c.name === 'team/app' && c.version === '1.0')!;
      assert.equal((await s.fetch(`${API}/components/${one.id}`, { method: 'DELETE' })).status, 204);
      assert.equal((await s.fetch(`${API}/components/${one.id}`)).status, 404);
      assert.deepEqual(await listTags(`${REPO}/team/app`), ['2.0']);
      assert.equal(await inspectDigest(`${REPO}/team/app:1.0`), null, 'the tag is gone');
      assert.equal(await inspectDigest(`${REPO}/team/app:2.0`), B.manifest);
      assert.deepEqual(await versions('team/app'), ['2.0']);
      // The manifest by digest stays until GC (as a tag delete through the registry API).
      assert.equal((await s.fetch(`/repository/${REPO}/v2/team/app/manifests/${A.manifest}`, { method: 'HEAD' })).status, 200);

      // A's manifest is now untagged under both names (team/moving:m moved to B).
      const msg = await runTask(s, 'repository.docker.gc', { repositoryName: REPO, graceSeconds: 0 });
      const uniqueA = [A.manifest, A.config, A.layers[1]];
      const expected = uniqueA.reduce((n, d) => n + blob(d).length, 0);
      assert.match(msg, /Deleted 2 unused manifests and 2 unreferenced blob assets in 1 docker repositories; 3 blobs removed from the blob store/);
      assert.equal(Number(/reclaimed (\d+) bytes/.exec(msg)?.[1]), expected, msg);
      for (const p of [`team/app/manifests/${A.manifest}`, `team/app/blobs/${A.layers[1]}`, `team/app/blobs/${A.config}`]) {
        assert.equal((await s.fetch(`/repository/${REPO}/v2/${p}`, { method: 'HEAD' })).status, 404, p);
      }
      assert.equal(await inspectDigest(`${REPO}/team/app:2.0`), B.manifest);
      assert.equal(await inspectDigest(`${REPO}/team/moving:m`), B.manifest);
      const out = path.join(work, `pull-${db}`);
      const pulled = await skopeo('copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/${REPO}/team/app:2.0`, `oci:${out}:x`);
      assert.ok(pulled.ok, pulled.stderr);
    });

    it('deleting the tag asset through /assets/{id} removes the tag and its component', async () => {
      await push('a', `${REPO}/team/asset:x`);
      await push('a', `${REPO}/team/asset:y`);
      const x = (await components()).find((c) => c.name === 'team/asset' && c.version === 'x')!;
      assert.equal((await s.fetch(`${API}/assets/${x.assets[0].id}`, { method: 'DELETE' })).status, 204);
      assert.deepEqual(await listTags(`${REPO}/team/asset`), ['y']);
      assert.deepEqual(await versions('team/asset'), ['y']);
    });

    it('deleting a manifest by digest removes the components of every tag pointing at it', async () => {
      const A = image('a');
      await push('a', `${REPO}/team/digest:p`);
      await push('a', `${REPO}/team/digest:q`);
      await push('b', `${REPO}/team/digest:r`);
      assert.deepEqual(await versions('team/digest'), ['p', 'q', 'r']);
      const del = await skopeo('delete', '--tls-verify=false', '--creds', creds, `docker://${host}/${REPO}/team/digest:p`);
      assert.ok(del.ok, del.stderr);
      assert.deepEqual(await versions('team/digest'), ['r']);
      assert.deepEqual(await listTags(`${REPO}/team/digest`), ['r']);
      assert.equal((await s.fetch(`/repository/${REPO}/v2/team/digest/manifests/${A.manifest}`, { method: 'HEAD' })).status, 404);
      // The same through the REST API: the manifest's asset deleted, the maintenance hook removes its tags.
      await push('a', `${REPO}/team/digest:s`);
      await push('a', `${REPO}/team/digest:t`);
      const byDigest = (await getJson<Page<AssetXO>>(`/search/assets?repository=${REPO}&sha256=${A.manifest.slice(7)}`)).items.find(
        (a) => a.path === `v2/team/digest/manifests/${A.manifest}`,
      )!;
      assert.equal((await s.fetch(`${API}/assets/${byDigest.id}`, { method: 'DELETE' })).status, 204);
      assert.deepEqual(await versions('team/digest'), ['r']);
      assert.deepEqual(await listTags(`${REPO}/team/digest`), ['r']);
      // Deleting a tag through the registry API removes its component too.
      assert.equal((await s.fetch(`/repository/${REPO}/v2/team/digest/manifests/r`, { method: 'DELETE' })).status, 202);
      assert.deepEqual(await versions('team/digest'), []);
    });

    it('an image archive upload creates the components of its tags', async () => {
      const file = path.join(work, `archive-${db}.tar`);
      const saved = await skopeo('copy', `oci:${layout}:b`, `docker-archive:${file}:team/arch:1`);
      assert.ok(saved.ok, saved.stderr);
      const r = await s.fetch(`${API}/docker/archive?repository=${REPO}`, {
        method: 'POST',
        body: new Uint8Array(readFileSync(file)),
        headers: { 'Content-Type': 'application/x-tar' },
      });
      assert.equal(r.status, 201, await r.text());
      const c = (await components()).filter((x) => x.name === 'team/arch');
      assert.deepEqual(
        c.map((x) => [x.version, x.assets.map((a) => a.path)]),
        [['1', ['v2/team/arch/manifests/1']]],
      );
      assert.equal(await inspectDigest(`${REPO}/team/arch:1`), 'sha256:' + c[0].assets[0].checksum.sha256);
    });

    it('a proxy shows the tags it cached as components; deleting one refetches it', async () => {
      const A = image('a');
      const registry: Registry = await startRegistry(path.join(work, `registry-${db}`));
      try {
        const up = await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:a`, `docker://${registry.host}/team/prox:1`);
        assert.ok(up.ok, up.stderr);
        await s.repo('docker', 'proxy', {
          name: 'dcproxy',
          online: true,
          storage: { blobStoreName: 'default', strictContentTypeValidation: true },
          proxy: { remoteUrl: registry.url, contentMaxAge: 1440, metadataMaxAge: 1440 },
          negativeCache: { enabled: false, timeToLive: 1 },
          httpClient: { blocked: false, autoBlock: false },
          docker: { v1Enabled: false, forceBasicAuth: true },
          dockerProxy: { indexType: 'REGISTRY' },
        });
        const out = path.join(work, `proxy-pull-${db}`);
        const pulled = await skopeo('copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/dcproxy/team/prox:1`, `oci:${out}:x`);
        assert.ok(pulled.ok, pulled.stderr);
        const comps = await components('dcproxy');
        assert.deepEqual(
          comps.map((c) => [c.name, c.version, c.assets.map((a) => a.path)]),
          [['team/prox', '1', ['v2/team/prox/manifests/1']]],
        );
        assert.deepEqual(await downloads(comps[0].assets[0]), blob(A.manifest));
        const layer = await getJson<Page<AssetXO>>(`/search/assets?repository=dcproxy&sha256=${A.layers[1].slice(7)}`);
        assert.equal(layer.items.length, 1);
        await downloads(layer.items[0]);
        assert.equal((await s.fetch(`${API}/components/${comps[0].id}`, { method: 'DELETE' })).status, 204);
        assert.deepEqual(await components('dcproxy'), []);
        assert.equal(await inspectDigest(`dcproxy/team/prox:1`), A.manifest, 'fetched again from upstream');
        assert.deepEqual(await versions('team/prox', 'dcproxy'), ['1']);
      } finally {
        await registry.stop();
      }
    });

    it('the core write policy: DENY refuses pushes and deletes, nothing is stored', async () => {
      await s.repo('docker', 'hosted', { name: 'dcdeny', storage: { blobStoreName: 'default', writePolicy: 'DENY' }, docker: { v1Enabled: false, forceBasicAuth: true } });
      const r = await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:a`, `docker://${host}/dcdeny/team/app:1`);
      assert.ok(!r.ok);
      assert.match(r.stderr, /read only|denied/i, r.stderr);
      const body = Buffer.from('a blob');
      const post = await s.fetch(`/repository/dcdeny/v2/team/app/blobs/uploads/?digest=${sha256(body)}`, { method: 'POST', body });
      assert.equal(post.status, 403);
      assert.match(await post.text(), /DENIED.*read only/);
      const del = await s.fetch(`/repository/dcdeny/v2/team/app/manifests/1`, { method: 'DELETE' });
      assert.equal(del.status, 403);
      assert.deepEqual((await getJson<Page<AssetXO>>(`/assets?repository=dcdeny`)).items, []);
      assert.deepEqual(await components('dcdeny'), []);
    });

    it('the migration gives components to tags stored without them', async () => {
      const B = image('b');
      await push('b', `${REPO}/team/old:1`);
      const repo = (await s.app.repositories.find(REPO))!;
      // As before this change: the tag row and the manifest by digest, no tag asset, no component.
      const tagPath = 'v2/team/old/manifests/1';
      const before = await s.app.db('assets').where({ repository_id: repo.id, path: tagPath }).first('component_id');
      assert.ok(before?.component_id, 'pushed with a component');
      await s.app.db('assets').where({ repository_id: repo.id, path: tagPath }).delete();
      await s.app.db('components').where({ repository_id: repo.id, name: 'team/old' }).delete();
      assert.deepEqual(await versions('team/old'), []);
      await migrateComponents(s.app.db);
      const c = (await components()).filter((x) => x.name === 'team/old');
      assert.deepEqual(
        c.map((x) => [x.version, x.assets.map((a) => [a.path, 'sha256:' + a.checksum.sha256])]),
        [['1', [[tagPath, B.manifest]]]],
      );
      await downloads(c[0].assets[0]);
      // Running it again changes nothing.
      await migrateComponents(s.app.db);
      assert.equal((await components()).filter((x) => x.name === 'team/old').length, 1);
      // Down: the components and tag assets go, the tags stay (pulls by tag still work).
      await unmigrateComponents(s.app.db);
      assert.deepEqual(await components(), []);
      assert.equal((await getJson<Page<AssetXO>>(`/search/assets?repository=${REPO}&sha256=${B.manifest.slice(7)}`)).items.filter((a) => a.path === tagPath).length, 0);
      assert.equal(await inspectDigest(`${REPO}/team/old:1`), B.manifest);
      await migrateComponents(s.app.db);
      assert.deepEqual(await versions('team/old'), ['1']);
    });
  });
}
