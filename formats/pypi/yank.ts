/**
 * PEP 592 yanking in hosted repositories, through the REST API:
 * `POST /service/rest/v1/pypi/yank` with `{repository, project, version | filename, yanked, reason}`.
 * The files' `yanked` state is kept on their assets; the maintenance hook then rebuilds the page
 * (`data-yanked` / `"yanked"`), so pip skips them unless pinned with `==`.
 */
import type Koa from 'koa';
import { AppError, badRequest } from '../../src/errors.js';
import { readJson } from '../../src/api/body.js';
import { auditOrigin, requireContent } from '../../src/http/auth.js';
import type { ApiRoute } from '../../src/repository/format.js';
import type { Stowage } from '../../src/stowage.js';
import type { FileAttributes } from './layout.js';
import { normalizeName, sameVersion } from './names.js';

interface YankBody {
  repository: string;
  project: string;
  version?: string;
  filename?: string;
  yanked: boolean;
  reason?: string;
}

function parseBody(b: unknown): YankBody {
  if (!b || typeof b !== 'object' || Array.isArray(b)) throw badRequest('body: expected a JSON object', { field: 'body' });
  const o = b as Record<string, unknown>;
  const str = (k: string, required: boolean): string | undefined => {
    const v = o[k];
    if (v === undefined || v === null) {
      if (required) throw badRequest(`${k}: is required`, { field: k });
      return undefined;
    }
    if (typeof v !== 'string' || v === '' || v.length > 1000) throw badRequest(`${k}: must be a non-empty string`, { field: k });
    return v;
  };
  const body: YankBody = {
    repository: str('repository', true)!,
    project: str('project', true)!,
    version: str('version', false),
    filename: str('filename', false),
    reason: str('reason', false),
    yanked: true,
  };
  if (o.yanked !== undefined && typeof o.yanked !== 'boolean') throw badRequest('yanked: must be true or false', { field: 'yanked' });
  if (o.yanked === false) body.yanked = false;
  if (!body.version && !body.filename) throw badRequest('version: a version or a filename is required', { field: 'version' });
  return body;
}

async function yank(ctx: Koa.Context, app: Stowage): Promise<void> {
  const body = parseBody(await readJson(ctx, 64 * 1024));
  const repo = await app.repositories.require(body.repository);
  if (repo.format.name !== 'pypi') throw badRequest(`repository: '${repo.name}' is not a pypi repository`, { field: 'repository' });
  await requireContent(app, ctx, { format: repo.format.name, repository: repo.name, action: 'edit' });
  if (repo.type !== 'hosted') throw new AppError('METHOD_NOT_ALLOWED', `Repository '${repo.name}' (${repo.type}) has no files of its own to yank`);
  const project = normalizeName(body.project);
  const files = (await app.content.findAssets(repo.id, { pathPrefix: `packages/${project}/` })).filter((a) => {
    const p = (a.attributes as { pypi?: FileAttributes }).pypi;
    if (!p?.filename || a.path.endsWith('.metadata')) return false;
    return body.filename ? p.filename === body.filename : sameVersion(p.version, body.version!);
  });
  if (files.length === 0) throw new AppError('NOT_FOUND', `No file of ${project} ${body.filename ?? body.version} in ${repo.name}`);
  const state = body.yanked ? (body.reason ?? true) : false;
  await repo.change({ source: 'rest', origin: auditOrigin(ctx), key: project }, (c) => {
    for (const a of files) {
      const p = (a.attributes as { pypi: FileAttributes }).pypi;
      c.expectAsset(a.path, a.blob_id);
      c.put(a.path, { blobId: a.blob_id }, { contentType: a.content_type, kind: 'content', attributes: { pypi: { ...p, yanked: state } } });
    }
    c.audit({ domain: 'repository.component', type: body.yanked ? 'yanked' : 'unyanked', context: project, attributes: { project, files: files.map((a) => a.path) } });
  });
  ctx.status = 200;
  ctx.body = { repository: repo.name, project, files: files.map((a) => ({ filename: (a.attributes as { pypi: FileAttributes }).pypi.filename, yanked: state })) };
}

export const yankRoutes: ApiRoute[] = [
  {
    method: 'POST',
    path: '/yank',
    handler: yank,
    openapi: {
      summary: 'Yank or un-yank files of a project in a hosted PyPI repository (PEP 592)',
      description:
        'Requires edit on the repository. Names one file (`filename`) or every file of a `version` (compared as PEP 440 versions). ' +
        'Yanked files stay downloadable and listed with `data-yanked` (HTML) / `"yanked"` (JSON): installers skip them unless the version is pinned with `==`. ' +
        '`yanked: false` un-yanks.',
      requestBody: {
        required: true,
        content: {
          'application/json': {
            schema: {
              type: 'object',
              required: ['repository', 'project'],
              properties: {
                repository: { type: 'string' },
                project: { type: 'string', description: 'Project name (normalised as PEP 503 does)' },
                version: { type: 'string', description: 'Every file of this version' },
                filename: { type: 'string', description: 'Just this file' },
                yanked: { type: 'boolean', default: true },
                reason: { type: 'string', description: 'Shown by installers' },
              },
            },
          },
        },
      },
      responses: {
        '200': { description: 'The files changed, with their new state' },
        '400': { description: 'Invalid body, or not a pypi repository' },
        '401': { description: 'Authentication required' },
        '403': { description: 'Not permitted (edit is needed)' },
        '404': { description: 'No such repository, project, version or file' },
        '405': { description: 'Not a hosted repository' },
      },
    },
  },
];
