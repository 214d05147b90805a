import { z } from 'zod';
import type { Stowage } from '../stowage.js';
import { auditOrigin } from '../http/auth.js';
import { pageParams, requiredParam } from './params.js';
import { ContentViews, repositoryScope } from './content-views.js';
import { uploadComponent } from './upload.js';
import { route, type ApiRoute } from './route.js';
import { ComponentXO, PageComponentXO, badRequest, noContent, notFound, ok, paging, params, pathParam } from './schemas.js';

const tags = ['Components'];
const id = params({ id: pathParam('Component id') });

/** `<format>.directory`, `<format>.assetN`, `<format>.assetN.filename` for every format. */
function uploadForm(formats: Iterable<string>): z.ZodType {
  const shape: Record<string, z.ZodType> = {};
  for (const f of formats) {
    shape[`${f}.directory`] = z.string().optional().describe(`Folder for the files (${f} repositories)`);
    shape[`${f}.asset1`] = z.string().meta({ format: 'binary' }).optional().describe('A file; further files are asset2, asset3, …');
    shape[`${f}.asset1.filename`] = z.string().optional().describe('Its file name (required; may contain folders)');
  }
  return z.object(shape);
}

/** `/components`: list one repository's components (paged), get and delete by id, multipart upload. */
export function componentRoutes(app: Stowage): ApiRoute[] {
  return [
    route({
      method: 'GET',
      path: '/components',
      operationId: 'getComponents',
      tags,
      summary: "List a repository's components",
      access: { requires: 'browse on the repository' },
      query: z.object({ repository: z.string().describe('Repository name (a group lists its members)'), ...paging }),
      responses: { 200: ok(PageComponentXO), 400: badRequest, 404: notFound },
      handler: async (ctx) => {
        const scope = await repositoryScope(app, ctx, requiredParam(ctx, 'repository'));
        const { token, limit } = pageParams(ctx);
        ctx.body = await new ContentViews(app, app.baseUrl(ctx)).componentPage(scope, {}, token, limit);
      },
    }),
    route({
      method: 'POST',
      path: '/components',
      operationId: 'uploadComponent',
      tags,
      summary: 'Upload files as Nexus does (multipart): <format>.directory, <format>.assetN (file), <format>.assetN.filename',
      access: { privilege: 'nx-component-upload' },
      description: 'The caller also needs add on the repository.',
      query: z.object({ repository: z.string().describe('Repository name') }),
      // The form's fields are named after the repository's format.
      body: { schema: uploadForm(app.formats.keys()), contentType: 'multipart/form-data' },
      responses: { 204: noContent, 400: badRequest, 404: notFound },
      handler: async (ctx) => {
        await uploadComponent(app, ctx, requiredParam(ctx, 'repository'));
        ctx.status = 204;
      },
    }),
    route({
      method: 'GET',
      path: '/components/:id',
      operationId: 'getComponentById',
      tags,
      summary: 'A component',
      access: { requires: 'browse on its repository' },
      params: id,
      responses: { 200: ok(ComponentXO), 404: notFound },
      handler: async (ctx) => {
        ctx.body = (await new ContentViews(app, app.baseUrl(ctx)).findComponent(ctx, ctx.params.id, 'browse')).item;
      },
    }),
    // Through the owning repository's unit of work, so the format's maintenance hook runs (npm drops
    // the version from its packument).
    route({
      method: 'DELETE',
      path: '/components/:id',
      operationId: 'deleteComponent',
      tags,
      summary: 'Delete a component and its assets',
      access: { requires: 'delete on its repository' },
      params: id,
      responses: { 204: noContent, 404: notFound },
      handler: async (ctx) => {
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
      },
    }),
  ];
}
