/**
 * Docker garbage collection and the purge of abandoned upload sessions, as tasks (Nexus's
 * `repository.docker.gc` and `repository.docker.upload-purge`).
 *
 * GC, per hosted docker repository: untagged manifests past the grace period that no kept
 * manifest needs (children of a kept index, referrers of a kept subject) are deleted; then the
 * repository's blob assets (`v2/-/blobs/…`) that no remaining manifest references and nobody
 * uploaded, pushed or read within the grace period; then the core blob GC of the stores involved
 * frees the bytes of blob rows no asset references any more (a blob another repository still
 * references keeps its row, and its bytes).
 *
 * Concurrency, since pushes do not stop while this runs: a push uploads its blobs before its
 * manifest, and a client about to reuse an existing blob HEADs it first (which records a read),
 * so a blob asset created, updated or read within the grace period is kept; the grace must be
 * longer than a push takes (as Harbor's GC time window). Every delete is a unit of work of the
 * core, computed just before it commits: a manifest is deleted only while still untagged and
 * unchanged; a blob asset only while untouched (its blob unchanged, as the change expects), once
 * the manifests stored since the scan (higher asset ids) are read and none references it. A
 * manifest push in turn commits only while the blob assets it references are there (it expects
 * them), so a blob deleted first makes the push fail cleanly rather than store a manifest whose
 * layer is gone.
 */
import { now } from '../../src/db/db.js';
import type { AssetView } from '../../src/content/types.js';
import { AppError } from '../../src/errors.js';
import { readSmall } from '../../src/blob/blob-service.js';
import type { Repository } from '../../src/repository/repository.js';
import type { Stowage } from '../../src/stowage.js';
import type { TaskRunContext, TaskType } from '../../src/tasks/task-service.js';
import { MAX_MANIFEST_BYTES, looksLikeDigest, parseManifest } from './manifest.js';
import { UploadSessions } from './uploads.js';
import { unindexReferrer } from './referrers.js';

const BLOBS = 'v2/-/blobs/';
const MANIFESTS_LIKE = 'v2/%/manifests/%';
const HOUR_MS = 3600_000;

interface ManifestAsset {
  id: number;
  path: string;
  name: string;
  digest: string;
  blobId: number;
  contentType: string;
  subject: string | null;
  created: number;
  updated: number;
}

/** What a manifest references: blobs (config, layers) and child manifests. */
interface References {
  blobs: string[];
  manifests: string[];
}

export interface GcResult {
  repositories: number;
  manifestsDeleted: number;
  blobAssetsDeleted: number;
  blobsDeleted: number;
  bytesReclaimed: number;
}

/** A manifest by digest; null for every other asset (blobs, and tag assets: they go with their tags, never by GC). */
function manifestAsset(a: AssetView): ManifestAsset | null {
  const path = a.path;
  const i = path.lastIndexOf('/manifests/');
  if (i <= 3) return null;
  const digest = path.slice(i + '/manifests/'.length);
  if (!looksLikeDigest(digest)) return null;
  return {
    id: a.id,
    path,
    name: path.slice(3, i),
    digest,
    blobId: a.blob_id,
    contentType: a.content_type,
    subject: typeof a.attributes.subject === 'string' ? a.attributes.subject : null,
    created: a.created_at,
    updated: a.updated_at,
  };
}

/** Reads a stored manifest (small, capped) and lists what it references; unreadable: nothing. */
async function references(app: Stowage, m: ManifestAsset): Promise<References> {
  const blob = await app.blobs.get(m.blobId);
  if (!blob) return { blobs: [], manifests: [] };
  try {
    const parsed = parseManifest(await readSmall(await app.blobs.open(blob), MAX_MANIFEST_BYTES), m.contentType);
    return { blobs: parsed.blobs.map((b) => b.digest), manifests: parsed.manifests.map((c) => c.digest) };
  } catch (e) {
    app.log.warn(`Docker GC: manifest ${m.path} (asset ${m.id}) is unreadable; treated as referencing nothing`, e);
    return { blobs: [], manifests: [] };
  }
}

const key = (name: string, digest: string) => `${name}@${digest}`;

interface Scan {
  manifests: ManifestAsset[];
  blobs: AssetView[];
}

/** The repository's manifests by digest and blob assets. */
async function scan(app: Stowage, repo: Repository): Promise<Scan> {
  const manifests = (await app.content.findAssets(repo.id, { pathLike: MANIFESTS_LIKE })).map(manifestAsset).filter((m): m is ManifestAsset => m !== null);
  return { manifests, blobs: await app.content.findAssets(repo.id, { pathPrefix: BLOBS }) };
}

/**
 * Collects one hosted repository; the caller runs the blob GC of its store afterwards. Ages are
 * judged as of `asOf` (cleanup's clock; default now); the blob ids of what went are added to `freed`.
 */
export async function collectRepository(
  app: Stowage,
  repo: Repository,
  graceMs: number,
  signal?: AbortSignal,
  opts: { asOf?: number; freed?: number[] } = {},
): Promise<{ manifestsDeleted: number; blobAssetsDeleted: number }> {
  // Reads recorded but not yet written count: a blob read just now is in use.
  await app.content.flushDownloads();
  const scanStart = now();
  const cutoff = (opts.asOf ?? scanStart) - graceMs;
  const { manifests, blobs } = await scan(app, repo);
  const byKey = new Map(manifests.map((m) => [key(m.name, m.digest), m]));
  const refs = new Map<string, References>();
  for (const m of manifests) refs.set(key(m.name, m.digest), await references(app, m));

  // Kept: tagged, young, then everything a kept manifest needs, to a fixed point.
  const kept = new Set<string>();
  for (const name of new Set(manifests.map((m) => m.name))) {
    for (const t of await app.content.getTags(repo.id, name)) if (byKey.has(key(name, t.target))) kept.add(key(name, t.target));
  }
  for (const m of manifests) if (Math.max(m.created, m.updated) >= cutoff) kept.add(key(m.name, m.digest));
  for (let changed = true; changed;) {
    changed = false;
    for (const m of manifests) {
      const k = key(m.name, m.digest);
      if (kept.has(k)) {
        for (const child of refs.get(k)!.manifests) {
          const ck = key(m.name, child);
          if (byKey.has(ck) && !kept.has(ck)) {
            kept.add(ck);
            changed = true;
          }
        }
      } else if (m.subject && kept.has(key(m.name, m.subject))) {
        kept.add(k);
        changed = true;
      }
    }
  }

  // Referrers first, then indexes, then image manifests: a parent that turns out kept (tagged
  // meanwhile) is met before its children, which it then keeps.
  const rank = (m: ManifestAsset) => (m.subject ? 0 : refs.get(key(m.name, m.digest))!.manifests.length > 0 ? 1 : 2);
  const order = manifests.filter((m) => !kept.has(key(m.name, m.digest))).sort((a, b) => rank(a) - rank(b));
  let manifestsDeleted = 0;
  const remaining = new Set(kept);
  for (const m of order) {
    signal?.throwIfAborted();
    const k = key(m.name, m.digest);
    if (remaining.has(k)) continue;
    const { skipped } = await repo.change({ source: 'gc', onConflict: 'skip' }, (c) => {
      // Locked, then checked in the transaction: still untagged (a push re-tagging it waits, then
      // finds it gone and stores it again) and unchanged since the scan.
      c.expectAsset(m.path, m.blobId);
      c.verify(async (read) => (await read.tags({ scope: m.name, target: m.digest })).length === 0);
      c.verify(async (read) => {
        const cur = await read.asset(m.path);
        return !!cur && cur.id === m.id && cur.updated_at === m.updated;
      });
      c.deleteAsset(m.path);
      if (m.subject) unindexReferrer(c, m.name, m.subject, m.digest);
    });
    const deleted = !skipped;
    if (deleted) {
      manifestsDeleted++;
      opts.freed?.push(m.blobId);
      continue;
    }
    remaining.add(k);
    for (const child of refs.get(k)!.manifests) remaining.add(key(m.name, child));
    if (m.subject) remaining.add(key(m.name, m.subject));
  }

  const referenced = new Set<string>();
  for (const k of remaining) for (const d of refs.get(k)?.blobs ?? []) referenced.add(d);
  const seen = new Set(byKey.keys());

  let blobAssetsDeleted = 0;
  for (const b of blobs) {
    signal?.throwIfAborted();
    const digest = b.path.slice(BLOBS.length);
    if (referenced.has(digest)) continue;
    const lastActive = Math.max(b.created_at, b.updated_at, b.last_downloaded ?? 0);
    if (lastActive >= cutoff) continue;
    // A manifest stored since the scan may need this blob: the delete is skipped while one is
    // there unread; it is read outside the transaction (no blob I/O while holding it), then retried.
    let deleted = false;
    while (!referenced.has(digest)) {
      const fresh: ManifestAsset[] = [];
      const { skipped } = await repo.change({ source: 'gc', onConflict: 'skip' }, (c) => {
        fresh.length = 0;
        // Locked first: a manifest push expecting this blob waits for the outcome (then fails
        // cleanly), or committed before, and is then among the manifests read below.
        c.expectAsset(b.path, b.blob_id);
        c.verify(async (read) => {
          const cur = await read.asset(b.path);
          return !!cur && cur.id === b.id && cur.updated_at === b.updated_at && (cur.last_downloaded === null || cur.last_downloaded < cutoff);
        });
        c.verify(async (read) => {
          for (const a of await read.assets({ pathLike: MANIFESTS_LIKE, changedSince: scanStart })) {
            const m = manifestAsset(a);
            if (m && !seen.has(key(m.name, m.digest))) fresh.push(m);
          }
          return fresh.length === 0;
        });
        c.deleteAsset(b.path);
      });
      if (!skipped) {
        deleted = true;
        break;
      }
      if (fresh.length === 0) break;
      for (const m of fresh) {
        seen.add(key(m.name, m.digest));
        for (const d of (await references(app, m)).blobs) referenced.add(d);
      }
    }
    if (deleted) {
      blobAssetsDeleted++;
      opts.freed?.push(b.blob_id);
    }
  }
  return { manifestsDeleted, blobAssetsDeleted };
}

/** Cleanup's follow-up (FormatPlugin.reclaim): untagged manifests and unreferenced layers of a hosted repository, in the same run. */
export async function reclaimRepository(
  repo: Repository,
  app: Stowage,
  opts: { asOf: number; graceMs: number; signal?: AbortSignal },
): Promise<{ assetsDeleted: number; blobIds: number[] }> {
  if (repo.type !== 'hosted') return { assetsDeleted: 0, blobIds: [] };
  const blobIds: number[] = [];
  const r = await collectRepository(app, repo, opts.graceMs, opts.signal, { asOf: opts.asOf, freed: blobIds });
  return { assetsDeleted: r.manifestsDeleted + r.blobAssetsDeleted, blobIds };
}

/** Grace in ms from task attributes: `graceSeconds` when given, else Nexus's `deployOffset` hours (default 24). */
export function graceOf(attributes: Record<string, unknown>, defaultHours = 24): number {
  const value = (v: unknown, field: string) => {
    const n = Number(v);
    if (v === '' || v === null || !Number.isFinite(n) || n < 0) throw new AppError('BAD_REQUEST', `${field}: expected a number ≥ 0, got ${String(v)}`);
    return n;
  };
  if (attributes.graceSeconds !== undefined) return value(attributes.graceSeconds, 'graceSeconds') * 1000;
  if (attributes.deployOffset !== undefined) return value(attributes.deployOffset, 'deployOffset') * HOUR_MS;
  return defaultHours * HOUR_MS;
}

async function dockerRepositories(app: Stowage, name: unknown): Promise<Repository[]> {
  if (name !== undefined && name !== null && name !== '') {
    const repo = await app.repositories.find(String(name));
    if (!repo || repo.format.name !== 'docker') throw new AppError('NOT_FOUND', `repositoryName: no docker repository '${String(name)}'`);
    return repo.type === 'hosted' ? [repo] : [];
  }
  return (await app.repositories.list()).filter((r) => r.format.name === 'docker' && r.type === 'hosted');
}

export async function dockerGc(app: Stowage, attributes: Record<string, unknown>, ctx?: TaskRunContext): Promise<GcResult> {
  const graceMs = graceOf(attributes);
  const repos = await dockerRepositories(app, attributes.repositoryName);
  const result: GcResult = { repositories: repos.length, manifestsDeleted: 0, blobAssetsDeleted: 0, blobsDeleted: 0, bytesReclaimed: 0 };
  const stores = new Set<number>();
  ctx?.progress(0, repos.length);
  for (const [i, repo] of repos.entries()) {
    const r = await collectRepository(app, repo, graceMs, ctx?.signal);
    result.manifestsDeleted += r.manifestsDeleted;
    result.blobAssetsDeleted += r.blobAssetsDeleted;
    stores.add(repo.blobStoreId);
    ctx?.log(`${repo.name}: deleted ${r.manifestsDeleted} manifests and ${r.blobAssetsDeleted} blob assets`);
    ctx?.progress(i + 1, repos.length);
  }
  // Bytes go only once no asset of any repository (any format) on the store references them.
  for (const storeId of stores) {
    const g = await app.blobs.gc(graceMs, storeId, ctx?.signal);
    result.blobsDeleted += g.blobsDeleted;
    result.bytesReclaimed += g.bytesReclaimed;
  }
  return result;
}

export const dockerGcTask: TaskType = {
  id: 'repository.docker.gc',
  name: 'Docker - Delete unused manifests and images',
  properties: [
    { id: 'repositoryName', label: 'Repository', type: 'repository', help: 'A hosted docker repository (all of them when empty)' },
    { id: 'deployOffset', label: 'Deploy offset in hours', type: 'number', min: 0, default: 24, help: 'Keep manifests and blobs pushed or read within this many hours' },
    { id: 'graceSeconds', label: 'Grace period (seconds)', type: 'number', min: 0, help: 'Overrides deployOffset, in seconds (Stowage)' },
  ],
  async run(app, attributes, ctx) {
    const r = await dockerGc(app, attributes, ctx);
    return (
      `Deleted ${r.manifestsDeleted} unused manifests and ${r.blobAssetsDeleted} unreferenced blob assets in ${r.repositories} docker repositories; ` +
      `${r.blobsDeleted} blobs removed from the blob store; reclaimed ${r.bytesReclaimed} bytes`
    );
  },
};

export const dockerUploadPurgeTask: TaskType = {
  id: 'repository.docker.upload-purge',
  name: 'Docker - Delete incomplete uploads',
  defaultInstance: { intervalSeconds: 24 * 3600, attributes: { age: 24 } },
  properties: [{ id: 'age', label: 'Age in hours', type: 'number', min: 0, default: 24, help: 'Delete uploads not touched for this many hours' }],
  async run(app, attributes) {
    const hours = attributes.age === undefined ? 24 : Number(attributes.age);
    if (!Number.isFinite(hours) || hours < 0) throw new AppError('BAD_REQUEST', `age: expected hours ≥ 0, got ${String(attributes.age)}`);
    const r = await new UploadSessions(app).purge(hours * HOUR_MS);
    return `Deleted ${r.sessions} incomplete uploads and ${r.files} staging files; reclaimed ${r.bytes} bytes`;
  },
};
