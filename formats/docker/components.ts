/**
 * Docker images as components, as in Nexus: one component per tag (namespace empty, name = image
 * name, version = tag) owning one asset, `v2/<name>/manifests/<tag>`, which references the same
 * stored bytes as the manifest by digest. Pushing the tag again moves that asset to the new
 * manifest; deleting the tag deletes the asset and so the component.
 *
 * Manifests by digest (`v2/<name>/manifests/<digest>`) and layers and configs
 * (`v2/-/blobs/<digest>`) are component-less assets: an asset has at most one component, and a
 * manifest is shared by every tag naming it, a layer by every image (of any name) using it. They
 * stay until the docker GC task finds nothing referencing them, as in Nexus.
 *
 * The `tags` table stays what the registry protocol reads (one indexed query per pull by tag);
 * the tag asset is what the REST API, search and cleanup see. Both are written in the same
 * transaction, and the maintenance hook (./maintenance.ts) puts the one back in line with the
 * other whatever deleted what.
 */
import { looksLikeDigest } from './manifest.js';

/** Tags and tag manifests: `v2/<name>/manifests/<tag>` (a reference that is no digest). */
const TAG_PATH_RE = /^v2\/(.+)\/manifests\/([^/:]+)$/;

export const tagPath = (name: string, tag: string) => `v2/${name}/manifests/${tag}`;

/** The image name and tag a tag asset's path names; null for every other path. */
export function tagOfPath(path: string): { name: string; tag: string } | null {
  const m = TAG_PATH_RE.exec(path);
  if (!m || m[1] === '-' || looksLikeDigest(m[2])) return null;
  return { name: m[1], tag: m[2] };
}

/** The component a path belongs to: a tag's manifest belongs to (image name, tag); nothing else does. */
export function componentOf(path: string): { namespace?: string; name: string; version: string } | null {
  const t = tagOfPath(path);
  return t ? { name: t.name, version: t.tag } : null;
}

/** Tags have no order of their own (`latest`, `1.0`, `sha-abc`…): compared as text, cleanup sorts by date. */
export function compareVersions(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** No tag is a prerelease: a tag is a name, not a version. */
export function isPrerelease(): boolean {
  return false;
}
