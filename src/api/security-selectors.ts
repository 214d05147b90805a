import Router from '@koa/router';
import type Koa from 'koa';
import type { Stowage } from '../stowage.js';
import { encodeToken } from '../content/content-service.js';
import { auditOrigin, principalOf, requireApp } from '../http/auth.js';
import type { CompiledCsel } from '../security/csel.js';
import { compileExpression } from '../security/selectors.js';
import { readJson } from './body.js';
import { repositoryScope, type Scope } from './content-views.js';
import { canContent } from './access.js';
import { assetXO } from './content-xo.js';
import { pageParams } from './params.js';
import { object, optString, selectorXO } from './security-xo.js';

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
export function securitySelectorRoutes(app: Stowage): Router {
  const r = new Router();
  const maxJson = app.config.http.maxJsonBytes;
  const selectors = app.security.selectors;

  r.get('/security/content-selectors', async (ctx) => {
    await requireApp(app, ctx, 'nx-selectors-read');
    ctx.body = (await selectors.list()).map(selectorXO);
  });

  r.post('/security/content-selectors/preview', async (ctx) => {
    await requireApp(app, ctx, 'nx-selectors-read');
    const body = object(await readJson(ctx, maxJson));
    const selector = compileExpression(body.expression);
    const { token, limit } = pageParams(ctx);
    const scope = await previewScope(app, ctx, optString(body, 'repository'), optString(body, 'format'));
    ctx.body = await preview(app, ctx, selector, scope, token, limit);
  });

  r.post('/security/content-selectors', async (ctx) => {
    await requireApp(app, ctx, 'nx-selectors-create');
    const created = await selectors.create(object(await readJson(ctx, maxJson)));
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'created', context: created.name, attributes: { after: selectorXO(created) } });
    ctx.status = 204;
  });

  r.get('/security/content-selectors/:name', async (ctx) => {
    await requireApp(app, ctx, 'nx-selectors-read');
    ctx.body = selectorXO(await selectors.require(ctx.params.name));
  });

  r.put('/security/content-selectors/:name', async (ctx) => {
    await requireApp(app, ctx, 'nx-selectors-update');
    const { before, after } = await selectors.update(ctx.params.name, object(await readJson(ctx, maxJson)));
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'updated', context: after.name, attributes: { before: selectorXO(before), after: selectorXO(after) } });
    ctx.status = 204;
  });

  r.delete('/security/content-selectors/:name', async (ctx) => {
    await requireApp(app, ctx, 'nx-selectors-delete');
    const before = await selectors.delete(ctx.params.name);
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'deleted', context: before.name, attributes: { before: selectorXO(before) } });
    ctx.status = 204;
  });

  return r;
}
