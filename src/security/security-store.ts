import type { Db } from '../db/db.js';
import { fromJson } from '../db/db.js';
import { compileCsel, type CompiledCsel } from './csel.js';
import { builtinPrivilege, permissionOf, type Permission, type Privilege, type PrivilegeSpec } from './permissions.js';
import type { Principal } from './principal.js';
import { LRUCache } from 'lru-cache';

export interface RoleDef {
  id: string;
  name: string;
  description: string;
  /** Privilege names (built-in or custom). */
  privileges: string[];
  /** Nested role ids. */
  roles: string[];
  source: string;
  readOnly: boolean;
}

export interface SelectorDef {
  name: string;
  type: string;
  description: string;
  expression: string;
  /** null when the stored expression no longer parses (it then matches nothing). */
  compiled: CompiledCsel | null;
}

/** A content-selector privilege, ready to evaluate. */
export interface SelectorGrant {
  selector: CompiledCsel;
  format: string;
  repository: string;
  actions: string[];
}

/** What a set of roles grants: wildcard permissions, plus content-selector grants. */
export interface Grants {
  permissions: Permission[];
  selectors: SelectorGrant[];
}

/** The roles behind a principal's authorization (nested roles expanded, external mappings merged). */
export interface RoleSource {
  grantsOf(principal: Principal): Promise<Grants>;
}

/** Everything authorization reads, loaded together and replaced together. */
export interface SecuritySnapshot {
  readonly roles: ReadonlyMap<string, RoleDef>;
  /** Custom (stored) privileges; built-ins are understood by name. */
  readonly privileges: ReadonlyMap<string, Privilege>;
  readonly selectors: ReadonlyMap<string, SelectorDef>;
  /** Local roles of users of other sources, keyed by mappingKey(userId, source). */
  readonly mappings: ReadonlyMap<string, string[]>;
  /** Properties of scope `security` (realms.active, anonymous.*). */
  readonly settings: ReadonlyMap<string, string>;
  /** The configured anonymous user's local row, if it exists. */
  readonly anonymousUser: { roles: string[]; status: string } | null;
}

export const SETTINGS_SCOPE = 'security';
export const DEFAULT_ANONYMOUS_USER = 'anonymous';

/** Sources are compared case-insensitively (Nexus says `LDAP`, realms may say `ldap`). */
export function mappingKey(userId: string, source: string): string {
  return `${source.toLowerCase()}\u0000${userId}`;
}

/** How long a node trusts its cached security model before asking the database for changes. */
const REVALIDATE_MS = 1000;
const MAX_MEMO = 2000;

function role(r: Record<string, unknown>): RoleDef {
  return {
    id: String(r.role_id),
    name: String(r.name),
    description: String(r.description ?? ''),
    privileges: fromJson<string[]>(r.privileges),
    roles: fromJson<string[]>(r.roles),
    source: String(r.source ?? 'default'),
    readOnly: !!r.read_only,
  };
}

export function privilegeFromRow(r: Record<string, unknown>): Privilege {
  const props = fromJson<Record<string, unknown>>(r.properties);
  return { ...(props as object), type: String(r.type), name: String(r.name), description: String(r.description ?? ''), readOnly: !!r.read_only } as Privilege;
}

function selector(r: Record<string, unknown>): SelectorDef {
  const expression = String(r.expression);
  let compiled: CompiledCsel | null;
  try {
    compiled = compileCsel(expression);
  } catch {
    compiled = null;
  }
  return { name: String(r.name), type: String(r.type ?? 'csel'), description: String(r.description ?? ''), expression, compiled };
}

/**
 * The security model as authorization sees it: roles, custom privileges, content selectors, role
 * mappings of external users and the security settings. Every node caches one snapshot and
 * notices other nodes' changes through a cheap fingerprint query, at most once a second; local
 * writes invalidate at once. What each role set grants is memoised per snapshot.
 */
export class SecurityStore implements RoleSource {
  private current?: SecuritySnapshot;
  private fingerprint = '';
  private checkedAt = 0;
  private loading?: Promise<void>;
  private memo = new LRUCache<string, Grants>({ max: MAX_MEMO });
  /** The same memo by principal object (the shared anonymous principal above all); per snapshot. */
  private byPrincipal = new WeakMap<Principal, Grants>();
  /** Called after a reload that changed something (the local users' login cache listens). */
  onChange?: () => void;

  constructor(private readonly db: Db) {}

  private async currentFingerprint(): Promise<string> {
    const stats = (table: string, id = true, where = '') =>
      `(select count(*) from ${table}${where}) as ${table}_n, (select coalesce(sum(updated_at), 0) from ${table}${where}) as ${table}_s` +
      (id ? `, (select coalesce(max(id), 0) from ${table}) as ${table}_m` : '');
    const sql = `select ${[
      stats('roles'),
      stats('privileges'),
      stats('content_selectors'),
      stats('user_role_mappings', false),
      stats('users'),
      stats('properties', false, ` where scope = '${SETTINGS_SCOPE}'`),
    ].join(', ')}`;
    const res = await this.db.raw(sql);
    const row = (Array.isArray(res) ? res[0] : res.rows[0]) as Record<string, unknown>;
    // Kept as text: pg sends bigint sums as exact strings, which a JS number could round.
    return Object.values(row)
      .map((v) => String(v))
      .join(':');
  }

  private async load(): Promise<SecuritySnapshot> {
    const [roles, privileges, selectors, mappings, settings] = await Promise.all([
      this.db('roles').select(),
      this.db('privileges').select(),
      this.db('content_selectors').select(),
      this.db('user_role_mappings').select(),
      this.db('properties').where({ scope: SETTINGS_SCOPE }).select('key', 'value'),
    ]);
    const settingsMap = new Map(settings.map((s) => [String(s.key), String(s.value)]));
    const anonId = settingsMap.get('anonymous.userId') ?? DEFAULT_ANONYMOUS_USER;
    const anon = await this.db('users').where({ user_id: anonId }).first('roles', 'status');
    return {
      roles: new Map(roles.map((r) => [String(r.role_id), role(r)])),
      privileges: new Map(privileges.map((r) => [String(r.name), privilegeFromRow(r)])),
      selectors: new Map(selectors.map((r) => [String(r.name), selector(r)])),
      mappings: new Map(mappings.map((m) => [mappingKey(String(m.user_id), String(m.source)), fromJson<string[]>(m.roles)])),
      settings: settingsMap,
      anonymousUser: anon ? { roles: fromJson<string[]>(anon.roles), status: String(anon.status) } : null,
    };
  }

  /** The current snapshot (revalidated against the database at most once a second). */
  async snapshot(): Promise<SecuritySnapshot> {
    if (!this.current || Date.now() - this.checkedAt >= REVALIDATE_MS) {
      if (!this.loading) {
        this.loading = (async () => {
          const fp = await this.currentFingerprint();
          if (fp !== this.fingerprint || !this.current) {
            const changed = !!this.current;
            this.current = await this.load();
            this.memo = new LRUCache({ max: MAX_MEMO });
            this.byPrincipal = new WeakMap();
            this.fingerprint = fp;
            if (changed) this.onChange?.();
          }
          this.checkedAt = Date.now();
        })().finally(() => (this.loading = undefined));
      }
      await this.loading;
    }
    return this.current!;
  }

  /** After a local write: the next read goes to the database. */
  invalidate(): void {
    this.checkedAt = 0;
    this.fingerprint = '';
  }

  /** Local roles given to a user of another source (LDAP…) through user_role_mappings. */
  async mappedRoles(userId: string, source: string): Promise<string[]> {
    return [...((await this.snapshot()).mappings.get(mappingKey(userId, source)) ?? [])];
  }

  /** Role ids reachable from the given ones (each once; cycles and unknown ids are harmless). */
  static expand(snap: SecuritySnapshot, roleIds: Iterable<string>): Set<string> {
    const out = new Set<string>();
    const stack = [...roleIds];
    while (stack.length) {
      const id = stack.pop()!;
      if (out.has(id)) continue;
      out.add(id);
      for (const nested of snap.roles.get(id)?.roles ?? []) stack.push(nested);
    }
    return out;
  }

  async grantsOf(principal: Principal): Promise<Grants> {
    const snap = await this.snapshot();
    const known = this.byPrincipal.get(principal);
    if (known) return known;
    const ids = new Set(principal.roles);
    if (!principal.anonymous && principal.source !== 'default') {
      for (const r of snap.mappings.get(mappingKey(principal.userId, principal.source)) ?? []) ids.add(r);
    }
    const key = [...ids].sort().join('\n');
    const hit = this.memo.get(key);
    if (hit) {
      this.byPrincipal.set(principal, hit);
      return hit;
    }
    const grants = compileGrants(snap, SecurityStore.expand(snap, ids));
    this.memo.set(key, grants);
    this.byPrincipal.set(principal, grants);
    return grants;
  }
}

/** A privilege by name: stored custom definition first, then built-in by name; unknown → null. */
export function resolvePrivilege(snap: SecuritySnapshot, name: string): Privilege | null {
  return snap.privileges.get(name) ?? builtinPrivilege(name);
}

function compileGrants(snap: SecuritySnapshot, roles: Set<string>): Grants {
  const permissions: Permission[] = [];
  const selectors: SelectorGrant[] = [];
  const seen = new Set<string>();
  for (const id of roles) {
    for (const name of snap.roles.get(id)?.privileges ?? []) {
      if (seen.has(name)) continue;
      seen.add(name);
      const p = resolvePrivilege(snap, name);
      if (!p) continue; // Unknown names (a deleted privilege, a typo) grant nothing.
      const spec = p as PrivilegeSpec;
      if (spec.type === 'repository-content-selector') {
        const sel = snap.selectors.get(spec.contentSelector)?.compiled;
        if (sel) selectors.push({ selector: sel, format: spec.format, repository: spec.repository, actions: spec.actions });
        continue;
      }
      const perm = permissionOf(spec);
      if (perm) permissions.push(perm);
    }
  }
  return { permissions, selectors };
}
