import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, chmodSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort } from './net.js';
import pg from 'pg';

/**
 * A real PostgreSQL for tests. CI (.ci/run) starts one cluster and exports
 * STOWAGE_TEST_PG_URL; without it the first caller starts a private cluster (initdb + pg_ctl,
 * as the postgres user when running as root) and stops it when the process exits.
 */
let adminUrl: Promise<string> | undefined;

function pgBin(name: string): string {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const p = path.join(base, v, 'bin', name);
      if (existsSync(p)) return p;
    }
  }
  return name;
}

async function startCluster(): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'stowage-pg-'));
  chmodSync(dir, 0o777);
  const data = path.join(dir, 'data');
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) => {
    const full = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
    const r = spawnSync(full[0] as string, full[1] as string[], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr || r.stdout || r.error?.message}`);
  };
  run(pgBin('initdb'), ['-D', data, '--auth=trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C']);
  run(pgBin('pg_ctl'), ['-D', data, '-w', '-l', path.join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`, 'start']);
  process.on('exit', () => {
    try {
      const stop = [pgBin('pg_ctl'), '-D', data, '-m', 'immediate', 'stop'];
      if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', ...stop], { stdio: 'ignore' });
      else execFileSync(stop[0], stop.slice(1), { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return `postgres://postgres@127.0.0.1:${port}/postgres`;
}

function pgAdminUrl(): Promise<string> {
  if (!adminUrl) adminUrl = process.env.STOWAGE_TEST_PG_URL ? Promise.resolve(process.env.STOWAGE_TEST_PG_URL) : startCluster();
  return adminUrl;
}

/** A fresh, empty database; returns its URL. */
export async function createDatabase(): Promise<string> {
  const admin = await pgAdminUrl();
  const name = `stowage_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const u = new URL(admin);
  u.pathname = '/' + name;
  return u.toString();
}
