/**
 * Maven's maintenance hook: a hosted repository's maven-metadata.xml (artifact level, and
 * snapshot-version level in each `-SNAPSHOT` directory) is generated from the files stored,
 * after every change that put or removed one — a deploy, a REST delete, a cleanup or task run.
 * Client-uploaded metadata is never stored as is (its checksums would not match what the
 * versions really are); the group-level plugin documents are the exception (hosted.ts).
 */
import type { AssetRow } from '../../src/content/types.js';
import type { Repository } from '../../src/repository/repository.js';
import type { CommittedChange } from '../../src/repository/unit-of-work.js';
import type { Stowage } from '../../src/stowage.js';
import { readSmall } from '../../src/blob/blob-service.js';
import { METADATA_FILE, artifactDir, parseMavenPath, type Coordinates } from './layout.js';
import { MAX_METADATA_BYTES, artifactMetadata, lastUpdatedOf, parseMetadata, snapshotMetadata, writeMetadata, type Metadata } from './metadata.js';

const XML = 'application/xml';

/** The artifacts (g:a) a change touched, with the snapshot versions touched in each. */
export function touchedArtifacts(assets: AssetRow[]): Map<string, { groupId: string; artifactId: string; snapshots: Set<string> }> {
  const out = new Map<string, { groupId: string; artifactId: string; snapshots: Set<string> }>();
  for (const a of assets) {
    if (a.kind !== 'content') continue;
    const p = parseMavenPath(a.path);
    if (!p || p.kind !== 'artifact') continue;
    const { groupId, artifactId, baseVersion } = p.coords;
    const key = artifactDir(groupId, artifactId);
    let t = out.get(key);
    if (!t) out.set(key, (t = { groupId, artifactId, snapshots: new Set() }));
    if (baseVersion.endsWith('-SNAPSHOT')) t.snapshots.add(baseVersion);
  }
  return out;
}

export async function maintainMetadata(change: CommittedChange, app: Stowage): Promise<void> {
  const repo = change.repository;
  // A proxy's metadata is upstream's; a group's is merged from its members on read.
  if (repo.type !== 'hosted') return;
  const touched = touchedArtifacts([...change.assetsPut, ...change.assetsDeleted]);
  for (const t of touched.values()) await rebuildArtifact(app, repo, t.groupId, t.artifactId, t.snapshots);
}

/**
 * Regenerates the metadata of one artifact from what is stored: the artifact-level document and
 * the snapshot-version documents of `snapshots` (all of them when null). Returns the paths written or removed.
 */
export async function rebuildArtifact(app: Stowage, repo: Repository, groupId: string, artifactId: string, snapshots: Set<string> | null): Promise<string[]> {
  const dir = artifactDir(groupId, artifactId);
  const files = new Map<string, Coordinates[]>();
  for (const a of await app.content.findAssets(repo.id, { pathPrefix: dir + '/' })) {
    if (a.kind !== 'content') continue;
    const p = parseMavenPath(a.path);
    if (!p || p.kind !== 'artifact' || p.coords.groupId !== groupId || p.coords.artifactId !== artifactId) continue;
    // Signatures are not versions of their own and are not resolved through the metadata.
    if (p.coords.extension.endsWith('.asc')) continue;
    const list = files.get(p.coords.baseVersion) ?? [];
    list.push(p.coords);
    files.set(p.coords.baseVersion, list);
  }
  const changed: string[] = [];
  const now = new Date();
  const snapshotDirs = snapshots ?? new Set([...files.keys()].filter((v) => v.endsWith('-SNAPSHOT')));
  for (const v of snapshotDirs) {
    const path = `${dir}/${v}/${METADATA_FILE}`;
    const md = snapshotMetadata(groupId, artifactId, v, files.get(v) ?? []);
    if (await writeDocument(app, repo, path, md, (old) => sameSnapshot(old, md))) changed.push(path);
  }
  const path = `${dir}/${METADATA_FILE}`;
  const md = files.size > 0 ? artifactMetadata(groupId, artifactId, files.keys(), lastUpdatedOf(now)) : null;
  if (await writeDocument(app, repo, path, md, (old) => sameVersions(old, md))) changed.push(path);
  return changed;
}

function sameVersions(old: Metadata, md: Metadata | null): boolean {
  return !!md && old.plugins.length === 0 && old.versions.join('\n') === md.versions.join('\n') && old.latest === md.latest && old.release === md.release;
}

function sameSnapshot(old: Metadata, md: Metadata | null): boolean {
  return !!md && writeMetadata(old) === writeMetadata(md);
}

/**
 * Puts `md` at `path` (or removes the document when null) unless the stored one already says the
 * same (`same`): unchanged versions keep their bytes, their lastUpdated and their checksums.
 */
async function writeDocument(app: Stowage, repo: Repository, path: string, md: Metadata | null, same: (old: Metadata) => boolean): Promise<boolean> {
  const { value } = await repo.change({ source: 'maintenance', key: path }, async (c) => {
    const existing = await app.content.findAsset(repo.id, path);
    c.expectAsset(path, existing?.blob_id ?? null);
    if (!md) {
      if (!existing) return false;
      c.deleteAsset(path);
      return true;
    }
    if (existing) {
      const stored = await repo.local(path);
      try {
        if (stored && same(parseMetadata(await readSmall(await stored.open(), MAX_METADATA_BYTES)))) return false;
      } catch {
        /* an unreadable stored document is replaced */
      }
    }
    c.put(path, await c.stageBytes(writeMetadata(md)), { contentType: XML, kind: 'metadata', component: null });
    return true;
  });
  return value;
}
