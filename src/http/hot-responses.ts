import { createHash } from 'node:crypto';
import type http from 'node:http';
import type Koa from 'koa';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../log.js';
import { requestIdOf } from './access-log.js';

/**
 * Answers to repeated metadata GETs (a packument, a project page, maven-metadata.xml) replayed
 * before Koa's pipeline: on a warm server most of the CPU of such a GET is the pipeline itself
 * (request id, error boundary, repository, credentials, authorization, route, lookups), not the
 * bytes — a bare Koa app serving a 1 KB buffer already stays near 0.3× nginx here.
 *
 * Exact, not time-based: an answer is kept with the database's commit version read before its
 * request started (`version`: SQLite's `PRAGMA data_version`, which changes on every commit by any
 * connection or process) and replayed only while no commit has happened since: a change of
 * content, a repository, a user, a role, a token or a setting is a commit, so it ends every kept
 * answer at once. An answer that depends on time too (a proxy's freshness, a negative cache entry)
 * says how long it may be replayed (`maxAgeMs`). Answers are kept per request line, Host (and the
 * forwarded host and protocol a trusted proxy sends: generated URLs depend on them), Accept and
 * credentials (a hash of the Authorization header: a caller is answered only what it was answered
 * itself). Requests with a range, a date condition or a cookie are never replayed.
 *
 * Handlers opt in (`markHot`) and say what a replay must still do (`onReplay`: record the download).
 * PostgreSQL has no commit version to read without a query, so there nothing is kept.
 */

export interface HotOptions {
  /** How long the answer may be replayed without a commit; default: until the next commit. */
  maxAgeMs?: number;
  /** What each replay does besides answering (the download record of what was served). */
  onReplay?: () => void;
}

interface HotEntry {
  version: unknown;
  until: number;
  /** The 200's headers as a flat name, value list (writeHead takes it without per-header bookkeeping). */
  headers: string[];
  /** The same without the body's Content-Length and Content-Type, for a 304. */
  notModifiedHeaders: string[];
  etag: string | undefined;
  body: Buffer;
  onReplay?: () => void;
  /** For the access line of a replay. */
  user: string | undefined;
  repository: string | undefined;
}

/** Answers kept and replayed by this process (tests, metrics). */
export const hotStats = { kept: 0, replayed: 0 };

/** What a document that also depends on time (a proxy's freshness) is replayed for at most: a second. */
export const HOT_MAX_AGE_MS = 1000;

/** Marks the answer being built as replayable (only a 200 with an in-memory body is kept). */
export function markHot(ctx: Koa.Context, opts: HotOptions = {}): void {
  ctx.state.hot = opts;
}

const MAX_ENTRY_BYTES = 4 * 1024 * 1024;
/** The key `replay` computed for a request it could not answer, kept on the request (as the body budget is). */
const KEY = Symbol('hotKey');
type Keyed = http.IncomingMessage & { [KEY]?: string | null };
/**
 * An answer to a signed-in caller is replayed for this long at most: a token's expiry or an
 * external directory's change (LDAP) is no commit here.
 */
const SIGNED_IN_MAX_MS = 5_000;

export class HotResponses {
  private readonly entries = new LRUCache<string, HotEntry>({
    max: 5000,
    maxSize: 128 * 1024 * 1024,
    sizeCalculation: (e) => Math.max(1, e.body.length),
  });

  constructor(
    /** The database's commit version now; null when there is none to read (nothing is kept then). */
    private readonly version: () => unknown,
    private readonly log: Logger,
    private readonly trustProxy: boolean,
  ) {}

  /** The key of a request whose answer may be kept or replayed, or null. */
  keyOf(req: http.IncomingMessage): string | null {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return null;
    const h = req.headers;
    if (h.range !== undefined || h['if-modified-since'] !== undefined || h['if-range'] !== undefined || h.cookie !== undefined) return null;
    const auth = h.authorization ? createHash('sha256').update(h.authorization).digest('base64url') : '';
    const forwarded = this.trustProxy ? `${String(h['x-forwarded-host'] ?? '')}\n${String(h['x-forwarded-proto'] ?? '')}` : '';
    return `${req.url}\n${h.host ?? ''}\n${forwarded}\n${h.accept ?? ''}\n${auth}`;
  }

  /** Answers `req` from a kept answer still valid; false when there is none (the pipeline answers). */
  replay(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (this.entries.size === 0) return false;
    const key = this.keyOf(req);
    // The pipeline's middleware keeps the answer under the same key: computed once (it hashes credentials).
    (req as Keyed)[KEY] = key;
    if (key === null) return false;
    const e = this.entries.get(key);
    if (!e) return false;
    if (e.until <= Date.now() || this.version() !== e.version) {
      this.entries.delete(key);
      return false;
    }
    const start = performance.now();
    const reqId = requestIdOf(req);
    const inm = req.headers['if-none-match'];
    const notModified = !!e.etag && !!inm && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === e.etag);
    if (notModified) {
      res.writeHead(304, [...e.notModifiedHeaders, 'X-Request-Id', reqId]);
      res.end();
    } else {
      res.writeHead(200, [...e.headers, 'X-Request-Id', reqId]);
      res.end(req.method === 'HEAD' ? undefined : e.body);
    }
    e.onReplay?.();
    hotStats.replayed++;
    if (this.log.pino.isLevelEnabled('info')) {
      const q = req.url!.indexOf('?');
      this.log.access({
        reqId,
        user: e.user,
        repository: e.repository,
        method: req.method,
        path: q < 0 ? req.url : req.url!.slice(0, q),
        status: res.statusCode,
        bytes: notModified || req.method === 'HEAD' ? 0 : e.body.length,
        ms: Math.round((performance.now() - start) * 10) / 10,
      });
    }
    return true;
  }

  /**
   * The listener's middleware that keeps marked answers: outermost but the access log, so the
   * version is read before anything of the request is, and the answer is the final one.
   */
  middleware(): Koa.Middleware {
    return async (ctx, next) => {
      const key = ctx.method !== 'GET' ? null : KEY in ctx.req ? ((ctx.req as Keyed)[KEY] ?? null) : this.keyOf(ctx.req);
      const version = key === null ? null : this.version();
      await next();
      if (key === null || version === null || version === undefined) return;
      const hot = ctx.state.hot as HotOptions | undefined;
      const body = ctx.body;
      if (!hot || ctx.status !== 200 || !Buffer.isBuffer(body) || body.length > MAX_ENTRY_BYTES) return;
      // A commit during the request: what it read may be older than the version now.
      if (this.version() !== version) return;
      const headers: string[] = [];
      const notModifiedHeaders: string[] = [];
      for (const [k, v] of Object.entries(ctx.res.getHeaders())) {
        if (k === 'x-request-id' || v === undefined) continue;
        for (const one of Array.isArray(v) ? v : [v]) {
          headers.push(k, String(one));
          if (k !== 'content-length' && k !== 'content-type') notModifiedHeaders.push(k, String(one));
        }
      }
      const principal = ctx.state.principal as { userId?: string } | undefined;
      const repo = ctx.state.repository as { name?: string } | undefined;
      hotStats.kept++;
      this.entries.set(key, {
        version,
        until: Math.min(hot.maxAgeMs === undefined ? Infinity : Date.now() + hot.maxAgeMs, ctx.req.headers.authorization ? Date.now() + SIGNED_IN_MAX_MS : Infinity),
        headers,
        notModifiedHeaders,
        etag: ctx.response.get('ETag') || undefined,
        body,
        onReplay: hot.onReplay,
        user: principal?.userId,
        repository: repo?.name,
      });
    };
  }
}
