import type Koa from 'koa';
import { AppError } from '../errors.js';
import type { Stowage } from '../stowage.js';
import { withDigests } from '../blob/digest-set.js';
import { defaultNeed, matchRoute, type ContentRequest, type FormatPlugin, type FormatRoute, type RootRoute } from '../repository/format.js';
import type { ContentAction } from '../repository/types.js';
import { anonymousPrincipal } from '../security/principal.js';
import { principalOf, requireContent } from './auth.js';
import { decodeRepositoryPath } from './paths.js';

const PREFIX = '/repository/';

/**
 * `/repository/<name>/<path>` for every format: resolve the repository, hand error rendering to
 * its format, refuse offline repositories, pass the one authorizer hook, then let the format
 * handle the request.
 */
export function contentRouter(app: Stowage): Koa.Middleware {
  return async (ctx, next) => {
    if (ctx.path.startsWith(PREFIX)) {
      const rest = ctx.path.slice(PREFIX.length);
      const slash = rest.indexOf('/');
      const rawName = slash < 0 ? rest : rest.slice(0, slash);
      const rawPath = slash < 0 ? '' : rest.slice(slash + 1);
      let name: string;
      try {
        name = decodeURIComponent(rawName);
      } catch {
        throw new AppError('BAD_REQUEST', 'Malformed repository name');
      }
      return serve(app, ctx, name, rawPath, slash < 0);
    }
    const root = rootRouteOf(app, ctx.path);
    if (!root) return next();
    const { format, route } = root;
    if (format.renderError) ctx.state.renderError = rendererOf(app, format);
    const target = route.resolve(ctx.path);
    if (!target) {
      if (route.handleUnrouted) return route.handleUnrouted(ctx, app);
      throw new AppError('NOT_FOUND', 'Not found');
    }
    return serve(app, ctx, target.repository, target.rawPath, false, { format, route });
  };
}

/**
 * Sets the error rendering of the format a content path belongs to before authentication runs,
 * so a refused credential is answered in the format's shape too (docker's OCI body and challenge).
 */
export function formatErrorRendering(app: Stowage, fixed?: string): Koa.Middleware {
  return async (ctx, next) => {
    let format: FormatPlugin | undefined;
    if (fixed) {
      const repo = await app.repositories.find(fixed);
      // A refused credential on a dedicated listener is answered in that repository's terms too.
      ctx.state.repository = repo;
      format = repo?.format;
    } else if (ctx.path.startsWith(PREFIX)) {
      const rest = ctx.path.slice(PREFIX.length);
      const slash = rest.indexOf('/');
      let name: string | null = null;
      try {
        name = decodeURIComponent(slash < 0 ? rest : rest.slice(0, slash));
      } catch {
        /* the router answers it */
      }
      if (name) format = (await app.repositories.find(name))?.format;
    } else format = rootRouteOf(app, ctx.path)?.format;
    if (format?.renderError) ctx.state.renderError = rendererOf(app, format);
    await next();
  };
}

/** The format whose root route covers `path`, if any. */
function rootRouteOf(app: Stowage, path: string): { format: FormatPlugin; route: RootRoute } | null {
  for (const format of app.formats.values()) {
    for (const route of format.rootRoutes ?? []) {
      if (path.startsWith(route.prefix) || path === route.prefix.replace(/\/$/, '')) return { format, route };
    }
  }
  return null;
}

function rendererOf(app: Stowage, format: FormatPlugin) {
  return (ctx: Koa.Context, err: AppError) => format.renderError!(ctx, err, app);
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
 * Serves one content request for repository `name` (`rawPath` inside it): from `/repository/`,
 * a format's root route, or a repository's dedicated listener (`listener`).
 */
export async function serve(
  app: Stowage,
  ctx: Koa.Context,
  name: string,
  rawPath: string,
  bare: boolean,
  root?: { format: FormatPlugin; route: RootRoute },
  listener = false,
): Promise<void> {
  const repo = await app.repositories.find(name);
  // Through a root route only repositories of that route's format are reachable.
  if (!repo || (root && repo.format !== root.format)) throw new AppError('NOT_FOUND', `Repository '${name}' not found`);
  const format = repo.format;
  // For the format's error renderer (docker's challenge depends on the repository's settings).
  ctx.state.repository = repo;
  if (format.renderError) ctx.state.renderError = rendererOf(app, format);
  if (bare && !format.classify && !format.routes) {
    // `/repository/name` → the folder listing lives at `/repository/name/`.
    ctx.redirect(ctx.path + '/' + (ctx.querystring ? '?' + ctx.querystring : ''));
    return;
  }
  const path = decodedPath(rawPath);
  if (!repo.online) throw new AppError('OFFLINE', `Repository '${name}' is offline`);
  let routed: { route: FormatRoute; params: Record<string, string> } | undefined;
  if (format.routes) {
    const m = matchRoute(format.routes, ctx.method, path);
    if ('allowed' in m) {
      if (m.allowed.length === 0) throw new AppError('NOT_FOUND', `Not found: ${path}`);
      throw new AppError('METHOD_NOT_ALLOWED', `${ctx.method} is not allowed on ${path || '/'}`, { headers: { Allow: m.allowed.join(', ') } });
    }
    routed = m;
  }
  const need = routed
    ? typeof routed.route.need === 'function'
      ? routed.route.need(ctx, routed.params)
      : routed.route.need
    : format.classify
      ? format.classify(ctx, path)
      : defaultNeed(ctx.method);
  const principal =
    need === 'public' ? (principalOf(ctx) ?? anonymousPrincipal()) : await requireContent(app, ctx, { format: format.name, repository: repo.name, action: need, path: '/' + path });
  const req: ContentRequest = {
    ctx,
    repo,
    path,
    rawPath,
    principal,
    app,
    rootRoute: root?.route,
    listener,
    access: {
      require: async (action: ContentAction) => {
        await requireContent(app, ctx, { format: format.name, repository: repo.name, action, path: '/' + path });
      },
      uploader: { userId: principal.userId, ip: ctx.ip },
    },
  };
  if (!routed && !format.handle) throw new AppError('NOT_FOUND', `Not found: ${path}`);
  // Bytes a handler stages itself get the format's declared digests (digest-set.ts).
  await withDigests(format.digests, () => (routed ? routed.route.handler({ ...req, params: routed.params }) : format.handle!(req)));
}
