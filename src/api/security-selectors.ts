import type Koa from 'koa';
import type { Stowage } from '../stowage.js';
import { encodeToken } from '../content/content-service.js';
import { auditOrigin, principalOf } from '../http/auth.js';
import type { CompiledCsel } from '../security/csel.js';
import { compileExpression } from '../security/selectors.js';
import { repositoryScope, type Scope } from './content-views.js';
import { canContent } from './access.js';
import { assetXO } from './content-xo.js';
import { pageParams } from './params.js';
import { object, optString, selectorXO } from './security-xo.js';
import { route, type ApiRoute } from './route.js';
import { badRequest as badRequestXO, conflict, noContent, notFound as notFoundXO, ok, params, pathParam } from './schemas.js';
import { z } from 'zod';
import { PageAssetXO, paging } from './schemas.js';
import { ContentSelector, ContentSelectorPreview, ContentSelectorRequest } from './security-schemas.js';

const DOMAIN = 'security.contentselector';
/** Assets examined per preview request at most; past that the page ends early with a token. */
const PREVIEW_SCAN_LIMIT = 10_000;

/** The preview's scope: one repository (a group: its members), or every non-group one the caller may browse. */
async function previewScope(app: Stowage, ctx: Koa.Context, repository: string | undefined, format: string | undefined): Promise<Scope> {
  if (repository && repository !== '*') {
    const scope = await repositoryScope(app, ctx, repository, 'browse');
    if (format && format !== '*') for (const [id, s] of scope) if (s.view.format.name !== format) scope.delete(id);
    return scope;
  }
  const scope: Scope = new Map();
  const p = principalOf(ctx);
  for (const repo of await app.repositories.list()) {
    if (repo.type === 'group' || (format && format !== '*' && repo.format.name !== format)) continue;
    if (await canContent(app, p, repo, 'browse')) scope.set(repo.id, { view: repo, owner: repo });
  }
  return scope;
}

/** Assets of the scope the selector matches, one page (scanning in asset id order). */
async function preview(app: Stowage, ctx: Koa.Context, selector: CompiledCsel, scope: Scope, token: string | null, limit: number) {
  const base = app.baseUrl(ctx);
  const items: ReturnType<typeof assetXO>[] = [];
  if (scope.size === 0) return { items, continuationToken: null };
  let scanned = 0;
  let cursor = token;
  for (;;) {
    const page = await app.content.listAssets({ repositoryIds: [...scope.keys()] }, cursor, Math.min(500, Math.max(limit, 50)));
    for (const a of page.items) {
      scanned++;
      const s = scope.get(a.repository_id)!;
      if (selector.matches({ format: s.owner.format.name, path: '/' + a.path })) items.push(assetXO(a, s.view, s.owner, base));
      if (items.length === limit || scanned >= PREVIEW_SCAN_LIMIT) {
        const more = page.continuationToken !== null || a !== page.items[page.items.length - 1];
        return { items, continuationToken: more ? encodeToken(a.id) : null };
      }
    }
    if (!page.continuationToken) return { items, continuationToken: null };
    cursor = page.continuationToken;
  }
}

/**
 * Content selectors, Nexus-shaped: `/security/content-selectors` CRUD, plus
 * `POST /security/content-selectors/preview` {expression, repository?, format?}: the assets the
 * expression matches among those the caller may browse, paged like /assets.
 */
export function securitySelectorRoutes(app: Stowage): ApiRoute[] {
  const tags = ['Security management'];
  const selName = params({ name: pathParam('Content selector name') });
  const selectors = app.security.selectors;

  return [
    route({
      method: 'GET',
      path: '/security/content-selectors',
      operationId: 'getContentSelectors',
      tags,
      summary: 'List content selectors',
      access: { privilege: 'nx-selectors-read' },
      responses: { 200: ok(z.array(ContentSelector)) },
      handler: async (ctx) => {
        ctx.body = (await selectors.list()).map(selectorXO);
      },
    }),
    route({
      method: 'POST',
      path: '/security/content-selectors/preview',
      operationId: 'previewContentSelector',
      tags,
      summary: 'Preview: the assets an expression matches, among those the caller may browse (paged like /assets). Stowage extension',
      access: { privilege: 'nx-selectors-read' },
      query: z.object(paging),
      body: { schema: ContentSelectorPreview },
      responses: { 200: ok(PageAssetXO), 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx, input) => {
        const body = object(await input.body());
        const selector = compileExpression(body.expression);
        const { token, limit } = pageParams(ctx);
        const scope = await previewScope(app, ctx, optString(body, 'repository'), optString(body, 'format'));
        ctx.body = await preview(app, ctx, selector, scope, token, limit);
      },
    }),
    route({
      method: 'POST',
      path: '/security/content-selectors',
      operationId: 'createContentSelector',
      tags,
      summary: 'Create a content selector (CSEL: format, path; ==, !=, =~, =^; and, or, parentheses)',
      access: { privilege: 'nx-selectors-create' },
      body: { schema: ContentSelectorRequest },
      responses: { 204: noContent, 400: badRequestXO, 409: conflict },
      handler: async (ctx, input) => {
        const created = await selectors.create(object(await input.body()));
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'created', context: created.name, attributes: { after: selectorXO(created) } });
        ctx.status = 204;
      },
    }),
    route({
      method: 'GET',
      path: '/security/content-selectors/:name',
      operationId: 'getContentSelector',
      tags,
      summary: 'A content selector',
      access: { privilege: 'nx-selectors-read' },
      params: selName,
      responses: { 200: ok(ContentSelector), 404: notFoundXO },
      handler: async (ctx) => {
        ctx.body = selectorXO(await selectors.require(ctx.params.name));
      },
    }),
    route({
      method: 'PUT',
      path: '/security/content-selectors/:name',
      operationId: 'updateContentSelector',
      tags,
      summary: 'Update a content selector',
      access: { privilege: 'nx-selectors-update' },
      params: selName,
      body: { schema: ContentSelectorRequest },
      responses: { 204: noContent, 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx, input) => {
        const { before, after } = await selectors.update(ctx.params.name, object(await input.body()));
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'updated', context: after.name, attributes: { before: selectorXO(before), after: selectorXO(after) } });
        ctx.status = 204;
      },
    }),
    route({
      method: 'DELETE',
      path: '/security/content-selectors/:name',
      operationId: 'deleteContentSelector',
      tags,
      summary: 'Delete a content selector (refused while a privilege uses it)',
      access: { privilege: 'nx-selectors-delete' },
      params: selName,
      responses: { 204: noContent, 404: notFoundXO, 409: conflict },
      handler: async (ctx) => {
        const before = await selectors.delete(ctx.params.name);
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'deleted', context: before.name, attributes: { before: selectorXO(before) } });
        ctx.status = 204;
      },
    }),
  ];
}
