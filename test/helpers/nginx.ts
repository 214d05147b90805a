/**
 * nginx on loopback for tests and benches: a static PEP 503 tree as a pypi.org stand-in, Maven
 * trees, yum repositories, the static-file peer of the benches. One launcher (`runNginx`) writes
 * the configuration, starts nginx in the foreground and waits until it answers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './net.js';

export interface Nginx {
  /** `http://127.0.0.1:<port>` per server block, in order. */
  urls: string[];
  /** nginx's prefix directory (its access log, when the `http` block writes one, is `<dir>/access.log`). */
  dir: string;
  stop(): Promise<void>;
}

/**
 * nginx with one `server` block per entry of `servers` (each given its port) inside an `http` block
 * that starts with `http` (directives such as `access_log off; sendfile on;`).
 */
export async function runNginx(opts: { http: (dir: string) => string; servers: Array<(port: number) => string>; connections?: number }): Promise<Nginx> {
  const dir = mkdtempSync(path.join(tmpdir(), 'stowage-nginx-'));
  const ports: number[] = [];
  for (const _ of opts.servers) ports.push(await freePort());
  const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${dir}/${t};`).join(' ');
  writeFileSync(
    path.join(dir, 'nginx.conf'),
    `${process.getuid?.() === 0 ? 'user root;' : ''} worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections ${opts.connections ?? 256}; }
http { ${opts.http(dir)} ${temps}
${opts.servers.map((s, i) => `server { listen 127.0.0.1:${ports[i]}; ${s(ports[i])} }`).join('\n')} }`,
  );
  const proc: ChildProcess = spawn('nginx', ['-e', `${dir}/error.log`, '-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'ignore' });
  let exited = false;
  proc.on('exit', () => (exited = true));
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  for (let i = 0; ; i++) {
    try {
      await Promise.all(urls.map((u) => fetch(u + '/').then((r) => r.arrayBuffer())));
      break;
    } catch (e) {
      if (exited || i > 400) throw new Error(`nginx did not start: ${(e as Error).message}`, { cause: e });
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  return {
    urls,
    dir,
    async stop() {
      if (!exited) {
        const gone = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGQUIT');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** nginx serving static folders, one server block per root. */
export async function startNginx(roots: string[], opts: { autoindex?: boolean } = {}): Promise<Nginx> {
  return runNginx({
    http: () => 'access_log off; sendfile on;',
    servers: roots.map((root) => () => `root ${root}; index index.html; types { text/html html; } default_type application/octet-stream;${opts.autoindex ? ' autoindex on;' : ''}`),
  });
}

/** One static folder (with directory listings): a plain upstream for proxy tests. */
export async function serveStatic(root: string): Promise<{ url: string; stop(): Promise<void> }> {
  const nginx = await startNginx([root], { autoindex: true });
  return { url: nginx.urls[0], stop: () => nginx.stop() };
}
