import type Koa from 'koa';
import type { Stowage } from '../stowage.js';
import { notFound } from '../errors.js';
import { readSmall } from '../blob/blob-service.js';
import { auditOrigin, denied, principalOf, requireApp } from '../http/auth.js';
import type { ExternalUser } from '../security/security.js';
import { parseJson } from './body.js';
import { queryParam } from './params.js';
import { externalUserXO, field, object, optString, reqString, stringList, USER_STATUSES, userXO } from './security-xo.js';
import { route, type ApiRoute } from './route.js';
import { badRequest, conflict, noContent, notFound as notFoundXO, ok, params, pathParam } from './schemas.js';
import { ApiCreateUser, ApiUser, ApiUserSource } from './security-schemas.js';
import { z } from 'zod';

const DOMAIN = 'security.user';
const LOCAL = 'default';
const EMAIL = /^[^\s@]+@[^\s@]+$/;
/** Longest password accepted (the hash does not care; the body read does). */
const MAX_PASSWORD_BYTES = 4096;

function isLocal(source: string | undefined): boolean {
  return source === undefined || source.toLowerCase() === LOCAL;
}

function status(body: Record<string, unknown>, fallback: string | undefined): string {
  const s = optString(body, 'status') ?? fallback;
  if (s === undefined) throw field('status', 'is required');
  if (!(USER_STATUSES as readonly string[]).includes(s)) throw field('status', `must be one of ${USER_STATUSES.join(', ')}`);
  return s;
}

function email(body: Record<string, unknown>): string | undefined {
  const e = optString(body, 'emailAddress');
  if (e !== undefined && e !== '' && !EMAIL.test(e)) throw field('emailAddress', `'${e}' is not an email address`);
  return e;
}

/**
 * Users, Nexus-shaped: `/security/users` (list with `userId` prefix and `source` filters; local
 * and external sources), create, update (roles of external users become role mappings), delete,
 * change-password (text/plain), and `/security/user-sources`.
 */
export function securityUserRoutes(app: Stowage): ApiRoute[] {
  const tags = ['Security management'];
  const userId = params({ userId: pathParam('User id') });
  const sec = app.security;

  /** External users of one source, with their mapped local roles; a failing source is logged and skipped. */
  async function external(source: string, prefix: string): Promise<ReturnType<typeof externalUserXO>[]> {
    if (!sec.externalUsers) return [];
    let users: ExternalUser[];
    try {
      users = await sec.externalUsers(source, prefix);
    } catch (e) {
      app.log.warn(`Listing users of source '${source}' failed`, e);
      return [];
    }
    return Promise.all(users.map(async (u) => externalUserXO(u, await sec.mappedRoles(u.userId, u.source))));
  }

  /** The one external user with exactly this id, or null. */
  async function findExternal(source: string, userId: string): Promise<ExternalUser | null> {
    if (!sec.externalUsers) return null;
    return (await sec.externalUsers(source, userId)).find((u) => u.userId === userId) ?? null;
  }

  return [
    route({
      method: 'GET',
      path: '/security/users',
      operationId: 'getUsers',
      tags,
      summary: 'List users: local and external (LDAP) sources',
      access: { privilege: 'nx-users-read' },
      query: z.object({
        userId: z.string().optional().describe('Only user ids starting with this'),
        source: z.string().optional().describe('Only this source (`default` = local, `LDAP`)'),
      }),
      responses: { 200: ok(z.array(ApiUser)) },
      handler: async (ctx) => {
        const prefix = queryParam(ctx, 'userId') ?? '';
        const source = queryParam(ctx, 'source');
        const out: unknown[] = [];
        if (isLocal(source)) out.push(...(await sec.users.list(prefix)).map(userXO));
        if (source === undefined) {
          for (const s of sec.userSources()) if (s.id !== LOCAL) out.push(...(await external(s.id, prefix)));
        } else if (!isLocal(source)) {
          out.push(...(await external(source, prefix)));
        }
        ctx.body = out;
      },
    }),
    route({
      method: 'GET',
      path: '/security/user-sources',
      operationId: 'getUserSources',
      tags,
      summary: 'User sources',
      access: { privilege: 'nx-users-read' },
      responses: { 200: ok(z.array(ApiUserSource)) },
      handler: async (ctx) => {
        ctx.body = sec.userSources();
      },
    }),
    route({
      method: 'POST',
      path: '/security/users',
      operationId: 'createUser',
      tags,
      summary: 'Create a local user',
      access: { privilege: 'nx-users-create' },
      body: { schema: ApiCreateUser },
      responses: { 200: ok(ApiUser), 400: badRequest, 409: conflict },
      handler: async (ctx, input) => {
        const body = object(await input.body());
        const userId = reqString(body, 'userId');
        const password = reqString(body, 'password');
        const roles = stringList(body, 'roles') ?? [];
        await sec.roles.checkExist(roles, 'roles');
        const created = await sec.users.create({
          userId,
          password,
          firstName: optString(body, 'firstName'),
          lastName: optString(body, 'lastName'),
          email: email(body),
          status: status(body, 'active'),
          roles: [...new Set(roles)],
        });
        const xo = userXO(created);
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'created', context: userId, attributes: { after: xo } });
        ctx.body = xo;
      },
    }),
    route({
      method: 'PUT',
      path: '/security/users/:userId',
      operationId: 'updateUser',
      tags,
      summary: 'Update a user (for an external user only its local roles, kept as a role mapping)',
      access: { privilege: 'nx-users-update' },
      params: userId,
      body: { schema: ApiUser },
      responses: { 204: noContent, 400: badRequest, 404: notFoundXO },
      handler: async (ctx, input) => {
        const id = ctx.params.userId;
        const body = object(await input.body());
        const bodyId = optString(body, 'userId');
        if (bodyId !== undefined && bodyId !== id) throw field('userId', `the body's userId '${bodyId}' does not match the path's '${id}'`);
        const source = optString(body, 'source');
        const roles = stringList(body, 'roles');
        if (roles) await sec.roles.checkExist(roles, 'roles');
        const local = isLocal(source) ? await sec.users.get(id) : undefined;
        if (local) {
          const before = userXO(local);
          await sec.users.update(id, {
            first_name: optString(body, 'firstName') ?? local.first_name,
            last_name: optString(body, 'lastName') ?? local.last_name,
            email: email(body) ?? local.email,
            status: status(body, local.status),
            ...(roles ? { roles: [...new Set(roles)] } : {}),
          });
          const after = userXO((await sec.users.get(id))!);
          await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'updated', context: id, attributes: { source: LOCAL, before, after } });
        } else {
          if (source === undefined) throw notFound(`User '${id}' not found`);
          if (isLocal(source)) throw notFound(`User '${id}' not found`);
          // An external user: only its local roles can change, and they live in user_role_mappings.
          const user = await findExternal(source, id);
          if (!user) throw notFound(`User '${id}' not found in source '${source}'`);
          const before = await sec.mappedRoles(id, user.source);
          await sec.roleMappings.set(id, user.source, roles ?? []);
          await app.audit.record(auditOrigin(ctx), {
            domain: DOMAIN,
            type: 'updated',
            context: id,
            attributes: { source: user.source, before: { roles: before }, after: { roles: await sec.mappedRoles(id, user.source) } },
          });
        }
        ctx.status = 204;
      },
    }),
    route({
      method: 'DELETE',
      path: '/security/users/:userId',
      operationId: 'deleteUser',
      tags,
      summary: "Delete a local user (or an external user's role mapping)",
      access: { privilege: 'nx-users-delete' },
      params: userId,
      query: z.object({ realm: z.string().optional().describe('Source of the user (default: local, else any external source)') }),
      responses: { 204: noContent, 400: badRequest, 404: notFoundXO },
      handler: async (ctx) => {
        const p = principalOf(ctx)!;
        const id = ctx.params.userId;
        const source = queryParam(ctx, 'realm') ?? queryParam(ctx, 'source');
        const local = isLocal(source) ? await sec.users.get(id) : undefined;
        if (local) {
          if (p.userId === id && p.source === LOCAL) throw field('userId', 'you cannot delete yourself');
          const anon = await sec.anonymousSettings();
          if (anon.userId === id) throw field('userId', `'${id}' is the anonymous user; configure another one in /security/anonymous first`);
          await sec.users.delete(id);
          await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'deleted', context: id, attributes: { source: LOCAL, before: userXO(local) } });
        } else {
          // An external user: what Stowage holds of it is its role mapping.
          const sources =
            source !== undefined
              ? [source]
              : sec
                  .userSources()
                  .map((s) => s.id)
                  .filter((s) => s !== LOCAL);
          let deleted = false;
          for (const s of sources) {
            const before = await sec.mappedRoles(id, s);
            if (await sec.roleMappings.delete(id, s)) {
              deleted = true;
              await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'deleted', context: id, attributes: { source: s, before: { roles: before } } });
            }
          }
          if (!deleted) throw notFound(`User '${id}' not found`);
        }
        ctx.status = 204;
      },
    }),
    /** A user may always change their own (local) password; anyone else's needs nx-users-update. */
    route({
      method: 'PUT',
      path: '/security/users/:userId/change-password',
      operationId: 'changePassword',
      tags,
      summary: "Change a local user's password (body: the new password as text/plain)",
      access: { requires: 'nx-users-update, except for a user changing their own password (signed in with it, not with a token)' },
      params: userId,
      body: { schema: z.string(), contentType: 'text/plain' },
      responses: { 204: noContent, 400: badRequest, 404: notFoundXO },
      handler: async (ctx) => {
        const id = ctx.params.userId;
        const p = principalOf(ctx);
        if (!p || p.anonymous) throw denied(p, 'change passwords');
        // Own password: the local user itself, signed in with its password (not a token, not another realm).
        const own = p.userId === id && p.source === LOCAL && !p.tokenId;
        if (!own) await requireApp(app, ctx, 'nx-users-update');
        const password = await readPassword(ctx);
        if (!(await sec.users.get(id))) throw notFound(`User '${id}' not found (only local users have a password here)`);
        await sec.users.setPassword(id, password);
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'changed-password', context: id, attributes: { source: LOCAL, own } });
        ctx.status = 204;
      },
    }),
  ];
}

/** The new password: the text/plain body as Nexus takes it (a JSON string is accepted too). */
async function readPassword(ctx: Koa.Context): Promise<string> {
  const raw = (await readSmall(ctx.req, MAX_PASSWORD_BYTES)).toString('utf8');
  let password = raw;
  if (/json/i.test(ctx.get('Content-Type'))) {
    const refused = () => field('password', 'the body must be the new password (text/plain)');
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      throw refused();
    }
    // Well-formed; read again only to refuse prototype keys, as every JSON body is.
    parseJson(raw);
    if (typeof v === 'string') password = v;
    else if (v && typeof v === 'object' && typeof (v as { password?: unknown }).password === 'string') password = (v as { password: string }).password;
    else throw refused();
  }
  if (password === '') throw field('password', 'a non-empty password is required');
  return password;
}
