/**
 * Stowage as an operator runs it: a real child process (`node dist/src/main.js …`). Cold start
 * and idle memory, the first-start admin password, refusal of bad settings, the `migrate` and
 * `admin reset-password` commands, draining on SIGTERM, and PostgreSQL selected by STOWAGE_DB.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../../src/config/config.js';
import { Stowage } from '../../src/stowage.js';
import { formats } from '../../formats/index.js';
import { ADMIN, ADMIN_PASSWORD, basic, readAdminPasswordFile, spawnServer, type ChildServer } from '../helpers/stowage.js';
import { createDatabase } from '../helpers/postgres.js';
import { freePort } from '../helpers/net.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/main.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const tempDirs: string[] = [];
const children: ChildServer[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'stowage-life-'));
  tempDirs.push(d);
  return d;
}
async function spawnTracked(...args: Parameters<typeof spawnServer>): Promise<ChildServer> {
  const c = await spawnServer(...args);
  children.push(c);
  return c;
}
after(async () => {
  for (const c of children) {
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  }
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/** Runs the CLI to completion. */
function cli(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [MAIN, ...args], {
      env: { PATH: process.env.PATH ?? '', STOWAGE_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`stowage ${args.join(' ')} did not exit within ${timeoutMs} ms:\n${stdout}${stderr}`));
    }, timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Creates raw repositories in a data dir (and database) before a child server is started on it. */
async function seedRepositories(dataDir: string, dbUrl: string | undefined, repos: Array<Record<string, unknown>>): Promise<void> {
  const config = loadConfig({
    STOWAGE_DATA_DIR: dataDir,
    STOWAGE_ADMIN_PASSWORD: ADMIN_PASSWORD,
    STOWAGE_LOG_LEVEL: 'error',
    ...(dbUrl ? { STOWAGE_DB: dbUrl } : {}),
  });
  const app = await Stowage.open(config, formats);
  try {
    for (const r of repos) await app.repositories.create(app.repositories.parse('raw', 'hosted', r));
  } finally {
    await app.close();
  }
}

/** An endpoint that needs an application privilege: 200 for admin, 401 for bad credentials. */
const statusCheck = (url: string, auth?: string) => fetch(`${url}/service/rest/v1/status/check`, { headers: auth ? { Authorization: auth } : {} });

function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmRSS in /proc/<pid>/status');
  return Number(m[1]);
}

describe('server lifecycle (child process)', () => {
  it('cold start to the first 200 from /service/rest/v1/status, and idle memory', async (t) => {
    const dataDir = tempDir();
    const t0 = performance.now();
    const s = await spawnTracked({ dataDir });
    const coldMs = performance.now() - t0;
    // Settle: let start-up garbage be collected as it would be on an idle server.
    await sleep(1500);
    const rss = rssKiB(s.proc.pid!);
    const line = `cold start (fresh SQLite data dir, migrations included): ${coldMs.toFixed(0)} ms; idle RSS: ${(rss / 1024).toFixed(1)} MiB`;
    t.diagnostic(line);
    assert.ok(coldMs < 5000, `cold start ${coldMs.toFixed(0)} ms is under the 5 s sanity bound`);
    assert.ok(rss > 0 && rss < 512 * 1024, `idle RSS ${rss} KiB is under the 512 MiB sanity bound`);
    const r = await fetch(`${s.url}/service/rest/v1/status`);
    assert.equal(r.status, 200);
    await s.stop();
    assert.equal(await s.exited, 0);
  });

  it("`npm start` (the README's start command) starts the built server without compiling", async (t) => {
    const root = path.resolve(path.dirname(MAIN), '../..');
    const scripts = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    assert.equal(scripts.prestart, undefined, 'no build step before start');
    const built = statSync(MAIN).mtimeMs;
    const port = await freePort();
    const dataDir = tempDir();
    const t0 = performance.now();
    // Its own process group: npm, its shell and the server get the SIGTERM together.
    const p = spawn('npm', ['start', '--silent'], {
      cwd: root,
      detached: true,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? tmpdir(),
        STOWAGE_DATA_DIR: dataDir,
        STOWAGE_HTTP_HOST: '127.0.0.1',
        STOWAGE_HTTP_PORT: String(port),
        STOWAGE_ADMIN_PASSWORD: ADMIN_PASSWORD,
        STOWAGE_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | string | null>((r) => p.on('exit', (code, signal) => r(code ?? signal)));
    try {
      for (;;) {
        assert.equal(p.exitCode, null, `npm start exited early:\n${out}`);
        const r = await fetch(`http://127.0.0.1:${port}/service/rest/v1/status`).catch(() => null);
        if (r?.status === 200) break;
        assert.ok(performance.now() - t0 < 20_000, `not ready within 20 s:\n${out}`);
        await sleep(20);
      }
      t.diagnostic(`npm start → ready: ${(performance.now() - t0).toFixed(0)} ms (built checkout, fresh data dir)`);
      assert.equal(statSync(MAIN).mtimeMs, built, 'dist/ was not rebuilt');
    } finally {
      process.kill(-p.pid!, 'SIGTERM');
    }
    // npm passes the signal on and ends by it; the server drains and exits 0.
    assert.ok([0, 'SIGTERM'].includes((await exited) as number | string), out);
  });

  it('first start without STOWAGE_ADMIN_PASSWORD writes data/admin.password (0600) and that password works', async () => {
    const dataDir = tempDir();
    const s = await spawnTracked({ dataDir, env: { STOWAGE_ADMIN_PASSWORD: '' } });
    const file = path.join(dataDir, 'admin.password');
    assert.ok(existsSync(file), 'admin.password written');
    assert.equal(statSync(file).mode & 0o777, 0o600, 'readable by the owner only');
    const password = readAdminPasswordFile(dataDir);
    assert.ok(password.length >= 16, `a strong random password (${password.length} chars)`);
    assert.notEqual(password, ADMIN_PASSWORD);
    assert.equal((await statusCheck(s.url, basic('admin', password))).status, 200, 'the written password authenticates admin');
    assert.equal((await statusCheck(s.url, basic('admin', password + 'x'))).status, 401);
    assert.equal((await statusCheck(s.url, ADMIN)).status, 401, 'the test default password is not in use');
    assert.equal((await statusCheck(s.url)).status, 401, 'anonymous callers are challenged');
    await s.stop();
    assert.equal(await s.exited, 0);

    // A restart keeps the admin user and does not write a new password.
    const again = await spawnTracked({ dataDir, env: { STOWAGE_ADMIN_PASSWORD: '' } });
    assert.equal(readAdminPasswordFile(dataDir), password);
    assert.equal((await statusCheck(again.url, basic('admin', password))).status, 200);
    await again.stop();
  });

  it('an invalid setting stops start-up with a message naming it', async () => {
    const dataDir = tempDir();
    // (Every variable's validation is covered by test/unit/config.test.ts; here, the process.)
    for (const [name, value] of [
      ['STOWAGE_HTTP_PORT', 'abc'],
      ['STOWAGE_ANONYMOUS', 'perhaps'],
    ]) {
      const r = await cli(['serve'], { STOWAGE_DATA_DIR: dataDir, [name]: value }, 20_000);
      assert.notEqual(r.code, 0, `${name}=${value} must not start`);
      assert.notEqual(r.code, null);
      assert.match(r.stderr, new RegExp(name), `stderr names ${name}: ${r.stderr}`);
    }
    const usage = await cli(['frobnicate'], { STOWAGE_DATA_DIR: dataDir }, 20_000);
    assert.notEqual(usage.code, 0);
    assert.match(usage.stderr, /Usage/);
  });

  it('`migrate` creates the schema on a fresh SQLite data dir, then finds it up to date', async () => {
    const dataDir = tempDir();
    const first = await cli(['migrate'], { STOWAGE_DATA_DIR: dataDir });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^Applied: /);
    assert.ok(existsSync(path.join(dataDir, 'db', 'stowage.sqlite')), 'SQLite database in <data>/db');
    const second = await cli(['migrate'], { STOWAGE_DATA_DIR: dataDir });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /up to date/);
  });

  it('`migrate` creates the schema on PostgreSQL (STOWAGE_DB)', async () => {
    const dataDir = tempDir();
    const dbUrl = await createDatabase();
    const first = await cli(['migrate'], { STOWAGE_DATA_DIR: dataDir, STOWAGE_DB: dbUrl });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^Applied: /);
    const client = new pg.Client({ connectionString: dbUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ table_name: string }>(`select table_name from information_schema.tables where table_schema = 'public' order by table_name`);
      const tables = rows.map((r) => r.table_name);
      for (const t of ['repositories', 'blobs', 'assets', 'components', 'users']) assert.ok(tables.includes(t), `table ${t} in ${tables.join(', ')}`);
    } finally {
      await client.end();
    }
    assert.ok(!existsSync(path.join(dataDir, 'db', 'stowage.sqlite')), 'no SQLite database when STOWAGE_DB is PostgreSQL');
    const second = await cli(['migrate'], { STOWAGE_DATA_DIR: dataDir, STOWAGE_DB: dbUrl });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /up to date/);
  });

  it('`admin reset-password` changes a password (and refuses an unknown user)', async () => {
    const dataDir = tempDir();
    const env = { STOWAGE_DATA_DIR: dataDir, STOWAGE_ADMIN_PASSWORD: ADMIN_PASSWORD };
    const s = await spawnTracked({ dataDir });
    assert.equal((await statusCheck(s.url, ADMIN)).status, 200);
    await s.stop();

    const r = await cli(['admin', 'reset-password', 'admin', 'brand-new-pw'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Password of 'admin' changed/);

    const again = await spawnTracked({ dataDir });
    assert.equal((await statusCheck(again.url, basic('admin', 'brand-new-pw'))).status, 200, 'the new password works');
    assert.equal((await statusCheck(again.url, ADMIN)).status, 401, 'the old one does not');
    await again.stop();

    const unknown = await cli(['admin', 'reset-password', 'nobody', 'x'], env);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /nobody/);
    const missing = await cli(['admin', 'reset-password', 'admin'], env);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /Usage/);
  });

  it('SIGTERM waits for an in-flight upload, refuses new connections meanwhile, then exits 0', async (t) => {
    const dataDir = tempDir();
    await seedRepositories(dataDir, undefined, [{ name: 'drain', storage: { writePolicy: 'ALLOW' } }]);
    const s = await spawnTracked({ dataDir });
    const port = Number(new URL(s.url).port);

    const chunk = 64 * 1024;
    const chunks = 40; // 2.5 MiB at one chunk per 100 ms: ~4 s in flight
    const body = randomBytes(chunk * chunks);
    // A keep-alive client, as curl and build tools are: the server must still let go of it.
    const agent = new http.Agent({ keepAlive: true });
    const sent = { n: 0 };
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        `${s.url}/repository/drain/slow/upload.bin`,
        { method: 'PUT', agent, headers: { Authorization: ADMIN, 'Content-Length': String(body.length) } },
        (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => resolve({ status: res.statusCode!, body: b }));
        },
      );
      req.on('error', reject);
      const pump = () => {
        if (sent.n >= chunks) return void req.end();
        req.write(body.subarray(sent.n * chunk, (sent.n + 1) * chunk));
        sent.n++;
        setTimeout(pump, 100);
      };
      pump();
    });

    await sleep(500);
    assert.ok(sent.n < chunks, 'the upload is still in flight when SIGTERM is sent');
    const signalledAt = performance.now();
    s.proc.kill('SIGTERM');

    // Meanwhile: the listening socket closes (as soon as the process has handled the signal).
    const probe = () =>
      new Promise<string>((resolve) => {
        const c = net.connect(port, '127.0.0.1');
        c.on('connect', () => {
          c.destroy();
          resolve('connected');
        });
        c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      });
    let refused = await probe();
    for (const end = Date.now() + 3000; refused !== 'ECONNREFUSED' && Date.now() < end;) {
      await sleep(50);
      refused = await probe();
    }
    assert.equal(refused, 'ECONNREFUSED', 'new connections are refused while draining');
    assert.ok(sent.n < chunks, 'the upload was still in flight when connections were refused');
    assert.equal(s.proc.exitCode, null, 'still running while the upload is in flight');

    const res = await response;
    assert.equal(res.status, 201, `the in-flight upload completes: ${res.body}`);
    const code = await Promise.race([s.exited, sleep(10_000).then(() => 'still running 10 s after the upload finished')]);
    const drainMs = performance.now() - signalledAt;
    t.diagnostic(`exited ${drainMs.toFixed(0)} ms after SIGTERM`);
    assert.equal(code, 0, `clean exit after draining: ${s.output()}`);
    agent.destroy();

    // The upload is durable: a new process serves exactly those bytes.
    const again = await spawnTracked({ dataDir });
    const r = await fetch(`${again.url}/repository/drain/slow/upload.bin`);
    assert.equal(r.status, 200);
    const got = Buffer.from(await r.arrayBuffer());
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(body).digest('hex'));
    await again.stop();
  });

  it('STOWAGE_DB=postgres://… runs on PostgreSQL', async () => {
    const dataDir = tempDir();
    const dbUrl = await createDatabase();
    await seedRepositories(dataDir, dbUrl, [{ name: 'on-pg', storage: { writePolicy: 'ALLOW' } }]);
    const s = await spawnTracked({ dataDir, dbUrl });
    const put = await fetch(`${s.url}/repository/on-pg/where.txt`, { method: 'PUT', body: 'stored in postgres', headers: { Authorization: ADMIN } });
    assert.equal(put.status, 201);
    const client = new pg.Client({ connectionString: dbUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ path: string; repo: string }>(
        `select a.path, r.name as repo from assets a join repositories r on r.id = a.repository_id where r.name = 'on-pg'`,
      );
      assert.deepEqual(rows, [{ path: 'where.txt', repo: 'on-pg' }], 'the server wrote its rows to PostgreSQL');
      const migrations = await client.query(`select count(*)::int as n from knex_migrations`);
      assert.ok(migrations.rows[0].n > 0, 'migrations recorded in PostgreSQL');
    } finally {
      await client.end();
    }
    assert.ok(!existsSync(path.join(dataDir, 'db', 'stowage.sqlite')), 'no SQLite database was created');
    await s.stop();
    assert.equal(await s.exited, 0);
  });
});
