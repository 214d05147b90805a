/**
 * Docker proxy and group repositories end to end: a real `docker-registry` (behind a counting
 * HTTP front) as the remote, images built with umoci and moved with skopeo through the
 * path-routed `/v2/<repo>/<image>` of the main port. Pull-through and digests, serving from the
 * cache with the remote down, tag revalidation, one upstream fetch per blob under concurrency, a
 * second Stowage requiring authentication as the remote, and a group over hosted + proxy (reads,
 * merged tags, pushes landing in the writable member without re-uploading known layers).
 * SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ADMIN_PASSWORD, DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { buildImage, skopeo } from '../helpers/oci.js';
import { startRegistry } from '../helpers/registry.js';
import { startForwarder } from '../helpers/front.js';

const creds = `admin:${ADMIN_PASSWORD}`;

async function must(...args: string[]): Promise<string> {
  const r = await skopeo(...args);
  assert.ok(r.ok, `skopeo ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function layoutLayers(dir: string): string[] {
  const index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const blob = (d: string) => readFileSync(path.join(dir, 'blobs', ...d.split(':')), 'utf8');
  const manifest = JSON.parse(blob(index.manifests[0].digest)) as { layers: Array<{ digest: string }> };
  return manifest.layers.map((l) => l.digest);
}

/** A forwarding HTTP front that counts requests and can play dead. */
interface Front {
  url: string;
  requests: string[];
  down: boolean;
  close(): Promise<void>;
}

/**
 * With `token`, the front is a registry with token auth: requests without `Bearer <token>` get a
 * 401 challenge naming its `/token` realm, which hands out the token for the given Basic credentials.
 */
async function startFront(target: string, token?: { basic: string; token: string }, cdn?: string): Promise<Front> {
  const front: Front = { url: '', requests: [], down: false, close: async () => undefined };
  const fwd = await startForwarder(target, (req, res) => {
    if (front.down) {
      req.socket.destroy();
      return true;
    }
    front.requests.push(`${req.method} ${req.url}${req.headers.authorization ? ` [${req.headers.authorization.split(' ')[0]}]` : ''}`);
    if (token && req.url!.startsWith('/token')) {
      const ok = req.headers.authorization === token.basic;
      res.writeHead(ok ? 200 : 401, { 'Content-Type': 'application/json' });
      res.end(ok ? JSON.stringify({ token: token.token, expires_in: 300 }) : '{}');
      return true;
    }
    if (token && req.url!.startsWith('/v2/') && req.headers.authorization !== `Bearer ${token.token}`) {
      const name = /^\/v2\/(.+)\/(?:manifests|blobs|tags)\//.exec(req.url!)?.[1] ?? '';
      res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="${front.url}/token",service="front",scope="repository:${name}:pull"`, 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}');
      return true;
    }
    // Docker Hub's way: an authorized blob GET is redirected to a CDN on another host.
    if (cdn && req.method === 'GET' && /^\/v2\/.+\/blobs\/sha256:/.test(req.url!)) {
      res.writeHead(307, { Location: `${cdn}${req.url}?signature=abc` });
      res.end();
      return true;
    }
    return false;
  });
  front.url = fwd.url;
  front.close = fwd.close;
  return front;
}

let work: string;
const layouts: Record<string, string> = {};

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'stowage-docker-proxy-'));
  // Each image has one fresh random layer.
  for (const n of ['a', 'b', 'c', 'd', 'e']) {
    layouts[n] = await buildImage(work, n, { 'hello.txt': `image ${n} ${randomBytes(8).toString('hex')}`, 'random.bin': randomBytes(200_000) });
  }
});

after(() => rmSync(work, { recursive: true, force: true }));

for (const db of DATABASES) {
  describe(`docker proxy and group (${db})`, { timeout: 300_000 }, () => {
    let registry: Awaited<ReturnType<typeof startRegistry>>;
    let front: Front;
    let s: TestServer;
    let host: string;
    const noBasic = { v1Enabled: false, forceBasicAuth: false };
    const upstreamDigest = async (ref: string) => JSON.parse(await must('inspect', '--tls-verify=false', `docker://${registry.host}/${ref}`)).Digest as string;
    const pushUpstream = (layout: string, ref: string) => must('copy', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://${registry.host}/${ref}`);
    const inspect = async (ref: string) =>
      JSON.parse(await must('inspect', '--tls-verify=false', '--creds', creds, `docker://${host}/${ref}`)) as { Digest: string; Layers: string[] };
    const settled = async () => {
      for (let i = 0; i < 200 && s.app.proxy.flights.size > 0; i++) await new Promise((r) => setTimeout(r, 25));
    };

    before(async () => {
      const dir = mkdtempSync(path.join(work, `registry-${db}-`));
      registry = await startRegistry(dir);
      front = await startFront(registry.url);
      s = await startServer({ db });
      host = s.url.replace(/^http:\/\//, '');
      const proxy = (name: string, metadataMaxAge: number) =>
        s.repo('docker', 'proxy', {
          name,
          online: true,
          storage: { blobStoreName: 'default', strictContentTypeValidation: true },
          proxy: { remoteUrl: front.url, contentMaxAge: 1440, metadataMaxAge },
          negativeCache: { enabled: true, timeToLive: 1440 },
          httpClient: { blocked: false, autoBlock: false, connection: { retries: 0 } },
          docker: noBasic,
          dockerProxy: { indexType: 'REGISTRY' },
        });
      await proxy('dproxy', 1440);
      await proxy('dproxy0', 0);
      await s.repo('docker', 'hosted', { name: 'dhosted', docker: noBasic });
      await s.repo('docker', 'group', { name: 'dgroup', docker: noBasic, group: { memberNames: ['dhosted', 'dproxy'], writableMember: 'dhosted' } });
    });
    after(async () => {
      await s?.stop();
      await front?.close();
      await registry?.stop();
    });

    it('pulls through the proxy, then serves from the cache with the remote down', async () => {
      await pushUpstream(layouts.a, 'app/hello:v1');
      const want = await upstreamDigest('app/hello:v1');
      const info = await inspect('dproxy/app/hello:v1');
      assert.equal(info.Digest, want);
      assert.deepEqual(info.Layers, layoutLayers(layouts.a));
      const out = path.join(work, `pull-a-${db}`);
      await must('copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/dproxy/app/hello:v1`, `oci:${out}:v1`);
      assert.deepEqual(layoutLayers(out), layoutLayers(layouts.a));
      await settled();
      // The manifest asked with every manifest media type.
      const tags = await s.fetch('/repository/dproxy/v2/app/hello/tags/list');
      assert.equal(tags.status, 200);
      assert.deepEqual((await tags.json()).tags, ['v1']);

      front.down = true;
      try {
        const out2 = path.join(work, `pull-a2-${db}`);
        await must('copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/dproxy/app/hello:v1`, `oci:${out2}:v1`);
        assert.deepEqual(layoutLayers(out2), layoutLayers(layouts.a));
        const byDigest = await s.fetch(`/repository/dproxy/v2/app/hello/manifests/${want}`);
        assert.equal(byDigest.status, 200, 'by digest from the cache (recorded with the tag)');
        assert.equal(byDigest.headers.get('docker-content-digest'), want);
      } finally {
        front.down = false;
      }
    });

    it('revalidates tags: a re-pushed tag upstream is seen with metadataMaxAge 0', async () => {
      await pushUpstream(layouts.a, 'app/moving:latest');
      const first = await upstreamDigest('app/moving:latest');
      assert.equal((await inspect('dproxy0/app/moving:latest')).Digest, first);
      await pushUpstream(layouts.b, 'app/moving:latest');
      const second = await upstreamDigest('app/moving:latest');
      assert.notEqual(first, second);
      const info = await inspect('dproxy0/app/moving:latest');
      assert.equal(info.Digest, second);
      assert.deepEqual(info.Layers, layoutLayers(layouts.b));
    });

    it('fetches each blob upstream once for concurrent pulls of an uncached image', async () => {
      await pushUpstream(layouts.c, 'app/conc:v1');
      front.requests.length = 0;
      const outs = [0, 1, 2, 3].map((i) => path.join(work, `conc-${db}-${i}`));
      await Promise.all(outs.map((o) => must('copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/dproxy/app/conc:v1`, `oci:${o}:v1`)));
      for (const o of outs) assert.deepEqual(layoutLayers(o), layoutLayers(layouts.c));
      const blobGets = front.requests.filter((r) => /^GET \/v2\/app\/conc\/blobs\//.test(r));
      assert.ok(blobGets.length >= 2, front.requests.join('\n'));
      assert.equal(new Set(blobGets).size, blobGets.length, `each blob fetched once:\n${blobGets.join('\n')}`);
    });

    it('follows the registry token flow upstream (Basic to the realm, token cached)', async () => {
      await pushUpstream(layouts.d, 'app/tokened:v1');
      const basic = 'Basic ' + Buffer.from('puller:pull-pw').toString('base64');
      const tf = await startFront(registry.url, { basic, token: `tok-${db}` });
      try {
        await s.repo('docker', 'proxy', {
          name: 'tokproxy',
          online: true,
          storage: { blobStoreName: 'default', strictContentTypeValidation: true },
          proxy: { remoteUrl: tf.url, contentMaxAge: 1440, metadataMaxAge: 1440 },
          negativeCache: { enabled: true, timeToLive: 1440 },
          httpClient: { blocked: false, autoBlock: false, connection: { retries: 0 }, authentication: { type: 'username', username: 'puller', password: 'pull-pw' } },
          docker: noBasic,
        });
        const out = path.join(work, `tok-${db}`);
        await must('copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/tokproxy/app/tokened:v1`, `oci:${out}:v1`);
        assert.deepEqual(layoutLayers(out), layoutLayers(layouts.d));
        const tokenRequests = tf.requests.filter((r) => r.startsWith('GET /token'));
        assert.equal(tokenRequests.length, 1, `one token fetch, then cached:\n${tf.requests.join('\n')}`);
        assert.match(tokenRequests[0], /scope=repository%3Aapp%2Ftokened%3Apull.*\[Basic\]$/);
        assert.ok(
          tf.requests.some((r) => /^GET \/v2\/app\/tokened\/blobs\/.*\[Bearer\]$/.test(r)),
          tf.requests.join('\n'),
        );
      } finally {
        await tf.close();
      }
    });

    it('follows blob redirects to another host without sending the upstream token there', async () => {
      await pushUpstream(layouts.b, 'app/cdn:v1');
      const basic = 'Basic ' + Buffer.from('puller:pull-pw').toString('base64');
      // The CDN: another origin, serving blobs from the registry, recording what it was sent.
      const cdn = await startFront(registry.url);
      const hub = await startFront(registry.url, { basic, token: `cdn-tok-${db}` }, cdn.url);
      try {
        await s.repo('docker', 'proxy', {
          name: 'cdnproxy',
          online: true,
          storage: { blobStoreName: 'default', strictContentTypeValidation: true },
          proxy: { remoteUrl: hub.url, contentMaxAge: 1440, metadataMaxAge: 1440 },
          negativeCache: { enabled: true, timeToLive: 1440 },
          httpClient: { blocked: false, autoBlock: false, connection: { retries: 0 }, authentication: { type: 'username', username: 'puller', password: 'pull-pw' } },
          docker: noBasic,
        });
        const out = path.join(work, `cdn-${db}`);
        await must('copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/cdnproxy/app/cdn:v1`, `oci:${out}:v1`);
        assert.deepEqual(layoutLayers(out), layoutLayers(layouts.b));
        const cdnBlobs = cdn.requests.filter((r) => /^GET \/v2\/app\/cdn\/blobs\//.test(r));
        assert.ok(cdnBlobs.length >= 2, `blobs came from the CDN:\n${cdn.requests.join('\n')}`);
        for (const r of cdnBlobs) assert.doesNotMatch(r, /\[(Bearer|Basic)\]$/, `the CDN saw credentials: ${r}`);
        assert.ok(
          hub.requests.some((r) => /^GET \/v2\/app\/cdn\/blobs\/.*\[Bearer\]$/.test(r)),
          hub.requests.join('\n'),
        );
        await settled();
      } finally {
        await hub.close();
        await cdn.close();
      }
    });

    it('proxies a second Stowage that requires authentication', async () => {
      const up = await startServer({ db: 'sqlite' });
      try {
        await up.repo('docker', 'hosted', { name: 'secure', docker: { v1Enabled: false, forceBasicAuth: true } });
        const upHost = up.url.replace(/^http:\/\//, '');
        await must('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layouts.d}:latest`, `docker://${upHost}/secure/app/private:v1`);
        const want = JSON.parse(await must('inspect', '--tls-verify=false', '--creds', creds, `docker://${upHost}/secure/app/private:v1`)).Digest as string;
        await s.repo('docker', 'proxy', {
          name: 'authproxy',
          online: true,
          storage: { blobStoreName: 'default', strictContentTypeValidation: true },
          proxy: { remoteUrl: `${up.url}/repository/secure/`, contentMaxAge: 1440, metadataMaxAge: 1440 },
          negativeCache: { enabled: false, timeToLive: 1440 },
          httpClient: { blocked: false, autoBlock: false, connection: { retries: 0 }, authentication: { type: 'username', username: 'admin', password: ADMIN_PASSWORD } },
          docker: noBasic,
        });
        const info = await inspect('authproxy/app/private:v1');
        assert.equal(info.Digest, want);
        const out = path.join(work, `auth-${db}`);
        await must('copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/authproxy/app/private:v1`, `oci:${out}:v1`);
        assert.deepEqual(layoutLayers(out), layoutLayers(layouts.d));
        await settled();
      } finally {
        await up.stop();
      }
    });

    it('groups hosted + proxy: reads from both, merged tags, pushes land in the writable member', async () => {
      // hosted has app/hello:h1 (image e), the proxy has app/hello:v1 (image a).
      await must('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layouts.e}:latest`, `docker://${host}/dhosted/app/hello:h1`);
      const viaHosted = await inspect('dgroup/app/hello:h1');
      assert.deepEqual(viaHosted.Layers, layoutLayers(layouts.e));
      const viaProxy = await inspect('dgroup/app/hello:v1');
      assert.equal(viaProxy.Digest, await upstreamDigest('app/hello:v1'));
      const out = path.join(work, `group-${db}`);
      await must('copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/dgroup/app/hello:v1`, `oci:${out}:v1`);
      assert.deepEqual(layoutLayers(out), layoutLayers(layouts.a));
      const tags = JSON.parse(await must('list-tags', '--tls-verify=false', '--creds', creds, `docker://${host}/dgroup/app/hello`)).Tags;
      assert.deepEqual(tags, ['h1', 'v1']);
      const catalog = await s.fetch('/repository/dgroup/v2/_catalog');
      assert.equal(catalog.status, 200);
      const names = (await catalog.json()).repositories as string[];
      assert.ok(names.includes('app/hello') && names.includes('app/conc'), names.join(','));

      // Image c is cached in the proxy member only: pushing it to the group uploads no layer.
      const seen: string[] = [];
      const record = (req: { method?: string; url?: string }) => seen.push(`${req.method} ${req.url}`);
      s.listener.server.on('request', record);
      try {
        await must('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layouts.c}:latest`, `docker://${host}/dgroup/app/pushed:g1`);
      } finally {
        s.listener.server.off('request', record);
      }
      const uploads = seen.filter((r) => /blobs\/uploads/.test(r));
      assert.deepEqual(uploads, [], `no upload for layers a member has:\n${seen.join('\n')}`);
      const landed = await s.fetch('/repository/dhosted/v2/app/pushed/manifests/g1');
      assert.equal(landed.status, 200, 'the push landed in the writable member');
      const pulled = path.join(work, `pushed-${db}`);
      await must('copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/dhosted/app/pushed:g1`, `oci:${pulled}:g1`);
      assert.deepEqual(layoutLayers(pulled), layoutLayers(layouts.c));
      // A fresh image through the group: uploaded into hosted.
      await must('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layouts.b}:latest`, `docker://${host}/dgroup/app/fresh:g1`);
      assert.equal((await s.fetch('/repository/dhosted/v2/app/fresh/manifests/g1')).status, 200);
    });
  });
}
