import type { Db, Tx } from '../db/db.js';
import { fromJson, isPostgres, now, num, readCommittedRow, readCommittedTables, toJson } from '../db/db.js';
import { badRequest } from '../errors.js';
import { DownloadRecords } from './download-records.js';
import type { AssetInput, AssetRow, AssetView, ComponentInput, ComponentRow, DirEntry, Page } from './types.js';
import { normaliseRow, type BlobRow } from '../blob/blob-service.js';

type Q = Db | Tx;

/** Rows of findAssetWithBlob as converted, by the committed reader's kept row. */
const converted = new WeakMap<object, { asset: AssetRow; blob: BlobRow }>();

function asset(r: Record<string, unknown>): AssetRow {
  return {
    id: num(r.id),
    repository_id: num(r.repository_id),
    path: String(r.path),
    component_id: r.component_id === null || r.component_id === undefined ? null : num(r.component_id),
    blob_id: num(r.blob_id),
    content_type: String(r.content_type),
    kind: r.kind as AssetRow['kind'],
    attributes: fromJson(r.attributes),
    created_at: num(r.created_at),
    updated_at: num(r.updated_at),
    last_downloaded: r.last_downloaded === null || r.last_downloaded === undefined ? null : num(r.last_downloaded),
    last_verified: r.last_verified === null || r.last_verified === undefined ? null : num(r.last_verified),
    uploader: typeof r.uploader === 'string' ? r.uploader : null,
    uploader_ip: typeof r.uploader_ip === 'string' ? r.uploader_ip : null,
  };
}

function assetView(r: Record<string, unknown>): AssetView {
  return {
    ...asset(r),
    size: num(r.size),
    sha256: String(r.sha256),
    sha1: r.sha1 == null ? null : String(r.sha1),
    md5: r.md5 == null ? null : String(r.md5),
    sha512: r.sha512 == null ? null : String(r.sha512),
    blake2b256: r.blake2b256 == null ? null : String(r.blake2b256),
    blob_created_at: num(r.blob_created_at),
  };
}

function component(r: Record<string, unknown>): ComponentRow {
  return {
    id: num(r.id),
    repository_id: num(r.repository_id),
    namespace: String(r.namespace ?? ''),
    name: String(r.name),
    version: String(r.version ?? ''),
    attributes: fromJson(r.attributes),
    created_at: num(r.created_at),
    updated_at: num(r.updated_at),
  };
}

/** Continuation tokens are opaque to clients: the last id seen, base64url. */
export function encodeToken(lastId: number): string {
  return Buffer.from(`id:${lastId}`).toString('base64url');
}
export function decodeToken(token: string | undefined | null): number {
  if (!token) return 0;
  const m = /^id:(\d+)$/.exec(Buffer.from(token, 'base64url').toString());
  if (!m) throw badRequest('Invalid continuationToken', { field: 'continuationToken' });
  return Number(m[1]);
}

const ASSET_VIEW_COLUMNS = [
  'assets.*',
  'blobs.size as size',
  'blobs.sha256 as sha256',
  'blobs.sha1 as sha1',
  'blobs.md5 as md5',
  'blobs.sha512 as sha512',
  'blobs.blake2b256 as blake2b256',
  'blobs.created_at as blob_created_at',
];

const BLOB_FIELDS = ['id', 'store_id', 'sha256', 'sha1', 'md5', 'sha512', 'blake2b256', 'size', 'storage_key', 'created_at', 'touched_at'] as const;
const BLOB_COLUMNS = BLOB_FIELDS.map((f) => `blobs.${f} as blob__${f}`);

function blobOf(r: Record<string, unknown>): BlobRow {
  const v = (f: (typeof BLOB_FIELDS)[number]) => r[`blob__${f}`];
  const text = (f: 'sha1' | 'md5' | 'sha512' | 'blake2b256') => (v(f) === null || v(f) === undefined ? null : String(v(f)));
  return {
    id: num(v('id')),
    store_id: num(v('store_id')),
    sha256: String(v('sha256')),
    sha1: text('sha1'),
    md5: text('md5'),
    sha512: text('sha512'),
    blake2b256: text('blake2b256'),
    size: num(v('size')),
    storage_key: String(v('storage_key')),
    created_at: num(v('created_at')),
    touched_at: num(v('touched_at')),
  };
}

export interface AssetQuery {
  repositoryIds?: number[];
  pathPrefix?: string;
  path?: string;
  componentId?: number;
  sha256?: string;
  sha1?: string;
  md5?: string;
  sha512?: string;
  kind?: string;
  /** Only assets of a component matching these (Nexus search: group, name, version, keyword). */
  component?: ComponentFilter;
}

/** Which assets `findAssets` returns. */
export interface AssetFilter {
  pathPrefix?: string;
  /** SQL LIKE pattern (`%` any run of characters). */
  pathLike?: string;
  paths?: string[];
  /** Created or updated at or after this time (ms). */
  changedSince?: number;
}

/** Nexus search over components: `*` wildcards in name/namespace/version, a keyword over all three. */
export interface ComponentFilter {
  name?: string;
  namespace?: string;
  version?: string;
  keyword?: string;
  /** Component attributes by dotted path (`maven2.baseVersion`): exact, or `*` wildcards. */
  attributes?: Record<string, string>;
  /**
   * Asset attributes by dotted path (`maven2.extension`): a component matches when one of its
   * assets does; asset searches and the assets listed with a component keep only those that do.
   */
  assetAttributes?: Record<string, string>;
}

/**
 * The only writer of components, assets and tags. Writes take the caller's transaction so a
 * content write is one commit together with its blob row.
 */
export class ContentService {
  private readonly downloads: DownloadRecords;

  constructor(private readonly db: Db) {
    this.downloads = new DownloadRecords(db);
  }

  async findAsset(repositoryId: number, path: string, q: Q = this.db): Promise<AssetRow | undefined> {
    // The hot lookup of every content GET: outside a transaction, on SQLite, the committed state
    // through the read-only connection (no query builder, no pool); elsewhere knex.
    const fast = q === this.db ? readCommittedRow(this.db, 'select * from assets where repository_id = ? and path = ? limit 1', [repositoryId, path]) : null;
    const r = fast !== null ? fast : await q('assets').where({ repository_id: repositoryId, path }).first();
    return r ? asset(r) : undefined;
  }

  /**
   * The asset at `path` with its blob's row, in one indexed lookup of committed data; `null` when
   * this database cannot answer it so (PostgreSQL): ask queryAssetWithBlob. Both rows are frozen
   * and shared between callers until the next commit.
   */
  findAssetWithBlob(repositoryId: number, path: string): { asset: AssetRow; blob: BlobRow } | undefined | null {
    const r = readCommittedTables(this.db, 'select * from assets join blobs on blobs.id = assets.blob_id where assets.repository_id = ? and assets.path = ? limit 1', [
      repositoryId,
      path,
    ]);
    if (!r) return r;
    // A kept row (the same frozen object until the next commit) is converted once: parsing the
    // attributes' JSON again for every GET was ~2.5% of a group GET's CPU. Shared, so frozen.
    let found = converted.get(r);
    if (!found) {
      const a = asset(r.assets);
      Object.freeze(a.attributes);
      found = Object.freeze({ asset: Object.freeze(a), blob: Object.freeze(normaliseRow(r.blobs as unknown as BlobRow)) });
      converted.set(r, found);
    }
    return found;
  }

  /**
   * The sha256 of the blob at `path` (null: no asset there), in one indexed lookup of committed
   * data: enough to serve a document already rendered from that blob.
   */
  async blobDigestAt(repositoryId: number, path: string): Promise<string | null> {
    const sql = 'select blobs.sha256 from assets join blobs on blobs.id = assets.blob_id where assets.repository_id = ? and assets.path = ? limit 1';
    const fast = readCommittedRow(this.db, sql, [repositoryId, path]);
    const row =
      fast !== null
        ? fast
        : ((await this.db('assets').join('blobs', 'blobs.id', 'assets.blob_id').where({ 'assets.repository_id': repositoryId, 'assets.path': path }).first('blobs.sha256')) as
            Record<string, unknown> | undefined);
    return row ? String(row.sha256) : null;
  }

  /** An asset and its blob row in one query (what every read of a path needs; findAssetWithBlob's fallback). */
  async queryAssetWithBlob(repositoryId: number, path: string): Promise<{ asset: AssetRow; blob: BlobRow } | undefined> {
    const r = await this.db('assets')
      .join('blobs', 'blobs.id', 'assets.blob_id')
      .where({ 'assets.repository_id': repositoryId, 'assets.path': path })
      .first(['assets.*', ...BLOB_COLUMNS]);
    return r ? { asset: asset(r), blob: blobOf(r) } : undefined;
  }

  async findAssetView(repositoryId: number, path: string): Promise<AssetView | undefined> {
    const r = await this.db('assets').join('blobs', 'blobs.id', 'assets.blob_id').where({ 'assets.repository_id': repositoryId, 'assets.path': path }).first(ASSET_VIEW_COLUMNS);
    return r ? assetView(r) : undefined;
  }

  async assetById(id: number): Promise<AssetView | undefined> {
    const r = await this.db('assets').join('blobs', 'blobs.id', 'assets.blob_id').where({ 'assets.id': id }).first(ASSET_VIEW_COLUMNS);
    return r ? assetView(r) : undefined;
  }

  async componentById(id: number): Promise<ComponentRow | undefined> {
    const r = await this.db('components').where({ id }).first();
    return r ? component(r) : undefined;
  }

  /** Finds or creates the component (namespace, name, version) in the repository. */
  async upsertComponent(tx: Tx, repositoryId: number, c: ComponentInput): Promise<ComponentRow> {
    const key = { repository_id: repositoryId, namespace: c.namespace ?? '', name: c.name, version: c.version ?? '' };
    const t = now();
    const existing = await tx('components').where(key).first();
    if (existing) {
      if (c.attributes) {
        const attributes = { ...fromJson(existing.attributes), ...c.attributes };
        await tx('components')
          .where({ id: existing.id })
          .update({ attributes: toJson(attributes), updated_at: t });
        return component({ ...existing, attributes: toJson(attributes), updated_at: t });
      }
      return component(existing);
    }
    const [row] = await tx('components')
      .insert({ ...key, attributes: toJson(c.attributes ?? {}), created_at: t, updated_at: t })
      .returning('*');
    return component(row);
  }

  /**
   * Creates or replaces the asset at `path`. Returns the new row and the blob id it replaced
   * (whose bytes GC reclaims once nothing else references them).
   */
  async putAsset(tx: Tx, input: AssetInput): Promise<{ asset: AssetRow; replacedBlobId: number | null; created: boolean }> {
    const t = now();
    const comp = input.component ? await this.upsertComponent(tx, input.repositoryId, input.component) : null;
    const existing = await this.findAsset(input.repositoryId, input.path, tx);
    // Without an uploader (proxy fetch, generated metadata) a replaced content has none; the same content keeps its.
    const kept = existing && existing.blob_id === input.blobId ? existing : undefined;
    const fields = {
      component_id: comp ? comp.id : (existing?.component_id ?? null),
      blob_id: input.blobId,
      content_type: input.contentType,
      kind: input.kind ?? 'content',
      attributes: toJson({ ...(existing?.attributes ?? {}), ...(input.attributes ?? {}) }),
      updated_at: t,
      last_verified: input.lastVerified ?? existing?.last_verified ?? null,
      uploader: input.uploader ? input.uploader.userId : (kept?.uploader ?? null),
      uploader_ip: input.uploader ? input.uploader.ip : (kept?.uploader_ip ?? null),
    };
    if (existing) {
      await tx('assets').where({ id: existing.id }).update(fields);
      if (existing.component_id && existing.component_id !== fields.component_id) await this.dropComponentIfEmpty(tx, existing.component_id);
      return {
        asset: asset({ ...existing, ...fields }),
        replacedBlobId: existing.blob_id !== input.blobId ? existing.blob_id : null,
        created: false,
      };
    }
    const [row] = await tx('assets')
      .insert({ repository_id: input.repositoryId, path: input.path, ...fields, created_at: t, last_downloaded: null })
      .returning('*');
    return { asset: asset(row), replacedBlobId: null, created: true };
  }

  async touchVerified(assetId: number, at = now()): Promise<void> {
    await this.db('assets').where({ id: assetId }).update({ last_verified: at });
  }

  /** Records a download, off the hot path (see DownloadRecords). */
  async markDownloaded(a: AssetRow): Promise<void> {
    this.downloads.mark(a);
  }

  /** Writes the downloads recorded so far (cleanup calls it before it judges last downloads). */
  async flushDownloads(): Promise<void> {
    await this.downloads.flush();
  }

  /** Deletes one asset (and its component when it was the last asset). */
  async deleteAsset(repositoryId: number, path: string, tx?: Tx): Promise<AssetRow | undefined> {
    const run = async (q: Tx) => {
      const a = await this.findAsset(repositoryId, path, q);
      if (!a) return undefined;
      await q('assets').where({ id: a.id }).delete();
      if (a.component_id) await this.dropComponentIfEmpty(q, a.component_id);
      return a;
    };
    return tx ? run(tx) : this.db.transaction(run);
  }

  async deleteAssetById(id: number): Promise<AssetRow | undefined> {
    return this.db.transaction(async (tx) => {
      const r = await tx('assets').where({ id }).first();
      if (!r) return undefined;
      const a = asset(r);
      await tx('assets').where({ id }).delete();
      if (a.component_id) await this.dropComponentIfEmpty(tx, a.component_id);
      return a;
    });
  }

  /**
   * Inside the caller's transaction: deletes the asset at `path`, and its component when it was
   * the component's last asset. Returns what went (for the format's maintenance hook).
   */
  async removeAsset(tx: Tx, repositoryId: number, path: string): Promise<{ asset: AssetRow; component: ComponentRow | null } | undefined> {
    const a = await this.findAsset(repositoryId, path, tx);
    if (!a) return undefined;
    await tx('assets').where({ id: a.id }).delete();
    return { asset: a, component: a.component_id ? await this.dropComponentIfEmpty(tx, a.component_id) : null };
  }

  /** Inside the caller's transaction: deletes a component with all its assets; what went, or undefined. */
  async removeComponent(tx: Tx, id: number): Promise<{ component: ComponentRow; assets: AssetRow[] } | undefined> {
    const r = await tx('components').where({ id }).first();
    if (!r) return undefined;
    const assets = (await tx('assets').where({ component_id: id }).select('*')).map(asset);
    await tx('assets').where({ component_id: id }).delete();
    await tx('components').where({ id }).delete();
    return { component: component(r), assets };
  }

  /**
   * Inside the caller's transaction: deletes the repository's components among `ids` with all
   * their assets, a few statements per 500 (cleanup deletes thousands); what went.
   */
  async removeComponents(tx: Tx, repositoryId: number, ids: number[]): Promise<{ components: ComponentRow[]; assets: AssetRow[] }> {
    const out: { components: ComponentRow[]; assets: AssetRow[] } = { components: [], assets: [] };
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const comps = (await tx('components').whereIn('id', chunk).where({ repository_id: repositoryId }).select('*')).map(component);
      if (comps.length === 0) continue;
      const own = comps.map((c) => c.id);
      out.assets.push(...(await tx('assets').whereIn('component_id', own).select('*')).map(asset));
      await tx('assets').whereIn('component_id', own).delete();
      await tx('components').whereIn('id', own).delete();
      out.components.push(...comps);
    }
    return out;
  }

  async findComponent(repositoryId: number, c: ComponentInput, q: Q = this.db): Promise<ComponentRow | undefined> {
    const r = await q('components')
      .where({ repository_id: repositoryId, namespace: c.namespace ?? '', name: c.name, version: c.version ?? '' })
      .first();
    return r ? component(r) : undefined;
  }

  /** Deletes a component with all its assets. */
  async deleteComponent(id: number): Promise<ComponentRow | undefined> {
    return this.db.transaction(async (tx) => {
      const r = await tx('components').where({ id }).first();
      if (!r) return undefined;
      await tx('assets').where({ component_id: id }).delete();
      await tx('components').where({ id }).delete();
      return component(r);
    });
  }

  /** Deletes every asset under a path prefix (a folder). Returns how many. */
  async deletePrefix(repositoryId: number, prefix: string): Promise<number> {
    return this.db.transaction(async (tx) => {
      const rows = await wherePrefix(this.db, tx('assets').where({ repository_id: repositoryId }), 'path', prefix).select('id', 'component_id');
      if (rows.length === 0) return 0;
      const ids = rows.map((r) => num(r.id));
      for (let i = 0; i < ids.length; i += 500)
        await tx('assets')
          .whereIn('id', ids.slice(i, i + 500))
          .delete();
      const comps = [
        ...new Set(
          rows
            .map((r) => r.component_id)
            .filter((c) => c !== null)
            .map(num),
        ),
      ];
      for (const c of comps) await this.dropComponentIfEmpty(tx, c);
      return ids.length;
    });
  }

  /** Deletes the component when no asset is left in it; returns it then. */
  private async dropComponentIfEmpty(tx: Tx, componentId: number): Promise<ComponentRow | null> {
    const left = await tx('assets').where({ component_id: componentId }).first('id');
    if (left) return null;
    const r = await tx('components').where({ id: componentId }).first();
    if (!r) return null;
    await tx('components').where({ id: componentId }).delete();
    return component(r);
  }

  async listAssets(q: AssetQuery, token: string | null | undefined, limit: number): Promise<Page<AssetView>> {
    const after = decodeToken(token);
    const query = this.db('assets').join('blobs', 'blobs.id', 'assets.blob_id').where('assets.id', '>', after);
    if (q.repositoryIds) query.whereIn('assets.repository_id', q.repositoryIds);
    if (q.path !== undefined) query.where('assets.path', q.path);
    if (q.pathPrefix) wherePrefix(this.db, query, 'assets.path', q.pathPrefix);
    if (q.componentId !== undefined) query.where('assets.component_id', q.componentId);
    if (q.sha256) query.where('blobs.sha256', q.sha256.toLowerCase());
    if (q.sha1) query.where('blobs.sha1', q.sha1.toLowerCase());
    if (q.md5) query.where('blobs.md5', q.md5.toLowerCase());
    if (q.sha512) query.where('blobs.sha512', q.sha512.toLowerCase());
    if (q.kind) query.where('assets.kind', q.kind);
    if (q.component) {
      const { assetAttributes, ...component } = q.component;
      if (assetAttributes) filterAttributes(this.db, query, 'assets.attributes', assetAttributes);
      if (Object.values(component).some((v) => v !== undefined)) query.whereIn('assets.component_id', filterComponents(this.db, this.db('components').select('id'), component));
    }
    const rows = (
      await query
        .orderBy('assets.id')
        .limit(limit + 1)
        .select(ASSET_VIEW_COLUMNS)
    ).map(assetView);
    const more = rows.length > limit;
    const items = rows.slice(0, limit);
    return { items, continuationToken: more ? encodeToken(items[items.length - 1].id) : null };
  }

  /** The assets of components (only those with these attributes, when given). */
  async assetsOfComponents(componentIds: number[], attributes?: Record<string, string>): Promise<AssetView[]> {
    if (componentIds.length === 0) return [];
    const out: AssetView[] = [];
    for (let i = 0; i < componentIds.length; i += 500) {
      const query = this.db('assets')
        .join('blobs', 'blobs.id', 'assets.blob_id')
        .whereIn('assets.component_id', componentIds.slice(i, i + 500));
      if (attributes) filterAttributes(this.db, query, 'assets.attributes', attributes);
      const rows = await query.orderBy('assets.id').select(ASSET_VIEW_COLUMNS);
      out.push(...rows.map(assetView));
    }
    return out;
  }

  async listComponents(
    q: ComponentFilter & { repositoryIds?: number[]; ids?: number[]; sha256?: string; sha1?: string; md5?: string; sha512?: string },
    token: string | null | undefined,
    limit: number,
  ): Promise<Page<ComponentRow>> {
    const after = decodeToken(token);
    const query = this.db('components').where('components.id', '>', after);
    if (q.repositoryIds) query.whereIn('repository_id', q.repositoryIds);
    if (q.ids) query.whereIn('id', q.ids);
    filterComponents(this.db, query, q);
    // Components with an asset of that digest (Nexus search by sha256/sha1/md5).
    for (const alg of ['sha256', 'sha1', 'md5', 'sha512'] as const) {
      const v = q[alg];
      if (!v) continue;
      query.whereExists(
        this.db('assets')
          .join('blobs', 'blobs.id', 'assets.blob_id')
          .whereRaw('assets.component_id = components.id')
          .where(`blobs.${alg}`, v.toLowerCase())
          .select(this.db.raw('1')),
      );
    }
    const rows = (await query.orderBy('id').limit(limit + 1)).map(component);
    const more = rows.length > limit;
    const items = rows.slice(0, limit);
    return { items, continuationToken: more ? encodeToken(items[items.length - 1].id) : null };
  }

  /** Immediate children of a folder, for browsing: sub-folders first, then files. */
  async listChildren(repositoryId: number, dir: string, limit = 10_000): Promise<DirEntry[]> {
    const prefix = dir === '' || dir.endsWith('/') ? dir : dir + '/';
    const rows = await wherePrefix(this.db, this.db('assets').join('blobs', 'blobs.id', 'assets.blob_id').where({ 'assets.repository_id': repositoryId }), 'assets.path', prefix)
      .orderBy('assets.path')
      .limit(limit)
      .select(ASSET_VIEW_COLUMNS);
    const dirs = new Map<string, DirEntry>();
    const files: DirEntry[] = [];
    for (const r of rows) {
      const a = assetView(r);
      const rest = a.path.slice(prefix.length);
      const slash = rest.indexOf('/');
      if (slash >= 0) {
        const name = rest.slice(0, slash);
        if (!dirs.has(name)) dirs.set(name, { name, path: prefix + name + '/', directory: true });
      } else if (rest) {
        files.push({ name: rest, path: a.path, directory: false, asset: a });
      }
    }
    return [...dirs.values(), ...files];
  }

  /**
   * A repository's assets (joined with their blob's size and digests) by path: a prefix, a LIKE
   * pattern (`v2/%/manifests/%`), a list of paths, and/or created or updated since a time.
   */
  async findAssets(repositoryId: number, f: AssetFilter, q: Q = this.db): Promise<AssetView[]> {
    const out: AssetView[] = [];
    const run = async (paths?: string[]) => {
      const query = q('assets').join('blobs', 'blobs.id', 'assets.blob_id').where('assets.repository_id', repositoryId);
      if (f.pathPrefix) wherePrefix(this.db, query, 'assets.path', f.pathPrefix);
      if (f.pathLike) query.andWhere('assets.path', 'like', f.pathLike);
      if (paths) query.whereIn('assets.path', paths);
      if (f.changedSince !== undefined) query.andWhere((w) => w.where('assets.created_at', '>=', f.changedSince!).orWhere('assets.updated_at', '>=', f.changedSince!));
      out.push(...(await query.orderBy('assets.id').select(ASSET_VIEW_COLUMNS)).map(assetView));
    };
    if (!f.paths) await run();
    else for (let i = 0; i < f.paths.length; i += 500) await run(f.paths.slice(i, i + 500));
    return out;
  }

  /** Every tag of a repository (optionally only those pointing at `target`). */
  async listTags(repositoryId: number, opts: { scope?: string; target?: string } = {}, q: Q = this.db): Promise<Array<{ scope: string; name: string; target: string }>> {
    const query = q('tags').where({ repository_id: repositoryId });
    if (opts.scope !== undefined) query.andWhere({ scope: opts.scope });
    if (opts.target !== undefined) query.andWhere({ target: opts.target });
    return (await query.orderBy(['scope', 'name']).select('scope', 'name', 'target')).map((r) => ({ scope: String(r.scope), name: String(r.name), target: String(r.target) }));
  }

  /** Tags: a name within a scope (image, package) pointing at a target (digest, version). */
  /** `create`: the tag must not exist yet (a concurrent first write fails on the unique key instead of being overwritten). */
  async setTag(tx: Q, repositoryId: number, scope: string, name: string, target: string, create = false): Promise<void> {
    const t = now();
    if (create) {
      await tx('tags').insert({ repository_id: repositoryId, scope, name, target, updated_at: t });
      return;
    }
    // One statement, so concurrent first writes of a tag cannot clash on the unique key.
    await tx('tags').insert({ repository_id: repositoryId, scope, name, target, updated_at: t }).onConflict(['repository_id', 'scope', 'name']).merge({ target, updated_at: t });
  }

  async getTags(repositoryId: number, scope: string): Promise<Array<{ name: string; target: string; updated_at: number }>> {
    return (await this.db('tags').where({ repository_id: repositoryId, scope }).orderBy('name').select('name', 'target', 'updated_at')).map((r) => ({
      name: String(r.name),
      target: String(r.target),
      updated_at: num(r.updated_at),
    }));
  }

  /**
   * The target of one tag, or null. The hot lookup of every pull by tag: on SQLite it reads the
   * committed state through the read-only connection (no query builder, no pool), elsewhere knex.
   */
  async tagTarget(repositoryId: number, scope: string, name: string): Promise<string | null> {
    const fast = readCommittedRow(this.db, 'select target from tags where repository_id = ? and scope = ? and name = ? limit 1', [repositoryId, scope, name]);
    const row = fast !== null ? fast : ((await this.db('tags').where({ repository_id: repositoryId, scope, name }).first('target')) as Record<string, unknown> | undefined);
    return row ? String(row.target) : null;
  }

  async deleteTag(tx: Q, repositoryId: number, scope: string, name: string): Promise<boolean> {
    return (await tx('tags').where({ repository_id: repositoryId, scope, name }).delete()) > 0;
  }

  async getProperty(scope: string, key: string): Promise<string | undefined> {
    const r = await this.db('properties').where({ scope, key }).first('value');
    return r ? String(r.value) : undefined;
  }

  /** Every property of a scope (small scopes: upload sessions and the like). */
  async listProperties(scope: string): Promise<Array<{ key: string; value: string }>> {
    return (await this.db('properties').where({ scope }).select('key', 'value')).map((r) => ({ key: String(r.key), value: String(r.value) }));
  }

  async deleteProperty(scope: string, key: string, q: Q = this.db): Promise<boolean> {
    return (await q('properties').where({ scope, key }).delete()) > 0;
  }

  async setProperty(scope: string, key: string, value: string, q: Q = this.db): Promise<void> {
    const t = now();
    const n = await q('properties').where({ scope, key }).update({ value, updated_at: t });
    if (n === 0) await q('properties').insert({ scope, key, value, updated_at: t });
  }
}

/** SQL LIKE escaping: `%`, `_` and `\` in user paths are literal. */
export function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => '\\' + c);
}

/**
 * Case-sensitive prefix match that can use the index: GLOB on SQLite (whose LIKE ignores case),
 * LIKE with an explicit escape on PostgreSQL.
 */
export function wherePrefix<Q extends import('knex').Knex.QueryBuilder>(db: Db, query: Q, column: string, prefix: string): Q {
  if (prefix === '') return query;
  if (isPostgres(db)) return query.whereRaw(`${column} like ? escape '\\'`, [escapeLike(prefix) + '%']) as Q;
  return query.whereRaw(`${column} glob ?`, [prefix.replace(/[*?[]/g, (c) => `[${c}]`) + '*']) as Q;
}

/** Applies a component search filter to a query over `components`. */
function filterComponents<Q extends import('knex').Knex.QueryBuilder>(db: Db, query: Q, q: ComponentFilter): Q {
  if (q.attributes) filterAttributes(db, query, 'components.attributes', q.attributes);
  if (q.assetAttributes) {
    const assets = db('assets').whereRaw('assets.component_id = components.id').select(db.raw('1'));
    query.whereExists(filterAttributes(db, assets, 'assets.attributes', q.assetAttributes));
  }
  if (q.name !== undefined) applyPattern(query, 'components.name', q.name);
  if (q.namespace !== undefined) applyPattern(query, 'components.namespace', q.namespace);
  if (q.version !== undefined) applyPattern(query, 'components.version', q.version);
  if (q.keyword) {
    const k = `%${escapeLike(q.keyword.toLowerCase())}%`;
    query.where((w) =>
      w
        .whereRaw(`lower(components.name) like ? escape '\\'`, [k])
        .orWhereRaw(`lower(components.namespace) like ? escape '\\'`, [k])
        .orWhereRaw(`lower(components.version) like ? escape '\\'`, [k]),
    );
  }
  return query;
}

/**
 * Conditions on values inside a JSON attributes column (stored as text), by dotted path; the
 * path's keys are checked (they become SQL), the values are bound.
 */
function filterAttributes<Q extends import('knex').Knex.QueryBuilder>(db: Db, query: Q, column: string, attributes: Record<string, string>): Q {
  for (const [dotted, value] of Object.entries(attributes)) {
    const keys = dotted.split('.');
    if (keys.some((k) => !/^[A-Za-z0-9_-]+$/.test(k))) throw new Error(`Invalid attribute path: ${dotted}`);
    const [expr, bindings] = isPostgres(db)
      ? [`jsonb_extract_path_text(${column}::jsonb, ${keys.map(() => '?').join(', ')})`, keys]
      : [`json_extract(${column}, ?)`, ['$.' + keys.map((k) => `"${k}"`).join('.')]];
    if (value.includes('*')) query.whereRaw(`${expr} like ? escape '\\'`, [...bindings, escapeLike(value).replace(/\*/g, '%')]);
    else query.whereRaw(`${expr} = ?`, [...bindings, value]);
  }
  return query;
}

/** Nexus search semantics: `*` is a wildcard, otherwise exact. */
function applyPattern(query: import('knex').Knex.QueryBuilder, column: string, value: string): void {
  if (value.includes('*')) {
    query.whereRaw(`${column} like ? escape '\\'`, [escapeLike(value).replace(/\*/g, '%')]);
  } else {
    query.where(column, value);
  }
}
