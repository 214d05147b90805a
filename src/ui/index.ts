import type Koa from 'koa';
import type { Stowage } from '../stowage.js';
import { escapeHtml } from '../http/listing.js';

/** Admin UI (server-rendered). */
export function uiRouter(app: Stowage): Koa.Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    if (ctx.path !== '/') return next();
    const repos = await app.repositories.list();
    const rows = repos
      .map((r) => `<tr><td><a href="/repository/${encodeURIComponent(r.name)}/">${escapeHtml(r.name)}</a></td><td>${escapeHtml(r.format.name)}</td><td>${r.type}</td><td>${r.online ? 'online' : 'offline'}</td></tr>`)
      .join('\n');
    ctx.set('Content-Type', 'text/html; charset=utf-8');
    ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Stowage</title></head><body>
<h1>Stowage</h1><h2>Repositories</h2>
<table><thead><tr><th>Name</th><th>Format</th><th>Type</th><th>Status</th></tr></thead><tbody>
${rows}
</tbody></table></body></html>
`;
  };
}
