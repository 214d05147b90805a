/**
 * Stowage benchmark, side by side with its peers, in one run on loopback (issue 2, "Performance"):
 *
 *  1. download of a 1 GiB raw file: Stowage (child process, SQLite + file blob store) vs nginx
 *     (sendfile) serving the same bytes; same client for both (curl -o /dev/null);
 *  2. upload (PUT) of that file vs node computing its sha256 alone (the ingest floor), with the
 *     server's RSS sampled every 50 ms during the upload;
 *  3. cold start (spawn → first 200 from /service/rest/v1/status) and idle RSS.
 *
 * Not a test: prints a table and writes JSON to bench/results/. `npm run bench`.
 * Environment: BENCH_SIZE_MB (default 1024), BENCH_RUNS (3), BENCH_COLD_RUNS (5),
 * BENCH_CPU_PROF=1 (also run the server under node --cpu-prof for one upload, then for the downloads, and
 * print the hot functions; profiles land in bench/results/profiles/),
 * BENCH_QUIET_WAIT (seconds to wait, before each phase, for the shared machine to be idle; 20),
 * BENCH_NODE_ARGS (extra node options for the measured server, e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`),
 * BENCH_SERVER_LOG (a file to receive the measured server's output),
 * BENCH_KEEP=1 (keep the temp dir),
 * BENCH_ONLY=start (only the start-up phase: cold starts, then restarts with the README's start
 * command `npm start` on a built checkout; no file, no peers; a few seconds per run).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = path.join(ROOT, 'dist/src/main.js');
const RESULTS = path.join(ROOT, 'bench/results');

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_SIZE_MB ?? 1024) * MiB;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 5);
const CPU_PROF = process.env.BENCH_CPU_PROF === '1';
const QUIET_WAIT_S = Number(process.env.BENCH_QUIET_WAIT ?? 20);
const PASSWORD = 'bench-admin-pw';
const AUTH = 'Basic ' + Buffer.from(`admin:${PASSWORD}`).toString('base64');
const REPO = 'bench';
const SIZE_LABEL = SIZE % 1024 ** 3 === 0 ? `${SIZE / 1024 ** 3} GiB` : `${SIZE / MiB} MiB`;

const TARGET = {
  downloadRatio: 0.9, // Stowage MB/s ÷ nginx MB/s, at least
  uploadRatio: 1.2, // upload time ÷ the parallel floor's time (PARALLEL_FLOOR), at most
  uploadRssMB: 100, // growth over the pre-upload baseline, below
  coldStartS: 1.5, // spawn → first 200, below
  idleRssMB: 80, // below
};
const ONLY_START = process.env.BENCH_ONLY === 'start';
/**
 * The reference upload the target is measured against (issue 10): plain node receiving the same
 * upload, computing the same digests in the same parallel way as Stowage (sha256 on the main
 * thread, sha1 and md5 on a worker thread) and writing the file: the practical floor on 2 cores.
 */
const PARALLEL_FLOOR = 'sha256&worker=sha1,md5';

// ---------------------------------------------------------------- helpers

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const min = (xs: number[]) => Math.min(...xs);
const max = (xs: number[]) => Math.max(...xs);
const mb = (bytes: number) => bytes / 1e6;
const log = (s: string) => process.stderr.write(`  · ${s}\n`);

/** Whole-machine CPU counters from /proc/stat (jiffies): idle (+ iowait) and total. */
function cpuStat(): { idle: number; total: number } {
  const v = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { idle: v[3] + (v[4] ?? 0), total: v.reduce((a, b) => a + b, 0) };
}

async function idleFraction(ms: number): Promise<number> {
  const a = cpuStat();
  await sleep(ms);
  const b = cpuStat();
  return (b.idle - a.idle) / (b.total - a.total || 1);
}

/**
 * This machine is shared (tests of other work run beside the bench): before each phase wait, up
 * to QUIET_WAIT_S, for two consecutive seconds with the CPUs at least 90% idle. Returns the idle
 * fraction last seen, which the report shows next to the figures it may have skewed.
 */
async function waitQuiet(phase: string): Promise<number> {
  const deadline = Date.now() + QUIET_WAIT_S * 1000;
  let calm = 0;
  for (;;) {
    const f = await idleFraction(1000);
    calm = f >= 0.9 ? calm + 1 : 0;
    if (calm >= 2) return f;
    if (Date.now() >= deadline) {
      log(`${phase}: the machine is still busy (CPUs ${(100 * f).toFixed(0)}% idle) after ${QUIET_WAIT_S} s; measuring anyway`);
      return f;
    }
  }
}

function which(cmd: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin']) {
    const p = path.join(dir, cmd);
    if (dir && existsSync(p)) return p;
  }
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** VmRSS of a process in bytes (null once it is gone). */
function rss(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Samples a process's RSS every `everyMs` until stopped. */
function rssSampler(pid: number, everyMs = 50) {
  const samples: number[] = [];
  const take = () => {
    const v = rss(pid);
    if (v !== null) samples.push(v);
  };
  take();
  const t = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(t);
      take();
      return samples;
    },
  };
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** One HTTP request with a small body, answered in full (REST calls, status polls). */
function request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false, timeout: opts.timeoutMs ?? 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Flushes dirty pages so one run's writeback does not land in the next run's timing. */
function sync(): void {
  try {
    execFileSync('sync');
  } catch {
    /* best effort */
  }
}

// ---------------------------------------------------------------- processes we start

const children = new Set<ChildProcess>();
function track(p: ChildProcess): ChildProcess {
  children.add(p);
  p.on('exit', () => children.delete(p));
  return p;
}
function killAll(): void {
  for (const p of children) if (p.pid && p.exitCode === null) p.kill('SIGKILL');
}

interface Server {
  url: string;
  pid: number;
  proc: ChildProcess;
  dataDir: string;
  /** Wall time from spawn to the first 200 from /status, seconds. */
  startS: number;
  output(): string;
  stop(): Promise<void>;
}

/** The server process under `pid` (itself, or the node that `npm start` runs through a shell). */
function serverPid(pid: number): number {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (path.basename(argv[0]).startsWith('node') && argv.some((a) => a.endsWith('dist/src/main.js'))) return pid;
    for (const c of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) {
      const found = serverPid(Number(c));
      if (found) return found;
    }
  } catch {
    /* gone */
  }
  return 0;
}

/** CPU time (user + system) a process has used, seconds. */
function cpuOf(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** `npm start` (the README's start command) instead of `node dist/src/main.js serve`. */
async function startStowage(dataDir: string, nodeArgs: string[] = [], viaNpm = false): Promise<Server> {
  const port = await freePort();
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/root',
    STOWAGE_DATA_DIR: dataDir,
    STOWAGE_HTTP_HOST: '127.0.0.1',
    STOWAGE_HTTP_PORT: String(port),
    STOWAGE_ADMIN_PASSWORD: PASSWORD,
    STOWAGE_LOG_LEVEL: 'warn',
  };
  const url = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  const proc = track(
    viaNpm
      ? spawn('npm', ['start', '--silent'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(process.execPath, [...nodeArgs, MAIN, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`Stowage exited during start:\n${out}`);
    try {
      if ((await request(url + '/service/rest/v1/status', { timeoutMs: 2000 })).status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`Stowage did not become ready in 30 s:\n${out}`);
    await sleep(5);
  }
  const startS = (performance.now() - t0) / 1000;
  const pid = viaNpm ? serverPid(proc.pid!) : proc.pid!;
  return {
    url,
    pid,
    proc,
    dataDir,
    startS,
    output: () => out,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        if (pid && pid !== proc.pid) process.kill(pid, 'SIGTERM');
        else proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}

const REPO_BODY = {
  name: REPO,
  online: true,
  storage: { blobStoreName: 'default', strictContentTypeValidation: false, writePolicy: 'ALLOW' },
};

/** The raw hosted repository: through the REST API, or (API not there) created in-process before the server starts. */
async function createRepoInProcess(dataDir: string): Promise<void> {
  const { loadConfig } = await import('../src/config/config.js');
  const { Stowage } = await import('../src/stowage.js');
  const { formats } = await import('../formats/index.js');
  const app = await Stowage.open(loadConfig({ STOWAGE_DATA_DIR: dataDir, STOWAGE_ADMIN_PASSWORD: PASSWORD, STOWAGE_LOG_LEVEL: 'error' }), formats);
  try {
    if (!(await app.repositories.find(REPO))) await app.repositories.create(app.repositories.parse('raw', 'hosted', REPO_BODY));
  } finally {
    await app.close();
  }
}

async function benchServer(dataDir: string, nodeArgs: string[] = []): Promise<{ server: Server; repoVia: string }> {
  let server = await startStowage(dataDir, nodeArgs);
  const r = await request(server.url + '/service/rest/v1/repositories/raw/hosted', {
    method: 'POST',
    headers: { Authorization: AUTH, 'Content-Type': 'application/json' },
    body: JSON.stringify(REPO_BODY),
  });
  if (r.status >= 200 && r.status < 300) return { server, repoVia: 'REST API' };
  log(`POST /service/rest/v1/repositories/raw/hosted answered ${r.status}; creating the repository in-process instead`);
  await server.stop();
  await createRepoInProcess(dataDir);
  server = await startStowage(dataDir, nodeArgs);
  return { server, repoVia: `in-process (REST answered ${r.status})` };
}

interface Nginx {
  url: string;
  stop(): Promise<void>;
}

async function startNginx(bin: string, dir: string, root: string): Promise<Nginx> {
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  mkdirSync(path.join(dir, 'logs'), { recursive: true });
  const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${path.join(dir, t)};`).join('\n');
  writeFileSync(
    conf,
    `${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_processes 1;
daemon off;
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'logs/error.log')} warn;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
${temps}
  server {
    listen 127.0.0.1:${port};
    root ${root};
  }
}
`,
  );
  const proc = track(spawn(bin, ['-e', path.join(dir, 'logs/error.log'), '-p', dir, '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`nginx exited: ${out}`);
    try {
      await request(url + '/', { timeoutMs: 1000 });
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`nginx did not start: ${out}`);
      await sleep(20);
    }
  }
  return {
    url,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGQUIT');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system, every thread) a process has used so far. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 utime, 15 stime
  } catch {
    return NaN;
  }
}

/**
 * The reference: the same path written in plain node (http + fs streams + crypto, one thread, no
 * framework, no database), so the table can say how much of a gap is Stowage and how much is
 * node, loopback and the page cache. GET ?hwm=N serves the file read in N-byte chunks;
 * PUT ?algs=a,b hashes the body with those digests while writing it to a file, then deletes it.
 */
const REF_SCRIPT = `
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { Worker } from 'node:worker_threads';
const [file, dir] = process.argv.slice(1);
const size = fs.statSync(file).size;
let n = 0;

// The parallel floor (issue 10): the bytes re-cut into 1 MiB slots of shared memory, as Stowage's
// ingest does; the main thread hashes its digests and writes each slot, a worker thread (started
// before the upload) hashes the others from the same slot; a slot is reused once both are done.
const SLOT = 1024 * 1024;
const worker = new Worker(
  // import(), not require: the eval'd worker is a module here, as its parent (--input-type=module).
  "Promise.all([import('node:worker_threads'), import('node:crypto')]).then(([{ parentPort }, { createHash }]) => {" +
    "let hs = []; const views = new Map();" +
    "parentPort.on('message', (m) => {" +
    " if (m.op === 'start') hs = m.algs.map((a) => createHash(a));" +
    " else if (m.op === 'slot') views.set(m.slot, new Uint8Array(m.shared));" +
    " else if (m.op === 'data') { const v = views.get(m.slot).subarray(0, m.length); for (const h of hs) h.update(v); parentPort.postMessage({ op: 'ack', slot: m.slot }); }" +
    " else if (m.op === 'end') parentPort.postMessage({ op: 'done', digests: hs.map((h) => h.digest('hex')) });" +
    "}); });",
  { eval: true },
);
const slots = [];
for (let i = 0; i < 16; i++) {
  const shared = new SharedArrayBuffer(SLOT);
  slots.push({ i, buf: Buffer.from(shared), left: 0 });
  worker.postMessage({ op: 'slot', slot: i, shared });
}
const free = [...slots];
const waiters = [];
let onDone = null;
const release = (slot) => {
  if (--slot.left > 0) return;
  free.push(slot);
  waiters.shift()?.();
};
worker.on('message', (m) => (m.op === 'ack' ? release(slots[m.slot]) : onDone?.(m.digests)));
const take = async () => {
  while (!free.length) await new Promise((r) => waiters.push(r));
  return free.pop();
};

async function parallelPut(req, out, mainAlgs, workerAlgs) {
  const main = mainAlgs.map((a) => createHash(a));
  worker.postMessage({ op: 'start', algs: workerAlgs });
  const fh = await fs.promises.open(out, 'w');
  let cur = null;
  let fill = 0;
  let pos = 0;
  let failed = null;
  const flush = () => {
    const slot = cur;
    const view = slot.buf.subarray(0, fill);
    cur = null;
    slot.left = 2;
    for (const h of main) h.update(view);
    worker.postMessage({ op: 'data', slot: slot.i, length: view.length });
    fh.write(view, 0, view.length, pos).then(() => release(slot), (e) => { failed = e; release(slot); });
    pos += view.length;
    fill = 0;
  };
  for await (const chunk of req) {
    for (let off = 0; off < chunk.length; ) {
      if (!cur) cur = await take();
      const k = Math.min(chunk.length - off, SLOT - fill);
      chunk.copy(cur.buf, fill, off, off + k);
      fill += k;
      off += k;
      if (fill === SLOT) flush();
    }
  }
  if (cur && fill) flush();
  else if (cur) free.push(cur);
  while (free.length < slots.length) await new Promise((r) => waiters.push(r));
  const digests = await new Promise((r) => {
    onDone = r;
    worker.postMessage({ op: 'end' });
  });
  for (const h of main) digests.push(h.digest('hex'));
  await fh.close();
  if (failed) throw failed;
  return digests;
}

const server = http.createServer(async (req, res) => {
  const u = new URL(req.url, 'http://x');
  try {
    if (req.method === 'GET') {
      res.writeHead(200, { 'Content-Length': size, 'Content-Type': 'application/octet-stream' });
      await pipeline(fs.createReadStream(file, { highWaterMark: Number(u.searchParams.get('hwm')) }), res);
      return;
    }
    const out = path.join(dir, 'up-' + n++);
    const onWorker = (u.searchParams.get('worker') || '').split(',').filter(Boolean);
    if (onWorker.length) {
      await parallelPut(req, out, (u.searchParams.get('algs') || '').split(',').filter(Boolean), onWorker);
      fs.rmSync(out);
      res.writeHead(201).end();
      return;
    }
    const hs = (u.searchParams.get('algs') || '').split(',').filter(Boolean).map((a) => createHash(a));
    const hash = new Transform({ highWaterMark: 256 * 1024, transform(c, _e, cb) { for (const h of hs) h.update(c); cb(null, c); } });
    await pipeline(req, hash, fs.createWriteStream(out, { highWaterMark: 256 * 1024 }));
    for (const h of hs) h.digest('hex');
    fs.rmSync(out);
    res.writeHead(201).end();
  } catch {
    res.destroy();
  }
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

interface RefServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

async function startReference(file: string, dir: string): Promise<RefServer> {
  mkdirSync(dir, { recursive: true });
  const proc = track(spawn(process.execPath, ['--input-type=module', '-e', REF_SCRIPT, file, dir], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    proc.stderr!.on('data', (d) => (out += d));
    proc.on('exit', () => reject(new Error(`reference server exited: ${out}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: proc.pid!,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** Runs `f` and reports its result with the CPU seconds `pid` spent meanwhile. */
async function withCpu<T>(pid: number | null, f: () => Promise<T>): Promise<T & { cpu: number }> {
  const c0 = pid ? cpuSeconds(pid) : NaN;
  const r = await f();
  return { ...r, cpu: pid ? cpuSeconds(pid) - c0 : NaN };
}

// ---------------------------------------------------------------- clients

const CURL = which('curl');

/** Downloads a URL and discards the bytes; returns seconds and bytes. curl when present, node otherwise (same client for every peer). */
async function download(url: string): Promise<{ s: number; bytes: number }> {
  if (CURL) {
    const r = await run(CURL, ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}', url]);
    const [code, size, total] = r.stdout.trim().split(' ');
    if (r.code !== 0 || code !== '200') throw new Error(`download ${url}: curl exit ${r.code}, HTTP ${code}: ${r.stderr}`);
    return { s: Number(total), bytes: Number(size) };
  }
  const t0 = performance.now();
  const bytes = await new Promise<number>((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`download ${url}: HTTP ${res.statusCode}`));
        let n = 0;
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => resolve(n));
        res.on('error', reject);
      })
      .on('error', reject);
  });
  return { s: (performance.now() - t0) / 1000, bytes };
}

/** PUTs a file streamed from disk; returns seconds (request start → response). */
async function upload(url: string, file: string, auth: boolean): Promise<{ s: number; status: number }> {
  if (CURL) {
    const r = await run(CURL, [
      '-sS',
      '-X',
      'PUT',
      '-T',
      file,
      '-H',
      'Expect:',
      '-H',
      'Content-Type: application/octet-stream',
      ...(auth ? ['-H', `Authorization: ${AUTH}`] : []),
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{time_total}',
      url,
    ]);
    const [code, total] = r.stdout.trim().split(' ');
    if (r.code !== 0) throw new Error(`upload ${url}: curl exit ${r.code}: ${r.stderr}`);
    return { s: Number(total), status: Number(code) };
  }
  const t0 = performance.now();
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'PUT', agent: false, headers: { ...(auth ? { Authorization: AUTH } : {}), 'Content-Length': String(SIZE), 'Content-Type': 'application/octet-stream' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    createReadStream(file, { highWaterMark: MiB }).pipe(req);
  });
  return { s: (performance.now() - t0) / 1000, status };
}

/**
 * Node hashing the file in its own process (as the server is its own process): read from disk in
 * 1 MiB chunks, update the named digests. Timed inside the process (node's own start excluded).
 */
const HASH_SCRIPT = `
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
const [file, algs] = process.argv.slice(1);
const hs = algs ? algs.split(',').map((a) => createHash(a)) : [];
const t0 = performance.now();
let n = 0;
for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) { n += c.length; for (const h of hs) h.update(c); }
const hex = hs.map((h) => h.digest('hex'));
process.stdout.write(JSON.stringify({ s: (performance.now() - t0) / 1000, bytes: n, hex }));
`;
async function hashFile(file: string, algs: string[]): Promise<{ s: number; hex: string[] }> {
  const r = await run(process.execPath, ['--input-type=module', '-e', HASH_SCRIPT, file, algs.join(',')]);
  if (r.code !== 0) throw new Error(`hash child failed: ${r.stderr}`);
  const j = JSON.parse(r.stdout) as { s: number; bytes: number; hex: string[] };
  if (j.bytes !== SIZE) throw new Error(`hash child read ${j.bytes} bytes`);
  return j;
}

/** The commit measured, and whether the working tree differs from it (figures belong to the code that ran). */
async function gitState(): Promise<string> {
  try {
    const head = (await run('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'])).stdout.trim();
    const dirty = (await run('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no'])).stdout.trim().split('\n').filter(Boolean).length;
    return head ? `${head}${dirty ? ` + ${dirty} modified file(s) in the working tree` : ''}` : 'unknown';
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------- cpu profile summary

interface ThreadProfile {
  file: string;
  busyMs: number;
  top: { fn: string; ms: number; pct: number }[];
}

/** Self time per function of one .cpuprofile (one thread), idle excluded; pct is of the thread's busy time. */
function summariseProfile(file: string, top = 12): ThreadProfile {
  interface Node {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const selfUs = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    const d = prof.timeDeltas[i + 1] ?? 0; // the time until the next sample is this sample's
    selfUs.set(prof.samples[i], (selfUs.get(prof.samples[i]) ?? 0) + d);
  }
  const byFn = new Map<string, number>();
  for (const n of prof.nodes) {
    const us = selfUs.get(n.id) ?? 0;
    const f = n.callFrame;
    if (!us || f.functionName === '(idle)') continue;
    const where = f.url ? `${f.url.replace(/^file:\/\//, '').replace(ROOT + '/', '')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'}${where ? ' ' + where : ''}`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
  }
  const busy = [...byFn.values()].reduce((a, b) => a + b, 0) || 1;
  return {
    file: path.basename(file),
    busyMs: busy / 1000,
    top: [...byFn.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, us]) => ({ fn, ms: us / 1000, pct: (100 * us) / busy })),
  };
}

// ---------------------------------------------------------------- the run

async function main(): Promise<void> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first (npm run bench does)`);
  const nginxBin = which('nginx');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'stowage-bench-'));
  const startedAt = new Date();
  const cleanup = () => {
    killAll();
    if (process.env.BENCH_KEEP !== '1') rmSync(tmp, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  process.on('SIGTERM', () => {
    cleanup();
    process.exit(143);
  });

  const env = {
    node: process.version,
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? '?',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    loadavgAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
    client: CURL ? `curl (${execFileSync(CURL, ['--version']).toString().split(' ')[1]})` : 'node http',
    nginx: nginxBin ? (await run(nginxBin, ['-v'])).stderr.trim().replace(/^nginx version: /, '') : null,
    git: await gitState(),
  };

  if (ONLY_START) {
    try {
      await startupOnly(tmp, env);
    } finally {
      cleanup();
    }
    return;
  }

  const t0 = performance.now();
  try {
    // ---- the file
    const file = path.join(tmp, 'www', 'big.bin');
    mkdirSync(path.dirname(file), { recursive: true });
    log(`writing a ${SIZE / MiB} MiB random file to ${file}`);
    {
      const fd = openSync(file, 'w');
      const buf = Buffer.allocUnsafe(16 * MiB);
      for (let left = SIZE; left > 0; left -= buf.length) {
        const n = Math.min(left, buf.length);
        randomFillSync(buf, 0, n);
        writeSync(fd, buf, 0, n);
      }
      closeSync(fd);
    }
    sync();

    // ---- 3. cold start, first (a quiet machine, nothing else of ours running)
    const idleBefore: Record<string, number> = {};
    idleBefore.coldStart = await waitQuiet('cold start');
    const cold: { startS: number; idleRssMB: number }[] = [];
    for (let i = 0; i < COLD_RUNS; i++) {
      const dir = path.join(tmp, `cold-${i}`);
      const s = await startStowage(dir);
      await sleep(1000); // idle: start-up garbage collected or not, nothing in flight
      const r = rss(s.pid) ?? NaN;
      await s.stop();
      cold.push({ startS: s.startS, idleRssMB: mb(r) });
      log(`cold start ${i + 1}/${COLD_RUNS}: ${s.startS.toFixed(3)} s, idle RSS ${mb(r).toFixed(1)} MB`);
      rmSync(dir, { recursive: true, force: true });
    }

    // ---- the server under test
    const { server, repoVia } = await benchServer(path.join(tmp, 'data'), (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean));
    log(`Stowage ${server.url} (pid ${server.pid}), repository '${REPO}' created via ${repoVia}`);

    // ---- 2. upload vs the sha256 floor, interleaved (with the plain-node references) so background noise hits all alike
    const ref = await startReference(file, path.join(tmp, 'ref'));
    idleBefore.upload = await waitQuiet('upload');
    const series = new Map<string, { s: number[]; cpu: number[] }>();
    const note = (name: string, s: number, cpu: number) => {
      const x = series.get(name) ?? { s: [], cpu: [] };
      x.s.push(s);
      x.cpu.push(cpu);
      series.set(name, x);
    };
    const uploads: { s: number; cpu: number; status: number; baselineMB: number; peakMB: number; growthMB: number; samples: number }[] = [];
    let sha256 = '';
    for (let i = 0; i < RUNS; i++) {
      sync();
      const f = await hashFile(file, ['sha256']);
      sha256 = f.hex[0];
      note('sha256', f.s, f.s);
      log(`sha256 floor ${i + 1}/${RUNS}: ${f.s.toFixed(3)} s`);

      sync();
      await sleep(300);
      const baseline = rss(server.pid)!;
      const sampler = rssSampler(server.pid, 50);
      const u = await withCpu(server.pid, () => upload(`${server.url}/repository/${REPO}/upload/run-${i + 1}.bin`, file, true));
      const samples = sampler.stop();
      if (u.status !== 201 && u.status !== 200) throw new Error(`upload answered HTTP ${u.status}\n${server.output()}`);
      const peak = max(samples);
      uploads.push({ s: u.s, cpu: u.cpu, status: u.status, baselineMB: mb(baseline), peakMB: mb(peak), growthMB: mb(peak - baseline), samples: samples.length });
      note('stowage-up', u.s, u.cpu);
      log(`upload ${i + 1}/${RUNS}: ${u.s.toFixed(3)} s (HTTP ${u.status}, server CPU ${u.cpu.toFixed(2)} s), RSS ${mb(baseline).toFixed(1)} → peak ${mb(peak).toFixed(1)} MB`);

      for (const algs of ['sha256', 'sha256,sha1,md5', PARALLEL_FLOOR]) {
        sync();
        const r = await withCpu(ref.pid, () => upload(`${ref.url}/?algs=${algs}`, file, false));
        if (r.status !== 201) throw new Error(`reference upload answered HTTP ${r.status}`);
        note(`ref-up-${algs}`, r.s, r.cpu);
        log(`node reference upload (${algs}) ${i + 1}/${RUNS}: ${r.s.toFixed(3)} s (CPU ${r.cpu.toFixed(2)} s)`);
      }
    }
    // The stored digest is the file's (the bytes arrived whole).
    const head = await request(`${server.url}/repository/${REPO}/upload/run-1.bin`, { method: 'HEAD' });
    if (head.status !== 200 || head.headers['x-checksum-sha256'] !== sha256) {
      throw new Error(`stored sha256 ${head.headers['x-checksum-sha256']} (HTTP ${head.status}) differs from the file's ${sha256}`);
    }

    // What the server hashes, measured the floor's way (one thread, from the page cache).
    log('digest costs: read alone, each digest, all three in one pass');
    const breakdown: Record<string, number> = {};
    for (const algs of [[], ['sha1'], ['md5'], ['sha256', 'sha1', 'md5']]) {
      breakdown[algs.length ? algs.join('+') : 'read only'] = (await hashFile(file, algs)).s;
    }
    breakdown['sha256'] = median(series.get('sha256')!.s);

    // ---- 1. download: Stowage vs nginx (and the plain-node references), same client, interleaved, one warm-up each
    idleBefore.download = await waitQuiet('download');
    {
      // The server should be idle now; CPU spent here is background work that would skew the downloads.
      const c0 = cpuSeconds(server.pid);
      await sleep(2000);
      const bg = cpuSeconds(server.pid) - c0;
      if (bg > 0.1) log(`Stowage used ${bg.toFixed(2)} CPU s in 2 s with no request in flight`);
    }
    const sources: [string, string, number | null][] = [];
    let nginx: Nginx | null = null;
    if (nginxBin) nginx = await startNginx(nginxBin, path.join(tmp, 'nginx'), path.dirname(file));
    else log('nginx not found (apt-get install -y nginx): the download has no peer');
    if (nginx) sources.push(['nginx', nginx.url + '/big.bin', null]);
    sources.push(['stowage-down', `${server.url}/repository/${REPO}/upload/run-1.bin`, server.pid]);
    sources.push(['ref-down-256k', `${ref.url}/big.bin?hwm=${256 * 1024}`, ref.pid]);
    sources.push(['ref-down-1m', `${ref.url}/big.bin?hwm=${MiB}`, ref.pid]);
    sync();
    for (const [, url] of sources) await download(url);
    for (let i = 0; i < RUNS; i++) {
      for (const [name, url, pid] of sources) {
        const d = await withCpu(pid, () => download(url));
        if (d.bytes !== SIZE) throw new Error(`${name} sent ${d.bytes} of ${SIZE} bytes`);
        note(name, d.s, d.cpu);
        log(`download ${name} ${i + 1}/${RUNS}: ${d.s.toFixed(3)} s = ${(mb(SIZE) / d.s).toFixed(0)} MB/s${pid ? `, server CPU ${d.cpu.toFixed(2)} s` : ''}`);
      }
    }
    await nginx?.stop();
    await ref.stop();
    await server.stop();
    if (process.env.BENCH_SERVER_LOG) writeFileSync(process.env.BENCH_SERVER_LOG, server.output());

    // ---- optional: the server under --cpu-prof, one process for an upload, a second (same data) for downloads
    const profiles: { phase: string; threads: ThreadProfile[] }[] = [];
    if (CPU_PROF) {
      const profData = path.join(tmp, 'data-prof');
      const profArgs = (dir: string) => ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=500'];
      const collect = (phase: string, dir: string, pid: number) => {
        // Only that server's own threads (a REST fallback restarts it once).
        const files = readdirSync(dir)
          .filter((f) => f.endsWith('.cpuprofile') && f.includes(`.${pid}.`))
          .sort();
        const out = path.join(RESULTS, 'profiles', phase);
        rmSync(out, { recursive: true, force: true });
        mkdirSync(out, { recursive: true });
        for (const f of files) execFileSync('cp', [path.join(dir, f), path.join(out, f)]);
        return files.map((f) => summariseProfile(path.join(dir, f)));
      };
      {
        const dir = path.join(tmp, 'prof-upload');
        const { server: ps } = await benchServer(profData, profArgs(dir));
        const u = await upload(`${ps.url}/repository/${REPO}/prof.bin`, file, true);
        log(`profiled upload: ${u.s.toFixed(3)} s (HTTP ${u.status})`);
        await ps.stop();
        profiles.push({ phase: `upload (one PUT, ${u.s.toFixed(2)} s)`, threads: collect('upload', dir, ps.pid) });
      }
      {
        const dir = path.join(tmp, 'prof-download');
        const ps = await startStowage(profData, profArgs(dir));
        const times: number[] = [];
        for (let i = 0; i < RUNS; i++) times.push((await download(`${ps.url}/repository/${REPO}/prof.bin`)).s);
        log(`profiled downloads: ${times.map((t) => t.toFixed(3)).join(' / ')} s`);
        await ps.stop();
        profiles.push({ phase: `download (${RUNS} GETs, ${times.map((t) => t.toFixed(2)).join(' / ')} s)`, threads: collect('download', dir, ps.pid) });
      }
    }

    // ---- report
    const S = (name: string) => series.get(name) ?? { s: [], cpu: [] };
    const rate = (s: number) => mb(SIZE) / s;
    const coldMed = median(cold.map((c) => c.startS));
    const idleMed = median(cold.map((c) => c.idleRssMB));
    const up = S('stowage-up').s;
    const floorS = S('sha256').s;
    const parS = S(`ref-up-${PARALLEL_FLOOR}`).s;
    const dlS = S('stowage-down').s.map(rate);
    const dlN = S('nginx').s.map(rate);
    const growth = max(uploads.map((u) => u.growthMB));
    const r = {
      dlBest: dlN.length ? max(dlS) / max(dlN) : NaN,
      dlMed: dlN.length ? median(dlS) / median(dlN) : NaN,
      upBest: min(up) / min(parS),
      upMed: median(up) / median(parS),
      upSha256Best: min(up) / min(floorS),
      upSha256Med: median(up) / median(floorS),
    };
    const verdict = (ok: boolean | null) => (ok === null ? 'n/a' : ok ? 'PASS' : 'MISS');
    const rows: string[][] = [
      ['measure', 'Stowage', 'peer', 'ratio', 'target', 'result'],
      [
        `download ${SIZE_LABEL}, best`,
        `${max(dlS).toFixed(0)} MB/s`,
        dlN.length ? `nginx ${max(dlN).toFixed(0)} MB/s` : 'nginx n/a',
        `${r.dlBest.toFixed(2)}×`,
        `≥ ${TARGET.downloadRatio}×`,
        verdict(dlN.length ? r.dlBest >= TARGET.downloadRatio : null),
      ],
      [
        `download ${SIZE_LABEL}, median`,
        `${median(dlS).toFixed(0)} MB/s`,
        dlN.length ? `nginx ${median(dlN).toFixed(0)} MB/s` : 'nginx n/a',
        `${r.dlMed.toFixed(2)}×`,
        `≥ ${TARGET.downloadRatio}×`,
        verdict(dlN.length ? r.dlMed >= TARGET.downloadRatio : null),
      ],
      [
        `upload ${SIZE_LABEL}, best`,
        `${min(up).toFixed(2)} s (${rate(min(up)).toFixed(0)} MB/s)`,
        `parallel floor ${min(parS).toFixed(2)} s (${rate(min(parS)).toFixed(0)} MB/s)`,
        `${r.upBest.toFixed(2)}×`,
        `≤ ${TARGET.uploadRatio}×`,
        verdict(r.upBest <= TARGET.uploadRatio),
      ],
      [
        `upload ${SIZE_LABEL}, median`,
        `${median(up).toFixed(2)} s (${rate(median(up)).toFixed(0)} MB/s)`,
        `parallel floor ${median(parS).toFixed(2)} s (${rate(median(parS)).toFixed(0)} MB/s)`,
        `${r.upMed.toFixed(2)}×`,
        `≤ ${TARGET.uploadRatio}×`,
        verdict(r.upMed <= TARGET.uploadRatio),
      ],
      [
        `upload ${SIZE_LABEL}, median, vs sha256 alone`,
        `${median(up).toFixed(2)} s`,
        `sha256 ${median(floorS).toFixed(2)} s (${rate(median(floorS)).toFixed(0)} MB/s)`,
        `${r.upSha256Med.toFixed(2)}×`,
        '(reference)',
        '',
      ],
      [
        'upload RSS growth, worst run',
        `${growth.toFixed(1)} MB`,
        `(baseline ${uploads[0].baselineMB.toFixed(1)} MB)`,
        '',
        `< ${TARGET.uploadRssMB} MB`,
        verdict(growth < TARGET.uploadRssMB),
      ],
      [
        `cold start, median of ${COLD_RUNS}`,
        `${coldMed.toFixed(3)} s`,
        `(min ${min(cold.map((c) => c.startS)).toFixed(3)}, max ${max(cold.map((c) => c.startS)).toFixed(3)})`,
        '',
        `< ${TARGET.coldStartS} s`,
        verdict(coldMed < TARGET.coldStartS),
      ],
      [
        `idle RSS, median of ${COLD_RUNS}`,
        `${idleMed.toFixed(1)} MB`,
        `(max ${max(cold.map((c) => c.idleRssMB)).toFixed(1)} MB)`,
        '',
        `< ${TARGET.idleRssMB} MB`,
        verdict(idleMed < TARGET.idleRssMB),
      ],
    ];
    const table = (t: string[][]) => {
      const widths = t[0].map((_, c) => Math.max(...t.map((row) => row[c].length)));
      const line = (row: string[]) =>
        row
          .map((cell, c) => cell.padEnd(widths[c]))
          .join('  ')
          .trimEnd();
      return [line(t[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...t.slice(1).map(line)];
    };
    const fmtRuns = (xs: number[], d: number) => xs.map((x) => x.toFixed(d)).join(' / ');
    const refRow = (label: string, name: string, kind: 'up' | 'down', vs: number): string[] => {
      const x = S(name);
      if (!x.s.length) return [label, 'n/a', '', '', '', ''];
      const med = median(x.s);
      const cpu = x.cpu.every((c) => Number.isNaN(c)) ? '' : `${median(x.cpu).toFixed(2)} s`;
      return [
        label,
        kind === 'up' ? `${med.toFixed(2)} s` : `${rate(med).toFixed(0)} MB/s`,
        kind === 'up' ? fmtRuns(x.s, 2) : fmtRuns(x.s.map(rate), 0),
        cpu,
        `${(kind === 'up' ? med / vs : rate(med) / vs).toFixed(2)}×`,
      ];
    };
    const floorMed = median(floorS);
    const nginxMed = dlN.length ? median(dlN) : NaN;
    const refs: string[][] = [
      ['path (1 GiB unless stated)', 'median', 'runs', 'server CPU (median)', 'vs floor / nginx'],
      ['upload: node sha256 of the file (floor)', `${floorMed.toFixed(2)} s`, fmtRuns(floorS, 2), `${floorMed.toFixed(2)} s`, '1.00×'],
      refRow('upload: plain node http → sha256 → file', 'ref-up-sha256', 'up', floorMed),
      refRow('upload: plain node http → sha256+sha1+md5 → file', 'ref-up-sha256,sha1,md5', 'up', floorMed),
      refRow('upload: plain node http → sha256 | worker sha1+md5 → file (parallel floor)', `ref-up-${PARALLEL_FLOOR}`, 'up', floorMed),
      refRow('upload: Stowage PUT', 'stowage-up', 'up', floorMed),
      refRow('download: nginx sendfile', 'nginx', 'down', nginxMed),
      refRow('download: plain node http ← fs stream, 256 KiB reads', 'ref-down-256k', 'down', nginxMed),
      refRow('download: plain node http ← fs stream, 1 MiB reads', 'ref-down-1m', 'down', nginxMed),
      refRow('download: Stowage GET', 'stowage-down', 'down', nginxMed),
    ].map((row) => row.slice(0, 5));
    if (SIZE !== 1024 ** 3) refs[0][0] = `path (${SIZE_LABEL})`;

    const out: string[] = [];
    out.push(`Stowage bench — ${SIZE_LABEL} raw file on loopback, ${RUNS} runs each (interleaved with the peers), ${new Date().toISOString()}`);
    out.push(
      `machine: ${env.cpus} × ${env.cpu}, ${env.memGiB} GiB, node ${env.node}; load avg at start ${env.loadavgAtStart.join(' ')} (other work on the machine skews every figure)`,
    );
    out.push(
      `CPUs idle just before each phase (other sessions share this machine): ${Object.entries(idleBefore)
        .map(([k, v]) => `${k} ${(100 * v).toFixed(0)}%`)
        .join(', ')}`,
    );
    out.push(`code: ${env.git}`);
    out.push(
      `client: ${env.client} for every transfer; peer: ${env.nginx ?? 'nginx missing'} (1 worker, sendfile on); Stowage: child process, SQLite + file blob store, repository created via ${repoVia}`,
    );
    out.push('');
    out.push(...table(rows));
    out.push('');
    out.push(
      `upload RSS MB: peak ${fmtRuns(
        uploads.map((u) => u.peakMB),
        1,
      )} over pre-upload baseline ${fmtRuns(
        uploads.map((u) => u.baselineMB),
        1,
      )}`,
    );
    out.push(
      `cold start s: ${fmtRuns(
        cold.map((c) => c.startS),
        3,
      )};  idle RSS MB: ${fmtRuns(
        cold.map((c) => c.idleRssMB),
        1,
      )}`,
    );
    out.push('');
    out.push('references, not targets: the same transfers through plain node (one thread, no framework, no database), same client:');
    out.push(...table(refs));
    out.push('');
    out.push(
      `digest costs in node (this file from the page cache, 1 MiB reads, one thread): ` +
        Object.entries(breakdown)
          .map(([k, v]) => `${k} ${v.toFixed(2)} s (${rate(v).toFixed(0)} MB/s)`)
          .join(', '),
    );
    out.push(
      `  computing all three digests in one pass is ${(breakdown['sha256+sha1+md5'] / breakdown['sha256']).toFixed(2)}× the sha256 floor; md5 alone is ${(breakdown['md5'] / breakdown['sha256']).toFixed(2)}×`,
    );
    for (const p of profiles) {
      out.push('');
      out.push(`server CPU profile, ${p.phase}: node --cpu-prof of a fresh server process (start-up included), self time per function, idle excluded, per thread:`);
      for (const t of p.threads) {
        out.push(`  thread ${t.file}: busy ${t.busyMs.toFixed(0)} ms`);
        for (const f of t.top) out.push(`    ${f.pct.toFixed(1).padStart(5)}%  ${f.ms.toFixed(0).padStart(6)} ms  ${f.fn}`);
      }
    }
    out.push('');
    out.push(
      `total bench time ${((performance.now() - t0) / 1000).toFixed(0)} s; load avg at end ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );
    process.stdout.write(out.join('\n') + '\n');

    mkdirSync(RESULTS, { recursive: true });
    const json = {
      startedAt: startedAt.toISOString(),
      env: { ...env, loadavgAtEnd: os.loadavg() },
      sizeBytes: SIZE,
      runs: RUNS,
      repoCreatedVia: repoVia,
      idleBeforePhase: idleBefore,
      targets: TARGET,
      download: { stowageMBps: dlS, nginxMBps: dlN, ratioBest: r.dlBest, ratioMedian: r.dlMed },
      upload: {
        runs: uploads,
        parallelFloorS: parS,
        sha256FloorS: floorS,
        ratioBest: r.upBest,
        ratioMedian: r.upMed,
        ratioSha256Best: r.upSha256Best,
        ratioSha256Median: r.upSha256Med,
        rssGrowthWorstMB: growth,
      },
      /** Every timed transfer: seconds per run and the server's CPU seconds meanwhile. */
      series: Object.fromEntries(series),
      digestCostsS: breakdown,
      coldStart: { runs: cold, medianS: coldMed, idleRssMedianMB: idleMed },
      cpuProfiles: profiles,
      table: out,
    };
    const name = `bench-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`;
    writeFileSync(path.join(RESULTS, name), JSON.stringify(json, null, 2) + '\n');
    writeFileSync(path.join(RESULTS, 'latest.json'), JSON.stringify(json, null, 2) + '\n');
    log(`results written to bench/results/${name}`);
  } finally {
    cleanup();
  }
}

/**
 * BENCH_ONLY=start: cold starts (fresh data dir: migrations, defaults, the admin password hash)
 * and restarts with `npm start` on one data dir, as an operator restarts a built checkout.
 * Ready = first 200 from /service/rest/v1/status; idle RSS 1 s later; the server's CPU time.
 */
async function startupOnly(tmp: string, env: Record<string, unknown>): Promise<void> {
  const rows: { kind: string; startS: number; idleRssMB: number; cpuS: number }[] = [];
  const measure = async (kind: string, dir: string, viaNpm: boolean) => {
    const s = await startStowage(dir, [], viaNpm);
    const cpuS = cpuOf(s.pid);
    await sleep(1000);
    const r = mb(rss(s.pid) ?? NaN);
    await s.stop();
    rows.push({ kind, startS: s.startS, idleRssMB: r, cpuS });
    log(`${kind}: ready ${s.startS.toFixed(3)} s (server CPU ${cpuS.toFixed(2)} s), idle RSS ${r.toFixed(1)} MB`);
  };
  const idle = await waitQuiet('start-up');
  for (let i = 0; i < COLD_RUNS; i++) {
    const dir = path.join(tmp, `cold-${i}`);
    await measure('cold start (node dist/src/main.js serve, fresh data dir)', dir, false);
    rmSync(dir, { recursive: true, force: true });
  }
  const dir = path.join(tmp, 'restart');
  await (await startStowage(dir)).stop();
  for (let i = 0; i < COLD_RUNS; i++) await measure('restart (npm start, built checkout)', dir, true);
  const out: string[] = [
    `Stowage start-up, ${new Date().toISOString()}; node ${env.node}, ${env.cpus} CPUs; CPUs ${(100 * idle).toFixed(0)}% idle before; load ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  ];
  for (const kind of [...new Set(rows.map((r) => r.kind))]) {
    const rs = rows.filter((r) => r.kind === kind);
    const start = median(rs.map((r) => r.startS));
    const mem = median(rs.map((r) => r.idleRssMB));
    out.push(
      `${kind}: ready median ${start.toFixed(3)} s (min ${min(rs.map((r) => r.startS)).toFixed(3)}, max ${max(rs.map((r) => r.startS)).toFixed(3)}; target < ${TARGET.coldStartS} s ${start < TARGET.coldStartS ? 'PASS' : 'MISS'}), ` +
        `server CPU median ${median(rs.map((r) => r.cpuS)).toFixed(2)} s, idle RSS median ${mem.toFixed(1)} MB (target < ${TARGET.idleRssMB} MB ${mem < TARGET.idleRssMB ? 'PASS' : 'MISS'})`,
    );
  }
  process.stdout.write(out.join('\n') + '\n');
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(path.join(RESULTS, `startup-${Date.now()}.json`), JSON.stringify({ env, rows }, null, 2));
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
