/**
 * The one way content changes: a format (or the REST API, a task) computes a ContentChange from
 * what it reads; the core then checks the write policy, commits the change in one transaction
 * (only while the state it was computed from still holds, else it computes again), settles or
 * discards the staged blobs, writes the audit records and calls the format's maintenance hook.
 */
import { AppError } from '../errors.js';
import { isUniqueViolation, now, type Tx } from '../db/db.js';
import type { BlobRow, StagedBlob } from '../blob/blob-service.js';
import { ContentChange, type ChangeReader, type PutAsset, type SetTag } from '../content/content-change.js';
import type { AssetRow, ComponentRow } from '../content/types.js';
import type { AuditOrigin } from '../security/audit.js';
import type { Stowage } from '../stowage.js';
import type { Repository } from './repository.js';
import type { AccessCheck } from './types.js';

/**
 * What made a change. `client` (a format's protocol) and `upload` (multipart component upload)
 * are subject to the hosted write policy; the others are the system's own (REST deletes by a user
 * holding the delete permission, proxy and group caches, GC, cleanup, maintenance hooks).
 */
export type ChangeSource = 'client' | 'upload' | 'rest' | 'proxy' | 'group' | 'gc' | 'cleanup' | 'maintenance';

export interface ChangeOptions {
  source: ChangeSource;
  /** The principal's permission: an overwrite requires `edit`. Omitted: the caller already authorized it. */
  access?: AccessCheck;
  /** Who made it (audit records); default: the system. */
  origin?: AuditOrigin;
  /** Changes with the same key (e.g. a package name) run one at a time on this node. */
  key?: string;
  /** Blobs staged before the change began (while a request body arrived): owned by the change from now on. */
  adopt?: StagedBlob[];
  /**
   * When an expectation or `verify` check fails: `retry` (default) computes the change again;
   * `skip` gives up quietly (GC, cleanup: the content is in use again), outcome `skipped`.
   */
  onConflict?: 'retry' | 'skip';
}

/** What a committed change did: what the maintenance hook receives. */
export interface CommittedChange {
  repository: Repository;
  source: ChangeSource;
  assetsPut: AssetRow[];
  assetsDeleted: AssetRow[];
  /** Components deleted, directly or because their last asset went. */
  componentsDeleted: ComponentRow[];
  tagsSet: Array<{ scope: string; name: string; target: string }>;
  tagsDeleted: Array<{ scope: string; name: string }>;
  /** Paths of the puts that created an asset (rather than replacing one). */
  created: string[];
  /** Blob rows the puts' staged blobs became, by id. */
  blobs: Map<number, BlobRow>;
}

export interface ChangeOutcome<T> {
  value: T;
  /** What was committed (all empty when skipped). */
  committed: CommittedChange;
  /** An expectation failed and `onConflict` was `skip`: nothing was written. */
  skipped: boolean;
}

/** The state a change was computed from no longer holds: compute it again. */
class Changed extends Error {}
/** Tries of one change while other writers keep committing changes of the same thing first. */
const MAX_ATTEMPTS = 30;
const SYSTEM: AuditOrigin = { principal: null, remoteAddress: '' };

/**
 * Changes with the same key run one at a time on this node (across nodes the expectations
 * decide). One queue map per application (tests run several in one process).
 */
const queuesOf = new WeakMap<Stowage, Map<string, Promise<unknown>>>();
function serialized<T>(app: Stowage, key: string | undefined, fn: () => Promise<T>): Promise<T> {
  if (key === undefined) return fn();
  let queues = queuesOf.get(app);
  if (!queues) queuesOf.set(app, (queues = new Map()));
  const prev = queues.get(key) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => undefined);
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return run;
}

function policyApplies(repo: Repository, source: ChangeSource): boolean {
  return repo.type === 'hosted' && (source === 'client' || source === 'upload');
}

function writePolicy(repo: Repository) {
  return repo.config.storage.writePolicy ?? 'ALLOW_ONCE';
}

const readOnly = (repo: Repository) => new AppError('WRITE_POLICY', `Repository is read only: ${repo.name}`);

/** What the write policy looks at in a change. */
export interface WriteIntent {
  puts?: Array<Pick<PutAsset, 'path' | 'kind' | 'overwrite' | 'refusal' | 'ifAbsent' | 'mutable'>>;
  tags?: SetTag[];
  /** Whether the change deletes anything. */
  deletes?: boolean;
}

/**
 * The write policy of a hosted repository and the edit permission on an overwrite — the only
 * place either is checked. DENY refuses every client change; ALLOW_ONCE refuses replacing a
 * stored asset (generated metadata and puts the format marks `mutable` aside) or moving a
 * guarded tag; replacing under ALLOW (or a `mutable` put) needs `edit`. Returns the paths and tags found in place (the transaction re-checks against them).
 * Callers that must refuse before reading a body call it first; the unit of work calls it again.
 */
export async function checkWritePolicy(app: Stowage, repo: Repository, source: ChangeSource, intent: WriteIntent, access?: AccessCheck): Promise<Set<string>> {
  const present = new Set<string>();
  if (!policyApplies(repo, source)) return present;
  const policy = writePolicy(repo);
  const puts = intent.puts ?? [];
  const tags = intent.tags ?? [];
  if (policy === 'DENY' && (puts.length > 0 || tags.length > 0 || intent.deletes)) throw readOnly(repo);
  let overwrite = false;
  for (const p of puts) {
    if (p.kind === 'metadata' || p.ifAbsent) continue;
    const exists = !!(await app.content.findAsset(repo.id, p.path));
    if (exists) present.add(assetKey(p.path));
    if (!exists && !p.overwrite) continue;
    if (policy === 'ALLOW_ONCE' && !p.mutable) throw new AppError('WRITE_POLICY', p.refusal ?? `Repository does not allow updating assets: ${repo.name}`);
    overwrite = true;
  }
  for (const t of tags) {
    if (!t.guarded) continue;
    const target = await app.content.tagTarget(repo.id, t.scope, t.name);
    if (target === null || target === t.target) continue;
    present.add(tagKey(t.scope, t.name));
    if (policy === 'ALLOW_ONCE') throw new AppError('WRITE_POLICY', t.refusal ?? `Repository does not allow updating tag ${t.scope}:${t.name}: ${repo.name}`);
    overwrite = true;
  }
  if (overwrite && access) await access.require('edit');
  return present;
}

const assetKey = (path: string) => `a\n${path}`;
const tagKey = (scope: string, name: string) => `t\n${scope}\n${name}`;

/**
 * Runs one change of `repo`: `compute` describes it on the ContentChange it is given (staging
 * what it writes through it) and returns a value; see the file comment for the rest.
 */
export function runChange<T>(app: Stowage, repo: Repository, opts: ChangeOptions, compute: (change: ContentChange) => T | Promise<T>): Promise<ChangeOutcome<T>> {
  return serialized(app, opts.key === undefined ? undefined : `${repo.id}\n${opts.key}`, () => attempt(app, repo, opts, compute)).then(async (outcome) => {
    // Outside the key's queue: the hook's own change of the same key would wait for this one.
    if (opts.source !== 'maintenance' && !outcome.skipped) await maintain(app, outcome.committed);
    return outcome;
  });
}

async function attempt<T>(app: Stowage, repo: Repository, opts: ChangeOptions, compute: (change: ContentChange) => T | Promise<T>): Promise<ChangeOutcome<T>> {
  const adopted = opts.adopt ?? [];
  for (let n = 0; ; n++) {
    const change = new ContentChange(repo.id, repo.blobStoreId, app.blobs, repo.format.digests);
    let value: T;
    let committed: CommittedChange;
    /** Staged blobs this attempt's transaction made blob rows of (or folded into existing ones). */
    const attached = new Map<StagedBlob, BlobRow>();
    try {
      value = await compute(change);
      const present = await checkWritePolicy(
        app,
        repo,
        opts.source,
        {
          puts: change.puts,
          tags: change.tagSets,
          deletes: change.assetDeletes.length + change.assetIdDeletes.length + change.componentDeletes.length + change.tagDeletes.length > 0,
        },
        opts.access,
      );
      // What a client's change writes records who made it: its content, and the metadata that change
      // derives (a docker tag's manifest, an npm packument after a publish), as Nexus shows them.
      // Changes the server makes by itself (maintenance, GC, proxy caches) record nobody.
      const uploader = opts.source === 'client' || opts.source === 'upload' ? opts.access?.uploader : undefined;
      if (uploader) for (const p of change.puts) if (!p.uploader) p.uploader = uploader;
      committed = await app.db.transaction((tx) => write(app, tx, repo, opts.source, change, present, attached));
    } catch (err) {
      await discardAll(app, change.staged);
      const e = isUniqueViolation(err) ? new Changed() : err;
      if (e instanceof Changed && opts.onConflict === 'skip') {
        await discardAll(app, adopted);
        return { value: undefined as T, committed: emptyChange(repo, opts.source), skipped: true };
      }
      if (e instanceof Changed && n < MAX_ATTEMPTS) {
        // A random pause that grows (capped), so two busy writers do not keep colliding.
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(250, 5 * 2 ** n)));
        continue;
      }
      await discardAll(app, adopted);
      if (e instanceof Changed) throw new AppError('CONFLICT', `Content of ${repo.name} is being changed concurrently; try again`);
      throw e;
    }
    // Staged bytes the commit did not use (a put skipped by `ifAbsent`) are not kept either.
    for (const s of [...adopted, ...change.staged]) await (attached.has(s) ? app.blobs.settle(s) : app.blobs.discard(s));
    const changed =
      committed.assetsPut.length + committed.assetsDeleted.length + committed.componentsDeleted.length + committed.tagsSet.length + committed.tagsDeleted.length > 0 ||
      change.propertySets.length + change.propertyDeletes.length > 0;
    // Nothing was there to change (a delete of what another request deleted first): nothing to record.
    if (changed)
      for (const event of change.auditEvents)
        await app.audit.record(opts.origin ?? SYSTEM, { ...event, attributes: { repository: repo.name, format: repo.format.name, ...event.attributes } });
    return { value, committed, skipped: false };
  }
}

function emptyChange(repo: Repository, source: ChangeSource): CommittedChange {
  return { repository: repo, source, assetsPut: [], assetsDeleted: [], componentsDeleted: [], tagsSet: [], tagsDeleted: [], created: [], blobs: new Map() };
}

async function discardAll(app: Stowage, staged: StagedBlob[]): Promise<void> {
  for (const s of staged) await app.blobs.discard(s);
}

/** The format keeps its derived metadata true; a failure is logged (the change itself stands). */
async function maintain(app: Stowage, c: CommittedChange): Promise<void> {
  const hook = c.repository.format.maintain;
  if (!hook) return;
  if (c.assetsPut.length + c.assetsDeleted.length + c.componentsDeleted.length === 0) return;
  try {
    await hook.call(c.repository.format, c, app);
  } catch (e) {
    app.log.error(`Maintenance of ${c.repository.format.name} repository '${c.repository.name}' after a ${c.source} change failed`, e);
  }
}

async function write(
  app: Stowage,
  tx: Tx,
  repo: Repository,
  source: ChangeSource,
  change: ContentChange,
  present: Set<string>,
  rows: Map<StagedBlob, BlobRow>,
): Promise<CommittedChange> {
  const out = emptyChange(repo, source);
  for (const x of change.expectations) {
    if ('path' in x) {
      // Locked (PostgreSQL: a concurrent writer waits, then sees the committed row and retries;
      // SQLite has one writer at a time). A first write racing another loses on the unique path.
      const row = await tx('assets').where({ repository_id: repo.id, path: x.path }).forUpdate().first('blob_id');
      if ((row ? Number(row.blob_id) : null) !== x.blobId) throw new Changed();
    } else {
      const row = await tx('tags').where({ repository_id: repo.id, scope: x.scope, name: x.tag }).forUpdate().first('target');
      if ((row ? String(row.target) : null) !== x.target) throw new Changed();
    }
  }
  if (change.checks.length > 0) {
    const read: ChangeReader = {
      asset: (path) => app.content.findAsset(repo.id, path, tx),
      assets: (f) => app.content.findAssets(repo.id, f, tx),
      tagTarget: async (scope, name) => {
        const row = await tx('tags').where({ repository_id: repo.id, scope, name }).first('target');
        return row ? String(row.target) : null;
      },
      tags: (o) => app.content.listTags(repo.id, o, tx),
    };
    for (const check of change.checks) if (!(await check(read))) throw new Changed();
  }
  // The policy was checked against what was there; something that appeared since is checked anew.
  if (policyApplies(repo, source)) {
    for (const p of change.puts) {
      if (p.kind === 'metadata' || p.ifAbsent || present.has(assetKey(p.path))) continue;
      if (await app.content.findAsset(repo.id, p.path, tx)) throw new Changed();
    }
    for (const t of change.tagSets) {
      if (!t.guarded || present.has(tagKey(t.scope, t.name))) continue;
      const row = await tx('tags').where({ repository_id: repo.id, scope: t.scope, name: t.name }).first('target');
      if (row && String(row.target) !== t.target) throw new Changed();
    }
  }
  if (change.componentDeletes.length > 0) {
    const r = await app.content.removeComponents(tx, repo.id, change.componentDeletes);
    out.componentsDeleted.push(...r.components);
    out.assetsDeleted.push(...r.assets);
  }
  const deleted = (r: { asset: AssetRow; component: ComponentRow | null } | undefined) => {
    if (!r) return;
    out.assetsDeleted.push(r.asset);
    if (r.component) out.componentsDeleted.push(r.component);
  };
  for (const id of change.assetIdDeletes) {
    const row = await tx('assets').where({ id, repository_id: repo.id }).first('path');
    if (row) deleted(await app.content.removeAsset(tx, repo.id, String(row.path)));
  }
  for (const path of change.assetDeletes) deleted(await app.content.removeAsset(tx, repo.id, path));
  for (const p of change.puts) {
    if (p.ifAbsent && (await app.content.findAsset(repo.id, p.path, tx))) continue;
    const blobId = await blobOf(app, tx, p, rows);
    const r = await app.content.putAsset(tx, {
      repositoryId: repo.id,
      path: p.path,
      blobId,
      contentType: p.contentType,
      kind: p.kind,
      component: p.component,
      attributes: p.attributes,
      lastVerified: p.lastVerified,
      uploader: p.uploader,
    });
    out.assetsPut.push(r.asset);
    if (r.created) out.created.push(p.path);
  }
  for (const b of rows.values()) out.blobs.set(b.id, b);
  for (const t of change.tagDeletes) if (await app.content.deleteTag(tx, repo.id, t.scope, t.name)) out.tagsDeleted.push(t);
  for (const t of change.tagSets) {
    // A tag expected absent is created, not upserted: of two changes that both saw it absent
    // (no row to lock), the second fails on the unique key and computes again, as for assets.
    const create = change.expectations.some((x) => !('path' in x) && x.scope === t.scope && x.tag === t.name && x.target === null);
    await app.content.setTag(tx, repo.id, t.scope, t.name, t.target, create);
    out.tagsSet.push({ scope: t.scope, name: t.name, target: t.target });
  }
  for (const p of change.propertyDeletes) await app.content.deleteProperty(p.scope, p.key, tx);
  for (const p of change.propertySets) await app.content.setProperty(p.scope, p.key, p.value, tx);
  return out;
}

/** The blob row a put refers to: its staged bytes attached, or an existing blob kept from GC. */
async function blobOf(app: Stowage, tx: Tx, p: PutAsset, rows: Map<StagedBlob, BlobRow>): Promise<number> {
  const src = p.source;
  if ('storageKey' in src) {
    let row = rows.get(src);
    if (!row) rows.set(src, (row = await app.blobs.attach(tx, src)));
    return row.id;
  }
  // Touched in this transaction: GC removes only rows untouched for its grace period.
  if ((await tx('blobs').where({ id: src.blobId }).update({ touched_at: now() })) !== 1) {
    throw new AppError('CONFLICT', `The content for ${p.path} is no longer stored; try again`);
  }
  return src.blobId;
}

/** The result of a committed put at `path`: the asset row, its blob, and whether it was created. */
export async function putResult(app: Stowage, committed: CommittedChange, path: string): Promise<{ asset: AssetRow; blob: BlobRow; created: boolean } | null> {
  const asset = committed.assetsPut.find((a) => a.path === path);
  if (!asset) return null;
  const blob = committed.blobs.get(asset.blob_id) ?? (await app.blobs.get(asset.blob_id));
  return blob ? { asset, blob, created: committed.created.includes(path) } : null;
}

export { ContentChange };

/**
 * Properties that belong to no repository (or to one that is gone: an upload session whose
 * repository was deleted), set and deleted in one transaction. No write policy, no hook: they are
 * not content.
 */
export async function changeProperties(
  app: Stowage,
  describe: (c: { set(scope: string, key: string, value: string): void; delete(scope: string, key: string): void }) => void,
): Promise<void> {
  const ops: Array<{ scope: string; key: string; value?: string }> = [];
  describe({ set: (scope, key, value) => void ops.push({ scope, key, value }), delete: (scope, key) => void ops.push({ scope, key }) });
  if (ops.length === 0) return;
  await app.db.transaction(async (tx) => {
    for (const o of ops) {
      if (o.value === undefined) await app.content.deleteProperty(o.scope, o.key, tx);
      else await app.content.setProperty(o.scope, o.key, o.value, tx);
    }
  });
}
