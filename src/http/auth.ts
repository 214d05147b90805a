import type Koa from 'koa';
import { AppError } from '../errors.js';
import type { Stowage } from '../stowage.js';
import { anonymousPrincipal, type Principal } from '../security/principal.js';
import type { ContentPermission } from '../security/authorizer.js';

export const BASIC_CHALLENGE = 'Basic realm="Stowage"';

function unauthorized(message = 'Authentication required'): AppError {
  return new AppError('UNAUTHORIZED', message, { headers: { 'WWW-Authenticate': BASIC_CHALLENGE } });
}

/** Reads credentials once per request and sets ctx.state.principal (anonymous when allowed and none given). */
export function authentication(app: Stowage): Koa.Middleware {
  return async (ctx, next) => {
    const header = ctx.get('Authorization');
    let principal: Principal | null = null;
    if (header) {
      const [scheme, value = ''] = header.split(/\s+/, 2);
      if (/^basic$/i.test(scheme)) {
        const decoded = Buffer.from(value, 'base64').toString('utf8');
        const i = decoded.indexOf(':');
        if (i < 0) throw unauthorized('Malformed Basic credentials');
        principal = await app.security.authenticate(decoded.slice(0, i), decoded.slice(i + 1));
        if (!principal) throw unauthorized('Invalid username or password');
      } else if (/^bearer$/i.test(scheme)) {
        principal = await app.security.authenticateBearer(value);
        if (!principal) throw unauthorized('Invalid or expired token');
      }
    }
    if (!principal && (await app.security.anonymousEnabled())) principal = anonymousPrincipal();
    ctx.state.principal = principal;
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
