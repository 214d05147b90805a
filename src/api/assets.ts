import type { Stowage } from '../stowage.js';
import { pageParams, requiredParam } from './params.js';
import { ContentViews, repositoryScope } from './content-views.js';
import { auditOrigin } from '../http/auth.js';
import { route, type ApiRoute } from './route.js';
import { AssetXO, PageAssetXO, badRequest, noContent, notFound, ok, paging, params, pathParam } from './schemas.js';
import { z } from 'zod';

const tags = ['Assets'];
const id = params({ id: pathParam('Asset id') });

/** `/assets`: list one repository's assets (paged), get and delete by id. */
export function assetRoutes(app: Stowage): ApiRoute[] {
  return [
    route({
      method: 'GET',
      path: '/assets',
      operationId: 'getAssets',
      tags,
      summary: "List a repository's assets",
      access: { requires: 'browse on the repository' },
      query: z.object({ repository: z.string().describe('Repository name (a group lists its members)'), ...paging }),
      responses: { 200: ok(PageAssetXO), 400: badRequest, 404: notFound },
      handler: async (ctx) => {
        const scope = await repositoryScope(app, ctx, requiredParam(ctx, 'repository'));
        const { token, limit } = pageParams(ctx);
        ctx.body = await new ContentViews(app, app.baseUrl(ctx)).assetPage(scope, {}, token, limit);
      },
    }),
    route({
      method: 'GET',
      path: '/assets/:id',
      operationId: 'getAssetById',
      tags,
      summary: 'An asset',
      access: { requires: 'browse on its repository' },
      params: id,
      responses: { 200: ok(AssetXO), 404: notFound },
      handler: async (ctx) => {
        ctx.body = (await new ContentViews(app, app.baseUrl(ctx)).findAsset(ctx, ctx.params.id, 'browse')).item;
      },
    }),
    // Through the owning repository's unit of work, so the format's maintenance hook runs.
    route({
      method: 'DELETE',
      path: '/assets/:id',
      operationId: 'deleteAsset',
      tags,
      summary: 'Delete an asset',
      access: { requires: 'delete on its repository' },
      params: id,
      responses: { 204: noContent, 404: notFound },
      handler: async (ctx) => {
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
      },
    }),
  ];
}
