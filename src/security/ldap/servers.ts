import type { Db } from '../../db/db.js';
import { fromJson, isUniqueViolation, now, num, toJson } from '../../db/db.js';
import { badRequest, conflict, notFound } from '../../errors.js';
import type { Secrets } from '../secrets.js';
import type { LdapServerConfig } from './config.js';

export interface LdapServerRow {
  id: number;
  name: string;
  /** 1-based order in which servers are asked. */
  order: number;
  /** authPassword as stored (encrypted); decrypt only to bind. */
  config: LdapServerConfig;
}

/**
 * The `ldap_servers` table: ordered server configurations, the bind password encrypted with the
 * instance secret key. Read from the database on use, so every node sees a change at once.
 */
export class LdapServers {
  constructor(
    private readonly db: Db,
    private readonly secrets: Secrets,
    /** Called after every change (the realm drops its caches). */
    private readonly onChange: () => void,
  ) {}

  async list(): Promise<LdapServerRow[]> {
    const rows = await this.db('ldap_servers').orderBy([{ column: 'position' }, { column: 'id' }]);
    return rows.map((r, i) => ({ id: num(r.id), name: String(r.name), order: i + 1, config: { ...fromJson<LdapServerConfig>(r.config), name: String(r.name) } }));
  }

  async find(name: string): Promise<LdapServerRow | undefined> {
    return (await this.list()).find((s) => s.name === name);
  }

  async require(name: string): Promise<LdapServerRow> {
    const s = await this.find(name);
    if (!s) throw notFound(`LDAP server '${name}' not found`);
    return s;
  }

  /** The bind password in clear, for the moment of binding. */
  password(cfg: LdapServerConfig): string {
    return cfg.authPassword ? this.secrets.decrypt(cfg.authPassword) : '';
  }

  private stored(cfg: LdapServerConfig): string {
    const { name: _column, ...rest } = cfg;
    return toJson({ ...rest, authPassword: rest.authPassword ? this.secrets.encrypt(rest.authPassword) : '' });
  }

  async create(cfg: LdapServerConfig): Promise<LdapServerRow> {
    try {
      await this.db.transaction(async (tx) => {
        const max = await tx('ldap_servers').max({ m: 'position' }).first();
        await tx('ldap_servers').insert({ name: cfg.name, position: num(max?.m ?? 0) + 1, config: this.stored(cfg), updated_at: now() });
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`LDAP server '${cfg.name}' already exists`);
      throw e;
    } finally {
      this.onChange();
    }
    return this.require(cfg.name);
  }

  /** Replaces a configuration; `cfg.name` may rename the server. */
  async update(name: string, cfg: LdapServerConfig): Promise<void> {
    try {
      const n = await this.db('ldap_servers')
        .where({ name })
        .update({ name: cfg.name, config: this.stored(cfg), updated_at: now() });
      if (n === 0) throw notFound(`LDAP server '${name}' not found`);
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`LDAP server '${cfg.name}' already exists`);
      throw e;
    } finally {
      this.onChange();
    }
  }

  async delete(name: string): Promise<void> {
    const n = await this.db('ldap_servers').where({ name }).delete();
    this.onChange();
    if (n === 0) throw notFound(`LDAP server '${name}' not found`);
  }

  /** New order: the named servers first, in the given order; any left out keep their relative order after them. */
  async reorder(names: string[]): Promise<string[]> {
    const seen = new Set<string>();
    for (const n of names) {
      if (seen.has(n)) throw badRequest(`order: '${n}' is listed twice`, { field: 'order' });
      seen.add(n);
    }
    let result: string[] = [];
    await this.db.transaction(async (tx) => {
      const rows = await tx('ldap_servers')
        .orderBy([{ column: 'position' }, { column: 'id' }])
        .select('id', 'name');
      const byName = new Map(rows.map((r) => [String(r.name), num(r.id)]));
      const unknown = names.find((n) => !byName.has(n));
      if (unknown !== undefined) throw badRequest(`order: LDAP server '${unknown}' not found`, { field: 'order' });
      result = [...names, ...rows.map((r) => String(r.name)).filter((n) => !seen.has(n))];
      const t = now();
      for (const [i, n] of result.entries())
        await tx('ldap_servers')
          .where({ id: byName.get(n) })
          .update({ position: i + 1, updated_at: t });
    });
    this.onChange();
    return result;
  }
}
