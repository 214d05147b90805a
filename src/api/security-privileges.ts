import Router from '@koa/router';
import type { Stowage } from '../stowage.js';
import { auditOrigin, requireApp } from '../http/auth.js';
import { PRIVILEGE_TYPES } from '../security/permissions.js';
import { readJson } from './body.js';
import { field, object, privilegeAudit, privilegeXO } from './security-xo.js';

const DOMAIN = 'security.privilege';

function privilegeType(type: string): string {
  if (!(PRIVILEGE_TYPES as readonly string[]).includes(type)) throw field('type', `unknown privilege type '${type}' (known: ${PRIVILEGE_TYPES.join(', ')})`);
  return type;
}

/**
 * Privileges, Nexus-shaped: list (built-ins for every repository plus custom ones), get and
 * delete by name, create and update per type at `/security/privileges/{type}[/{name}]`.
 */
export function securityPrivilegeRoutes(app: Stowage): Router {
  const r = new Router();
  const maxJson = app.config.http.maxJsonBytes;
  const privileges = app.security.privileges;

  r.get('/security/privileges', async (ctx) => {
    await requireApp(app, ctx, 'nx-privileges-read');
    ctx.body = (await privileges.list()).map(privilegeXO);
  });

  r.get('/security/privileges/:name', async (ctx) => {
    await requireApp(app, ctx, 'nx-privileges-read');
    ctx.body = privilegeXO(await privileges.require(ctx.params.name));
  });

  r.delete('/security/privileges/:name', async (ctx) => {
    await requireApp(app, ctx, 'nx-privileges-delete');
    const before = await privileges.delete(ctx.params.name);
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'deleted', context: before.name, attributes: { before: privilegeAudit(before) } });
    ctx.status = 204;
  });

  r.post('/security/privileges/:type', async (ctx) => {
    await requireApp(app, ctx, 'nx-privileges-create');
    const type = privilegeType(ctx.params.type);
    const created = await privileges.create(type, object(await readJson(ctx, maxJson)));
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'created', context: created.name, attributes: { after: privilegeAudit(created) } });
    ctx.status = 201;
    ctx.set('Location', `${app.baseUrl(ctx)}/service/rest/v1/security/privileges/${encodeURIComponent(created.name)}`);
    ctx.body = '';
  });

  r.put('/security/privileges/:type/:name', async (ctx) => {
    await requireApp(app, ctx, 'nx-privileges-update');
    const type = privilegeType(ctx.params.type);
    const { before, after } = await privileges.update(type, ctx.params.name, object(await readJson(ctx, maxJson)));
    await app.audit.record(auditOrigin(ctx), {
      domain: DOMAIN,
      type: 'updated',
      context: after.name,
      attributes: { before: privilegeAudit(before), after: privilegeAudit(after) },
    });
    ctx.status = 204;
  });

  return r;
}
