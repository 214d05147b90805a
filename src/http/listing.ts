import type Koa from 'koa';
import type { DirEntry } from '../content/types.js';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function size(n: number): string {
  if (n < 1024) return `${n} B`;
  const u = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${u[i]}`;
}

/** A plain HTML folder listing (works without JavaScript), for any format that wants one. */
export function renderListing(ctx: Koa.Context, repo: string, dir: string, entries: DirEntry[]): void {
  const title = `Index of /${repo}/${dir}`;
  const rows = entries
    .map((e) => {
      const href = encodeURIComponent(e.name) + (e.directory ? '/' : '');
      const a = e.asset;
      return `<tr><td><a href="${escapeHtml(href)}">${escapeHtml(e.name)}${e.directory ? '/' : ''}</a></td><td>${
        a ? new Date(a.updated_at).toUTCString() : ''
      }</td><td>${a ? size(a.size) : ''}</td></tr>`;
    })
    .join('\n');
  const parent = dir ? '<tr><td><a href="../">Parent Directory</a></td><td></td><td></td></tr>\n' : '';
  ctx.status = 200;
  ctx.set('Content-Type', 'text/html; charset=utf-8');
  ctx.body = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body><h1>${escapeHtml(title)}</h1>
<table><thead><tr><th>Name</th><th>Last Modified</th><th>Size</th></tr></thead><tbody>
${parent}${rows}
</tbody></table></body></html>
`;
}
