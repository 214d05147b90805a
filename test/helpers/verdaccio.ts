import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './net.js';

/**
 * A real verdaccio (the npm peer, a dev dependency) on a free loopback port with a temp storage:
 * no uplinks, everyone may read and publish anonymously. The npm upstream of the proxy tests and
 * the peer of the bench.
 */
export interface Verdaccio {
  url: string;
  port: number;
  dir: string;
  proc: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../node_modules/.bin/verdaccio');

export async function startVerdaccio(opts: { maxBodySize?: string } = {}): Promise<Verdaccio> {
  const dir = mkdtempSync(path.join(tmpdir(), 'verdaccio-'));
  const port = await freePort();
  const config = [
    `storage: ${JSON.stringify(path.join(dir, 'storage'))}`,
    `uplinks: {}`,
    `packages:`,
    `  '**':`,
    `    access: $all`,
    `    publish: $anonymous`,
    `    unpublish: $anonymous`,
    `listen: 127.0.0.1:${port}`,
    `max_body_size: ${opts.maxBodySize ?? '200mb'}`,
    `log: { type: stdout, format: pretty, level: warn }`,
    `security:`,
    `  api:`,
    `    legacy: true`,
    `web: { enable: false }`,
  ].join('\n');
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, config + '\n');
  const proc = spawn(BIN, ['--config', file, '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_ENV: 'production' } });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`verdaccio exited early:\n${out}`);
    try {
      const r = await fetch(url + '/-/ping');
      if (r.status === 200) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`verdaccio did not become ready:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    dir,
    proc,
    output: () => out,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
