import type Koa from 'koa';
import { z } from 'zod';
import type { Stowage } from '../stowage.js';
import { badRequest, notFound } from '../errors.js';
import { MAX_PAGE_SIZE, pageParams, queryParam } from './params.js';
import { ContentViews, searchScope, type ContentSearch } from './content-views.js';
import type { ComponentFilter } from '../content/content-service.js';
import { route, type ApiRoute } from './route.js';
import { PageAssetXO, PageComponentXO, badRequest as badRequestXO, notFound as notFoundXO, ok, paging, searchQuery } from './schemas.js';

/** Nexus search parameters: exact values with `*` wildcards, `q` a keyword, digests exact. */
function searchParams(app: Stowage, ctx: Koa.Context): ContentSearch & { repository?: string; format?: string } {
  const p = (n: string) => queryParam(ctx, n);
  const formatFilters: ComponentFilter = {};
  for (const format of app.formats.values()) {
    for (const [name, toFilter] of Object.entries(format.searchParameters ?? {})) {
      const v = p(name);
      if (v === undefined) continue;
      const { attributes, assetAttributes, ...fields } = toFilter(v);
      Object.assign(formatFilters, fields);
      if (attributes) formatFilters.attributes = { ...formatFilters.attributes, ...attributes };
      if (assetAttributes) formatFilters.assetAttributes = { ...formatFilters.assetAttributes, ...assetAttributes };
    }
  }
  return {
    ...formatFilters,
    repository: p('repository'),
    format: p('format'),
    namespace: p('group') ?? formatFilters.namespace,
    name: p('name') ?? formatFilters.name,
    version: p('version') ?? formatFilters.version,
    keyword: p('q') ?? formatFilters.keyword,
    sha256: p('sha256'),
    sha1: p('sha1'),
    md5: p('md5'),
    sha512: p('sha512'),
  };
}

/**
 * Orders versions as people read them: 1.10 after 1.9, numbers inside names compared as numbers.
 * Made on the first search that sorts: a collator maps ICU's collation data, ~2 MB of idle RSS.
 */
let versionCollator: Intl.Collator | undefined;
const byVersion = () => (versionCollator ??= new Intl.Collator('en', { numeric: true, sensitivity: 'base' }));

const tags = ['Search'];
const access = { privilege: 'nx-search-read' };

/** `/search`, `/search/assets`, `/search/assets/download`: results limited to what the caller may browse. */
export function searchRoutes(app: Stowage): ApiRoute[] {
  // The formats' own search parameters (maven.groupId…) are documented next to Nexus's common ones.
  const formatQuery: Record<string, z.ZodOptional<z.ZodString>> = {};
  for (const format of app.formats.values()) {
    for (const name of Object.keys(format.searchParameters ?? {})) formatQuery[name] = z.string().optional().describe(`${format.name} search parameter`);
  }
  const run = async (ctx: Koa.Context) => {
    const { repository, format, ...search } = searchParams(app, ctx);
    const scope = await searchScope(app, ctx, { repository, format });
    return { views: new ContentViews(app, app.baseUrl(ctx)), scope, search };
  };

  return [
    route({
      method: 'GET',
      path: '/search',
      operationId: 'search',
      tags,
      summary: 'Search components (only repositories the caller may browse)',
      access,
      query: z.object({ ...searchQuery, ...formatQuery, ...paging }),
      responses: { 200: ok(PageComponentXO), 400: badRequestXO },
      handler: async (ctx) => {
        const { views, scope, search } = await run(ctx);
        const { token, limit } = pageParams(ctx);
        ctx.body = await views.componentPage(scope, search, token, limit);
      },
    }),
    route({
      method: 'GET',
      path: '/search/assets',
      operationId: 'searchAssets',
      tags,
      summary: 'Search assets (only repositories the caller may browse)',
      access,
      query: z.object({ ...searchQuery, ...formatQuery, ...paging }),
      responses: { 200: ok(PageAssetXO), 400: badRequestXO },
      handler: async (ctx) => {
        const { views, scope, search } = await run(ctx);
        const { token, limit } = pageParams(ctx);
        ctx.body = await views.assetPage(scope, search, token, limit);
      },
    }),
    // The one match (several: 400, as Nexus); with sort=version the asset of the highest version (Nexus's "latest" idiom).
    route({
      method: 'GET',
      path: '/search/assets/download',
      operationId: 'searchAndDownloadAssets',
      tags,
      summary: "Redirect to the matching asset's downloadUrl (several matches: 400; sort=version: the highest version)",
      access,
      query: z.object({
        ...searchQuery,
        ...formatQuery,
        sort: z.enum(['version']).optional().describe('version: the asset of the highest version'),
        direction: z.enum(['asc', 'desc']).optional().describe('asc or desc (default desc)'),
      }),
      responses: { 302: { description: 'Redirect to the asset' }, 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx) => {
        const sort = queryParam(ctx, 'sort');
        if (sort !== undefined && sort !== 'version') throw badRequest('sort: only sort=version is supported for downloads', { field: 'sort' });
        const { views, scope, search } = await run(ctx);
        const ascending = queryParam(ctx, 'direction')?.toLowerCase() === 'asc';
        let best;
        if (sort === 'version') {
          const { items } = await views.componentPage(scope, search, null, MAX_PAGE_SIZE);
          const sorted = items.filter((c) => c.assets.length > 0).sort((a, b) => byVersion().compare(a.version ?? '', b.version ?? ''));
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
      },
    }),
  ];
}
