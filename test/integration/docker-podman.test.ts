/**
 * Docker end to end with podman (and skopeo for tags, deletes and per-platform pulls), on a
 * repository's dedicated port and on the shared docker port (`STOWAGE_FORMAT_PORTS`,
 * `host:port/<repo>/<image>`): login, push, pull, tags and delete against hosted, proxy (a real
 * `docker-registry` upstream) and group; the anonymous switch; a multi-arch index pulled per
 * platform through hosted, group and proxy; a proxy of a second Stowage reachable only with
 * bearer tokens; the shared-port settings refused when they conflict. SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ADMIN_PASSWORD, DATABASES, spawnServer, startServer, type TestServer } from '../helpers/stowage.js';
import { buildImage, skopeo } from '../helpers/oci.js';
import { freePort } from '../helpers/net.js';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { startForwarder } from '../helpers/front.js';

const run = promisify(execFile);
const creds = `admin:${ADMIN_PASSWORD}`;

interface Result {
  ok: boolean;
  out: string;
  err: string;
}

/** A podman with its own storage, run root and auth file: instances never see each other's state. */
class Podman {
  /** Run roots live outside the work dir: podman wants their path under 50 characters. */
  static readonly runRoots: string[] = [];
  readonly root: string;
  readonly runRoot: string;
  readonly auth: string;
  constructor(dir: string) {
    this.root = mkdtempSync(path.join(dir, 'podman-'));
    this.runRoot = mkdtempSync(path.join(tmpdir(), 'prun-'));
    Podman.runRoots.push(this.runRoot);
    this.auth = path.join(this.root, 'auth.json');
    writeFileSync(this.auth, '{"auths":{}}');
  }
  async run(...args: string[]): Promise<Result> {
    const argv = ['--root', path.join(this.root, 'storage'), '--runroot', this.runRoot, '--storage-driver', 'vfs', '--events-backend', 'file', ...args];
    try {
      const r = await run('podman', argv, { env: { ...process.env, REGISTRY_AUTH_FILE: this.auth, TMPDIR: this.root }, maxBuffer: 16 << 20 });
      return { ok: true, out: r.stdout.trim(), err: r.stderr };
    } catch (e) {
      const x = e as { stdout?: string; stderr?: string; message?: string };
      return { ok: false, out: (x.stdout ?? '').trim(), err: x.stderr ?? x.message ?? '' };
    }
  }
  async must(...args: string[]): Promise<string> {
    const r = await this.run(...args);
    assert.ok(r.ok, `podman ${args.join(' ')}: ${r.err}`);
    return r.out;
  }
  /** Loads an OCI layout into this podman's storage as `localhost/<name>:latest`; returns its image ID. */
  async load(layout: string, name: string): Promise<string> {
    await must('copy', `oci:${layout}:latest`, `containers-storage:[vfs@${path.join(this.root, 'storage')}+${this.runRoot}]localhost/${name}:latest`);
    return this.must('image', 'inspect', '--format', '{{.Id}}', `localhost/${name}:latest`);
  }
  login(host: string, user = 'admin', password = ADMIN_PASSWORD): Promise<Result> {
    return this.run('login', '--tls-verify=false', host, '-u', user, '-p', password);
  }
  /** Pushes a local image; returns the manifest digest podman reports. */
  async push(image: string, ref: string): Promise<string> {
    const file = path.join(this.root, `digest-${randomBytes(4).toString('hex')}`);
    await this.must('push', '--tls-verify=false', '--digestfile', file, image, `docker://${ref}`);
    return readFileSync(file, 'utf8').trim();
  }
  /** Pulls `ref`: the image ID and the manifest digest it came with. */
  async pull(ref: string): Promise<{ id: string; digest: string }> {
    const id = await this.must('pull', '-q', '--tls-verify=false', ref);
    const digest = await this.must('image', 'inspect', '--format', '{{.Digest}}', ref);
    return { id: id.split('\n').pop()!, digest };
  }
}

async function must(...args: string[]): Promise<string> {
  const r = await skopeo(...args);
  assert.ok(r.ok, `skopeo ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const tagsOf = async (ref: string, auth: string[] = ['--creds', creds]) => JSON.parse(await must('list-tags', '--tls-verify=false', ...auth, `docker://${ref}`)).Tags as string[];

/** The digest of the one manifest in an OCI layout (what skopeo copied there). */
function layoutDigest(dir: string): string {
  return (JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }).manifests[0].digest;
}

/** A single-arch image for `arch`: one random layer, the config's architecture set. */
async function archImage(dir: string, arch: string): Promise<string> {
  const layout = await buildImage(dir, `multi-${arch}`, { 'arch.txt': `${arch} ${randomBytes(8).toString('hex')}` });
  await run('umoci', ['config', '--image', `${layout}:latest`, '--architecture', arch, '--os', 'linux']);
  return layout;
}

/**
 * A front for a Stowage that accepts only bearer tokens on registry paths: Basic credentials are
 * stripped from every `/v2/<repo>/…` request (the token endpoint still sees them), so a client gets
 * in only through the token flow. Records what it forwarded, with the Authorization scheme.
 */
async function bearerOnly(target: string): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const fwd = await startForwarder(target, (req) => {
    const scheme = req.headers.authorization?.split(' ')[0] ?? '-';
    const token = /^\/v2\/token(\?|$)/.test(req.url!);
    if (!token && scheme === 'Basic') delete req.headers.authorization;
    requests.push(`${req.method} ${req.url} [${token || scheme !== 'Basic' ? scheme : 'stripped'}]`);
    return false;
  });
  return { ...fwd, requests };
}

let work: string;
const layouts: Record<string, string> = {};

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'stowage-podman-'));
  for (const n of ['a', 'b', 'c', 'up'])
    layouts[n] = await buildImage(work, n, { 'hello.txt': `image ${n} ${randomBytes(8).toString('hex')}`, 'random.bin': randomBytes(100_000) });
  layouts.amd64 = await archImage(work, 'amd64');
  layouts.arm64 = await archImage(work, 'arm64');
});

after(() => {
  rmSync(work, { recursive: true, force: true });
  for (const d of Podman.runRoots) rmSync(d, { recursive: true, force: true });
});

for (const db of DATABASES) {
  describe(`docker with podman, dedicated and shared ports (${db})`, { timeout: 600_000 }, () => {
    let registry: Registry;
    let s: TestServer;
    let shared: string; // 127.0.0.1:<shared port>
    const port: Record<string, string> = {}; // repository → 127.0.0.1:<dedicated port>
    let pusher: Podman;
    const imageIds: Record<string, string> = {};
    const api = (method: string, p: string, body?: unknown) =>
      s.fetch(`/service/rest/v1${p}`, { method, headers: { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const noBasic = { v1Enabled: false, forceBasicAuth: false };

    before(async () => {
      const dir = mkdtempSync(path.join(work, `case-${db}-`));
      registry = await startRegistry(path.join(dir, 'registry'));
      const sharedPort = await freePort();
      s = await startServer({ db, env: { STOWAGE_FORMAT_PORTS: `docker:${sharedPort}` } });
      shared = `127.0.0.1:${sharedPort}`;
      for (const name of ['ph', 'pp', 'pg']) port[name] = `127.0.0.1:${await freePort()}`;
      const httpPort = (name: string) => Number(port[name].split(':')[1]);
      await s.repo('docker', 'hosted', { name: 'ph', docker: { ...noBasic, httpPort: httpPort('ph') } });
      await s.repo('docker', 'proxy', {
        name: 'pp',
        online: true,
        storage: { blobStoreName: 'default', strictContentTypeValidation: true },
        proxy: { remoteUrl: registry.url, contentMaxAge: 1440, metadataMaxAge: 0 },
        negativeCache: { enabled: false, timeToLive: 1440 },
        httpClient: { blocked: false, autoBlock: false, connection: { retries: 0 } },
        docker: { ...noBasic, httpPort: httpPort('pp') },
        dockerProxy: { indexType: 'REGISTRY' },
      });
      await s.repo('docker', 'group', { name: 'pg', docker: { ...noBasic, httpPort: httpPort('pg') }, group: { memberNames: ['ph', 'pp'], writableMember: 'ph' } });
      assert.equal(s.app.listeners.sharedListeners().get('docker'), sharedPort);
      pusher = new Podman(dir);
      for (const n of ['a', 'b', 'c', 'up']) imageIds[n] = await pusher.load(layouts[n], `img-${n}`);
      await must('copy', '--dest-tls-verify=false', `oci:${layouts.up}:latest`, `docker://${registry.host}/app/up:v1`);
    });
    after(async () => {
      await s?.stop();
      await registry?.stop();
    });

    it('podman logs in on a dedicated port and on the shared port; a wrong password is refused', async () => {
      for (const host of [port.ph, port.pp, port.pg, shared]) {
        const ok = await pusher.login(host);
        assert.ok(ok.ok, `login ${host}: ${ok.err}`);
        const bad = await new Podman(work).login(host, 'admin', 'wrong');
        assert.ok(!bad.ok, `wrong password accepted on ${host}`);
        assert.match(bad.err, /unauthorized|authentication required|invalid username\/password/i);
      }
      const auth = JSON.parse(readFileSync(pusher.auth, 'utf8')) as { auths: Record<string, unknown> };
      assert.ok(auth.auths[shared] && auth.auths[port.ph], Object.keys(auth.auths).join(','));
      // The shared port challenges with its own realm, as a client must reach it there.
      const ping = await fetch(`http://${shared}/v2/`);
      assert.equal(ping.status, 401);
      assert.equal(ping.headers.get('www-authenticate'), `Bearer realm="http://${shared}/v2/token",service="${shared}"`);
      assert.equal(ping.headers.get('docker-distribution-api-version'), 'registry/2.0');
    });

    it('podman pushes to hosted and pulls back on both ports; skopeo lists tags', async () => {
      const d1 = await pusher.push(imageIds.a, `${port.ph}/app/hello:v1`);
      const d2 = await pusher.push(imageIds.b, `${shared}/ph/app/hello:v2`);
      for (const [ref, id, digest] of [
        [`${port.ph}/app/hello:v2`, imageIds.b, d2],
        [`${shared}/ph/app/hello:v1`, imageIds.a, d1],
        [`${shared}/ph/app/hello:v2`, imageIds.b, d2],
      ]) {
        const puller = new Podman(work);
        assert.ok((await puller.login(ref.split('/')[0])).ok);
        const got = await puller.pull(ref);
        assert.equal(got.id, id, ref);
        assert.equal(got.digest, digest, ref);
      }
      assert.deepEqual(await tagsOf(`${port.ph}/app/hello`), ['v1', 'v2']);
      assert.deepEqual(await tagsOf(`${shared}/ph/app/hello`), ['v1', 'v2']);
      // The path-routed main port sees the same repository.
      assert.deepEqual(await tagsOf(`${s.url.slice(7)}/ph/app/hello`), ['v1', 'v2']);
      // A repository that does not exist on the shared port.
      const r = await new Podman(work).run('pull', '--tls-verify=false', `${shared}/nothere/app/hello:v1`);
      assert.ok(!r.ok);
    });

    it('podman pulls through the proxy (docker-registry upstream) on both ports', async () => {
      const want = JSON.parse(await must('inspect', '--tls-verify=false', `docker://${registry.host}/app/up:v1`)).Digest as string;
      for (const ref of [`${port.pp}/app/up:v1`, `${shared}/pp/app/up:v1`]) {
        const puller = new Podman(work);
        assert.ok((await puller.login(ref.split('/')[0])).ok);
        const got = await puller.pull(ref);
        assert.equal(got.id, imageIds.up, ref);
        assert.equal(got.digest, want, ref);
      }
      assert.deepEqual(await tagsOf(`${port.pp}/app/up`), ['v1']);
      assert.deepEqual(await tagsOf(`${shared}/pp/app/up`), ['v1']);
      // Pushing to a proxy is refused, on both ports.
      for (const ref of [`${port.pp}/app/mine:v1`, `${shared}/pp/app/mine:v1`]) {
        const r = await pusher.run('push', '--tls-verify=false', imageIds.c, `docker://${ref}`);
        assert.ok(!r.ok, `push to proxy accepted: ${ref}`);
      }
    });

    it('podman pulls and pushes through the group on both ports', async () => {
      for (const [ref, id] of [
        [`${port.pg}/app/hello:v1`, imageIds.a],
        [`${shared}/pg/app/up:v1`, imageIds.up],
        [`${port.pg}/app/up:v1`, imageIds.up],
        [`${shared}/pg/app/hello:v2`, imageIds.b],
      ]) {
        const puller = new Podman(work);
        assert.ok((await puller.login(ref.split('/')[0])).ok);
        assert.equal((await puller.pull(ref)).id, id, ref);
      }
      const d1 = await pusher.push(imageIds.c, `${port.pg}/app/grp:g1`);
      const d2 = await pusher.push(imageIds.c, `${shared}/pg/app/grp:g2`);
      assert.equal(d1, d2);
      // Both landed in the writable member.
      assert.deepEqual(await tagsOf(`${port.ph}/app/grp`), ['g1', 'g2']);
      assert.deepEqual(await tagsOf(`${shared}/pg/app/grp`), ['g1', 'g2']);
      assert.deepEqual(await tagsOf(`${shared}/pg/app/hello`), ['v1', 'v2']);
    });

    it('skopeo deletes on both ports; the proxy refuses deletes', async () => {
      await pusher.push(imageIds.a, `${port.ph}/app/del:d1`);
      await pusher.push(imageIds.b, `${port.ph}/app/del:d2`);
      await must('delete', '--tls-verify=false', '--creds', creds, `docker://${port.ph}/app/del:d1`);
      assert.deepEqual(await tagsOf(`${shared}/ph/app/del`), ['d2']);
      await must('delete', '--tls-verify=false', '--creds', creds, `docker://${shared}/ph/app/del:d2`);
      // No manifest left: the image name is gone (NAME_UNKNOWN), as in distribution.
      const none = await skopeo('list-tags', '--tls-verify=false', '--creds', creds, `docker://${port.ph}/app/del`);
      assert.ok(!none.ok && /404/.test(none.stderr), none.stderr + none.stdout);
      const gone = await skopeo('inspect', '--tls-verify=false', '--creds', creds, `docker://${shared}/ph/app/del:d2`);
      assert.ok(!gone.ok && /manifest unknown/i.test(gone.stderr), gone.stderr);
      for (const ref of [`${port.pp}/app/up:v1`, `${shared}/pp/app/up:v1`]) {
        const r = await skopeo('delete', '--tls-verify=false', '--creds', creds, `docker://${ref}`);
        assert.ok(!r.ok, `delete through the proxy accepted: ${ref}`);
      }
      assert.deepEqual(await tagsOf(`${shared}/pp/app/up`), ['v1'], 'nothing changed');
    });

    it('anonymous pull follows the anonymous switch; anonymous push is refused', async () => {
      for (const ref of [`${port.ph}/app/hello:v1`, `${shared}/ph/app/hello:v1`]) {
        const anon = new Podman(work);
        assert.equal((await anon.pull(ref)).id, imageIds.a, `anonymous pull ${ref}`);
        const push = await anon.run('push', '--tls-verify=false', imageIds.a, `docker://${ref.replace(':v1', ':anon')}`);
        assert.ok(!push.ok, `anonymous push accepted: ${ref}`);
      }
      assert.equal((await api('PUT', '/security/anonymous', { enabled: false, userId: 'anonymous', realmName: 'NexusAuthorizingRealm' })).status, 200);
      try {
        for (const ref of [`${port.ph}/app/hello:v1`, `${shared}/ph/app/hello:v1`, `${shared}/pg/app/hello:v1`]) {
          const anon = new Podman(work);
          const r = await anon.run('pull', '--tls-verify=false', ref);
          assert.ok(!r.ok, `anonymous pull allowed with anonymous access off: ${ref}`);
          assert.match(r.err, /unauthorized|authentication required/i);
        }
        // Logged in, still fine.
        const user = new Podman(work);
        assert.ok((await user.login(shared)).ok);
        assert.equal((await user.pull(`${shared}/ph/app/hello:v1`)).id, imageIds.a);
      } finally {
        await api('PUT', '/security/anonymous', { enabled: true, userId: 'anonymous', realmName: 'NexusAuthorizingRealm' });
      }
      assert.deepEqual(await tagsOf(`${shared}/ph/app/hello`), ['v1', 'v2'], 'no anonymous tag was pushed');
    });

    it('multi-arch: podman pushes an index; skopeo pulls each platform through hosted, group and proxy', async () => {
      const child: Record<string, string> = {};
      for (const arch of ['amd64', 'arm64']) {
        await must('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layouts[arch]}:latest`, `docker://${port.ph}/app/multi:${arch}`);
        await must('copy', '--dest-tls-verify=false', `oci:${layouts[arch]}:latest`, `docker://${registry.host}/app/multi-up:${arch}`);
        child[arch] = JSON.parse(await must('inspect', '--tls-verify=false', '--creds', creds, `docker://${port.ph}/app/multi:${arch}`)).Digest as string;
      }
      for (const [list, source, dest] of [
        ['localhost/multi-here', `${port.ph}/app/multi`, `${shared}/ph/app/multi:idx`],
        ['localhost/multi-up', `${registry.host}/app/multi-up`, `${registry.host}/app/multi-up:idx`],
      ]) {
        await pusher.must('manifest', 'create', list);
        for (const arch of ['amd64', 'arm64']) await pusher.must('manifest', 'add', '--tls-verify=false', list, `docker://${source}:${arch}`);
        await pusher.must('manifest', 'push', '--all', '--tls-verify=false', list, `docker://${dest}`);
      }
      const index = JSON.parse(await must('inspect', '--raw', '--tls-verify=false', '--creds', creds, `docker://${port.ph}/app/multi:idx`)) as {
        manifests: Array<{ digest: string; platform: { architecture: string } }>;
      };
      assert.deepEqual(index.manifests.map((m) => [m.platform.architecture, m.digest]).sort(), [
        ['amd64', child.amd64],
        ['arm64', child.arm64],
      ]);
      for (const ref of [
        `${shared}/ph/app/multi:idx`,
        `${port.pg}/app/multi:idx`,
        `${shared}/pp/app/multi-up:idx`,
        `${port.pp}/app/multi-up:idx`,
        `${shared}/pg/app/multi-up:idx`,
      ]) {
        for (const arch of ['arm64', 'amd64']) {
          const out = path.join(work, `multi-${db}-${randomBytes(4).toString('hex')}`);
          await must('--override-arch', arch, '--override-os', 'linux', 'copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${ref}`, `oci:${out}:x`);
          assert.equal(layoutDigest(out), child[arch], `${arch} through ${ref}`);
          rmSync(out, { recursive: true, force: true });
        }
      }
    });

    it('proxies a second Stowage that accepts only bearer tokens', async () => {
      const up = await startServer({ db: 'sqlite', env: { STOWAGE_ANONYMOUS: 'false' } });
      const front = await bearerOnly(up.url);
      try {
        await up.repo('docker', 'hosted', { name: 'secure', docker: noBasic });
        const upHost = up.url.slice('http://'.length);
        await must('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layouts.c}:latest`, `docker://${upHost}/secure/app/private:v1`);
        // Through the front, Basic alone gets nowhere.
        const refused = await fetch(`${front.url}/v2/secure/app/private/manifests/v1`, { headers: { Authorization: `Basic ${Buffer.from(creds).toString('base64')}` } });
        assert.equal(refused.status, 401);
        assert.match(refused.headers.get('www-authenticate') ?? '', new RegExp(`^Bearer realm="${front.url}/v2/token"`));
        await s.repo('docker', 'proxy', {
          name: 'bearerproxy',
          online: true,
          storage: { blobStoreName: 'default', strictContentTypeValidation: true },
          proxy: { remoteUrl: front.url, contentMaxAge: 1440, metadataMaxAge: 1440 },
          negativeCache: { enabled: false, timeToLive: 1440 },
          httpClient: { blocked: false, autoBlock: false, connection: { retries: 0 }, authentication: { type: 'username', username: 'admin', password: ADMIN_PASSWORD } },
          docker: noBasic,
        });
        const puller = new Podman(work);
        assert.ok((await puller.login(shared)).ok);
        assert.equal((await puller.pull(`${shared}/bearerproxy/secure/app/private:v1`)).id, imageIds.c);
        assert.ok(
          front.requests.some((r) => /^GET \/v2\/token\?.*\[Basic\]$/.test(r)),
          front.requests.join('\n'),
        );
        assert.ok(
          front.requests.some((r) => /^GET \/v2\/secure\/app\/private\/blobs\/.*\[Bearer\]$/.test(r)),
          front.requests.join('\n'),
        );
      } finally {
        await front.close();
        await up.stop();
      }
    });
  });
}

describe('shared docker port settings', () => {
  it('refuses the main port, an unknown format, bad syntax and a repository’s dedicated port', async () => {
    const main = await freePort();
    const refused = async (env: Record<string, string>, existing?: string) => {
      const dataDir = existing ?? mkdtempSync(path.join(tmpdir(), 'stowage-shared-'));
      const e = await spawnServer({ port: main, env, dataDir })
        .finally(() => existing || rmSync(dataDir, { recursive: true, force: true }))
        .then(
          async (srv) => {
            await srv.stop();
            return null;
          },
          (err: Error) => err.message,
        );
      assert.ok(e, `started with ${JSON.stringify(env)}`);
      return e;
    };
    assert.match(await refused({ STOWAGE_FORMAT_PORTS: `docker:${main}` }), /Invalid setting STOWAGE_FORMAT_PORTS \(formatPorts\.docker\): port \d+ is the main HTTP port/);
    assert.match(await refused({ STOWAGE_FORMAT_PORTS: 'docker' }), /Invalid setting STOWAGE_FORMAT_PORTS: expected format:port/);
    assert.match(await refused({ STOWAGE_FORMAT_PORTS: 'docker:70000' }), /Invalid setting STOWAGE_FORMAT_PORTS \(formatPorts\.docker\)/);
    assert.match(
      await refused({ STOWAGE_FORMAT_PORTS: `nosuchformat:${await freePort()}` }),
      /Invalid setting formatPorts\.nosuchformat \(STOWAGE_FORMAT_PORTS\): no format 'nosuchformat'/,
    );
    // A repository already has the port as its dedicated port.
    const dataDir = mkdtempSync(path.join(tmpdir(), 'stowage-shared-'));
    try {
      const taken = await freePort();
      const s = await startServer({ dataDir });
      await s.repo('docker', 'hosted', { name: 'owner', docker: { v1Enabled: false, forceBasicAuth: false, httpPort: taken } });
      await s.stop({ keepData: true });
      assert.match(await refused({ STOWAGE_FORMAT_PORTS: `docker:${taken}` }, dataDir), new RegExp(`port ${taken} is the dedicated port of repository 'owner'`));
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('manifests served from memory stay correct across nodes (postgres)', () => {
  it('sees a tag moved and a manifest deleted on another node at once', async () => {
    const a = await startServer({ db: 'postgres' });
    await a.repo('docker', 'hosted', {
      name: 'mc',
      storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW' },
      docker: { v1Enabled: false, forceBasicAuth: false },
    });
    // A second node on the same database and blob store.
    const b = await startServer({ dataDir: a.dataDir, dbUrl: a.dbUrl });
    try {
      const blob = async (body: Buffer) => {
        const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
        const r = await a.fetch(`/v2/mc/app/blobs/uploads/?digest=${digest}`, { method: 'POST', body: new Uint8Array(body) });
        assert.equal(r.status, 201);
        return { digest, size: body.length };
      };
      const manifest = async (n: string) => {
        const config = await blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', n })));
        const body = JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
          layers: [],
        });
        return { body, digest: `sha256:${createHash('sha256').update(body).digest('hex')}` };
      };
      const put = async (m: { body: string }, ref: string) =>
        assert.equal(
          (await a.fetch(`/v2/mc/app/manifests/${ref}`, { method: 'PUT', headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: m.body })).status,
          201,
        );
      const getB = async (ref: string) => {
        const r = await b.fetch(`/v2/mc/app/manifests/${ref}`, { auth: null });
        return { status: r.status, digest: r.headers.get('docker-content-digest'), body: await r.text() };
      };
      const m1 = await manifest('one');
      const m2 = await manifest('two');
      await put(m1, 't');
      for (let i = 0; i < 2; i++) assert.deepEqual(await getB('t'), { status: 200, digest: m1.digest, body: m1.body });
      await put(m2, 't');
      assert.deepEqual(await getB('t'), { status: 200, digest: m2.digest, body: m2.body });
      assert.equal((await getB(m1.digest)).status, 200);
      assert.equal((await a.fetch(`/v2/mc/app/manifests/${m2.digest}`, { method: 'DELETE' })).status, 202);
      assert.equal((await getB('t')).status, 404, 'the tag went with the manifest');
      assert.equal((await getB(m2.digest)).status, 404, 'deleted by digest on the other node');
      const head = await b.fetch(`/v2/mc/app/manifests/${m1.digest}`, { method: 'HEAD', auth: null });
      assert.equal(head.status, 200);
      assert.equal(Number(head.headers.get('content-length')), Buffer.byteLength(m1.body));
      const range = await b.fetch(`/v2/mc/app/manifests/${m1.digest}`, { headers: { Range: 'bytes=0-9' }, auth: null });
      assert.equal(await range.text(), m1.body.slice(0, 10));
    } finally {
      await b.stop({ keepData: true });
      await a.stop();
    }
  });
});
