import type { Db, Tx } from '../db/db.js';
import { fromJson, isUniqueViolation, now } from '../db/db.js';
import { badRequest, conflict, notFound } from '../errors.js';
import { escapeLike } from '../content/content-service.js';
import { isListedBuiltin } from './permissions.js';
import type { RoleDef, SecurityStore } from './security-store.js';

/** Built-in, read-only roles, seeded at every start (so upgrades get the current definitions). */
export const BUILTIN_ROLES: Array<Omit<RoleDef, 'source' | 'readOnly'>> = [
  { id: 'nx-admin', name: 'nx-admin', description: 'Administrator Role', privileges: ['nx-all'], roles: [] },
  {
    id: 'nx-anonymous',
    name: 'nx-anonymous',
    description: 'Anonymous Role',
    privileges: ['nx-healthcheck-read', 'nx-search-read', 'nx-repository-view-*-*-read', 'nx-repository-view-*-*-browse'],
    roles: [],
  },
];

export interface RoleInput {
  id: string;
  name?: string;
  description?: string;
  privileges?: string[];
  roles?: string[];
}

/** Which formats exist, for checking built-in privilege names. */
export interface FormatNames {
  formatNames(): readonly string[];
}

const ROLE_ID = /^[^\s/\\\u0000-\u001f][^/\\\u0000-\u001f]{0,254}$/;

function field(name: string, message: string) {
  return badRequest(`${name}: ${message}`, { field: name });
}

/** Removes `id` from the JSON array column of every row holding it. */
export async function stripFromJsonArrays(tx: Tx, table: string, column: string, id: string, key: string): Promise<void> {
  // JSON arrays are text on both dialects; narrow with LIKE, then decide in code.
  const needle = escapeLike(JSON.stringify(id));
  const rows = await tx(table)
    .whereRaw(`${column} like ? escape '\\'`, [`%${needle}%`])
    .select(key, column);
  for (const r of rows) {
    const list = fromJson<string[]>(r[column]);
    if (!list.includes(id)) continue;
    await tx(table)
      .where(key, r[key])
      .update({ [column]: JSON.stringify(list.filter((x) => x !== id)), updated_at: now() });
  }
}

/**
 * Roles: privileges plus nested roles. Built-ins are read-only. A role whose id equals an
 * external group name (LDAP) grants its privileges to that group's members.
 */
export class Roles {
  constructor(
    private readonly db: Db,
    private readonly store: SecurityStore,
    private readonly formats: FormatNames,
  ) {}

  async list(): Promise<RoleDef[]> {
    return [...(await this.store.snapshot()).roles.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async get(id: string): Promise<RoleDef | undefined> {
    return (await this.store.snapshot()).roles.get(id);
  }

  async require(id: string): Promise<RoleDef> {
    const r = await this.get(id);
    if (!r) throw notFound(`Role '${id}' not found`);
    return r;
  }

  /** Every listed id must be a role (400 naming the field otherwise). */
  async checkExist(ids: string[], fieldName: string): Promise<void> {
    const snap = await this.store.snapshot();
    const missing = ids.filter((id) => !snap.roles.has(id));
    if (missing.length) throw field(fieldName, `no such role: ${missing.join(', ')}`);
  }

  private async validate(input: RoleInput): Promise<Required<RoleInput>> {
    if (typeof input.id !== 'string' || !ROLE_ID.test(input.id)) throw field('id', 'a role id is required (no slashes, at most 255 characters)');
    const privileges = [...new Set(input.privileges ?? [])];
    const roles = [...new Set(input.roles ?? [])];
    const snap = await this.store.snapshot();
    const unknown = privileges.filter((p) => !snap.privileges.has(p) && !isListedBuiltin(p, this.formats.formatNames()));
    if (unknown.length) throw field('privileges', `no such privilege: ${unknown.join(', ')}`);
    await this.checkExist(roles, 'roles');
    if (roles.includes(input.id)) throw field('roles', `a role cannot contain itself`);
    {
      // Cycle: walking down from every nested role must never come back to this one (a new role
      // too: a stored role may already name it).
      const trail = (from: string, path: string[], seen: Set<string>): string[] | null => {
        if (from === input.id) return path;
        if (seen.has(from)) return null;
        seen.add(from);
        for (const n of snap.roles.get(from)?.roles ?? []) {
          const found = trail(n, [...path, n], seen);
          if (found) return found;
        }
        return null;
      };
      const seen = new Set<string>();
      for (const r of roles) {
        const cycle = trail(r, [r], seen);
        if (cycle) throw field('roles', `cycle ${[input.id, ...cycle].join(' → ')}`);
      }
    }
    const name = (input.name ?? '').trim() || input.id;
    return { id: input.id, name: name.slice(0, 255), description: input.description ?? '', privileges, roles };
  }

  async create(input: RoleInput): Promise<RoleDef> {
    const r = await this.validate(input);
    try {
      await this.db('roles').insert({
        role_id: r.id,
        name: r.name,
        description: r.description,
        privileges: JSON.stringify(r.privileges),
        roles: JSON.stringify(r.roles),
        source: 'default',
        read_only: false,
        updated_at: now(),
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`Role '${r.id}' already exists`);
      throw e;
    }
    this.store.invalidate();
    return this.require(r.id);
  }

  async update(id: string, input: RoleInput): Promise<{ before: RoleDef; after: RoleDef }> {
    const before = await this.require(id);
    if (before.readOnly) throw field('id', `role '${id}' is built in and read-only`);
    if (input.id !== undefined && input.id !== id) throw field('id', `the body's id '${input.id}' does not match the path's '${id}'`);
    const r = await this.validate({ ...input, id });
    const n = await this.db('roles')
      .where({ role_id: id })
      .update({ name: r.name, description: r.description, privileges: JSON.stringify(r.privileges), roles: JSON.stringify(r.roles), updated_at: now() });
    if (n === 0) throw notFound(`Role '${id}' not found`);
    this.store.invalidate();
    return { before, after: await this.require(id) };
  }

  /** Deletes a role and, as Nexus does, removes it from the roles, users and mappings holding it. */
  async delete(id: string): Promise<RoleDef> {
    const before = await this.require(id);
    if (before.readOnly) throw field('id', `role '${id}' is built in and read-only`);
    await this.db.transaction(async (tx) => {
      const n = await tx('roles').where({ role_id: id }).delete();
      if (n === 0) throw notFound(`Role '${id}' not found`);
      await stripFromJsonArrays(tx, 'roles', 'roles', id, 'role_id');
      await stripFromJsonArrays(tx, 'users', 'roles', id, 'user_id');
      // user_role_mappings has a composite key: rewrite per (user, source).
      const rows = await tx('user_role_mappings').select('user_id', 'source', 'roles');
      for (const m of rows) {
        const list = fromJson<string[]>(m.roles);
        if (list.includes(id)) {
          await tx('user_role_mappings')
            .where({ user_id: m.user_id, source: m.source })
            .update({ roles: JSON.stringify(list.filter((x) => x !== id)), updated_at: now() });
        }
      }
    });
    this.store.invalidate();
    return before;
  }

  /** Creates or refreshes the built-in roles; safe on every start and on several nodes at once. */
  async ensureBuiltins(): Promise<void> {
    for (const b of BUILTIN_ROLES) {
      const row = {
        name: b.name,
        description: b.description,
        privileges: JSON.stringify(b.privileges),
        roles: JSON.stringify(b.roles),
        source: 'default',
        read_only: true,
      };
      const existing = await this.db('roles').where({ role_id: b.id }).first();
      if (!existing) {
        try {
          await this.db('roles').insert({ role_id: b.id, ...row, updated_at: now() });
        } catch (e) {
          if (!isUniqueViolation(e)) throw e; // Another node seeded it first.
        }
        continue;
      }
      const same =
        existing.name === row.name && existing.description === row.description && existing.privileges === row.privileges && existing.roles === row.roles && !!existing.read_only;
      if (!same)
        await this.db('roles')
          .where({ role_id: b.id })
          .update({ ...row, updated_at: now() });
    }
    this.store.invalidate();
  }
}
