/**
 * Hosted manifests served from memory. A manifest's bytes never change for its digest (content
 * addressed), so they can be kept in process; what can change, on this node or another, is which
 * digest a tag names and whether the manifest still exists. Those are read from the database on
 * every request, one query each:
 *   - by tag: the tag's target (a manifest deleted by digest takes its tags with it);
 *   - by digest: the manifest's asset (its blob must still be the cached one).
 * What this saves per GET is the asset and blob lookups and the open/read/close of a small file.
 * Only small manifests are kept (least recently used first out, a total byte budget).
 */
import { Readable } from 'node:stream';
import type { AssetRow } from '../../src/content/types.js';
import type { BlobRow } from '../../src/blob/blob-service.js';
import type { Repository } from '../../src/repository/repository.js';
import type { Content } from '../../src/repository/types.js';
import type { Stowage } from '../../src/stowage.js';
import { LRUCache } from 'lru-cache';

const MAX_ENTRY_BYTES = 256 * 1024;
const MAX_TOTAL_BYTES = 32 * 1024 * 1024;

interface Entry {
  bytes: Buffer;
  asset: AssetRow;
  blob: BlobRow;
}

class ManifestCache {
  private readonly entries = new LRUCache<string, Entry>({ maxSize: MAX_TOTAL_BYTES, sizeCalculation: (e) => Math.max(1, e.bytes.length) });

  get(key: string): Entry | undefined {
    return this.entries.get(key);
  }

  set(key: string, e: Entry): void {
    this.entries.set(key, e);
  }

  drop(key: string): void {
    this.entries.delete(key);
  }
}

const caches = new WeakMap<Stowage, ManifestCache>();
function cacheOf(app: Stowage): ManifestCache {
  let c = caches.get(app);
  if (!c) caches.set(app, (c = new ManifestCache()));
  return c;
}

const keyOf = (repo: Repository, name: string, digest: string) => `${repo.id}\n${name}\n${digest}`;

function content(repo: Repository, e: Entry, asset: AssetRow): Content {
  return {
    asset,
    blob: e.blob,
    repositoryName: repo.name,
    bytes: e.bytes,
    open: async (range) => Readable.from([range ? e.bytes.subarray(range.start, range.end + 1) : e.bytes]),
  };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** The tag's target digest in a hosted repository, read from the database (never cached). */
export async function hostedTagTarget(app: Stowage, repo: Repository, name: string, tag: string): Promise<string | null> {
  return app.content.tagTarget(repo.id, name, tag);
}

/**
 * A hosted repository's manifest `v2/<name>/manifests/<digest>`. `known`: the caller read a tag
 * naming this digest just now, which vouches for the manifest's existence.
 */
export async function hostedManifest(app: Stowage, repo: Repository, name: string, digest: string, known = false): Promise<Content | null> {
  const cache = cacheOf(app);
  const key = keyOf(repo, name, digest);
  const cached = cache.get(key);
  if (cached && known) return content(repo, cached, cached.asset);
  const asset = await app.content.findAsset(repo.id, `v2/${name}/manifests/${digest}`);
  if (!asset) {
    cache.drop(key);
    return null;
  }
  if (cached && cached.blob.id === asset.blob_id) {
    cached.asset = asset;
    return content(repo, cached, asset);
  }
  const blob = await app.blobs.get(asset.blob_id);
  if (!blob) return null;
  if (blob.size > MAX_ENTRY_BYTES) return repo.wrap(asset, blob);
  const entry: Entry = { bytes: await readAll(await app.blobs.open(blob)), asset, blob };
  if (entry.bytes.length !== blob.size) return repo.wrap(asset, blob);
  cache.set(key, entry);
  return content(repo, entry, asset);
}
