/**
 * Serving packuments: a stored document (hosted), a cached upstream one (proxy) or a group's
 * merged one is parsed once, its tarball URLs pointed at the repository the client addressed,
 * abbreviated for installers, and kept rendered in memory keyed by the stored blob's digest, so a
 * document of tens of MB with thousands of versions is not parsed again on every request.
 */
import { createHash } from 'node:crypto';
import type Koa from 'koa';
import { AppError } from '../../src/errors.js';
import { readSmall } from '../../src/blob/blob-service.js';
import type { Content } from '../../src/repository/types.js';
import type { ContentRequest } from '../../src/repository/format.js';
import { abbreviate, parsePackument, rewriteTarballs, NpmInputError, type Packument } from './packument.js';
import { LRUCache } from 'lru-cache';
import { HOT_MAX_AGE_MS, markHot } from '../../src/http/hot-responses.js';

/** Largest packument read (the biggest public ones are tens of MB). */
export const MAX_DOCUMENT_BYTES = 256 * 1024 * 1024;
export const CORGI = 'application/vnd.npm.install-v1+json';
const JSON_TYPE = 'application/json';
const JSON_TYPE_UTF8 = 'application/json; charset=utf-8';
const CORGI_TYPE = CORGI;

interface Rendered {
  /** The stored blob it was rendered from. */
  from: string;
  body: Buffer;
  etag: string;
  /** The Last-Modified header value, or null. */
  lastModified: string | null;
}

/** Rendered documents, bounded by count and bytes (one document at most a quarter of them). */
const RENDERED_MAX_BYTES = 192 * 1024 * 1024;
const rendered = new LRUCache<string, Rendered>({
  max: 64,
  maxSize: RENDERED_MAX_BYTES,
  maxEntrySize: RENDERED_MAX_BYTES / 4,
  sizeCalculation: (v) => Math.max(1, v.body.length),
});
/** Parsed documents by blob digest (write paths read the current document). */
const parsed = new LRUCache<string, Packument>({ max: 256 });

/** The URL of the repository the client addressed (links in documents point there). */
export function repositoryUrl(req: ContentRequest): string {
  return `${req.app.baseUrl(req.ctx)}/repository/${encodeURIComponent(req.repo.name)}`;
}

/** Reads and parses stored content as a packument (parsed once per blob digest). */
export async function readPackument(content: Content): Promise<Packument> {
  const c = content.pending ? await content.pending.stored : content;
  const hit = parsed.get(c.blob.sha256);
  if (hit) return structuredClone(hit);
  const text = (await readSmall(await c.open(), MAX_DOCUMENT_BYTES)).toString('utf8');
  let doc: Packument;
  try {
    doc = parsePackument(text);
  } catch (e) {
    if (e instanceof NpmInputError) throw new AppError('BAD_GATEWAY', `Stored package document of ${c.asset.path} in ${c.repositoryName} is unusable: ${e.message}`);
    throw e;
  }
  if (text.length < 4 * 1024 * 1024) {
    parsed.set(c.blob.sha256, doc);
    return structuredClone(doc);
  }
  return doc;
}

export function wantsCorgi(ctx: Koa.Context): boolean {
  return (ctx.get('Accept') || '').includes(CORGI);
}

/**
 * One rendering per document as addressed (repository URL, path, full or abbreviated), with the
 * blob it came from: a new blob replaces it, so superseded renderings do not fill the cache.
 */
const renderSlot = (repoUrl: string, path: string, corgi: boolean) => `${repoUrl}\n${path}\n${corgi ? 1 : 0}`;

/**
 * Serves the packument of `name` in the repository addressed. A hosted repository's document
 * (kept true by every change, the maintenance hook's included) is answered from the bytes already
 * rendered for its stored blob after one indexed lookup of that blob's digest: a change of the
 * document is a new blob, so a stale rendering is never found. Anything else goes through `load`.
 */
export async function servePackument(req: ContentRequest, name: string, load: () => Promise<Content>): Promise<void> {
  const repoUrl = repositoryUrl(req);
  const corgi = wantsCorgi(req.ctx);
  // Replayed until the next commit; a proxy's or group's document also depends on upstream freshness.
  markHot(req.ctx, { maxAgeMs: req.repo.type === 'hosted' ? undefined : HOT_MAX_AGE_MS });
  if (req.repo.type === 'hosted') {
    const sha256 = await req.app.content.blobDigestAt(req.repo.id, name);
    const r = sha256 ? rendered.get(renderSlot(repoUrl, name, corgi)) : undefined;
    if (r && r.from === sha256) return sendRendered(req.ctx, r, corgi);
  }
  return sendPackument(req.ctx, await load(), repoUrl, corgi);
}

/** Sends a packument (full or abbreviated) with its tarballs under `repoUrl`; ETag/304. */
export async function sendPackument(ctx: Koa.Context, content: Content, repoUrl: string, corgi: boolean): Promise<void> {
  const c = content.pending ? await content.pending.stored : content;
  const slot = renderSlot(repoUrl, c.asset.path, corgi);
  let r = rendered.get(slot);
  if (!r || r.from !== c.blob.sha256) {
    const doc = rewriteTarballs(await readPackument(c), repoUrl);
    const out = corgi ? abbreviate(doc) : doc;
    const body = Buffer.from(JSON.stringify(out));
    const modified = doc.time?.modified;
    r = {
      from: c.blob.sha256,
      body,
      etag: `"${createHash('sha1').update(body).digest('hex')}"`,
      lastModified: modified && !Number.isNaN(Date.parse(modified)) ? new Date(modified).toUTCString() : null,
    };
    rendered.set(slot, r);
  }
  sendRendered(ctx, r, corgi);
}

function sendRendered(ctx: Koa.Context, r: Rendered, corgi: boolean): void {
  ctx.set('Vary', 'Accept');
  ctx.set('ETag', r.etag);
  ctx.set('Cache-Control', 'max-age=0, must-revalidate');
  if (r.lastModified) ctx.set('Last-Modified', r.lastModified);
  const inm = ctx.get('If-None-Match');
  if (inm && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === r.etag)) {
    ctx.status = 304;
    return;
  }
  ctx.status = 200;
  // Set as is: `ctx.type` would look the type up (mime-types) on every request.
  ctx.set('Content-Type', corgi ? CORGI_TYPE : JSON_TYPE_UTF8);
  // Koa answers a HEAD with the headers of this body and no bytes (a null body would be a 204).
  ctx.body = r.body;
}

export function sendJson(ctx: Koa.Context, status: number, body: unknown): void {
  ctx.status = status;
  ctx.set('Content-Type', JSON_TYPE);
  ctx.set('Cache-Control', 'no-store');
  ctx.body = JSON.stringify(body);
}
