import Router from '@koa/router';
import type { Stowage } from '../stowage.js';
import { auditOrigin, requireApp } from '../http/auth.js';
import { ANONYMOUS_REALM } from '../security/security.js';
import { readJson } from './body.js';
import { field, object, optString } from './security-xo.js';

/**
 * Realm ids older Nexus automation still sends with the local realm; it is the local user store
 * here, so it is accepted and not stored.
 */
const IMPLIED_REALMS = ['NexusAuthorizingRealm'];

/** `/security/realms/available|active` and `/security/anonymous`, as Nexus has them. */
export function securityRealmRoutes(app: Stowage): Router {
  const r = new Router();
  const maxJson = app.config.http.maxJsonBytes;
  const sec = app.security;

  r.get('/security/realms/available', async (ctx) => {
    await requireApp(app, ctx, 'nx-settings-read');
    ctx.body = sec.available().map((realm) => ({ id: realm.id, name: realm.name }));
  });

  r.get('/security/realms/active', async (ctx) => {
    await requireApp(app, ctx, 'nx-settings-read');
    ctx.body = await sec.activeRealmIds();
  });

  r.put('/security/realms/active', async (ctx) => {
    await requireApp(app, ctx, 'nx-settings-update');
    const body = await readJson(ctx, maxJson);
    if (!Array.isArray(body) || body.some((id) => typeof id !== 'string')) throw field('body', 'an ordered list of realm ids is required');
    const known = new Set(sec.available().map((realm) => realm.id));
    const ids = (body as string[]).filter((id) => !IMPLIED_REALMS.includes(id));
    const unknown = ids.filter((id) => !known.has(id));
    if (unknown.length) throw field('realms', `unknown realm ${unknown.join(', ')} (available: ${[...known].join(', ')})`);
    if (new Set(ids).size !== ids.length) throw field('realms', 'a realm is listed twice');
    if (ids.length === 0) throw field('realms', 'at least one realm must stay active');
    const before = await sec.activeRealmIds();
    await sec.setActiveRealmIds(ids);
    await app.audit.record(auditOrigin(ctx), { domain: 'security.realm', type: 'updated', context: 'active', attributes: { before, after: ids } });
    ctx.status = 204;
  });

  r.get('/security/anonymous', async (ctx) => {
    await requireApp(app, ctx, 'nx-settings-read');
    ctx.body = await sec.anonymousSettings();
  });

  r.put('/security/anonymous', async (ctx) => {
    await requireApp(app, ctx, 'nx-settings-update');
    const body = object(await readJson(ctx, maxJson));
    if (typeof body.enabled !== 'boolean') throw field('enabled', 'true or false is required');
    const before = await sec.anonymousSettings();
    const userId = optString(body, 'userId') || before.userId;
    const realmName = optString(body, 'realmName') || before.realmName;
    if (realmName !== ANONYMOUS_REALM && realmName !== 'NexusAuthenticatingRealm') {
      throw field('realmName', `the anonymous user must come from ${ANONYMOUS_REALM} (the local users)`);
    }
    if (!(await sec.users.get(userId))) throw field('userId', `no local user '${userId}'`);
    await sec.setAnonymous(body.enabled, { userId, realmName: ANONYMOUS_REALM });
    const after = await sec.anonymousSettings();
    await app.audit.record(auditOrigin(ctx), { domain: 'security.anonymous', type: 'updated', context: 'anonymous', attributes: { before, after } });
    ctx.body = after;
  });

  return r;
}
