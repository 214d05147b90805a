/**
 * Every docker write, each one unit of work of the core (Repository.change): the core checks the write
 * policy once, commits blobs, manifests, tags, their components and referrer rows in one
 * transaction, discards what was staged if it fails, and then calls the maintenance hook. This
 * module only describes the changes; it never touches the database.
 *
 * Images are components (./components.ts): setting a tag also puts the tag's asset
 * `v2/<name>/manifests/<tag>` with its component; removing a tag removes both.
 */
import type { Readable } from 'node:stream';
import type { StagedBlob } from '../../src/blob/blob-service.js';
import type { DigestAlgorithm } from '../../src/blob/digest-set.js';
import type { ContentChange, AssetSource } from '../../src/content/content-change.js';
import type { Repository } from '../../src/repository/repository.js';
import type { AccessCheck } from '../../src/repository/types.js';
import { checkWritePolicy, type WriteIntent } from '../../src/repository/unit-of-work.js';
import type { AuditOrigin } from '../../src/security/audit.js';
import type { Stowage } from '../../src/stowage.js';
import { tagPath } from './components.js';
import { ociError } from './errors.js';
import { blobPath, manifestPath } from './proxy.js';
import { indexReferrer, unindexReferrer } from './referrers.js';

export const OCTET = 'application/octet-stream';

/** What docker content needs: blobs and manifests are addressed by sha256, nothing else. */
export const DOCKER_DIGESTS: readonly DigestAlgorithm[] = ['sha256'];

/** Who pushes: the repository, the pusher's permission check and audit origin. */
export interface Pusher {
  app: Stowage;
  repo: Repository;
  access?: AccessCheck;
  origin?: AuditOrigin;
}

/**
 * Refuses before any body is read: only hosted repositories take pushes (405, as registries
 * answer), and the core's write policy (DENY; ALLOW_ONCE on what `intent` would replace).
 */
export async function mayPush(p: Pusher, intent: WriteIntent = { puts: [{ path: 'v2/', ifAbsent: true }] }): Promise<void> {
  const { repo } = p;
  if (repo.type !== 'hosted') throw ociError('METHOD_NOT_ALLOWED', 'UNSUPPORTED', `Repository '${repo.name}' (${repo.type}) does not accept pushes`, { status: 405 });
  await checkWritePolicy(p.app, repo, 'client', intent, p.access);
}

function latestPolicy(repo: Repository): boolean {
  return repo.section<{ latestPolicy?: boolean }>('docker')?.latestPolicy === true;
}

/**
 * The tag names `digest` (whose bytes are `source`), and the image's component (name, tag) owns
 * the tag's manifest asset. Moving a tag is an overwrite for the write policy, except `latest`
 * under the repository's `latestPolicy` (Nexus: `latest` may be re-pointed under ALLOW_ONCE).
 */
export function setTag(c: ContentChange, repo: Repository, name: string, tag: string, digest: string, source: AssetSource, mediaType: string): void {
  c.setTag(name, tag, digest, {
    guarded: !(latestPolicy(repo) && tag === 'latest'),
    refusal: `Repository does not allow updating tag ${name}:${tag}: ${repo.name}`,
  });
  // Generated from the tag (the tag is what the policy guards): kind metadata.
  c.put(tagPath(name, tag), source, { contentType: mediaType, kind: 'metadata', component: { name, version: tag }, attributes: { digest, mediaType } });
}

/** Removes a tag, its asset and so its component (gone with its last asset). */
export function removeTag(c: ContentChange, name: string, tag: string): void {
  c.deleteTag(name, tag);
  c.deleteAsset(tagPath(name, tag));
}

/** A blob asset for bytes staged from the request (adopted by the change), kept when one is there. */
export async function commitBlob(p: Pusher, digest: string, staged: StagedBlob): Promise<void> {
  await p.repo.change({ source: 'client', access: p.access, origin: p.origin, adopt: [staged] }, (c) => {
    c.put(blobPath(digest), staged, { contentType: OCTET, kind: 'content', ifAbsent: true, attributes: { digest } });
  });
}

/** Streams a blob into the repository's store (hashed once, verified) and commits it. */
export async function stageAndCommitBlob(p: Pusher, digest: string, body: Readable, opts: { expectedSize?: number; expected?: { sha256?: string } }): Promise<void> {
  const staged = await p.app.blobs.stage(p.repo.blobStoreId, body, { digests: DOCKER_DIGESTS, ...opts });
  await commitBlob(p, digest, staged);
}

/** A blob already stored (another repository's, on the same blob store) becomes this repository's too. */
export async function mountBlob(repo: Repository, digest: string, blobId: number, access?: AccessCheck): Promise<void> {
  await repo.change({ source: 'client', access }, (c) => {
    c.put(blobPath(digest), { blobId }, { contentType: OCTET, kind: 'content', ifAbsent: true, attributes: { digest } });
  });
}

export interface ManifestPush {
  name: string;
  digest: string;
  mediaType: string;
  body: Buffer;
  /** Stored with the manifest asset (digest, media type, subject, artifact type, annotations). */
  attributes: Record<string, unknown>;
  subject?: string;
  tags: string[];
  /** The blobs (configs, layers) it references, which must still be here when it commits. */
  blobs: string[];
}

/** A manifest (kept when already stored), its referrer index row, and its tags with their components. */
export async function commitManifest(p: Pusher, m: ManifestPush): Promise<void> {
  const { app, repo } = p;
  const path = manifestPath(m.name, m.digest);
  // One image's pushes at a time on this node (tags of one image move in order).
  await repo.change({ source: 'client', access: p.access, origin: p.origin, key: m.name }, async (c) => {
    const existing = await app.content.findAsset(repo.id, path);
    let source: AssetSource;
    if (existing) {
      // Tags only: committed while the manifest is still there (GC may be deleting it).
      c.expectAsset(path, existing.blob_id);
      source = { blobId: existing.blob_id };
    } else {
      source = await c.stageBytes(m.body);
      c.put(path, source, { contentType: m.mediaType, kind: 'content', ifAbsent: true, attributes: m.attributes });
    }
    for (const d of new Set(m.blobs)) {
      const blob = await app.content.findAsset(repo.id, blobPath(d));
      if (!blob) throw ociError('BAD_REQUEST', 'MANIFEST_BLOB_UNKNOWN', `Blob unknown to registry: ${d}`, { detail: { digest: d } });
      c.expectAsset(blobPath(d), blob.blob_id);
    }
    if (m.subject) indexReferrer(c, m.name, m.subject, m.digest);
    for (const tag of m.tags) setTag(c, repo, m.name, tag, m.digest, source, m.mediaType);
  });
}

/**
 * Deletes a manifest by digest with every tag naming it (and their components) and its referrer
 * row. False when there was neither manifest nor tag.
 */
export async function deleteManifestAndTags(p: Pusher, name: string, digest: string, audit: Record<string, unknown>): Promise<boolean> {
  const { app, repo } = p;
  const { value } = await repo.change({ source: 'client', access: p.access, origin: p.origin }, async (c) => {
    const path = manifestPath(name, digest);
    const asset = await app.content.findAsset(repo.id, path);
    const tags = (await app.content.getTags(repo.id, name)).filter((t) => t.target === digest);
    if (!asset && tags.length === 0) return false;
    if (asset) {
      c.expectAsset(path, asset.blob_id).deleteAsset(path);
      if (typeof asset.attributes.subject === 'string') unindexReferrer(c, name, asset.attributes.subject, digest);
    }
    for (const t of tags) {
      c.expectTag(name, t.name, digest);
      removeTag(c, name, t.name);
    }
    c.audit({ domain: 'repository.asset', type: 'deleted', context: `${name}:${digest}`, attributes: audit });
    return true;
  });
  return value;
}

/** Deletes one tag (and its component); the manifest stays until GC. False when there was no such tag. */
export async function untag(p: Pusher, name: string, tag: string, audit: Record<string, unknown>): Promise<boolean> {
  const { app, repo } = p;
  const { value } = await repo.change({ source: 'client', access: p.access, origin: p.origin }, async (c) => {
    const target = await app.content.tagTarget(repo.id, name, tag);
    if (target === null) return false;
    c.expectTag(name, tag, target);
    removeTag(c, name, tag);
    c.audit({ domain: 'repository.asset', type: 'deleted', context: `${name}:${tag}`, attributes: audit });
    return true;
  });
  return value;
}

/** Deletes a blob asset of this repository (the bytes stay while another references them). */
export async function deleteBlobAsset(p: Pusher, digest: string): Promise<boolean> {
  const { app, repo } = p;
  const { value } = await repo.change({ source: 'client', access: p.access, origin: p.origin }, async (c) => {
    const asset = await app.content.findAsset(repo.id, blobPath(digest));
    if (!asset) return false;
    c.expectAsset(blobPath(digest), asset.blob_id).deleteAsset(blobPath(digest));
    return true;
  });
  return value;
}
