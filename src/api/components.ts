import Router from '@koa/router';
import type { Stowage } from '../stowage.js';
import { auditOrigin, requireApp } from '../http/auth.js';
import { pageParams, requiredParam } from './params.js';
import { ContentViews, repositoryScope } from './content-views.js';
import { uploadComponent } from './upload.js';

/** `/components`: list one repository's components (paged), get and delete by id, multipart upload. */
export function componentRoutes(app: Stowage): Router {
  const r = new Router();

  r.get('/components', async (ctx) => {
    const scope = await repositoryScope(app, ctx, requiredParam(ctx, 'repository'));
    const { token, limit } = pageParams(ctx);
    ctx.body = await new ContentViews(app, app.baseUrl(ctx)).componentPage(scope, {}, token, limit);
  });

  r.post('/components', async (ctx) => {
    await requireApp(app, ctx, 'nx-component-upload');
    await uploadComponent(app, ctx, requiredParam(ctx, 'repository'));
    ctx.status = 204;
  });

  r.get('/components/:id', async (ctx) => {
    ctx.body = (await new ContentViews(app, app.baseUrl(ctx)).findComponent(ctx, ctx.params.id, 'browse')).item;
  });

  // Through the owning repository's unit of work, so the format's maintenance hook runs (npm drops
  // the version from its packument).
  r.delete('/components/:id', async (ctx) => {
    const { row, item, owner } = await new ContentViews(app, app.baseUrl(ctx)).findComponent(ctx, ctx.params.id, 'delete');
    await owner.change({ source: 'rest', origin: auditOrigin(ctx) }, (c) =>
      c.deleteComponent(row.id).audit({
        domain: 'repository.component',
        type: 'deleted',
        context: [item.group, item.name, item.version].filter(Boolean).join(':'),
        attributes: { group: item.group, name: item.name, version: item.version, assets: item.assets.map((a) => a.path) },
      }),
    );
    ctx.status = 204;
  });

  return r;
}
