/** nginx serving a directory as static files on loopback: a plain upstream for proxy tests. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './net.js';

export async function serveStatic(root: string): Promise<{ url: string; stop(): void }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'stowage-nginx-'));
  const port = await freePort();
  const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${dir}/${t};`).join(' ');
  writeFileSync(
    path.join(dir, 'nginx.conf'),
    `${process.getuid?.() === 0 ? 'user root;' : ''} worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 64; }
http { access_log ${dir}/access.log; sendfile on; default_type application/octet-stream; ${temps} server { listen 127.0.0.1:${port}; root ${root}; autoindex on; } }`,
  );
  const proc = spawn('nginx', ['-e', `${dir}/error.log`, '-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      await fetch(url + '/');
      break;
    } catch {
      if (i > 200) throw new Error('nginx did not start');
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  return {
    url,
    stop: () => {
      proc.kill('SIGQUIT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
