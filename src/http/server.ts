import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import type { Stowage } from '../stowage.js';
import { errorBoundary } from './errors.js';
import { accessLog } from './access-log.js';
import { authentication } from './auth.js';
import { contentRouter, resolveContent, type ListenerScope } from './content-router.js';
import { apiRouter } from '../api/index.js';
import { uiRouter } from '../ui/index.js';
import { applyRequestLimits, BodyBudget, chargeBufferedBody, type RequestLimits } from './request-limits.js';
import { HotResponses } from './hot-responses.js';
import { commitVersion } from '../db/db.js';

export interface Listener {
  server: http.Server;
  port: number;
  url: string;
  /** Stops accepting, lets in-flight requests finish (up to the grace), then closes. */
  close(graceMs?: number): Promise<void>;
}

/** After an early answer, what is still read of an unread body so that the client sees the answer. */
const LINGER_BYTES = 64 * 1024 * 1024;
const LINGER_MS = 5_000;

/** The limits each listener's server applies, from the app's settings (read by `listen`). */
const limitsOf = new WeakMap<Koa, RequestLimits>();
/** Each listener's kept answers (hot-responses.ts), replayed before its Koa pipeline. */
const hotOf = new WeakMap<Koa, HotResponses>();
/** One budget for unauthenticated buffered bodies per app, shared by all its listeners. */
const budgets = new WeakMap<Stowage, BodyBudget>();

function budgetOf(app: Stowage): BodyBudget {
  let b = budgets.get(app);
  if (!b) budgets.set(app, (b = new BodyBudget(app.config.http.maxUnauthenticatedBodyBytes)));
  return b;
}

/**
 * What every listener starts with: the request id, common headers and access line, the one
 * error boundary, the content request resolved once with its format's error shape (`scope`: a
 * dedicated listener's repository, a shared port's format, or the main listener), then identity.
 */
export function listenerBase(app: Stowage, scope?: ListenerScope): Koa {
  const koa = new Koa();
  // X-Forwarded-For/Proto/Host only when configured: client addresses (audit, login throttle)
  // and generated URLs (Stowage.baseUrl reads ctx.protocol and ctx.host) follow this switch.
  koa.proxy = app.config.http.trustProxy;
  koa.silent = true;
  koa.use(accessLog(app.log, scope && 'repository' in scope ? scope.repository : undefined));
  const hot = new HotResponses(() => commitVersion(app.db), app.log, app.config.http.trustProxy);
  hotOf.set(koa, hot);
  koa.use(hot.middleware());
  koa.use(errorBoundary(app.log));
  koa.use(resolveContent(app, scope));
  const budget = budgetOf(app);
  // What callers not signed in buffer (readSmall) is charged to one budget per app: many slow
  // anonymous bodies, each under its own limit, cannot exhaust memory together.
  koa.use(authentication(app, (ctx, p) => (!p || p.anonymous) && chargeBufferedBody(ctx.req, budget)));
  const settings = app.config.http;
  limitsOf.set(koa, {
    headersTimeoutMs: settings.headersTimeoutSeconds * 1000,
    bodyIdleTimeoutMs: settings.bodyIdleTimeoutSeconds * 1000,
    lingerBytes: LINGER_BYTES,
    lingerMs: LINGER_MS,
  });
  return koa;
}

/** The main listener's Koa app, as a readable pipeline: the common base, then the three surfaces. */
export function createMainApp(app: Stowage): Koa {
  const koa = listenerBase(app);
  koa.use(contentRouter(app));
  koa.use(apiRouter(app));
  koa.use(uiRouter(app));
  return koa;
}

export async function listen(koa: Koa, port: number, host: string): Promise<Listener> {
  const limits = limitsOf.get(koa);
  const hot = hotOf.get(koa);
  const handle = koa.callback();
  // Responses in flight, so a drain can tell their clients not to reuse the connection.
  const inFlight = new Set<http.ServerResponse>();
  let draining = false;
  // No total request timeout (a large upload may take hours); limits below bound headers and idle bodies.
  const server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, connectionsCheckingInterval: Math.min(1_000, limits?.headersTimeoutMs || 1_000) }, (req, res) => {
    if (draining) res.shouldKeepAlive = false;
    if (hot?.replay(req, res)) return;
    inFlight.add(res);
    res.on('close', () => inFlight.delete(res));
    void handle(req, res);
  });
  if (limits) applyRequestLimits(server, limits);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return {
    server,
    port: addr.port,
    url: `http://${shownHost}:${addr.port}`,
    close: (graceMs = 30_000) =>
      new Promise<void>((resolve) => {
        draining = true;
        // Each in-flight response ends its connection (Connection: close) instead of keeping it
        // alive; a connection that goes idle anyway (headers already sent) is closed by the sweep.
        // Without this a keep-alive client held the drain open for the whole grace period.
        for (const res of inFlight) if (!res.headersSent) res.shouldKeepAlive = false;
        const sweep = setInterval(() => server.closeIdleConnections(), 100);
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          clearInterval(sweep);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
