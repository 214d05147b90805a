/**
 * npm on the core's proxy and group: which paths are packuments (revalidated after the metadata
 * max age, with the upstream ETag), how a path is asked for upstream (`@scope%2fname`), the
 * group merge of packuments, per-scope pinning of group members (dependency-confusion
 * protection), and audit requests forwarded to the remote.
 */
import { z } from 'zod';
import type { Readable } from 'node:stream';
import { AppError } from '../../src/errors.js';
import type { ContentRequest, MergeInput } from '../../src/repository/format.js';
import type { GroupRepository, Repository } from '../../src/repository/repository.js';
import type { ComponentInput } from '../../src/content/types.js';
import { readSmall } from '../../src/blob/blob-service.js';
import { MAX_DOCUMENT_BYTES, readPackument, sendJson } from './documents.js';
import { NpmInputError, mergePackuments, parsePackagePath, parsePackument, splitName, versionOfFile, type Packument } from './packument.js';

/**
 * The `npm` section: Nexus's proxy fields (`removeNonCataloged`, `removeQuarantined`; accepted,
 * nothing to do without a firewall), and for groups `scopes`: scopes served only by the named
 * members, e.g. `npm: { scopes: { "@corp": ["npm-hosted"] } }` (never looked up on the others).
 */
export const npmSection = z.object({
  removeNonCataloged: z.boolean().optional(),
  removeQuarantined: z.boolean().optional(),
  scopes: z.record(z.string().regex(/^@[a-z0-9][a-z0-9._~-]*$/, 'scope keys look like "@corp"'), z.array(z.string().min(1)).min(1)).optional(),
});

export function isMetadata(path: string): boolean {
  const p = parsePackagePath(path);
  return !!p && p.rest.length === 0;
}

/** `@scope/name` → `@scope%2fname` (as the public registry wants it); tarball paths segment by segment. */
export function upstreamUrl(remoteUrl: string, path: string): string {
  const base = remoteUrl.replace(/\/+$/, '');
  const p = parsePackagePath(path);
  if (p && p.rest.length === 0) {
    const { scope, bare } = splitName(p.name);
    return `${base}/${scope ? `@${encodeURIComponent(scope)}%2f` : ''}${encodeURIComponent(bare)}`;
  }
  return `${base}/${path
    .split('/')
    .map((s) => (s.startsWith('@') ? '@' + encodeURIComponent(s.slice(1)) : encodeURIComponent(s)))
    .join('/')}`;
}

/** Always the full document upstream (the abbreviated one is derived): `npm view` needs `time`. */
export function upstreamHeaders(): Record<string, string> {
  return { Accept: 'application/json' };
}

/**
 * A packument from upstream is usable when it parses and names the package asked for: a portal's
 * HTML page or a document cut short answered with 200 is refused rather than cached.
 */
export async function validateMetadata(path: string, open: () => Promise<Readable>): Promise<string | null> {
  const p = parsePackagePath(path);
  if (!p || p.rest.length !== 0) return null;
  let text: string;
  try {
    text = (await readSmall(await open(), MAX_DOCUMENT_BYTES)).toString('utf8');
  } catch (e) {
    if (e instanceof AppError && e.code === 'PAYLOAD_TOO_LARGE') return `package document larger than ${MAX_DOCUMENT_BYTES} bytes`;
    throw e;
  }
  try {
    const doc = parsePackument(text);
    if (doc.name.toLowerCase() !== p.name.toLowerCase()) return `it is the document of "${doc.name}", not of "${p.name}"`;
  } catch (e) {
    if (e instanceof NpmInputError) return e.message;
    throw e;
  }
  return null;
}

export function proxyAsset(path: string): { contentType?: string; component?: ComponentInput | null } {
  const p = parsePackagePath(path);
  if (!p) return { contentType: 'application/octet-stream', component: null };
  if (p.rest.length === 0) return { contentType: 'application/json', component: null };
  const file = p.rest.length === 2 && p.rest[0] === '-' ? p.rest[1] : null;
  const version = file ? versionOfFile(p.name, file) : null;
  const { scope, bare } = splitName(p.name);
  return { contentType: 'application/octet-stream', component: version ? { namespace: scope ?? '', name: bare, version } : null };
}

export async function mergeMetadata(_path: string, parts: MergeInput[]): Promise<{ body: Buffer; contentType: string } | null> {
  const docs: Packument[] = [];
  for (const part of parts) docs.push(await readPackument(part.content));
  return { body: Buffer.from(JSON.stringify(mergePackuments(docs))), contentType: 'application/json' };
}

/** A pinned scope is looked up in its pinned members only (in the group's order); others in all. */
export function groupMembers(path: string, members: Repository[], group: Repository): Repository[] {
  const scopes = group.section<{ scopes?: Record<string, string[]> }>('npm')?.scopes;
  if (!scopes) return members;
  const p = parsePackagePath(path);
  if (!p || !p.name.startsWith('@')) return members;
  const pinned = scopes['@' + splitName(p.name).scope!];
  if (!pinned) return members;
  return members.filter((m) => pinned.includes(m.name));
}

/** The first proxy reachable from a repository (a group's members in order, nested groups too). */
async function firstProxy(repo: Repository): Promise<Repository | null> {
  if (repo.type === 'proxy') return repo;
  if (repo.type !== 'group') return null;
  return (await (repo as GroupRepository).leaves()).find((m) => m.type === 'proxy') ?? null;
}

const AUDIT_TIMEOUT_MS = 30_000;
const MAX_AUDIT_BODY = 32 * 1024 * 1024;

/**
 * `POST -/npm/v1/security/{advisories/bulk,audits/quick}`: forwarded as-is (gzip body and all) to
 * the remote of the repository's first proxy; a hosted-only repository knows no advisories.
 */
export async function forwardAudit(req: ContentRequest, rest: string): Promise<void> {
  const { ctx } = req;
  const proxy = await firstProxy(req.repo);
  if (!proxy) {
    if (rest.endsWith('advisories/bulk')) return sendJson(ctx, 200, {});
    throw new AppError('NOT_FOUND', 'No audit service: this repository has no proxy of a remote registry');
  }
  const declared = Number(ctx.get('Content-Length') || NaN);
  if (declared > MAX_AUDIT_BODY) throw new AppError('PAYLOAD_TOO_LARGE', `Audit request exceeds ${MAX_AUDIT_BODY} bytes`);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of ctx.req as Readable) {
    n += (c as Buffer).length;
    if (n > MAX_AUDIT_BODY) throw new AppError('PAYLOAD_TOO_LARGE', `Audit request exceeds ${MAX_AUDIT_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  const headers: Record<string, string> = { 'Content-Type': ctx.get('Content-Type') || 'application/json', Accept: 'application/json' };
  if (ctx.get('Content-Encoding')) headers['Content-Encoding'] = ctx.get('Content-Encoding');
  const auth = proxy.config.httpClient?.authentication;
  if (auth?.type === 'username' && auth.username) headers.Authorization = 'Basic ' + Buffer.from(`${auth.username}:${auth.password ?? ''}`).toString('base64');
  if (auth?.type === 'bearerToken' && auth.bearerToken) headers.Authorization = `Bearer ${auth.bearerToken}`;
  const url = `${proxy.config.proxy!.remoteUrl.replace(/\/+$/, '')}/-/npm/v1/security/${rest}`;
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers, body: Buffer.concat(chunks), signal: AbortSignal.timeout(AUDIT_TIMEOUT_MS) });
  } catch (e) {
    throw new AppError('BAD_GATEWAY', `Repository '${proxy.name}' cannot reach ${url}: ${(e as Error).message}`);
  }
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status >= 500) throw new AppError('BAD_GATEWAY', `${url} answered ${res.status}`);
  ctx.status = res.status;
  ctx.set('Content-Type', res.headers.get('content-type') ?? 'application/json');
  ctx.body = body;
}
