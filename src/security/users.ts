import { createHash } from 'node:crypto';
import type { Db } from '../db/db.js';
import { fromJson, isUniqueViolation, now, num } from '../db/db.js';
import { badRequest, conflict, notFound } from '../errors.js';
import { hashPassword, verifyPassword } from './passwords.js';
import type { Principal } from './principal.js';

export interface UserRow {
  id: number;
  user_id: string;
  first_name: string;
  last_name: string;
  email: string;
  status: string;
  roles: string[];
}

function user(r: Record<string, unknown>): UserRow {
  return {
    id: num(r.id),
    user_id: String(r.user_id),
    first_name: String(r.first_name ?? ''),
    last_name: String(r.last_name ?? ''),
    email: String(r.email ?? ''),
    status: String(r.status),
    roles: fromJson<string[]>(r.roles),
  };
}

/**
 * Local users and the local realm. Successful verifications are cached briefly (keyed by a
 * hash of the credentials) so Basic auth on every request does not pay the slow hash each time.
 */
export class LocalUsers {
  private readonly cache = new Map<string, { principal: Principal; until: number }>();
  private static readonly CACHE_MS = 60_000;

  constructor(private readonly db: Db) {}

  async get(userId: string): Promise<UserRow | undefined> {
    const r = await this.db('users').where({ user_id: userId }).first();
    return r ? user(r) : undefined;
  }

  async list(): Promise<UserRow[]> {
    return (await this.db('users').orderBy('user_id')).map(user);
  }

  async create(u: { userId: string; password: string; firstName?: string; lastName?: string; email?: string; status?: string; roles: string[] }): Promise<UserRow> {
    if (!/^[^\s:\/]{1,255}$/.test(u.userId)) throw badRequest('userId: invalid user id', { field: 'userId' });
    const t = now();
    try {
      await this.db('users').insert({
        user_id: u.userId,
        first_name: u.firstName ?? '',
        last_name: u.lastName ?? '',
        email: u.email ?? '',
        status: u.status ?? 'active',
        password_hash: await hashPassword(u.password),
        roles: JSON.stringify(u.roles),
        created_at: t,
        updated_at: t,
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`User '${u.userId}' already exists`);
      throw e;
    }
    return (await this.get(u.userId))!;
  }

  async setPassword(userId: string, password: string): Promise<void> {
    const n = await this.db('users').where({ user_id: userId }).update({ password_hash: await hashPassword(password), updated_at: now() });
    if (n === 0) throw notFound(`User '${userId}' not found`);
    this.cache.clear();
  }

  async update(userId: string, fields: Partial<{ first_name: string; last_name: string; email: string; status: string; roles: string[] }>): Promise<void> {
    const row: Record<string, unknown> = { ...fields, updated_at: now() };
    if (fields.roles) row.roles = JSON.stringify(fields.roles);
    const n = await this.db('users').where({ user_id: userId }).update(row);
    if (n === 0) throw notFound(`User '${userId}' not found`);
    this.cache.clear();
  }

  async delete(userId: string): Promise<void> {
    const n = await this.db('users').where({ user_id: userId }).delete();
    if (n === 0) throw notFound(`User '${userId}' not found`);
    this.cache.clear();
  }

  /** Checks a user id and password; null on any failure (one answer, whatever failed). */
  async authenticate(userId: string, password: string): Promise<Principal | null> {
    const key = createHash('sha256').update(userId).update('\0').update(password).digest('hex');
    const hit = this.cache.get(key);
    if (hit && hit.until > Date.now()) return hit.principal;
    const r = await this.db('users').where({ user_id: userId }).first();
    const ok = await verifyPassword(password, r?.password_hash as string | undefined);
    if (!ok || !r || r.status !== 'active') return null;
    const principal: Principal = { userId, anonymous: false, roles: fromJson<string[]>(r.roles), source: 'default' };
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { principal, until: Date.now() + LocalUsers.CACHE_MS });
    return principal;
  }
}
