/**
 * Docker image archives end to end: `docker save` tarballs written by skopeo (docker-archive:)
 * and OCI image-layout tarballs (umoci; a two-platform index) uploaded through
 * `POST /service/rest/v1/docker/archive`, then pulled with skopeo and compared digest by digest;
 * images downloaded with `GET …/archive` and loaded by podman (a private storage root) and read
 * by skopeo (docker-archive: and oci-archive:). Bad archives (truncated, tampered, missing blob,
 * not a tar, oversized metadata) give 400 and leave no tag, manifest, asset or stored byte
 * behind; a reader may download but not upload. SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { ADMIN_PASSWORD, DATABASES, basic, startServer, type TestServer } from '../helpers/stowage.js';
import { buildImage, skopeo, tool } from '../helpers/oci.js';
import { readTar, writeTar, type TarWriteEntry } from '../../src/archive/tar.js';
import { filesUnder } from '../helpers/files.js';

const API = '/service/rest/v1';
const creds = `admin:${ADMIN_PASSWORD}`;
const sha256 = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

async function must(...args: string[]): Promise<string> {
  const r = await skopeo(...args);
  assert.ok(r.ok, `skopeo ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Entries of a tar file as name → bytes (symlinks as `-> target`). */
async function untar(data: Buffer): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for await (const e of readTar(Readable.from([data]))) {
    const parts: Buffer[] = [];
    for await (const c of e.body) parts.push(c as Buffer);
    out.set(e.header.name, e.header.type === 'symlink' ? Buffer.from('-> ' + e.header.linkname) : Buffer.concat(parts));
  }
  return out;
}

/** A tar of the given entries (symlinks written as such). */
async function tarOf(entries: Map<string, Buffer>): Promise<Buffer> {
  const list: TarWriteEntry[] = [...entries].map(([name, body]) =>
    body.subarray(0, 3).toString() === '-> ' ? { name, size: 0, type: 'symlink', linkname: body.subarray(3).toString() } : { name, size: body.length, body },
  );
  const parts: Buffer[] = [];
  for await (const c of writeTar(list)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** A tar of a directory's contents, as `tar -C dir -cf - .` writes it (GNU tar, real client). */
function tarDir(dir: string): Buffer {
  return execFileSync('tar', ['-C', dir, '-cf', '-', '.'], { maxBuffer: 256 << 20 });
}

function layoutManifest(dir: string): { digest: string; config: string; layers: string[] } {
  const index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const digest = index.manifests[0].digest;
  const m = JSON.parse(readFileSync(path.join(dir, 'blobs', ...digest.split(':')), 'utf8')) as { config: { digest: string }; layers: Array<{ digest: string }> };
  return { digest, config: m.config.digest, layers: m.layers.map((l) => l.digest) };
}

/** Two single-platform images (amd64, arm64) behind one OCI index tagged `multi`, in one layout. */
async function twoPlatformLayout(work: string): Promise<{ dir: string; index: string; amd64: string; arm64: string }> {
  const amd = await buildImage(work, 'amd', { 'arch.txt': 'amd64 ' + randomBytes(4).toString('hex') });
  const arm = await buildImage(work, 'arm', { 'arch.txt': 'arm64 ' + randomBytes(4).toString('hex') });
  execFileSync('umoci', ['config', '--image', `${arm}:latest`, '--architecture', 'arm64']);
  const dir = path.join(work, 'multi');
  mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const src of [amd, arm]) cpSync(path.join(src, 'blobs', 'sha256'), path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const a = layoutManifest(amd);
  const r = layoutManifest(arm);
  const size = (d: string) => statSync(path.join(dir, 'blobs', ...d.split(':'))).size;
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: a.digest, size: size(a.digest), platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: r.digest, size: size(r.digest), platform: { os: 'linux', architecture: 'arm64' } },
      ],
    }),
  );
  const digest = sha256(index);
  writeFileSync(path.join(dir, 'blobs', ...digest.split(':')), index);
  writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: OCI_INDEX, digest, size: index.length, annotations: { 'org.opencontainers.image.ref.name': 'multi' } }] }),
  );
  return { dir, index: digest, amd64: a.digest, arm64: r.digest };
}

/** Every file under a directory (the blob store: nothing may be left behind by a refused upload). */
let work: string;
let layout: string;
let saveTar: Buffer;
let layoutTar: Buffer;
let multi: Awaited<ReturnType<typeof twoPlatformLayout>>;
let multiTar: Buffer;

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'stowage-docker-archive-'));
  layout = await buildImage(work, 'img', { 'hello.txt': 'hello from an archive ' + randomBytes(8).toString('hex'), 'random.bin': randomBytes(200_000) });
  const save = path.join(work, 'save.tar');
  await must('copy', `oci:${layout}:latest`, `docker-archive:${save}:app/hello:v1`);
  saveTar = readFileSync(save);
  layoutTar = tarDir(layout);
  multi = await twoPlatformLayout(work);
  multiTar = tarDir(multi.dir);
});

after(() => rmSync(work, { recursive: true, force: true }));

for (const db of DATABASES) {
  describe(`docker image archives (${db})`, () => {
    let s: TestServer;
    let host: string;
    let n = 0;

    const upload = (repo: string, body: Buffer, query = '', auth?: string | null) =>
      s.fetch(`${API}/docker/archive?repository=${repo}${query}`, { method: 'POST', body: new Uint8Array(body), headers: { 'Content-Type': 'application/x-tar' }, auth });

    async function uploadOk(repo: string, body: Buffer, query = ''): Promise<{ repository: string; images: Array<{ name: string; tag: string | null; digest: string }> }> {
      const r = await upload(repo, body, query);
      const text = await r.text();
      assert.equal(r.status, 201, text);
      return JSON.parse(text);
    }

    async function download(query: string): Promise<{ file: string; res: Response; bytes: Buffer }> {
      const res = await s.fetch(`${API}/docker/archive?${query}`);
      const bytes = Buffer.from(await res.arrayBuffer());
      assert.equal(res.status, 200, bytes.toString().slice(0, 500));
      const file = path.join(work, `download-${db}-${n++}.tar`);
      writeFileSync(file, bytes);
      return { file, res, bytes };
    }

    /** What a refused upload must not change: tags, assets, blob rows, stored files. */
    async function snapshot(): Promise<string> {
      const tags = await s.app.db('tags').select('repository_id', 'scope', 'name', 'target').orderBy(['repository_id', 'scope', 'name']);
      const assets = await s.app.db('assets').select('repository_id', 'path').orderBy(['repository_id', 'path']);
      const blobs = await s.app.db('blobs').select('sha256').orderBy('sha256');
      return JSON.stringify({ tags, assets, blobs, files: filesUnder(path.join(s.dataDir, 'blobs')) });
    }

    async function refused(body: Buffer, pattern: RegExp, query = '&name=bad/image', status = 400): Promise<void> {
      const before = await snapshot();
      const r = await upload('dock', body, query);
      const text = await r.text();
      assert.equal(r.status, status, text);
      assert.match(text, pattern);
      assert.equal(await snapshot(), before, 'a refused upload changes nothing');
    }

    before(async () => {
      s = await startServer({ db });
      host = s.url.replace(/^http:\/\//, '');
      await s.repo('docker', 'hosted', { name: 'dock', docker: { v1Enabled: false, forceBasicAuth: false } });
      await s.repo('docker', 'hosted', {
        name: 'once',
        storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW_ONCE' },
        docker: { v1Enabled: false, forceBasicAuth: false },
      });
      await s.repo('docker', 'group', { name: 'dgroup', group: { memberNames: ['dock'], writableMember: 'dock' }, docker: { v1Enabled: false, forceBasicAuth: false } });
      await s.repo('raw', 'hosted', { name: 'rawrepo' });
    });
    after(async () => s?.stop());

    it('uploads a docker save archive (skopeo docker-archive:) and skopeo pulls the same image', async () => {
      const res = await uploadOk('dock', saveTar);
      const files = await untar(saveTar);
      const saved = JSON.parse(files.get('manifest.json')!.toString()) as Array<{ Config: string; Layers: string[] }>;
      const config = JSON.parse(files.get(saved[0].Config)!.toString()) as { rootfs: { diff_ids: string[] } };
      assert.equal(res.images.length, 1);
      assert.deepEqual({ ...res.images[0], digest: undefined }, { name: 'app/hello', tag: 'v1', digest: undefined });
      const info = JSON.parse(await must('inspect', '--tls-verify=false', '--creds', creds, `docker://${host}/dock/app/hello:v1`)) as { Digest: string; Layers: string[] };
      assert.equal(info.Digest, res.images[0].digest);
      // Legacy layers are uncompressed tars: their digests are the config's diff IDs.
      assert.deepEqual(info.Layers, config.rootfs.diff_ids);
      const raw = JSON.parse(await must('inspect', '--raw', '--tls-verify=false', '--creds', creds, `docker://${host}/dock/app/hello:v1`)) as {
        mediaType: string;
        config: { digest: string };
        layers: Array<{ mediaType: string }>;
      };
      assert.equal(raw.mediaType, 'application/vnd.oci.image.manifest.v1+json');
      assert.equal(raw.config.digest, sha256(files.get(saved[0].Config)!));
      assert.deepEqual(
        raw.layers.map((l) => l.mediaType),
        ['application/vnd.oci.image.layer.v1.tar'],
      );
      // A full pull verifies every blob against its digest.
      await must('copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/dock/app/hello:v1`, `oci:${path.join(work, `pulled-save-${db}`)}:v1`);
      // Layers named through the legacy `<id>/layer.tar` symlinks, the config through a symlink
      // written after the file it names, registry hosts in RepoTags.
      const linked = new Map(files);
      const links = [...files].filter(([name, body]) => name.endsWith('/layer.tar') && body.subarray(0, 3).toString() === '-> ');
      assert.equal(links.length, 1);
      linked.set(
        'manifest.json',
        Buffer.from(JSON.stringify([{ Config: 'cfg-link.json', RepoTags: ['docker.io/library/busybox:1.36', 'registry.example:5000/team/app:v2'], Layers: [links[0][0]] }])),
      );
      linked.set('cfg-link.json', Buffer.from('-> ' + saved[0].Config));
      const linkedRes = await uploadOk('dock', await tarOf(linked));
      assert.deepEqual(linkedRes.images, [
        { name: 'busybox', tag: '1.36', digest: res.images[0].digest },
        { name: 'team/app', tag: 'v2', digest: res.images[0].digest },
      ]);
      // The same archive again: the same digest, nothing to change (ALLOW_ONCE is happy too).
      assert.equal((await uploadOk('once', saveTar)).images[0].digest, res.images[0].digest);
      assert.equal((await uploadOk('once', saveTar)).images[0].digest, res.images[0].digest);
    });

    it('uploads an OCI image layout tarball (and gzipped): digests kept byte for byte', async () => {
      const want = layoutManifest(layout);
      const res = await uploadOk('dock', layoutTar, '&name=oci/hello');
      assert.deepEqual(res.images, [{ name: 'oci/hello', tag: 'latest', digest: want.digest }]);
      const info = JSON.parse(await must('inspect', '--tls-verify=false', '--creds', creds, `docker://${host}/dock/oci/hello:latest`)) as { Digest: string; Layers: string[] };
      assert.equal(info.Digest, want.digest);
      assert.deepEqual(info.Layers, want.layers);
      const out = path.join(work, `pulled-oci-${db}`);
      await must('copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/dock/oci/hello:latest`, `oci:${out}:latest`);
      assert.deepEqual(layoutManifest(out), want);
      // gzip on the wire, another tag, through the group (stored in its writable member).
      const gz = await uploadOk('dgroup', gzipSync(layoutTar), '&name=oci/gz&tag=ignored');
      assert.deepEqual(gz.images, [{ name: 'oci/gz', tag: 'latest', digest: want.digest }]);
      assert.deepEqual(JSON.parse(await must('list-tags', '--tls-verify=false', '--creds', creds, `docker://${host}/dock/oci/gz`)).Tags, ['latest']);
    });

    it('uploads a two-platform index; skopeo pulls either platform; the download picks one', async () => {
      const res = await uploadOk('dock', multiTar, '&name=multi/app');
      assert.deepEqual(res.images, [{ name: 'multi/app', tag: 'multi', digest: multi.index }]);
      const ref = `docker://${host}/dock/multi/app:multi`;
      const raw = JSON.parse(await must('inspect', '--raw', '--tls-verify=false', '--creds', creds, ref)) as { mediaType: string };
      assert.equal(raw.mediaType, OCI_INDEX);
      for (const [arch, digest] of [
        ['amd64', multi.amd64],
        ['arm64', multi.arm64],
      ]) {
        const info = JSON.parse(await must('--override-arch', arch, 'inspect', '--tls-verify=false', '--creds', creds, ref)) as { Digest: string; Architecture: string };
        assert.equal(info.Architecture, arch);
        await must('--override-arch', arch, 'copy', '--src-tls-verify=false', '--src-creds', creds, ref, `oci:${path.join(work, `multi-${arch}-${db}`)}:x`);
        assert.equal(layoutManifest(path.join(work, `multi-${arch}-${db}`)).digest, digest);
      }
      const { file } = await download('repository=dock&image=multi/app:multi&platform=linux/arm64');
      const inspected = JSON.parse(await must('inspect', `docker-archive:${file}`)) as { Architecture: string };
      assert.equal(inspected.Architecture, 'arm64');
      const idx = JSON.parse((await untar(readFileSync(file))).get('index.json')!.toString()) as { manifests: Array<{ digest: string }> };
      assert.equal(idx.manifests[0].digest, multi.arm64);
      const none = await s.fetch(`${API}/docker/archive?repository=dock&image=multi/app:multi&platform=linux/s390x`);
      assert.equal(none.status, 404);
      assert.match(await none.text(), /no image for linux\/s390x.*linux\/amd64, linux\/arm64/);
    });

    it('downloads an image that podman loads and skopeo reads (docker-archive: and oci-archive:)', async () => {
      const want = layoutManifest(layout);
      const { file, res, bytes } = await download('repository=dock&image=oci/hello:latest');
      assert.equal(res.headers.get('content-type'), 'application/x-tar');
      assert.equal(res.headers.get('content-disposition'), 'attachment; filename="oci_hello_latest.tar"');
      assert.equal(Number(res.headers.get('content-length')), bytes.length);
      const entries = await untar(bytes);
      const manifestJson = JSON.parse(entries.get('manifest.json')!.toString()) as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
      assert.deepEqual(manifestJson, [
        { Config: `blobs/sha256/${want.config.slice(7)}`, RepoTags: ['oci/hello:latest'], Layers: want.layers.map((l) => `blobs/sha256/${l.slice(7)}`) },
      ]);
      for (const [name, body] of entries) if (name.startsWith('blobs/sha256/')) assert.equal(sha256(body), 'sha256:' + name.slice(13), `${name} holds what its name says`);
      // skopeo reads it both ways: as a docker save archive and as an OCI layout archive.
      const info = JSON.parse(await must('inspect', `docker-archive:${file}`)) as { Layers: string[]; RepoTags: string[] };
      assert.equal(info.Layers.length, want.layers.length);
      const oci = path.join(work, `from-oci-archive-${db}`);
      await must('copy', `oci-archive:${file}:latest`, `oci:${oci}:latest`);
      assert.deepEqual(layoutManifest(oci), want);
      // podman load, in a storage of its own.
      // podman wants a short runroot (≤ 50 characters).
      const root = mkdtempSync('/tmp/stowage-pm-');
      const podman = (...args: string[]) =>
        tool(
          'podman',
          '--root',
          path.join(root, 'root'),
          '--runroot',
          path.join(root, 'run'),
          '--storage-driver',
          'vfs',
          '--cgroup-manager',
          'cgroupfs',
          '--events-backend',
          'none',
          ...args,
        );
      const loaded = await podman('load', '-i', file);
      assert.ok(loaded.ok, loaded.stderr);
      assert.match(loaded.stdout, /oci\/hello:latest/);
      const images = await podman('images', '--format', '{{.Repository}}:{{.Tag}}');
      assert.ok(images.ok, images.stderr);
      assert.match(images.stdout, /oci\/hello:latest/);
      // The legacy-save image and a digest reference in one archive.
      const both = await download(`repository=dgroup&image=app/hello:v1&image=oci/hello@${want.digest}`);
      assert.equal(both.res.headers.get('content-disposition'), 'attachment; filename="dgroup-images.tar"');
      const twoLoaded = await podman('load', '-i', both.file);
      assert.ok(twoLoaded.ok, twoLoaded.stderr);
      const images2 = await podman('images', '--format', '{{.Repository}}:{{.Tag}} {{.Digest}}');
      assert.match(images2.stdout, /app\/hello:v1/);
      const legacy = JSON.parse(await must('inspect', `docker-archive:${both.file}:app/hello:v1`)) as { Layers: string[] };
      assert.equal(legacy.Layers.length, 1);
      rmSync(root, { recursive: true, force: true });
    });

    it('round trips: a downloaded archive (docker >= 25 form) uploads again, as OCI layout and as legacy save', async () => {
      const want = layoutManifest(layout);
      const { bytes } = await download(`repository=dock&image=oci/hello:latest&image=app/hello:v1`);
      // index.json present: the OCI path, names from io.containerd.image.name, digests unchanged.
      const again = await uploadOk('once', bytes);
      const saved = await uploadOk('dock', saveTar);
      assert.deepEqual(again.images, [
        { name: 'oci/hello', tag: 'latest', digest: want.digest },
        { name: 'app/hello', tag: 'v1', digest: saved.images[0].digest },
      ]);
      // Only manifest.json (older docker): layers are compressed blobs here, stored as tar+gzip.
      const legacy = await untar(bytes);
      legacy.delete('index.json');
      legacy.delete('oci-layout');
      await s.repo('docker', 'hosted', { name: 'legacy', docker: { v1Enabled: false, forceBasicAuth: false } });
      const res = await uploadOk('legacy', await tarOf(legacy));
      assert.deepEqual(
        res.images.map((i) => `${i.name}:${i.tag}`),
        ['oci/hello:latest', 'app/hello:v1'],
      );
      assert.equal(res.images[1].digest, saved.images[0].digest, 'the uncompressed image gives the same generated manifest');
      assert.notEqual(res.images[0].digest, want.digest, 'a manifest generated for the gzip layers');
      const ref = `docker://${host}/legacy/oci/hello:latest`;
      const raw = JSON.parse(await must('inspect', '--raw', '--tls-verify=false', '--creds', creds, ref)) as { layers: Array<{ digest: string; mediaType: string }> };
      assert.deepEqual(
        raw.layers.map((l) => l.digest),
        want.layers,
      );
      assert.deepEqual(
        raw.layers.map((l) => l.mediaType),
        want.layers.map(() => 'application/vnd.oci.image.layer.v1.tar+gzip'),
      );
      await must('copy', '--src-tls-verify=false', '--src-creds', creds, ref, `oci:${path.join(work, `legacy-gz-${db}`)}:x`);
    });

    it('downloads through a proxy (fetching what it has not cached) and a group', async () => {
      await s.repo('docker', 'proxy', {
        name: 'dproxy',
        online: true,
        storage: { blobStoreName: 'default', strictContentTypeValidation: true },
        proxy: { remoteUrl: `${s.url}/repository/dock/`, contentMaxAge: 1440, metadataMaxAge: 1440 },
        negativeCache: { enabled: false, timeToLive: 1440 },
        httpClient: { blocked: false, autoBlock: false, connection: { retries: 0 }, authentication: { type: 'username', username: 'admin', password: ADMIN_PASSWORD } },
        docker: { v1Enabled: false, forceBasicAuth: false },
      });
      const want = layoutManifest(layout);
      const assets = async () =>
        (await s.app.db('assets').join('repositories', 'repositories.id', 'assets.repository_id').where('repositories.name', 'dproxy').count({ n: '*' }).first())!.n;
      assert.equal(Number(await assets()), 0);
      const { file, bytes } = await download('repository=dproxy&image=oci/hello:latest');
      const entries = await untar(bytes);
      const index = JSON.parse(entries.get('index.json')!.toString()) as { manifests: Array<{ digest: string }> };
      assert.equal(index.manifests[0].digest, want.digest);
      for (const d of [want.digest, want.config, ...want.layers]) assert.ok(entries.has(`blobs/sha256/${d.slice(7)}`), d);
      assert.ok(Number(await assets()) >= 3, 'the proxy cached manifest, config and layer');
      const info = JSON.parse(await must('inspect', `docker-archive:${file}`)) as { Layers: string[] };
      assert.equal(info.Layers.length, want.layers.length);
      // Group (member dock): the same bytes.
      const viaGroup = await download('repository=dgroup&image=oci/hello:latest');
      assert.ok(viaGroup.bytes.equals(bytes));
    });

    it('refuses bad archives with 400 and changes nothing', async () => {
      const files = await untar(saveTar);
      const saved = JSON.parse(files.get('manifest.json')!.toString()) as Array<{ Config: string; Layers: string[] }>;
      // Not a tar at all.
      await refused(Buffer.from(JSON.stringify({ hello: 'world' })), /Invalid tar archive/);
      await refused(randomBytes(4096), /not a tar archive/);
      await refused(Buffer.alloc(0), /empty input/);
      // Truncated in the middle of a layer (after the layer started streaming into the store).
      await refused(layoutTar.subarray(0, Math.floor(layoutTar.length * 0.7)), /truncated/);
      // A docker save layer changed by one byte: no longer the config's diff ID.
      const tamperedLayer = new Map(files);
      const layer = Buffer.from(files.get(saved[0].Layers[0])!);
      layer[layer.length - 2000] ^= 0x01;
      tamperedLayer.set(saved[0].Layers[0], layer);
      await refused(await tarOf(tamperedLayer), /does not match the config's diff_id/);
      // An OCI blob whose content does not match its name.
      const oci = await untar(layoutTar);
      const want = layoutManifest(layout);
      const layerName = `blobs/sha256/${want.layers[0].slice(7)}`;
      const tamperedBlob = new Map(oci);
      const bad = Buffer.from(oci.get(layerName)!);
      bad[100] ^= 0xff;
      tamperedBlob.set(layerName, bad);
      await refused(await tarOf(tamperedBlob), /does not match its digest/);
      // A manifest referencing a blob the archive lacks (and the repository does not have).
      const fresh = await buildImage(work, `fresh-${db}`, { 'new.txt': randomBytes(64).toString('hex') });
      const freshTar = await untar(tarDir(fresh));
      freshTar.delete(`blobs/sha256/${layoutManifest(fresh).layers[0].slice(7)}`);
      await refused(await tarOf(freshTar), /references blob sha256:[0-9a-f]{64}, which is neither in the archive nor in repository 'dock'/);
      // Neither layout nor save; oversized metadata; an index naming a manifest that is not there.
      await refused(await tarOf(new Map([['hello.txt', Buffer.from('hi')]])), /neither manifest\.json .* nor index\.json/);
      await refused(await tarOf(new Map([['manifest.json', Buffer.alloc(5 << 20, 0x20)]])), /manifest\.json is \d+ bytes, more than/);
      await refused(
        await tarOf(new Map([['index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ digest: sha256('nothing'), size: 7 }] }))]])),
        /references manifest sha256:[0-9a-f]{64}, which is not in the archive/,
      );
      // An OCI layout without a name to store it under.
      await refused(layoutTar, /has no image name in the archive; give one with \?name=/, '');
      // A name escaping the archive.
      const evil = Buffer.from(saveTar);
      const hdr = evil.subarray(0, 512);
      hdr.fill(0, 0, 100);
      hdr.write('../../etc/evil', 0);
      hdr.fill(0x20, 148, 156);
      let sum = 0;
      for (const b of hdr) sum += b;
      hdr.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
      await refused(evil, /escapes the archive/);
      // Moving a tag in an ALLOW_ONCE repository.
      const before = await snapshot();
      const moved = await upload('once', layoutTar, '&name=app/hello&tag=v1');
      assert.equal(moved.status, 201, 'latest is a new tag');
      const retag = new Map(await untar(layoutTar));
      const idx = JSON.parse(retag.get('index.json')!.toString());
      idx.manifests[0].annotations['org.opencontainers.image.ref.name'] = 'v1';
      retag.set('index.json', Buffer.from(JSON.stringify(idx)));
      const mid = await snapshot();
      assert.notEqual(mid, before);
      const r = await upload('once', await tarOf(retag), '&name=app/hello');
      assert.equal(r.status, 400);
      assert.match(await r.text(), /does not allow updating tag app\/hello:v1/);
      assert.equal(await snapshot(), mid);
      // A proxy stores nothing uploaded; not a docker repository; a missing repository parameter.
      const toProxy = await upload('dproxy', layoutTar, '&name=x/y');
      assert.equal(toProxy.status, 405, await toProxy.text());
      assert.equal((await upload('rawrepo', layoutTar)).status, 400);
      assert.equal((await s.fetch(`${API}/docker/archive`, { method: 'POST', body: new Uint8Array(layoutTar) })).status, 400);
    });

    it('needs add to upload and read to download', async () => {
      const role = await s.fetch(`${API}/security/roles`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          id: 'dock-reader',
          name: 'dock-reader',
          description: '',
          privileges: ['nx-repository-view-docker-dock-read', 'nx-repository-view-docker-dock-browse'],
          roles: [],
        }),
      });
      assert.equal(role.status, 200, await role.text());
      const user = await s.fetch(`${API}/security/users`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ userId: 'reader', firstName: 'r', lastName: 'r', emailAddress: 'r@example.org', password: 'reader-pw', status: 'active', roles: ['dock-reader'] }),
      });
      assert.equal(user.status, 200, await user.text());
      const reader = basic('reader', 'reader-pw');
      const before = await snapshot();
      const denied = await upload('dock', layoutTar, '&name=denied/image', reader);
      assert.equal(denied.status, 403, await denied.text());
      assert.equal((await upload('dock', layoutTar, '&name=denied/image', null)).status, 401);
      assert.equal(await snapshot(), before);
      const ok = await s.fetch(`${API}/docker/archive?repository=dock&image=oci/hello:latest`, { auth: reader });
      assert.equal(ok.status, 200);
      await ok.arrayBuffer();
      assert.equal((await s.fetch(`${API}/docker/archive?repository=once&image=app/hello:v1`, { auth: reader })).status, 403);
      assert.equal((await s.fetch(`${API}/docker/archive?repository=dock&image=no/such:tag`)).status, 404);
      assert.equal((await s.fetch(`${API}/docker/archive?repository=dock`)).status, 400);
    });

    it('is described in the OpenAPI document', async () => {
      const doc = (await (await s.fetch('/service/rest/swagger.json', { auth: null })).json()) as { paths: Record<string, Record<string, { tags: string[] }>> };
      const p = doc.paths['/v1/docker/archive'];
      assert.ok(p?.get && p?.post, JSON.stringify(Object.keys(doc.paths)));
      assert.deepEqual(p.post.tags, ['docker']);
    });
  });
}
