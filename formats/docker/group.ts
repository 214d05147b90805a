/**
 * Docker through every repository type, and groups. Groups are walked by the core's one member
 * walk (GroupRepository.walk: member order, the cycle guard, a failing member logged and skipped):
 * reads resolve in member order (paths through GroupRepository.get; tags by asking members in
 * order); tag lists, the catalog and referrers are merged; pushes land in the group's writable
 * member, where blobs another member already has are mounted (referenced, or copied across blob
 * stores) instead of uploaded.
 */
import type { ContentRequest } from '../../src/repository/format.js';
import type { GroupRepository, Repository } from '../../src/repository/repository.js';
import type { Content } from '../../src/repository/types.js';
import type { Stowage } from '../../src/stowage.js';
import { isValidDigest, isValidTag, looksLikeDigest } from './manifest.js';
import { hostedManifest, hostedTagTarget } from './manifest-cache.js';
import { blobPath, manifestPath, proxyTagManifest, proxyTags, tagsPath, upstreamBlobPath } from './proxy.js';
import { mountBlob, stageAndCommitBlob } from './changes.js';

const group = (repo: Repository) => repo as GroupRepository;

/** A blob through any repository type (proxy: fetched upstream under the image's name). */
export async function getBlobContent(repo: Repository, name: string, digest: string): Promise<Content | null> {
  return repo.get(blobPath(digest), { upstreamPath: upstreamBlobPath(name, digest) });
}

/** The manifest a reference names, and its digest, in any repository type. `trail`: the groups entered. */
export async function resolveManifest(app: Stowage, repo: Repository, name: string, reference: string, trail?: string[]): Promise<{ content: Content; digest: string } | null> {
  if (looksLikeDigest(reference)) {
    if (!isValidDigest(reference)) return null;
    const content = repo.type === 'hosted' ? await hostedManifest(app, repo, name, reference) : await repo.get(manifestPath(name, reference), { groupTrail: trail });
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
      const [hit] = await group(repo).walk(manifestPath(name, reference), (m, t) => resolveManifest(app, m, name, reference, t), { first: true, trail });
      return hit?.value ?? null;
    }
  }
}

/** An image's tags in any repository type (group: the sorted union); null when no member knows the image. */
export async function tagNames(app: Stowage, repo: Repository, name: string, hostedKnows: (r: Repository) => Promise<boolean>, trail?: string[]): Promise<string[] | null> {
  switch (repo.type) {
    case 'hosted': {
      const tags = (await app.content.getTags(repo.id, name)).map((t) => t.name);
      if (tags.length === 0 && !(await hostedKnows(repo))) return null;
      return tags;
    }
    case 'proxy':
      return proxyTags(repo, name);
    case 'group': {
      const known = await group(repo).walk(tagsPath(name), (m, t) => tagNames(app, m, name, hostedKnows, t), { trail });
      if (known.length === 0) return null;
      return [...new Set(known.flatMap((k) => k.value))].sort();
    }
  }
}

/** Image names of a repository; a group's are the sorted union of its members'. */
export async function catalogNames(repo: Repository, own: (r: Repository) => Promise<string[]>, trail?: string[]): Promise<string[]> {
  if (repo.type !== 'group') return own(repo);
  const all = await group(repo)
    .walk('v2/_catalog', (m, t) => catalogNames(m, own, t), { trail })
    .catch(() => []);
  return [...new Set(all.flatMap((r) => r.value))].sort();
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
  const through = forwarded.get(req);
  if (!through) return false;
  const { app, repo } = req;
  // Any member but the one pushed to (it lacks the blob), through the core's walk.
  const [hit] = await through.walk(blobPath(digest), async (m) => (m.name === repo.name ? null : getBlobContent(m, name, digest)), { first: true }).catch(() => []);
  if (!hit) return false;
  const c = hit.value.pending ? await hit.value.pending.stored : hit.value;
  if (c.blob.store_id === repo.blobStoreId) {
    await mountBlob(repo, digest, c.blob.id, req.access);
  } else {
    const pusher = { app, repo, access: req.access, origin: { principal: req.principal, remoteAddress: req.ctx.ip } };
    await stageAndCommitBlob(pusher, digest, await c.open(), { expected: digest.startsWith('sha256:') ? { sha256: digest.slice(7) } : undefined });
  }
  return true;
}
