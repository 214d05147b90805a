/**
 * Docker hardening (issue 11): docker bearer tokens die with the API token that minted them
 * (revoked or expired); a dedicated docker port works with STOWAGE_BASE_URL set (podman and
 * skopeo log in, push and pull; the challenge names the port the client talks to) and honours
 * `docker.forceBasicAuth` (Basic only, no anonymous pull); an image archive indexes the referrers
 * it holds (a signature with a `subject` is listed by the referrers API); an archive of thousands
 * of junk entries is refused at once and stores nothing. SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, cpSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ADMIN_PASSWORD, DATABASES, basic, startServer, type TestServer } from '../helpers/stowage.js';
import { buildImage, skopeo, tool } from '../helpers/oci.js';
import { freePort } from '../helpers/net.js';
import { writeTar, type TarWriteEntry } from '../../src/archive/tar.js';
import { filesUnder } from '../helpers/files.js';

const run = promisify(execFile);
const API = '/service/rest/v1';
const creds = `admin:${ADMIN_PASSWORD}`;
const sha256 = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const MT_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const SIG_TYPE = 'application/vnd.example.signature.v1';

async function must(...args: string[]): Promise<string> {
  const r = await skopeo(...args);
  assert.ok(r.ok, `skopeo ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A podman with its own storage, run root and auth file. */
class Podman {
  static readonly runRoots: string[] = [];
  readonly root: string;
  readonly runRoot: string;
  constructor(dir: string) {
    this.root = mkdtempSync(path.join(dir, 'podman-'));
    // Run roots outside the work dir: podman wants their path short.
    this.runRoot = mkdtempSync(path.join(tmpdir(), 'prun-'));
    Podman.runRoots.push(this.runRoot);
    writeFileSync(path.join(this.root, 'auth.json'), '{"auths":{}}');
  }
  async run(...args: string[]): Promise<{ ok: boolean; out: string; err: string }> {
    const argv = ['--root', path.join(this.root, 'storage'), '--runroot', this.runRoot, '--storage-driver', 'vfs', '--events-backend', 'file', ...args];
    try {
      const r = await run('podman', argv, { env: { ...process.env, REGISTRY_AUTH_FILE: path.join(this.root, 'auth.json'), TMPDIR: this.root }, maxBuffer: 16 << 20 });
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
  /** Loads an OCI layout as `localhost/<name>:latest`; returns its image ID. */
  async load(layout: string, name: string): Promise<string> {
    await must('copy', `oci:${layout}:latest`, `containers-storage:[vfs@${path.join(this.root, 'storage')}+${this.runRoot}]localhost/${name}:latest`);
    return this.must('image', 'inspect', '--format', '{{.Id}}', `localhost/${name}:latest`);
  }
}

/** Every file under a directory. */
async function tarOf(entries: TarWriteEntry[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of writeTar(entries)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/**
 * An OCI layout holding an image (named `app/signed:v1`) and a signature artifact whose `subject`
 * is the image; the signature is listed in index.json without a name, as `oras`/cosign layouts do.
 */
async function signedLayout(work: string): Promise<{ tar: Buffer; image: string; signature: string }> {
  const img = await buildImage(work, 'signed-img', { 'signed.txt': 'signed ' + randomBytes(8).toString('hex') });
  const dir = path.join(work, 'signed');
  mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  cpSync(path.join(img, 'blobs', 'sha256'), path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const image = (JSON.parse(readFileSync(path.join(img, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }).manifests[0].digest;
  const imageSize = statSync(path.join(dir, 'blobs', ...image.split(':'))).size;
  const put = (b: Buffer) => {
    writeFileSync(path.join(dir, 'blobs', ...sha256(b).split(':')), b);
    return { digest: sha256(b), size: b.length };
  };
  const empty = put(Buffer.from('{}'));
  const payload = put(Buffer.from(JSON.stringify({ critical: { image: { 'docker-manifest-digest': image } }, nonce: randomBytes(8).toString('hex') })));
  const sig = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT_MANIFEST,
      artifactType: SIG_TYPE,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', ...empty },
      layers: [{ mediaType: 'application/vnd.example.signature.payload.v1+json', ...payload }],
      subject: { mediaType: MT_MANIFEST, digest: image, size: imageSize },
      annotations: { 'org.example.signed-by': 'ci' },
    }),
  );
  const signature = put(sig);
  writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        // The signature first: its name comes from its subject's entry, wherever that is.
        { mediaType: MT_MANIFEST, artifactType: SIG_TYPE, ...signature },
        { mediaType: MT_MANIFEST, digest: image, size: imageSize, annotations: { 'io.containerd.image.name': 'app/signed:v1', 'org.opencontainers.image.ref.name': 'v1' } },
      ],
    }),
  );
  return { tar: execFileSync('tar', ['-C', dir, '-cf', '-', '.'], { maxBuffer: 64 << 20 }), image, signature: signature.digest };
}

let work: string;
let layout: string;
let saveTar: Buffer;
let signed: Awaited<ReturnType<typeof signedLayout>>;

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'stowage-docker-hardening-'));
  layout = await buildImage(work, 'img', { 'hello.txt': 'hardening ' + randomBytes(8).toString('hex') });
  const save = path.join(work, 'save.tar');
  await must('copy', `oci:${layout}:latest`, `docker-archive:${save}:app/saved:v1`);
  saveTar = readFileSync(save);
  signed = await signedLayout(work);
});

after(() => {
  rmSync(work, { recursive: true, force: true });
  for (const r of Podman.runRoots) rmSync(r, { recursive: true, force: true });
});

for (const db of DATABASES) {
  describe(`docker hardening (${db})`, { timeout: 600_000 }, () => {
    let s: TestServer;
    let main: number;
    const ports = { bearer: 0, basic: 0 };

    async function api(method: string, p: string, body?: unknown, auth?: string): Promise<Response> {
      return s.fetch(API + p, { method, headers: body ? { 'Content-Type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined, auth });
    }
    function hosted(name: string, docker: Record<string, unknown>) {
      return { name, online: true, storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW' }, docker: { v1Enabled: false, ...docker } };
    }

    before(async () => {
      // As behind a reverse proxy: generated links name the main port's external URL.
      main = await freePort();
      s = await startServer({ db, env: { STOWAGE_HTTP_PORT: String(main), STOWAGE_BASE_URL: `http://127.0.0.1:${main}` } });
      ports.bearer = await freePort();
      ports.basic = await freePort();
      assert.equal((await api('POST', '/repositories/docker/hosted', hosted('dock', { forceBasicAuth: false }))).status, 201);
      for (const [name, port, force] of [
        ['porta', ports.bearer, false],
        ['portb', ports.basic, true],
      ] as const) {
        const r = await api('POST', '/repositories/docker/hosted', hosted(name, { forceBasicAuth: force, httpPort: port }));
        assert.equal(r.status, 201, await r.text());
      }
    });
    after(async () => s?.stop());

    // ---- item 6: docker tokens and their parent API token ----------------------------------

    async function apiToken(expiresAt?: string): Promise<{ id: string; token: string }> {
      const r = await api('POST', '/security/user-tokens', { name: `t-${randomBytes(3).toString('hex')}`, ...(expiresAt ? { expiresAt } : {}) });
      const text = await r.text();
      assert.equal(r.status, 201, text);
      const body = JSON.parse(text) as { id: string; token: string };
      return { id: body.id, token: body.token };
    }
    async function dockerToken(auth: string): Promise<string> {
      const r = await s.fetch(`/v2/token?service=x&scope=repository:dock/app:pull,push`, { auth });
      const text = await r.text();
      assert.equal(r.status, 200, text);
      return (JSON.parse(text) as { token: string }).token;
    }
    const usable = async (t: string) => (await s.fetch('/v2/dock/app/tags/list', { auth: `Bearer ${t}` })).status !== 401;

    it('a docker token minted with an API token is refused as soon as the API token is revoked', async () => {
      const parent = await apiToken();
      const child = await dockerToken(basic('admin', parent.token));
      const byPassword = await dockerToken(basic('admin', ADMIN_PASSWORD));
      assert.ok(await usable(child), 'the child token works while its parent does');
      // A token minted with the child is tied to the same parent.
      const grandchild = await dockerToken(`Bearer ${child}`);
      assert.ok(await usable(grandchild));
      assert.equal((await api('DELETE', `/security/user-tokens/${parent.id}`)).status, 204);
      assert.equal(await usable(child), false, 'revoked parent: the docker token is refused at once');
      assert.equal(await usable(grandchild), false, 'and so is a token minted with it');
      const ping = await s.fetch('/v2/', { auth: `Bearer ${child}` });
      assert.equal(ping.status, 401);
      assert.equal(((await ping.json()) as { errors: Array<{ code: string }> }).errors[0].code, 'UNAUTHORIZED');
      assert.ok(await usable(byPassword), 'a password-minted token is not affected');
    });

    it('a docker token minted with an API token is refused once the API token expires', async () => {
      const expires = Date.now() + 2_500;
      const parent = await apiToken(new Date(expires).toISOString());
      const child = await dockerToken(basic('admin', parent.token));
      const byPassword = await dockerToken(basic('admin', ADMIN_PASSWORD));
      assert.ok(await usable(child));
      await new Promise((r) => setTimeout(r, Math.max(0, expires - Date.now()) + 200));
      assert.equal(await usable(child), false, 'expired parent: the docker token is refused');
      assert.ok(await usable(byPassword), 'a password-minted token is not affected');
    });

    // ---- item 7: dedicated ports with STOWAGE_BASE_URL, forceBasicAuth -------------------------

    it('challenges on a dedicated port name that port (Bearer), or Basic only when forceBasicAuth is on', async () => {
      const bearer = await fetch(`http://127.0.0.1:${ports.bearer}/v2/`);
      assert.equal(bearer.status, 401);
      assert.equal(bearer.headers.get('www-authenticate'), `Bearer realm="http://127.0.0.1:${ports.bearer}/v2/token",service="127.0.0.1:${ports.bearer}"`);
      const forced = await fetch(`http://127.0.0.1:${ports.basic}/v2/`);
      assert.equal(forced.status, 401);
      assert.match(forced.headers.get('www-authenticate') ?? '', /^Basic realm="[^"]+"$/);
      // The main port keeps the configured base URL.
      const root = await s.fetch('/v2/', { auth: null });
      assert.equal(root.headers.get('www-authenticate'), `Bearer realm="http://127.0.0.1:${main}/v2/token",service="127.0.0.1:${main}"`);
      // Basic credentials straight away on the forced port; a wrong password is challenged with Basic again.
      assert.equal((await fetch(`http://127.0.0.1:${ports.basic}/v2/`, { headers: { Authorization: basic('admin', ADMIN_PASSWORD) } })).status, 200);
      const wrong = await fetch(`http://127.0.0.1:${ports.basic}/v2/`, { headers: { Authorization: basic('admin', 'wrong') } });
      assert.equal(wrong.status, 401);
      assert.match(wrong.headers.get('www-authenticate') ?? '', /^Basic /);
    });

    for (const kind of ['bearer', 'basic'] as const) {
      it(`skopeo logs in, pushes and pulls on a dedicated port (forceBasicAuth ${kind === 'basic'}) with STOWAGE_BASE_URL set`, async () => {
        const host = `127.0.0.1:${ports[kind]}`;
        const authfile = path.join(work, `skopeo-auth-${db}-${kind}.json`);
        const login = await tool('skopeo', 'login', '--tls-verify=false', '--authfile', authfile, '-u', 'admin', '-p', ADMIN_PASSWORD, host);
        assert.ok(login.ok, login.stderr);
        const bad = await tool('skopeo', 'login', '--tls-verify=false', '--authfile', authfile, '-u', 'admin', '-p', 'wrong', host);
        assert.ok(!bad.ok, 'a wrong password is refused');
        await must('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:latest`, `docker://${host}/team/app:s1`);
        const digest = JSON.parse(await must('inspect', '--tls-verify=false', '--creds', creds, `docker://${host}/team/app:s1`)).Digest as string;
        const out = path.join(work, `pulled-${db}-${kind}`);
        await must('copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/team/app:s1`, `oci:${out}:x`);
        assert.equal((JSON.parse(readFileSync(path.join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }).manifests[0].digest, digest);
        // Anonymous pull: through an anonymous token where Basic is not forced; refused where it is.
        const anon = await skopeo('inspect', '--tls-verify=false', '--no-creds', `docker://${host}/team/app:s1`);
        if (kind === 'bearer') assert.ok(anon.ok, anon.stderr);
        else {
          assert.ok(!anon.ok, 'forceBasicAuth: no anonymous pull');
          const r = await fetch(`http://${host}/v2/team/app/manifests/s1`);
          assert.equal(r.status, 401);
          assert.match(r.headers.get('www-authenticate') ?? '', /^Basic /);
        }
      });

      it(`podman logs in, pushes and pulls on a dedicated port (forceBasicAuth ${kind === 'basic'}) with STOWAGE_BASE_URL set`, async () => {
        const host = `127.0.0.1:${ports[kind]}`;
        const pusher = new Podman(work);
        const id = await pusher.load(layout, `hard-${kind}`);
        assert.ok(!(await pusher.run('login', '--tls-verify=false', host, '-u', 'admin', '-p', 'wrong')).ok, 'a wrong password is refused');
        await pusher.must('login', '--tls-verify=false', host, '-u', 'admin', '-p', ADMIN_PASSWORD);
        await pusher.must('push', '--tls-verify=false', `localhost/hard-${kind}:latest`, `docker://${host}/team/app:p1`);
        const puller = new Podman(work);
        await puller.must('login', '--tls-verify=false', host, '-u', 'admin', '-p', ADMIN_PASSWORD);
        const pulled = await puller.must('pull', '-q', '--tls-verify=false', `${host}/team/app:p1`);
        assert.equal(pulled.split('\n').pop(), id);
      });
    }

    // ---- item 10 and 18: image archives -------------------------------------------------------

    const upload = (body: Buffer, query = '') =>
      s.fetch(`${API}/docker/archive?repository=dock${query}`, { method: 'POST', body: new Uint8Array(body), headers: { 'Content-Type': 'application/x-tar' } });

    async function snapshot(): Promise<string> {
      const tags = await s.app.db('tags').select('repository_id', 'scope', 'name', 'target').orderBy(['repository_id', 'scope', 'name']);
      const assets = await s.app.db('assets').select('repository_id', 'path').orderBy(['repository_id', 'path']);
      const blobs = await s.app.db('blobs').select('sha256').orderBy('sha256');
      return JSON.stringify({ tags, assets, blobs, files: filesUnder(path.join(s.dataDir, 'blobs')) });
    }

    /** Runs `fn` counting what is written to the blob store (each staged blob). */
    async function counting<T>(fn: () => Promise<T>): Promise<{ result: T; staged: number }> {
      const blobs = s.app.blobs;
      const original = blobs.stage;
      let staged = 0;
      blobs.stage = (...args: Parameters<typeof original>) => {
        staged++;
        return original.apply(blobs, args);
      };
      try {
        return { result: await fn(), staged };
      } finally {
        blobs.stage = original;
      }
    }

    it('indexes the referrers of an uploaded archive: a signature is listed for its image', async () => {
      const r = await upload(signed.tar);
      const text = await r.text();
      assert.equal(r.status, 201, text);
      const images = (JSON.parse(text) as { images: Array<{ name: string; tag: string | null; digest: string }> }).images;
      assert.deepEqual(
        images.map((i) => [i.name, i.tag, i.digest]).sort(),
        [
          ['app/signed', 'v1', signed.image],
          ['app/signed', null, signed.signature],
        ].sort(),
      );
      const list = await s.fetch(`/v2/dock/app/signed/referrers/${signed.image}`);
      assert.equal(list.status, 200);
      const index = (await list.json()) as { manifests: Array<{ digest: string; artifactType?: string; annotations?: Record<string, string> }> };
      assert.deepEqual(
        index.manifests.map((m) => [m.digest, m.artifactType, m.annotations?.['org.example.signed-by']]),
        [[signed.signature, SIG_TYPE, 'ci']],
      );
      const filtered = await s.fetch(`/v2/dock/app/signed/referrers/${signed.image}?artifactType=${encodeURIComponent(SIG_TYPE)}`);
      assert.equal(((await filtered.json()) as { manifests: unknown[] }).manifests.length, 1);
      // The signature itself is pullable by digest.
      assert.equal((await s.fetch(`/v2/dock/app/signed/manifests/${signed.signature}`, { method: 'HEAD' })).status, 200);
    });

    it('refuses an archive of 20,000 empty entries at once, storing nothing', async () => {
      const entries: TarWriteEntry[] = [];
      for (let i = 0; i < 20_000; i++) entries.push({ name: `junk/${i}`, size: 0, body: Buffer.alloc(0) });
      const body = await tarOf(entries);
      const before = await snapshot();
      const t0 = performance.now();
      const r = await upload(body, '&name=junk');
      const text = await r.text();
      const ms = performance.now() - t0;
      assert.equal(r.status, 400, text);
      assert.match(text, /Invalid image archive: more than/);
      assert.ok(ms < 2_000, `refused in ${Math.round(ms)} ms`);
      assert.equal(await snapshot(), before, 'nothing stored');
    });

    it('refuses an archive of thousands of small entries and no manifest without staging them', async () => {
      const entries: TarWriteEntry[] = [];
      for (let i = 0; i < 3_000; i++) {
        const b = randomBytes(16);
        entries.push({ name: `blobs/sha256/${sha256(b).slice(7)}`, size: b.length, body: b });
      }
      const body = await tarOf(entries);
      const before = await snapshot();
      const { result: text, staged } = await counting(async () => {
        const r = await upload(body, '&name=junk');
        assert.equal(r.status, 400);
        return r.text();
      });
      assert.match(text, /neither manifest\.json .* nor index\.json/);
      assert.equal(staged, 0, 'nothing referenced, nothing written to the blob store');
      assert.equal(await snapshot(), before, 'nothing stored');
    });

    it('stores only what a manifest references when an archive also holds unreferenced entries', async () => {
      const junk: Buffer[] = [];
      const extra: TarWriteEntry[] = [];
      for (let i = 0; i < 500; i++) {
        const b = randomBytes(64);
        junk.push(b);
        extra.push({ name: `extra/${i}.bin`, size: b.length, body: b });
      }
      // The save's own entries, then the junk.
      const { readTar } = await import('../../src/archive/tar.js');
      const { Readable } = await import('node:stream');
      const entries: TarWriteEntry[] = [];
      for await (const e of readTar(Readable.from([saveTar]))) {
        const parts: Buffer[] = [];
        for await (const c of e.body) parts.push(c as Buffer);
        const h = e.header;
        if (h.type === 'symlink') entries.push({ name: h.name, size: 0, type: 'symlink', linkname: h.linkname });
        else if (h.type === 'file') entries.push({ name: h.name, size: h.size, body: Buffer.concat(parts) });
      }
      const body = await tarOf([...entries, ...extra]);
      const { staged } = await counting(async () => {
        const r = await upload(body);
        assert.equal(r.status, 201, await r.text());
      });
      // The image's config, layer and manifest; never the 500 others.
      assert.ok(staged <= 3 + 1, `${staged} blobs written`);
      const stored = new Set((await s.app.db('blobs').select('sha256')).map((b) => `sha256:${String(b.sha256)}`));
      for (const b of junk) assert.ok(!stored.has(sha256(b)), 'an unreferenced entry is not stored');
      assert.equal((await s.fetch('/v2/dock/app/saved/manifests/v1', { method: 'HEAD' })).status, 200);
    });
  });
}
