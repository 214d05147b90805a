/** Manifest, tag, referrer and catalog endpoints of the registry API, and the version check. */
import { createHash } from 'node:crypto';
import type Koa from 'koa';
import { AppError } from '../../src/errors.js';
import type { ContentRequest } from '../../src/repository/format.js';
import type { Repository } from '../../src/repository/repository.js';
import type { Stowage } from '../../src/stowage.js';
import { sendContent } from '../../src/http/send-content.js';
import { authenticated, unauthorized } from './auth.js';
import { readSmall } from '../../src/blob/blob-service.js';
import { ociError } from './errors.js';
import {
  MAX_MANIFEST_BYTES,
  ManifestError,
  MT_OCI_INDEX,
  digestAlgorithm,
  extraTags,
  isValidDigest,
  isValidTag,
  looksLikeDigest,
  page,
  parseManifest,
  parsePageSize,
  referrerArtifactType,
} from './manifest.js';
import { referrers, referrersIndex } from './referrers.js';
import { commitManifest, deleteManifestAndTags, mayPush, untag } from './changes.js';
import { catalogNames, mountFromGroup, resolveManifest, tagNames } from './group.js';
import { blobPath, manifestPath } from './proxy.js';
import { base, digestMismatch, pusher, query, requireName } from './registry-request.js';

// ---- ping and catalog ------------------------------------------------------------------

export async function ping(req: ContentRequest): Promise<void> {
  const { ctx } = req;
  // Without credentials always the challenge, even when anonymous pull is allowed: clients learn
  // the token flow only from it (they then fetch an anonymous token).
  if (!authenticated(ctx.state.principal)) throw unauthorized();
  ctx.status = 200;
  ctx.set('Content-Type', 'application/json');
  ctx.body = '{}';
}

async function imageNames(app: Stowage, repo: Repository): Promise<string[]> {
  const names = new Set<string>();
  for (const { path: p } of await app.content.findAssets(repo.id, { pathLike: 'v2/%/manifests/%' })) {
    const i = p.lastIndexOf('/manifests/');
    if (i > 3) names.add(p.slice(3, i));
  }
  return [...names];
}

function pageQuery(ctx: Koa.Context): { n: number | undefined; last: string | undefined } {
  try {
    return { n: parsePageSize(query(ctx, 'n')), last: query(ctx, 'last') };
  } catch (e) {
    throw ociError('BAD_REQUEST', 'UNSUPPORTED', (e as Error).message);
  }
}

export async function catalog(req: ContentRequest): Promise<void> {
  const { ctx, app, repo } = req;
  const { n, last } = pageQuery(ctx);
  const p = page(await catalogNames(repo, (r) => imageNames(app, r)), n, last);
  if (p.more) ctx.set('Link', `<${base(req)}_catalog?n=${n}&last=${encodeURIComponent(p.items[p.items.length - 1])}>; rel="next"`);
  ctx.set('Content-Type', 'application/json');
  ctx.body = JSON.stringify({ repositories: p.items });
}

export async function tagsList(req: ContentRequest, name: string): Promise<void> {
  const { ctx, app, repo } = req;
  requireName(name);
  const tags = await tagNames(app, repo, name, async (r) => (await imageNames(app, r)).includes(name));
  if (tags === null) throw ociError('NOT_FOUND', 'NAME_UNKNOWN', `Repository name not known to registry: ${name}`);
  const { n, last } = pageQuery(ctx);
  const p = page(tags, n, last);
  if (p.more) ctx.set('Link', `<${base(req)}${name}/tags/list?n=${n}&last=${encodeURIComponent(p.items[p.items.length - 1])}>; rel="next"`);
  ctx.set('Content-Type', 'application/json');
  ctx.body = JSON.stringify({ name: req.rootRoute ? `${repo.name}/${name}` : name, tags: p.items });
}

// ---- manifests -------------------------------------------------------------------------

export async function getManifest(req: ContentRequest, name: string, reference: string): Promise<void> {
  requireName(name);
  const unknown = () => ociError('NOT_FOUND', 'MANIFEST_UNKNOWN', `Manifest unknown: ${name}:${reference}`);
  const found = await resolveManifest(req.app, req.repo, name, reference);
  if (!found) throw unknown();
  const { content, digest } = found;
  const mediaType = String(content.asset.attributes.mediaType ?? content.asset.content_type);
  await sendContent(req.ctx, content, { contentType: mediaType, headers: { 'Docker-Content-Digest': digest, ETag: `"${digest}"` } });
  req.repo.downloaded(content);
}

export async function putManifest(req: ContentRequest, name: string, reference: string): Promise<void> {
  const { ctx, repo } = req;
  requireName(name);
  const byDigest = looksLikeDigest(reference);
  await mayPush(pusher(req));
  if (byDigest && !isValidDigest(reference)) throw ociError('BAD_REQUEST', 'DIGEST_INVALID', `Invalid digest: ${reference}`);
  if (!byDigest && !isValidTag(reference)) throw ociError('BAD_REQUEST', 'TAG_INVALID', `Invalid tag: ${reference}`);
  const declared = Number(ctx.get('Content-Length') || '0');
  if (declared > MAX_MANIFEST_BYTES) throw ociError('PAYLOAD_TOO_LARGE', 'MANIFEST_INVALID', `Manifest exceeds ${MAX_MANIFEST_BYTES} bytes`);
  let body: Buffer;
  try {
    body = await readSmall(ctx.req, MAX_MANIFEST_BYTES);
  } catch (e) {
    if (e instanceof AppError && e.code === 'PAYLOAD_TOO_LARGE') throw ociError('PAYLOAD_TOO_LARGE', 'MANIFEST_INVALID', e.message);
    throw e;
  }
  let parsed;
  try {
    parsed = parseManifest(body, ctx.get('Content-Type') || undefined);
  } catch (e) {
    if (e instanceof ManifestError) throw ociError('BAD_REQUEST', e.code, e.message);
    throw e;
  }
  const algo = byDigest ? digestAlgorithm(reference) : 'sha256';
  const digest = `${algo}:${createHash(algo).update(body).digest('hex')}`;
  if (byDigest && digest !== reference) throw digestMismatch(reference, digest);

  // Every referenced blob and child manifest must be here.
  for (const b of parsed.blobs) {
    if (!(await repo.local(blobPath(b.digest))) && !(await mountFromGroup(req, name, b.digest))) {
      throw ociError('BAD_REQUEST', 'MANIFEST_BLOB_UNKNOWN', `Blob unknown to registry: ${b.digest}`, { detail: { digest: b.digest } });
    }
  }
  for (const m of parsed.manifests) {
    if (!(await repo.local(manifestPath(name, m.digest)))) {
      throw ociError('BAD_REQUEST', 'MANIFEST_UNKNOWN', `Manifest unknown: ${m.digest}`, { detail: { digest: m.digest } });
    }
  }

  // Tags: the reference (push by tag) and OCI 1.1 `?tag=` parameters (push by digest). The core
  // refuses moving one where the write policy forbids it, before anything is stored.
  const extra = extraTags(ctx.URL.searchParams.getAll('tag'));
  if (extra.invalid !== undefined) throw ociError('BAD_REQUEST', 'TAG_INVALID', `Invalid tag: ${extra.invalid}`);
  const tags = byDigest ? extra.tags : [...new Set([reference, ...extra.tags])];
  const subject = parsed.subject?.digest;
  const artifactType = referrerArtifactType(parsed);
  await commitManifest(pusher(req), {
    name,
    digest,
    mediaType: parsed.mediaType,
    body,
    subject,
    tags,
    blobs: parsed.blobs.map((b) => b.digest),
    attributes: {
      mediaType: parsed.mediaType,
      digest,
      ...(subject ? { subject } : {}),
      ...(artifactType !== undefined ? { artifactType } : {}),
      ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
    },
  });

  ctx.status = 201;
  ctx.set('Location', `${base(req)}${name}/manifests/${digest}`);
  ctx.set('Docker-Content-Digest', digest);
  if (subject) ctx.set('OCI-Subject', subject);
  if (byDigest && tags.length > 0) ctx.set('OCI-Tag', tags);
  ctx.body = '';
}

export async function deleteManifest(req: ContentRequest, name: string, reference: string): Promise<void> {
  const { ctx } = req;
  requireName(name);
  await mayPush(pusher(req), { deletes: true });
  const unknown = () => ociError('NOT_FOUND', 'MANIFEST_UNKNOWN', `Manifest unknown: ${name}:${reference}`);
  const audit = { name, reference };
  if (looksLikeDigest(reference)) {
    if (!isValidDigest(reference) || !(await deleteManifestAndTags(pusher(req), name, reference, audit))) throw unknown();
  } else if (!isValidTag(reference) || !(await untag(pusher(req), name, reference, audit))) {
    throw unknown();
  }
  ctx.status = 202;
  ctx.body = '';
}

// ---- referrers (OCI 1.1) ----------------------------------------------------------------

export async function getReferrers(req: ContentRequest, name: string, subject: string): Promise<void> {
  const { ctx, app, repo } = req;
  requireName(name);
  if (!isValidDigest(subject)) throw ociError('BAD_REQUEST', 'DIGEST_INVALID', `Invalid digest: ${subject}`);
  const artifactType = query(ctx, 'artifactType');
  const body = referrersIndex(await referrers(app, repo, name, subject), artifactType);
  if (artifactType !== undefined) ctx.set('OCI-Filters-Applied', 'artifactType');
  ctx.status = 200;
  ctx.set('Content-Type', MT_OCI_INDEX);
  ctx.body = Buffer.from(body);
}
