import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { ContentGrant, Principal } from './principal.js';
import type { Realm } from './realm.js';

/**
 * Scoped bearer tokens: short-lived, stateless, signed tokens (HS256 JWT) that stand for a
 * principal restricted to a list of content grants (docker's token flow). The signing key is
 * derived from the secret key, so every node sharing it verifies every node's tokens without a
 * database row. Each use resolves the user as they are now (a disabled user's token stops
 * working), and the grants cap what the token may do whatever the user's roles allow.
 *
 * A token minted with a user token (an API token as the Basic password) carries that token's id
 * (`ptk`) and is refused as soon as the parent is revoked or expires: without it a revoked API
 * token would live on for the scoped token's whole lifetime. The parent is checked on every use
 * (one indexed point read, like the user lookup), so revocation takes effect at once on every node.
 */

export interface ScopedTokenClaims {
  /** User id. */
  sub: string;
  /** The user's realm source; `anonymous` for an anonymous token. */
  src: string;
  /** Which realm kind accepts it (the format's name): a token of one kind is refused by others. */
  knd: string;
  grants: ContentGrant[];
  /** Id of the user token this one was minted with (absent: minted with a password or anonymously). */
  ptk?: string;
  iat: number;
  exp: number;
  jti: string;
  /** Extra claims the issuer adds (docker's `access`, `aud`, `iss`). */
  [extra: string]: unknown;
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const HEADER = b64({ alg: 'HS256', typ: 'JWT' });

export class ScopedTokens {
  constructor(
    private readonly key: Buffer,
    /** The principal of a user of a source now (null: may not sign in). */
    private readonly lookup: (userId: string, source: string) => Promise<Principal | null>,
    /** The anonymous principal now (null: anonymous access is off). */
    private readonly anonymous: () => Promise<Principal | null>,
    /** True while the user token of this id is valid (not revoked, not expired). */
    private readonly parentValid: (tokenId: string) => Promise<boolean> = async () => false,
  ) {}

  private sign(data: string): Buffer {
    return createHmac('sha256', this.key).update(data).digest();
  }

  /** Signs a token for `principal` with `grants`, valid `ttlSeconds`. */
  issue(principal: Principal, kind: string, grants: ContentGrant[], ttlSeconds: number, extra: Record<string, unknown> = {}): { token: string; claims: ScopedTokenClaims } {
    const iat = Math.floor(Date.now() / 1000);
    const claims: ScopedTokenClaims = {
      ...extra,
      sub: principal.userId,
      src: principal.anonymous ? 'anonymous' : principal.source,
      knd: kind,
      grants,
      ...(principal.tokenId !== undefined ? { ptk: principal.tokenId } : {}),
      iat,
      nbf: iat - 5,
      exp: iat + ttlSeconds,
      jti: randomUUID(),
    };
    const body = `${HEADER}.${b64(claims)}`;
    return { token: `${body}.${this.sign(body).toString('base64url')}`, claims };
  }

  /** The claims of a well-signed, unexpired token of `kind`, or null. */
  decode(token: string, kind: string): ScopedTokenClaims | null {
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== HEADER) return null;
    const expected = this.sign(`${parts[0]}.${parts[1]}`);
    const got = Buffer.from(parts[2], 'base64url');
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) return null;
    let claims: ScopedTokenClaims;
    try {
      claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as ScopedTokenClaims;
    } catch {
      return null;
    }
    if (claims.knd !== kind || typeof claims.exp !== 'number' || claims.exp <= Date.now() / 1000 || !Array.isArray(claims.grants)) return null;
    return claims;
  }

  /** The principal a token stands for now, carrying the token's grants; null when refused. */
  async verify(token: string, kind: string): Promise<Principal | null> {
    const claims = this.decode(token, kind);
    if (!claims) return null;
    if (claims.ptk !== undefined && (typeof claims.ptk !== 'string' || !(await this.parentValid(claims.ptk)))) return null;
    const user = claims.src === 'anonymous' ? await this.anonymous() : await this.lookup(claims.sub, claims.src);
    if (!user || user.userId !== claims.sub) return null;
    // The parent's id stays on the principal, so a token minted with this one is tied to it too.
    return { ...user, grants: claims.grants, ...(claims.ptk !== undefined ? { tokenId: claims.ptk } : {}) };
  }
}

/** A realm accepting scoped bearer tokens of one kind as `Authorization: Bearer <token>`. */
export function scopedTokenRealm(tokens: ScopedTokens, opts: { id: string; name: string; kind: string }): Realm {
  return {
    id: opts.id,
    name: opts.name,
    authenticateBearer: (token) => tokens.verify(token, opts.kind),
  };
}
