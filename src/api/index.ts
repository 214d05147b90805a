import Router from '@koa/router';
import type Koa from 'koa';
import type { Stowage } from '../stowage.js';
import { statusRoutes } from './status.js';
import { repositoryRoutes } from './repositories.js';
import { blobStoreRoutes } from './blobstores.js';
import { componentRoutes } from './components.js';
import { assetRoutes } from './assets.js';
import { searchRoutes } from './search.js';
import { taskRoutes } from './tasks.js';
import { openApiRoutes } from './openapi.js';
import { securityUserRoutes } from './security-users.js';
import { securityRoleRoutes } from './security-roles.js';
import { securityPrivilegeRoutes } from './security-privileges.js';
import { securitySelectorRoutes } from './security-selectors.js';
import { securityRealmRoutes } from './security-realms.js';
import { securityLdapRoutes } from './security-ldap.js';
import { securityTokenRoutes } from './security-tokens.js';
import { auditRoutes } from './audit.js';
import { cleanupInternalRoutes, cleanupPolicyRoutes } from './cleanup-policies.js';

export const API_PREFIX = '/service/rest';

/** REST API under /service/rest/v1, Nexus-compatible shapes; one router per resource. */
export function apiRouter(app: Stowage): Koa.Middleware {
  const rest = new Router({ prefix: API_PREFIX });
  const v1 = new Router({ prefix: '/v1' });
  const security = [securityUserRoutes(app), securityRoleRoutes(app), securityPrivilegeRoutes(app), securitySelectorRoutes(app), securityRealmRoutes(app)];
  for (const r of [
    statusRoutes(app),
    repositoryRoutes(app),
    blobStoreRoutes(app),
    componentRoutes(app),
    assetRoutes(app),
    searchRoutes(app),
    taskRoutes(app),
    securityTokenRoutes(app),
    auditRoutes(app),
    securityLdapRoutes(app),
    cleanupPolicyRoutes(app),
    ...security,
  ]) {
    v1.use(r.routes(), r.allowedMethods());
  }
  // Formats' own endpoints, each under the format's name.
  const formatRoutes = new Router();
  for (const format of app.formats.values()) {
    for (const route of format.apiRoutes ?? []) {
      const method = route.method.toLowerCase() as 'get' | 'post' | 'put' | 'delete';
      formatRoutes[method](`/${format.name}${route.path}`, (ctx) => route.handler(ctx, app));
    }
  }
  v1.use(formatRoutes.routes(), formatRoutes.allowedMethods());
  const docs = openApiRoutes(app);
  rest.use(docs.routes(), docs.allowedMethods());
  const internal = cleanupInternalRoutes(app);
  rest.use(internal.routes(), internal.allowedMethods());
  rest.use(v1.routes(), v1.allowedMethods());
  const routes = rest.routes() as unknown as Koa.Middleware;
  const allowed = rest.allowedMethods() as unknown as Koa.Middleware;
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
