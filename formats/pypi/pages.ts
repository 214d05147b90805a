/**
 * Project pages and the project list as clients see them, for hosted, proxy and group alike: the
 * repository's stored document (hosted: derived by the maintenance hook; proxy: upstream's, HTML
 * or JSON; group: merged by the core's group walk) is parsed once per blob into one model, every
 * file URL pointed at this repository, and rendered as the client negotiated (PEP 691), with
 * `Vary: Accept` and an ETag per blob and representation.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { HOT_MAX_AGE_MS, markHot } from '../../src/http/hot-responses.js';
import { AppError } from '../../src/errors.js';
import { readSmall } from '../../src/blob/blob-service.js';
import type { RouteRequest } from '../../src/repository/format.js';
import type { ProxyRepository } from '../../src/repository/proxy-repository.js';
import type { Repository } from '../../src/repository/repository.js';
import type { Content } from '../../src/repository/types.js';
import type { Stowage } from '../../src/stowage.js';
import { fileUrl, LIST_PATH, pagePath } from './layout.js';
import { normalizeName } from './names.js';
import {
  HTML_TYPE,
  JSON_TYPE,
  PageError,
  negotiate,
  parseProjectHtml,
  parseProjectJson,
  parseProjectList,
  renderListHtml,
  renderListJson,
  renderProjectHtml,
  renderProjectJson,
  type ProjectPage,
} from './simple-page.js';

/** Largest page read (pypi.org's biggest project pages and its root list are tens of MB). */
export const MAX_PAGE_BYTES = 128 * 1024 * 1024;
/** Base for resolving the relative links of documents Stowage wrote itself. */
const LOCAL_BASE = 'http://stowage.invalid/';

const parsedPages = new LRUCache<string, ProjectPage>({ max: 2000 });
const parsedLists = new LRUCache<string, string[]>({ max: 16 });
const rendered = new LRUCache<string, Rendered>({
  max: 2000,
  maxSize: 256 * 1024 * 1024,
  sizeCalculation: (v) => Math.max(1, v.body.length),
});

/** Whether a stored document is JSON (PEP 691) rather than HTML: by its first character. */
function looksJson(text: string): boolean {
  return /^\s*[{[]/.test(text);
}

/** The URL a repository's copy of `path` was fetched from (relative links resolve against it). */
export function baseOf(repo: Repository, path: string): string {
  return repo.type === 'proxy' ? (repo as ProxyRepository).upstreamUrl(path) : LOCAL_BASE + path;
}

/**
 * The base of `content` as `repo` answered it: a group answers with a member's own copy when only
 * that member has the page, and a proxy member's upstream page must be read as that proxy reads it
 * (its relative links, the core metadata it can serve), not as a page the group wrote.
 */
async function contentBase(app: Stowage | undefined, repo: Repository, content: Content, path: string): Promise<string> {
  if (content.repositoryName === repo.name || !app) return baseOf(repo, path);
  const owner = await app.repositories.find(content.repositoryName);
  return baseOf(owner ?? repo, path);
}

async function stored(content: Content): Promise<Content> {
  return content.pending ? content.pending.stored : content;
}

/** A stored project page as the model (parsed once per blob and base). */
export async function readPage(content: Content, project: string, base: string): Promise<ProjectPage> {
  const c = await stored(content);
  const key = `${c.blob.sha256}\n${base}`;
  const hit = parsedPages.get(key);
  if (hit) return hit;
  const text = (await readSmall(await c.open(), MAX_PAGE_BYTES)).toString('utf8');
  let page: ProjectPage;
  try {
    page = looksJson(text) ? parseProjectJson(text, base) : parseProjectHtml(text, base, project);
  } catch (e) {
    if (e instanceof PageError) throw new AppError('BAD_GATEWAY', `The page of ${project} in ${c.repositoryName} is unusable: ${e.message}`);
    throw e;
  }
  if (!base.startsWith(LOCAL_BASE)) page = servableMetadata(page);
  parsedPages.set(key, page);
  return page;
}

/**
 * An upstream page as a proxy may pass it on: core metadata stays advertised only where the proxy
 * can serve it when upstream does not (wheels: read out of the wheel). An sdist's PKG-INFO may be
 * dynamic and would not match upstream's hash, and pip fails hard on a 404 for an advertised
 * `.metadata`; unadvertised, pip builds the sdist's metadata itself.
 */
function servableMetadata(page: ProjectPage): ProjectPage {
  if (!page.files.some((f) => f.coreMetadata && !f.filename.endsWith('.whl'))) return page;
  return { ...page, files: page.files.map((f) => (f.coreMetadata && !f.filename.endsWith('.whl') ? { ...f, coreMetadata: null } : f)) };
}

export async function readList(content: Content): Promise<string[]> {
  const c = await stored(content);
  const hit = parsedLists.get(c.blob.sha256);
  if (hit) return hit;
  const text = (await readSmall(await c.open(), MAX_PAGE_BYTES)).toString('utf8');
  let names: string[];
  try {
    names = parseProjectList(text, looksJson(text));
  } catch (e) {
    if (e instanceof PageError) throw new AppError('BAD_GATEWAY', `The project list of ${c.repositoryName} is unusable: ${e.message}`);
    throw e;
  }
  parsedLists.set(c.blob.sha256, names);
  return names;
}

/** Why a document fetched for `path` cannot be used, or null (proxy: never cache a portal's page). */
export function pageProblem(path: string, text: string): string | null {
  try {
    if (path === LIST_PATH) parseProjectList(text, looksJson(text));
    else if (looksJson(text)) parseProjectJson(text, LOCAL_BASE);
    else if (!/<(html|a|body|!doctype)\b/i.test(text) && text.trim() !== '') return 'neither a PEP 691 JSON nor a PEP 503 HTML page';
  } catch (e) {
    if (e instanceof PageError) return e.message;
    throw e;
  }
  return null;
}

/** A repository's page of `project` (the model), or null when it has none (`app`: to read a group's member copy as its member reads it). */
export async function projectPage(repo: Repository, project: string, trail?: string[], app?: Stowage): Promise<ProjectPage | null> {
  const path = pagePath(project);
  const c = await repo.get(path, { groupTrail: trail });
  return c ? readPage(c, project, await contentBase(app, repo, c, path)) : null;
}

/** A rendered document, and the stored blob it was rendered from. */
interface Rendered {
  from: string;
  body: Buffer;
  etag: string;
}

const PAGE_HEADERS = { Vary: 'Accept', 'Cache-Control': 'max-age=0, must-revalidate' };

/**
 * Sends the document rendered by `make`, 304 when the client has it. One rendering is kept per
 * repository, document and representation (`slot`), with the blob it came from: a new blob
 * replaces it, so superseded renderings do not pile up. Sent from memory even when the bytes are
 * the stored blob's: for documents of this size a buffer costs a third of opening, stat-ing,
 * sendfile-ing and closing the file (measured: ~100 vs ~300 µs CPU per 200 KB page).
 */
function send(req: RouteRequest, c: Content | null, slot: string, type: string, make: () => string): void {
  const { ctx } = req;
  const from = c?.blob.sha256 ?? 'none';
  let r = rendered.get(slot);
  if (!r || r.from !== from) {
    const body = Buffer.from(make());
    r = { from, body, etag: `"${createHash('sha1').update(body).digest('hex')}"` };
    rendered.set(slot, r);
  }
  for (const [k, v] of Object.entries(PAGE_HEADERS)) ctx.set(k, v);
  ctx.set('ETag', r.etag);
  const inm = ctx.get('If-None-Match');
  if (inm && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === r.etag)) {
    ctx.status = 304;
    return;
  }
  ctx.status = 200;
  ctx.set('Content-Type', type);
  ctx.set('Content-Length', String(r.body.length));
  // HEAD: headers only (a null body would make Koa answer 204).
  if (ctx.method !== 'HEAD') ctx.body = r.body;
}

function representation(req: RouteRequest): { repr: 'json' | 'html'; type: string } {
  const repr = negotiate(req.ctx.get('Accept') || undefined);
  if (!repr) throw new AppError('BAD_REQUEST', `None of the simple API's types is acceptable (${JSON_TYPE}, ${HTML_TYPE}, text/html)`, { status: 406 });
  // A client that asked for plain text/html gets that type back (browsers, old pip).
  const accept = req.ctx.get('Accept') || '';
  const type = repr === 'json' ? JSON_TYPE : accept.includes(HTML_TYPE) ? HTML_TYPE : 'text/html; charset=utf-8';
  return { repr, type };
}

/** `GET simple/<project>/`: non-normalised names and a missing slash redirect to the canonical URL. */
export async function getProjectPage(req: RouteRequest): Promise<void> {
  const { ctx } = req;
  const asked = req.params.project;
  const project = normalizeName(asked);
  if (asked !== project || !req.path.endsWith('/')) {
    ctx.status = 301;
    ctx.redirect(ctx.path.replace(/[^/]+\/?$/, encodeURIComponent(project) + '/') + (ctx.querystring ? '?' + ctx.querystring : ''));
    return;
  }
  const { repr, type } = representation(req);
  const path = pagePath(project);
  const content = await req.repo.get(path);
  if (!content) throw new AppError('NOT_FOUND', `Project not found: ${project}`);
  const c = await stored(content);
  const page = await readPage(c, project, await contentBase(req.app, req.repo, c, path));
  send(req, c, `p\n${req.repo.id}\n${project}\n${repr}\n${type}`, type, () => {
    const local: ProjectPage = { ...page, name: project, files: page.files.map((f) => ({ ...f, url: fileUrl(project, f.filename) })) };
    return repr === 'json' ? renderProjectJson(local) : renderProjectHtml(local);
  });
  if (!content.pending) {
    req.repo.downloaded(c);
    markHot(ctx, { maxAgeMs: req.repo.type === 'hosted' ? undefined : HOT_MAX_AGE_MS, onReplay: () => req.repo.downloaded(c) });
  }
}

/** `GET simple/`: the project list (an empty list for a repository without projects). */
export async function getProjectList(req: RouteRequest): Promise<void> {
  const { repr, type } = representation(req);
  const content = await req.repo.get(LIST_PATH);
  const c = content ? await stored(content) : null;
  const names = c ? await readList(c) : [];
  send(req, c, `l\n${req.repo.id}\n${repr}\n${type}`, type, () => {
    const sorted = [...new Set(names.map(normalizeName))].sort();
    return repr === 'json' ? renderListJson(sorted) : renderListHtml(sorted);
  });
  markHot(req.ctx, { maxAgeMs: req.repo.type === 'hosted' ? undefined : HOT_MAX_AGE_MS });
}
