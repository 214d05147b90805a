import type { AssetView, ComponentRow } from '../content/types.js';
import type { Repository } from '../repository/repository.js';
import { iso } from './params.js';
import { repositoryUrl } from './repository-xo.js';

/**
 * Component and asset ids are opaque to clients, as in Nexus: base64url of `<repository>:<row id>`.
 * The repository is the one the item was listed through (a group for its members' content).
 */
export function encodeId(repository: string, id: number): string {
  return Buffer.from(`${repository}:${id}`).toString('base64url');
}

/** The repository name and row id, or null for anything that is not an id this server made. */
export function decodeId(id: string): { repository: string; id: number } | null {
  if (!/^[A-Za-z0-9_-]+$/.test(id)) return null;
  const m = /^(.+):([1-9]\d{0,15})$/.exec(Buffer.from(id, 'base64url').toString('utf8'));
  if (!m || encodeId(m[1], Number(m[2])) !== id) return null;
  return { repository: m[1], id: Number(m[2]) };
}

function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

/**
 * The digests known for an asset's blob (Nexus shows sha1, sha256, md5, and sha512 for Maven): a
 * digest no format that stored the bytes needed is left out (the search by it finds the asset once
 * the "compute missing digests" task ran).
 */
function checksumXO(a: AssetView): Record<string, string> {
  const out: Record<string, string> = {};
  if (a.sha1) out.sha1 = a.sha1;
  out.sha256 = a.sha256;
  if (a.md5) out.md5 = a.md5;
  if (a.sha512) out.sha512 = a.sha512;
  if (a.blake2b256) out.blake2b256 = a.blake2b256;
  return out;
}

/** Nexus AssetXO. */
export function assetXO(a: AssetView, view: Repository, owner: Repository, baseUrl: string) {
  return {
    downloadUrl: `${repositoryUrl(baseUrl, view.name)}/${encodePath(a.path)}`,
    path: a.path,
    id: encodeId(view.name, a.id),
    repository: view.name,
    format: view.format.name,
    checksum: checksumXO(a),
    contentType: a.content_type,
    lastModified: iso(a.updated_at),
    lastDownloaded: iso(a.last_downloaded),
    uploader: a.uploader ?? null,
    uploaderIp: a.uploader_ip ?? null,
    fileSize: a.size,
    blobCreated: iso(a.blob_created_at),
    blobStoreName: owner.config.storage.blobStoreName,
  };
}

/** Nexus ComponentXO: empty namespace and version are null, as Nexus shows them. */
export function componentXO(c: ComponentRow, assets: ReturnType<typeof assetXO>[], view: Repository) {
  return {
    id: encodeId(view.name, c.id),
    repository: view.name,
    format: view.format.name,
    group: c.namespace || null,
    name: c.name,
    version: c.version || null,
    assets,
  };
}
