import { createHash } from 'node:crypto';
import type { Db } from '../db/db.js';
import { fromJson, isUniqueViolation, now, num } from '../db/db.js';
import { badRequest, conflict, notFound } from '../errors.js';
import { hashPassword, verifyPassword } from './passwords.js';
import { wherePrefix } from '../content/content-service.js';
import type { Principal } from './principal.js';
import { LRUCache } from 'lru-cache';

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

function principalOfRow(r: Record<string, unknown>): Principal {
  return { userId: String(r.user_id), anonymous: false, roles: fromJson<string[]>(r.roles), source: 'default' };
}

/**
 * Local users and the local realm. Successful verifications are cached briefly (keyed by a
 * hash of the credentials) so Basic auth on every request does not pay the slow hash each time.
 */
export class LocalUsers {
  // Bounded by count without preallocating room for all entries (as `max` would).
  private readonly cache = new LRUCache<string, { principal: Principal; until: number }>({ maxSize: 10_000, sizeCalculation: () => 1 });
  private static readonly CACHE_MS = 60_000;
  /** Called after every write (the security model's cache listens: the anonymous user's roles live here). */
  onChange?: () => void;

  constructor(private readonly db: Db) {}

  async get(userId: string): Promise<UserRow | undefined> {
    const r = await this.db('users').where({ user_id: userId }).first();
    return r ? user(r) : undefined;
  }

  /** Users ordered by id; with a prefix, only ids starting with it (case-sensitive). */
  async list(userIdPrefix = '', limit?: number): Promise<UserRow[]> {
    const q = this.db('users').orderBy('user_id');
    if (userIdPrefix) wherePrefix(this.db, q, 'user_id', userIdPrefix);
    if (limit !== undefined) q.limit(limit);
    return (await q).map(user);
  }

  /** Forgets cached logins (after a change made here or noticed from another node). */
  clearCache(): void {
    this.cache.clear();
  }

  async create(u: { userId: string; password: string; firstName?: string; lastName?: string; email?: string; status?: string; roles: string[] }): Promise<UserRow> {
    if (!/^[^\s:/]{1,255}$/.test(u.userId)) throw badRequest('userId: invalid user id', { field: 'userId' });
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
    this.onChange?.();
    return (await this.get(u.userId))!;
  }

  async setPassword(userId: string, password: string): Promise<void> {
    const n = await this.db('users')
      .where({ user_id: userId })
      .update({ password_hash: await hashPassword(password), updated_at: now() });
    if (n === 0) throw notFound(`User '${userId}' not found`);
    this.cache.clear();
    this.onChange?.();
  }

  async update(userId: string, fields: Partial<{ first_name: string; last_name: string; email: string; status: string; roles: string[] }>): Promise<void> {
    const row: Record<string, unknown> = { ...fields, updated_at: now() };
    if (fields.roles) row.roles = JSON.stringify(fields.roles);
    const n = await this.db('users').where({ user_id: userId }).update(row);
    if (n === 0) throw notFound(`User '${userId}' not found`);
    this.cache.clear();
    this.onChange?.();
  }

  async delete(userId: string): Promise<void> {
    const n = await this.db.transaction(async (tx): Promise<number> => {
      // Tokens die with their user: a later user created with the same id inherits none of them.
      await tx('user_tokens').where({ user_id: userId, user_source: 'default' }).delete();
      return await tx('users').where({ user_id: userId }).delete();
    });
    if (n === 0) throw notFound(`User '${userId}' not found`);
    this.cache.clear();
    this.onChange?.();
  }

  /**
   * The principal of an active local user as it is now (current roles), without a password: for
   * credentials that stand for the user (tokens). Null for a disabled or unknown user.
   */
  async principal(userId: string): Promise<Principal | null> {
    const r = await this.db('users').where({ user_id: userId }).first();
    return r && r.status === 'active' ? principalOfRow(r) : null;
  }

  /** Checks a user id and password; null on any failure (one answer, whatever failed). */
  async authenticate(userId: string, password: string): Promise<Principal | null> {
    const key = createHash('sha256').update(userId).update('\0').update(password).digest('hex');
    const hit = this.cache.get(key);
    if (hit && hit.until > Date.now()) return hit.principal;
    const r = await this.db('users').where({ user_id: userId }).first();
    const ok = await verifyPassword(password, r?.password_hash as string | undefined);
    if (!ok || !r || r.status !== 'active') return null;
    const principal = principalOfRow(r);
    this.cache.set(key, { principal, until: Date.now() + LocalUsers.CACHE_MS });
    return principal;
  }
}
