/**
 * Image archives, the manual distribution `docker save` / `docker load` users fall back to.
 *
 * Upload (`POST /service/rest/v1/docker/archive?repository=R`, body a tar, gzip allowed): a
 * `docker save` archive (legacy `manifest.json` + layer tars + config; docker ≥ 25 also holds an
 * OCI layout) or an OCI image-layout tarball (nested indexes, multi-arch). Every tar entry streams
 * into the blob store while it is hashed (its name's digest verified); manifests and tags are
 * committed last, in one transaction, once everything they reference is known to be there. Any
 * problem: 400, every staged blob discarded, nothing visible.
 *
 * Download (`GET …/archive?repository=R&image=name:tag`): a `docker save` style tarball that
 * holds both `manifest.json` (docker load, podman, skopeo docker-archive:) and an OCI layout
 * (`index.json`, `oci-layout`, `blobs/<alg>/<hex>`), as docker ≥ 25 writes, from any repository
 * type (a proxy fetches what it has not cached).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import type Koa from 'koa';
import { AppError, badRequest } from '../../src/errors.js';
import { readTar, tarLength, writeTar, normaliseEntryName, type TarWriteEntry } from '../../src/archive/tar.js';
import { readSmall, type StagedBlob } from '../../src/blob/blob-service.js';
import { auditOrigin, requireContent } from '../../src/http/auth.js';
import { queryParam, requiredParam } from '../../src/api/params.js';
import type { ApiRoute } from '../../src/repository/format.js';
import type { GroupRepository, Repository } from '../../src/repository/repository.js';
import type { Content } from '../../src/repository/types.js';
import type { Stowage } from '../../src/stowage.js';
import {
  MAX_MANIFEST_BYTES,
  MT_DOCKER_MANIFEST,
  MT_OCI_INDEX,
  MT_OCI_MANIFEST,
  ManifestError,
  isValidDigest,
  isValidName,
  isValidTag,
  parseManifest,
  referrerArtifactType,
  type ParsedManifest,
} from './manifest.js';
import { blobPath, manifestPath } from './proxy.js';
import { getBlobContent, resolveManifest } from './group.js';
import { DOCKER_DIGESTS, mayPush, setTag, type Pusher } from './changes.js';
import { indexReferrer } from './referrers.js';

const OCTET = 'application/octet-stream';
const MT_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const MT_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
const MT_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const MT_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';

/** `manifest.json`, `index.json` and friends larger than this are refused. */
export const MAX_METADATA_BYTES = MAX_MANIFEST_BYTES;
/** JSON-looking entries up to this size are kept in memory while they stream to the store (no read back). */
const KEEP_JSON_BYTES = 1 << 20;
/** At most this much JSON is kept in memory per upload; beyond it, read back from the store. */
const KEEP_JSON_BUDGET = 32 << 20;
const METADATA_FILES = new Set(['manifest.json', 'index.json', 'oci-layout', 'repositories']);
/**
 * Entries up to this size (configs, manifests, empty and tiny files) are held in memory and reach
 * the blob store only when a manifest references them: an archive of thousands of small entries
 * nothing uses costs no store writes. Larger entries stream to the store as they arrive.
 */
const SMALL_ENTRY_BYTES = 64 << 10;
/** At most this much is held in memory per upload; beyond it small entries are staged too. */
const SMALL_ENTRIES_BUDGET = 32 << 20;
/**
 * No archive a client writes comes near this many tar entries (a legacy layer is four: its
 * folder, layer.tar, json, VERSION); more is refused at once instead of read to the end.
 */
export const MAX_ARCHIVE_ENTRIES = 10_000;
/**
 * Names the writers of image archives use: OCI layout blobs and folders, and docker save's
 * `<id>.json`, `<digest>.tar`, `<id>/layer.tar|json|VERSION` (docker, podman, skopeo).
 */
const KNOWN_ENTRY = /^(?:blobs(?:\/(?:sha256|sha512)(?:\/[a-f0-9]+)?)?|[a-f0-9]{64}(?:\.tar|\.json|\/(?:layer\.tar|json|VERSION))?)$/;
/**
 * Entries of another name (a `manifest.json` may still point at them) or empty files (no layer,
 * config or manifest is empty) are tolerated up to this many: an archive of thousands of them is
 * refused after reading a few hundred kilobytes, not at its end.
 */
export const MAX_UNKNOWN_ENTRIES = 1_000;
const MAX_INDEX_DEPTH = 8;
const MAX_LINK_HOPS = 16;

const sha256Of = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const invalid = (message: string) => badRequest(`Invalid image archive: ${message}`);

// ---- references --------------------------------------------------------------------------

/**
 * An image reference as archives write it (`busybox:latest`, `docker.io/library/busybox:1`,
 * `registry.example:5000/team/app:v2`, `app@sha256:…`): the name inside a registry (registry host
 * dropped; Docker Hub's `library/` too) and the tag or digest.
 */
export function parseImageReference(ref: string): { name: string; tag?: string; digest?: string } {
  let rest = ref.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const parts = rest.split('/');
  let hub = false;
  if (parts.length > 1 && (parts[0].includes('.') || parts[0].includes(':') || parts[0] === 'localhost')) {
    hub = parts[0] === 'docker.io' || parts[0] === 'index.docker.io' || parts[0] === 'registry-1.docker.io';
    parts.shift();
  }
  if (hub && parts.length > 1 && parts[0] === 'library') parts.shift();
  return { name: parts.join('/'), tag, digest };
}

// ---- upload: receiving the tar -------------------------------------------------------------

/** One file of the archive: staged in the blob store (not yet visible), or small and still in memory. */
interface ArchiveFile {
  path: string;
  size: number;
  /** Absent while the file is only in memory (`data`): staged once the plan needs it. */
  staged?: StagedBlob;
  data?: Buffer;
  /** `sha256:<hex>` of the content. */
  sha256: string;
  /** Its bytes when it looked like JSON and was small (manifests, configs, indexes). */
  json?: Buffer;
  /** The first bytes (compression magic). */
  head: Buffer;
}

class Received {
  readonly files = new Map<string, ArchiveFile>();
  readonly links = new Map<string, string>();
  readonly metadata = new Map<string, Buffer>();
  readonly discarded: ArchiveFile[] = [];
  keptJson = 0;
  inMemory = 0;
  entries = 0;
  unknown = 0;

  /** The file at an archive path, following symbolic and hard links. */
  resolve(p: string): ArchiveFile | undefined {
    let cur: string;
    try {
      cur = normaliseEntryName(p);
    } catch {
      return undefined;
    }
    for (let i = 0; i < MAX_LINK_HOPS; i++) {
      const f = this.files.get(cur);
      if (f) return f;
      const next = this.links.get(cur);
      if (next === undefined) return undefined;
      cur = next;
    }
    return undefined;
  }

  blob(digest: string): ArchiveFile | undefined {
    const [alg, hex] = digest.split(':');
    return this.resolve(`blobs/${alg}/${hex}`);
  }

  all(): ArchiveFile[] {
    return [...this.files.values(), ...this.discarded];
  }
}

/** A small entry read into memory, its name's digest checked; staged later only if referenced. */
async function holdEntry(rec: Received, name: string, size: number, body: Readable): Promise<ArchiveFile> {
  const named = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(name);
  if (named && !isValidDigest(`${named[1]}:${named[2]}`)) throw invalid(`${name}: not a valid digest`);
  const data = await readSmall(body, SMALL_ENTRY_BYTES);
  if (data.length !== size) throw invalid(`${name}: truncated entry`);
  const sha256 = createHash('sha256').update(data).digest('hex');
  const got = named?.[1] === 'sha512' ? createHash('sha512').update(data).digest('hex') : sha256;
  if (named && got !== named[2]) throw new AppError('DIGEST_INVALID', `Invalid image archive: ${name}: content does not match its digest (got ${named[1]}:${got})`);
  rec.inMemory += size;
  const head = data.subarray(0, 4);
  return { path: name, size, data, sha256: `sha256:${sha256}`, head, json: head[0] === 0x7b || head[0] === 0x5b ? data : undefined };
}

/** Puts a file still in memory into the blob store (the plan references it). */
async function materialise(app: Stowage, storeId: number, file: ArchiveFile): Promise<void> {
  if (file.staged || !file.data) return;
  file.staged = await app.blobs.stage(storeId, Readable.from([file.data]), { digests: DOCKER_DIGESTS, expectedSize: file.size, expected: { sha256: file.sha256.slice(7) } });
}

/** Streams one entry into the blob store: hashed once, its name's digest checked, small JSON kept. */
async function stageEntry(app: Stowage, storeId: number, rec: Received, name: string, size: number, body: Readable): Promise<ArchiveFile> {
  const named = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(name);
  if (named && !isValidDigest(`${named[1]}:${named[2]}`)) throw invalid(`${name}: not a valid digest`);
  let head = Buffer.alloc(0);
  const keep: Buffer[] = [];
  let keeping = size <= KEEP_JSON_BYTES && rec.keptJson + size <= KEEP_JSON_BUDGET;
  const sha512 = named?.[1] === 'sha512' ? createHash('sha512') : null;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (head.length < 4) head = Buffer.concat([head, chunk.subarray(0, 4 - head.length)]);
      if (keeping) {
        if (head[0] === 0x7b || head[0] === 0x5b) keep.push(chunk);
        else keeping = false;
      }
      sha512?.update(chunk);
      cb(null, chunk);
    },
  });
  body.on('error', (e) => tap.destroy(e));
  body.pipe(tap);
  let staged: StagedBlob;
  try {
    staged = await app.blobs.stage(storeId, tap, { digests: DOCKER_DIGESTS, expectedSize: size, expected: named?.[1] === 'sha256' ? { sha256: named[2] } : undefined });
  } catch (e) {
    if (e instanceof AppError && e.code === 'DIGEST_INVALID')
      throw new AppError('DIGEST_INVALID', `Invalid image archive: ${name}: content does not match its digest (${e.message})`);
    throw e;
  }
  if (sha512) {
    const got = sha512.digest('hex');
    if (got !== named![2]) {
      await app.blobs.discard(staged);
      throw new AppError('DIGEST_INVALID', `Invalid image archive: ${name}: content does not match its digest (got sha512:${got})`);
    }
  }
  const file: ArchiveFile = { path: name, size, staged, sha256: `sha256:${staged.sha256}`, head };
  if (keeping) {
    file.json = Buffer.concat(keep);
    rec.keptJson += size;
  }
  return file;
}

/** Reads the tar: metadata files and small files into memory (capped), every other file staged. */
async function receive(app: Stowage, storeId: number, body: Readable, rec: Received): Promise<void> {
  for await (const entry of readTar(body, { gunzip: true })) {
    const { name, type, size, linkname } = entry.header;
    if (++rec.entries > MAX_ARCHIVE_ENTRIES) throw invalid(`more than ${MAX_ARCHIVE_ENTRIES} entries`);
    if ((!KNOWN_ENTRY.test(name) && !METADATA_FILES.has(name)) || (type === 'file' && size === 0)) {
      if (++rec.unknown > MAX_UNKNOWN_ENTRIES) throw invalid(`more than ${MAX_UNKNOWN_ENTRIES} entries that are empty or not part of an image (${name})`);
    }
    if (type === 'directory' || type === 'other') continue;
    if (type === 'symlink' || type === 'link') {
      // Symbolic links are relative to their folder (skopeo links `<id>/layer.tar` to `../<diffid>.tar`); hard links name an archive path.
      const target = type === 'link' ? linkname : linkname.startsWith('/') ? linkname : path.posix.join(path.posix.dirname(name), linkname);
      try {
        rec.links.set(name, normaliseEntryName(target));
      } catch {
        // A link leaving the archive leads nowhere; only fails if something needs it.
      }
      continue;
    }
    if (METADATA_FILES.has(name)) {
      if (size > MAX_METADATA_BYTES) throw invalid(`${name} is ${size} bytes, more than the ${MAX_METADATA_BYTES} allowed`);
      rec.metadata.set(name, await readSmall(entry.body, MAX_METADATA_BYTES));
      continue;
    }
    // Legacy v1 layer metadata (`<id>/json`, `<id>/VERSION`) nothing refers to.
    if (/^[0-9a-f]{64}\/(json|VERSION)$/.test(name)) continue;
    const small = size <= SMALL_ENTRY_BYTES && rec.inMemory + size <= SMALL_ENTRIES_BUDGET;
    const file = small ? await holdEntry(rec, name, size, entry.body) : await stageEntry(app, storeId, rec, name, size, entry.body);
    const previous = rec.files.get(name);
    if (previous) rec.discarded.push(previous);
    rec.files.set(name, file);
  }
}

// ---- upload: planning what to store -----------------------------------------------------------

interface PlannedManifest {
  digest: string;
  mediaType: string;
  subject?: string;
  /** What a referrers list shows of it (artifactType, annotations), as a manifest push stores them. */
  descriptor?: Record<string, unknown>;
  /** From the archive (exact bytes), or generated (a legacy docker save image). */
  file?: ArchiveFile;
  generated?: Buffer;
  /** Child manifests (an index's), stored under the same image names. */
  children: string[];
}

export interface ArchiveImage {
  name: string;
  tag: string | null;
  digest: string;
}

interface Plan {
  /** Blobs (configs, layers) by digest: staged in this upload, or null when the repository already has it. */
  blobs: Map<string, ArchiveFile | null>;
  manifests: Map<string, PlannedManifest>;
  images: ArchiveImage[];
}

interface Defaults {
  name?: string;
  tag?: string;
}

class Planner {
  readonly plan: Plan = { blobs: new Map(), manifests: new Map(), images: [] };

  constructor(
    private readonly app: Stowage,
    private readonly repo: Repository,
    private readonly rec: Received,
  ) {}

  async jsonOf(file: ArchiveFile, what: string): Promise<Buffer> {
    if (file.json) return file.json;
    if (file.data) return file.data;
    if (file.size > MAX_MANIFEST_BYTES) throw invalid(`${what} (${file.path}) is ${file.size} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`);
    const driver = await this.app.blobs.stores.driver(file.staged!.storeId);
    return readSmall(await driver.read(file.staged!.storageKey), MAX_MANIFEST_BYTES);
  }

  /** A config or layer: in the archive, or already in the repository. */
  async requireBlob(digest: string, file: ArchiveFile | undefined, by: string): Promise<void> {
    if (this.plan.blobs.get(digest)) return;
    if (file) {
      this.plan.blobs.set(digest, file);
      return;
    }
    if (await this.repo.local(blobPath(digest))) {
      this.plan.blobs.set(digest, null);
      return;
    }
    throw invalid(`${by} references blob ${digest}, which is neither in the archive nor in repository '${this.repo.name}'`);
  }

  addImage(ref: { name?: string; tag?: string }, digest: string, defaults: Defaults, what: string): void {
    const name = ref.name || defaults.name;
    const tag = ref.tag ?? defaults.tag ?? null;
    if (!name) throw invalid(`${what} has no image name in the archive; give one with ?name=`);
    if (!isValidName(name)) throw invalid(`${what}: invalid image name '${name}'`);
    if (tag !== null && !isValidTag(tag)) throw invalid(`${what}: invalid tag '${tag}'`);
    const same = this.plan.images.find((i) => i.name === name && i.tag === tag);
    if (same && tag !== null && same.digest !== digest) throw invalid(`two images in the archive claim ${name}:${tag}`);
    if (!same) this.plan.images.push({ name, tag, digest });
  }

  /** A manifest of an OCI layout and, for an index, its children (every referenced blob present). */
  async ociManifest(desc: { digest?: unknown; mediaType?: unknown; size?: unknown }, by: string, depth = 0): Promise<string> {
    if (typeof desc.digest !== 'string' || !isValidDigest(desc.digest)) throw invalid(`${by}: a descriptor has an invalid digest`);
    const digest = desc.digest;
    if (this.plan.manifests.has(digest)) return digest;
    if (depth > MAX_INDEX_DEPTH) throw invalid(`indexes nested more than ${MAX_INDEX_DEPTH} deep`);
    const file = this.rec.blob(digest);
    if (!file) throw invalid(`${by} references manifest ${digest}, which is not in the archive`);
    if (typeof desc.size === 'number' && desc.size !== file.size) throw invalid(`${by}: manifest ${digest} is ${file.size} bytes, the descriptor says ${desc.size}`);
    const parsed = parse(await this.jsonOf(file, `manifest ${digest}`), typeof desc.mediaType === 'string' ? desc.mediaType : undefined, digest);
    const artifactType = referrerArtifactType(parsed);
    const descriptor = { ...(artifactType !== undefined ? { artifactType } : {}), ...(parsed.annotations ? { annotations: parsed.annotations } : {}) };
    const planned: PlannedManifest = { digest, mediaType: parsed.mediaType, subject: parsed.subject?.digest, descriptor, file, children: [] };
    this.plan.manifests.set(digest, planned);
    if (parsed.isIndex) {
      for (const child of parsed.manifests) planned.children.push(await this.ociManifest(child, `index ${digest}`, depth + 1));
    } else {
      for (const b of parsed.blobs) {
        const f = this.rec.blob(b.digest);
        if (f && b.size !== undefined && f.size !== b.size) throw invalid(`manifest ${digest}: blob ${b.digest} is ${f.size} bytes, the manifest says ${b.size}`);
        await this.requireBlob(b.digest, f, `manifest ${digest}`);
      }
    }
    return digest;
  }

  /** An OCI image layout (also inside docker ≥ 25 saves): every image `index.json` lists. */
  async oci(defaults: Defaults): Promise<void> {
    const layout = this.rec.metadata.get('oci-layout');
    if (layout) {
      const v = json(layout, 'oci-layout') as { imageLayoutVersion?: unknown };
      if (typeof v?.imageLayoutVersion !== 'string') throw invalid('oci-layout has no imageLayoutVersion');
    }
    const index = json(this.rec.metadata.get('index.json')!, 'index.json') as { manifests?: unknown };
    if (!index || !Array.isArray(index.manifests)) throw invalid('index.json has no manifests array');
    if (index.manifests.length === 0) throw invalid('index.json lists no images');
    // A referrer (a signature, an SBOM) the layout does not name belongs under its subject's image name.
    const unnamed: Array<{ ref: { name?: string; tag?: string }; digest: string; what: string }> = [];
    for (const [i, d] of index.manifests.entries()) {
      if (!d || typeof d !== 'object') throw invalid(`index.json: manifests[${i}] is not a descriptor`);
      const desc = d as { digest?: unknown; annotations?: Record<string, unknown> };
      const digest = await this.ociManifest(desc, 'index.json');
      const a = desc.annotations ?? {};
      const full = typeof a[CONTAINERD_NAME] === 'string' ? parseImageReference(a[CONTAINERD_NAME] as string) : {};
      const refName = typeof a[REF_NAME] === 'string' ? (a[REF_NAME] as string) : undefined;
      const ref: { name?: string; tag?: string } = { ...full };
      if (refName !== undefined) {
        if (isValidTag(refName)) ref.tag ??= refName;
        else {
          const r = parseImageReference(refName);
          ref.name ??= r.name;
          ref.tag ??= r.tag;
        }
      }
      const what = `index.json manifests[${i}] (${digest})`;
      if (!ref.name && !defaults.name && this.plan.manifests.get(digest)?.subject) unnamed.push({ ref, digest, what });
      else this.addImage(ref, digest, defaults, what);
    }
    for (const u of unnamed) {
      const subject = this.plan.manifests.get(u.digest)!.subject!;
      const owner = this.plan.images.find((img) => closure(this.plan, img.digest).has(subject));
      this.addImage({ ...u.ref, name: owner?.name }, u.digest, defaults, u.what);
    }
  }

  /** A legacy `docker save` archive: an OCI image manifest built for each `manifest.json` entry. */
  async dockerSave(defaults: Defaults): Promise<void> {
    const doc = json(this.rec.metadata.get('manifest.json')!, 'manifest.json');
    if (!Array.isArray(doc) || doc.length === 0) throw invalid('manifest.json must be a non-empty array');
    for (const [i, raw] of doc.entries()) {
      const where = `manifest.json[${i}]`;
      const e = raw as { Config?: unknown; RepoTags?: unknown; Layers?: unknown };
      if (!e || typeof e.Config !== 'string' || !Array.isArray(e.Layers) || !e.Layers.every((l) => typeof l === 'string')) {
        throw invalid(`${where}: needs Config (a path) and Layers (paths)`);
      }
      const cfgFile = this.rec.resolve(e.Config);
      if (!cfgFile) throw invalid(`${where}: config ${e.Config} is not in the archive`);
      const named = /^(?:blobs\/sha256\/)?([a-f0-9]{64})(?:\.json)?$/.exec(e.Config);
      if (named && `sha256:${named[1]}` !== cfgFile.sha256)
        throw new AppError('DIGEST_INVALID', `Invalid image archive: config ${e.Config} does not match its name (got ${cfgFile.sha256})`);
      const config = json(await this.jsonOf(cfgFile, `config ${e.Config}`), e.Config) as { rootfs?: { diff_ids?: unknown } };
      const diffIds = config?.rootfs?.diff_ids;
      if (!Array.isArray(diffIds) || diffIds.length !== e.Layers.length) {
        throw invalid(`${where}: the config's rootfs.diff_ids (${Array.isArray(diffIds) ? diffIds.length : 'none'}) do not match its ${e.Layers.length} layers`);
      }
      await this.requireBlob(cfgFile.sha256, cfgFile, where);
      const layers: Array<{ mediaType: string; digest: string; size: number }> = [];
      for (const [j, p] of (e.Layers as string[]).entries()) {
        const f = this.rec.resolve(p);
        if (!f) throw invalid(`${where}: layer ${p} is not in the archive`);
        const mediaType = isGzip(f.head) ? MT_LAYER_GZIP : isZstd(f.head) ? MT_LAYER_ZSTD : MT_LAYER_TAR;
        // An uncompressed layer's digest is its diff ID: a tampered layer shows here (compressed ones are checked by clients on load).
        if (mediaType === MT_LAYER_TAR && f.sha256 !== diffIds[j]) {
          throw new AppError('DIGEST_INVALID', `Invalid image archive: layer ${p} (${f.sha256}) does not match the config's diff_id ${String(diffIds[j])}`);
        }
        await this.requireBlob(f.sha256, f, where);
        layers.push({ mediaType, digest: f.sha256, size: f.size });
      }
      const bytes = Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: MT_OCI_MANIFEST, config: { mediaType: MT_OCI_CONFIG, digest: cfgFile.sha256, size: cfgFile.size }, layers }),
      );
      const digest = sha256Of(bytes);
      if (!this.plan.manifests.has(digest)) this.plan.manifests.set(digest, { digest, mediaType: MT_OCI_MANIFEST, generated: bytes, children: [] });
      const tags = Array.isArray(e.RepoTags) ? (e.RepoTags as unknown[]).filter((t): t is string => typeof t === 'string') : [];
      if (tags.length === 0) this.addImage({}, digest, defaults, where);
      for (const t of tags) this.addImage(parseImageReference(t), digest, defaults, `${where} (${t})`);
    }
  }
}

function json(b: Buffer, what: string): unknown {
  try {
    return JSON.parse(b.toString('utf8'));
  } catch {
    throw invalid(`${what} is not valid JSON`);
  }
}

function parse(body: Buffer, mediaType: string | undefined, digest: string): ParsedManifest {
  try {
    return parseManifest(body, mediaType);
  } catch (e) {
    if (e instanceof ManifestError) throw invalid(`manifest ${digest}: ${e.message}`);
    throw e;
  }
}

const isGzip = (h: Buffer) => h.length >= 2 && h[0] === 0x1f && h[1] === 0x8b;
const isZstd = (h: Buffer) => h.length >= 4 && h.readUInt32LE(0) === 0xfd2fb528;

// ---- upload: committing ------------------------------------------------------------------------

/** Every manifest an image needs (itself and, for an index, its children). */
function closure(plan: Plan, digest: string, out = new Set<string>()): Set<string> {
  if (out.has(digest)) return out;
  out.add(digest);
  for (const c of plan.manifests.get(digest)?.children ?? []) closure(plan, c, out);
  return out;
}

/**
 * One unit of work: blobs, manifests under each image name, tags with their components (the core
 * refuses moving a tag where the write policy forbids it). Returns the staged files the commit
 * attached (the others duplicate what the repository already has).
 */
async function commit(p: Pusher, plan: Plan, files: ArchiveFile[]): Promise<Set<ArchiveFile>> {
  await p.repo.change({ source: 'client', access: p.access, origin: p.origin }, (c) => {
    // A retried attempt starts afresh: only what the committed attempt attached counts.
    for (const f of files) if (f.staged) f.staged.blobId = f.staged.duplicate = undefined;
    for (const [digest, f] of plan.blobs) {
      if (f) c.put(blobPath(digest), f.staged!, { contentType: OCTET, kind: 'content', ifAbsent: true, attributes: { digest } });
    }
    const stored = new Set<string>();
    for (const img of plan.images) {
      for (const d of closure(plan, img.digest)) {
        const path = manifestPath(img.name, d);
        if (stored.has(path)) continue;
        stored.add(path);
        const m = plan.manifests.get(d)!;
        c.put(path, m.file!.staged!, {
          contentType: m.mediaType,
          kind: 'content',
          ifAbsent: true,
          attributes: { mediaType: m.mediaType, digest: d, ...(m.subject ? { subject: m.subject } : {}), ...m.descriptor },
        });
        if (m.subject) indexReferrer(c, img.name, m.subject, d);
      }
      if (img.tag) {
        const m = plan.manifests.get(img.digest)!;
        setTag(c, p.repo, img.name, img.tag, img.digest, m.file!.staged!, m.mediaType);
      }
    }
  });
  return new Set(files.filter((f) => f.staged?.blobId !== undefined));
}

async function uploadArchive(ctx: Koa.Context, app: Stowage): Promise<void> {
  try {
    await receiveArchive(ctx, app);
  } catch (e) {
    // Refused before or while reading: read the rest of the request and drop it, so the client
    // gets the answer instead of a reset connection.
    ctx.req.resume();
    throw e;
  }
}

async function receiveArchive(ctx: Koa.Context, app: Stowage): Promise<void> {
  const addressed = await app.repositories.require(requiredParam(ctx, 'repository'));
  if (addressed.format.name !== 'docker') throw badRequest(`repository: '${addressed.name}' is not a docker repository`, { field: 'repository' });
  const perm = { format: addressed.format.name, repository: addressed.name };
  const principal = await requireContent(app, ctx, { ...perm, action: 'add' });
  if (!addressed.online) throw new AppError('OFFLINE', `Repository '${addressed.name}' is offline`);
  const repo = addressed.type === 'group' ? await (addressed as GroupRepository).writableMember() : addressed;
  if (repo.type !== 'hosted') throw new AppError('METHOD_NOT_ALLOWED', `Repository '${addressed.name}' (${addressed.type}) does not accept uploads`);
  const pusher: Pusher = {
    app,
    repo,
    access: { require: async (action) => void (await requireContent(app, ctx, { ...perm, action })), uploader: { userId: principal.userId, ip: ctx.ip } },
    origin: auditOrigin(ctx),
  };
  await mayPush(pusher);
  const defaults: Defaults = { name: queryParam(ctx, 'name'), tag: queryParam(ctx, 'tag') };
  if (defaults.name !== undefined && !isValidName(defaults.name)) throw badRequest(`name: invalid image name '${defaults.name}'`, { field: 'name' });
  if (defaults.tag !== undefined && !isValidTag(defaults.tag)) throw badRequest(`tag: invalid tag '${defaults.tag}'`, { field: 'tag' });
  // Any body type is read as a tar (curl --data-binary says form-urlencoded); a multipart form is a mistake worth naming.
  if (/^multipart\//i.test(ctx.get('Content-Type'))) {
    throw new AppError('UNSUPPORTED', 'Send the archive itself as the request body (Content-Type: application/x-tar), not a multipart form');
  }

  const rec = new Received();
  let attached = new Set<ArchiveFile>();
  const generated: ArchiveFile[] = [];
  let images: ArchiveImage[];
  try {
    await receive(app, repo.blobStoreId, ctx.req, rec);
    const planner = new Planner(app, repo, rec);
    if (rec.metadata.has('index.json')) await planner.oci(defaults);
    else if (rec.metadata.has('manifest.json')) await planner.dockerSave(defaults);
    else throw invalid('neither manifest.json (docker save) nor index.json (OCI layout) found');
    const { plan } = planner;
    // Only what the plan references reaches the blob store.
    for (const f of plan.blobs.values()) if (f) await materialise(app, repo.blobStoreId, f);
    for (const m of plan.manifests.values()) if (m.file) await materialise(app, repo.blobStoreId, m.file);
    for (const m of plan.manifests.values()) {
      if (!m.generated) continue;
      const staged = await app.blobs.stage(repo.blobStoreId, Readable.from([m.generated]), { digests: DOCKER_DIGESTS, expectedSize: m.generated.length });
      m.file = { path: `(generated ${m.digest})`, size: m.generated.length, staged, sha256: m.digest, head: Buffer.alloc(0) };
      generated.push(m.file);
    }
    attached = await commit(pusher, plan, [...rec.all(), ...generated]);
    images = plan.images;
  } catch (e) {
    // Nothing was committed: every staged byte goes.
    await Promise.all([...rec.all(), ...generated].map((f) => (f.staged ? app.blobs.discard(f.staged) : undefined)));
    throw e;
  }
  await Promise.all([...rec.all(), ...generated].map((f) => (!f.staged ? undefined : attached.has(f) ? app.blobs.settle(f.staged) : app.blobs.discard(f.staged))));
  ctx.status = 201;
  ctx.body = { repository: addressed.name, images };
}

// ---- download ----------------------------------------------------------------------------------

interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

function parsePlatform(raw: string | undefined): Platform {
  const p = (raw ?? 'linux/amd64').split('/');
  if (p.length < 2 || p.length > 3 || p.some((x) => !/^[a-z0-9._-]+$/i.test(x))) throw badRequest(`platform: expected os/arch[/variant], got '${raw}'`, { field: 'platform' });
  return { os: p[0], architecture: p[1], variant: p[2] };
}

async function settled(c: Content): Promise<Content> {
  return c.pending ? c.pending.stored : c;
}

interface Resolved {
  name: string;
  tag: string | null;
  manifest: { digest: string; mediaType: string; content: Content; size: number };
  config: { digest: string; content: Content };
  layers: Array<{ digest: string; content: Content }>;
}

/** The platform's manifest of an index (the first match; variant only when asked for). */
function pickPlatform(body: Buffer, platform: Platform, what: string): { digest: string } {
  const doc = JSON.parse(body.toString('utf8')) as { manifests?: Array<{ digest: string; platform?: Partial<Platform> }> };
  const match = (doc.manifests ?? []).find(
    (m) => m.platform?.os === platform.os && m.platform?.architecture === platform.architecture && (!platform.variant || m.platform?.variant === platform.variant),
  );
  if (!match) {
    const have = (doc.manifests ?? []).map((m) => [m.platform?.os, m.platform?.architecture, m.platform?.variant].filter(Boolean).join('/')).join(', ');
    throw new AppError('NOT_FOUND', `${what} has no image for ${[platform.os, platform.architecture, platform.variant].filter(Boolean).join('/')} (it has: ${have || 'none'})`);
  }
  return match;
}

async function resolveImage(app: Stowage, repo: Repository, ref: string, platform: Platform): Promise<Resolved> {
  const r = parseRequested(ref);
  const what = `${r.name}${r.digest ? '@' + r.digest : ':' + r.tag}`;
  let found = await resolveManifest(app, repo, r.name, r.digest ?? r.tag!);
  if (!found) throw new AppError('NOT_FOUND', `Image not found in repository '${repo.name}': ${what}`);
  for (let depth = 0; ; depth++) {
    const content = await settled(found.content);
    const mediaType = String(content.asset.attributes.mediaType ?? content.asset.content_type);
    const body = await readSmall(await content.open(), MAX_MANIFEST_BYTES);
    let parsed: ParsedManifest;
    try {
      parsed = parseManifest(body, mediaType);
    } catch (e) {
      throw new AppError('BAD_REQUEST', `${what}: stored manifest cannot be exported (${(e as Error).message})`);
    }
    if (parsed.isIndex) {
      if (depth >= MAX_INDEX_DEPTH) throw new AppError('BAD_REQUEST', `${what}: indexes nested too deep`);
      const child = pickPlatform(body, platform, what);
      found = await resolveManifest(app, repo, r.name, child.digest);
      if (!found) throw new AppError('NOT_FOUND', `${what}: manifest ${child.digest} for the platform is not available`);
      continue;
    }
    const blob = async (digest: string) => {
      const c = await getBlobContent(repo, r.name, digest);
      if (!c) throw new AppError('NOT_FOUND', `${what}: blob ${digest} is not available`);
      return { digest, content: await settled(c) };
    };
    // Layers that are never distributed (foreign) are not in the registry: no loader could use the archive.
    const declared = (JSON.parse(body.toString('utf8')) as { layers?: unknown[] }).layers?.length ?? 0;
    if (parsed.blobs.length !== declared + 1) throw new AppError('BAD_REQUEST', `${what}: has non-distributable layers, which cannot be exported`);
    const [config, ...layers] = await Promise.all(parsed.blobs.map((b) => blob(b.digest)));
    return {
      name: r.name,
      tag: r.digest ? null : r.tag!,
      manifest: { digest: found.digest, mediaType: parsed.mediaType, content, size: body.length },
      config,
      layers,
    };
  }
}

/** `name:tag`, `name@sha256:…` or `name` (tag latest), as the download's `image` parameter. */
function parseRequested(ref: string): { name: string; tag?: string; digest?: string } {
  const at = ref.indexOf('@');
  let name = at >= 0 ? ref.slice(0, at) : ref;
  const digest = at >= 0 ? ref.slice(at + 1) : undefined;
  let tag: string | undefined;
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
  }
  if (!isValidName(name)) throw badRequest(`image: invalid image name in '${ref}'`, { field: 'image' });
  if (digest !== undefined && !isValidDigest(digest)) throw badRequest(`image: invalid digest in '${ref}'`, { field: 'image' });
  if (tag !== undefined && !isValidTag(tag)) throw badRequest(`image: invalid tag in '${ref}'`, { field: 'image' });
  return digest ? { name, digest } : { name, tag: tag ?? 'latest' };
}

const blobEntry = (digest: string) => `blobs/${digest.replace(':', '/')}`;

async function downloadArchive(ctx: Koa.Context, app: Stowage): Promise<void> {
  const repo = await app.repositories.require(requiredParam(ctx, 'repository'));
  if (repo.format.name !== 'docker') throw badRequest(`repository: '${repo.name}' is not a docker repository`, { field: 'repository' });
  await requireContent(app, ctx, { format: repo.format.name, repository: repo.name, action: 'read' });
  if (!repo.online) throw new AppError('OFFLINE', `Repository '${repo.name}' is offline`);
  const raw = ctx.query.image;
  const refs = (Array.isArray(raw) ? raw : raw ? [raw] : []).filter((r) => r !== '');
  if (refs.length === 0) throw badRequest('image: give at least one image (name:tag or name@digest)', { field: 'image' });
  if (refs.length > 100) throw badRequest('image: at most 100 images per archive', { field: 'image' });
  const platform = parsePlatform(queryParam(ctx, 'platform'));
  const images: Resolved[] = [];
  for (const ref of refs) images.push(await resolveImage(app, repo, ref, platform));

  const entries: TarWriteEntry[] = [];
  const seen = new Set<string>();
  const addBlob = (digest: string, content: Content) => {
    if (seen.has(digest)) return;
    seen.add(digest);
    entries.push({ name: blobEntry(digest), size: content.blob.size, mode: 0o444, body: () => content.open() });
  };
  const manifestJson = images.map((img) => ({
    Config: blobEntry(img.config.digest),
    RepoTags: img.tag ? [`${img.name}:${img.tag}`] : [],
    Layers: img.layers.map((l) => blobEntry(l.digest)),
  }));
  const index = {
    schemaVersion: 2,
    mediaType: MT_OCI_INDEX,
    manifests: images.map((img) => ({
      mediaType: img.manifest.mediaType === MT_DOCKER_MANIFEST ? MT_DOCKER_MANIFEST : img.manifest.mediaType,
      digest: img.manifest.digest,
      size: img.manifest.size,
      ...(img.tag ? { annotations: { [CONTAINERD_NAME]: `${img.name}:${img.tag}`, [REF_NAME]: img.tag } } : {}),
    })),
  };
  const meta = (name: string, doc: unknown) => {
    const body = Buffer.from(JSON.stringify(doc));
    entries.push({ name, size: body.length, mode: 0o444, body });
  };
  meta('oci-layout', { imageLayoutVersion: '1.0.0' });
  meta('index.json', index);
  meta('manifest.json', manifestJson);
  for (const img of images) {
    addBlob(img.manifest.digest, img.manifest.content);
    addBlob(img.config.digest, img.config.content);
    for (const l of img.layers) addBlob(l.digest, l.content);
  }
  const file = images.length === 1 ? `${images[0].name.replace(/\//g, '_')}_${images[0].tag ?? images[0].manifest.digest.slice(7, 19)}.tar` : `${repo.name}-images.tar`;
  ctx.status = 200;
  ctx.set('Content-Type', 'application/x-tar');
  ctx.set('Content-Disposition', `attachment; filename="${file}"`);
  ctx.length = tarLength(entries);
  ctx.body = writeTar(entries);
}

// ---- routes ----------------------------------------------------------------------------------

const q = (name: string, description: string, required = false) => ({ name, in: 'query', required, description, schema: { type: 'string' } });
const errorBody = { content: { 'application/json': { schema: { type: 'object', properties: { status: { type: 'integer' }, message: { type: 'string' } } } } } };

export const archiveRoutes: ApiRoute[] = [
  {
    method: 'POST',
    path: '/archive',
    handler: uploadArchive,
    openapi: {
      summary: 'Upload an image archive: a `docker save` tarball (legacy or docker ≥ 25) or an OCI image-layout tarball (gzip accepted); pushes every image and tag in it',
      description:
        'Requires add on the repository (and edit to move an existing tag, where the write policy allows it). A group stores into its writable member. ' +
        'Names and tags come from the archive (`RepoTags`; OCI `io.containerd.image.name` / `org.opencontainers.image.ref.name`); `name` and `tag` apply to images the archive leaves unnamed or untagged. ' +
        'All or nothing: a malformed or truncated tar, content not matching its digest, or a manifest referencing a missing blob gives 400 and stores nothing.',
      parameters: [
        q('repository', 'Docker repository (hosted, or a group with a writable member)', true),
        q('name', 'Image name for images the archive does not name (OCI layouts usually only carry a tag)'),
        q('tag', 'Tag for images the archive does not tag'),
      ],
      requestBody: { required: true, content: { 'application/x-tar': { schema: { type: 'string', format: 'binary' } } } },
      responses: {
        '201': {
          description: 'Stored; one entry per image name and tag (tag null: pushed by digest only)',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                properties: {
                  repository: { type: 'string' },
                  images: {
                    type: 'array',
                    items: { type: 'object', properties: { name: { type: 'string' }, tag: { type: 'string', nullable: true }, digest: { type: 'string' } } },
                  },
                },
              },
            },
          },
        },
        '400': { description: 'Invalid archive or parameters (nothing stored)', ...errorBody },
        '401': { description: 'Authentication required' },
        '403': { description: 'Not permitted' },
        '404': { description: 'No such repository', ...errorBody },
        '405': { description: 'The repository does not accept uploads (proxy, group without a writable member)' },
      },
    },
  },
  {
    method: 'GET',
    path: '/archive',
    handler: downloadArchive,
    openapi: {
      summary: 'Download images as a `docker save` style tarball (manifest.json plus an OCI layout) that docker load, podman load and skopeo docker-archive: accept',
      description:
        'Requires read on the repository. Works on hosted, proxy (fetching what is not cached) and group repositories. For a multi-platform image the `platform` is exported.',
      parameters: [
        {
          ...q('image', 'name:tag, name@sha256:… or name (tag latest); repeat for several images', true),
          schema: { type: 'array', items: { type: 'string' } },
          style: 'form',
          explode: true,
        },
        q('repository', 'Docker repository', true),
        q('platform', 'os/arch[/variant] picked from a multi-platform image (default linux/amd64)'),
      ],
      responses: {
        '200': { description: 'The archive (Content-Disposition: attachment)', content: { 'application/x-tar': { schema: { type: 'string', format: 'binary' } } } },
        '400': { description: 'Invalid parameters', ...errorBody },
        '401': { description: 'Authentication required' },
        '403': { description: 'Not permitted' },
        '404': { description: 'No such repository, image or platform', ...errorBody },
      },
    },
  },
];
