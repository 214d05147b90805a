/**
 * npm's account endpoints: the legacy CouchDB login (`npm login`/`adduser` after the web login
 * 404s), `whoami`, and `npm token list|create|revoke`. The tokens are the core's stored user
 * tokens (hashed; every node sees them) of kind `npm`, accepted by the `NpmToken` realm as
 * `Authorization: Bearer <token>` from `.npmrc`.
 */
import { AppError } from '../../src/errors.js';
import { denied, signIn } from '../../src/http/auth.js';
import type { ContentRequest } from '../../src/repository/format.js';
import type { Principal } from '../../src/security/principal.js';
import type { TokenInfo } from '../../src/security/tokens.js';
import { sendJson } from './documents.js';
import { readJsonBody } from './hosted.js';

/** Nexus's realm id and name for npm bearer tokens. */
export const NPM_TOKEN_REALM = { id: 'NpmToken', name: 'npm Bearer Token Realm' };
export const NPM_TOKEN_KIND = 'npm';
const COUCH_PREFIX = 'org.couchdb.user:';
const MAX_AUTH_BODY = 64 * 1024;

function signedIn(req: ContentRequest, what: string): Principal {
  const p = req.principal;
  if (!p || p.anonymous) throw denied(null, what);
  return p;
}

/** `-/user/org.couchdb.user:<name>[/-rev/<rev>]`: the user name, or null when the path is another. */
export function couchUser(rest: string): string | null {
  if (!rest.startsWith(COUCH_PREFIX)) return null;
  const name = rest.slice(COUCH_PREFIX.length).split('/')[0];
  return name || null;
}

/**
 * `PUT -/user/org.couchdb.user:<name>`: checks name and password against the realms (local,
 * LDAP… through the login throttle, as every sign-in) and answers a new npm token. Creating
 * accounts is not offered: an unknown user or a wrong password is a 401.
 */
export async function login(req: ContentRequest, pathName: string): Promise<void> {
  const body = (await readJsonBody(req, MAX_AUTH_BODY)) as { name?: unknown; password?: unknown } | null;
  const name = typeof body?.name === 'string' ? body.name : pathName;
  const password = body?.password;
  if (typeof password !== 'string' || password === '') throw new AppError('BAD_REQUEST', 'name and password are required');
  if (name !== pathName) throw new AppError('BAD_REQUEST', `user name in the body (${name}) does not match the URL (${pathName})`);
  const principal = await signIn(req.app, req.ctx, name, () => req.app.security.authenticate(name, password));
  // A token used as the password does not mint another token.
  if (!principal || principal.anonymous || principal.tokenId) throw new AppError('UNAUTHORIZED', 'Invalid username or password');
  const { secret } = await req.app.tokens.issue(principal.userId, principal.source, { name: 'npm login', kind: NPM_TOKEN_KIND });
  await req.app.audit.record(
    { principal, remoteAddress: req.ctx.ip },
    { domain: 'security.user-token', type: 'created', context: principal.userId, attributes: { kind: NPM_TOKEN_KIND, via: 'npm login' } },
  );
  sendJson(req.ctx, 201, { ok: true, id: COUCH_PREFIX + principal.userId, rev: '_we_dont_use_revs_any_more', token: secret });
}

/** `GET -/user/org.couchdb.user:<name>`: the signed-in user's own document. */
export function userDocument(req: ContentRequest, name: string): void {
  const p = signedIn(req, 'read user documents');
  if (p.userId !== name) throw new AppError('NOT_FOUND', `User ${name} not found`);
  sendJson(req.ctx, 200, { _id: COUCH_PREFIX + name, name, type: 'user', roles: [] });
}

export function whoami(req: ContentRequest): void {
  const p = signedIn(req, 'ask who they are');
  sendJson(req.ctx, 200, { username: p.userId });
}

function tokenObject(t: TokenInfo) {
  const at = new Date(t.createdAt).toISOString();
  return {
    token: t.tokenId.slice(0, 8),
    key: t.tokenId,
    name: t.name,
    readonly: t.scope === 'read',
    cidr_whitelist: null,
    created: at,
    updated: at,
    expires: t.expiresAt ? new Date(t.expiresAt).toISOString() : null,
  };
}

/** `GET -/npm/v1/tokens`: the signed-in user's npm tokens (never the secrets). */
export async function listTokens(req: ContentRequest): Promise<void> {
  const p = signedIn(req, 'list tokens');
  const tokens = (await req.app.tokens.list(p.userId, p.source)).filter((t) => t.kind === NPM_TOKEN_KIND);
  sendJson(req.ctx, 200, { objects: tokens.map(tokenObject), total: tokens.length, urls: {} });
}

/** `POST -/npm/v1/tokens` `{password, readonly, cidr_whitelist, expires}`: the password is checked again. */
export async function createToken(req: ContentRequest): Promise<void> {
  const p = signedIn(req, 'create tokens');
  const body = (await readJsonBody(req, MAX_AUTH_BODY)) as { password?: unknown; readonly?: unknown; cidr_whitelist?: unknown; expires?: unknown; name?: unknown } | null;
  if (typeof body?.password !== 'string') throw new AppError('BAD_REQUEST', 'password is required');
  if (Array.isArray(body.cidr_whitelist) && body.cidr_whitelist.length > 0) throw new AppError('BAD_REQUEST', 'CIDR-restricted tokens are not supported');
  const password = body.password;
  const again = await signIn(req.app, req.ctx, p.userId, () => req.app.security.authenticate(p.userId, password));
  if (!again || again.tokenId || again.userId !== p.userId) throw new AppError('UNAUTHORIZED', 'Password is incorrect');
  const days = typeof body.expires === 'number' && body.expires > 0 ? body.expires : null;
  const name = typeof body.name === 'string' && body.name.trim() ? body.name.trim().slice(0, 255) : 'npm token';
  const { token, secret } = await req.app.tokens.issue(p.userId, p.source, {
    name,
    kind: NPM_TOKEN_KIND,
    scope: body.readonly === true ? 'read' : 'write',
    expiresAt: days ? Date.now() + days * 86_400_000 : null,
  });
  await req.app.audit.record(
    { principal: p, remoteAddress: req.ctx.ip },
    { domain: 'security.user-token', type: 'created', context: p.userId, attributes: { kind: NPM_TOKEN_KIND, tokenId: token.tokenId } },
  );
  sendJson(req.ctx, 200, { ...tokenObject(token), token: secret });
}

/** `DELETE -/npm/v1/tokens/token/<key>`: one of the user's own tokens. */
export async function revokeToken(req: ContentRequest, key: string): Promise<void> {
  const p = signedIn(req, 'revoke tokens');
  if (!(await req.app.tokens.revoke(key, p.userId, p.source))) throw new AppError('NOT_FOUND', `Token ${key} not found`);
  await req.app.audit.record(
    { principal: p, remoteAddress: req.ctx.ip },
    { domain: 'security.user-token', type: 'deleted', context: p.userId, attributes: { kind: NPM_TOKEN_KIND, tokenId: key } },
  );
  req.ctx.status = 204;
  req.ctx.body = null;
}

/** `DELETE -/user/token/<token>` (`npm logout`): the token itself is revoked, by whoever holds it. */
export async function logout(req: ContentRequest, secret: string): Promise<void> {
  const t = await req.app.tokens.verify(secret, { kinds: [NPM_TOKEN_KIND] });
  if (!t?.tokenId) throw new AppError('NOT_FOUND', 'Token not found');
  await req.app.tokens.revoke(t.tokenId, t.userId);
  sendJson(req.ctx, 200, { ok: true });
}
