/**
 * `PUT|DELETE /service/rest/v1/yum/signing?repository=…`: a repository's GPG key for signed
 * repodata (Nexus keeps it in the `yumSigning` config section; here it is a sealed property, so
 * the configuration API never carries it). Setting or removing it signs the repodata again.
 */
import type Koa from 'koa';
import { z } from 'zod';
import { badRequest } from '../../src/errors.js';
import { requireRepoAdmin } from '../../src/api/access.js';
import { readJson } from '../../src/api/body.js';
import { requiredParam } from '../../src/api/params.js';
import type { ApiRoute } from '../../src/repository/format.js';
import type { Stowage } from '../../src/stowage.js';
import { regenerateAll } from './repodata-service.js';
import { signDetached, storeSigningKey } from './signing.js';

const body = z.object({
  keypair: z
    .string()
    .min(1)
    .max(64 * 1024),
  passphrase: z.string().max(4096).default(''),
});

async function target(ctx: Koa.Context, app: Stowage) {
  const repo = await app.repositories.require(requiredParam(ctx, 'repository'));
  if (repo.format.name !== 'yum') throw badRequest(`repository: '${repo.name}' is not a yum repository`, { field: 'repository' });
  await requireRepoAdmin(app, ctx, repo.format.name, repo.name, 'edit');
  return repo;
}

async function setKey(ctx: Koa.Context, app: Stowage): Promise<void> {
  const repo = await target(ctx, app);
  const parsed = body.safeParse(await readJson(ctx, 128 * 1024));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.join('.') || 'body';
    throw badRequest(`${field}: ${issue.message}`, { field });
  }
  // Refused unless gpg can import the key and sign with it.
  await signDetached(parsed.data, Buffer.from('stowage key check'));
  await storeSigningKey(app, repo, parsed.data);
  await regenerateAll(app, repo);
  ctx.status = 204;
}

async function removeKey(ctx: Koa.Context, app: Stowage): Promise<void> {
  const repo = await target(ctx, app);
  await storeSigningKey(app, repo, null);
  await regenerateAll(app, repo);
  ctx.status = 204;
}

const param = { name: 'repository', in: 'query', required: true, schema: { type: 'string' }, description: 'yum repository' };

export const signingRoutes: ApiRoute[] = [
  {
    method: 'PUT',
    path: '/signing',
    handler: setKey,
    openapi: {
      summary: "Set a yum repository's GPG key: repomd.xml is signed (repodata/repomd.xml.asc) and the public key published (repodata/repomd.xml.key)",
      description: 'Requires edit on the repository configuration. The key is stored encrypted and never returned. A key gpg cannot import or unlock with the passphrase is a 400.',
      parameters: [param],
      requestBody: {
        required: true,
        content: {
          'application/json': {
            schema: { type: 'object', required: ['keypair'], properties: { keypair: { type: 'string', description: 'Armored private key' }, passphrase: { type: 'string' } } },
          },
        },
      },
      responses: {
        '204': { description: 'Stored; repodata signed' },
        '400': { description: 'Invalid key or passphrase' },
        '403': { description: 'Not permitted' },
        '404': { description: 'No such repository' },
      },
    },
  },
  {
    method: 'DELETE',
    path: '/signing',
    handler: removeKey,
    openapi: {
      summary: "Remove a yum repository's GPG key: repodata is no longer signed",
      parameters: [param],
      responses: { '204': { description: 'Removed' }, '403': { description: 'Not permitted' }, '404': { description: 'No such repository' } },
    },
  },
];
