import type Koa from 'koa';
import { z } from 'zod';
import type { Stowage } from '../stowage.js';
import { badRequest, notFound } from '../errors.js';
import { auditOrigin, denied, principalOf } from '../http/auth.js';
import type { Repository } from '../repository/repository.js';
import type { RepositoryType } from '../repository/types.js';
import { canContent, canRepoAdmin, requireRepoAdmin } from './access.js';
import { auditConfig, hasNewSecrets, keepSecrets, refuseSealedSecrets, repositorySettingsXO, repositoryXO, sealSecrets } from './repository-xo.js';
import { iso } from './params.js';
import type { Principal } from '../security/principal.js';
import { repositoryBodySchema } from '../repository/config-schema.js';
import { route, type ApiRoute } from './route.js';
import { RepositoryStatus, RepositoryXO, badRequest as badRequestXO, conflict, created, noContent, notFound as notFoundXO, ok, params, pathParam, str } from './schemas.js';

const TYPES: RepositoryType[] = ['hosted', 'proxy', 'group'];
/** Audit log domain of repository configuration changes (Nexus: repository.repository). */
const DOMAIN = 'repository.repository';

function formatAndType(app: Stowage, params: Record<string, string>): { format: string; type: RepositoryType } {
  const { type } = params;
  const format = [...app.formats.values()].find((f) => f.aliases?.includes(params.format))?.name ?? params.format;
  if (!app.formats.has(format)) {
    throw badRequest(`format: unknown format '${format}' (known: ${[...app.formats.keys()].join(', ')})`, { field: 'format' });
  }
  if (!TYPES.includes(type as RepositoryType)) throw badRequest(`type: must be one of ${TYPES.join(', ')}`, { field: 'type' });
  return { format, type: type as RepositoryType };
}

/** The repository at /{format}/{type}/{repositoryName}: a repository of another format or type is not found there. */
async function typedRepository(app: Stowage, params: Record<string, string>): Promise<Repository> {
  const { format, type } = formatAndType(app, params);
  const repo = await app.repositories.require(params.repositoryName);
  if (repo.format.name !== format || repo.type !== type) throw notFound(`Repository '${params.repositoryName}' is not a ${format} ${type} repository`);
  return repo;
}

/** Repositories the caller may see listed: all with nx-repositories-read, else those it may browse. */
async function listable(app: Stowage, ctx: Koa.Context): Promise<Repository[]> {
  const p = principalOf(ctx);
  if (!p) throw denied(p, 'list repositories');
  if (await app.authorizer.canApp(p, 'nx-repositories-read')) return app.repositories.list();
  const out: Repository[] = [];
  for (const repo of await app.repositories.list()) if (await canContent(app, p, repo, 'browse')) out.push(repo);
  return out;
}

/**
 * Whether some repository name would let the caller add a repository of `format`: the name is
 * in the body, and no body is read for a caller who could add none (anonymous floods of large
 * bodies cost nothing then). Candidate names are `*` and those the caller's grants name.
 */
async function mayAddSome(app: Stowage, p: Principal | null, format: string): Promise<boolean> {
  if (!p) return false;
  const names = new Set(['*']);
  for (const g of (await app.security.store.grantsOf(p)).permissions) for (const n of g[3] ?? []) names.add(n);
  for (const n of names) if (await canRepoAdmin(app, p, format, n, 'add')) return true;
  return false;
}

/** Repositories whose configuration the caller may read; a caller with none at all is refused. */
async function administrable(app: Stowage, ctx: Koa.Context): Promise<Repository[]> {
  const p = principalOf(ctx);
  const out: Repository[] = [];
  for (const repo of await app.repositories.list()) if (await canRepoAdmin(app, p, repo.format.name, repo.name, 'read')) out.push(repo);
  if (out.length === 0 && !(p && (await app.authorizer.canApp(p, 'nx-repositories-read')))) throw denied(p, 'read repository settings');
  return out;
}

/**
 * Repository configuration, Nexus-shaped: `/repositories`, `/repositorySettings`,
 * `/repositories/{format}/{hosted|proxy|group}[/{name}]`, delete, invalidate-cache, and
 * Stowage's `/repositories/{name}/status`.
 */
export function repositoryRoutes(app: Stowage): ApiRoute[] {
  const base = (ctx: Koa.Context) => app.baseUrl(ctx);
  const tags = ['Repositories'];
  const formats = [...app.formats.values()];
  // Sections come from the formats compiled in: a new format's section is documented without an edit here.
  const config = repositoryBodySchema(formats.flatMap((f) => f.sections ?? [])).meta({
    id: 'RepositoryConfig',
    description:
      'Nexus repository configuration. Sections by type: hosted (storage.writePolicy, component), proxy (proxy, negativeCache, httpClient, routingRuleName), group (group). ' +
      'Format sections ride along under their Nexus name (listed here for the formats this server has).',
  });
  const settings = config.extend({ format: str, type: str, url: str }).meta({ id: 'RepositorySettings' });
  const body = { schema: config };
  const formatParam = z.enum(formats.map((f) => f.name) as [string, ...string[]]).describe('Repository format');
  const typeParam = z.enum(TYPES as [RepositoryType, ...RepositoryType[]]).describe('Repository type');
  const repositoryName = pathParam('Repository name');
  const named = params({ repositoryName });
  const typed = params({ format: formatParam, type: typeParam, repositoryName });
  const admin = (action: string) => ({ requires: `nx-repository-admin-<format>-<repo>-${action}` });

  return [
    // Listing follows Nexus: every repository the caller may browse (all of them with nx-repositories-read).
    route({
      method: 'GET',
      path: '/repositories',
      operationId: 'getRepositories',
      tags,
      summary: 'List the repositories the caller may browse',
      access: { requires: 'nx-repositories-read, or browse on each repository listed' },
      responses: { 200: ok(z.array(RepositoryXO)) },
      handler: async (ctx) => {
        ctx.body = (await listable(app, ctx)).map((repo) => repositoryXO(repo, base(ctx)));
      },
    }),
    route({
      method: 'GET',
      path: '/repositorySettings',
      operationId: 'getRepositorySettings',
      tags,
      summary: 'Full configuration of every repository the caller may administer',
      access: { requires: 'nx-repository-admin-<format>-<repo>-read per repository' },
      responses: { 200: ok(z.array(settings)) },
      handler: async (ctx) => {
        ctx.body = (await administrable(app, ctx)).map((repo) => repositorySettingsXO(repo, base(ctx)));
      },
    }),
    // Routes under /repositories/{name}/… come before /{format}/{type} so they win on two segments.
    route({
      method: 'POST',
      path: '/repositories/:repositoryName/invalidate-cache',
      operationId: 'invalidateCache',
      tags,
      summary: 'Invalidate the cache of a proxy or group repository',
      access: admin('edit'),
      params: named,
      responses: { 204: noContent, 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx) => {
        const repo = await app.repositories.require(ctx.params.repositoryName);
        await requireRepoAdmin(app, ctx, repo.format.name, repo.name, 'edit');
        if (repo.type === 'hosted') throw badRequest(`Repository '${repo.name}' is hosted; only proxy and group repositories have a cache`, { field: 'name' });
        await app.proxy.invalidateCache(repo);
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'invalidated-cache', context: repo.name, attributes: { format: repo.format.name, type: repo.type } });
        ctx.status = 204;
      },
    }),
    route({
      method: 'GET',
      path: '/repositories/:repositoryName/status',
      operationId: 'getRepositoryStatus',
      tags,
      summary: 'Online state, and for proxies the upstream state (blocked, auto-blocked, failures). Stowage extension',
      access: admin('read'),
      params: named,
      responses: { 200: ok(RepositoryStatus), 404: notFoundXO },
      handler: async (ctx) => {
        const repo = await app.repositories.require(ctx.params.repositoryName);
        await requireRepoAdmin(app, ctx, repo.format.name, repo.name, 'read');
        const proxy = repo.type === 'proxy' ? await app.proxy.status(repo) : undefined;
        ctx.body = { name: repo.name, format: repo.format.name, type: repo.type, online: repo.online, ...(proxy && { ...proxy, blockedUntil: iso(proxy.blockedUntil) }) };
      },
    }),
    route({
      method: 'GET',
      path: '/repositories/:repositoryName',
      operationId: 'getRepository',
      tags,
      summary: 'One repository (summary)',
      access: { requires: 'nx-repositories-read or browse on it' },
      params: named,
      responses: { 200: ok(RepositoryXO), 404: notFoundXO },
      handler: async (ctx) => {
        const repo = await app.repositories.require(ctx.params.repositoryName);
        const p = principalOf(ctx);
        if (!(await canContent(app, p, repo, 'browse')) && !(p && (await app.authorizer.canApp(p, 'nx-repositories-read')))) {
          throw denied(p, `read repository '${repo.name}'`);
        }
        ctx.body = repositoryXO(repo, base(ctx));
      },
    }),
    route({
      method: 'DELETE',
      path: '/repositories/:repositoryName',
      operationId: 'deleteRepository',
      tags,
      summary: 'Delete a repository and its content (bytes are reclaimed by the blob GC task)',
      access: admin('delete'),
      params: named,
      responses: { 204: noContent, 404: notFoundXO },
      handler: async (ctx) => {
        const repo = await app.repositories.require(ctx.params.repositoryName);
        await requireRepoAdmin(app, ctx, repo.format.name, repo.name, 'delete');
        await app.repositories.delete(repo.name);
        await app.audit.record(auditOrigin(ctx), {
          domain: DOMAIN,
          type: 'deleted',
          context: repo.name,
          attributes: { format: repo.format.name, type: repo.type, before: auditConfig(repo.config, repo.format.sections) },
        });
        ctx.status = 204;
      },
    }),
    route({
      method: 'POST',
      path: '/repositories/:format/:type',
      operationId: 'createRepository',
      tags,
      summary: 'Create a repository from a Nexus configuration (defaults filled)',
      access: admin('add'),
      params: params({ format: formatParam, type: typeParam }),
      body,
      responses: { 201: created, 400: badRequestXO, 409: conflict },
      handler: async (ctx, input) => {
        const { format, type } = formatAndType(app, ctx.params);
        const p = principalOf(ctx);
        if (!(await mayAddSome(app, p, format))) throw denied(p, `add ${format} repositories`);
        // The privilege names the repository, so it is checked with the body's name, before any
        // complaint about the body (a caller learns nothing about the body it may not send).
        const raw = await input.body().catch((e: unknown) => e);
        const name = (raw as { name?: unknown } | null)?.name;
        await requireRepoAdmin(app, ctx, format, typeof name === 'string' ? name : '', 'add');
        if (raw instanceof Error) throw raw;
        const sections = app.formats.get(format)?.sections;
        const cfg = refuseSealedSecrets(app.repositories.parse(format, type, raw), app.secrets, sections);
        const repo = await app.repositories.create(sealSecrets(cfg, app.secrets, sections));
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'created', context: repo.name, attributes: { format, type, after: auditConfig(repo.config, sections) } });
        ctx.status = 201;
        ctx.set('Location', `${base(ctx)}/service/rest/v1/repositories/${format}/${type}/${encodeURIComponent(repo.name)}`);
        ctx.body = '';
      },
    }),
    route({
      method: 'GET',
      path: '/repositories/:format/:type/:repositoryName',
      operationId: 'getRepositoryConfiguration',
      tags,
      summary: 'A repository configuration (secrets returned as null)',
      access: admin('read'),
      params: typed,
      responses: { 200: ok(settings), 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx) => {
        const repo = await typedRepository(app, ctx.params);
        await requireRepoAdmin(app, ctx, repo.format.name, repo.name, 'read');
        ctx.body = repositorySettingsXO(repo, base(ctx));
      },
    }),
    route({
      method: 'PUT',
      path: '/repositories/:format/:type/:repositoryName',
      operationId: 'updateRepository',
      tags,
      summary: 'Replace a repository configuration (name, format, type and blob store are fixed)',
      access: admin('edit'),
      params: typed,
      body,
      responses: { 204: noContent, 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx, input) => {
        const repo = await typedRepository(app, ctx.params);
        await requireRepoAdmin(app, ctx, repo.format.name, repo.name, 'edit');
        const sections = repo.format.sections;
        const parsed = refuseSealedSecrets(app.repositories.parse(repo.format.name, repo.type, await input.body()), app.secrets, sections);
        const cfg = keepSecrets(parsed, repo.config, sections);
        const credentialsChanged = hasNewSecrets(cfg, app.secrets, sections);
        const updated = await app.repositories.update(repo.name, sealSecrets(cfg, app.secrets, sections));
        await app.audit.record(auditOrigin(ctx), {
          domain: DOMAIN,
          type: 'updated',
          context: repo.name,
          attributes: { format: repo.format.name, type: repo.type, before: auditConfig(repo.config, sections), after: auditConfig(updated.config, sections), credentialsChanged },
        });
        ctx.status = 204;
      },
    }),
  ];
}
