import net from 'node:net';
import Koa from 'koa';
import { badRequest } from '../errors.js';
import type { Stowage } from '../stowage.js';
import type { RepositoryConfig } from '../repository/types.js';
import { serve } from './content-router.js';
import { listen, listenerBase, type Listener } from './server.js';
import { AppError } from '../errors.js';

/** How often listeners re-read the repositories for changes made on other nodes. */
const RESYNC_MS = 3_000;

interface Open {
  repository: string;
  listener: Listener;
}

/**
 * Dedicated listeners: a repository whose format asks for a port of its own
 * (FormatPlugin.listenerPort, docker's `docker.httpPort`) gets an HTTP listener on it whose every
 * request goes to that repository. Opened and closed as repositories are created, changed and
 * deleted (on this node at once, on others within a few seconds), without a restart.
 */
export class ListenerManager {
  private readonly open = new Map<number, Open>();
  private host: string | null = null;
  private timer?: NodeJS.Timeout;
  private syncing: Promise<void> = Promise.resolve();
  private pending = false;

  constructor(private readonly app: Stowage) {}

  /** Starts serving dedicated ports on `host` (listeners are not opened before). */
  async start(host: string): Promise<void> {
    this.host = host;
    await this.sync();
    this.timer = setInterval(() => void this.sync(), RESYNC_MS);
    this.timer.unref();
  }

  /** Ports open now, by repository name (for tests and status). */
  ports(): Map<string, number> {
    return new Map([...this.open].map(([port, o]) => [o.repository, port]));
  }

  private portOf(cfg: RepositoryConfig): number | null {
    const format = this.app.formats.get(cfg.format);
    return format?.listenerPort?.(cfg) ?? null;
  }

  /**
   * Refuses a configuration whose port another repository has, or that cannot be bound here (in
   * use by another process): a 400 naming the format's port field.
   */
  async check(cfg: RepositoryConfig): Promise<void> {
    const port = this.portOf(cfg);
    if (port === null) return;
    const field = this.app.formats.get(cfg.format)?.listenerPortField ?? 'port';
    const refuse = (why: string) => badRequest(`${field}: port ${port} ${why}`, { field });
    if (port === this.app.config.http.port) throw refuse('is the main HTTP port');
    for (const other of await this.app.repositories.list()) {
      if (other.name !== cfg.name && this.portOf(other.config) === port) throw refuse(`is already used by repository '${other.name}'`);
    }
    const current = this.open.get(port);
    if (current) {
      if (current.repository === cfg.name) return;
      throw refuse(`is already used by repository '${current.repository}'`);
    }
    if (!(await portFree(port, this.host ?? this.app.config.http.host))) throw refuse('is in use');
  }

  /** Brings the open listeners in line with the repositories (serialised; coalesces bursts). */
  sync(): Promise<void> {
    if (this.host === null) return Promise.resolve();
    if (this.pending) return this.syncing;
    this.pending = true;
    this.syncing = this.syncing.then(async () => {
      this.pending = false;
      try {
        await this.reconcile();
      } catch (e) {
        this.app.log.warn('Listener sync failed', e);
      }
    });
    return this.syncing;
  }

  private async reconcile(): Promise<void> {
    if (this.host === null) return;
    const wanted = new Map<number, string>();
    for (const repo of await this.app.repositories.list()) {
      const port = this.portOf(repo.config);
      if (port !== null && !wanted.has(port)) wanted.set(port, repo.name);
    }
    for (const [port, o] of [...this.open]) {
      if (wanted.get(port) !== o.repository) {
        this.open.delete(port);
        await o.listener.close(1_000);
        this.app.log.info(`Closed port ${port} of repository '${o.repository}'`);
      }
    }
    for (const [port, repository] of wanted) {
      if (this.open.has(port) || this.host === null) continue;
      try {
        const listener = await listen(this.koa(repository), port, this.host);
        this.open.set(port, { repository, listener });
        this.app.log.info(`Repository '${repository}' listening on ${listener.url}`);
      } catch (e) {
        this.app.log.warn(`Repository '${repository}': cannot listen on port ${port}`, e);
      }
    }
  }

  private koa(repository: string): Koa {
    const app = this.app;
    const koa = listenerBase(app, repository);
    koa.use(async (ctx) => {
      if (!ctx.path.startsWith('/')) throw new AppError('NOT_FOUND', 'Not found');
      return serve(app, ctx, repository, ctx.path.slice(1), false, undefined, true);
    });
    return koa;
  }

  /** Closes every dedicated listener (shutdown), letting in-flight requests finish up to the grace. */
  async close(graceMs = 1_000): Promise<void> {
    this.host = null;
    if (this.timer) clearInterval(this.timer);
    await this.syncing;
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((o) => o.listener.close(graceMs)));
  }
}

async function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, host, () => probe.close(() => resolve(true)));
  });
}
