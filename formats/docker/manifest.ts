/**
 * Pure parsers of the Docker Registry v2 / OCI distribution API: name, tag and digest grammar,
 * route matching on the raw path, manifest media types and the references a manifest makes.
 * No database, no HTTP.
 */

export const MT_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MT_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MT_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MT_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MT_DOCKER_SCHEMA1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
export const MT_DOCKER_SCHEMA1 = 'application/vnd.docker.distribution.manifest.v1+json';

/** Manifests larger than this are refused (413). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** Image names per the distribution spec (lower case components separated by `/`, ≤ 255 chars). */
export function isValidName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && NAME_RE.test(name);
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/** A digest this registry can verify: `sha256:<64 hex>` or `sha512:<128 hex>`. */
export function isValidDigest(d: string): boolean {
  return DIGEST_RE.test(d);
}

/** Looks like a digest (`algo:encoded`), valid or not: a reference that is not a tag. */
export function looksLikeDigest(ref: string): boolean {
  return ref.includes(':');
}

export function digestAlgorithm(d: string): 'sha256' | 'sha512' {
  return d.startsWith('sha512:') ? 'sha512' : 'sha256';
}

/** Strips parameters from a Content-Type (`application/json; charset=utf-8` → `application/json`). */
export function bareMediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0].trim();
}

export interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
}

export interface ParsedManifest {
  mediaType: string;
  /** Manifest list / image index: the children are manifests. */
  isIndex: boolean;
  /** Blobs the manifest needs (config and layers). */
  blobs: Descriptor[];
  /** Child manifests (lists and indexes). */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** The manifest's own `artifactType` (OCI 1.1), when it has one. */
  artifactType?: string;
  /** The config descriptor's media type (image manifests). */
  configMediaType?: string;
  /** The manifest's `annotations`, exactly as pushed. */
  annotations?: Record<string, string>;
}

export class ManifestError extends Error {
  constructor(
    readonly code: 'MANIFEST_INVALID' | 'UNSUPPORTED',
    message: string,
  ) {
    super(message);
  }
}

const INDEX_TYPES = new Set([MT_DOCKER_LIST, MT_OCI_INDEX]);
const NON_DISTRIBUTABLE = /\.(nondistributable|foreign)\./;

function descriptor(v: unknown, where: string): Descriptor {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ManifestError('MANIFEST_INVALID', `${where}: expected a descriptor object`);
  const d = v as Record<string, unknown>;
  if (typeof d.digest !== 'string' || !isValidDigest(d.digest)) throw new ManifestError('MANIFEST_INVALID', `${where}: invalid digest`);
  if (d.mediaType !== undefined && typeof d.mediaType !== 'string') throw new ManifestError('MANIFEST_INVALID', `${where}: invalid mediaType`);
  if (d.size !== undefined && (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0)) throw new ManifestError('MANIFEST_INVALID', `${where}: invalid size`);
  return { digest: d.digest, mediaType: d.mediaType as string | undefined, size: d.size as number | undefined };
}

/**
 * Parses a manifest body: its media type (the body's `mediaType`, else the request Content-Type)
 * and every reference it makes. Unknown fields are accepted; non-distributable layers are not
 * listed as blobs (clients never push them).
 */
export function parseManifest(body: Buffer, contentType: string | undefined): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ManifestError('MANIFEST_INVALID', 'Manifest is not valid JSON');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new ManifestError('MANIFEST_INVALID', 'Manifest must be a JSON object');
  const m = doc as Record<string, unknown>;
  if (m.mediaType !== undefined && typeof m.mediaType !== 'string') throw new ManifestError('MANIFEST_INVALID', 'mediaType must be a string');
  const ct = bareMediaType(contentType);
  let mediaType = (m.mediaType as string | undefined) || ct;
  if (!mediaType || mediaType === 'application/json' || mediaType === 'application/octet-stream') {
    mediaType = Array.isArray(m.manifests) ? MT_OCI_INDEX : MT_OCI_MANIFEST;
  }
  if (mediaType === MT_DOCKER_SCHEMA1 || mediaType === MT_DOCKER_SCHEMA1_SIGNED || m.schemaVersion === 1) {
    throw new ManifestError('MANIFEST_INVALID', 'Docker schema 1 manifests are not supported');
  }
  if (m.schemaVersion !== 2) throw new ManifestError('MANIFEST_INVALID', 'schemaVersion must be 2');
  const isIndex = INDEX_TYPES.has(mediaType) || (Array.isArray(m.manifests) && m.layers === undefined && m.config === undefined);
  const out: ParsedManifest = { mediaType, isIndex, blobs: [], manifests: [] };
  if (isIndex) {
    if (!Array.isArray(m.manifests)) throw new ManifestError('MANIFEST_INVALID', 'manifests must be an array');
    out.manifests = m.manifests.map((d, i) => descriptor(d, `manifests[${i}]`));
  } else {
    if (m.config === undefined) throw new ManifestError('MANIFEST_INVALID', 'config is required');
    out.blobs.push(descriptor(m.config, 'config'));
    if (m.layers !== undefined) {
      if (!Array.isArray(m.layers)) throw new ManifestError('MANIFEST_INVALID', 'layers must be an array');
      m.layers.forEach((d, i) => {
        const l = descriptor(d, `layers[${i}]`);
        const urls = (d as Record<string, unknown>).urls;
        if (NON_DISTRIBUTABLE.test(l.mediaType ?? '') || (Array.isArray(urls) && urls.length > 0)) return;
        out.blobs.push(l);
      });
    }
  }
  if (m.subject !== undefined && m.subject !== null) out.subject = descriptor(m.subject, 'subject');
  if (m.artifactType !== undefined) {
    if (typeof m.artifactType !== 'string') throw new ManifestError('MANIFEST_INVALID', 'artifactType must be a string');
    out.artifactType = m.artifactType;
  }
  if (!isIndex) out.configMediaType = out.blobs[0].mediaType;
  if (m.annotations !== undefined && m.annotations !== null) {
    const a = m.annotations;
    if (typeof a !== 'object' || Array.isArray(a) || Object.values(a).some((v) => typeof v !== 'string')) {
      throw new ManifestError('MANIFEST_INVALID', 'annotations must be an object of strings');
    }
    out.annotations = a as Record<string, string>;
  }
  return out;
}

/**
 * The type a referrer is listed under (OCI 1.1): the manifest's `artifactType`, else an image
 * manifest's config media type; undefined for an index without one.
 */
export function referrerArtifactType(p: Pick<ParsedManifest, 'artifactType' | 'configMediaType'>): string | undefined {
  return p.artifactType ?? p.configMediaType;
}

/** `?tag=` values of a manifest PUT by digest (OCI 1.1), each checked against the tag grammar. */
export function extraTags(values: string[]): { tags: string[]; invalid?: string } {
  for (const t of values) if (!isValidTag(t)) return { tags: [], invalid: t };
  return { tags: [...new Set(values)] };
}

/**
 * One page of sorted names (tags or repositories) after `last`, with at most `n` entries.
 * `more` tells whether a Link to the next page is due. Byte order, as Go's sort.Strings.
 */
export function page(names: string[], n: number | undefined, last: string | undefined): { items: string[]; more: boolean } {
  const sorted = [...new Set(names)].sort();
  const after = last === undefined ? sorted : sorted.filter((t) => t > last);
  if (n === undefined) return { items: after, more: false };
  return { items: after.slice(0, n), more: n > 0 && after.length > n };
}

/** Parses `n` from a query: undefined when absent; throws on garbage. */
export function parsePageSize(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw)) throw new RangeError('n must be a non-negative integer');
  return Math.min(Number(raw), 10_000);
}

/** A `Range: bytes=a-b` whose end lies before its start (answered 416 by registries). */
export function isInvertedRange(header: string | undefined): boolean {
  const m = /^bytes=(\d+)-(\d+)$/.exec((header ?? '').trim());
  return !!m && Number(m[2]) < Number(m[1]);
}

/** `Content-Range: a-b` of an upload chunk (no `bytes ` prefix in the protocol; tolerated). */
export function parseChunkRange(header: string | undefined): { start: number; end: number } | null | 'invalid' {
  if (!header) return null;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/\d+|\/\*)?$/.exec(header.trim());
  if (!m) return 'invalid';
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) return 'invalid';
  return { start, end };
}
