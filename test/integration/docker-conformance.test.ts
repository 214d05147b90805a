/**
 * The OCI distribution conformance checks as our own tests, over HTTP with fetch as the Go suite
 * drives a registry: every check of the v1.1.1 workflow (pull, push, content discovery, content
 * management) and of the HEAD redesign (blob APIs with sha256 and sha512, ranges, bad digests,
 * the data sets, referrers, missing manifests), plus OCI 1.1 `?tag=` pushes and referrers
 * through a group and a proxy. Each runs against `/repository/<repo>/v2/<name>` and the
 * path-routed `/v2/<repo>/<name>`, on SQLite and PostgreSQL. A skopeo check closes it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { ADMIN_PASSWORD, DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { buildImage, skopeo } from '../helpers/oci.js';

type Algo = 'sha256' | 'sha512';
const digestOf = (b: Buffer | string, algo: Algo = 'sha256') => `${algo}:${createHash(algo).update(b).digest('hex')}`;

const MT = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerTar: 'application/vnd.oci.image.layer.v1.tar',
  nondist: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  empty: 'application/vnd.oci.empty.v1+json',
};
const EMPTY_JSON = Buffer.from('{}');
const EMPTY_JSON_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
const DUMMY = digestOf('hello world');
const ANNOTATION = 'org.opencontainers.conformance.test';
const KNOWN_CODES = new Set([
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
  'TAG_INVALID',
]);

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  data?: string;
  urls?: string[];
}
const desc = (mediaType: string, b: Buffer, algo: Algo = 'sha256', extra: Partial<Desc> = {}): Desc => ({ mediaType, digest: digestOf(b, algo), size: b.length, ...extra });

/** A random config blob as the suite makes them (unique per call). */
const configBlob = () => Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }));
const layerBlob = (n = 256) => gzipSync(randomBytes(n));

async function errorCode(r: Response): Promise<string> {
  const body = (await r.json()) as { errors?: Array<{ code: string }> };
  assert.ok(Array.isArray(body.errors) && body.errors.length > 0, `OCI error shape: ${JSON.stringify(body)}`);
  return body.errors![0].code;
}

/** The two ways a client addresses a docker repository on the main port. */
const FORMS = [
  { label: '/repository/<repo>/v2/<name>', root: (repo: string) => `/repository/${repo}/v2/`, name: (_repo: string, image: string) => image },
  { label: 'path-routed /v2/<repo>/<name>', root: (_repo: string) => '/v2/', name: (repo: string, image: string) => `${repo}/${image}` },
];

for (const db of DATABASES) {
  describe(`OCI conformance (${db})`, () => {
    let s: TestServer;

    before(async () => {
      s = await startServer({ db });
      const docker = { v1Enabled: false, forceBasicAuth: true };
      // ALLOW: content management re-points a tag, as the suite does.
      await s.repo('docker', 'hosted', { name: 'conf', docker, storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW' } });
      await s.repo('docker', 'hosted', { name: 'conf2', docker, storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW' } });
      await s.repo('docker', 'hosted', { name: 'once', docker, storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW_ONCE' } });
    });
    after(async () => s?.stop());

    for (const form of FORMS) {
      describe(form.label, () => {
        const root = form.root('conf');
        const ns = form.name('conf', `oci/ns-${randomUUID().slice(0, 8)}`);
        const cm = form.name('conf', `oci/cm-${randomUUID().slice(0, 8)}`);
        /** Path of `p` under an image name: `<root><name>/<p>`. */
        const at = (p: string, name = ns) => `${root}${name}/${p}`;
        const req = (p: string, init: RequestInit & { auth?: string | null } = {}) => s.fetch(p, init);
        /** A Location header as a path on this server (absolute URLs accepted). */
        const loc = (r: Response): string => {
          const l = r.headers.get('Location');
          assert.ok(l, `Location header on ${r.status}`);
          return l!.startsWith('http') ? new URL(l!).pathname + new URL(l!).search : l!;
        };
        const withQuery = (l: string, q: string) => l + (l.includes('?') ? '&' : '?') + q;

        async function postPut(blob: Buffer, algo: Algo = 'sha256', name = ns): Promise<string> {
          const d = digestOf(blob, algo);
          const p = await req(at('blobs/uploads/', name), { method: 'POST' });
          assert.equal(p.status, 202, await p.text());
          const r = await req(withQuery(loc(p), `digest=${d}`), { method: 'PUT', body: new Uint8Array(blob), headers: { 'Content-Type': 'application/octet-stream' } });
          assert.equal(r.status, 201, await r.text());
          return d;
        }

        async function putManifest(ref: string, body: Buffer, mediaType: string | null, name = ns): Promise<Response> {
          return req(at(`manifests/${ref}`, name), { method: 'PUT', body: new Uint8Array(body), headers: mediaType ? { 'Content-Type': mediaType } : {} });
        }

        function imageManifest(config: Buffer, layers: Buffer[], extra: Record<string, unknown> = {}): Buffer {
          return Buffer.from(
            JSON.stringify({
              schemaVersion: 2,
              mediaType: MT.manifest,
              config: { ...desc(MT.config, config), data: undefined, newUnspecifiedField: null },
              layers: layers.map((l) => desc(MT.layer, l)),
              ...extra,
            }),
          );
        }

        // ---- v1.1.1: ping and auth --------------------------------------------------------
        it('ping: /v2/ answers 401 with a challenge without credentials, 200 with them', async () => {
          const anon = await req(form.root('conf'), { auth: null });
          assert.equal(anon.status, 401);
          assert.match(anon.headers.get('WWW-Authenticate') ?? '', /^(Bearer|Basic) realm="[^"]+"/);
          assert.equal(anon.headers.get('Docker-Distribution-API-Version'), 'registry/2.0');
          const ok = await req(form.root('conf'));
          assert.equal(ok.status, 200);
          assert.equal(ok.headers.get('Docker-Distribution-API-Version'), 'registry/2.0');
        });

        // ---- v1.1.1: pull -----------------------------------------------------------------
        describe('pull', () => {
          const configs = [configBlob(), configBlob()];
          const layer = layerBlob();
          const m0 = imageManifest(configs[0], [layer]);
          const m1 = imageManifest(configs[1], [layer]);
          before(async () => {
            await postPut(configs[0]);
            await postPut(configs[1]);
            await postPut(layer);
            assert.equal((await putManifest('tagtest0', m0, MT.manifest)).status, 201);
            assert.equal((await putManifest(digestOf(m1), m1, MT.manifest)).status, 201);
          });

          it('1-4: HEAD/GET of a missing blob → 404, of a pushed config → 200 with its digest', async () => {
            for (const method of ['HEAD', 'GET']) {
              assert.equal((await req(at(`blobs/${DUMMY}`), { method })).status, 404);
              const r = await req(at(`blobs/${digestOf(configs[0])}`), { method });
              assert.equal(r.status, 200);
              assert.equal(r.headers.get('Docker-Content-Digest'), digestOf(configs[0]));
              assert.equal(r.headers.get('Content-Length'), String(configs[0].length));
              if (method === 'GET') assert.deepEqual(Buffer.from(await r.arrayBuffer()), configs[0]);
            }
          });

          it('5-13: manifests by invalid name (404), digest and tag (200), sha256:totallywrong (400/404)', async () => {
            for (const method of ['HEAD', 'GET']) {
              assert.equal((await req(at('manifests/.INVALID_MANIFEST_NAME'), { method, headers: { Accept: MT.manifest } })).status, 404);
              for (const [ref, body] of [
                [digestOf(m0), m0],
                [digestOf(m1), m1],
                ['tagtest0', m0],
              ] as const) {
                const r = await req(at(`manifests/${ref}`), { method, headers: { Accept: MT.manifest } });
                assert.equal(r.status, 200, `${method} ${ref}`);
                assert.equal(r.headers.get('Docker-Content-Digest'), digestOf(body));
                assert.equal(r.headers.get('Content-Type'), MT.manifest);
                assert.equal(r.headers.get('Content-Length'), String(body.length));
                if (method === 'GET') assert.deepEqual(Buffer.from(await r.arrayBuffer()), body);
              }
            }
            const wrong = await req(at('manifests/sha256:totallywrong'));
            assert.ok(wrong.status === 400 || wrong.status === 404, String(wrong.status));
            if (wrong.status === 400) assert.ok(KNOWN_CODES.has(await errorCode(wrong)));
          });
        });

        // ---- v1.1.1: push -----------------------------------------------------------------
        describe('push', () => {
          const blobA = randomBytes(42);
          const blobB = randomBytes(42);
          const chunk1 = blobB.subarray(0, 22);
          const chunk2 = blobB.subarray(22);
          const configs = [configBlob(), configBlob()];
          const layer = layerBlob();

          it('14-15: POST, streamed PATCH without Content-Range → 202, empty PUT ?digest= → 201', async () => {
            const p = await req(at('blobs/uploads/'), { method: 'POST' });
            assert.equal(p.status, 202);
            const patch = await req(loc(p), { method: 'PATCH', body: new Uint8Array(blobA), headers: { 'Content-Type': 'application/octet-stream' } });
            assert.equal(patch.status, 202);
            assert.equal(patch.headers.get('Range'), '0-41');
            const put = await req(withQuery(loc(patch), `digest=${digestOf(blobA)}`), { method: 'PUT' });
            assert.equal(put.status, 201, await put.text());
            assert.equal(loc(put), at(`blobs/${digestOf(blobA)}`));
            assert.equal(put.headers.get('Docker-Content-Digest'), digestOf(blobA));
          });

          it('16-18: single POST ?digest= with body → 201 and the blob is there', async () => {
            assert.equal((await req(at(`blobs/${DUMMY}`))).status, 404);
            const r = await req(at(`blobs/uploads/?digest=${digestOf(configs[1])}`), {
              method: 'POST',
              body: new Uint8Array(configs[1]),
              headers: { 'Content-Type': 'application/octet-stream' },
            });
            assert.ok(r.status === 201 || r.status === 202);
            assert.ok(loc(r));
            const get = await req(at(`blobs/${digestOf(configs[1])}`));
            assert.equal(get.status, r.status === 201 ? 200 : 404);
          });

          it('19-23: POST → 202, PUT with body → 201, GET → 200', async () => {
            for (const b of [configs[0], layer]) {
              await postPut(b);
              const g = await req(at(`blobs/${digestOf(b)}`));
              assert.equal(g.status, 200);
              assert.deepEqual(Buffer.from(await g.arrayBuffer()), b);
            }
          });

          it('24-29: chunks: out of order → 416, resend → 416, status GET → 204 Range 0-21, resume, PUT → 201', async () => {
            const p0 = await req(at('blobs/uploads/'), { method: 'POST', headers: { 'Content-Length': '0' } });
            assert.equal(p0.status, 202);
            const ooo = await req(loc(p0), { method: 'PATCH', body: new Uint8Array(chunk2), headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '22-41' } });
            assert.equal(ooo.status, 416);
            assert.equal(await errorCode(ooo), 'BLOB_UPLOAD_INVALID');

            const p = await req(at('blobs/uploads/'), { method: 'POST', headers: { 'Content-Length': '0' } });
            const postLoc = loc(p);
            const c1 = await req(postLoc, { method: 'PATCH', body: new Uint8Array(chunk1), headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-21' } });
            assert.equal(c1.status, 202);
            assert.equal(c1.headers.get('Range'), '0-21');
            const again = await req(postLoc, { method: 'PATCH', body: new Uint8Array(chunk1), headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-21' } });
            assert.equal(again.status, 416);
            assert.equal(again.headers.get('Range'), '0-21');
            assert.ok(again.headers.get('Location'));
            const status = await req(postLoc);
            assert.equal(status.status, 204);
            assert.equal(status.headers.get('Range'), '0-21');
            const c2 = await req(loc(status), { method: 'PATCH', body: new Uint8Array(chunk2), headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '22-41' } });
            assert.equal(c2.status, 202);
            assert.equal(c2.headers.get('Range'), '0-41');
            const put = await req(withQuery(loc(c2), `digest=${digestOf(blobB)}`), { method: 'PUT', headers: { 'Content-Length': '0' } });
            assert.equal(put.status, 201, await put.text());
            const g = await req(at(`blobs/${digestOf(blobB)}`));
            assert.deepEqual(Buffer.from(await g.arrayBuffer()), blobB);
            // The session is over: its URL is unknown now.
            const gone = await req(loc(c2), { method: 'PATCH', body: new Uint8Array(chunk2), headers: { 'Content-Type': 'application/octet-stream' } });
            assert.equal(gone.status, 404);
            assert.equal(await errorCode(gone), 'BLOB_UPLOAD_UNKNOWN');
          });

          it('30-33: mount of an unknown blob → 202 + upload session; mount from <ns> → 201 at /v2/<cm>/blobs/<d>', async () => {
            const miss = await req(at(`blobs/uploads/?mount=${DUMMY}`, cm), { method: 'POST' });
            assert.equal(miss.status, 202);
            assert.ok(loc(miss).startsWith(at('blobs/uploads/', cm)));
            const del = await req(loc(miss), { method: 'DELETE' });
            assert.equal(del.status, 204);
            const m = await req(at(`blobs/uploads/?mount=${digestOf(blobA)}&from=${ns}`, cm), { method: 'POST' });
            assert.equal(m.status, 201);
            assert.equal(loc(m), at(`blobs/${digestOf(blobA)}`, cm));
            const g = await req(loc(m));
            assert.equal(g.status, 200);
            assert.deepEqual(Buffer.from(await g.arrayBuffer()), blobA);
          });

          it('35-38: manifests: invalid name 404, four tags → 201, a manifest without mediaType and no layers → 201', async () => {
            assert.equal((await req(at('manifests/.INVALID_MANIFEST_NAME'))).status, 404);
            const m1 = imageManifest(configs[0], [layer]);
            for (const t of ['test0', 'test1', 'test2', 'test3']) {
              const r = await putManifest(t, m1, MT.manifest);
              assert.equal(r.status, 201, await r.text());
              assert.equal(loc(r), at(`manifests/${digestOf(m1)}`));
              assert.equal(r.headers.get('Docker-Content-Digest'), digestOf(m1));
            }
            const empty = Buffer.from(JSON.stringify({ schemaVersion: 2, config: desc(MT.config, configs[0]), layers: [] }));
            const r = await putManifest('emptylayer', empty, MT.manifest);
            assert.equal(r.status, 201, await r.text());
            const g = await req(at('manifests/emptylayer'));
            assert.equal(g.headers.get('Content-Type'), MT.manifest);
            assert.deepEqual(Buffer.from(await g.arrayBuffer()), empty);
            assert.equal((await req(at(`manifests/${digestOf(m1)}`))).status, 200);
          });
        });

        // ---- v1.1.1: content discovery ----------------------------------------------------
        describe('content discovery', () => {
          const img = form.name('conf', `oci/disc-${randomUUID().slice(0, 8)}`);
          const d = (p: string) => at(p, img);
          const [c2, c4] = [configBlob(), configBlob()];
          const layer = layerBlob();
          const refBlobA = randomBytes(64);
          const refBlobB = randomBytes(64);
          const m2 = imageManifest(c2, [layer]);
          const m3 = imageManifest(configBlob(), [layer]); // never pushed
          const m4 = imageManifest(c4, [layer]);
          const bagel = 'application/vnd.nhl.peanut.butter.bagel';
          const croissant = 'application/vnd.nba.strawberry.jam.croissant';
          const subject = (m: Buffer) => desc(MT.manifest, m);
          const note = (v: string) => ({ [ANNOTATION]: v });
          const refAConfig = Buffer.from(
            JSON.stringify({
              schemaVersion: 2,
              mediaType: MT.manifest,
              config: desc(bagel, EMPTY_JSON),
              layers: [desc(MT.layer, refBlobA)],
              subject: subject(m4),
              annotations: note('test config a'),
            }),
          );
          const refALayer = Buffer.from(
            JSON.stringify({
              schemaVersion: 2,
              mediaType: MT.manifest,
              artifactType: bagel,
              config: desc(MT.empty, EMPTY_JSON),
              layers: [desc(MT.layer, refBlobA)],
              subject: subject(m4),
              annotations: note('test layer a'),
            }),
          );
          const refIndex = Buffer.from(
            JSON.stringify({
              schemaVersion: 2,
              mediaType: MT.index,
              artifactType: 'application/vnd.food.stand',
              manifests: [desc(MT.manifest, refAConfig), desc(MT.manifest, refALayer)],
              subject: subject(m4),
              annotations: note('test index'),
            }),
          );
          const refBConfig = Buffer.from(
            JSON.stringify({
              schemaVersion: 2,
              mediaType: MT.manifest,
              config: desc(croissant, EMPTY_JSON),
              layers: [desc(MT.layer, refBlobB)],
              subject: subject(m4),
              annotations: note('test config b'),
            }),
          );
          const refBLayer = Buffer.from(
            JSON.stringify({
              schemaVersion: 2,
              mediaType: MT.manifest,
              artifactType: croissant,
              config: desc(MT.empty, EMPTY_JSON),
              layers: [desc(MT.layer, refBlobB)],
              subject: subject(m4),
              annotations: note('test layer b'),
            }),
          );
          const refCLayer = Buffer.from(
            JSON.stringify({
              schemaVersion: 2,
              mediaType: MT.manifest,
              artifactType: croissant,
              config: desc(MT.empty, EMPTY_JSON),
              layers: [desc(MT.layer, refBlobB)],
              subject: subject(m3),
            }),
          );
          let n = 0;

          before(async () => {
            await postPut(c2, 'sha256', img);
            await postPut(layer, 'sha256', img);
            for (const t of ['test0', 'test1', 'test2', 'test3']) assert.equal((await putManifest(t, m2, MT.manifest, img)).status, 201);
            assert.equal(await postPut(EMPTY_JSON, 'sha256', img), EMPTY_JSON_DIGEST);
            await postPut(refBlobA, 'sha256', img);
            // Referrers before their subject exists.
            for (const [body, mt] of [
              [refAConfig, MT.manifest],
              [refALayer, MT.manifest],
              [refIndex, MT.index],
            ] as const) {
              const r = await putManifest(digestOf(body), body, mt, img);
              assert.equal(r.status, 201, await r.text());
              assert.equal(r.headers.get('OCI-Subject'), digestOf(m4));
            }
            await postPut(c4, 'sha256', img);
            assert.equal((await putManifest('tagtest0', m4, MT.manifest, img)).status, 201);
            await postPut(refBlobB, 'sha256', img);
            for (const body of [refBConfig, refBLayer]) {
              const r = await putManifest(digestOf(body), body, MT.manifest, img);
              assert.equal(r.status, 201);
              assert.equal(r.headers.get('OCI-Subject'), digestOf(m4));
            }
            const r = await putManifest(digestOf(refCLayer), refCLayer, MT.manifest, img);
            assert.equal(r.status, 201);
            assert.equal(r.headers.get('OCI-Subject'), digestOf(m3));
          });

          it('39-41: tag list, exactly n per page with a Link, last= starts after', async () => {
            const all = await req(d('tags/list'));
            assert.equal(all.status, 200);
            const tags = ((await all.json()) as { tags: string[] }).tags;
            n = tags.length;
            assert.deepEqual(tags, ['tagtest0', 'test0', 'test1', 'test2', 'test3']);
            const half = Math.floor(n / 2);
            const p1 = await req(d(`tags/list?n=${half}`));
            assert.equal(p1.status, 200);
            assert.deepEqual(((await p1.json()) as { tags: string[] }).tags, tags.slice(0, half));
            assert.match(p1.headers.get('Link') ?? '', /rel="next"/);
            const p2 = await req(d(`tags/list?n=${half}&last=${tags[half - 1]}`));
            assert.equal(p2.status, 200);
            assert.deepEqual(((await p2.json()) as { tags: string[] }).tags, tags.slice(half, 2 * half));
            const zero = await req(d('tags/list?n=0'));
            assert.deepEqual(((await zero.json()) as { tags: string[] }).tags, []);
            assert.equal(zero.headers.get('Link'), null);
          });

          it('42: referrers of an unknown subject → 200, empty index', async () => {
            const r = await req(d(`referrers/${DUMMY}`));
            assert.equal(r.status, 200);
            assert.equal(r.headers.get('Content-Type'), MT.index);
            const body = (await r.json()) as { schemaVersion: number; mediaType: string; manifests: unknown[] };
            assert.deepEqual(body, { schemaVersion: 2, mediaType: MT.index, manifests: [] });
          });

          it('43: referrers of m4 → the 5 referrers, each with its one annotation and artifact type', async () => {
            const r = await req(d(`referrers/${digestOf(m4)}`));
            assert.equal(r.status, 200);
            assert.equal(r.headers.get('Content-Type'), MT.index);
            assert.equal(r.headers.get('OCI-Filters-Applied'), null);
            const body = (await r.json()) as { manifests: Desc[] };
            const want: Array<[Buffer, string, string, string]> = [
              [refAConfig, MT.manifest, bagel, 'test config a'],
              [refALayer, MT.manifest, bagel, 'test layer a'],
              [refIndex, MT.index, 'application/vnd.food.stand', 'test index'],
              [refBConfig, MT.manifest, croissant, 'test config b'],
              [refBLayer, MT.manifest, croissant, 'test layer b'],
            ];
            assert.equal(body.manifests.length, 5);
            for (const [b, mediaType, artifactType, value] of want) {
              const got = body.manifests.find((m) => m.digest === digestOf(b));
              assert.deepEqual(got, { mediaType, digest: digestOf(b), size: b.length, artifactType, annotations: note(value) });
            }
          });

          it('44: ?artifactType= filters and says so in OCI-Filters-Applied', async () => {
            const r = await req(d(`referrers/${digestOf(m4)}?artifactType=${encodeURIComponent(bagel)}`));
            assert.equal(r.status, 200);
            assert.equal(r.headers.get('OCI-Filters-Applied'), 'artifactType');
            const body = (await r.json()) as { manifests: Desc[] };
            assert.deepEqual(body.manifests.map((m) => m.digest).sort(), [digestOf(refAConfig), digestOf(refALayer)].sort());
            const none = await req(d(`referrers/${digestOf(m4)}?artifactType=application/x-none`));
            assert.deepEqual(((await none.json()) as { manifests: Desc[] }).manifests, []);
          });

          it('45: referrers of a subject never pushed (m3) → refC only', async () => {
            const r = await req(d(`referrers/${digestOf(m3)}`));
            const body = (await r.json()) as { manifests: Desc[] };
            assert.deepEqual(body.manifests, [{ mediaType: MT.manifest, digest: digestOf(refCLayer), size: refCLayer.length, artifactType: croissant }]);
          });

          it('referrers: an invalid digest → 400 in the OCI error shape; deleting a referrer removes it from the list', async () => {
            const bad = await req(d('referrers/sha256:nothex'));
            assert.equal(bad.status, 400);
            assert.equal(await errorCode(bad), 'DIGEST_INVALID');
            const del = await req(d(`manifests/${digestOf(refBLayer)}`), { method: 'DELETE' });
            assert.equal(del.status, 202);
            const r = await req(d(`referrers/${digestOf(m4)}`));
            const body = (await r.json()) as { manifests: Desc[] };
            assert.equal(body.manifests.length, 4);
            assert.ok(!body.manifests.some((m) => m.digest === digestOf(refBLayer)));
            // Other images have their own referrers.
            const elsewhere = await req(at(`referrers/${digestOf(m4)}`, ns));
            assert.deepEqual(((await elsewhere.json()) as { manifests: Desc[] }).manifests, []);
          });

          // ---- v1.1.1: content management (on the same image, after discovery) ----------
          it('46-51: re-point tagtest0, delete the tag, the manifest, its blobs', async () => {
            const c3 = configBlob();
            const layer3 = layerBlob();
            await postPut(c3, 'sha256', img);
            await postPut(layer3, 'sha256', img);
            const m3b = imageManifest(c3, [layer3]);
            assert.equal((await putManifest('tagtest0', m3b, MT.manifest, img)).status, 201);
            const before = ((await (await req(d('tags/list'))).json()) as { tags: string[] }).tags;
            assert.equal(before.length, n);
            assert.equal(before.length, 5);
            const delTag = await req(d('manifests/tagtest0'), { method: 'DELETE' });
            assert.equal(delTag.status, 202);
            assert.equal((await req(d('manifests/tagtest0'), { method: 'HEAD' })).status, 404);
            const delManifest = await req(d(`manifests/${digestOf(m3b)}`), { method: 'DELETE' });
            assert.equal(delManifest.status, 202);
            const gone = await req(d(`manifests/${digestOf(m3b)}`));
            assert.equal(gone.status, 404);
            assert.equal(await errorCode(gone), 'MANIFEST_UNKNOWN');
            const tags = ((await (await req(d('tags/list'))).json()) as { tags: string[] }).tags;
            assert.equal(tags.length, n - 1);
            for (const b of [c3, layer3]) {
              assert.equal((await req(d(`blobs/${digestOf(b)}`), { method: 'DELETE' })).status, 202);
              const g = await req(d(`blobs/${digestOf(b)}`));
              assert.equal(g.status, 404);
              assert.equal(await errorCode(g), 'BLOB_UNKNOWN');
            }
            // Deleting a digest removes every tag pointing to it.
            assert.equal((await req(d(`manifests/${digestOf(m2)}`), { method: 'DELETE' })).status, 202);
            assert.deepEqual(((await (await req(d('tags/list'))).json()) as { tags: string[] }).tags, []);
            assert.equal((await req(d(`manifests/${digestOf(m2)}`), { method: 'DELETE' })).status, 404);
          });
        });

        // ---- HEAD redesign: blob APIs with sha256 and sha512 --------------------------------
        for (const algo of ['sha256', 'sha512'] as const) {
          describe(`${algo} blobs`, () => {
            const blob = () => randomBytes(512);

            /** After a push: exact bytes, HEAD with Content-Length and empty body, DELETE, then 404. */
            async function verifyAndDelete(b: Buffer, location?: string): Promise<void> {
              const d = digestOf(b, algo);
              if (location) {
                const g = await req(location);
                assert.equal(g.status, 200);
                assert.deepEqual(Buffer.from(await g.arrayBuffer()), b);
              }
              const h = await req(at(`blobs/${d}`), { method: 'HEAD' });
              assert.equal(h.status, 200);
              assert.equal(h.headers.get('Content-Length'), String(b.length));
              assert.equal(h.headers.get('Docker-Content-Digest'), d);
              assert.equal((await h.arrayBuffer()).byteLength, 0);
              const g = await req(at(`blobs/${d}`));
              assert.equal(g.headers.get('Content-Length'), String(b.length));
              assert.deepEqual(Buffer.from(await g.arrayBuffer()), b);
              assert.equal((await req(at(`blobs/${d}`), { method: 'DELETE' })).status, 202);
              assert.equal((await req(at(`blobs/${d}`), { method: 'HEAD' })).status, 404);
            }

            it('get-missing → 404 BLOB_UNKNOWN', async () => {
              const r = await req(at(`blobs/${digestOf(randomBytes(16), algo)}`));
              assert.equal(r.status, 404);
              assert.equal(await errorCode(r), 'BLOB_UNKNOWN');
            });

            it('post only (single POST ?digest=) → 201', async () => {
              const b = blob();
              const r = await req(at(`blobs/uploads/?digest=${digestOf(b, algo)}`), {
                method: 'POST',
                body: new Uint8Array(b),
                headers: { 'Content-Type': 'application/octet-stream' },
              });
              assert.equal(r.status, 201, await r.text());
              assert.equal(r.headers.get('Docker-Content-Digest'), digestOf(b, algo));
              await verifyAndDelete(b, loc(r));
            });

            it('post+put → 202 then 201', async () => {
              const b = blob();
              await postPut(b, algo);
              await verifyAndDelete(b, at(`blobs/${digestOf(b, algo)}`));
            });

            for (const [label, parts, finalInPut, ranged] of [
              ['chunked single', 1, false, true],
              ['chunked multi (3 chunks)', 3, false, true],
              ['chunked multi + PUT final chunk', 3, true, true],
              ['stream (PATCH without Content-Range)', 1, false, false],
            ] as const) {
              it(label, async () => {
                const b = randomBytes(3000);
                const size = Math.ceil(b.length / parts);
                const p = await req(at('blobs/uploads/'), { method: 'POST', headers: { 'Content-Length': '0' } });
                assert.equal(p.status, 202);
                let l = loc(p);
                let offset = 0;
                for (let i = 0; i < parts; i++) {
                  const chunk = b.subarray(offset, Math.min(b.length, offset + size));
                  if (finalInPut && i === parts - 1) break;
                  const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' };
                  if (ranged) headers['Content-Range'] = `${offset}-${offset + chunk.length - 1}`;
                  const r = await req(l, { method: 'PATCH', body: new Uint8Array(chunk), headers });
                  assert.equal(r.status, 202, await r.text());
                  offset += chunk.length;
                  assert.equal(r.headers.get('Range'), `0-${offset - 1}`);
                  l = loc(r);
                }
                const rest = b.subarray(offset);
                const headers: Record<string, string> = rest.length ? { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${b.length - 1}` } : {};
                const put = await req(withQuery(l, `digest=${digestOf(b, algo)}`), { method: 'PUT', body: new Uint8Array(rest), headers });
                assert.equal(put.status, 201, await put.text());
                await verifyAndDelete(b, loc(put));
              });
            }

            it('stream with a chunked request body (no Content-Length)', async () => {
              const b = randomBytes(70_000);
              const p = await req(at('blobs/uploads/'), { method: 'POST' });
              const body = new ReadableStream<Uint8Array>({
                start(c) {
                  c.enqueue(new Uint8Array(b.subarray(0, 30_000)));
                  c.enqueue(new Uint8Array(b.subarray(30_000)));
                  c.close();
                },
              });
              const r = await req(loc(p), { method: 'PATCH', body, duplex: 'half' } as RequestInit);
              assert.equal(r.status, 202);
              assert.equal(r.headers.get('Range'), `0-${b.length - 1}`);
              const put = await req(withQuery(loc(r), `digest=${digestOf(b, algo)}`), { method: 'PUT' });
              assert.equal(put.status, 201);
              await verifyAndDelete(b, loc(put));
            });

            it('mount: from another repository → 201; anonymous (no from) of a blob here → 201; missing → 202', async () => {
              const b = blob();
              const d = digestOf(b, algo);
              // repo2: another Stowage repository on the same blob store.
              const other = form.name('conf2', 'oci/src');
              const p = await req(`${form.root('conf2')}${other}/blobs/uploads/?digest=${d}`, {
                method: 'POST',
                body: new Uint8Array(b),
                headers: { 'Content-Type': 'application/octet-stream' },
              });
              assert.equal(p.status, 201);
              const from = form.label.startsWith('path') ? other : `conf2/${other}`;
              const m = await req(at(`blobs/uploads/?mount=${d}&from=${from}`), { method: 'POST' });
              assert.equal(m.status, 201, await m.text());
              assert.equal(loc(m), at(`blobs/${d}`));
              assert.equal(m.headers.get('Docker-Content-Digest'), d);
              const anon = await req(at(`blobs/uploads/?mount=${d}`, cm), { method: 'POST' });
              assert.equal(anon.status, 201);
              const missing = await req(at(`blobs/uploads/?mount=${digestOf(randomBytes(8), algo)}&from=${from}`), { method: 'POST' });
              assert.equal(missing.status, 202);
              assert.ok(loc(missing).startsWith(at('blobs/uploads/')));
              await verifyAndDelete(b, loc(m));
            });

            it('out of order: wrong range → 416, GET status → 204 with Range, resume; also via PUT', async () => {
              for (const viaPut of [false, true]) {
                const b = randomBytes(2048);
                const p = await req(at('blobs/uploads/'), { method: 'POST', headers: { 'Content-Length': '0' } });
                const first = await req(loc(p), {
                  method: 'PATCH',
                  body: new Uint8Array(b.subarray(0, 1024)),
                  headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-1023' },
                });
                assert.equal(first.status, 202);
                const wrong = await req(viaPut ? withQuery(loc(first), `digest=${digestOf(b, algo)}`) : loc(first), {
                  method: viaPut ? 'PUT' : 'PATCH',
                  body: new Uint8Array(b.subarray(1500)),
                  headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `1500-${b.length - 1}` },
                });
                assert.equal(wrong.status, 416);
                assert.equal(await errorCode(wrong), 'BLOB_UPLOAD_INVALID');
                const st = await req(loc(p));
                assert.equal(st.status, 204);
                assert.equal(st.headers.get('Range'), '0-1023');
                assert.ok(st.headers.get('Location'));
                const rest = await req(loc(st), {
                  method: 'PATCH',
                  body: new Uint8Array(b.subarray(1024)),
                  headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `1024-${b.length - 1}` },
                });
                assert.equal(rest.status, 202);
                const put = await req(withQuery(loc(rest), `digest=${digestOf(b, algo)}`), { method: 'PUT' });
                assert.equal(put.status, 201);
                await verifyAndDelete(b, loc(put));
              }
            });

            it('range requests: 206 with Content-Range, clamped; 416 when unsatisfiable', async () => {
              const b = randomBytes(2048);
              const d = await postPut(b, algo);
              const range = (r: string) => req(at(`blobs/${d}`), { headers: { Range: r } });
              const cases: Array<[string, number, string, Buffer | null]> = [
                ['bytes=500-1499', 206, 'bytes 500-1499/2048', b.subarray(500, 1500)],
                ['bytes=500-', 206, 'bytes 500-2047/2048', b.subarray(500)],
                ['bytes=-500', 206, 'bytes 1548-2047/2048', b.subarray(1548)],
                ['bytes=2000-5000', 206, 'bytes 2000-2047/2048', b.subarray(2000)],
                ['bytes=500-0', 416, 'bytes */2048', null],
                ['bytes=5000-10000', 416, 'bytes */2048', null],
              ];
              for (const [r, status, cr, body] of cases) {
                const res = await range(r);
                assert.equal(res.status, status, r);
                assert.equal(res.headers.get('Content-Range'), cr, r);
                if (body) {
                  assert.equal(res.headers.get('Content-Length'), String(body.length));
                  assert.deepEqual(Buffer.from(await res.arrayBuffer()), body);
                } else await res.arrayBuffer();
              }
              await verifyAndDelete(b);
            });

            it('the empty blob and {}', async () => {
              for (const b of [Buffer.alloc(0), EMPTY_JSON]) {
                await postPut(b, algo);
                await verifyAndDelete(b, at(`blobs/${digestOf(b, algo)}`));
              }
            });

            it('bad digest: post only, post+put, chunked, chunked+put, stream → 400 DIGEST_INVALID, nothing stored', async () => {
              const b = blob();
              const d = digestOf(b, algo);
              const corrupt = Buffer.from(b);
              corrupt[7] ^= 0xff;
              const oct = { 'Content-Type': 'application/octet-stream' };
              const attempts: Array<() => Promise<Response>> = [
                () => req(at(`blobs/uploads/?digest=${d}`), { method: 'POST', body: new Uint8Array(corrupt), headers: oct }),
                async () => {
                  const p = await req(at('blobs/uploads/'), { method: 'POST' });
                  return req(withQuery(loc(p), `digest=${d}`), { method: 'PUT', body: new Uint8Array(corrupt), headers: oct });
                },
                async () => {
                  const p = await req(at('blobs/uploads/'), { method: 'POST' });
                  const r = await req(loc(p), { method: 'PATCH', body: new Uint8Array(corrupt), headers: { ...oct, 'Content-Range': `0-${corrupt.length - 1}` } });
                  return req(withQuery(loc(r), `digest=${d}`), { method: 'PUT' });
                },
                async () => {
                  const p = await req(at('blobs/uploads/'), { method: 'POST' });
                  const r = await req(loc(p), { method: 'PATCH', body: new Uint8Array(corrupt.subarray(0, 100)), headers: { ...oct, 'Content-Range': '0-99' } });
                  return req(withQuery(loc(r), `digest=${d}`), {
                    method: 'PUT',
                    body: new Uint8Array(corrupt.subarray(100)),
                    headers: { ...oct, 'Content-Range': `100-${corrupt.length - 1}` },
                  });
                },
                async () => {
                  const p = await req(at('blobs/uploads/'), { method: 'POST' });
                  const r = await req(loc(p), { method: 'PATCH', body: new Uint8Array(corrupt), headers: oct });
                  return req(withQuery(loc(r), `digest=${d}`), { method: 'PUT' });
                },
              ];
              for (const attempt of attempts) {
                const r = await attempt();
                assert.equal(r.status, 400);
                assert.equal(await errorCode(r), 'DIGEST_INVALID');
                assert.equal((await req(at(`blobs/${d}`), { method: 'HEAD' })).status, 404);
                assert.equal((await req(at(`blobs/${digestOf(corrupt, algo)}`), { method: 'HEAD' })).status, 404);
              }
              // Not even a blob row for the bytes that were refused.
              const hex = createHash('sha256').update(corrupt).digest('hex');
              assert.equal(await s.app.db('blobs').where({ sha256: hex }).first(), undefined);
              // An invalid digest string is refused up front.
              const p = await req(at('blobs/uploads/'), { method: 'POST' });
              const bad = await req(withQuery(loc(p), 'digest=sha256:xyz'), { method: 'PUT', body: new Uint8Array(b), headers: oct });
              assert.equal(bad.status, 400);
              assert.equal(await errorCode(bad), 'DIGEST_INVALID');
              const unknown = await req(at(`blobs/uploads/${randomUUID()}`), { method: 'PATCH', body: new Uint8Array(b), headers: oct });
              assert.equal(unknown.status, 404);
              assert.equal(await errorCode(unknown), 'BLOB_UPLOAD_UNKNOWN');
            });
          });
        }

        // ---- HEAD redesign: data sets ---------------------------------------------------------
        describe('data sets', () => {
          interface DataSet {
            name: string;
            blobs: Array<[Buffer, Algo]>;
            /** Children first; `tag` marks the one tagged at the end. */
            manifests: Array<{ body: Buffer; mediaType: string; algo?: Algo; tag?: string; subject?: string }>;
            /** Referrers expected per subject (digest → referrer manifest bodies). */
            referrers?: Array<{ subject: string; expect: Array<{ body: Buffer; mediaType: string; artifactType?: string; annotations?: Record<string, string> }> }>;
          }
          const json = (o: unknown) => Buffer.from(JSON.stringify(o));
          const image = (config: Buffer, layers: Array<[Buffer, string]>, extra: Record<string, unknown> = {}, algo: Algo = 'sha256') =>
            json({ schemaVersion: 2, mediaType: MT.manifest, config: desc(MT.config, config, algo), layers: layers.map(([l, mt]) => desc(mt, l, algo)), ...extra });
          const indexOf = (ms: Array<[Buffer, string]>, extra: Record<string, unknown> = {}) =>
            json({ schemaVersion: 2, mediaType: MT.index, manifests: ms.map(([m, mt]) => ({ ...desc(mt, m), platform: { architecture: 'amd64', os: 'linux' } })), ...extra });

          function sets(): DataSet[] {
            const out: DataSet[] = [];
            {
              const c = configBlob();
              const l = layerBlob();
              out.push({
                name: 'image',
                blobs: [
                  [c, 'sha256'],
                  [l, 'sha256'],
                ],
                manifests: [{ body: image(c, [[l, MT.layer]]), mediaType: MT.manifest, tag: 'image' }],
              });
            }
            {
              const c = configBlob();
              const l = randomBytes(1024);
              out.push({
                name: 'image-uncompressed',
                blobs: [
                  [c, 'sha256'],
                  [l, 'sha256'],
                ],
                manifests: [{ body: image(c, [[l, MT.layerTar]]), mediaType: MT.manifest, tag: 'uncompressed' }],
              });
            }
            {
              const c = configBlob();
              const l = layerBlob();
              const filler = 'x'.repeat(3_900_000);
              out.push({
                name: 'large-manifest (~3.9 MB)',
                blobs: [
                  [c, 'sha256'],
                  [l, 'sha256'],
                ],
                manifests: [{ body: image(c, [[l, MT.layer]], { annotations: { filler } }), mediaType: MT.manifest, tag: 'large' }],
              });
            }
            {
              const [c1, c2, l] = [configBlob(), configBlob(), layerBlob()];
              const a = image(c1, [[l, MT.layer]]);
              const b = image(c2, [[l, MT.layer]]);
              const idx = indexOf([
                [a, MT.manifest],
                [b, MT.manifest],
              ]);
              const nested = indexOf([[idx, MT.index]]);
              out.push({
                name: 'index and nested index',
                blobs: [
                  [c1, 'sha256'],
                  [c2, 'sha256'],
                  [l, 'sha256'],
                ],
                manifests: [
                  { body: a, mediaType: MT.manifest },
                  { body: b, mediaType: MT.manifest },
                  { body: idx, mediaType: MT.index, tag: 'index' },
                  { body: nested, mediaType: MT.index, tag: 'nested' },
                ],
              });
            }
            out.push({
              name: 'empty-index',
              blobs: [],
              manifests: [{ body: json({ schemaVersion: 2, mediaType: MT.index, manifests: [] }), mediaType: MT.index, tag: 'empty-index' }],
            });
            {
              const l = randomBytes(100);
              const subjectConfig = configBlob();
              const subjectLayer = layerBlob();
              const subj = image(subjectConfig, [[subjectLayer, MT.layer]]);
              const art = json({
                schemaVersion: 2,
                mediaType: MT.manifest,
                artifactType: 'application/vnd.example.sbom',
                config: desc(MT.empty, EMPTY_JSON),
                layers: [desc('application/json', l)],
                subject: desc(MT.manifest, subj),
                annotations: { 'org.example.a': '1' },
              });
              const noLayers = json({
                schemaVersion: 2,
                mediaType: MT.manifest,
                artifactType: 'application/vnd.example.sig',
                config: desc(MT.empty, EMPTY_JSON),
                layers: [desc(MT.empty, EMPTY_JSON)],
                subject: desc(MT.manifest, subj),
              });
              const artIndex = json({
                schemaVersion: 2,
                mediaType: MT.index,
                artifactType: 'application/vnd.example.bundle',
                manifests: [desc(MT.manifest, art)],
                subject: desc(MT.manifest, subj),
                annotations: { 'org.example.b': '2' },
              });
              const configTyped = json({
                schemaVersion: 2,
                mediaType: MT.manifest,
                config: desc('application/vnd.example.config', EMPTY_JSON),
                layers: [],
                subject: desc(MT.manifest, subj),
              });
              out.push({
                name: 'artifact, artifact-index, artifact-without-layers, artifacts-with-subject, index-with-subject',
                blobs: [
                  [subjectConfig, 'sha256'],
                  [subjectLayer, 'sha256'],
                  [EMPTY_JSON, 'sha256'],
                  [l, 'sha256'],
                ],
                manifests: [
                  { body: subj, mediaType: MT.manifest, tag: 'subject' },
                  { body: art, mediaType: MT.manifest, subject: digestOf(subj) },
                  { body: noLayers, mediaType: MT.manifest, subject: digestOf(subj) },
                  { body: artIndex, mediaType: MT.index, subject: digestOf(subj) },
                  { body: configTyped, mediaType: MT.manifest, subject: digestOf(subj) },
                ],
                referrers: [
                  {
                    subject: digestOf(subj),
                    expect: [
                      { body: art, mediaType: MT.manifest, artifactType: 'application/vnd.example.sbom', annotations: { 'org.example.a': '1' } },
                      { body: noLayers, mediaType: MT.manifest, artifactType: 'application/vnd.example.sig' },
                      { body: artIndex, mediaType: MT.index, artifactType: 'application/vnd.example.bundle', annotations: { 'org.example.b': '2' } },
                      { body: configTyped, mediaType: MT.manifest, artifactType: 'application/vnd.example.config' },
                    ],
                  },
                ],
              });
            }
            {
              const missing = digestOf(randomBytes(32));
              const art = json({
                schemaVersion: 2,
                mediaType: MT.manifest,
                artifactType: 'application/vnd.example.missing',
                config: desc(MT.empty, EMPTY_JSON),
                layers: [desc(MT.empty, EMPTY_JSON)],
                subject: { mediaType: MT.manifest, digest: missing, size: 1234 },
              });
              out.push({
                name: 'missing-subject',
                blobs: [[EMPTY_JSON, 'sha256']],
                manifests: [{ body: art, mediaType: MT.manifest, subject: missing }],
                referrers: [{ subject: missing, expect: [{ body: art, mediaType: MT.manifest, artifactType: 'application/vnd.example.missing' }] }],
              });
            }
            {
              const c = configBlob();
              out.push({
                name: 'data-field',
                blobs: [[c, 'sha256']],
                manifests: [
                  {
                    body: json({ schemaVersion: 2, mediaType: MT.manifest, config: { ...desc(MT.config, c), data: c.toString('base64') }, layers: [] }),
                    mediaType: MT.manifest,
                    tag: 'data',
                  },
                ],
              });
            }
            {
              const c = configBlob();
              const foreign = layerBlob();
              const l = layerBlob();
              out.push({
                name: 'non-distributable-layers (never pushed)',
                blobs: [
                  [c, 'sha256'],
                  [l, 'sha256'],
                ],
                manifests: [
                  {
                    body: json({
                      schemaVersion: 2,
                      mediaType: MT.manifest,
                      config: desc(MT.config, c),
                      layers: [desc(MT.nondist, foreign, 'sha256', { urls: ['https://example.invalid/layer'] }), desc(MT.layer, l)],
                    }),
                    mediaType: MT.manifest,
                    tag: 'nondist',
                  },
                ],
              });
            }
            {
              const c = configBlob();
              out.push({
                name: 'custom-fields',
                blobs: [[c, 'sha256']],
                manifests: [
                  {
                    body: json({
                      schemaVersion: 2,
                      mediaType: MT.manifest,
                      config: { ...desc(MT.config, c), newUnspecifiedField: null, 'com.example.custom': { a: [1, 2] } },
                      layers: [],
                      customField: 'x',
                      'com.example.top': true,
                    }),
                    mediaType: MT.manifest,
                    tag: 'custom',
                  },
                ],
              });
            }
            {
              const c = configBlob();
              out.push({
                name: 'no-layers',
                blobs: [[c, 'sha256']],
                manifests: [{ body: json({ schemaVersion: 2, mediaType: MT.manifest, config: desc(MT.config, c), layers: [] }), mediaType: MT.manifest, tag: 'nolayers' }],
              });
            }
            {
              const c = configBlob();
              const l = layerBlob();
              const m = image(c, [[l, MT.layer]], {}, 'sha512');
              const idx = json({ schemaVersion: 2, mediaType: MT.index, manifests: [desc(MT.manifest, m, 'sha512')] });
              out.push({
                name: 'sha512 (blobs and manifests pushed by sha512 digest)',
                blobs: [
                  [c, 'sha512'],
                  [l, 'sha512'],
                ],
                manifests: [
                  { body: m, mediaType: MT.manifest, algo: 'sha512' },
                  { body: idx, mediaType: MT.index, algo: 'sha512', tag: 'sha512' },
                ],
              });
            }
            return out;
          }

          for (const set of sets()) {
            it(set.name, async () => {
              const img = form.name('conf', `oci/set-${randomUUID().slice(0, 8)}`);
              const d = (p: string) => at(p, img);
              const blobDigests: string[] = [];
              for (const [b, algo] of set.blobs) blobDigests.push(await postPut(b, algo, img));
              // push: children first, by digest.
              const tags: string[] = [];
              for (const m of set.manifests) {
                const digest = digestOf(m.body, m.algo);
                const r = await putManifest(digest, m.body, m.mediaType, img);
                assert.equal(r.status, 201, `${set.name}: ${await r.text()}`);
                assert.equal(r.headers.get('Docker-Content-Digest'), digest);
                assert.equal(r.headers.get('OCI-Subject'), m.subject ?? null);
                const g = await req(loc(r));
                assert.equal(g.status, 200);
                assert.equal(g.headers.get('Content-Type'), m.mediaType);
                assert.equal(g.headers.get('Content-Length'), String(m.body.length));
                assert.ok(Buffer.from(await g.arrayBuffer()).equals(m.body));
              }
              for (const m of set.manifests) {
                if (!m.tag) continue;
                const r = await putManifest(m.tag, m.body, m.mediaType, img);
                assert.equal(r.status, 201);
                assert.equal(r.headers.get('Docker-Content-Digest'), digestOf(m.body, 'sha256'), 'a push by tag names the sha256 digest');
                tags.push(m.tag);
              }
              // tag-list
              const list = ((await (await req(d('tags/list'))).json()) as { tags: string[] }).tags;
              assert.deepEqual(list, [...tags].sort());
              // head and pull, by digest and tag
              for (const m of set.manifests) {
                for (const ref of [digestOf(m.body, m.algo), ...(m.tag ? [m.tag] : [])]) {
                  const h = await req(d(`manifests/${ref}`), { method: 'HEAD', headers: { Accept: `${MT.index}, ${MT.manifest}` } });
                  assert.equal(h.status, 200);
                  assert.equal(h.headers.get('Content-Type'), m.mediaType);
                  assert.equal(h.headers.get('Content-Length'), String(m.body.length));
                  assert.equal((await h.arrayBuffer()).byteLength, 0);
                  const g = await req(d(`manifests/${ref}`), { headers: { Accept: `${MT.index}, ${MT.manifest}` } });
                  assert.ok(Buffer.from(await g.arrayBuffer()).equals(m.body));
                }
              }
              for (const [b, algo] of set.blobs) {
                const h = await req(d(`blobs/${digestOf(b, algo)}`), { method: 'HEAD' });
                assert.equal(h.status, 200);
                assert.equal(h.headers.get('Content-Length'), String(b.length));
              }
              // referrers, and filtered per artifact type
              for (const ref of set.referrers ?? []) {
                const r = await req(d(`referrers/${ref.subject}`));
                assert.equal(r.headers.get('Content-Type'), MT.index);
                const got = ((await r.json()) as { manifests: Desc[] }).manifests;
                assert.equal(got.length, ref.expect.length);
                for (const e of ref.expect) {
                  const want: Desc = { mediaType: e.mediaType, digest: digestOf(e.body), size: e.body.length };
                  if (e.artifactType) want.artifactType = e.artifactType;
                  if (e.annotations) want.annotations = e.annotations;
                  assert.deepEqual(
                    got.find((x) => x.digest === want.digest),
                    want,
                  );
                  const f = await req(d(`referrers/${ref.subject}?artifactType=${encodeURIComponent(e.artifactType!)}`));
                  assert.match(f.headers.get('OCI-Filters-Applied') ?? '', /artifactType/);
                  const fl = ((await f.json()) as { manifests: Desc[] }).manifests;
                  assert.ok(fl.length > 0 && fl.every((x) => x.artifactType === e.artifactType));
                }
              }
              // delete: tags, then manifests in reverse order, then blobs; each HEAD 404 at once
              for (const t of tags) {
                assert.equal((await req(d(`manifests/${t}`), { method: 'DELETE' })).status, 202);
                assert.equal((await req(d(`manifests/${t}`), { method: 'HEAD' })).status, 404);
              }
              for (const m of [...set.manifests].reverse()) {
                const ref = digestOf(m.body, m.algo);
                const del = await req(d(`manifests/${ref}`), { method: 'DELETE' });
                assert.ok(del.status === 202 || del.status === 404, String(del.status));
                assert.equal((await req(d(`manifests/${ref}`), { method: 'HEAD' })).status, 404);
              }
              for (const ref of set.referrers ?? []) {
                assert.deepEqual(((await (await req(d(`referrers/${ref.subject}`))).json()) as { manifests: Desc[] }).manifests, []);
              }
              for (const bd of blobDigests) {
                const del = await req(d(`blobs/${bd}`), { method: 'DELETE' });
                assert.ok(del.status === 202 || del.status === 404);
                assert.equal((await req(d(`blobs/${bd}`), { method: 'HEAD' })).status, 404);
              }
            });
          }

          it('bad-digest-image: a PUT by digest whose body has 2 extra spaces → 400 DIGEST_INVALID, nothing stored', async () => {
            const img = form.name('conf', 'oci/bad-digest');
            const c = configBlob();
            await postPut(c, 'sha256', img);
            const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.manifest, config: desc(MT.config, c), layers: [] }));
            const padded = Buffer.concat([body, Buffer.from('  ')]);
            const r = await putManifest(digestOf(body), padded, MT.manifest, img);
            assert.equal(r.status, 400);
            assert.equal(await errorCode(r), 'DIGEST_INVALID');
            assert.equal((await req(at(`manifests/${digestOf(body)}`, img), { method: 'HEAD' })).status, 404);
            assert.equal((await req(at(`manifests/${digestOf(padded)}`, img), { method: 'HEAD' })).status, 404);
          });

          it('manifest errors: MANIFEST_BLOB_UNKNOWN, MANIFEST_UNKNOWN child, MANIFEST_INVALID, TAG_INVALID; nothing stored', async () => {
            const img = form.name('conf', 'oci/errs');
            const c = configBlob();
            const missingLayer = layerBlob();
            await postPut(c, 'sha256', img);
            const noBlob = imageManifest(c, [missingLayer]);
            const r1 = await putManifest('t1', noBlob, MT.manifest, img);
            assert.equal(r1.status, 400);
            assert.equal(await errorCode(r1), 'MANIFEST_BLOB_UNKNOWN');
            const idx = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.index, manifests: [desc(MT.manifest, noBlob)] }));
            const r2 = await putManifest('t2', idx, MT.index, img);
            assert.equal(r2.status, 400);
            assert.equal(await errorCode(r2), 'MANIFEST_UNKNOWN');
            const r3 = await putManifest('t3', Buffer.from('{not json'), MT.manifest, img);
            assert.equal(r3.status, 400);
            assert.equal(await errorCode(r3), 'MANIFEST_INVALID');
            const ok = imageManifest(c, []);
            const r4 = await putManifest('-bad-tag', ok, MT.manifest, img);
            assert.equal(r4.status, 400);
            assert.equal(await errorCode(r4), 'TAG_INVALID');
            const list = await req(at('tags/list', img));
            assert.equal(list.status, 404, 'no manifest and no tag stored');
            assert.equal(await errorCode(list), 'NAME_UNKNOWN');
            for (const b of [noBlob, idx, ok]) assert.equal((await req(at(`manifests/${digestOf(b)}`, img), { method: 'HEAD' })).status, 404);
            // Over 4 MiB: 413, MANIFEST_INVALID.
            const huge = Buffer.from(
              JSON.stringify({ schemaVersion: 2, mediaType: MT.manifest, config: desc(MT.config, c), layers: [], annotations: { x: 'y'.repeat(4 * 1024 * 1024) } }),
            );
            const r5 = await putManifest(digestOf(huge), huge, MT.manifest, img);
            assert.equal(r5.status, 413);
            assert.equal(await errorCode(r5), 'MANIFEST_INVALID');
            // An invalid image name: 400 NAME_INVALID.
            for (const p of ['tags/list', `manifests/latest`, `blobs/${digestOf(c)}`, `referrers/${digestOf(c)}`]) {
              const r = await req(at(p, form.name('conf', 'Bad__Name')));
              assert.equal(r.status, 400, p);
              assert.equal(await errorCode(r), 'NAME_INVALID');
            }
          });
        });

        // ---- HEAD redesign: empty and missing ---------------------------------------------
        it('empty: tag list of an unknown name → 404 NAME_UNKNOWN; referrers of a random digest → 200 empty index', async () => {
          const name = form.name('conf', `oci/empty-${randomUUID().slice(0, 8)}`);
          const t = await req(at('tags/list', name));
          assert.equal(t.status, 404);
          assert.equal(await errorCode(t), 'NAME_UNKNOWN');
          const r = await req(at(`referrers/${digestOf(randomBytes(8))}`, name));
          assert.equal(r.status, 200);
          assert.equal(r.headers.get('Content-Type'), MT.index);
          const body = (await r.json()) as { mediaType: string; schemaVersion: number };
          assert.equal(body.mediaType, MT.index);
          assert.equal(body.schemaVersion, 2);
        });

        it('missing-manifest (digest and tag → 404 MANIFEST_UNKNOWN) and invalid-digest-format (PUT → 400, GET → 400/404)', async () => {
          for (const ref of [digestOf(randomBytes(8)), `missing-${randomUUID().slice(0, 8)}`]) {
            const r = await req(at(`manifests/${ref}`));
            assert.equal(r.status, 404);
            assert.equal(await errorCode(r), 'MANIFEST_UNKNOWN');
          }
          const put = await putManifest(
            'sha256:baddigeststring',
            Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.manifest, config: desc(MT.config, EMPTY_JSON), layers: [] })),
            MT.manifest,
          );
          assert.equal(put.status, 400);
          assert.equal(await errorCode(put), 'DIGEST_INVALID');
          const get = await req(at('manifests/sha256:baddigeststring'));
          assert.ok(get.status === 400 || get.status === 404);
        });

        // ---- OCI 1.1 ?tag= -----------------------------------------------------------------
        it('PUT by digest ?tag=a&tag=b tags it with each (OCI-Tag headers); an invalid ?tag= → 400, nothing stored', async () => {
          const img = form.name('conf', `oci/tagparam-${randomUUID().slice(0, 8)}`);
          const c = configBlob();
          await postPut(c, 'sha256', img);
          const m = imageManifest(c, []);
          const bad = await req(at(`manifests/${digestOf(m)}?tag=ok&tag=-no`, img), { method: 'PUT', body: new Uint8Array(m), headers: { 'Content-Type': MT.manifest } });
          assert.equal(bad.status, 400);
          assert.equal(await errorCode(bad), 'TAG_INVALID');
          assert.equal((await req(at(`manifests/${digestOf(m)}`, img), { method: 'HEAD' })).status, 404);
          const r = await req(at(`manifests/${digestOf(m)}?tag=a&tag=b`, img), { method: 'PUT', body: new Uint8Array(m), headers: { 'Content-Type': MT.manifest } });
          assert.equal(r.status, 201, await r.text());
          assert.deepEqual((r.headers.get('OCI-Tag') ?? '').split(/,\s*/).sort(), ['a', 'b']);
          assert.deepEqual(((await (await req(at('tags/list', img))).json()) as { tags: string[] }).tags, ['a', 'b']);
          for (const t of ['a', 'b']) {
            const g = await req(at(`manifests/${t}`, img));
            assert.equal(g.headers.get('Docker-Content-Digest'), digestOf(m));
          }
        });
      });
    }

    it('?tag= follows the write policy: ALLOW_ONCE refuses to move an existing tag, and stores nothing', async () => {
      const root = '/repository/once/v2/app/';
      const c = configBlob();
      const put = (p: string, body: Buffer, method = 'PUT') => s.fetch(root + p, { method, body: new Uint8Array(body), headers: { 'Content-Type': MT.manifest } });
      const p = await s.fetch(`${root}blobs/uploads/?digest=${digestOf(c)}`, { method: 'POST', body: new Uint8Array(c) });
      assert.equal(p.status, 201);
      const m1 = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.manifest, config: desc(MT.config, c), layers: [], annotations: { n: '1' } }));
      const m2 = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.manifest, config: desc(MT.config, c), layers: [], annotations: { n: '2' } }));
      assert.equal((await put(`manifests/${digestOf(m1)}?tag=v1`, m1)).status, 201);
      // The same tag to the same digest again is fine.
      assert.equal((await put(`manifests/${digestOf(m1)}?tag=v1`, m1)).status, 201);
      const moved = await put(`manifests/${digestOf(m2)}?tag=v2&tag=v1`, m2);
      assert.equal(moved.status, 403);
      assert.equal(await errorCode(moved), 'DENIED');
      assert.equal((await s.fetch(`${root}manifests/${digestOf(m2)}`, { method: 'HEAD' })).status, 404);
      assert.deepEqual(((await (await s.fetch(`${root}tags/list`)).json()) as { tags: string[] }).tags, ['v1']);
    });

    it('referrers through a group (union, first member wins) and a proxy (forwarded upstream, revalidated)', async () => {
      const docker = { v1Enabled: false, forceBasicAuth: true };
      const storage = { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW' };
      await s.repo('docker', 'hosted', { name: 'ga', docker, storage });
      await s.repo('docker', 'hosted', { name: 'gb', docker, storage });
      await s.repo('docker', 'proxy', {
        name: 'rproxy',
        online: true,
        storage: { blobStoreName: 'default', strictContentTypeValidation: true },
        proxy: { remoteUrl: `${s.url}/repository/gb/`, contentMaxAge: 1440, metadataMaxAge: 0 },
        negativeCache: { enabled: false, timeToLive: 1440 },
        httpClient: { blocked: false, autoBlock: false, connection: { retries: 0 }, authentication: { type: 'username', username: 'admin', password: ADMIN_PASSWORD } },
        docker,
      });
      await s.repo('docker', 'group', { name: 'rgroup', docker, group: { memberNames: ['ga', 'gb', 'rproxy'], writableMember: 'ga' } });
      const subject = digestOf(randomBytes(16));
      const art = (n: string) =>
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: MT.manifest,
            artifactType: `application/vnd.test.${n}`,
            config: desc(MT.empty, EMPTY_JSON),
            layers: [desc(MT.empty, EMPTY_JSON)],
            subject: { mediaType: MT.manifest, digest: subject, size: 10 },
          }),
        );
      const push = async (repo: string, body: Buffer) => {
        const b = await s.fetch(`/repository/${repo}/v2/app/blobs/uploads/?digest=${EMPTY_JSON_DIGEST}`, { method: 'POST', body: new Uint8Array(EMPTY_JSON) });
        assert.equal(b.status, 201);
        const r = await s.fetch(`/repository/${repo}/v2/app/manifests/${digestOf(body)}`, { method: 'PUT', body: new Uint8Array(body), headers: { 'Content-Type': MT.manifest } });
        assert.equal(r.status, 201, await r.text());
        assert.equal(r.headers.get('OCI-Subject'), subject);
      };
      const [x, y, shared] = [art('x'), art('y'), art('shared')];
      await push('ga', x);
      await push('ga', shared);
      await push('gb', y);
      await push('gb', shared);
      const list = async (repo: string, q = '') => {
        const r = await s.fetch(`/repository/${repo}/v2/app/referrers/${subject}${q}`);
        assert.equal(r.status, 200);
        assert.equal(r.headers.get('Content-Type'), MT.index);
        return { filtered: r.headers.get('OCI-Filters-Applied'), manifests: ((await r.json()) as { manifests: Desc[] }).manifests };
      };
      // The proxy forwards to gb's referrers endpoint.
      assert.deepEqual((await list('rproxy')).manifests.map((m) => m.digest).sort(), [digestOf(y), digestOf(shared)].sort());
      const f = await list('rproxy', '?artifactType=application/vnd.test.y');
      assert.equal(f.filtered, 'artifactType');
      assert.deepEqual(
        f.manifests.map((m) => m.digest),
        [digestOf(y)],
      );
      // The group: the union, each digest once.
      const g = await list('rgroup');
      assert.deepEqual(g.manifests.map((m) => m.digest).sort(), [digestOf(x), digestOf(y), digestOf(shared)].sort());
      // Path-routed through the group too, filtered.
      const routed = await s.fetch(`/v2/rgroup/app/referrers/${subject}?artifactType=application/vnd.test.x`);
      assert.equal(routed.headers.get('OCI-Filters-Applied'), 'artifactType');
      assert.deepEqual(
        ((await routed.json()) as { manifests: Desc[] }).manifests.map((m) => m.digest),
        [digestOf(x)],
      );
      // A push through the group lands in its writable member and is listed at once.
      const z = art('z');
      await push('rgroup', z);
      assert.ok((await list('ga')).manifests.some((m) => m.digest === digestOf(z)));
      assert.equal((await list('rgroup')).manifests.length, 4);
      // Not cached for good: a referrer deleted upstream disappears from the proxy's list.
      assert.equal((await s.fetch(`/repository/gb/v2/app/manifests/${digestOf(y)}`, { method: 'DELETE' })).status, 202);
      assert.deepEqual(
        (await list('rproxy')).manifests.map((m) => m.digest),
        [digestOf(shared)],
      );
      // A proxy of an upstream without that image answers an empty list.
      assert.deepEqual((await list('rproxy', '')).manifests.length, 1);
      const unknown = await s.fetch(`/repository/rproxy/v2/nothing/here/referrers/${subject}`);
      assert.equal(unknown.status, 200);
      assert.deepEqual(((await unknown.json()) as { manifests: Desc[] }).manifests, []);
    });

    it('skopeo: the referrers index is byte-stable (inspect --raw), and a normal image still pulls', async () => {
      const work = mkdtempSync(path.join(tmpdir(), 'stowage-conf-'));
      try {
        const host = s.url.replace(/^http:\/\//, '');
        const creds = `admin:${ADMIN_PASSWORD}`;
        const layout = await buildImage(work, 'img', { 'hello.txt': 'conformance ' + randomBytes(8).toString('hex') });
        const push = await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:latest`, `docker://${host}/conf/skopeo/app:v1`);
        assert.ok(push.ok, push.stderr);
        const raw = await skopeo('inspect', '--raw', '--tls-verify=false', '--creds', creds, `docker://${host}/conf/skopeo/app:v1`);
        assert.ok(raw.ok, raw.stderr);
        const subject = digestOf(raw.stdout);
        // An artifact referring to the image (skopeo cannot push referrers: plain HTTP).
        const b = await s.fetch(`/v2/conf/skopeo/app/blobs/uploads/?digest=${EMPTY_JSON_DIGEST}`, { method: 'POST', body: new Uint8Array(EMPTY_JSON) });
        assert.equal(b.status, 201);
        const art = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: MT.manifest,
            artifactType: 'application/vnd.example.sig',
            config: desc(MT.empty, EMPTY_JSON),
            layers: [desc(MT.empty, EMPTY_JSON)],
            subject: { mediaType: MT.manifest, digest: subject, size: Buffer.byteLength(raw.stdout) },
            annotations: { 'org.example': 'sig' },
          }),
        );
        const put = await s.fetch(`/v2/conf/skopeo/app/manifests/${digestOf(art)}`, { method: 'PUT', body: new Uint8Array(art), headers: { 'Content-Type': MT.manifest } });
        assert.equal(put.status, 201);
        assert.equal(put.headers.get('OCI-Subject'), subject);
        // An index artifact with the same subject, tagged, so skopeo can read it back.
        const artIndex = Buffer.from(
          JSON.stringify(
            {
              schemaVersion: 2,
              mediaType: MT.index,
              artifactType: 'application/vnd.example.bundle',
              manifests: [desc(MT.manifest, art)],
              subject: { mediaType: MT.manifest, digest: subject, size: Buffer.byteLength(raw.stdout) },
            },
            null,
            3,
          ) + '\n',
        );
        const putIdx = await s.fetch(`/v2/conf/skopeo/app/manifests/bundle`, { method: 'PUT', body: new Uint8Array(artIndex), headers: { 'Content-Type': MT.index } });
        assert.equal(putIdx.status, 201);
        // skopeo reads both back byte for byte (by digest and by tag).
        for (const ref of [`@${digestOf(art)}`, `@${digestOf(artIndex)}`, ':bundle']) {
          const r = await skopeo('inspect', '--raw', '--tls-verify=false', '--creds', creds, `docker://${host}/conf/skopeo/app${ref}`);
          assert.ok(r.ok, r.stderr);
          assert.equal(r.stdout, (ref === `@${digestOf(art)}` ? art : artIndex).toString());
        }
        const direct = Buffer.from(await (await s.fetch(`/v2/conf/skopeo/app/referrers/${subject}`)).arrayBuffer());
        const again = Buffer.from(await (await s.fetch(`/v2/conf/skopeo/app/referrers/${subject}`)).arrayBuffer());
        assert.ok(direct.equals(again), 'the referrers index is byte-stable');
        const listed = JSON.parse(direct.toString()) as { schemaVersion: number; mediaType: string; manifests: Desc[] };
        assert.equal(listed.schemaVersion, 2);
        assert.equal(listed.mediaType, MT.index);
        assert.deepEqual(
          listed.manifests.sort((a, b) => (a.digest < b.digest ? -1 : 1)),
          [
            { mediaType: MT.manifest, digest: digestOf(art), size: art.length, artifactType: 'application/vnd.example.sig', annotations: { 'org.example': 'sig' } },
            { mediaType: MT.index, digest: digestOf(artIndex), size: artIndex.length, artifactType: 'application/vnd.example.bundle' },
          ].sort((a, b) => (a.digest < b.digest ? -1 : 1)),
        );
        // The image with a referrer still pulls, and its manifest bytes did not change.
        const out = path.join(work, 'out');
        const pull = await skopeo('copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/conf/skopeo/app:v1`, `oci:${out}:v1`);
        assert.ok(pull.ok, pull.stderr);
        const raw2 = await skopeo('inspect', '--raw', '--tls-verify=false', '--creds', creds, `docker://${host}/conf/skopeo/app:v1`);
        assert.equal(raw2.stdout, raw.stdout);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
  });
}
