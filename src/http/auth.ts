import type Koa from 'koa';
import { AppError } from '../errors.js';
import type { Stowage } from '../stowage.js';
import type { Principal } from '../security/principal.js';
import type { ContentPermission } from '../security/authorizer.js';

export const BASIC_CHALLENGE = 'Basic realm="Stowage"';

function unauthorized(message = 'Authentication required'): AppError {
  return new AppError('UNAUTHORIZED', message, { headers: { 'WWW-Authenticate': BASIC_CHALLENGE } });
}

/** 429 while a user id or address is locked by the login throttle; says nothing about the user. */
function tooManyAttempts(waitMs: number): AppError {
  return new AppError('UNAUTHORIZED', 'Too many failed sign-in attempts; try again later', {
    status: 429,
    headers: { 'Retry-After': String(Math.max(1, Math.ceil(waitMs / 1000))) },
  });
}

/**
 * One sign-in attempt through the login throttle: refused while locked, failures counted, a
 * success clears the user's count, and a lock that starts is written to the audit log. Every way
 * of signing in (headers here, a UI login form, a format's own login endpoint) goes through it.
 * `asToken`, when the credential is a token, checks it as such: a valid token is let through even
 * while locked (it cannot be guessed, and docker and npm send API tokens as Basic passwords).
 */
export async function signIn(
  app: Stowage,
  ctx: Koa.Context,
  user: string | undefined,
  authenticate: () => Promise<Principal | null>,
  asToken?: () => Promise<Principal | null>,
): Promise<Principal | null> {
  const who = { user, address: ctx.ip };
  const wait = app.loginThrottle.retryAfter(who);
  if (wait > 0) {
    const principal = asToken ? await asToken() : null;
    if (principal) return principal;
    throw tooManyAttempts(wait);
  }
  const principal = await authenticate();
  if (principal) {
    app.loginThrottle.success(who);
    return principal;
  }
  for (const lock of app.loginThrottle.failure(who)) {
    await app.audit.record(
      { principal: null, remoteAddress: ctx.ip },
      {
        domain: 'security.login',
        type: 'locked',
        context: lock.key,
        attributes: { kind: lock.kind, address: lock.address, failures: lock.failures, until: new Date(lock.until).toISOString() },
      },
    );
  }
  return null;
}

/**
 * Reads credentials once per request and sets ctx.state.principal (anonymous when allowed and
 * none given); `then` sees the outcome before the rest runs (the listener's body budget).
 */
export function authentication(app: Stowage, then?: (ctx: Koa.Context, principal: Principal | null) => unknown): Koa.Middleware {
  return async (ctx, next) => {
    const header = ctx.get('Authorization');
    let principal: Principal | null = null;
    if (header) {
      const [scheme, value = ''] = header.split(/\s+/, 2);
      // Whatever failed (unknown user, wrong password, disabled user, expired token) the answer is
      // the same status and body: nothing tells a caller which user ids exist.
      if (/^basic$/i.test(scheme)) {
        const decoded = Buffer.from(value, 'base64').toString('utf8');
        const i = decoded.indexOf(':');
        if (i < 0) throw unauthorized('Malformed Basic credentials');
        const userId = decoded.slice(0, i);
        // Empty credentials (`:`) are what registry clients send when they have none: anonymous.
        if (decoded !== ':') {
          const password = decoded.slice(i + 1);
          principal = await signIn(
            app,
            ctx,
            userId,
            () => app.security.authenticate(userId, password),
            () => app.security.authenticateToken(userId, password),
          );
          if (!principal) throw unauthorized('Invalid username or password');
        }
      } else if (/^bearer$/i.test(scheme)) {
        const bearer = () => app.security.authenticateBearer(value);
        principal = await signIn(app, ctx, undefined, bearer, bearer);
        if (!principal) throw unauthorized('Invalid or expired token');
      }
    }
    // Without credentials: the anonymous user (its current roles) when anonymous access is on.
    if (!principal) principal = await app.security.anonymousPrincipal();
    ctx.state.principal = principal;
    then?.(ctx, principal);
    await next();
  };
}

export function principalOf(ctx: Koa.Context): Principal | null {
  return (ctx.state.principal as Principal | null) ?? null;
}

/** 401 with a challenge for anonymous callers, 403 for authenticated ones. */
export function denied(principal: Principal | null, what: string): AppError {
  if (!principal || principal.anonymous) return unauthorized();
  return new AppError('FORBIDDEN', `User '${principal.userId}' is not permitted to ${what}`);
}

export async function requireContent(app: Stowage, ctx: Koa.Context, perm: ContentPermission): Promise<Principal> {
  const p = principalOf(ctx);
  if (p && (await app.authorizer.canContent(p, perm))) return p;
  throw denied(p, `${perm.action} in repository '${perm.repository}'`);
}

export async function requireApp(app: Stowage, ctx: Koa.Context, privilege: string): Promise<Principal> {
  const p = principalOf(ctx);
  if (p && (await app.authorizer.canApp(p, privilege))) return p;
  throw denied(p, `use ${privilege}`);
}

/** Who did it and from where, for the audit log. */
export function auditOrigin(ctx: Koa.Context): import('../security/audit.js').AuditOrigin {
  return { principal: principalOf(ctx), remoteAddress: ctx.ip };
}
