import { z } from 'zod';
import { AppError } from '../../src/errors.js';
import type { ContentRequest, FormatPlugin } from '../../src/repository/format.js';
import { sendContent } from '../../src/http/send-content.js';
import { renderListing } from '../../src/http/listing.js';

export interface RawSection {
  contentDisposition: 'INLINE' | 'ATTACHMENT';
}

import { rawComponent, rawContentType } from './paths.js';
import { planRawUpload } from './upload.js';

export { rawComponent, rawContentType };

async function get(req: ContentRequest): Promise<void> {
  const { ctx, repo, path } = req;
  // `/repository/name` → `/repository/name/`, or the listing's relative links would miss the repository.
  if (path === '' && !ctx.path.endsWith('/')) {
    ctx.redirect(ctx.path + '/' + (ctx.querystring ? '?' + ctx.querystring : ''));
    return;
  }
  if (path === '' || path.endsWith('/')) {
    const entries = await repo.list(path);
    if (entries.length === 0 && path !== '') throw new AppError('NOT_FOUND', `Path not found: ${path}`);
    renderListing(ctx, repo.name, path, entries);
    return;
  }
  const content = await repo.get(path);
  if (!content) {
    // A folder asked for without its trailing slash: send the client to the listing.
    if ((await repo.list(path + '/')).length > 0) {
      ctx.redirect(ctx.path + '/');
      return;
    }
    throw new AppError('NOT_FOUND', `Path not found: ${path}`);
  }
  const disposition = repo.section<RawSection>('raw')?.contentDisposition ?? 'ATTACHMENT';
  await sendContent(ctx, content, { disposition });
  repo.downloaded(content);
}

async function put(req: ContentRequest): Promise<void> {
  const { ctx, repo, path } = req;
  if (path === '' || path.endsWith('/')) throw new AppError('BAD_REQUEST', 'A file path is required (it must not end with /)');
  const declared = ctx.get('Content-Length');
  if (!declared && ctx.get('Transfer-Encoding') === '') throw new AppError('BAD_REQUEST', 'Content-Length or chunked body required', { status: 411 });
  const expectedSize = declared ? Number(declared) : undefined;
  if (expectedSize !== undefined && (!Number.isSafeInteger(expectedSize) || expectedSize < 0)) throw new AppError('BAD_REQUEST', 'Invalid Content-Length');
  const r = await repo.put(
    path,
    ctx.req,
    {
      contentType: rawContentType(path),
      component: rawComponent(path),
      expectedSize,
      expected: { sha256: ctx.get('X-Checksum-Sha256') || undefined, sha1: ctx.get('X-Checksum-Sha1') || undefined, md5: ctx.get('X-Checksum-Md5') || undefined },
    },
    req.access,
  );
  ctx.status = r.created ? 201 : 200;
  ctx.set('ETag', `"${r.blob.sha1}"`);
  ctx.body = '';
}

async function del(req: ContentRequest): Promise<void> {
  const { ctx, repo, path } = req;
  if (path === '' || path.endsWith('/')) throw new AppError('BAD_REQUEST', 'Folders are deleted through the REST API');
  const deleted = await repo.delete(path, {
    access: req.access,
    origin: { principal: req.principal, remoteAddress: ctx.ip },
    audit: { domain: 'repository.asset', type: 'deleted', context: path, attributes: { path } },
  });
  if (!deleted) throw new AppError('NOT_FOUND', `Path not found: ${path}`);
  ctx.status = 204;
}

export const raw: FormatPlugin = {
  name: 'raw',
  sections: [
    {
      key: 'raw',
      schema: z.object({ contentDisposition: z.enum(['INLINE', 'ATTACHMENT']).default('ATTACHMENT') }),
      defaults: () => ({ contentDisposition: 'ATTACHMENT' }),
    },
  ],
  planUpload: planRawUpload,
  componentOf: rawComponent,
  // Raw components have no versions: none orders before another, none is a prerelease.
  compareVersions: () => 0,
  isPrerelease: () => false,
  proxyAsset: (path, upstream) => ({ contentType: upstream.contentType ?? rawContentType(path), component: rawComponent(path) }),
  // sha1 is the ETag of a PUT; md5 and sha1 are the checksums Nexus shows for raw assets.
  digests: ['sha256', 'sha1', 'md5'],
  routes: [
    { methods: ['GET'], path: /(?:^|\/)$/, need: 'browse', handler: get },
    { methods: ['GET'], path: /^/, need: 'read', handler: get },
    { methods: ['PUT'], path: /^/, need: 'add', handler: put },
    { methods: ['DELETE'], path: /^/, need: 'delete', handler: del },
  ],
};
