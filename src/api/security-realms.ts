import type { Stowage } from '../stowage.js';
import { auditOrigin } from '../http/auth.js';
import { ANONYMOUS_REALM } from '../security/security.js';
import { field, object, optString } from './security-xo.js';
import { route, type ApiRoute } from './route.js';
import { badRequest as badRequestXO, noContent, ok, strList } from './schemas.js';
import { z } from 'zod';
import { AnonymousAccessSettings, RealmXO } from './security-schemas.js';

/**
 * Realm ids older Nexus automation still sends with the local realm; it is the local user store
 * here, so it is accepted and not stored.
 */
const IMPLIED_REALMS = ['NexusAuthorizingRealm'];

/** `/security/realms/available|active` and `/security/anonymous`, as Nexus has them. */
export function securityRealmRoutes(app: Stowage): ApiRoute[] {
  const tags = ['Security management'];
  const sec = app.security;

  return [
    route({
      method: 'GET',
      path: '/security/realms/available',
      operationId: 'getAvailableRealms',
      tags,
      summary: 'Realms this server has',
      access: { privilege: 'nx-settings-read' },
      responses: { 200: ok(z.array(RealmXO)) },
      handler: async (ctx) => {
        ctx.body = sec.available().map((realm) => ({ id: realm.id, name: realm.name }));
      },
    }),
    route({
      method: 'GET',
      path: '/security/realms/active',
      operationId: 'getActiveRealms',
      tags,
      summary: 'Active realm ids, in order',
      access: { privilege: 'nx-settings-read' },
      responses: { 200: ok(strList) },
      handler: async (ctx) => {
        ctx.body = await sec.activeRealmIds();
      },
    }),
    route({
      method: 'PUT',
      path: '/security/realms/active',
      operationId: 'setActiveRealms',
      tags,
      summary: 'Set the active realms, in order',
      access: { privilege: 'nx-settings-update' },
      body: { schema: strList },
      responses: { 204: noContent, 400: badRequestXO },
      handler: async (ctx, input) => {
        const body = await input.body();
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
      },
    }),
    route({
      method: 'GET',
      path: '/security/anonymous',
      operationId: 'getAnonymousSettings',
      tags,
      summary: 'Anonymous access settings',
      access: { privilege: 'nx-settings-read' },
      responses: { 200: ok(AnonymousAccessSettings) },
      handler: async (ctx) => {
        ctx.body = await sec.anonymousSettings();
      },
    }),
    route({
      method: 'PUT',
      path: '/security/anonymous',
      operationId: 'updateAnonymousSettings',
      tags,
      summary: 'Switch anonymous access (takes effect at once)',
      access: { privilege: 'nx-settings-update' },
      body: { schema: AnonymousAccessSettings },
      responses: { 200: ok(AnonymousAccessSettings), 400: badRequestXO },
      handler: async (ctx, input) => {
        const body = object(await input.body());
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
      },
    }),
  ];
}
