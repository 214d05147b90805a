/**
 * Blob endpoints of the registry API: pull, delete, and uploads (monolithic, chunked, resumed,
 * cross-repository mounts), each verified against its digest while streaming.
 */
import { createHash } from 'node:crypto';
import { Readable, Transform, pipeline } from 'node:stream';
import type Koa from 'koa';
import { AppError } from '../../src/errors.js';
import type { ContentRequest } from '../../src/repository/format.js';
import type { Stowage } from '../../src/stowage.js';
import { sendContent } from '../../src/http/send-content.js';
import { requireContent } from '../../src/http/auth.js';
import { ociError } from './errors.js';
import { digestAlgorithm, isInvertedRange, isValidDigest, parseChunkRange } from './manifest.js';
import { commitBlob, deleteBlobAsset, mayPush, mountBlob, stageAndCommitBlob } from './changes.js';
import { UploadSessions, type UploadSession } from './uploads.js';
import { ChunkRefused } from '../../src/blob/chunked-blob.js';
import type { Digests } from '../../src/blob/digest-stream.js';
import { getBlobContent } from './group.js';
import { blobPath } from './proxy.js';
import { base, digestMismatch, pusher, query, requireName } from './registry-request.js';

const OCTET = 'application/octet-stream';

const sessionsByApp = new WeakMap<Stowage, UploadSessions>();
function sessions(app: Stowage): UploadSessions {
  let s = sessionsByApp.get(app);
  if (!s) sessionsByApp.set(app, (s = new UploadSessions(app)));
  return s;
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

// ---- blobs -----------------------------------------------------------------------------

/** The image name `-`: where blobs are stored, shared by every image; the REST API's downloadUrl of a blob asset. */
const STORED_BLOBS = '-';

export async function getBlob(req: ContentRequest, name: string, digest: string): Promise<void> {
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

export async function deleteBlob(req: ContentRequest, name: string, digest: string): Promise<void> {
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

export async function startUpload(req: ContentRequest, name: string): Promise<void> {
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

export async function patchUpload(req: ContentRequest, name: string, uuid: string): Promise<void> {
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

export async function putUpload(req: ContentRequest, name: string, uuid: string): Promise<void> {
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

export async function uploadStatus(req: ContentRequest, name: string, uuid: string): Promise<void> {
  requireName(name);
  const s = await sessions(req.app).get(req.repo.id, name, uuid);
  uploadHeaders(req, s);
  req.ctx.status = 204;
}

export async function cancelUpload(req: ContentRequest, name: string, uuid: string): Promise<void> {
  requireName(name);
  const s = await sessions(req.app).get(req.repo.id, name, uuid);
  await sessions(req.app).remove(req.repo, s);
  req.ctx.status = 204;
}
