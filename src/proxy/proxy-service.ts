import path from 'node:path';
import type { Db } from '../db/db.js';
import { AppError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import type { Content, RepositoryConfig } from '../repository/types.js';
import type { Stowage } from '../stowage.js';
import { ProxyState } from './proxy-state.js';
import { SingleFlight } from './single-flight.js';
import { Spool } from './spool.js';
import { UpstreamClient, UpstreamPools } from './upstream-client.js';

/** A proxy repository's remote, as the REST API and UI show it. */
export interface ProxyStatus {
  /** Manually blocked (httpClient.blocked): requests never go upstream. */
  blocked: boolean;
  /** Auto-blocked right now: requests do not go upstream until blockedUntil. */
  autoBlocked: boolean;
  /** End of the current (or last) auto-block window, epoch ms. */
  blockedUntil: number | null;
  /** Consecutive failures of the remote (reset by the first success). */
  failures: number;
  lastError: string | null;
}

/** Spool files older than this are left over from a crash. */
const SPOOL_SWEEP_AGE_MS = 24 * 3600 * 1000;

/** Default connection retries when a repository sets none (Nexus's global default). */
const DEFAULT_RETRIES = 2;

/**
 * The node-wide parts of proxying, used by ProxyRepository: upstream HTTP clients on shared
 * keep-alive pools, single-flight of concurrent fetches, the spool directory, and the state all
 * nodes share (negative cache, auto-block). Also the two operations the REST API exposes.
 */
export class ProxyService {
  readonly flights = new SingleFlight<Content | null>();
  readonly state: ProxyState;
  /** Where bodies are spooled on their way from upstream to the blob store. */
  readonly spoolDir: string;
  private readonly pools = new UpstreamPools();

  constructor(
    readonly db: Db,
    readonly app: Stowage,
  ) {
    const { autoBlockInitialSeconds, autoBlockMaxSeconds } = app.config.proxy;
    this.state = new ProxyState(db, { initialMs: autoBlockInitialSeconds * 1000, maxMs: autoBlockMaxSeconds * 1000 });
    this.spoolDir = path.join(app.config.dataDir, 'tmp');
  }

  async start(): Promise<void> {
    await Spool.sweep(this.spoolDir, SPOOL_SWEEP_AGE_MS);
    await this.state.purgeExpired();
    // The HTTP client loads on first use (~120 ms); a node that has proxies loads it now instead
    // of in its first upstream request.
    if ((await this.app.repositories.list()).some((r) => r.type === 'proxy')) void this.pools.dispatcher().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.pools.close();
  }

  /** Upstream timeout of a repository, ms. */
  timeoutMs(config: RepositoryConfig): number {
    const t = config.httpClient?.connection?.timeout;
    return (t && t > 0 ? t : this.app.config.proxy.defaultTimeoutSeconds) * 1000;
  }

  /** Further attempts after a network error or timeout, before giving up on a request. */
  retries(config: RepositoryConfig): number {
    return config.httpClient?.connection?.retries ?? DEFAULT_RETRIES;
  }

  /** An HTTP client configured from a repository's httpClient section. */
  client(config: RepositoryConfig): UpstreamClient {
    const suffix = config.httpClient?.connection?.userAgentSuffix?.trim();
    return new UpstreamClient({
      agents: this.pools,
      timeoutMs: this.timeoutMs(config),
      retries: this.retries(config),
      userAgent: `Stowage${suffix ? ' ' + suffix : ''}`,
      authorization: authorization(config, (v) => this.reveal(config, v)),
    });
  }

  /** An upstream secret as stored (encrypted at rest; plain when written before encryption existed). */
  private reveal(config: RepositoryConfig, value: string): string {
    try {
      return this.app.secrets.decrypt(value);
    } catch {
      throw new AppError('BAD_GATEWAY', `Repository '${config.name}': its upstream credentials cannot be decrypted (was the secret key changed?)`);
    }
  }

  /** The remote's health as every node sees it. */
  async status(repo: Repository | string): Promise<ProxyStatus> {
    const r = typeof repo === 'string' ? await this.app.repositories.require(repo) : repo;
    const blocked = r.type === 'proxy' && !!r.config.httpClient?.blocked;
    if (r.type !== 'proxy') return { blocked, autoBlocked: false, blockedUntil: null, failures: 0, lastError: null };
    const s = await this.state.read(r.id);
    const autoBlocked = !!r.config.httpClient?.autoBlock && s.blockedUntil !== null && s.blockedUntil > Date.now();
    return { blocked, autoBlocked, blockedUntil: s.blockedUntil, failures: s.failures, lastError: s.lastError };
  }

  /**
   * Nexus's "invalidate cache": every cached asset of the proxy becomes stale (revalidated
   * upstream on its next request) and the negative cache is cleared. A group invalidates its
   * members, recursively; a hosted repository has nothing to invalidate.
   */
  async invalidateCache(repo: Repository | string, seen = new Set<string>()): Promise<void> {
    const r = typeof repo === 'string' ? await this.app.repositories.require(repo) : repo;
    if (seen.has(r.name)) return;
    seen.add(r.name);
    if (r.type === 'group') {
      for (const name of r.config.group?.memberNames ?? []) {
        const m = await this.app.repositories.find(name);
        if (m) await this.invalidateCache(m, seen);
      }
      return;
    }
    if (r.type !== 'proxy') return;
    await this.db('assets').where({ repository_id: r.id }).update({ last_verified: null });
    await this.state.forgetMissing(r.id);
  }
}

function authorization(config: RepositoryConfig, reveal: (stored: string) => string): string | undefined {
  const a = config.httpClient?.authentication;
  if (!a) return undefined;
  switch (a.type) {
    case 'username':
      return 'Basic ' + Buffer.from(`${a.username ?? ''}:${a.password ? reveal(a.password) : ''}`).toString('base64');
    case 'bearerToken':
      return a.bearerToken ? `Bearer ${reveal(a.bearerToken)}` : undefined;
    default:
      throw new AppError('BAD_GATEWAY', `Repository '${config.name}': upstream authentication type '${a.type}' is not supported`);
  }
}
