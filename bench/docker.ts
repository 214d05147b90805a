/**
 * Docker registry benchmark: Stowage (child process, SQLite + file blob store, a docker hosted
 * repository reached path-routed at /v2/bench/…) side by side with Debian's `docker-registry`
 * (distribution, "registry:2": loopback, filesystem storage in a temp dir, deletes enabled), in
 * one run, with the same client code for both (issue, "Performance"):
 *
 *  1. push of a 1 GiB blob as docker and podman do it: POST, one streamed PATCH, empty PUT
 *     ?digest=; and as containerd does: POST, then PUT ?digest= with the whole body. A fresh blob
 *     each run (its last MiB rewritten; the digest of the rest is kept), time from POST to 201;
 *  2. pull of that blob: GET, curl -o /dev/null (curl receives far faster than node would);
 *  3. manifest GET by tag with 32 concurrent connections (wrk, 10 s), anonymous on both.
 *
 * Targets: push time ≤ 0.6 × registry:2's, pull throughput ≥ 1.3 × its, manifest GETs/s ≥ 5 × its.
 * Not a test: prints a table and writes JSON to bench/results/. `npm run bench:docker`.
 * Environment: BENCH_SIZE_MB (1024), BENCH_RUNS (3), BENCH_WRK_SECONDS (10), BENCH_CONNECTIONS (32),
 * BENCH_SERVER_LOG (a file for the Stowage server's stdout and stderr, e.g. with BENCH_NODE_ARGS=--trace-gc),
 * BENCH_ONLY=manifest (skip the 1 GiB transfers: a 1 MiB layer, the manifest phase alone, for profiling),
 * BENCH_NODE_ARGS (extra node options for Stowage, e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`), BENCH_KEEP=1.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync, type Hash } from 'node:crypto';
import { closeSync, createWriteStream, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/net.js';
import { startRegistry, type Registry } from '../test/helpers/registry.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = path.join(ROOT, 'dist/src/main.js');
const RESULTS = path.join(ROOT, 'bench/results');
const MiB = 1024 * 1024;
const ONLY_MANIFEST = process.env.BENCH_ONLY === 'manifest';
const SIZE = (ONLY_MANIFEST ? 1 : Number(process.env.BENCH_SIZE_MB ?? 1024)) * MiB;
const RUNS = ONLY_MANIFEST ? 1 : Number(process.env.BENCH_RUNS ?? 3);
const WRK_S = Number(process.env.BENCH_WRK_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const PASSWORD = 'bench-admin-pw';
const BASIC = 'Basic ' + Buffer.from(`admin:${PASSWORD}`).toString('base64');
const SIZE_LABEL = SIZE % 1024 ** 3 === 0 ? `${SIZE / 1024 ** 3} GiB` : `${SIZE / MiB} MiB`;
const TARGET = { pushRatio: 0.6, pullRatio: 1.3, manifestRatio: 5 };
const MANIFEST_ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json';

const log = (s: string) => process.stderr.write(`  · ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function sync(): void {
  try {
    execFileSync('sync');
  } catch {
    /* best effort */
  }
}

/** One registry under test: where it is and how the client authenticates (null: anonymous). */
interface Target {
  label: string;
  url: string;
  pid: number;
  /** Authorization for pushes (a bearer token for Stowage, as docker clients use). */
  push: string | null;
  stop(): Promise<void>;
}

async function startStowage(dir: string): Promise<Target> {
  const port = await freePort();
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/root',
    STOWAGE_DATA_DIR: path.join(dir, 'stowage'),
    STOWAGE_HTTP_HOST: '127.0.0.1',
    STOWAGE_HTTP_PORT: String(port),
    STOWAGE_ADMIN_PASSWORD: PASSWORD,
    STOWAGE_LOG_LEVEL: 'warn',
  };
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const proc: ChildProcess = spawn(process.execPath, [...nodeArgs, MAIN, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const logFile = process.env.BENCH_SERVER_LOG;
  const log = logFile ? createWriteStream(logFile) : null;
  proc.stdout!.on('data', (d) => (log ? log.write(d) : (out += d)));
  proc.stderr!.on('data', (d) => (log ? log.write(d) : (out += d)));
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`Stowage exited during start:\n${out}`);
    try {
      if ((await request(`${url}/service/rest/v1/status`)).status === 200) break;
    } catch {
      /* not yet */
    }
    if (i > 600) throw new Error(`Stowage did not start:\n${out}`);
    await sleep(50);
  }
  const created = await request(`${url}/service/rest/v1/repositories/docker/hosted`, {
    method: 'POST',
    headers: { Authorization: BASIC, 'Content-Type': 'application/json' },
    body: JSON.stringify({
      name: 'bench',
      online: true,
      storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW' },
      docker: { v1Enabled: false, forceBasicAuth: false },
    }),
  });
  if (created.status !== 201) throw new Error(`creating the docker repository: ${created.status} ${created.body}`);
  const tok = await request(`${url}/v2/token?service=bench&scope=repository:bench/push:pull,push&scope=repository:bench/app:pull,push`, { headers: { Authorization: BASIC } });
  const token = (JSON.parse(tok.body) as { token: string }).token;
  return {
    label: 'Stowage',
    url,
    pid: proc.pid!,
    push: `Bearer ${token}`,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await exited;
      }
    },
  };
}

async function startPeer(dir: string): Promise<Target> {
  const r: Registry = await startRegistry(path.join(dir, 'registry'));
  return { label: 'registry:2', url: r.url, pid: r.pid, push: null, stop: () => r.stop() };
}

/** The blob file: random bytes; the sha256 state of everything but the last MiB is kept, so each run's fresh tail costs one MiB of hashing. */
class BlobFile {
  readonly file: string;
  private readonly head: Hash;
  constructor(dir: string) {
    this.file = path.join(dir, 'blob.bin');
    this.head = createHash('sha256');
    const fd = openSync(this.file, 'w');
    const piece = Buffer.alloc(MiB);
    for (let off = 0; off < SIZE - MiB; off += MiB) {
      randomFillSync(piece);
      this.head.update(piece);
      writeSync(fd, piece);
    }
    writeSync(fd, piece);
    closeSync(fd);
  }
  /** Rewrites the last MiB with new bytes; the new digest. */
  fresh(): string {
    const tail = randomFillSync(Buffer.alloc(MiB));
    const fd = openSync(this.file, 'r+');
    writeSync(fd, tail, 0, MiB, SIZE - MiB);
    closeSync(fd);
    return `sha256:${this.head.copy().update(tail).digest('hex')}`;
  }
}

function auth(t: Target): Record<string, string> {
  return t.push ? { Authorization: t.push } : {};
}

function absolute(t: Target, location: string | string[] | undefined): string {
  if (typeof location !== 'string') throw new Error(`${t.label}: no Location`);
  return new URL(location, t.url).href;
}

const withDigest = (loc: string, digest: string) => `${loc}${loc.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;

/** curl streaming the file as the body of `method url` (Content-Length set, like every real client's single-request upload). */
async function curlUpload(t: Target, method: string, url: string, file: string): Promise<{ status: number; location?: string }> {
  const args = ['-s', '-S', '-X', method, '-T', file, '-H', 'Content-Type: application/octet-stream', '-H', 'Expect:', '-D', '-', '-o', '/dev/null', url];
  if (t.push) args.splice(0, 0, '-H', `Authorization: ${t.push}`);
  const r = await run('curl', args);
  const status = Number(/^HTTP\/[\d.]+ (\d+)/m.exec(r.stdout)?.[1] ?? 0);
  const location = /^location:\s*(.+?)\s*$/im.exec(r.stdout)?.[1];
  if (r.code !== 0) throw new Error(`curl ${method}: ${r.stderr}`);
  return { status, location };
}

/** Push as docker/podman (POST, PATCH, PUT) or containerd (POST, PUT with body); seconds from POST to 201. */
async function push(t: Target, blob: BlobFile, mode: 'patch' | 'put'): Promise<{ seconds: number; digest: string }> {
  const digest = blob.fresh();
  sync();
  const t0 = performance.now();
  const start = await request(`${t.url}/v2/bench/push/blobs/uploads/`, { method: 'POST', headers: { ...auth(t), 'Content-Length': '0' } });
  if (start.status !== 202) throw new Error(`${t.label}: POST ${start.status} ${start.body}`);
  let loc = absolute(t, start.headers.location);
  if (mode === 'patch') {
    const p = await curlUpload(t, 'PATCH', loc, blob.file);
    if (p.status !== 202) throw new Error(`${t.label}: PATCH ${p.status}`);
    loc = absolute(t, p.location);
    const done = await request(withDigest(loc, digest), { method: 'PUT', headers: { ...auth(t), 'Content-Length': '0' } });
    if (done.status !== 201) throw new Error(`${t.label}: PUT ${done.status} ${done.body}`);
  } else {
    const done = await curlUpload(t, 'PUT', withDigest(loc, digest), blob.file);
    if (done.status !== 201) throw new Error(`${t.label}: PUT ${done.status}`);
  }
  return { seconds: (performance.now() - t0) / 1000, digest };
}

/** Pushes a small image `bench/app:latest` (config, one layer = `layer`) for the pull and manifest phases. */
async function pushImage(t: Target, layer: { digest: string; size: number }): Promise<string> {
  const put = async (body: Buffer) => {
    const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    const start = await request(`${t.url}/v2/bench/app/blobs/uploads/`, { method: 'POST', headers: { ...auth(t), 'Content-Length': '0' } });
    const r = await request(withDigest(absolute(t, start.headers.location), digest), {
      method: 'PUT',
      headers: { ...auth(t), 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length) },
      body,
    });
    if (r.status !== 201) throw new Error(`${t.label}: blob ${r.status} ${r.body}`);
    return { digest, size: body.length };
  };
  const config = await put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } })));
  const mounted = await request(`${t.url}/v2/bench/app/blobs/uploads/?mount=${layer.digest}&from=bench/push`, { method: 'POST', headers: { ...auth(t), 'Content-Length': '0' } });
  if (mounted.status !== 201) throw new Error(`${t.label}: mount ${mounted.status} ${mounted.body}`);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
    }),
  );
  const r = await request(`${t.url}/v2/bench/app/manifests/latest`, {
    method: 'PUT',
    headers: { ...auth(t), 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  if (r.status !== 201) throw new Error(`${t.label}: manifest ${r.status} ${r.body}`);
  return `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
}

/** GET of the blob with curl to /dev/null, anonymous; MB/s. */
async function pull(t: Target, digest: string): Promise<number> {
  const r = await run('curl', ['-s', '-S', '-f', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', `${t.url}/v2/bench/app/blobs/${digest}`]);
  if (r.code !== 0) throw new Error(`${t.label}: pull: ${r.stderr}`);
  const [size, time] = r.stdout.trim().split(' ').map(Number);
  if (size !== SIZE) throw new Error(`${t.label}: pulled ${size} bytes`);
  return size / 1e6 / time;
}

/** wrk: manifest GET by tag, CONNECTIONS connections, anonymous; requests/s and the non-2xx count. */
async function manifestRate(t: Target): Promise<{ rps: number; errors: number; latency: string }> {
  const url = `${t.url}/v2/bench/app/manifests/latest`;
  const check = await request(url, { headers: { Accept: MANIFEST_ACCEPT } });
  if (check.status !== 200) throw new Error(`${t.label}: manifest GET ${check.status} ${check.body}`);
  const r = await run('wrk', ['-t', '2', '-c', String(CONNECTIONS), '-d', `${WRK_S}s`, '--latency', '-H', `Accept: ${MANIFEST_ACCEPT}`, url]);
  if (r.code !== 0) throw new Error(`wrk: ${r.stderr}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? 0);
  const errors = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0) + Number(/Socket errors:.*?timeout (\d+)/.exec(r.stdout)?.[1] ?? 0);
  const latency = /Latency\s+(\S+)/.exec(r.stdout)?.[1] ?? '?';
  return { rps, errors, latency };
}

function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

async function main(): Promise<void> {
  for (const tool of ['docker-registry', 'curl', 'wrk']) {
    if ((await run('sh', ['-c', `command -v ${tool}`])).code !== 0) throw new Error(`${tool} is needed (apt-get install -y docker-registry curl wrk)`);
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stowage-bench-docker-'));
  const targets: Target[] = [];
  try {
    log(`writing a ${SIZE / MiB} MiB random blob`);
    const blob = new BlobFile(dir);
    targets.push(await startStowage(dir), await startPeer(dir));
    const result: Record<string, { pushPatch: number[]; pushPut: number[]; pushCpu: number[]; pull: number[]; manifest?: { rps: number; errors: number; latency: string } }> = {};
    for (const t of targets) result[t.label] = { pushPatch: [], pushPut: [], pushCpu: [], pull: [] };
    const last = new Map<string, string>();
    // Interleaved, so a busy moment on the shared machine hits both.
    for (let i = 0; i < RUNS; i++) {
      for (const mode of ['patch', 'put'] as const) {
        for (const t of targets) {
          const cpu0 = cpuSeconds(t.pid);
          const { seconds: s, digest } = await push(t, blob, mode);
          last.set(t.label, digest);
          (mode === 'patch' ? result[t.label].pushPatch : result[t.label].pushPut).push(s);
          if (mode === 'patch') result[t.label].pushCpu.push(cpuSeconds(t.pid) - cpu0);
          log(`push (${mode}) ${t.label}: ${s.toFixed(2)} s`);
        }
      }
    }
    // Each one's last pushed blob is its image's layer.
    for (const t of targets) await pushImage(t, { digest: last.get(t.label)!, size: SIZE });
    for (const t of targets) await pull(t, last.get(t.label)!); // warm-up
    for (let i = 0; i < RUNS; i++) {
      for (const t of targets) {
        const v = await pull(t, last.get(t.label)!);
        result[t.label].pull.push(v);
        log(`pull ${t.label}: ${v.toFixed(0)} MB/s`);
      }
    }
    for (const t of targets) {
      await manifestRate({ ...t }).catch(() => undefined); // warm-up (JIT, caches)
      result[t.label].manifest = await manifestRate(t);
      log(`manifest GET ${t.label}: ${result[t.label].manifest!.rps.toFixed(0)}/s`);
    }

    const s = result.Stowage;
    const p = result['registry:2'];
    const rows = [
      [
        `push ${SIZE_LABEL}, PATCH (docker/podman), median s`,
        median(s.pushPatch),
        median(p.pushPatch),
        median(s.pushPatch) / median(p.pushPatch),
        `≤ ${TARGET.pushRatio}`,
        median(s.pushPatch) / median(p.pushPatch) <= TARGET.pushRatio,
      ],
      [
        `push ${SIZE_LABEL}, PUT (containerd), median s`,
        median(s.pushPut),
        median(p.pushPut),
        median(s.pushPut) / median(p.pushPut),
        `≤ ${TARGET.pushRatio}`,
        median(s.pushPut) / median(p.pushPut) <= TARGET.pushRatio,
      ],
      [
        `pull ${SIZE_LABEL}, median MB/s`,
        median(s.pull),
        median(p.pull),
        median(s.pull) / median(p.pull),
        `≥ ${TARGET.pullRatio}`,
        median(s.pull) / median(p.pull) >= TARGET.pullRatio,
      ],
      [
        `manifest GET by tag, ${CONNECTIONS} conns, req/s`,
        s.manifest!.rps,
        p.manifest!.rps,
        s.manifest!.rps / p.manifest!.rps,
        `≥ ${TARGET.manifestRatio}`,
        s.manifest!.rps / p.manifest!.rps >= TARGET.manifestRatio,
      ],
    ] as const;
    const lines = [
      '',
      `Docker registry bench: Stowage vs registry:2 (${os.cpus().length} CPUs, ${RUNS} runs, ${SIZE / MiB} MiB blob)`,
      `${'measure'.padEnd(46)} ${'Stowage'.padStart(10)} ${'registry:2'.padStart(11)} ${'ratio'.padStart(7)}  target`,
      ...rows.map(
        ([name, a, b, ratio, target, ok]) =>
          `${name.padEnd(46)} ${a.toFixed(2).padStart(10)} ${b.toFixed(2).padStart(11)} ${ratio.toFixed(2).padStart(7)}  ${target.padEnd(6)} ${ok ? 'PASS' : 'MISS'}`,
      ),
      `server CPU s per PATCH push (median): Stowage ${median(s.pushCpu).toFixed(2)}, registry:2 ${median(p.pushCpu).toFixed(2)}`,
      `manifest GET latency (avg): Stowage ${s.manifest!.latency}, registry:2 ${p.manifest!.latency}; non-2xx/timeouts: ${s.manifest!.errors} / ${p.manifest!.errors}`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
    mkdirSync(RESULTS, { recursive: true });
    const file = path.join(RESULTS, `docker-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), sizeBytes: SIZE, runs: RUNS, connections: CONNECTIONS, targets: TARGET, result, rows }, null, 2));
    process.stdout.write(`results: ${path.relative(ROOT, file)}\n`);
  } finally {
    for (const t of targets) await t.stop().catch(() => undefined);
    if (process.env.BENCH_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
    else log(`kept ${dir}`);
  }
}

main().catch((e) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
