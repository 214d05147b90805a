import type { Stowage } from '../stowage.js';
import { badRequest } from '../errors.js';
import { auditOrigin } from '../http/auth.js';
import { parsePolicy, policyXO, type Policy } from '../cleanup/policy.js';
import type { PreviewPage } from '../cleanup/cleanup-service.js';
import { encodeId } from './content-xo.js';
import { iso, pageParams, queryParam, requiredParam } from './params.js';
import { z } from 'zod';
import { route, type ApiRoute } from './route.js';
import { badRequest as badRequestXO, conflict, noContent, notFound as notFoundXO, ok, paging, params, pathParam, str } from './schemas.js';

const DOMAIN = 'cleanup.policy';

const CleanupPolicyRequest = z
  .object({
    name: z.string(),
    format: z.string().describe('A format, or * for every format'),
    notes: z.string().optional(),
    criteriaLastBlobUpdated: z.int().min(0).nullable().optional().describe('Days since the component was last updated'),
    criteriaLastDownloaded: z.int().min(0).nullable().optional().describe('Days since the component was last downloaded'),
    criteriaReleaseType: z.enum(['RELEASES', 'PRERELEASES']).nullable().optional(),
    criteriaAssetRegex: z.string().nullable().optional(),
    retain: z.int().min(1).nullable().optional().describe('Keep this many newest versions'),
    sortBy: z.enum(['version', 'date']).nullable().optional().describe('What "newest" means for retain'),
  })
  .meta({ id: 'CleanupPolicyRequest' });

const CleanupPolicyXO = CleanupPolicyRequest.required().extend({ notes: z.string(), inUseCount: z.int() }).meta({ id: 'CleanupPolicyXO' });

const CleanupPreviewItem = z
  .object({
    id: z.string(),
    repository: z.string(),
    format: z.string(),
    group: z.string().nullable(),
    name: z.string(),
    version: z.string().nullable(),
    assetCount: z.int(),
    bytes: z.int(),
    lastBlobUpdated: z.string().nullable(),
    lastUsed: z.string().nullable(),
  })
  .meta({ id: 'CleanupPreviewItem' });

const CleanupPreviewPage = z
  .object({
    items: z.array(CleanupPreviewItem),
    continuationToken: z.string().nullable(),
    totals: z.object({ components: z.int(), assets: z.int(), bytes: z.int() }),
  })
  .meta({ id: 'CleanupPreviewPage' });
/** Nexus's internal preview answers this many components at most. */
const INTERNAL_PREVIEW_LIMIT = 50;

function previewItem(c: PreviewPage['items'][number]) {
  return {
    id: encodeId(c.repository.name, c.id),
    repository: c.repository.name,
    format: c.repository.format.name,
    group: c.namespace || null,
    name: c.name,
    version: c.version || null,
    assetCount: c.assetCount,
    bytes: c.bytes,
    lastBlobUpdated: iso(c.lastUpdated),
    lastUsed: iso(c.lastUsed),
  };
}

async function xo(app: Stowage, p: Policy) {
  return policyXO(p, await app.cleanup.policies.inUseCount(p.id));
}

async function previewRepository(app: Stowage, name: string, field: string) {
  const repo = await app.repositories.find(name);
  if (!repo) throw badRequest(`${field}: repository '${name}' does not exist`, { field });
  return repo;
}

/**
 * `/cleanup-policies` in Nexus's shape (CleanupPolicyXO), with `inUseCount`; a preview of what a
 * policy would delete in one repository (paged, with totals); and "run now" of one policy, through
 * the cleanup task (one run at a time across nodes). Privileges: `nx-cleanup-policies-<action>`.
 */
export function cleanupPolicyRoutes(app: Stowage): ApiRoute[] {
  const tags = ['Cleanup policies'];

  return [
    route({
      method: 'GET',
      path: '/cleanup-policies',
      operationId: 'getCleanupPolicies',
      tags,
      summary: 'List cleanup policies (with the number of repositories using each)',
      access: { privilege: 'nx-cleanup-policies-read' },
      responses: { 200: ok(z.array(CleanupPolicyXO)) },
      handler: async (ctx) => {
        const counts = await app.cleanup.policies.inUseCounts();
        ctx.body = (await app.cleanup.policies.list()).map((p) => policyXO(p, counts.get(p.id) ?? 0));
      },
    }),
    route({
      method: 'POST',
      path: '/cleanup-policies',
      operationId: 'createCleanupPolicy',
      tags,
      summary: 'Create a cleanup policy',
      access: { privilege: 'nx-cleanup-policies-create' },
      body: { schema: CleanupPolicyRequest },
      responses: { 201: ok(CleanupPolicyXO, 'Created'), 400: badRequestXO, 409: conflict },
      handler: async (ctx, input) => {
        const parsed = parsePolicy(await input.body(), app.formats);
        const created = await app.cleanup.policies.create(parsed);
        const body = await xo(app, created);
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'created', context: created.name, attributes: { after: body } });
        ctx.status = 201;
        ctx.set('Location', `${app.baseUrl(ctx)}/service/rest/v1/cleanup-policies/${encodeURIComponent(created.name)}`);
        ctx.body = body;
      },
    }),
    route({
      method: 'GET',
      path: '/cleanup-policies/:name',
      operationId: 'getCleanupPolicy',
      tags,
      summary: 'A cleanup policy',
      access: { privilege: 'nx-cleanup-policies-read' },
      params: params({ name: pathParam('Cleanup policy name') }),
      responses: { 200: ok(CleanupPolicyXO), 404: notFoundXO },
      handler: async (ctx) => {
        ctx.body = await xo(app, await app.cleanup.policies.require(ctx.params.name));
      },
    }),
    route({
      method: 'PUT',
      path: '/cleanup-policies/:name',
      operationId: 'updateCleanupPolicy',
      tags,
      summary: 'Replace a cleanup policy',
      access: { privilege: 'nx-cleanup-policies-update' },
      params: params({ name: pathParam('Cleanup policy name') }),
      body: { schema: CleanupPolicyRequest },
      responses: { 200: ok(CleanupPolicyXO), 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx, input) => {
        const current = await app.cleanup.policies.require(ctx.params.name);
        const parsed = parsePolicy(await input.body(), app.formats, current);
        const users = await app.cleanup.repositoriesUsing(current);
        const before = await xo(app, current);
        const after = await xo(app, await app.cleanup.policies.update(current, parsed, [...new Set(users.map((u) => u.format.name))]));
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'updated', context: current.name, attributes: { before, after } });
        ctx.body = after;
      },
    }),
    route({
      method: 'DELETE',
      path: '/cleanup-policies/:name',
      operationId: 'deleteCleanupPolicy',
      tags,
      summary: 'Delete a cleanup policy',
      access: { privilege: 'nx-cleanup-policies-delete' },
      params: params({ name: pathParam('Cleanup policy name') }),
      responses: { 204: noContent, 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx) => {
        const current = await app.cleanup.policies.require(ctx.params.name);
        const before = await xo(app, current);
        await app.cleanup.policies.delete(current);
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'deleted', context: current.name, attributes: { before } });
        ctx.status = 204;
      },
    }),
    route({
      method: 'GET',
      path: '/cleanup-policies/:name/preview',
      operationId: 'previewCleanupPolicy',
      tags,
      summary: 'What the policy would delete in one repository (paged, with totals)',
      access: { privilege: 'nx-cleanup-policies-read' },
      params: params({ name: pathParam('Cleanup policy name') }),
      query: z.object({
        repository: z.string().describe('A hosted or proxy repository'),
        filter: z.string().optional().describe('Only components whose name contains this'),
        ...paging,
      }),
      responses: { 200: ok(CleanupPreviewPage), 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx) => {
        const policy = await app.cleanup.policies.require(ctx.params.name);
        const repo = await previewRepository(app, requiredParam(ctx, 'repository'), 'repository');
        const { token, limit } = pageParams(ctx);
        const page = await app.cleanup.preview(policy, repo, token, limit, queryParam(ctx, 'filter'));
        ctx.body = { items: page.items.map(previewItem), continuationToken: page.continuationToken, totals: page.totals };
      },
    }),
    // Starts the run and answers at once, as task runs do; the task's log and result tell the rest.
    route({
      method: 'POST',
      path: '/cleanup-policies/:name/run',
      operationId: 'runCleanupPolicy',
      tags,
      summary: 'Run the policy now through the cleanup task (answers once the run has started)',
      access: { privilege: 'nx-cleanup-policies-run' },
      params: params({ name: pathParam('Cleanup policy name') }),
      query: z.object({ repository: z.string().optional().describe('Only this repository (default: every repository using the policy)') }),
      responses: { 202: ok(z.object({ taskId: str, runId: str }), 'Started'), 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx) => {
        const policy = await app.cleanup.policies.require(ctx.params.name);
        const repository = queryParam(ctx, 'repository');
        if (repository) await previewRepository(app, repository, 'repository');
        const taskId = await app.cleanup.task();
        const { runId } = await app.tasks.begin(taskId, { policyName: policy.name, ...(repository ? { repositoryName: repository } : {}) });
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'run', context: policy.name, attributes: { taskId, runId, repository: repository ?? null } });
        ctx.status = 202;
        ctx.body = { taskId, runId: String(runId) };
      },
    }),
  ];
}

/**
 * Nexus's `POST /service/rest/internal/cleanup-policies/preview/components` (what its UI calls
 * while a policy is edited): `{repository, criteria…}` or `{repository, policyName}`, answered as
 * `{total, results}` with at most 50 components.
 */
export function cleanupInternalRoutes(app: Stowage): ApiRoute[] {
  return [
    route({
      method: 'POST',
      path: '/cleanup-policies/preview/components',
      operationId: 'previewCleanupComponents',
      tags: ['Cleanup policies'],
      summary: 'Preview of unsaved criteria, as the Nexus UI asks for it (at most 50 components)',
      access: { privilege: 'nx-cleanup-policies-read' },
      body: { schema: CleanupPolicyRequest.extend({ repository: str, policyName: str.optional(), filter: str.nullable().optional() }).partial({ name: true, format: true }) },
      responses: { 200: ok(z.object({ total: z.int(), results: z.array(CleanupPreviewItem) })), 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx, input) => {
        const body = await input.body();
        if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('body: expected a JSON object', { field: 'body' });
        const { repository, repositoryName, policyName, filter, ...criteria } = body as Record<string, unknown>;
        const repoName = repository ?? repositoryName;
        if (typeof repoName !== 'string' || repoName === '') throw badRequest('repository: required', { field: 'repository' });
        if (filter !== undefined && filter !== null && typeof filter !== 'string') throw badRequest('filter: expected a string', { field: 'filter' });
        const repo = await previewRepository(app, repoName, 'repository');
        let policy: Policy;
        if (typeof policyName === 'string' && policyName !== '') policy = await app.cleanup.policies.require(policyName);
        else {
          const { name: _n, format: _f, ...rest } = criteria;
          policy = { id: 0, ...parsePolicy({ ...rest, name: 'preview', format: repo.format.name }, app.formats) };
        }
        const page = await app.cleanup.preview(policy, repo, null, INTERNAL_PREVIEW_LIMIT, (filter as string | undefined) || undefined);
        ctx.body = { total: page.totals.components, results: page.items.map(previewItem) };
      },
    }),
  ];
}
