import Router from '@koa/router';
import type Koa from 'koa';
import type { Stowage } from '../stowage.js';
import { badRequest } from '../errors.js';
import { auditOrigin, requireApp } from '../http/auth.js';
import { parsePolicy, policyXO, type Policy } from '../cleanup/policy.js';
import type { PreviewPage } from '../cleanup/cleanup-service.js';
import { readJson } from './body.js';
import { encodeId } from './content-xo.js';
import { iso, pageParams, queryParam, requiredParam } from './params.js';

const DOMAIN = 'cleanup.policy';
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
export function cleanupPolicyRoutes(app: Stowage): Router {
  const r = new Router();
  const maxJson = app.config.http.maxJsonBytes;

  r.get('/cleanup-policies', async (ctx) => {
    await requireApp(app, ctx, 'nx-cleanup-policies-read');
    const counts = await app.cleanup.policies.inUseCounts();
    ctx.body = (await app.cleanup.policies.list()).map((p) => policyXO(p, counts.get(p.id) ?? 0));
  });

  r.post('/cleanup-policies', async (ctx) => {
    await requireApp(app, ctx, 'nx-cleanup-policies-create');
    const parsed = parsePolicy(await readJson(ctx, maxJson), app.formats);
    const created = await app.cleanup.policies.create(parsed);
    const body = await xo(app, created);
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'created', context: created.name, attributes: { after: body } });
    ctx.status = 201;
    ctx.set('Location', `${app.baseUrl(ctx)}/service/rest/v1/cleanup-policies/${encodeURIComponent(created.name)}`);
    ctx.body = body;
  });

  r.get('/cleanup-policies/:name', async (ctx) => {
    await requireApp(app, ctx, 'nx-cleanup-policies-read');
    ctx.body = await xo(app, await app.cleanup.policies.require(ctx.params.name));
  });

  r.put('/cleanup-policies/:name', async (ctx) => {
    await requireApp(app, ctx, 'nx-cleanup-policies-update');
    const current = await app.cleanup.policies.require(ctx.params.name);
    const parsed = parsePolicy(await readJson(ctx, maxJson), app.formats, current);
    const users = await app.cleanup.repositoriesUsing(current);
    const before = await xo(app, current);
    const after = await xo(app, await app.cleanup.policies.update(current, parsed, [...new Set(users.map((u) => u.format.name))]));
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'updated', context: current.name, attributes: { before, after } });
    ctx.body = after;
  });

  r.delete('/cleanup-policies/:name', async (ctx) => {
    await requireApp(app, ctx, 'nx-cleanup-policies-delete');
    const current = await app.cleanup.policies.require(ctx.params.name);
    const before = await xo(app, current);
    await app.cleanup.policies.delete(current);
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'deleted', context: current.name, attributes: { before } });
    ctx.status = 204;
  });

  r.get('/cleanup-policies/:name/preview', async (ctx) => {
    await requireApp(app, ctx, 'nx-cleanup-policies-read');
    const policy = await app.cleanup.policies.require(ctx.params.name);
    const repo = await previewRepository(app, requiredParam(ctx, 'repository'), 'repository');
    const { token, limit } = pageParams(ctx);
    const page = await app.cleanup.preview(policy, repo, token, limit, queryParam(ctx, 'filter'));
    ctx.body = { items: page.items.map(previewItem), continuationToken: page.continuationToken, totals: page.totals };
  });

  // Starts the run and answers at once, as task runs do; the task's log and result tell the rest.
  r.post('/cleanup-policies/:name/run', async (ctx) => {
    await requireApp(app, ctx, 'nx-cleanup-policies-run');
    const policy = await app.cleanup.policies.require(ctx.params.name);
    const repository = queryParam(ctx, 'repository');
    if (repository) await previewRepository(app, repository, 'repository');
    const taskId = await app.cleanup.task();
    const { runId } = await app.tasks.begin(taskId, { policyName: policy.name, ...(repository ? { repositoryName: repository } : {}) });
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'run', context: policy.name, attributes: { taskId, runId, repository: repository ?? null } });
    ctx.status = 202;
    ctx.body = { taskId, runId: String(runId) };
  });

  return r;
}

/**
 * Nexus's `POST /service/rest/internal/cleanup-policies/preview/components` (what its UI calls
 * while a policy is edited): `{repository, criteria…}` or `{repository, policyName}`, answered as
 * `{total, results}` with at most 50 components.
 */
export function cleanupInternalRoutes(app: Stowage): Router {
  const r = new Router({ prefix: '/internal' });
  r.post('/cleanup-policies/preview/components', async (ctx: Koa.Context) => {
    await requireApp(app, ctx, 'nx-cleanup-policies-read');
    const body = await readJson(ctx, app.config.http.maxJsonBytes);
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
  });
  return r;
}
