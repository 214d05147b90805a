/**
 * Docker garbage collection frees bytes for real: images pushed with skopeo (A and B sharing a
 * base layer, into two repositories on one blob store), A deleted (tag, then the untagged
 * manifest by the task; then by digest in the other repository), the `repository.docker.gc` task
 * run through the REST API with grace 0; the bytes of A's unique blobs leave the file / S3 store,
 * the task reports them, and B still pulls byte-exact from both repositories. Also: an index keeps
 * its untagged children and their referrers; a blob uploaded without a manifest survives within
 * the grace period. File and S3 (s3rver) blob stores, SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'minio';
import { ADMIN_PASSWORD, DATABASES, runTask as runTaskVia, startServer, type TestServer } from '../helpers/stowage.js';
import { skopeo } from '../helpers/oci.js';
import { startS3, type S3Server } from '../helpers/s3.js';

const run = promisify(execFile);
const sha256 = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

interface Image {
  manifest: string;
  config: string;
  layers: string[];
}

let work: string;
let layout: string;
let s3: S3Server;

/** The layout's image `tag`: manifest digest, config, layers. */
function image(tag: string): Image {
  const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as {
    manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
  };
  const d = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)!.digest;
  const m = JSON.parse(blob(d).toString()) as { config: { digest: string }; layers: Array<{ digest: string }> };
  return { manifest: d, config: m.config.digest, layers: m.layers.map((l) => l.digest) };
}

function blob(digest: string): Buffer {
  return readFileSync(path.join(layout, 'blobs', ...digest.split(':')));
}

/** umoci: `base` (one layer), then `a` and `b` on top of it (a second layer each). */
async function buildImages(): Promise<void> {
  const umoci = (...args: string[]) => run('umoci', args, { cwd: work });
  await umoci('init', '--layout', 'img');
  await umoci('new', '--image', 'img:base');
  await umoci('unpack', '--rootless', '--image', 'img:base', 'b0');
  writeFileSync(path.join(work, 'b0/rootfs/base.bin'), randomBytes(700_000));
  await umoci('repack', '--image', 'img:base', 'b0');
  for (const [tag, size] of [
    ['a', 1_500_000],
    ['b', 900_000],
  ] as const) {
    await umoci('unpack', '--rootless', '--image', 'img:base', `b-${tag}`);
    writeFileSync(path.join(work, `b-${tag}/rootfs/${tag}.bin`), randomBytes(size));
    await umoci('repack', '--image', `img:${tag}`, `b-${tag}`);
  }
}

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'stowage-docker-gc-'));
  layout = path.join(work, 'img');
  await buildImages();
  s3 = await startS3();
});

after(async () => {
  rmSync(work, { recursive: true, force: true });
  await s3.stop();
});

/** What a store holds: the sha256 of every stored object → its size. */
type Stored = Map<string, number>;

async function fileStore(dir: string): Promise<Stored> {
  const out: Stored = new Map();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(sha256(readFileSync(p)), statSync(p).size);
    }
  };
  walk(dir);
  return out;
}

async function s3Store(prefix: string): Promise<Stored> {
  const client = new Client({ endPoint: '127.0.0.1', port: Number(new URL(s3.endpoint).port), useSSL: false, accessKey: s3.accessKeyId, secretKey: s3.secretAccessKey });
  const names: Array<{ name: string; size: number }> = [];
  await new Promise<void>((resolve, reject) => {
    const st = client.listObjectsV2(s3.bucket, prefix, true);
    st.on('data', (o) => o.name && names.push({ name: o.name, size: o.size }));
    st.on('end', () => resolve());
    st.on('error', reject);
  });
  const out: Stored = new Map();
  for (const o of names) {
    const chunks: Buffer[] = [];
    for await (const c of await client.getObject(s3.bucket, o.name)) chunks.push(c as Buffer);
    out.set(sha256(Buffer.concat(chunks)), o.size);
  }
  return out;
}

const total = (s: Stored) => [...s.values()].reduce((a, b) => a + b, 0);

for (const db of DATABASES) {
  describe(`docker GC (${db})`, () => {
    let s: TestServer;
    let host: string;
    const creds = `admin:${ADMIN_PASSWORD}`;

    before(async () => {
      s = await startServer({ db });
      host = s.url.replace(/^http:\/\//, '');
    });
    after(() => s.stop());

    const runTask = (type: string, attributes: Record<string, unknown>) => runTaskVia(s, type, attributes);

    const push = async (tag: string, ref: string) => {
      const r = await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:${tag}`, `docker://${host}/${ref}`);
      assert.ok(r.ok, r.stderr);
    };

    /** Pulls and checks the manifest and every blob are byte-identical to the source image. */
    const pullsExact = async (ref: string, img: Image) => {
      const out = path.join(work, `pull-${randomBytes(4).toString('hex')}`);
      const r = await skopeo('copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/${ref}`, `oci:${out}:x`);
      assert.ok(r.ok, r.stderr);
      const index = JSON.parse(readFileSync(path.join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
      assert.equal(index.manifests[0].digest, img.manifest, `${ref}: manifest digest`);
      for (const d of [img.manifest, img.config, ...img.layers]) {
        assert.equal(sha256(readFileSync(path.join(out, 'blobs', ...d.split(':')))), d, `${ref}: ${d}`);
      }
    };

    for (const kind of ['file', 's3'] as const) {
      describe(`on a ${kind} blob store`, () => {
        let store: string;
        let measure: () => Promise<Stored>;
        const [r1, r2] = [`${kind}-one`, `${kind}-two`];

        before(async () => {
          if (kind === 'file') {
            store = 'gcfile';
            await s.app.blobStores.create(store, 'file', { path: 'gcfile' });
            const dir = path.join(s.dataDir, 'blobs', 'gcfile', 'content');
            measure = () => fileStore(dir);
          } else {
            store = 'gcs3';
            const prefix = `gc-${db}-${randomBytes(4).toString('hex')}`;
            await s.app.blobStores.create(store, 's3', {
              bucket: s3.bucket,
              endpoint: s3.endpoint,
              accessKeyId: s3.accessKeyId,
              secretAccessKey: s3.secretAccessKey,
              forcePathStyle: true,
              prefix,
            });
            measure = () => s3Store(`${prefix}/content/`);
          }
          for (const name of [r1, r2]) {
            await s.repo('docker', 'hosted', { name, storage: { blobStoreName: store, writePolicy: 'ALLOW' }, docker: { v1Enabled: false, forceBasicAuth: false } });
          }
        });

        it('frees the bytes of a deleted image, keeps what another image or repository references', async () => {
          const A = image('a');
          const B = image('b');
          const base = A.layers[0];
          assert.equal(B.layers[0], base, 'A and B share their base layer');
          const uniqueA = [A.manifest, A.config, A.layers[1]];
          await push('a', `${r1}/app:a`);
          await push('b', `${r1}/app:b`);
          await push('a', `${r2}/app:a`);
          await push('b', `${r2}/app:b`);
          const before = await measure();
          for (const d of [...uniqueA, B.manifest, B.config, ...B.layers]) assert.ok(before.has(d), `stored once: ${d}`);
          assert.equal(before.size, 7, 'content-addressed: one object per distinct blob');

          // A in the first repository: the tag goes; the task deletes the untagged manifest and the
          // blob assets only it used, but the second repository still references every blob.
          assert.equal((await s.fetch(`/repository/${r1}/v2/app/manifests/a`, { method: 'DELETE' })).status, 202);
          assert.equal((await s.fetch(`/repository/${r1}/v2/app/manifests/${A.manifest}`, { method: 'HEAD' })).status, 200, 'untagged, still there');
          const m1 = await runTask('repository.docker.gc', { repositoryName: r1, graceSeconds: 0 });
          assert.match(m1, /Deleted 1 unused manifests and 2 unreferenced blob assets in 1 docker repositories; 0 blobs removed from the blob store; reclaimed 0 bytes/);
          assert.equal((await s.fetch(`/repository/${r1}/v2/app/manifests/${A.manifest}`, { method: 'HEAD' })).status, 404);
          assert.equal((await s.fetch(`/repository/${r1}/v2/app/blobs/${A.layers[1]}`, { method: 'HEAD' })).status, 404);
          assert.equal((await s.fetch(`/repository/${r1}/v2/app/blobs/${base}`, { method: 'HEAD' })).status, 200);
          assert.deepEqual(await measure(), before, 'another repository references them: no byte leaves');
          await pullsExact(`${r2}/app:a`, A);

          // A in the second repository too (skopeo delete: by digest): now its bytes go.
          const del = await skopeo('delete', '--tls-verify=false', '--creds', creds, `docker://${host}/${r2}/app:a`);
          assert.ok(del.ok, del.stderr);
          const m2 = await runTask('repository.docker.gc', { deployOffset: 0 });
          const expected = uniqueA.reduce((n, d) => n + blob(d).length, 0);
          const reclaimed = Number(/reclaimed (\d+) bytes/.exec(m2)?.[1]);
          assert.match(m2, /and 2 unreferenced blob assets in \d+ docker repositories; 3 blobs removed from the blob store/);
          const afterGc = await measure();
          assert.equal(total(before) - total(afterGc), expected, 'the store shrank by A’s unique blobs');
          assert.equal(reclaimed, expected, m2);
          for (const d of uniqueA) assert.ok(!afterGc.has(d), `gone: ${d}`);
          for (const d of [B.manifest, B.config, ...B.layers]) assert.ok(afterGc.has(d), `kept: ${d}`);
          await pullsExact(`${r1}/app:b`, B);
          await pullsExact(`${r2}/app:b`, B);
          // The catalog and tags no longer show A.
          assert.deepEqual((await (await s.fetch(`/repository/${r2}/v2/app/tags/list`)).json()).tags, ['b']);

          // Pushing A again works (nothing half-deleted remains in the way).
          await push('a', `${r2}/app:a`);
          await pullsExact(`${r2}/app:a`, A);
        });

        it('keeps the untagged children of a tagged index and referrers of kept manifests; deletes them once the index goes', async () => {
          const put = async (ref: string, body: Buffer<ArrayBuffer>, type: string) => {
            const r = await s.fetch(`/repository/${r1}/v2/idx/manifests/${ref}`, { method: 'PUT', headers: { 'Content-Type': type }, body });
            assert.equal(r.status, 201, await r.text());
            return r.headers.get('docker-content-digest')!;
          };
          const upload = async (b: Buffer<ArrayBuffer>) => {
            const r = await s.fetch(`/repository/${r1}/v2/idx/blobs/uploads/?digest=${sha256(b)}`, { method: 'POST', body: b });
            assert.equal(r.status, 201);
            return sha256(b);
          };
          const layer = randomBytes(50_000);
          const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, n: randomBytes(4).toString('hex') }));
          const layerD = await upload(layer);
          const cfgD = await upload(cfg);
          const child = Buffer.from(
            JSON.stringify({
              schemaVersion: 2,
              mediaType: OCI_MANIFEST,
              config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfgD, size: cfg.length },
              layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerD, size: layer.length }],
            }),
          );
          const childD = await put(sha256(child), child, OCI_MANIFEST);
          const empty = Buffer.from('{}');
          const emptyD = await upload(empty);
          const sig = Buffer.from(
            JSON.stringify({
              schemaVersion: 2,
              mediaType: OCI_MANIFEST,
              artifactType: 'application/x-signature',
              config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyD, size: 2 },
              layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyD, size: 2 }],
              subject: { mediaType: OCI_MANIFEST, digest: childD, size: child.length },
            }),
          );
          const sigD = await put(sha256(sig), sig, OCI_MANIFEST);
          const index = Buffer.from(
            JSON.stringify({
              schemaVersion: 2,
              mediaType: OCI_INDEX,
              manifests: [{ mediaType: OCI_MANIFEST, digest: childD, size: child.length, platform: { architecture: 'amd64', os: 'linux' } }],
            }),
          );
          const indexD = await put('multi', index, OCI_INDEX);
          const head = async (p: string) => (await s.fetch(`/repository/${r1}/v2/idx/${p}`, { method: 'HEAD' })).status;

          const kept = await runTask('repository.docker.gc', { repositoryName: r1, graceSeconds: 0 });
          assert.match(kept, /Deleted 0 unused manifests and 0 unreferenced blob assets/);
          for (const d of [indexD, childD, sigD]) assert.equal(await head(`manifests/${d}`), 200, d);
          for (const d of [layerD, cfgD, emptyD]) assert.equal(await head(`blobs/${d}`), 200, d);

          assert.equal((await s.fetch(`/repository/${r1}/v2/idx/manifests/multi`, { method: 'DELETE' })).status, 202);
          const gone = await runTask('repository.docker.gc', { repositoryName: r1, graceSeconds: 0 });
          assert.match(gone, /Deleted 3 unused manifests and 3 unreferenced blob assets/);
          for (const d of [indexD, childD, sigD]) assert.equal(await head(`manifests/${d}`), 404, d);
          // The referrers index row of the collected signature went with it.
          assert.equal((await s.app.db('tags').where('scope', 'like', 'idx@%')).length, 0);
          for (const d of [layerD, cfgD, emptyD]) assert.equal(await head(`blobs/${d}`), 404, d);
          assert.ok(!(await measure()).has(layerD), 'the layer bytes left the store');
        });

        it('a blob uploaded before its manifest survives GC within the grace period', async () => {
          const b = randomBytes(123_456);
          const d = sha256(b);
          assert.equal((await s.fetch(`/repository/${r1}/v2/pending/blobs/uploads/?digest=${d}`, { method: 'POST', body: b })).status, 201);
          const m = await runTask('repository.docker.gc', { repositoryName: r1, deployOffset: 1 });
          assert.match(m, /0 unreferenced blob assets/);
          assert.equal((await s.fetch(`/repository/${r1}/v2/pending/blobs/${d}`, { method: 'HEAD' })).status, 200);
          assert.ok((await measure()).has(d));
          // Past the grace (0 here) and still no manifest: collected.
          const m0 = await runTask('repository.docker.gc', { repositoryName: r1, graceSeconds: 0 });
          assert.match(m0, /1 unreferenced blob assets/);
          assert.equal((await s.fetch(`/repository/${r1}/v2/pending/blobs/${d}`, { method: 'HEAD' })).status, 404);
          assert.ok(!(await measure()).has(d));
        });
      });
    }

    describe('while pushes go on', () => {
      const v2 = (p: string) => `/repository/race/v2/${p}`;
      const upload = async (b: Buffer<ArrayBuffer>) => {
        const r = await s.fetch(v2(`app/blobs/uploads/?digest=${sha256(b)}`), { method: 'POST', body: b });
        assert.equal(r.status, 201);
        return sha256(b);
      };
      const manifestOf = (cfg: string, cfgSize: number, layer: string, layerSize: number) =>
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_MANIFEST,
            config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg, size: cfgSize },
            layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: layerSize }],
          }),
        );

      before(async () => {
        await s.repo('docker', 'hosted', { name: 'race', storage: { blobStoreName: 'default', writePolicy: 'ALLOW' }, docker: { v1Enabled: false, forceBasicAuth: false } });
      });

      it('a manifest pushed after the scan keeps the old blob it reuses', async () => {
        // An old tagged image, and an old blob nothing references yet.
        const cfg = Buffer.from('{"n":"' + randomBytes(4).toString('hex') + '"}');
        const layer = randomBytes(10_000);
        const [cfgD, layerD] = [await upload(cfg), await upload(layer)];
        const m0 = manifestOf(cfgD, cfg.length, cfgD, cfg.length);
        assert.equal((await s.fetch(v2('app/manifests/old'), { method: 'PUT', headers: { 'Content-Type': OCI_MANIFEST }, body: m0 })).status, 201);
        await new Promise((r) => setTimeout(r, 20));
        // While GC reads the manifests it scanned, a client pushes a manifest reusing the blob.
        const m1 = manifestOf(cfgD, cfg.length, layerD, layer.length);
        const get = s.app.blobs.get.bind(s.app.blobs);
        let injected = false;
        s.app.blobs.get = async (id: number) => {
          if (!injected) {
            injected = true;
            const r = await s.fetch(v2('app/manifests/new'), { method: 'PUT', headers: { 'Content-Type': OCI_MANIFEST }, body: m1 });
            assert.equal(r.status, 201);
          }
          return get(id);
        };
        try {
          const msg = await runTask('repository.docker.gc', { repositoryName: 'race', graceSeconds: 0 });
          assert.ok(injected);
          assert.match(msg, /Deleted 0 unused manifests and 0 unreferenced blob assets/);
        } finally {
          s.app.blobs.get = get;
        }
        assert.equal((await s.fetch(v2(`app/blobs/${layerD}`), { method: 'HEAD' })).status, 200);
        const pulled = await s.fetch(v2(`app/blobs/${layerD}`));
        assert.ok(Buffer.from(await pulled.arrayBuffer()).equals(layer));
      });

      it('a blob a client checked (HEAD) within the grace period is kept, even if uploaded before it', async () => {
        const b = randomBytes(5_000);
        const d = await upload(b);
        await new Promise((r) => setTimeout(r, 1200));
        // A push about to reuse it HEADs it first; its manifest is not there yet.
        assert.equal((await s.fetch(v2(`other/blobs/${d}`), { method: 'HEAD' })).status, 200);
        const msg = await runTask('repository.docker.gc', { repositoryName: 'race', graceSeconds: 1 });
        assert.match(msg, /0 unreferenced blob assets/);
        assert.equal((await s.fetch(v2(`app/blobs/${d}`), { method: 'HEAD' })).status, 200);
      });
    });

    it('refuses an unknown repository and a bad grace with a failed run and a clear message', async () => {
      const t = await s.app.tasks.create('bad gc', 'repository.docker.gc', 0, { repositoryName: 'nope' });
      const r = await s.app.tasks.run(t.task_id);
      assert.equal(r.last_result, 'FAILED');
      assert.match(r.last_message ?? '', /no docker repository 'nope'/);
      const g = await s.app.tasks.run((await s.app.tasks.create('bad grace', 'repository.docker.gc', 0, { deployOffset: 'soon' })).task_id);
      assert.equal(g.last_result, 'FAILED');
      assert.match(g.last_message ?? '', /deployOffset/);
    });
  });
}
