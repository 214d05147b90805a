import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import type { Stowage } from '../stowage.js';
import { errorBoundary } from './errors.js';
import { authentication } from './auth.js';
import { contentRouter } from './content-router.js';
import { apiRouter } from '../api/index.js';
import { uiRouter } from '../ui/index.js';

export interface Listener {
  server: http.Server;
  port: number;
  url: string;
  /** Stops accepting, lets in-flight requests finish (up to the grace), then closes. */
  close(graceMs?: number): Promise<void>;
}

/** The main listener's Koa app, as a readable pipeline: errors, identity, then the three surfaces. */
export function createMainApp(app: Stowage): Koa {
  const koa = new Koa();
  koa.proxy = true; // X-Forwarded-* are honoured for generated URLs
  koa.silent = true;
  koa.use(errorBoundary(app.log));
  koa.use(async (ctx, next) => {
    ctx.set('Server', 'Stowage');
    ctx.set('X-Content-Type-Options', 'nosniff');
    await next();
  });
  koa.use(authentication(app));
  koa.use(contentRouter(app));
  koa.use(apiRouter(app));
  koa.use(uiRouter(app));
  return koa;
}

export async function listen(koa: Koa, port: number, host: string): Promise<Listener> {
  const server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, koa.callback());
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
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
