import type Koa from 'koa';
import type { Stowage } from '../stowage.js';
import { escapeHtml } from '../http/listing.js';
import { principalOf } from '../http/auth.js';
import { canContent } from '../api/access.js';
import type { Repository } from '../repository/repository.js';

/** The repositories the caller may browse (all of them with nx-repositories-read), as the REST listing. */
async function browsable(app: Stowage, ctx: Koa.Context): Promise<Repository[]> {
  const p = principalOf(ctx);
  if (!p) return [];
  const all = await app.repositories.list();
  if (await app.authorizer.canApp(p, 'nx-repositories-read')) return all;
  const out: Repository[] = [];
  for (const repo of all) if (await canContent(app, p, repo, 'browse')) out.push(repo);
  return out;
}

/** Admin UI (server-rendered). */
export function uiRouter(app: Stowage): Koa.Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    if (ctx.path !== '/') return next();
    const repos = await browsable(app, ctx);
    const rows = repos
      .map(
        (r) =>
          `<tr><td><a href="/repository/${encodeURIComponent(r.name)}/">${escapeHtml(r.name)}</a></td><td>${escapeHtml(r.format.name)}</td><td>${r.type}</td><td>${r.online ? 'online' : 'offline'}</td></tr>`,
      )
      .join('\n');
    const p = principalOf(ctx);
    const note = !p || p.anonymous ? '<p>Sign in to see the repositories your account may browse.</p>\n' : '';
    ctx.set('Content-Type', 'text/html; charset=utf-8');
    // Per caller: a shared cache must not hand one user's listing to another.
    ctx.set('Cache-Control', 'private, no-store');
    ctx.set('Vary', 'Authorization');
    ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Stowage</title></head><body>
<h1>Stowage</h1><h2>Repositories</h2>
${note}<table><thead><tr><th>Name</th><th>Format</th><th>Type</th><th>Status</th></tr></thead><tbody>
${rows}
</tbody></table></body></html>
`;
  };
}
