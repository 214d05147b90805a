import type { Db } from '../db/db.js';
import { now } from '../db/db.js';
import { mappingKey, type SecurityStore } from './security-store.js';

/**
 * Local roles given to users of other sources (LDAP…), keyed by (user id, source) as in Nexus.
 * Sources compare case-insensitively; the spelling of the first write is kept.
 */
export class RoleMappings {
  constructor(
    private readonly db: Db,
    private readonly store: SecurityStore,
  ) {}

  /** The local roles mapped to this external user (empty when none). */
  async get(userId: string, source: string): Promise<string[]> {
    return this.store.mappedRoles(userId, source);
  }

  private async find(userId: string, source: string): Promise<{ user_id: string; source: string } | undefined> {
    const rows = await this.db('user_role_mappings').where({ user_id: userId }).select('user_id', 'source');
    return rows.find((r) => mappingKey(String(r.user_id), String(r.source)) === mappingKey(userId, source));
  }

  async set(userId: string, source: string, roles: string[]): Promise<void> {
    const existing = await this.find(userId, source);
    const value = { roles: JSON.stringify([...new Set(roles)]), updated_at: now() };
    if (existing) await this.db('user_role_mappings').where(existing).update(value);
    else
      await this.db('user_role_mappings')
        .insert({ user_id: userId, source, ...value })
        .onConflict(['user_id', 'source'])
        .merge();
    this.store.invalidate();
  }

  async delete(userId: string, source: string): Promise<boolean> {
    const existing = await this.find(userId, source);
    if (!existing) return false;
    await this.db('user_role_mappings').where(existing).delete();
    this.store.invalidate();
    return true;
  }
}
