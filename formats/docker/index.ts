import { createHash } from 'node:crypto';
import { Readable, Transform, pipeline } from 'node:stream';
import { z } from 'zod';
import type Koa from 'koa';
import { AppError } from '../../src/errors.js';
import type { ContentRequest, FormatPlugin, FormatRoute, RootRoute, RouteRequest } from '../../src/repository/format.js';
import type { Repository } from '../../src/repository/repository.js';
import type { Stowage } from '../../src/stowage.js';
import { sendContent } from '../../src/http/send-content.js';
import { requireContent } from '../../src/http/auth.js';
import { DOCKER_TOKEN_REALM, authenticated, dockerListenerPort, forcesBasicAuth, tokenEndpoint, unauthorized } from './auth.js';
import { readSmall } from '../../src/blob/blob-service.js';
import { API_VERSION, API_VERSION_HEADER, ociError, renderOciError } from './errors.js';
import {
  MAX_MANIFEST_BYTES,
  ManifestError,
  MT_OCI_INDEX,
  digestAlgorithm,
  extraTags,
  isInvertedRange,
  isValidDigest,
  isValidName,
  isValidTag,
  looksLikeDigest,
  page,
  parseChunkRange,
  parseManifest,
  parsePageSize,
  referrerArtifactType,
} from './manifest.js';
import { referrers, referrersIndex } from './referrers.js';
import { commitBlob, commitManifest, deleteBlobAsset, deleteManifestAndTags, mayPush, mountBlob, stageAndCommitBlob, untag, type Pusher } from './changes.js';
import { compareVersions, componentOf, isPrerelease } from './components.js';
import { maintain } from './maintenance.js';
import { UploadSessions, type UploadSession } from './uploads.js';
import { ChunkRefused } from '../../src/blob/chunked-blob.js';
import type { Digests } from '../../src/blob/digest-stream.js';
import { addressedRepository, catalogNames, getBlobContent, mountFromGroup, resolveManifest, tagNames, toWritableMember } from './group.js';
import { archiveRoutes } from './archive.js';
import { dockerProxySection, isMetadata, proxyAsset, proxyExpected, upstreamChallenge, upstreamHeaders, upstreamUrl } from './proxy.js';
import { dockerGcTask, dockerUploadPurgeTask } from './gc.js';

export interface DockerSection {
  v1Enabled: boolean;
  forceBasicAuth: boolean;
  httpPort?: number | null;
  httpsPort?: number | null;
  latestPolicy?: boolean;
}

const OCTET = 'application/octet-stream';
const blobPath = (digest: string) => `v2/-/blobs/${digest}`;
const manifestPath = (name: string, digest: string) => `v2/${name}/manifests/${digest}`;

const sessionsByApp = new WeakMap<Stowage, UploadSessions>();
function sessions(app: Stowage): UploadSessions {
  let s = sessionsByApp.get(app);
  if (!s) sessionsByApp.set(app, (s = new UploadSessions(app)));
  return s;
}

/** URL prefix under which `<name>/…` is addressed by the client. */
function base(req: ContentRequest): string {
  if (req.listener) return '/v2/';
  // A push through a group keeps addressing the group (its writable member stores it).
  const shown = addressedRepository(req).name;
  return req.rootRoute ? `/v2/${shown}/` : `/repository/${shown}/v2/`;
}

function requireName(name: string): void {
  if (!isValidName(name)) throw ociError('BAD_REQUEST', 'NAME_INVALID', `Invalid repository name: ${name}`);
}

function query(ctx: Koa.Context, key: string): string | undefined {
  return ctx.URL.searchParams.get(key) ?? undefined;
}

function digestMismatch(expected: string, got: string) {
  return ociError('DIGEST_INVALID', 'DIGEST_INVALID', `Digest mismatch: expected ${expected}, got ${got}`);
}

/** Passes bytes through while hashing with the digest's algorithm; fails at the end on mismatch. */
function verifier(digest: string): Transform {
  const algo = digestAlgorithm(digest);
  const h = createHash(algo);
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      const got = `${algo}:${h.digest('hex')}`;
      cb(got === digest ? null : digestMismatch(digest, got));
    },
  });
}

/** Drains a body through a hash only (content already stored): verifies without storing. */
async function verifyOnly(body: Readable, digest: string): Promise<void> {
  const v = verifier(digest);
  await new Promise<void>((resolve, reject) => pipeline(body, v, (e) => (e ? reject(e) : resolve())).resume());
}

/** The request as a pusher: its repository, permission check and audit origin. */
function pusher(req: ContentRequest): Pusher {
  return { app: req.app, repo: req.repo, access: req.access, origin: { principal: req.principal, remoteAddress: req.ctx.ip } };
}

/** Stores a blob from `body` under its digest, verified while streaming; nothing is stored on mismatch. */
async function storeBlob(req: ContentRequest, digest: string, body: Readable, expectedSize?: number): Promise<void> {
  const { repo } = req;
  if (await repo.local(blobPath(digest))) return verifyOnly(body, digest);
  const sha256 = digestAlgorithm(digest) === 'sha256';
  let source: Readable = body;
  if (!sha256) {
    const v = verifier(digest);
    source = pipeline(body, v, () => undefined);
  }
  await stageAndCommitBlob(pusher(req), digest, source, { expectedSize, expected: sha256 ? { sha256: digest.slice(7) } : undefined });
}

function blobCreated(req: ContentRequest, name: string, digest: string): void {
  const { ctx } = req;
  ctx.status = 201;
  ctx.set('Location', `${base(req)}${name}/blobs/${digest}`);
  ctx.set('Docker-Content-Digest', digest);
  ctx.body = '';
}

function uploadHeaders(req: ContentRequest, s: UploadSession): void {
  const { ctx } = req;
  ctx.set('Location', `${base(req)}${s.name}/blobs/uploads/${s.uuid}`);
  ctx.set('Range', `0-${Math.max(0, s.size - 1)}`);
  ctx.set('Docker-Upload-UUID', s.uuid);
}

function hasBody(ctx: Koa.Context): boolean {
  const len = ctx.get('Content-Length');
  if (len) return Number(len) > 0;
  return !!ctx.get('Transfer-Encoding');
}

// ---- ping and catalog ------------------------------------------------------------------

async function ping(req: ContentRequest): Promise<void> {
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

async function catalog(req: ContentRequest): Promise<void> {
  const { ctx, app, repo } = req;
  const { n, last } = pageQuery(ctx);
  const p = page(await catalogNames(repo, (r) => imageNames(app, r)), n, last);
  if (p.more) ctx.set('Link', `<${base(req)}_catalog?n=${n}&last=${encodeURIComponent(p.items[p.items.length - 1])}>; rel="next"`);
  ctx.set('Content-Type', 'application/json');
  ctx.body = JSON.stringify({ repositories: p.items });
}

async function tagsList(req: ContentRequest, name: string): Promise<void> {
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

// ---- blobs -----------------------------------------------------------------------------

/** The image name `-`: where blobs are stored, shared by every image; the REST API's downloadUrl of a blob asset. */
const STORED_BLOBS = '-';

async function getBlob(req: ContentRequest, name: string, digest: string): Promise<void> {
  if (name !== STORED_BLOBS) requireName(name);
  const unknown = () => ociError('NOT_FOUND', 'BLOB_UNKNOWN', `Blob unknown to registry: ${digest}`);
  if (!isValidDigest(digest)) throw unknown();
  const content = await getBlobContent(req.repo, name, digest);
  if (!content) throw unknown();
  // HTTP lets a server ignore `bytes=500-0` and send it all; registry clients resuming a
  // download expect 416 (OCI conformance), like distribution.
  const size = content.pending ? content.pending.size : content.blob.size;
  if (isInvertedRange(req.ctx.get('Range')) && size !== null) {
    throw new AppError('RANGE_NOT_SATISFIABLE', 'Requested range not satisfiable', { headers: { 'Content-Range': `bytes */${size}` } });
  }
  await sendContent(req.ctx, content, { contentType: OCTET, headers: { 'Docker-Content-Digest': digest } });
  req.repo.downloaded(content);
}

async function deleteBlob(req: ContentRequest, name: string, digest: string): Promise<void> {
  requireName(name);
  await mayPush(pusher(req), { deletes: true });
  if (!isValidDigest(digest) || !(await deleteBlobAsset(pusher(req), digest))) throw ociError('NOT_FOUND', 'BLOB_UNKNOWN', `Blob unknown to registry: ${digest}`);
  req.ctx.status = 202;
  req.ctx.body = '';
}

/**
 * Cross-repository mount: the blob becomes part of this repository without copying bytes, when
 * it is already here or in a readable repository on the same blob store. False: fall back.
 */
async function tryMount(req: ContentRequest, digest: string, from: string | undefined): Promise<boolean> {
  const { app, repo, ctx } = req;
  if (!isValidDigest(digest)) return false;
  if (await repo.local(blobPath(digest))) return true;
  if (!from) return false;
  // `from` names an image; through the root route its first segment is the repository.
  const sourceName = from.includes('/') ? from.slice(0, from.indexOf('/')) : null;
  if (!sourceName || (!req.rootRoute && sourceName === repo.name)) return false;
  const source = await app.repositories.find(sourceName);
  if (!source || source.format !== repo.format || source.blobStoreId !== repo.blobStoreId) return false;
  try {
    await requireContent(app, ctx, { format: repo.format.name, repository: source.name, action: 'read', path: '/' + blobPath(digest) });
  } catch {
    return false;
  }
  const content = await source.local(blobPath(digest));
  if (!content) return false;
  await mountBlob(repo, digest, content.blob.id, req.access);
  return true;
}

async function startUpload(req: ContentRequest, name: string): Promise<void> {
  const { ctx, repo, app } = req;
  requireName(name);
  await mayPush(pusher(req));
  const mount = query(ctx, 'mount');
  if (mount !== undefined && (await tryMount(req, mount, query(ctx, 'from')))) return blobCreated(req, name, mount);
  const digest = query(ctx, 'digest');
  if (digest !== undefined && mount === undefined) {
    if (!isValidDigest(digest)) throw ociError('BAD_REQUEST', 'DIGEST_INVALID', `Invalid digest: ${digest}`);
    const len = ctx.get('Content-Length');
    await storeBlob(req, digest, ctx.req, len ? Number(len) : undefined);
    return blobCreated(req, name, digest);
  }
  const s = await sessions(app).create(repo, name);
  ctx.status = 202;
  uploadHeaders(req, s);
  ctx.set('Content-Length', '0');
  ctx.body = '';
}

function uploadState(req: ContentRequest, s: UploadSession, size = s.size): Record<string, string> {
  return { Location: `${base(req)}${s.name}/blobs/uploads/${s.uuid}`, Range: `0-${Math.max(0, size - 1)}`, 'Docker-Upload-UUID': s.uuid };
}

/** A chunk must start exactly at the current offset, else 416 with the current state. The start it names, if any. */
function checkChunk(req: ContentRequest, s: UploadSession): number | undefined {
  const r = parseChunkRange(req.ctx.get('Content-Range') || undefined);
  if (r === null) return undefined;
  if (r === 'invalid' || r.start !== s.size) {
    throw ociError('RANGE_NOT_SATISFIABLE', 'BLOB_UPLOAD_INVALID', `Chunk must start at offset ${s.size}`, { headers: uploadState(req, s) });
  }
  return r.start;
}

/** A chunk refused by the blob service (another one in progress, or the offset moved meanwhile): 416 with the state. */
async function refusedAs416<T>(req: ContentRequest, s: UploadSession, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ChunkRefused) throw ociError('RANGE_NOT_SATISFIABLE', 'BLOB_UPLOAD_INVALID', e.message, { headers: uploadState(req, s, e.size) });
    throw e;
  }
}

async function patchUpload(req: ContentRequest, name: string, uuid: string): Promise<void> {
  const { ctx, repo, app } = req;
  requireName(name);
  await mayPush(pusher(req));
  const s = await sessions(app).get(repo.id, name, uuid);
  const at = checkChunk(req, s);
  await refusedAs416(req, s, () => sessions(app).append(s, ctx.req, at));
  ctx.status = 202;
  uploadHeaders(req, s);
  ctx.set('Content-Length', '0');
  ctx.body = '';
}

/**
 * Publishes a finished upload under `digest`: the digests were computed as the chunks arrived (a
 * sha512 digest, which the core does not compute, costs one read of the bytes). On a mismatch
 * nothing is stored.
 */
async function storeUploaded(req: ContentRequest, digest: string, s: UploadSession, d: Digests): Promise<void> {
  const algo = digestAlgorithm(digest);
  let got = `sha256:${d.sha256}`;
  if (algo !== 'sha256') {
    const h = createHash(algo);
    for await (const c of await sessions(req.app).read(s)) h.update(c as Buffer);
    got = `${algo}:${h.digest('hex')}`;
  }
  if (got !== digest) throw digestMismatch(digest, got);
  if (await req.repo.local(blobPath(digest))) return;
  await commitBlob(pusher(req), digest, await sessions(req.app).stage(s, d));
}

async function putUpload(req: ContentRequest, name: string, uuid: string): Promise<void> {
  const { ctx, repo, app } = req;
  requireName(name);
  await mayPush(pusher(req));
  const s = await sessions(app).get(repo.id, name, uuid);
  const digest = query(ctx, 'digest');
  if (!digest || !isValidDigest(digest)) throw ociError('BAD_REQUEST', 'DIGEST_INVALID', `Invalid or missing digest: ${digest ?? ''}`);
  if (hasBody(ctx)) {
    const at = checkChunk(req, s);
    await refusedAs416(req, s, () => sessions(app).append(s, ctx.req, at));
  }
  // Refused while a chunk is still arriving: the session stays.
  const d = await refusedAs416(req, s, () => sessions(app).digests(s));
  try {
    await storeUploaded(req, digest, s, d);
  } finally {
    // Committed, or refused (nothing stored): either way the session is over.
    await sessions(app).remove(repo, s);
  }
  blobCreated(req, name, digest);
}

async function uploadStatus(req: ContentRequest, name: string, uuid: string): Promise<void> {
  requireName(name);
  const s = await sessions(req.app).get(req.repo.id, name, uuid);
  uploadHeaders(req, s);
  req.ctx.status = 204;
}

async function cancelUpload(req: ContentRequest, name: string, uuid: string): Promise<void> {
  requireName(name);
  const s = await sessions(req.app).get(req.repo.id, name, uuid);
  await sessions(req.app).remove(req.repo, s);
  req.ctx.status = 204;
}

// ---- manifests -------------------------------------------------------------------------

async function getManifest(req: ContentRequest, name: string, reference: string): Promise<void> {
  requireName(name);
  const unknown = () => ociError('NOT_FOUND', 'MANIFEST_UNKNOWN', `Manifest unknown: ${name}:${reference}`);
  const found = await resolveManifest(req.app, req.repo, name, reference);
  if (!found) throw unknown();
  const { content, digest } = found;
  const mediaType = String(content.asset.attributes.mediaType ?? content.asset.content_type);
  await sendContent(req.ctx, content, { contentType: mediaType, headers: { 'Docker-Content-Digest': digest, ETag: `"${digest}"` } });
  req.repo.downloaded(content);
}

async function putManifest(req: ContentRequest, name: string, reference: string): Promise<void> {
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

async function deleteManifest(req: ContentRequest, name: string, reference: string): Promise<void> {
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

async function getReferrers(req: ContentRequest, name: string, subject: string): Promise<void> {
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

// ---- plugin ----------------------------------------------------------------------------

/**
 * What every registry row does before its handler: the API version header, Nexus's forced Basic
 * auth (no anonymous pull, whatever the anonymous role may read), and for a push through a group,
 * the group's writable member as the request's repository.
 */
function registry(handler: (req: RouteRequest) => Promise<void>, opts: { push?: boolean } = {}): FormatRoute['handler'] {
  return async (req) => {
    req.ctx.set(API_VERSION_HEADER, API_VERSION);
    if (forcesBasicAuth(req.repo) && (!req.principal || req.principal.anonymous)) throw unauthorized();
    // The member's request keeps the params (and is the key group.ts remembers the group by).
    if (opts.push && req.repo.type === 'group') req = (await toWritableMember(req)) as RouteRequest;
    return handler(req);
  };
}

async function token(req: RouteRequest): Promise<void> {
  req.ctx.set(API_VERSION_HEADER, API_VERSION);
  return tokenEndpoint(req.ctx, req.app, req.repo);
}

const NAME = String.raw`v2/(?<name>.+)`;
const route = (pattern: string) => new RegExp(`^${pattern}$`);
const uploadRoute = route(String.raw`${NAME}/blobs/uploads/(?<uuid>[^/]+)`);
// `blobs/uploads` is the start of an upload, never a blob's digest.
const blobRoute = route(String.raw`${NAME}/blobs/(?<digest>(?!uploads$)[^/]+)`);
const manifestRoute = route(String.raw`${NAME}/manifests/(?<reference>[^/]+)`);

/**
 * The registry API (distribution spec v2 / OCI 1.1), one row per endpoint, matched on the path
 * inside the repository (`v2/…`, also on a dedicated port and through the root route).
 */
const routes: FormatRoute[] = [
  { methods: ['GET'], path: /(?:^|\/)v2\/token$/, need: 'public', handler: token },
  { methods: ['GET'], path: /^v2\/?$/, need: 'public', handler: registry(ping) },
  { methods: ['GET'], path: /^v2\/_catalog$/, need: 'browse', handler: registry(catalog) },
  { methods: ['GET'], path: route(String.raw`${NAME}/tags/list`), need: 'read', handler: registry((req) => tagsList(req, req.params.name)) },
  { methods: ['POST'], path: route(String.raw`${NAME}/blobs/uploads/?`), need: 'add', handler: registry((req) => startUpload(req, req.params.name), { push: true }) },
  // An upload session is the pusher's: asking for its state or cancelling it needs add too.
  { methods: ['GET'], path: uploadRoute, need: 'add', handler: registry((req) => uploadStatus(req, req.params.name, req.params.uuid), { push: true }) },
  { methods: ['PATCH'], path: uploadRoute, need: 'add', handler: registry((req) => patchUpload(req, req.params.name, req.params.uuid), { push: true }) },
  { methods: ['PUT'], path: uploadRoute, need: 'add', handler: registry((req) => putUpload(req, req.params.name, req.params.uuid), { push: true }) },
  { methods: ['DELETE'], path: uploadRoute, need: 'add', handler: registry((req) => cancelUpload(req, req.params.name, req.params.uuid), { push: true }) },
  { methods: ['GET'], path: blobRoute, need: 'read', handler: registry((req) => getBlob(req, req.params.name, req.params.digest)) },
  { methods: ['DELETE'], path: blobRoute, need: 'delete', handler: registry((req) => deleteBlob(req, req.params.name, req.params.digest)) },
  { methods: ['GET'], path: manifestRoute, need: 'read', handler: registry((req) => getManifest(req, req.params.name, req.params.reference)) },
  { methods: ['PUT'], path: manifestRoute, need: 'add', handler: registry((req) => putManifest(req, req.params.name, req.params.reference), { push: true }) },
  { methods: ['DELETE'], path: manifestRoute, need: 'delete', handler: registry((req) => deleteManifest(req, req.params.name, req.params.reference)) },
  {
    methods: ['GET'],
    path: route(String.raw`${NAME}/referrers/(?<digest>[^/]+)`),
    need: 'read',
    handler: registry((req) => getReferrers(req, req.params.name, req.params.digest)),
  },
];

/**
 * `/v2/<repo>/<image>/…` on the main listener: the first path segment names the repository, as
 * real clients cannot put a path prefix before `/v2/`.
 */
const pathRouted: RootRoute = {
  prefix: '/v2/',
  resolve(rawPath) {
    const rest = rawPath.replace(/^\/v2\/?/, '');
    const slash = rest.indexOf('/');
    if (rest === '' || rest === '_catalog' || slash <= 0) return null;
    let repository: string;
    try {
      repository = decodeURIComponent(rest.slice(0, slash));
    } catch {
      return null;
    }
    return { repository, rawPath: 'v2/' + rest.slice(slash + 1) };
  },
  async handleUnrouted(ctx, app) {
    ctx.set(API_VERSION_HEADER, API_VERSION);
    const rest = ctx.path.replace(/^\/v2\/?/, '');
    if (rest === 'token' && (ctx.method === 'GET' || ctx.method === 'HEAD')) return tokenEndpoint(ctx, app, null);
    if (rest !== '') throw ociError('NOT_FOUND', 'NAME_UNKNOWN', 'Repository not found');
    // The version check: clients learn the auth scheme from its challenge.
    if (!authenticated(ctx.state.principal)) throw unauthorized();
    ctx.status = 200;
    ctx.set('Content-Type', 'application/json');
    ctx.body = '{}';
  },
};

export const docker: FormatPlugin = {
  name: 'docker',
  sections: [
    {
      key: 'docker',
      schema: z.object({
        v1Enabled: z.boolean().default(false),
        forceBasicAuth: z.boolean().default(true),
        httpPort: z.number().int().min(1).max(65535).nullable().optional(),
        httpsPort: z.number().int().min(1).max(65535).nullable().optional(),
        latestPolicy: z.boolean().optional(),
      }),
      defaults: () => ({ v1Enabled: false, forceBasicAuth: true }),
    },
    dockerProxySection,
  ],
  rootRoutes: [pathRouted],
  tokenRealms: [DOCKER_TOKEN_REALM],
  tasks: [dockerGcTask, dockerUploadPurgeTask],
  apiRoutes: archiveRoutes,
  listenerPort: dockerListenerPort,
  listenerPortField: 'docker.httpPort',
  routes,
  renderError: renderOciError,
  isMetadata,
  upstreamUrl,
  upstreamHeaders,
  upstreamChallenge,
  proxyAsset,
  proxyExpected,
  maintain,
  compareVersions,
  isPrerelease,
  componentOf,
};
