/**
 * Docker proxy repositories, on the core proxy (ProxyRepository: caching, single-flight,
 * negative cache, auto-block, revalidation). This module supplies the docker hooks:
 *   - tag manifests (`v2/<name>/manifests/<tag>`) and tag lists are metadata; manifests by
 *     digest and blobs are immutable content. Blobs are stored at `v2/-/blobs/<digest>` like
 *     hosted, fetched upstream at `v2/<name>/blobs/<digest>` (GetOptions.upstreamPath);
 *   - the Accept header listing every manifest media type;
 *   - the registry token flow: a 401 with `WWW-Authenticate: Bearer realm=…` gets a token from
 *     the realm (anonymously, or with the repository's username/password as Basic), cached
 *     until it expires; failures are not cached;
 *   - `library/` for single-name images when the remote is Docker Hub.
 */
import { z } from 'zod';
import type { FormatSection } from '../../src/repository/config-schema.js';
import type { Repository } from '../../src/repository/repository.js';
import type { Content } from '../../src/repository/types.js';
import type { Stowage } from '../../src/stowage.js';
import type { UpstreamClient, UpstreamResponse } from '../../src/proxy/upstream-client.js';
import { joinRemote } from '../../src/proxy/upstream-url.js';
import type { ComponentInput } from '../../src/content/types.js';
import { componentOf } from './components.js';
import { MT_DOCKER_LIST, MT_DOCKER_MANIFEST, MT_DOCKER_SCHEMA1, MT_DOCKER_SCHEMA1_SIGNED, MT_OCI_INDEX, MT_OCI_MANIFEST, looksLikeDigest } from './manifest.js';

export interface DockerProxySection {
  indexType: 'REGISTRY' | 'HUB' | 'CUSTOM';
  indexUrl?: string | null;
}

export const dockerProxySection: FormatSection = {
  key: 'dockerProxy',
  schema: z.object({
    indexType: z.enum(['REGISTRY', 'HUB', 'CUSTOM']).default('REGISTRY'),
    indexUrl: z.string().url().nullable().optional(),
  }),
  defaults: (type) => (type === 'proxy' ? { indexType: 'REGISTRY' } : undefined),
};

export const MANIFEST_ACCEPT = [MT_OCI_INDEX, MT_OCI_MANIFEST, MT_DOCKER_LIST, MT_DOCKER_MANIFEST, MT_DOCKER_SCHEMA1_SIGNED, MT_DOCKER_SCHEMA1].join(', ');

const OCTET = 'application/octet-stream';
export const blobPath = (digest: string) => `v2/-/blobs/${digest}`;
export const manifestPath = (name: string, reference: string) => `v2/${name}/manifests/${reference}`;
export const tagsPath = (name: string) => `v2/${name}/tags/list`;
/** Where a proxy asks upstream for a blob: under the image's name. */
export const upstreamBlobPath = (name: string, digest: string) => `v2/${name}/blobs/${digest}`;

const MANIFEST_RE = /^v2\/(.+)\/manifests\/([^/]+)$/;
const TAGS_RE = /^v2\/(.+)\/tags\/list$/;
const REFERRERS_RE = /^v2\/(.+)\/referrers\/([^/]+)$/;
const NAMED_RE = /^v2\/(.+)\/(manifests|blobs|tags|referrers)\/(.+)$/;

/** Tag manifests, tag lists and referrers lists change upstream; manifests by digest and blobs never do. */
export function isMetadata(path: string): boolean {
  if (TAGS_RE.test(path) || REFERRERS_RE.test(path)) return true;
  const m = MANIFEST_RE.exec(path);
  return !!m && !looksLikeDigest(m[2]);
}

function isHub(remoteUrl: string, repo?: Repository): boolean {
  const s = repo?.section<DockerProxySection>('dockerProxy');
  if (s?.indexType === 'HUB') return true;
  try {
    return new URL(remoteUrl).hostname === 'registry-1.docker.io';
  } catch {
    return false;
  }
}

export function upstreamUrl(remoteUrl: string, path: string, repo?: Repository): string {
  const m = NAMED_RE.exec(path);
  if (m && m[1] !== '-' && !m[1].includes('/') && isHub(remoteUrl, repo)) path = `v2/library/${m[1]}/${m[2]}/${m[3]}`;
  return joinRemote(remoteUrl, path);
}

/** A cached tag manifest is the image's component (name, tag), as in hosted repositories. */
export function proxyAsset(path: string): { contentType?: string; component?: ComponentInput | null } {
  if (path.startsWith('v2/-/blobs/')) return { contentType: OCTET };
  if (TAGS_RE.test(path)) return { contentType: 'application/json' };
  if (REFERRERS_RE.test(path)) return { contentType: MT_OCI_INDEX };
  return { component: componentOf(path) };
}

const BY_DIGEST_RE = /(?:^|\/)(?:blobs|manifests)\/sha256:([0-9a-f]{64})$/;

/** Content addressed by a sha256 digest must hash to it: a body cut short or altered upstream is refused. */
export async function proxyExpected(path: string): Promise<{ sha256: string } | null> {
  const m = BY_DIGEST_RE.exec(path);
  return m ? { sha256: m[1] } : null;
}

// ---- upstream token flow ---------------------------------------------------------------

interface CachedToken {
  token: string;
  expires: number;
}
/** Bearer tokens by repository and upstream image, until they expire (node-local; a miss costs one 401). */
const tokens = new Map<string, CachedToken>();

function tokenKey(repo: Repository, url: string): string {
  const m = /\/v2\/(.+)\/(?:manifests|blobs|tags|referrers)\//.exec(new URL(url).pathname);
  return `${repo.id}\n${new URL(url).origin}\n${m ? m[1] : ''}`;
}

export function upstreamHeaders(path: string, repo: Repository): Record<string, string> {
  const h: Record<string, string> = {};
  if (MANIFEST_RE.test(path)) h.Accept = MANIFEST_ACCEPT;
  const url = upstreamUrl(repo.config.proxy!.remoteUrl, path, repo);
  const t = tokens.get(tokenKey(repo, url));
  if (t) {
    if (t.expires > Date.now()) h.Authorization = `Bearer ${t.token}`;
    else tokens.delete(tokenKey(repo, url));
  }
  return h;
}

/** `Bearer realm="…",service="…",scope="…"` → its parameters; null for other schemes. */
export function parseBearerChallenge(header: string): Record<string, string> | null {
  const m = /^\s*Bearer\s+(.*)$/i.exec(header);
  if (!m) return null;
  const out: Record<string, string> = {};
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[1]))) out[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  return out.realm ? out : null;
}

async function readAll(res: UpstreamResponse, max = 1 << 20): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += (c as Buffer).length;
    if (n > max) {
      res.body.destroy();
      throw new Error('token response too large');
    }
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

export async function upstreamChallenge(res: UpstreamResponse, repo: Repository, client: UpstreamClient): Promise<Record<string, string> | null> {
  const raw = res.headers['www-authenticate'];
  const header = Array.isArray(raw) ? raw.find((h) => /^\s*bearer/i.test(h)) : raw;
  const c = header ? parseBearerChallenge(header) : null;
  if (!c) return null;
  const realm = new URL(c.realm);
  if (c.service) realm.searchParams.set('service', c.service);
  if (c.scope) for (const s of c.scope.split(' ')) realm.searchParams.append('scope', s);
  // The configured username/password go to the realm as Basic; a configured bearer token does not.
  const configured = client.authorization;
  const basic = configured?.startsWith('Basic ') ? configured : undefined;
  let answer: UpstreamResponse;
  try {
    answer = await client.get(realm.href, basic ? { Authorization: basic, Accept: 'application/json' } : { Accept: 'application/json' });
  } catch {
    return null;
  }
  let body: Buffer;
  try {
    body = await readAll(answer);
  } catch {
    return null;
  }
  if (answer.status !== 200) return null;
  let doc: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  const token = doc.token ?? doc.access_token;
  if (!token) return null;
  const lifetime = (typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60) * 1000;
  const issued = doc.issued_at ? Date.parse(doc.issued_at) : NaN;
  const start = Number.isFinite(issued) && issued <= Date.now() ? issued : Date.now();
  // Renew a little early so a token does not expire on the way.
  tokens.set(tokenKey(repo, res.url), { token, expires: start + lifetime - Math.min(10_000, lifetime / 10) });
  return { Authorization: `Bearer ${token}` };
}

// ---- reads -----------------------------------------------------------------------------

/**
 * A proxy's manifest for a tag: fetched (or revalidated) as metadata, its digest recorded as the
 * tag's target, and the same bytes kept under the digest path so a pull by digest is served
 * from the cache.
 */
export async function proxyTagManifest(app: Stowage, repo: Repository, name: string, tag: string): Promise<{ content: Content; digest: string } | null> {
  const content = await repo.get(manifestPath(name, tag));
  if (!content) return null;
  const c = content.pending ? await content.pending.stored : content;
  const digest = `sha256:${c.blob.sha256}`;
  const current = await app.content.tagTarget(repo.id, name, tag);
  const byDigest = manifestPath(name, digest);
  const existing = await app.content.findAsset(repo.id, byDigest);
  if (current !== digest || !existing || existing.blob_id !== c.blob.id) {
    // Concurrent pulls race to record the same tag: the core retries the loser, which then finds it done.
    await repo
      .change({ source: 'proxy' }, (change) => {
        change.setTag(name, tag, digest);
        change.put(
          byDigest,
          { blobId: c.blob.id },
          { contentType: c.asset.content_type, kind: 'content', attributes: { digest, mediaType: c.asset.content_type }, lastVerified: Date.now() },
        );
      })
      .catch((e) => app.log.warn(`Proxy '${repo.name}': could not record ${name}@${digest}: ${(e as Error).message}`));
  }
  return { content: c, digest };
}

/** A proxy's tags for an image, forwarded upstream (cached as metadata); null when upstream does not know it. */
export async function proxyTags(repo: Repository, name: string): Promise<string[] | null> {
  const content = await repo.get(tagsPath(name));
  if (!content) return null;
  const c = content.pending ? await content.pending.stored : content;
  const parts: Buffer[] = [];
  for await (const chunk of await c.open()) parts.push(chunk as Buffer);
  try {
    const doc = JSON.parse(Buffer.concat(parts).toString('utf8')) as { tags?: string[] | null };
    return Array.isArray(doc.tags) ? doc.tags.filter((t) => typeof t === 'string') : [];
  } catch {
    return null;
  }
}
