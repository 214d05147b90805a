/**
 * Docker through every repository type, and groups. Reads resolve in member order (the core's
 * GroupRepository.get for paths; tags resolved by asking members in order); tag lists and the
 * catalog are merged; pushes land in the group's writable member, where blobs another member
 * already has are mounted (referenced, or copied across blob stores) instead of uploaded.
 */
import { AppError } from '../../src/errors.js';
import type { ContentRequest } from '../../src/repository/format.js';
import type { GroupRepository, Repository } from '../../src/repository/repository.js';
import type { Content } from '../../src/repository/types.js';
import type { Stowage } from '../../src/stowage.js';
import { isValidDigest, isValidTag, looksLikeDigest } from './manifest.js';
import { hostedManifest, hostedTagTarget } from './manifest-cache.js';
import { blobPath, manifestPath, proxyTagManifest, proxyTags, upstreamBlobPath } from './proxy.js';

const OCTET = 'application/octet-stream';

/** Member errors below 500 (refusals) propagate; a failing member (remote down) does not hide the others. */
function tolerant<T>(p: Promise<T>): Promise<T | null> {
  return p.catch((e) => {
    if (e instanceof AppError && e.status < 500) throw e;
    return null;
  });
}

async function members(repo: Repository): Promise<Repository[]> {
  return (repo as GroupRepository).members();
}

/** A blob through any repository type (proxy: fetched upstream under the image's name). */
export async function getBlobContent(repo: Repository, name: string, digest: string): Promise<Content | null> {
  return repo.get(blobPath(digest), { upstreamPath: upstreamBlobPath(name, digest) });
}

/** The manifest a reference names, and its digest, in any repository type. */
export async function resolveManifest(app: Stowage, repo: Repository, name: string, reference: string, seen = new Set<string>()): Promise<{ content: Content; digest: string } | null> {
  if (looksLikeDigest(reference)) {
    if (!isValidDigest(reference)) return null;
    const content = repo.type === 'hosted' ? await hostedManifest(app, repo, name, reference) : await repo.get(manifestPath(name, reference));
    return content ? { content, digest: reference } : null;
  }
  if (!isValidTag(reference)) return null;
  switch (repo.type) {
    case 'hosted': {
      // The hot path of every pull: one query for the tag, the bytes from memory when known.
      const digest = await hostedTagTarget(app, repo, name, reference);
      if (!digest) return null;
      const content = await hostedManifest(app, repo, name, digest, true);
      return content ? { content, digest } : null;
    }
    case 'proxy':
      return proxyTagManifest(app, repo, name, reference);
    case 'group': {
      if (seen.has(repo.name)) return null;
      seen.add(repo.name);
      for (const m of await members(repo)) {
        const r = await tolerant(resolveManifest(app, m, name, reference, seen));
        if (r) return r;
      }
      return null;
    }
  }
}

/** An image's tags in any repository type (group: the sorted union); null when no member knows the image. */
export async function tagNames(app: Stowage, repo: Repository, name: string, hostedKnows: (r: Repository) => Promise<boolean>, seen = new Set<string>()): Promise<string[] | null> {
  switch (repo.type) {
    case 'hosted': {
      const tags = (await app.content.getTags(repo.id, name)).map((t) => t.name);
      if (tags.length === 0 && !(await hostedKnows(repo))) return null;
      return tags;
    }
    case 'proxy':
      return proxyTags(repo, name);
    case 'group': {
      if (seen.has(repo.name)) return null;
      seen.add(repo.name);
      let known = false;
      const all = new Set<string>();
      for (const m of await members(repo)) {
        const tags = await tolerant(tagNames(app, m, name, hostedKnows, seen));
        if (tags === null) continue;
        known = true;
        for (const t of tags) all.add(t);
      }
      return known ? [...all].sort() : null;
    }
  }
}

/** Image names of a repository; a group's are the sorted union of its members'. */
export async function catalogNames(repo: Repository, own: (r: Repository) => Promise<string[]>, seen = new Set<string>()): Promise<string[]> {
  if (repo.type !== 'group') return own(repo);
  if (seen.has(repo.name)) return [];
  seen.add(repo.name);
  const all = new Set<string>();
  for (const m of await members(repo)) for (const n of await catalogNames(m, own, seen).catch(() => [] as string[])) all.add(n);
  return [...all].sort();
}

/** Requests forwarded from a group to its writable member, with the group they came through. */
const forwarded = new WeakMap<ContentRequest, GroupRepository>();

/** The repository the client addressed: the group for a forwarded push, else the request's own. */
export function addressedRepository(req: ContentRequest): Repository {
  return forwarded.get(req) ?? req.repo;
}

/** The same request addressed to the group's writable member (pushes). */
export async function toWritableMember(req: ContentRequest): Promise<ContentRequest> {
  const group = req.repo as GroupRepository;
  const member = await group.writableMember();
  await req.access.require('add');
  const next: ContentRequest = { ...req, repo: member };
  forwarded.set(next, group);
  return next;
}

/**
 * A blob the manifest being pushed references, missing in the writable member but present in
 * another member of the group it was pushed through: it becomes the member's without uploading
 * (a reference to the same stored blob; a copy when the blob stores differ).
 */
export async function mountFromGroup(req: ContentRequest, name: string, digest: string): Promise<boolean> {
  const group = forwarded.get(req);
  if (!group) return false;
  const { app, repo } = req;
  for (const m of await group.members()) {
    if (m.name === repo.name) continue;
    let c = await getBlobContent(m, name, digest).catch(() => null);
    if (!c) continue;
    if (c.pending) c = await c.pending.stored;
    if (c.blob.store_id === repo.blobStoreId) {
      const blobId = c.blob.id;
      await app.db.transaction(async (tx) => {
        if (await app.content.findAsset(repo.id, blobPath(digest), tx)) return;
        await app.content.putAsset(tx, { repositoryId: repo.id, path: blobPath(digest), blobId, contentType: OCTET, kind: 'content', attributes: { digest } });
      });
    } else {
      await repo.put(blobPath(digest), await c.open(), { contentType: OCTET, kind: 'content', expected: digest.startsWith('sha256:') ? { sha256: digest.slice(7) } : undefined, attributes: { digest } }, req.access);
    }
    return true;
  }
  return false;
}
