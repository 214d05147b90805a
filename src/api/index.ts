import Router from '@koa/router';
import type Koa from 'koa';
import type { Stowage } from '../stowage.js';
import { statusRoutes } from './status.js';

export const API_PREFIX = '/service/rest';

/** REST API under /service/rest/v1, Nexus-compatible shapes. */
export function apiRouter(app: Stowage): Koa.Middleware {
  const v1 = new Router({ prefix: `${API_PREFIX}/v1` });
  for (const r of [statusRoutes(app)]) v1.use(r.routes(), r.allowedMethods());
  const routes = v1.routes() as unknown as Koa.Middleware;
  const allowed = v1.allowedMethods() as unknown as Koa.Middleware;
  return async (ctx, next) => {
    if (!ctx.path.startsWith(API_PREFIX + '/')) return next();
    await routes(ctx, async () => {
      await allowed(ctx, async () => undefined);
    });
    if (ctx.status === 404 && ctx.body === undefined) {
      ctx.status = 404;
      ctx.body = { status: 404, message: `No such API endpoint: ${ctx.method} ${ctx.path}` };
    }
  };
}
