import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Db } from '../db/db.js';
import { isUniqueViolation, now, num } from '../db/db.js';
import { badRequest } from '../errors.js';
import type { Authorizer, ContentPermission } from './authorizer.js';
import type { Principal } from './principal.js';
import type { Realm } from './realm.js';
import { LRUCache } from 'lru-cache';

/**
 * User tokens: random secrets that stand for a user (API tokens now; the npm and docker formats
 * issue theirs through the same service with their own `kind`). A secret is shown once, when it
 * is issued; the database keeps only its sha256, so a leaked database or backup holds no usable
 * credential. Every use resolves the user as they are now: a disabled or deleted user's tokens
 * stop working, and a role taken away is taken away from the tokens too.
 */

/** Recognisable in logs, configuration files and secret scanners. */
export const TOKEN_PREFIX = 'stw_';
/** `stw_` + 32 random bytes in base64url (43 characters). */
const TOKEN_SHAPE = /^stw_[A-Za-z0-9_-]{43}$/;

export type TokenScope = 'read' | 'write';
export const TOKEN_SCOPES: readonly TokenScope[] = ['read', 'write'];

/** Realm id of the API tokens (Stowage's; Nexus Pro calls its equivalent the User Token realm). */
export const USER_TOKEN_REALM = 'UserTokenRealm';
/** Tokens issued through the REST API; formats name their own kinds. */
export const API_TOKEN_KIND = 'api';

/** How often a token's last_used_at is written at most (every request would be a write). */
const TOUCH_INTERVAL_MS = 60_000;

export interface TokenInfo {
  /** Public id: shown in listings, used to revoke; not a credential. */
  tokenId: string;
  userId: string;
  /** The user's realm source (default, ldap…). */
  source: string;
  name: string;
  scope: TokenScope;
  kind: string;
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
}

export interface IssueOptions {
  name: string;
  scope?: TokenScope;
  kind?: string;
  /** Epoch ms; null or absent: the token does not expire. */
  expiresAt?: number | null;
}

/** Resolves a user id of one source to its current principal, or null when the user may not sign in. */
export type PrincipalLookup = (userId: string) => Promise<Principal | null>;

function info(r: Record<string, unknown>): TokenInfo {
  return {
    tokenId: String(r.token_id),
    userId: String(r.user_id),
    source: String(r.user_source),
    name: String(r.name ?? ''),
    scope: r.scope === 'read' ? 'read' : 'write',
    kind: String(r.kind),
    createdAt: num(r.created_at),
    expiresAt: r.expires_at === null || r.expires_at === undefined ? null : num(r.expires_at),
    lastUsedAt: r.last_used_at === null || r.last_used_at === undefined ? null : num(r.last_used_at),
  };
}

function hashOf(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** True when a string has the shape of a Stowage token (it may still be unknown, expired or revoked). */
export function looksLikeToken(s: string): boolean {
  return TOKEN_SHAPE.test(s);
}

export class TokenService {
  private readonly sources = new Map<string, PrincipalLookup>();
  /** tokenId → when this node last wrote its last_used_at. */
  // Bounded by count without preallocating room for all entries (as `max` would, ~1.5 MB here).
  private readonly touched = new LRUCache<string, number>({ maxSize: 100_000, sizeCalculation: () => 1 });

  constructor(
    private readonly db: Db,
    private readonly onError: (e: unknown) => void,
  ) {}

  /**
   * How tokens of users from `source` find their user. The local realm registers `default`; a
   * realm with users of its own (LDAP) registers its source, or its users' tokens are refused.
   */
  registerSource(source: string, lookup: PrincipalLookup): void {
    this.sources.set(source, lookup);
  }

  /** The current principal of a user of a registered source, or null (unknown source, disabled or deleted user). */
  async lookup(userId: string, source: string): Promise<Principal | null> {
    const lookup = this.sources.get(source);
    const user = lookup ? await lookup(userId) : null;
    return user && !user.anonymous && user.userId === userId ? user : null;
  }

  /** Issues a token; the secret is returned here and never again. */
  async issue(userId: string, source: string, opts: IssueOptions): Promise<{ token: TokenInfo; secret: string }> {
    const scope = opts.scope ?? 'write';
    if (!TOKEN_SCOPES.includes(scope)) throw badRequest(`scope: must be one of ${TOKEN_SCOPES.join(', ')}`, { field: 'scope' });
    const name = opts.name.trim();
    if (name.length === 0 || name.length > 255) throw badRequest('name: 1 to 255 characters', { field: 'name' });
    const kind = opts.kind ?? API_TOKEN_KIND;
    const expiresAt = opts.expiresAt ?? null;
    const t = now();
    if (expiresAt !== null && (!Number.isSafeInteger(expiresAt) || expiresAt <= t)) throw badRequest('expiresAt: must be in the future', { field: 'expiresAt' });
    for (;;) {
      const secret = TOKEN_PREFIX + randomBytes(32).toString('base64url');
      const row = {
        token_id: randomUUID(),
        user_id: userId,
        user_source: source,
        token_hash: hashOf(secret).toString('hex'),
        name,
        scope,
        kind,
        created_at: t,
        expires_at: expiresAt,
        last_used_at: null,
      };
      try {
        await this.db('user_tokens').insert(row);
      } catch (e) {
        if (isUniqueViolation(e)) continue; // 2^-128: a collision is a bug elsewhere, but never a shared token.
        throw e;
      }
      return { token: info(row), secret };
    }
  }

  /** A user's tokens (all sources when none is given), newest first; expired ones included, marked by expiresAt. */
  async list(userId: string, source?: string): Promise<TokenInfo[]> {
    const q = this.db('user_tokens').where({ user_id: userId }).orderBy('created_at', 'desc').orderBy('id', 'desc');
    if (source !== undefined) q.where({ user_source: source });
    return (await q).map(info);
  }

  async get(tokenId: string): Promise<TokenInfo | undefined> {
    const r = await this.db('user_tokens').where({ token_id: tokenId }).first();
    return r ? info(r) : undefined;
  }

  /** True while a token exists and has not expired (tokens minted from it live only as long). */
  async isValid(tokenId: string): Promise<boolean> {
    const r = await this.db('user_tokens').where({ token_id: tokenId }).first('expires_at');
    return !!r && (r.expires_at === null || r.expires_at === undefined || num(r.expires_at) > now());
  }

  /** Revokes one token; when a user is given, only that user's. False when there was none. */
  async revoke(tokenId: string, userId?: string, source?: string): Promise<boolean> {
    const q = this.db('user_tokens').where({ token_id: tokenId });
    if (userId !== undefined) q.where({ user_id: userId });
    if (source !== undefined) q.where({ user_source: source });
    const n = await q.delete();
    this.touched.delete(tokenId);
    return n > 0;
  }

  /** Revokes every token of a user (user deleted): a later user with the same id inherits nothing. */
  async revokeAll(userId: string, source: string): Promise<number> {
    return this.db('user_tokens').where({ user_id: userId, user_source: source }).delete();
  }

  /** Removes expired tokens (they are refused anyway); returns how many. */
  async purgeExpired(): Promise<number> {
    return this.db('user_tokens').whereNotNull('expires_at').where('expires_at', '<=', now()).delete();
  }

  /**
   * The principal a secret stands for, or null: unknown, revoked, expired, of another kind than
   * asked for, or its user disabled, deleted or of an unregistered source. The principal carries
   * the user's current roles plus the token's scope and id.
   */
  async verify(secret: string, opts: { kinds?: readonly string[] } = {}): Promise<Principal | null> {
    if (!looksLikeToken(secret)) return null;
    const hash = hashOf(secret);
    const r = await this.db('user_tokens')
      .where({ token_hash: hash.toString('hex') })
      .first();
    // The index found the row by hash; compare anyway without a data-dependent early exit.
    if (!r || !timingSafeEqual(Buffer.from(String(r.token_hash), 'hex'), hash)) return null;
    const token = info(r);
    if (token.expiresAt !== null && token.expiresAt <= now()) return null;
    if (opts.kinds && !opts.kinds.includes(token.kind)) return null;
    const lookup = this.sources.get(token.source);
    const user = lookup ? await lookup(token.userId) : null;
    if (!user || user.anonymous || user.userId !== token.userId) return null;
    this.touch(token);
    return { ...user, scope: token.scope, tokenId: token.tokenId };
  }

  /** Records use at most once a minute per token and node; never delays or fails the request. */
  private touch(token: TokenInfo): void {
    const t = now();
    const last = Math.max(token.lastUsedAt ?? 0, this.touched.get(token.tokenId) ?? 0);
    if (t - last < TOUCH_INTERVAL_MS) return;
    this.touched.set(token.tokenId, t);
    void this.db('user_tokens')
      .where({ token_id: token.tokenId })
      .andWhere((q) => q.whereNull('last_used_at').orWhere('last_used_at', '<', t - TOUCH_INTERVAL_MS))
      .update({ last_used_at: t })
      .catch(this.onError);
  }
}

/**
 * A realm over the token service accepting the given kinds: as `Authorization: Bearer <secret>`
 * and as the Basic password. With Basic the user name must be the token's own user id: a token
 * sent with another name is refused, so a log line `user=x` never hides a token of user y.
 */
export function tokenRealm(tokens: TokenService, opts: { id: string; name: string; kinds: readonly string[] }): Realm {
  return {
    id: opts.id,
    name: opts.name,
    claims: looksLikeToken,
    async authenticate(userId, password) {
      const p = await tokens.verify(password, { kinds: opts.kinds });
      return p && p.userId === userId ? p : null;
    },
    authenticateBearer: (secret) => tokens.verify(secret, { kinds: opts.kinds }),
  };
}

const READ_ACTIONS = new Set(['browse', 'read']);
/** Application privileges a read-only token keeps: those that only read (`nx-users-read`, `…-browse`). */
const READ_PRIVILEGE = /-(read|browse)$/;

/**
 * The one authorizer hook with token scopes applied: a principal authenticated by a `read`
 * token may browse and read whatever its user may, and nothing else — no content add, edit or
 * delete, no application privilege that changes anything. Wraps whichever policy is in use.
 */
// A principal of a scoped bearer token (principal.grants) may do only what its grants list, and
// no application privilege at all.
export class ScopedAuthorizer implements Authorizer {
  constructor(readonly inner: Authorizer) {}

  async canContent(principal: Principal, perm: ContentPermission): Promise<boolean> {
    if (principal.scope === 'read' && !READ_ACTIONS.has(perm.action)) return false;
    if (principal.grants && !principal.grants.some((g) => g.repository === perm.repository && g.actions.includes(perm.action))) return false;
    return this.inner.canContent(principal, perm);
  }

  async canApp(principal: Principal, privilege: string): Promise<boolean> {
    if (principal.scope === 'read' && !READ_PRIVILEGE.test(privilege)) return false;
    if (principal.grants) return false;
    return this.inner.canApp(principal, privilege);
  }
}
