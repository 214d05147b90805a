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
import { openApiDocument, type RouteGroup } from './openapi.js';
import { securityUserRoutes } from './security-users.js';
import { securityRoleRoutes } from './security-roles.js';
import { securityPrivilegeRoutes } from './security-privileges.js';
import { securitySelectorRoutes } from './security-selectors.js';
import { securityRealmRoutes } from './security-realms.js';
import { securityLdapRoutes } from './security-ldap.js';
import { securityTokenRoutes } from './security-tokens.js';
import { auditRoutes } from './audit.js';
import { cleanupInternalRoutes, cleanupPolicyRoutes } from './cleanup-policies.js';
import { mountRoutes, route, type ApiRoute } from './route.js';

export const API_PREFIX = '/service/rest';

/** Formats' own endpoints (`FormatPlugin.apiRoutes`), each under the format's name, with the operation object the format wrote. */
function formatRoutes(app: Stowage): ApiRoute[] {
  const out: ApiRoute[] = [];
  for (const format of app.formats.values()) {
    for (const r of format.apiRoutes ?? []) {
      const path = `/${format.name}${r.path}`;
      out.push(
        route({
          method: r.method,
          path,
          operationId: (r.openapi.operationId as string | undefined) ?? `${r.method.toLowerCase()}${path.replace(/\W+(\w)/g, (_, c: string) => c.toUpperCase())}`,
          tags: [format.name],
          summary: String(r.openapi.summary ?? ''),
          access: { requires: 'see the description' },
          responses: {},
          operation: r.openapi,
          handler: (ctx) => r.handler(ctx, app),
        }),
      );
    }
  }
  return out;
}

/** Every REST operation under /service/rest/v1, in the order they are matched. */
export function apiRoutes(app: Stowage): ApiRoute[] {
  return [
    ...statusRoutes(app),
    ...repositoryRoutes(app),
    ...blobStoreRoutes(app),
    ...componentRoutes(app),
    ...assetRoutes(app),
    ...searchRoutes(app),
    ...taskRoutes(app),
    ...securityTokenRoutes(app),
    ...auditRoutes(app),
    ...securityLdapRoutes(app),
    ...cleanupPolicyRoutes(app),
    ...securityUserRoutes(app),
    ...securityRoleRoutes(app),
    ...securityPrivilegeRoutes(app),
    ...securitySelectorRoutes(app),
    ...securityRealmRoutes(app),
    ...formatRoutes(app),
  ];
}

/** The document's own routes: served without authentication, as Nexus serves its swagger.json. */
function documentRoutes(document: () => unknown): { rest: ApiRoute[]; v1: ApiRoute[] } {
  const get = (path: string, operationId: string, summary: string) =>
    route({
      method: 'GET',
      path,
      operationId,
      tags: ['OpenAPI'],
      summary,
      access: 'public',
      responses: { 200: { description: 'The OpenAPI 3 document', contentType: 'application/json' } },
      handler: async (ctx) => {
        ctx.body = document();
      },
    });
  return {
    rest: [get('/swagger.json', 'getSwaggerJson', 'This document (as Nexus serves it)')],
    v1: [get('/openapi.json', 'getOpenApiJson', 'This document')],
  };
}

/** Both the routes and the OpenAPI document, from the same declarations. */
export function apiGroups(app: Stowage): RouteGroup[] {
  let doc: unknown;
  const docs = documentRoutes(() => (doc ??= openApiDocument(groups)));
  const groups: RouteGroup[] = [
    { prefix: '', routes: docs.rest },
    { prefix: '/internal', routes: cleanupInternalRoutes(app) },
    { prefix: '/v1', routes: [...docs.v1, ...apiRoutes(app)] },
  ];
  return groups;
}

/** The koa router of every declared route, under /service/rest. */
export function restRouter(app: Stowage): Router {
  const rest = new Router({ prefix: API_PREFIX });
  for (const g of apiGroups(app)) {
    const r = mountRoutes(app, g.routes);
    if (g.prefix) r.prefix(g.prefix);
    rest.use(r.routes(), r.allowedMethods());
  }
  return rest;
}

/** REST API under /service/rest/v1, Nexus-compatible shapes. */
export function apiRouter(app: Stowage): Koa.Middleware {
  const rest = restRouter(app);
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
