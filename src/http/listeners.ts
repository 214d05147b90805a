import net from 'node:net';
import Koa from 'koa';
import { badRequest } from '../errors.js';
import type { Stowage } from '../stowage.js';
import type { RepositoryConfig } from '../repository/types.js';
import type { Repository } from '../repository/repository.js';
import { serve } from './content-router.js';
import type { FormatPlugin } from '../repository/format.js';
import { listen, listenerBase, type Listener } from './server.js';
import { ConfigError } from '../config/config.js';

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
  /** Shared format ports (config `formatPorts`): port → format, and their listeners once started. */
  private readonly sharedPorts = new Map<number, string>();
  private readonly shared = new Map<string, Listener>();
  private host: string | null = null;
  private timer?: NodeJS.Timeout;
  private syncing: Promise<void> = Promise.resolve();
  private pending = false;

  constructor(private readonly app: Stowage) {
    for (const [format, port] of Object.entries(app.config.formatPorts ?? {})) this.sharedPorts.set(port, format);
  }

  /**
   * Starts serving the shared format ports and the dedicated ports on `host` (listeners are not
   * opened before). A shared port naming an unknown format, or one a repository has as its
   * dedicated port, stops the start with an error naming the setting.
   */
  async start(host: string): Promise<void> {
    const repos = await this.app.repositories.list();
    for (const [port, name] of this.sharedPorts) {
      const setting = `formatPorts.${name} (STOWAGE_FORMAT_PORTS)`;
      const format = this.app.formats.get(name);
      if (!format) throw new ConfigError(`Invalid setting ${setting}: no format '${name}' (known: ${[...this.app.formats.keys()].join(', ')})`);
      if (!format.rootRoutes?.length) throw new ConfigError(`Invalid setting ${setting}: format '${name}' has no root routes to serve on a shared port`);
      const owner = repos.find((r) => this.portOf(r.config) === port);
      if (owner) throw new ConfigError(`Invalid setting ${setting}: port ${port} is the dedicated port of repository '${owner.name}'`);
    }
    for (const [port, name] of this.sharedPorts) {
      const listener = await listen(this.sharedKoa(this.app.formats.get(name)!), port, host).catch((e: Error) => {
        throw new ConfigError(`Invalid setting formatPorts.${name} (STOWAGE_FORMAT_PORTS): cannot listen on port ${port}: ${e.message}`);
      });
      this.shared.set(name, listener);
      this.app.log.info(`Shared ${name} port listening on ${listener.url}`);
    }
    this.host = host;
    await this.sync();
    this.timer = setInterval(() => void this.sync(), RESYNC_MS);
    this.timer.unref();
  }

  /** Shared format ports open now, by format name (for tests and status). */
  sharedListeners(): Map<string, number> {
    return new Map([...this.shared].map(([format, l]) => [format, l.port]));
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
    const sharedBy = this.sharedPorts.get(port);
    if (sharedBy) throw refuse(`is the shared ${sharedBy} port (formatPorts.${sharedBy})`);
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
    const wanted = new Map<number, Repository>();
    for (const repo of await this.app.repositories.list()) {
      const port = this.portOf(repo.config);
      if (port !== null && !wanted.has(port) && !this.sharedPorts.has(port)) wanted.set(port, repo);
    }
    for (const [port, o] of [...this.open]) {
      if (wanted.get(port)?.name !== o.repository) {
        this.open.delete(port);
        await o.listener.close(1_000);
        this.app.log.info(`Closed port ${port} of repository '${o.repository}'`);
      }
    }
    for (const [port, repo] of wanted) {
      if (this.open.has(port) || this.host === null) continue;
      const repository = repo.name;
      try {
        const listener = await listen(this.koa(repository, repo.format), port, this.host);
        this.open.set(port, { repository, listener });
        this.app.log.info(`Repository '${repository}' listening on ${listener.url}`);
      } catch (e) {
        this.app.log.warn(`Repository '${repository}': cannot listen on port ${port}`, e);
      }
    }
  }

  /** A dedicated listener; `format` (the repository's) shapes its errors even once the repository is gone. */
  private koa(repository: string, format: FormatPlugin): Koa {
    const app = this.app;
    const koa = listenerBase(app, { repository, format });
    koa.use((ctx) => serve(app, ctx));
    return koa;
  }

  /**
   * A shared format port: the format's root routes served at `/` exactly as on the main
   * listener (`/v2/<repo>/<image>/…`, `/v2/`, `/v2/token` for docker); nothing else.
   */
  private sharedKoa(format: FormatPlugin): Koa {
    const app = this.app;
    const koa = listenerBase(app, { format });
    // Paths outside the format's root routes resolve to nothing: serve answers them 404.
    koa.use((ctx) => serve(app, ctx));
    return koa;
  }

  /** Closes every dedicated and shared listener (shutdown), letting in-flight requests finish up to the grace. */
  async close(graceMs = 1_000): Promise<void> {
    this.host = null;
    if (this.timer) clearInterval(this.timer);
    await this.syncing;
    const all = [...this.open.values()].map((o) => o.listener).concat([...this.shared.values()]);
    this.open.clear();
    this.shared.clear();
    await Promise.all(all.map((l) => l.close(graceMs)));
  }
}

async function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, host, () => probe.close(() => resolve(true)));
  });
}
