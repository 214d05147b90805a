import type Koa from 'koa';
import { AppError } from '../errors.js';
import type { Stowage } from '../stowage.js';
import { matchRoute, type FormatPlugin, type RootRoute, type RouteRequest } from '../repository/format.js';
import type { Repository } from '../repository/repository.js';
import type { ContentAction } from '../repository/types.js';
import { anonymousPrincipal } from '../security/principal.js';
import { principalOf, requireContent } from './auth.js';
import { decodeRepositoryPath } from './paths.js';

const PREFIX = '/repository/';

/**
 * What a content request addresses, resolved once per request before authentication
 * (`ctx.state.content`): the repository (absent when no repository has that name), the raw path
 * inside it and how the request arrived. `serve` answers from it.
 */
export type ContentTarget =
  | {
      kind: 'repository';
      /** The repository name as addressed. */
      name: string;
      repository?: Repository;
      /** The path inside the repository as received, still percent-encoded. */
      rawPath: string;
      /** Through a format's root route: only repositories of that format are reachable. */
      root?: { format: FormatPlugin; route: RootRoute };
      /** On the repository's dedicated listener. */
      listener: boolean;
    }
  /** Under a root route's prefix but naming no repository (docker's `/v2/`, `/v2/token`). */
  | { kind: 'unrouted'; format: FormatPlugin; route: RootRoute };

/**
 * Which requests a listener's resolver considers: the main listener's (undefined), one
 * repository's dedicated port (with its format, for errors once the repository is gone), or one
 * format's shared port.
 */
export type ListenerScope = { repository: string; format?: FormatPlugin } | { format: FormatPlugin } | undefined;

/**
 * The first step of every listener's pipeline: resolves the content request's repository once
 * (`ctx.state.content`, and `ctx.state.repository` for the format's challenge) and chooses the
 * error renderer once, before authentication, so a refused credential is answered in the
 * format's shape too (docker's OCI body and challenge). A name no repository has is answered 404
 * by `serve`, after authentication, in the shape of the format the path implies.
 */
export function resolveContent(app: Stowage, scope?: ListenerScope): Koa.Middleware {
  return async (ctx, next) => {
    const target = targetOf(app, ctx.path, scope);
    let format = scope?.format;
    if (target?.kind === 'unrouted') format = target.format;
    else if (target) {
      const repo = await app.repositories.find(target.name);
      // Through a root route only repositories of that route's format are reachable.
      if (repo && !(target.root && repo.format !== target.root.format)) target.repository = repo;
      ctx.state.repository = target.repository;
      format = target.repository?.format ?? target.root?.format;
    }
    ctx.state.content = target;
    if (format?.renderError) ctx.state.renderError = rendererOf(app, format);
    await next();
  };
}

/** Each format's error renderer bound once per app (not a closure per request). */
const renderers = new WeakMap<Stowage, Map<FormatPlugin, (c: Koa.Context, err: AppError) => void>>();
function rendererOf(app: Stowage, format: FormatPlugin): (c: Koa.Context, err: AppError) => void {
  let m = renderers.get(app);
  if (!m) renderers.set(app, (m = new Map()));
  let r = m.get(format);
  if (!r) m.set(format, (r = (c, err) => format.renderError!(c, err, app)));
  return r;
}

function targetOf(app: Stowage, path: string, scope: ListenerScope): ContentTarget | undefined {
  if (scope && 'repository' in scope) return { kind: 'repository', name: scope.repository, rawPath: path.slice(1), listener: true };
  if (!scope && path.startsWith(PREFIX)) {
    const rest = path.slice(PREFIX.length);
    const slash = rest.indexOf('/');
    let name: string;
    try {
      name = decodeURIComponent(slash < 0 ? rest : rest.slice(0, slash));
    } catch {
      throw new AppError('BAD_REQUEST', 'Malformed repository name');
    }
    return { kind: 'repository', name, rawPath: slash < 0 ? '' : rest.slice(slash + 1), listener: false };
  }
  const root = rootRouteOf(scope ? [scope.format] : app.formats.values(), path);
  if (!root) return undefined;
  const resolved = root.route.resolve(path);
  if (!resolved) return { kind: 'unrouted', ...root };
  return { kind: 'repository', name: resolved.repository, rawPath: resolved.rawPath, root, listener: false };
}

/** The format whose root route covers `path`, if any. */
function rootRouteOf(formats: Iterable<FormatPlugin>, path: string): { format: FormatPlugin; route: RootRoute } | null {
  for (const format of formats) {
    for (const route of format.rootRoutes ?? []) {
      if (path.startsWith(route.prefix) || path === route.prefix.replace(/\/$/, '')) return { format, route };
    }
  }
  return null;
}

/** The main listener's content surface: requests `resolveContent` resolved are served, others go on (API, UI). */
export function contentRouter(app: Stowage): Koa.Middleware {
  return async (ctx, next) => {
    if (!ctx.state.content) return next();
    return serve(app, ctx);
  };
}

/** Decoded (and checked) paths by raw path: a pure function, so hot paths decode once. Bounded. */
const decoded = new Map<string, string>();
function decodedPath(rawPath: string): string {
  let path = decoded.get(rawPath);
  if (path === undefined) {
    path = decodeRepositoryPath(rawPath); // throws for a refused path: never cached
    if (decoded.size >= 1000) decoded.clear();
    decoded.set(rawPath, path);
  }
  return path;
}

/**
 * Serves the content request `resolveContent` resolved: refuse offline repositories, match the
 * format's route table, pass the one authorizer with the row's need, run the row's handler.
 */
export async function serve(app: Stowage, ctx: Koa.Context): Promise<void> {
  const target = ctx.state.content as ContentTarget | undefined;
  if (!target) throw new AppError('NOT_FOUND', 'Not found');
  if (target.kind === 'unrouted') {
    if (target.route.handleUnrouted) return target.route.handleUnrouted(ctx, app);
    throw new AppError('NOT_FOUND', 'Not found');
  }
  const { repository: repo, rawPath } = target;
  if (!repo) throw new AppError('NOT_FOUND', `Repository '${target.name}' not found`);
  const format = repo.format;
  const path = decodedPath(rawPath);
  if (!repo.online) throw new AppError('OFFLINE', `Repository '${repo.name}' is offline`);
  const m = matchRoute(format.routes, ctx.method, path);
  if ('allowed' in m) {
    if (m.allowed.length === 0) throw new AppError('NOT_FOUND', `Not found: ${path}`);
    throw new AppError('METHOD_NOT_ALLOWED', `${ctx.method} is not allowed on ${path || '/'}`, { headers: { Allow: m.allowed.join(', ') } });
  }
  const { route, params } = m;
  const need = typeof route.need === 'function' ? route.need(ctx, params) : route.need;
  const check = (action: ContentAction) => requireContent(app, ctx, { format: format.name, repository: repo.name, action, path: '/' + path });
  const principal = need === 'public' ? (principalOf(ctx) ?? anonymousPrincipal()) : await check(need);
  const req: RouteRequest = {
    ctx,
    repo,
    path,
    rawPath,
    params,
    principal,
    app,
    rootRoute: target.root?.route,
    listener: target.listener,
    access: {
      require: async (action: ContentAction) => {
        await check(action);
      },
      uploader: { userId: principal.userId, ip: ctx.ip },
    },
  };
  await route.handler(req);
}
