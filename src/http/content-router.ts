import type Koa from 'koa';
import { AppError } from '../errors.js';
import type { Stowage } from '../stowage.js';
import { defaultNeed, type ContentRequest } from '../repository/format.js';
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
    if (!ctx.path.startsWith(PREFIX)) return next();
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
    const repo = await app.repositories.find(name);
    if (!repo) throw new AppError('NOT_FOUND', `Repository '${name}' not found`);
    const format = repo.format;
    if (format.renderError) ctx.state.renderError = format.renderError.bind(format);
    if (slash < 0 && !format.classify) {
      // `/repository/name` → the folder listing lives at `/repository/name/`.
      ctx.redirect(ctx.path + '/' + (ctx.querystring ? '?' + ctx.querystring : ''));
      return;
    }
    const path = decodeRepositoryPath(rawPath);
    if (!repo.online) throw new AppError('OFFLINE', `Repository '${name}' is offline`);
    const need = format.classify ? format.classify(ctx, path) : defaultNeed(ctx.method);
    const principal =
      need === 'public'
        ? (principalOf(ctx) ?? anonymousPrincipal())
        : await requireContent(app, ctx, { format: format.name, repository: repo.name, action: need, path: '/' + path });
    const req: ContentRequest = {
      ctx,
      repo,
      path,
      rawPath,
      principal,
      app,
      access: {
        require: async (action: ContentAction) => {
          await requireContent(app, ctx, { format: format.name, repository: repo.name, action, path: '/' + path });
        },
      },
    };
    await format.handle(req);
  };
}
