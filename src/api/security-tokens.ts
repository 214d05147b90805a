import type Koa from 'koa';
import { z } from 'zod';
import type { Stowage } from '../stowage.js';
import { badRequest, forbidden, notFound } from '../errors.js';
import { auditOrigin, denied, principalOf } from '../http/auth.js';
import type { Principal } from '../security/principal.js';
import { API_TOKEN_KIND, TOKEN_SCOPES, type TokenInfo } from '../security/tokens.js';
import { iso, queryParam } from './params.js';
import { route, type ApiRoute } from './route.js';
import { badRequest as badRequestXO, noContent, notFound as notFoundXO, ok, params, pathParam, UserTokenCreatedXO, UserTokenXO } from './schemas.js';

/** Lets an administrator list and revoke other users' tokens (Nexus's name for API key administration). */
export const TOKENS_ADMIN_PRIVILEGE = 'nx-apikey-all';
const DAY_MS = 24 * 3600 * 1000;

const createBody = z
  .object({
    name: z.string().trim().min(1).max(255),
    scope: z.enum(TOKEN_SCOPES as [string, ...string[]]).default('write'),
    expiresAt: z.iso.datetime({ offset: true }).nullable().optional(),
    expiresInDays: z.number().positive().max(36500).nullable().optional(),
  })
  .strict()
  .meta({ id: 'UserTokenCreate' });

/** A token as listed: never the secret, which only the creation response carries. */
function tokenXO(t: TokenInfo) {
  return {
    id: t.tokenId,
    name: t.name,
    userId: t.userId,
    source: t.source,
    scope: t.scope,
    kind: t.kind,
    created: iso(t.createdAt),
    expires: iso(t.expiresAt),
    expired: t.expiresAt !== null && t.expiresAt <= Date.now(),
    lastUsed: iso(t.lastUsedAt),
  };
}

/** Any signed-in user manages their own tokens; anonymous callers are asked to sign in. */
function signedIn(ctx: Koa.Context, what: string): Principal {
  const p = principalOf(ctx);
  if (!p || p.anonymous) throw denied(p, what);
  return p;
}

/** The expiry of a valid body (its shape checked by the route's schema). */
function parseCreate(b: z.output<typeof createBody>): { name: string; scope: 'read' | 'write'; expiresAt: number | null } {
  if (b.expiresAt != null && b.expiresInDays != null) throw badRequest('expiresAt: give expiresAt or expiresInDays, not both', { field: 'expiresAt' });
  let expiresAt: number | null = null;
  if (b.expiresAt != null) expiresAt = Date.parse(b.expiresAt);
  if (b.expiresInDays != null) expiresAt = Date.now() + Math.round(b.expiresInDays * DAY_MS);
  if (expiresAt !== null && expiresAt <= Date.now()) throw badRequest('expiresAt: must be in the future', { field: 'expiresAt' });
  return { name: b.name, scope: b.scope as 'read' | 'write', expiresAt };
}

/**
 * The current user's API tokens (a Stowage extension: Nexus has user tokens only in its Pro
 * edition): list, create (the secret is in the response, once), revoke. Administrators with
 * nx-apikey-all may list and revoke other users' tokens with `?userId=`. A request
 * authenticated by a token cannot create tokens, so a leaked token cannot outlive its revocation
 * by minting others.
 */
export function securityTokenRoutes(app: Stowage): ApiRoute[] {
  const tags = ['Security management: user tokens'];
  const userId = z.string().optional().describe("Another user's tokens (administrators with nx-apikey-all)");
  const BASE = '/security/user-tokens';

  /** Whose tokens a request is about: the caller's, or with `?userId=` anyone's for an administrator. */
  async function owner(ctx: Koa.Context, p: Principal, what: string): Promise<{ userId: string; source?: string } | null> {
    const userId = queryParam(ctx, 'userId');
    const source = queryParam(ctx, 'source');
    if (userId === undefined || (userId === p.userId && (source ?? p.source) === p.source)) return { userId: p.userId, source: p.source };
    if (!(await app.authorizer.canApp(p, TOKENS_ADMIN_PRIVILEGE))) throw denied(p, what);
    return { userId, source };
  }

  return [
    route({
      method: 'GET',
      path: BASE,
      operationId: 'getUserTokens',
      tags,
      summary: 'List API tokens (never their secrets)',
      access: { requires: 'an authenticated user (own tokens); nx-apikey-all for ?userId=' },
      query: z.object({ userId }),
      responses: { 200: ok(z.array(UserTokenXO)) },
      handler: async (ctx) => {
        const p = signedIn(ctx, 'list user tokens');
        const o = (await owner(ctx, p, "list other users' tokens"))!;
        ctx.body = (await app.tokens.list(o.userId, o.source)).map(tokenXO);
      },
    }),
    route({
      method: 'POST',
      path: BASE,
      operationId: 'createUserToken',
      tags,
      summary: 'Create an API token; the response carries its secret once. Usable as a Bearer token or as the Basic password of its user.',
      access: { requires: 'an authenticated user signed in without a token' },
      body: { schema: createBody, validate: true },
      responses: { 201: ok(UserTokenCreatedXO, 'Created'), 400: badRequestXO },
      handler: async (ctx, input) => {
        const p = signedIn(ctx, 'create user tokens');
        if (p.tokenId) throw forbidden('A token cannot create tokens: sign in with your password');
        if (queryParam(ctx, 'userId') !== undefined && queryParam(ctx, 'userId') !== p.userId) throw forbidden('Tokens are created by their own user only');
        const b = parseCreate(await input.body());
        const { token, secret } = await app.tokens.issue(p.userId, p.source, { name: b.name, scope: b.scope, kind: API_TOKEN_KIND, expiresAt: b.expiresAt });
        await app.audit.record(auditOrigin(ctx), {
          domain: 'security.user-token',
          type: 'created',
          context: token.userId,
          attributes: { tokenId: token.tokenId, name: token.name, scope: token.scope, kind: token.kind, source: token.source, expiresAt: iso(token.expiresAt) },
        });
        ctx.status = 201;
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { ...tokenXO(token), token: secret };
      },
    }),
    route({
      method: 'DELETE',
      path: `${BASE}/:id`,
      operationId: 'deleteUserToken',
      tags,
      summary: 'Revoke an API token',
      access: { requires: 'an authenticated user (own tokens); nx-apikey-all for ?userId=' },
      params: params({ id: pathParam('Token id') }),
      query: z.object({ userId }),
      responses: { 204: noContent, 404: notFoundXO },
      handler: async (ctx) => {
        const p = signedIn(ctx, 'revoke user tokens');
        const token = await app.tokens.get(ctx.params.id);
        const own = !!token && token.userId === p.userId && token.source === p.source;
        const asked = queryParam(ctx, 'userId');
        // Someone else's token is "not found" unless the caller administers tokens: ids reveal nothing.
        if (!token || (asked !== undefined && asked !== token.userId) || (!own && !(await app.authorizer.canApp(p, TOKENS_ADMIN_PRIVILEGE)))) {
          throw notFound(`User token '${ctx.params.id}' not found`);
        }
        if (p.scope === 'read') throw forbidden('A read-only token cannot revoke tokens');
        await app.tokens.revoke(token.tokenId);
        await app.audit.record(auditOrigin(ctx), {
          domain: 'security.user-token',
          type: 'deleted',
          context: token.userId,
          attributes: { tokenId: token.tokenId, name: token.name, scope: token.scope, kind: token.kind, source: token.source },
        });
        ctx.status = 204;
      },
    }),
  ];
}
