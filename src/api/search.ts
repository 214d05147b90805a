import Router from '@koa/router';
import type Koa from 'koa';
import type { Stowage } from '../stowage.js';
import { badRequest, notFound } from '../errors.js';
import { requireApp } from '../http/auth.js';
import { MAX_PAGE_SIZE, pageParams, queryParam } from './params.js';
import { ContentViews, searchScope, type ContentSearch } from './content-views.js';

/** Nexus search parameters: exact values with `*` wildcards, `q` a keyword, digests exact. */
function searchParams(ctx: Koa.Context): ContentSearch & { repository?: string; format?: string } {
  const p = (n: string) => queryParam(ctx, n);
  return {
    repository: p('repository'),
    format: p('format'),
    namespace: p('group'),
    name: p('name'),
    version: p('version'),
    keyword: p('q'),
    sha256: p('sha256'),
    sha1: p('sha1'),
    md5: p('md5'),
    sha512: p('sha512'),
  };
}

/** Orders versions as people read them: 1.10 after 1.9, numbers inside names compared as numbers. */
const byVersion = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** `/search`, `/search/assets`, `/search/assets/download`: results limited to what the caller may browse. */
export function searchRoutes(app: Stowage): Router {
  const r = new Router();

  const run = async (ctx: Koa.Context) => {
    await requireApp(app, ctx, 'nx-search-read');
    const { repository, format, ...search } = searchParams(ctx);
    const scope = await searchScope(app, ctx, { repository, format });
    return { views: new ContentViews(app, app.baseUrl(ctx)), scope, search };
  };

  r.get('/search', async (ctx) => {
    const { views, scope, search } = await run(ctx);
    const { token, limit } = pageParams(ctx);
    ctx.body = await views.componentPage(scope, search, token, limit);
  });

  r.get('/search/assets', async (ctx) => {
    const { views, scope, search } = await run(ctx);
    const { token, limit } = pageParams(ctx);
    ctx.body = await views.assetPage(scope, search, token, limit);
  });

  // The one match (several: 400, as Nexus); with sort=version the asset of the highest version (Nexus's "latest" idiom).
  r.get('/search/assets/download', async (ctx) => {
    const sort = queryParam(ctx, 'sort');
    if (sort !== undefined && sort !== 'version') throw badRequest('sort: only sort=version is supported for downloads', { field: 'sort' });
    const { views, scope, search } = await run(ctx);
    const ascending = queryParam(ctx, 'direction')?.toLowerCase() === 'asc';
    let best;
    if (sort === 'version') {
      const { items } = await views.componentPage(scope, search, null, MAX_PAGE_SIZE);
      const sorted = items.filter((c) => c.assets.length > 0).sort((a, b) => byVersion.compare(a.version ?? '', b.version ?? ''));
      best = (ascending ? sorted[0] : sorted[sorted.length - 1])?.assets[0];
    } else {
      // As Nexus: an ambiguous search is the caller's mistake, not a pick of one of the matches.
      const { items } = await views.assetPage(scope, search, null, 2);
      if (items.length > 1) {
        throw badRequest('Search returned multiple assets, please refine search criteria to find a single asset or use the sort query parameter to retrieve the first result');
      }
      best = items[0];
    }
    if (!best) throw notFound('No asset matches the search');
    ctx.redirect(best.downloadUrl);
  });

  return r;
}
