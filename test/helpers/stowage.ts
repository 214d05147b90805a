import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/config.js';
import { Stowage } from '../../src/stowage.js';
import { formats } from '../../formats/index.js';
import { createMainApp, listen, type Listener } from '../../src/http/server.js';
import type { Repository } from '../../src/repository/repository.js';
import type { RepositoryType } from '../../src/repository/types.js';
import { createDatabase } from './postgres.js';
import { freePort } from './net.js';

export type TestDb = 'sqlite' | 'postgres';

/** Every database the content tests must pass on. */
export const DATABASES: TestDb[] = ['sqlite', 'postgres'];

export const ADMIN_PASSWORD = 'admin-test-pw';

export function basic(user: string, password: string): string {
  return 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
}

export const ADMIN = basic('admin', ADMIN_PASSWORD);

export interface ServerOptions {
  db?: TestDb;
  /** Extra STOWAGE_* settings. */
  env?: Record<string, string>;
  /** Reuse a data directory (restart tests); a new temp dir otherwise. */
  dataDir?: string;
  /** Reuse a database URL (restart tests). */
  dbUrl?: string;
  /** Extra node options for the server (benches: `BENCH_NODE_ARGS`, e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`). */
  nodeArgs?: string[];
}

async function dbEnv(opts: ServerOptions): Promise<{ url?: string }> {
  if (opts.dbUrl) return { url: opts.dbUrl };
  if (opts.db === 'postgres') return { url: await createDatabase() };
  return {};
}

/** An in-process server: fast, with the app's internals at hand. */
export interface TestServer {
  url: string;
  app: Stowage;
  dataDir: string;
  dbUrl?: string;
  listener: Listener;
  /** fetch relative to the server (`/repository/x/y`), admin credentials unless `auth` is given (null = none). */
  fetch(p: string, init?: RequestInit & { auth?: string | null }): Promise<Response>;
  /** Creates a repository through the manager (no HTTP). */
  repo(format: string, type: RepositoryType, body: Record<string, unknown>): Promise<Repository>;
  stop(opts?: { keepData?: boolean }): Promise<void>;
}

export async function startServer(opts: ServerOptions = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(tmpdir(), 'stowage-test-'));
  const { url: dbUrl } = await dbEnv(opts);
  const env: Record<string, string> = {
    STOWAGE_DATA_DIR: dataDir,
    STOWAGE_HTTP_HOST: '127.0.0.1',
    STOWAGE_HTTP_PORT: '0',
    STOWAGE_ADMIN_PASSWORD: ADMIN_PASSWORD,
    STOWAGE_LOG_LEVEL: 'error',
    ...(dbUrl ? { STOWAGE_DB: dbUrl } : {}),
    ...opts.env,
  };
  const config = loadConfig(env);
  const app = await Stowage.open(config, formats);
  const listener = await listen(createMainApp(app), config.http.port, config.http.host);
  await app.listeners.start(config.http.host);
  const url = listener.url;
  return {
    url,
    app,
    dataDir,
    dbUrl,
    listener,
    fetch(p, init = {}) {
      const headers = new Headers(init.headers);
      const auth = init.auth === undefined ? ADMIN : init.auth;
      if (auth && !headers.has('Authorization')) headers.set('Authorization', auth);
      return fetch(url + p, { ...init, headers, redirect: init.redirect ?? 'manual' });
    },
    async repo(format, type, body) {
      return app.repositories.create(app.repositories.parse(format, type, body));
    },
    async stop({ keepData = false } = {}) {
      await listener.close(1000);
      await app.close();
      if (!keepData && !opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/main.js');

/** A server in its own process: for kill -9, SIGTERM and cold-start tests. */
export interface ChildServer {
  url: string;
  proc: ChildProcess;
  dataDir: string;
  dbUrl?: string;
  env: Record<string, string>;
  output(): string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
  stop(): Promise<void>;
}

export async function spawnServer(opts: ServerOptions & { port?: number } = {}): Promise<ChildServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(tmpdir(), 'stowage-child-'));
  const { url: dbUrl } = await dbEnv(opts);
  const port = opts.port ?? (await freePort());
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    STOWAGE_DATA_DIR: dataDir,
    STOWAGE_HTTP_HOST: '127.0.0.1',
    STOWAGE_HTTP_PORT: String(port),
    STOWAGE_ADMIN_PASSWORD: ADMIN_PASSWORD,
    STOWAGE_LOG_LEVEL: 'warn',
    ...(dbUrl ? { STOWAGE_DB: dbUrl } : {}),
    ...opts.env,
  };
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), MAIN, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`server exited early:\n${out}`);
    try {
      const r = await fetch(url + '/service/rest/v1/status');
      if (r.status === 200) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`server did not become ready:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    proc,
    dataDir,
    dbUrl,
    env,
    output: () => out,
    exited,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await exited;
      }
    },
  };
}

export function readAdminPasswordFile(dataDir: string): string {
  return readFileSync(path.join(dataDir, 'admin.password'), 'utf8').trim();
}

/**
 * Creates a one-off manual task of `type` through `POST /service/rest/v1/tasks`, runs it through
 * `POST /service/rest/v1/tasks/{id}/run` and waits for it; returns its message (asserting it succeeded).
 */
export async function runTask(s: TestServer, type: string, attributes: Record<string, unknown>): Promise<string> {
  const created = await s.fetch('/service/rest/v1/tasks', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ type, name: `${type} (test ${Math.random().toString(36).slice(2, 8)})`, frequency: { schedule: 'manual' }, properties: attributes }),
  });
  if (created.status !== 201) throw new Error(`creating task ${type}: ${created.status} ${await created.text()}`);
  const t = { task_id: ((await created.json()) as { id: string }).id };
  const run = await s.fetch(`/service/rest/v1/tasks/${t.task_id}/run`, { method: 'POST' });
  if (run.status !== 204) throw new Error(`running task ${type}: ${run.status} ${await run.text()}`);
  for (let i = 0; i < 600; i++) {
    const xo = (await (await s.fetch(`/service/rest/v1/tasks/${t.task_id}`)).json()) as { lastRun?: string; currentState: string; lastRunResult?: string; message?: string };
    if (xo.lastRun && xo.currentState === 'WAITING') {
      if (xo.lastRunResult !== 'OK') throw new Error(`task ${type} ${xo.lastRunResult}: ${xo.message}`);
      return String(xo.message);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`task ${type} did not finish`);
}
