import Router from '@koa/router';
import type { Stowage } from '../stowage.js';
import { auditOrigin, requireApp } from '../http/auth.js';
import { readJson } from './body.js';
import { queryParam } from './params.js';
import { object, optString, roleXO, stringList } from './security-xo.js';

const DOMAIN = 'security.role';

/** Roles, Nexus-shaped (RoleXO): `/security/roles` list (optional `source`), get, create, update, delete. */
export function securityRoleRoutes(app: Stowage): Router {
  const r = new Router();
  const maxJson = app.config.http.maxJsonBytes;
  const roles = app.security.roles;

  r.get('/security/roles', async (ctx) => {
    await requireApp(app, ctx, 'nx-roles-read');
    const source = queryParam(ctx, 'source');
    // Stowage's roles are all local; external groups are named as roles, not listed.
    ctx.body = source && source !== 'default' ? [] : (await roles.list()).map(roleXO);
  });

  r.get('/security/roles/:id', async (ctx) => {
    await requireApp(app, ctx, 'nx-roles-read');
    ctx.body = roleXO(await roles.require(ctx.params.id));
  });

  r.post('/security/roles', async (ctx) => {
    await requireApp(app, ctx, 'nx-roles-create');
    const body = object(await readJson(ctx, maxJson));
    const created = await roles.create({
      id: optString(body, 'id') ?? '',
      name: optString(body, 'name'),
      description: optString(body, 'description'),
      privileges: stringList(body, 'privileges'),
      roles: stringList(body, 'roles'),
    });
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'created', context: created.id, attributes: { after: roleXO(created) } });
    ctx.body = roleXO(created);
  });

  r.put('/security/roles/:id', async (ctx) => {
    await requireApp(app, ctx, 'nx-roles-update');
    const body = object(await readJson(ctx, maxJson));
    const { before, after } = await roles.update(ctx.params.id, {
      id: optString(body, 'id') ?? ctx.params.id,
      name: optString(body, 'name'),
      description: optString(body, 'description'),
      privileges: stringList(body, 'privileges'),
      roles: stringList(body, 'roles'),
    });
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'updated', context: after.id, attributes: { before: roleXO(before), after: roleXO(after) } });
    ctx.status = 204;
  });

  r.delete('/security/roles/:id', async (ctx) => {
    await requireApp(app, ctx, 'nx-roles-delete');
    const before = await roles.delete(ctx.params.id);
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'deleted', context: before.id, attributes: { before: roleXO(before) } });
    ctx.status = 204;
  });

  return r;
}
