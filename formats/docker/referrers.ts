/**
 * The OCI 1.1 referrers API: `GET /v2/<name>/referrers/<digest>` lists the manifests of an image
 * name whose `subject` is that digest, as an OCI image index.
 *
 * The index lives in the existing `tags` table, so a lookup is one indexed query and no manifest
 * is read: one row per referrer, in the scope `<name>@<subject>` (image names cannot hold `@`, so
 * these scopes never meet an image's own tags), named and targeting the referrer's digest. The
 * descriptor fields (artifact type, annotations, media type) are kept in the manifest asset's
 * attributes at push time, its size is the blob's. A row is written before the manifest asset
 * and removed with it; a row whose manifest is gone (deleted by another path: cleanup, REST) is
 * skipped when read, so the list never shows a manifest that cannot be pulled.
 */
import type { ContentChange } from '../../src/content/content-change.js';
import type { GroupRepository, Repository } from '../../src/repository/repository.js';
import type { Stowage } from '../../src/stowage.js';
import { MT_OCI_INDEX } from './manifest.js';
import { manifestPath } from './proxy.js';

export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** The tags-table scope holding the referrers of `subject` under an image name. */
export const referrersScope = (name: string, subject: string) => `${name}@${subject}`;

/** Proxies cache an upstream's referrers list under this path (metadata, revalidated). */
export const referrersPath = (name: string, subject: string) => `v2/${name}/referrers/${subject}`;

/** Records `digest` as a referrer of `subject` (idempotent), in the change that stores it. */
export function indexReferrer(c: ContentChange, name: string, subject: string, digest: string): void {
  c.setTag(referrersScope(name, subject), digest, digest);
}

/** Removes the row, in the change that deletes the referrer. */
export function unindexReferrer(c: ContentChange, name: string, subject: string, digest: string): void {
  c.deleteTag(referrersScope(name, subject), digest);
}

/** The referrers a hosted repository stores for `subject`, oldest digest order (stable). */
async function hostedReferrers(app: Stowage, repo: Repository, name: string, subject: string): Promise<ReferrerDescriptor[]> {
  const rows = await app.content.getTags(repo.id, referrersScope(name, subject));
  const out: ReferrerDescriptor[] = [];
  for (const r of rows) {
    const a = await app.content.findAssetView(repo.id, manifestPath(name, r.target));
    if (!a) continue;
    const attrs = a.attributes;
    if (attrs.subject !== subject || typeof attrs.digest !== 'string') continue;
    const d: ReferrerDescriptor = { mediaType: String(attrs.mediaType ?? a.content_type), digest: attrs.digest, size: a.size };
    if (typeof attrs.artifactType === 'string') d.artifactType = attrs.artifactType;
    if (attrs.annotations && typeof attrs.annotations === 'object') d.annotations = attrs.annotations as Record<string, string>;
    out.push(d);
  }
  return out.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
}

/** A proxy's referrers: the upstream's list, cached as metadata; none when upstream has no such API. */
async function proxyReferrers(repo: Repository, name: string, subject: string): Promise<ReferrerDescriptor[]> {
  const content = await repo.get(referrersPath(name, subject));
  if (!content) return [];
  const c = content.pending ? await content.pending.stored : content;
  const parts: Buffer[] = [];
  for await (const chunk of await c.open()) parts.push(chunk as Buffer);
  return parseReferrersIndex(Buffer.concat(parts));
}

/** The descriptors of a referrers index from elsewhere (an upstream); malformed entries are dropped. */
export function parseReferrersIndex(body: Buffer): ReferrerDescriptor[] {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return [];
  }
  const list = (doc as { manifests?: unknown } | null)?.manifests;
  if (!Array.isArray(list)) return [];
  return list.filter(
    (d): d is ReferrerDescriptor =>
      !!d &&
      typeof d === 'object' &&
      typeof (d as ReferrerDescriptor).digest === 'string' &&
      typeof (d as ReferrerDescriptor).mediaType === 'string' &&
      typeof (d as ReferrerDescriptor).size === 'number',
  );
}

/** The referrers of `subject` in any repository type; a group's are the union of its members' (first member wins). */
export async function referrers(app: Stowage, repo: Repository, name: string, subject: string, trail?: string[]): Promise<ReferrerDescriptor[]> {
  switch (repo.type) {
    case 'hosted':
      return hostedReferrers(app, repo, name, subject);
    case 'proxy':
      return proxyReferrers(repo, name, subject);
    case 'group': {
      // The core's member walk: a member that fails (remote down) is logged and skipped.
      const lists = await (repo as GroupRepository).walk(referrersPath(name, subject), (m, t) => referrers(app, m, name, subject, t), { trail });
      const out = new Map<string, ReferrerDescriptor>();
      for (const { value } of lists) for (const d of value) if (!out.has(d.digest)) out.set(d.digest, d);
      return [...out.values()];
    }
  }
}

/** The response body: an OCI image index of the descriptors, filtered by artifact type when asked. */
export function referrersIndex(list: ReferrerDescriptor[], artifactType?: string): string {
  const manifests = (artifactType === undefined ? list : list.filter((d) => d.artifactType === artifactType)).map((d) => {
    // Field order as registries write it; annotations exactly as pushed, nothing added.
    const o: ReferrerDescriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
    if (d.artifactType !== undefined) o.artifactType = d.artifactType;
    if (d.annotations !== undefined) o.annotations = d.annotations;
    return o;
  });
  return JSON.stringify({ schemaVersion: 2, mediaType: MT_OCI_INDEX, manifests });
}
