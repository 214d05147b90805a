import Router from '@koa/router';
import type { Stowage } from '../stowage.js';
import { pageParams, requiredParam } from './params.js';
import { ContentViews, repositoryScope } from './content-views.js';
import { auditOrigin } from '../http/auth.js';

/** `/assets`: list one repository's assets (paged), get and delete by id. */
export function assetRoutes(app: Stowage): Router {
  const r = new Router();

  r.get('/assets', async (ctx) => {
    const scope = await repositoryScope(app, ctx, requiredParam(ctx, 'repository'));
    const { token, limit } = pageParams(ctx);
    ctx.body = await new ContentViews(app, app.baseUrl(ctx)).assetPage(scope, {}, token, limit);
  });

  r.get('/assets/:id', async (ctx) => {
    ctx.body = (await new ContentViews(app, app.baseUrl(ctx)).findAsset(ctx, ctx.params.id, 'browse')).item;
  });

  // Through the owning repository's unit of work, so the format's maintenance hook runs.
  r.delete('/assets/:id', async (ctx) => {
    const { row, item, owner } = await new ContentViews(app, app.baseUrl(ctx)).findAsset(ctx, ctx.params.id, 'delete');
    await owner.change({ source: 'rest', origin: auditOrigin(ctx) }, (c) =>
      c.deleteAssetById(row.id).audit({
        domain: 'repository.asset',
        type: 'deleted',
        context: row.path,
        attributes: { path: row.path, sha1: item.checksum.sha1, size: item.fileSize },
      }),
    );
    ctx.status = 204;
  });

  return r;
}
