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
 * longer than a push takes (as Harbor's GC time window). Each delete also re-checks in its own
 * transaction: a manifest is deleted only if still untagged and unchanged; a blob asset only if
 * still untouched, and no manifest stored since the scan began references it (checked after the
 * delete, in the same transaction, which rolls back while such a manifest is unread).
 */
import type { Tx } from '../../src/db/db.js';
import { now, num, fromJson } from '../../src/db/db.js';
import { AppError } from '../../src/errors.js';
import { readSmall } from '../../src/blob/blob-service.js';
import type { Repository } from '../../src/repository/repository.js';
import type { Stowage } from '../../src/stowage.js';
import type { TaskRunContext, TaskType } from '../../src/tasks/task-service.js';
import { MAX_MANIFEST_BYTES, parseManifest } from './manifest.js';
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

function manifestAsset(r: Record<string, unknown>): ManifestAsset | null {
  const path = String(r.path);
  const i = path.lastIndexOf('/manifests/');
  if (i <= 3) return null;
  const attributes = fromJson(r.attributes);
  return {
    id: num(r.id),
    path,
    name: path.slice(3, i),
    digest: path.slice(i + '/manifests/'.length),
    blobId: num(r.blob_id),
    contentType: String(r.content_type),
    subject: typeof attributes.subject === 'string' ? attributes.subject : null,
    created: num(r.created_at),
    updated: num(r.updated_at),
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

async function manifestsOf(app: Stowage, repo: Repository, q: Tx | Stowage['db'] = app.db, since?: number): Promise<ManifestAsset[]> {
  const query = q('assets').where({ repository_id: repo.id }).andWhere('path', 'like', MANIFESTS_LIKE);
  if (since !== undefined) query.andWhere((w) => w.where('created_at', '>=', since).orWhere('updated_at', '>=', since));
  const rows = await query.select('id', 'path', 'blob_id', 'content_type', 'attributes', 'created_at', 'updated_at');
  return rows.map(manifestAsset).filter((m): m is ManifestAsset => m !== null);
}

/** Collects one hosted repository; the caller runs the blob GC of its store afterwards. */
export async function collectRepository(app: Stowage, repo: Repository, graceMs: number, signal?: AbortSignal): Promise<{ manifestsDeleted: number; blobAssetsDeleted: number }> {
  const scanStart = now();
  const cutoff = scanStart - graceMs;
  const manifests = await manifestsOf(app, repo);
  const byKey = new Map(manifests.map((m) => [key(m.name, m.digest), m]));
  const refs = new Map<string, References>();
  for (const m of manifests) refs.set(key(m.name, m.digest), await references(app, m));

  // Kept: tagged, young, then everything a kept manifest needs, to a fixed point.
  const kept = new Set<string>();
  const tags = await app.db('tags').where({ repository_id: repo.id }).select('scope', 'target');
  for (const t of tags) if (byKey.has(key(String(t.scope), String(t.target)))) kept.add(key(String(t.scope), String(t.target)));
  for (const m of manifests) if (Math.max(m.created, m.updated) >= cutoff) kept.add(key(m.name, m.digest));
  for (let changed = true; changed; ) {
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
    const deleted = await app.db.transaction(async (tx) => {
      // Tagged (or re-pushed) since the scan: keep.
      if (await tx('tags').where({ repository_id: repo.id, scope: m.name, target: m.digest }).first('id')) return false;
      const cur = await app.content.findAsset(repo.id, m.path, tx);
      if (!cur || cur.id !== m.id || cur.updated_at !== m.updated) return false;
      await app.content.deleteAsset(repo.id, m.path, tx);
      if (m.subject) await unindexReferrer(app, tx, repo.id, m.name, m.subject, m.digest);
      return true;
    });
    if (deleted) {
      manifestsDeleted++;
      continue;
    }
    remaining.add(k);
    for (const child of refs.get(k)!.manifests) remaining.add(key(m.name, child));
    if (m.subject) remaining.add(key(m.name, m.subject));
  }

  const referenced = new Set<string>();
  for (const k of remaining) for (const d of refs.get(k)?.blobs ?? []) referenced.add(d);
  const seen = new Set(byKey.keys());

  const blobs = await app.db('assets')
    .where({ repository_id: repo.id })
    .andWhere('path', 'like', `${BLOBS}%`)
    .select('id', 'path', 'created_at', 'updated_at', 'last_downloaded');
  let blobAssetsDeleted = 0;
  for (const b of blobs) {
    signal?.throwIfAborted();
    const path = String(b.path);
    const digest = path.slice(BLOBS.length);
    if (referenced.has(digest)) continue;
    const lastActive = Math.max(num(b.created_at), num(b.updated_at), b.last_downloaded == null ? 0 : num(b.last_downloaded));
    if (lastActive >= cutoff) continue;
    // A manifest stored since the scan may need this blob: the delete rolls back when one is
    // there unread; it is read outside the transaction (no blob I/O while holding it), then retried.
    let deleted = false;
    while (!referenced.has(digest)) {
      const fresh: ManifestAsset[] = [];
      const outcome = await app.db
        .transaction(async (tx) => {
          const n = await tx('assets')
            .where({ id: b.id, updated_at: b.updated_at })
            .andWhere((w) => w.whereNull('last_downloaded').orWhere('last_downloaded', '<', cutoff))
            .delete();
          if (n !== 1) return 'changed' as const;
          fresh.push(...(await manifestsOf(app, repo, tx, scanStart)).filter((m) => !seen.has(key(m.name, m.digest))));
          if (fresh.length > 0) throw new Rescan();
          return 'deleted' as const;
        })
        .catch((e) => {
          if (e instanceof Rescan) return 'rescan' as const;
          throw e;
        });
      if (outcome === 'changed') break;
      if (outcome === 'deleted') {
        deleted = true;
        break;
      }
      for (const m of fresh) {
        seen.add(key(m.name, m.digest));
        for (const d of (await references(app, m)).blobs) referenced.add(d);
      }
    }
    if (deleted) blobAssetsDeleted++;
  }
  return { manifestsDeleted, blobAssetsDeleted };
}

class Rescan extends Error {}

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
