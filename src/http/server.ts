import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import type { Stowage } from '../stowage.js';
import { errorBoundary } from './errors.js';
import { accessLog } from './access-log.js';
import { authentication } from './auth.js';
import { contentRouter, formatErrorRendering } from './content-router.js';
import { apiRouter } from '../api/index.js';
import { uiRouter } from '../ui/index.js';
import type { FormatPlugin } from '../repository/format.js';
import type { AppError } from '../errors.js';

export interface Listener {
  server: http.Server;
  port: number;
  url: string;
  /** Stops accepting, lets in-flight requests finish (up to the grace), then closes. */
  close(graceMs?: number): Promise<void>;
}

/**
 * What every listener starts with: the request id and access line, the one error boundary,
 * common headers, the format's error shape (for a dedicated listener, that of its `repository`;
 * for a shared format port, that `format`'s), then identity.
 */
export function listenerBase(app: Stowage, repository?: string, format?: FormatPlugin): Koa {
  const koa = new Koa();
  // Client addresses from X-Forwarded-For only when configured (generated URLs read
  // X-Forwarded-Proto/Host themselves, see Stowage.baseUrl).
  koa.proxy = app.config.http.trustProxy;
  koa.silent = true;
  koa.use(accessLog(app.log, repository));
  koa.use(errorBoundary(app.log));
  koa.use(async (ctx, next) => {
    ctx.set('Server', 'Stowage');
    ctx.set('X-Content-Type-Options', 'nosniff');
    await next();
  });
  koa.use(formatErrorRendering(app, repository));
  if (format?.renderError) {
    const render = format.renderError.bind(format);
    koa.use(async (ctx, next) => {
      ctx.state.renderError = (c: Koa.Context, err: AppError) => render(c, err, app);
      await next();
    });
  }
  koa.use(authentication(app));
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
  const server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, koa.callback());
  // Responses in flight, so a drain can tell their clients not to reuse the connection.
  const inFlight = new Set<http.ServerResponse>();
  let draining = false;
  server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    if (draining) res.shouldKeepAlive = false;
    inFlight.add(res);
    res.on('close', () => inFlight.delete(res));
  });
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
