import type { Db } from '../db/db.js';
import { fromJson, isUniqueViolation, now, num, toJson } from '../db/db.js';
import { AppError, badRequest, conflict, notFound } from '../errors.js';
import type { Stowage } from '../stowage.js';
import { parseRepositoryConfig } from './config-schema.js';
import type { FormatPlugin } from './format.js';
import { ProxyRepository } from './proxy-repository.js';
import { GroupRepository, HostedRepository, Repository } from './repository.js';
import type { RepositoryConfig, RepositoryType } from './types.js';

interface RepoRow {
  id: number;
  name: string;
  format: string;
  type: RepositoryType;
  blob_store_id: number;
  online: boolean;
  attributes: Record<string, unknown>;
  updated_at: number;
}

/** How long a node trusts its cached configuration before checking the database for changes. */
const REVALIDATE_MS = 1000;

/**
 * Repository configurations and their runtime objects. Every node caches them and notices other
 * nodes' changes through a cheap fingerprint query (count + newest update), at most once a second.
 */
export class RepositoryManager {
  private cache = new Map<string, Repository>();
  private fingerprint = '';
  private checkedAt = 0;
  private loading?: Promise<void>;
  /** Checks a configuration before create/update writes it (dedicated listener ports…); throws a 400. */
  readonly validators: Array<(cfg: RepositoryConfig) => Promise<void>> = [];
  /** Write rows that belong to a configuration (cleanup policy links) inside its create/update transaction. */
  readonly linkWriters: Array<(tx: import('../db/db.js').Tx, repositoryId: number, cfg: RepositoryConfig) => Promise<void>> = [];
  /** Called after every change made through this manager (listeners re-sync). */
  readonly changeListeners: Array<() => Promise<void>> = [];

  constructor(
    private readonly db: Db,
    private readonly formats: Map<string, FormatPlugin>,
    private readonly app: Stowage,
  ) {}

  formatPlugin(name: string): FormatPlugin {
    const f = this.formats.get(name);
    if (!f) throw notFound(`Unknown format '${name}'`);
    return f;
  }

  private async currentFingerprint(): Promise<string> {
    const r = await this.db('repositories').count({ n: '*' }).sum({ s: 'updated_at' }).max({ m: 'id' }).first();
    return `${num(r?.n ?? 0)}:${num(r?.s ?? 0)}:${num(r?.m ?? 0)}`;
  }

  private async reload(): Promise<void> {
    const rows = await this.db('repositories').select();
    const stores = new Map((await this.db('blob_stores').select('id', 'name')).map((s) => [num(s.id), String(s.name)]));
    const next = new Map<string, Repository>();
    for (const r of rows) {
      const row: RepoRow = { ...r, id: num(r.id), blob_store_id: num(r.blob_store_id), online: !!r.online, attributes: fromJson(r.attributes), updated_at: num(r.updated_at) };
      const plugin = this.formats.get(row.format);
      if (!plugin) continue; // A format no longer compiled in: its repositories are not served.
      const config = { ...row.attributes, name: row.name, format: row.format, type: row.type, online: row.online } as RepositoryConfig;
      config.storage = { ...(config.storage ?? {}), blobStoreName: stores.get(row.blob_store_id) ?? '' } as RepositoryConfig['storage'];
      next.set(row.name, this.instantiate(row.id, config, row.blob_store_id, plugin));
    }
    this.cache = next;
  }

  private instantiate(id: number, config: RepositoryConfig, blobStoreId: number, plugin: FormatPlugin): Repository {
    switch (config.type) {
      case 'hosted':
        return new HostedRepository(id, config, blobStoreId, plugin, this.app);
      case 'proxy':
        return new ProxyRepository(id, config, blobStoreId, plugin, this.app);
      case 'group':
        return new GroupRepository(id, config, blobStoreId, plugin, this.app);
    }
  }

  private async fresh(): Promise<void> {
    if (Date.now() - this.checkedAt < REVALIDATE_MS) return;
    if (!this.loading) {
      this.loading = (async () => {
        const fp = await this.currentFingerprint();
        if (fp !== this.fingerprint) {
          await this.reload();
          this.fingerprint = fp;
        }
        this.checkedAt = Date.now();
      })().finally(() => (this.loading = undefined));
    }
    await this.loading;
  }

  /** Drops the cache so the next read sees the database (after a local change). */
  invalidate(): void {
    this.checkedAt = 0;
    this.fingerprint = '';
  }

  private async changed(): Promise<void> {
    this.invalidate();
    for (const l of this.changeListeners) await l();
  }

  private async validate(cfg: RepositoryConfig): Promise<void> {
    for (const v of this.validators) await v(cfg);
  }

  async find(name: string): Promise<Repository | undefined> {
    await this.fresh();
    return this.cache.get(name);
  }

  async require(name: string): Promise<Repository> {
    const r = await this.find(name);
    if (!r) throw notFound(`Repository '${name}' not found`);
    return r;
  }

  async list(): Promise<Repository[]> {
    await this.fresh();
    return [...this.cache.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** Validates a Nexus-shaped body for (format, type): defaults filled, errors name the field. */
  parse(format: string, type: RepositoryType, body: unknown): RepositoryConfig {
    const plugin = this.formatPlugin(format);
    return parseRepositoryConfig(format, type, body, plugin.sections ?? [], plugin.proxyDefaults);
  }

  private async checkGroup(cfg: RepositoryConfig): Promise<void> {
    if (cfg.type !== 'group') return;
    const members = cfg.group?.memberNames ?? [];
    if (new Set(members).size !== members.length) throw badRequest('group.memberNames: a member is listed twice', { field: 'group.memberNames' });
    for (const m of members) {
      if (m === cfg.name) throw badRequest(`group.memberNames: a group cannot contain itself`, { field: 'group.memberNames' });
      const repo = await this.find(m);
      if (!repo) throw badRequest(`group.memberNames: repository '${m}' does not exist`, { field: 'group.memberNames' });
      if (repo.format.name !== cfg.format) {
        throw badRequest(`group.memberNames: '${m}' is a ${repo.format.name} repository, not ${cfg.format}`, { field: 'group.memberNames' });
      }
    }
    // Cycle: walking down from every member must never reach this group.
    const seen = new Set<string>();
    const walk = async (name: string, trail: string[]): Promise<void> => {
      if (name === cfg.name) throw badRequest(`group.memberNames: cycle ${[cfg.name, ...trail].join(' → ')}`, { field: 'group.memberNames' });
      if (seen.has(name)) return;
      seen.add(name);
      const r = await this.find(name);
      if (r?.type === 'group') for (const m of r.config.group?.memberNames ?? []) await walk(m, [...trail, m]);
    };
    for (const m of members) await walk(m, [m]);
    const w = cfg.group?.writableMember;
    if (w) {
      if (!members.includes(w)) throw badRequest(`group.writableMember: '${w}' is not a member of the group`, { field: 'group.writableMember' });
      const wr = await this.find(w);
      if (wr?.type !== 'hosted') throw badRequest(`group.writableMember: '${w}' must be a hosted repository`, { field: 'group.writableMember' });
    }
  }

  /** A new updated_at that always differs from the old one, so other nodes' fingerprints change. */
  private bump(q: Db) {
    const t = now();
    return q.raw('(case when updated_at >= ? then updated_at + 1 else ? end)', [t, t]);
  }

  private rowFields(cfg: RepositoryConfig) {
    const { name: _n, format: _f, type: _t, online: _o, ...attributes } = cfg;
    return attributes;
  }

  async create(cfg: RepositoryConfig): Promise<Repository> {
    const store = await this.app.blobStores.byName(cfg.storage.blobStoreName);
    if (!store) throw badRequest(`storage.blobStoreName: blob store '${cfg.storage.blobStoreName}' does not exist`, { field: 'storage.blobStoreName' });
    await this.checkGroup(cfg);
    await this.validate(cfg);
    const t = now();
    try {
      await this.db.transaction(async (tx) => {
        const [row] = await tx('repositories')
          .insert({
            name: cfg.name,
            format: cfg.format,
            type: cfg.type,
            blob_store_id: store.id,
            online: cfg.online,
            attributes: toJson(this.rowFields(cfg)),
            created_at: t,
            updated_at: t,
          })
          .returning('id');
        const id = num(typeof row === 'object' ? row.id : row);
        await this.writeMembers(tx, id, cfg);
        for (const w of this.linkWriters) await w(tx, id, cfg);
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`Repository '${cfg.name}' already exists`);
      throw e;
    }
    await this.changed();
    return this.require(cfg.name);
  }

  private async writeMembers(tx: import('../db/db.js').Tx, groupId: number, cfg: RepositoryConfig): Promise<void> {
    await tx('group_members').where({ group_id: groupId }).delete();
    if (cfg.type !== 'group') return;
    const names = cfg.group?.memberNames ?? [];
    if (names.length === 0) return;
    const ids = new Map((await tx('repositories').whereIn('name', names).select('id', 'name')).map((r) => [String(r.name), num(r.id)]));
    await tx('group_members').insert(names.map((n, i) => ({ group_id: groupId, member_id: ids.get(n)!, position: i })));
  }

  async update(name: string, cfg: RepositoryConfig): Promise<Repository> {
    const cur = await this.require(name);
    if (cfg.name !== name) throw badRequest(`name: a repository cannot be renamed ('${name}' → '${cfg.name}')`, { field: 'name' });
    if (cur.format.name !== cfg.format || cur.type !== cfg.type) {
      throw badRequest(`Repository '${name}' is a ${cur.format.name} ${cur.type} repository`, { field: 'format' });
    }
    if (cfg.storage.blobStoreName !== cur.config.storage.blobStoreName) {
      throw badRequest(`storage.blobStoreName: the blob store of a repository cannot be changed`, { field: 'storage.blobStoreName' });
    }
    await this.checkGroup(cfg);
    await this.validate(cfg);
    await this.db.transaction(async (tx) => {
      await tx('repositories')
        .where({ id: cur.id })
        .update({ online: cfg.online, attributes: toJson(this.rowFields(cfg)), updated_at: this.bump(tx) });
      await this.writeMembers(tx, cur.id, cfg);
      for (const w of this.linkWriters) await w(tx, cur.id, cfg);
    });
    await this.changed();
    return this.require(name);
  }

  /** Deletes a repository and its content (blobs are reclaimed by GC); groups drop it as a member. */
  async delete(name: string): Promise<void> {
    const cur = await this.require(name);
    await this.db.transaction(async (tx) => {
      const groups = await tx('group_members').where({ member_id: cur.id }).select('group_id');
      for (const g of groups) {
        const gr = await tx('repositories').where({ id: g.group_id }).first();
        const attrs = fromJson<Record<string, unknown>>(gr.attributes);
        const group = (attrs.group ?? {}) as { memberNames?: string[]; writableMember?: string | null };
        group.memberNames = (group.memberNames ?? []).filter((n) => n !== name);
        if (group.writableMember === name) group.writableMember = null;
        await tx('repositories')
          .where({ id: g.group_id })
          .update({ attributes: toJson({ ...attrs, group }), updated_at: this.bump(tx) });
      }
      await tx('group_members').where({ member_id: cur.id }).delete();
      // Content rows go with the repository (ON DELETE CASCADE); their blobs become GC candidates.
      await tx('assets').where({ repository_id: cur.id }).delete();
      await tx('components').where({ repository_id: cur.id }).delete();
      await tx('repositories').where({ id: cur.id }).delete();
    });
    await this.changed();
  }

  /** Sets a repository online or offline. */
  async setOnline(name: string, online: boolean): Promise<void> {
    const cur = await this.require(name);
    await this.db('repositories')
      .where({ id: cur.id })
      .update({ online, updated_at: this.bump(this.db) });
    await this.changed();
  }
}

export { AppError };
