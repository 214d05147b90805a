/**
 * Maven on the core's proxy and group (protocols.md §4.3): which paths are metadata (revalidated
 * after the metadata max age) and which are immutable, upstream `.sha1` files used to verify
 * artifacts (checksum policy IGNORE / WARN / STRICT), the version policy routing group reads,
 * and the group merge of maven-metadata.xml.
 */
import type { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { readSmall } from '../../src/blob/blob-service.js';
import type { ExpectedContent, MergeInput, UpstreamFetch } from '../../src/repository/format.js';
import type { Repository } from '../../src/repository/repository.js';
import type { CommittedChange } from '../../src/repository/unit-of-work.js';
import type { Stowage } from '../../src/stowage.js';
import { AppError } from '../../src/errors.js';
import { parseChecksumFile } from './checksums.js';
import { METADATA_FILE, contentTypeOf, isPlainSnapshot, parseMavenPath } from './layout.js';
import { MAX_METADATA_BYTES, MetadataError, mergeMetadata as mergeDocuments, parseMetadata, writeMetadata } from './metadata.js';
import { sectionOf, versionRefusal } from './policy.js';
import { componentOf, mavenAttributes } from './components.js';

/** maven-metadata.xml documents and non-unique `-SNAPSHOT` files change upstream; everything else is immutable. */
export function isMetadata(path: string): boolean {
  const p = parseMavenPath(path);
  if (!p) return false;
  if (p.kind === 'metadata') return true;
  return p.kind === 'artifact' && isPlainSnapshot(p.coords);
}

export function proxyAsset(path: string): { contentType: string; component: ReturnType<typeof componentOf>; attributes?: Record<string, unknown> } {
  const p = parseMavenPath(path);
  return { contentType: contentTypeOf(path), component: componentOf(path), attributes: p?.kind === 'artifact' ? mavenAttributes(p.coords) : undefined };
}

/** Upstream sha1 of artifacts fetched by WARN proxies, compared once the artifact is stored. */
const warnSha1 = new LRUCache<string, string>({ max: 10_000 });

/**
 * What an artifact fetched upstream must be: upstream's `.sha1` of it (STRICT: a body that differs
 * is refused and not cached; WARN: it is cached and the difference logged; IGNORE: not fetched).
 */
export async function proxyExpected(path: string, repo: Repository, upstream: UpstreamFetch): Promise<ExpectedContent | null> {
  const p = parseMavenPath(path);
  if (!p || p.kind !== 'artifact' || p.coords.extension.endsWith('.asc')) return null;
  const policy = sectionOf(repo).checksumPolicy;
  if (policy === 'IGNORE') return null;
  const res = await upstream.get(path + '.sha1');
  if (res.status !== 200) {
    res.body.destroy();
    return null;
  }
  const sha1 = parseChecksumFile((await readSmall(res.body, 1024)).toString('utf8'), 'sha1');
  if (!sha1) return null;
  if (policy === 'STRICT') return { sha1 };
  warnSha1.set(`${repo.id}\n${path}`, sha1);
  return null;
}

/** After a WARN proxy stored an artifact: log when it differs from upstream's `.sha1`. */
export function warnChecksums(change: CommittedChange, app: Stowage): void {
  const repo = change.repository;
  for (const a of change.assetsPut) {
    const key = `${repo.id}\n${a.path}`;
    const expected = warnSha1.get(key);
    if (!expected) continue;
    warnSha1.delete(key);
    const blob = change.blobs.get(a.blob_id);
    if (blob && blob.sha1 !== expected) {
      app.log.warn(`Proxy '${repo.name}': ${a.path} has sha1 ${blob.sha1}, upstream's .sha1 says ${expected} (checksum policy WARN: cached anyway)`);
    }
  }
}

/** A maven-metadata.xml from upstream is usable when it parses. */
export async function validateMetadata(path: string, open: () => Promise<Readable>): Promise<string | null> {
  if (!path.endsWith('/' + METADATA_FILE)) return null;
  try {
    parseMetadata(await readSmall(await open(), MAX_METADATA_BYTES));
    return null;
  } catch (e) {
    if (e instanceof MetadataError) return e.message;
    if (e instanceof AppError && e.code === 'PAYLOAD_TOO_LARGE') return `document larger than ${MAX_METADATA_BYTES} bytes`;
    throw e;
  }
}

/** Members whose version policy excludes the path are not asked (a release proxy is never probed for snapshots). */
export function groupMembers(path: string, members: Repository[]): Repository[] {
  const p = parseMavenPath(path);
  if (!p) return members;
  return members.filter((m) => m.type === 'group' || versionRefusal(m, p) === null);
}

/** The group's maven-metadata.xml: merged documents (metadata.ts), or one member's snapshot document as is. */
export async function mergeMetadata(path: string, parts: MergeInput[]): Promise<{ body: Buffer; contentType: string } | null> {
  if (!path.endsWith('/' + METADATA_FILE) && path !== METADATA_FILE) return null;
  const bodies: Buffer[] = [];
  for (const part of parts) bodies.push(await readSmall(await part.content.open(), MAX_METADATA_BYTES));
  const r = mergeDocuments(bodies.map((b) => parseMetadata(b)));
  return { body: 'pick' in r ? bodies[r.pick] : Buffer.from(writeMetadata(r.merged)), contentType: 'application/xml' };
}

export { sectionOf };
