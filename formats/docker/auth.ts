import type Koa from 'koa';
import { z } from 'zod';
import type { Stowage } from '../../src/stowage.js';
import type { Repository } from '../../src/repository/repository.js';
import type { RepositoryConfig, ContentAction } from '../../src/repository/types.js';
import type { ContentGrant, Principal } from '../../src/security/principal.js';
import { BASIC_CHALLENGE } from '../../src/http/auth.js';
import { ociError } from './errors.js';

/**
 * Docker's token flow (protocols.md §1.4): the `/v2/` challenge names a token endpoint; the
 * endpoint authenticates with Basic (or anonymously) and issues a short-lived scoped bearer token
 * whose grants are the requested actions intersected with what the principal may do. The
 * `DockerToken` realm (registered by the core for this format) accepts those tokens.
 */

/** Nexus's realm id for docker bearer tokens. */
export const DOCKER_TOKEN_REALM = { id: 'DockerToken', name: 'Docker Bearer Token Realm' };
export const TOKEN_TTL_SECONDS = 300;
const FORMAT = 'docker';

/** What each registry action needs (all of them) and what a token granting it may then do. */
const ACTIONS: Record<string, { needs: ContentAction[]; grants: ContentAction[] }> = {
  pull: { needs: ['read'], grants: ['read', 'browse'] },
  push: { needs: ['add'], grants: ['add', 'edit'] },
  delete: { needs: ['delete'], grants: ['delete'] },
};

/** True when the request carries credentials that were accepted (a user, or any token). */
export function authenticated(principal: Principal | null | undefined): boolean {
  return !!principal && (!principal.anonymous || principal.grants !== undefined);
}

/** The raw prefix before `v2/` the client addressed (`/`, `/repository/<name>/`). */
function entryPrefix(path: string): string {
  const i = path.indexOf('/v2');
  return i < 0 ? '/' : path.slice(0, i + 1);
}

/**
 * True on a docker port of its own (a repository's `docker.httpPort`, or the shared docker port):
 * a registry in its own right, whatever the main port's external URL is.
 */
export function onDockerPort(ctx: Koa.Context, app: Stowage): boolean {
  const port = ctx.req.socket.localPort;
  if (port === undefined) return false;
  for (const p of app.listeners.ports().values()) if (p === port) return true;
  for (const p of app.listeners.sharedListeners().values()) if (p === port) return true;
  return false;
}

/**
 * The origin of the registry the client is talking to. On a docker port that is the port itself
 * (as the client reached it; X-Forwarded-* only when trust-proxy is on, through Koa): the main
 * port's base URL would send the client's credentials to another listener, whose `/v2/token`
 * routes by path and reads `team/app` as repository `team`.
 */
export function registryBase(ctx: Koa.Context, app: Stowage): string {
  return onDockerPort(ctx, app) ? `${ctx.protocol}://${ctx.host}` : app.baseUrl(ctx);
}

/** `Bearer realm="<base>/…/v2/token",service="<host>"[,scope="repository:<name>:pull,push"]` for a request path. */
export function bearerChallenge(ctx: Koa.Context, app: Stowage): string {
  const base = registryBase(ctx, app);
  const prefix = entryPrefix(ctx.path);
  let challenge = `Bearer realm="${base}${prefix}v2/token",service="${serviceOf(base)}"`;
  const rest = ctx.path.slice(prefix.length + 'v2/'.length);
  const m = /^(.+?)\/(?:manifests|blobs|tags)\//.exec(rest);
  if (m) challenge += `,scope="repository:${m[1]}:pull,push"`;
  return challenge;
}

function serviceOf(base: string): string {
  try {
    return new URL(base).host;
  } catch {
    return 'stowage';
  }
}

/** `docker.forceBasicAuth` (default true, as Nexus): Basic only, no anonymous pull. */
export function forcesBasicAuth(repo: Repository): boolean {
  return (repo.section<{ forceBasicAuth?: boolean }>('docker') ?? {}).forceBasicAuth !== false;
}

/**
 * The challenge of a 401: Basic when the repository the request addresses forces Basic auth, as
 * Nexus does (only where the client can tell it from the version check: a repository's own port
 * or `/repository/<name>/v2/`; the root route's `/v2/` serves every repository and stays Bearer);
 * otherwise the token flow's Bearer challenge.
 */
export function challenge(ctx: Koa.Context, app: Stowage): string {
  const repo = ctx.state.repository as Repository | undefined;
  const own = ctx.path.startsWith('/repository/') || [...app.listeners.ports().values()].includes(ctx.req.socket.localPort ?? -1);
  if (repo && repo.format.name === FORMAT && own && forcesBasicAuth(repo)) return BASIC_CHALLENGE;
  return bearerChallenge(ctx, app);
}

/** The 401 answer of a registry path: Bearer challenge (set by the renderer), OCI body. */
export function unauthorized(message = 'Authentication required') {
  return ociError('UNAUTHORIZED', 'UNAUTHORIZED', message, { headers: { 'WWW-Authenticate': BASIC_CHALLENGE } });
}

/** True for the token endpoint path of any entry point. */
export function isTokenPath(path: string): boolean {
  return /(^|\/)v2\/token$/.test(path);
}

/** `repository:<name>:<actions>` (names never hold ':' but a host in a name might: split at the first and last). */
function parseScope(scope: string): { type: string; name: string; actions: string[] } | null {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last <= first) return null;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

/**
 * `GET <entry>/v2/token`: `bound` is the repository of the entry point (a dedicated port or
 * `/repository/<name>/`); on the main port's root the first segment of each scope's name names it.
 */
export async function tokenEndpoint(ctx: Koa.Context, app: Stowage, bound: Repository | null): Promise<void> {
  const principal = (ctx.state.principal as Principal | null) ?? null;
  if (!principal) throw ociError('UNAUTHORIZED', 'UNAUTHORIZED', 'Authentication required', { headers: { 'WWW-Authenticate': BASIC_CHALLENGE } });
  const scopes = ctx.URL.searchParams
    .getAll('scope')
    .flatMap((s) => s.split(' '))
    .filter(Boolean);
  const grants = new Map<string, Set<ContentAction>>();
  const access: Array<{ type: string; name: string; actions: string[] }> = [];
  const can = async (repository: string, action: ContentAction) => app.authorizer.canContent(principal, { format: FORMAT, repository, action });
  for (const raw of scopes) {
    const scope = parseScope(raw);
    if (!scope) continue;
    const granted: string[] = [];
    let repoName: string | null;
    if (scope.type === 'repository') {
      if (bound) repoName = bound.name;
      else {
        const slash = scope.name.indexOf('/');
        repoName = slash > 0 ? scope.name.slice(0, slash) : null;
      }
      const repo = repoName ? await app.repositories.find(repoName) : undefined;
      if (repo && repo.format.name === FORMAT) {
        const wanted = scope.actions.includes('*') ? Object.keys(ACTIONS) : scope.actions;
        for (const action of wanted) {
          const def = ACTIONS[action];
          if (!def || granted.includes(action)) continue;
          let ok = true;
          for (const need of def.needs) if (!(await can(repo.name, need))) ok = false;
          if (!ok) continue;
          granted.push(action);
          const set = grants.get(repo.name) ?? new Set<ContentAction>();
          for (const g of def.grants) set.add(g);
          grants.set(repo.name, set);
        }
      }
    } else if (scope.type === 'registry' && scope.name === 'catalog' && bound && (await can(bound.name, 'browse'))) {
      granted.push('*');
      const set = grants.get(bound.name) ?? new Set<ContentAction>();
      set.add('browse');
      grants.set(bound.name, set);
    }
    access.push({ type: scope.type, name: scope.name, actions: granted });
  }
  const list: ContentGrant[] = [...grants].map(([repository, actions]) => ({ repository, actions: [...actions] }));
  const service = ctx.URL.searchParams.get('service') ?? serviceOf(registryBase(ctx, app));
  const { token, claims } = app.scopedTokens.issue(principal, FORMAT, list, TOKEN_TTL_SECONDS, { iss: 'stowage', aud: service, access });
  ctx.status = 200;
  ctx.set('Content-Type', 'application/json');
  ctx.set('Cache-Control', 'no-store');
  ctx.body = JSON.stringify({ token, access_token: token, expires_in: TOKEN_TTL_SECONDS, issued_at: new Date(claims.iat * 1000).toISOString() });
}

/** The dedicated port a docker repository asks for (`docker.httpPort`). */
export function dockerListenerPort(config: RepositoryConfig): number | null {
  const parsed = z
    .object({ httpPort: z.number().int().min(1).max(65535).nullable().optional() })
    .passthrough()
    .safeParse((config as unknown as { docker?: unknown }).docker ?? {});
  return parsed.success ? (parsed.data.httpPort ?? null) : null;
}
