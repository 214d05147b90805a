import { createHash } from 'node:crypto';
import { isUniqueViolation, type Db } from '../db/db.js';
import type { ContentService } from '../content/content-service.js';
import { randomPassword } from './passwords.js';
import type { Principal } from './principal.js';
import { LOCAL_REALM, type Realm } from './realm.js';
import { LocalUsers } from './users.js';
import { DEFAULT_ANONYMOUS_USER, SETTINGS_SCOPE, SecurityStore } from './security-store.js';
import { Roles } from './roles.js';
import { Privileges, type RepositoryCatalog } from './privileges.js';
import { ContentSelectors } from './selectors.js';
import { RoleMappings } from './role-mappings.js';
import { LRUCache } from 'lru-cache';

const ACTIVE_KEY = 'realms.active';
/** Nexus's realm for the anonymous user (the local user store). */
export const ANONYMOUS_REALM = 'NexusAuthorizingRealm';

/** A user of another source (LDAP…), as the users API shows it. */
export interface ExternalUser {
  userId: string;
  firstName: string;
  lastName: string;
  emailAddress: string;
  /** The source id, e.g. `LDAP`. */
  source: string;
  /** Roles the source itself gives (LDAP groups): read-only in the API. */
  externalRoles: string[];
}

/**
 * Where users of other sources come from. The LDAP module sets these on app.security; absent,
 * only local users exist.
 */
export interface ExternalUserDirectory {
  /** Users of `source` whose id starts with `userIdPrefix` (all when empty); a source it does not serve gives []. */
  externalUsers?: (source: string, userIdPrefix: string) => Promise<ExternalUser[]>;
  /** The sources it serves, for /security/user-sources (default: `LDAP` when externalUsers is set). */
  externalSources?: Array<{ id: string; name: string }>;
}

export interface AnonymousSettings {
  enabled: boolean;
  userId: string;
  realmName: string;
}

/**
 * Authentication through the ordered, switchable realm chain. Every listener authenticates
 * through this one object; realms are registered by their modules (local, LDAP, tokens…).
 */
export class Security implements ExternalUserDirectory {
  readonly users: LocalUsers;
  /** Roles, privileges, selectors, mappings and settings as authorization reads them (cached, revalidated). */
  readonly store: SecurityStore;
  readonly roles: Roles;
  readonly privileges: Privileges;
  readonly selectors: ContentSelectors;
  readonly roleMappings: RoleMappings;
  externalUsers?: ExternalUserDirectory['externalUsers'];
  externalSources?: ExternalUserDirectory['externalSources'];
  private readonly realms = new Map<string, Realm>();

  constructor(
    db: Db,
    private readonly content: ContentService,
    private readonly anonymousDefault: boolean,
    catalog: RepositoryCatalog,
  ) {
    this.users = new LocalUsers(db);
    this.store = new SecurityStore(db);
    // Another node changed users or roles: logins cached here must be checked again.
    this.store.onChange = () => this.users.clearCache();
    this.users.onChange = () => this.store.invalidate();
    this.roles = new Roles(db, this.store, catalog);
    this.privileges = new Privileges(db, this.store, catalog);
    this.selectors = new ContentSelectors(db, this.store);
    this.roleMappings = new RoleMappings(db, this.store);
    this.register({ id: LOCAL_REALM, name: 'Local Authenticating Realm', authenticate: (u, p) => this.users.authenticate(u, p) });
  }

  register(realm: Realm): void {
    this.realms.set(realm.id, realm);
  }

  available(): Realm[] {
    return [...this.realms.values()];
  }

  /** Active realm ids in order (stored; default: every registered realm, local first). */
  async activeRealmIds(): Promise<string[]> {
    const v = (await this.store.snapshot()).settings.get(ACTIVE_KEY);
    if (v) return JSON.parse(v) as string[];
    return [LOCAL_REALM, ...[...this.realms.keys()].filter((k) => k !== LOCAL_REALM)];
  }

  async setActiveRealmIds(ids: string[]): Promise<void> {
    await this.content.setProperty(SETTINGS_SCOPE, ACTIVE_KEY, JSON.stringify(ids));
    this.store.invalidate();
  }

  /** Local roles given to a user of another source through user_role_mappings (for realms building principals). */
  async mappedRoles(userId: string, source: string): Promise<string[]> {
    return this.store.mappedRoles(userId, source);
  }

  /** User sources for /security/user-sources: local, then what the external directory serves. */
  userSources(): Array<{ id: string; name: string }> {
    const external = this.externalSources ?? (this.externalUsers ? [{ id: 'LDAP', name: 'LDAP' }] : []);
    return [{ id: 'default', name: 'Local' }, ...external];
  }

  /** Built-in roles and the anonymous user, created when missing (every start, any number of nodes). */
  async ensureDefaults(): Promise<void> {
    await this.roles.ensureBuiltins();
    if (!(await this.users.get(DEFAULT_ANONYMOUS_USER))) {
      try {
        await this.users.create({ userId: DEFAULT_ANONYMOUS_USER, password: randomPassword(), firstName: 'Anonymous', lastName: 'User', roles: ['nx-anonymous'] });
      } catch (e) {
        if ((e as { code?: string }).code !== 'CONFLICT' && !isUniqueViolation(e)) throw e;
      }
      this.store.invalidate();
    }
  }

  private async active(): Promise<Realm[]> {
    return (await this.activeRealmIds()).map((id) => this.realms.get(id)).filter((r): r is Realm => !!r);
  }

  /**
   * Which realm last accepted a credential (keyed by a hash of it), for a minute: that realm is
   * asked first next time, so an LDAP user's every request does not pay the local realm's slow
   * hash of an unknown user first. The realm still checks the credential itself each time.
   */
  // Bounded by count without preallocating room for all entries (as `max` would).
  private readonly lastRealm = new LRUCache<string, { realm: string; until: number }>({ maxSize: 10_000, sizeCalculation: () => 1 });

  async authenticate(userId: string, password: string): Promise<Principal | null> {
    const active = await this.active();
    const key = createHash('sha256').update(userId).update('\0').update(password).digest('base64url');
    const remembered = this.lastRealm.get(key);
    const preferred = remembered && remembered.until > Date.now() ? active.find((r) => r.id === remembered.realm) : undefined;
    // A realm that recognises the password as its own credential (a token) answers first.
    const claimed = active.filter((r) => r !== preferred && r.claims?.(password));
    const order = [...(preferred ? [preferred] : []), ...claimed, ...active.filter((r) => r !== preferred && !claimed.includes(r))];
    for (const realm of order) {
      const p = await realm.authenticate?.(userId, password);
      if (p) {
        this.lastRealm.set(key, { realm: realm.id, until: Date.now() + 60_000 });
        return p;
      }
    }
    this.lastRealm.delete(key);
    return null;
  }

  /**
   * A Basic password some active realm recognises as its token, checked by those realms only
   * (never by a password realm): how a valid token still signs in while the login throttle holds
   * its user's passwords back. Null when no realm claims it or the token is not valid.
   */
  async authenticateToken(userId: string, password: string): Promise<Principal | null> {
    for (const realm of await this.active()) {
      if (!realm.claims?.(password)) continue;
      const p = await realm.authenticate?.(userId, password);
      if (p) return p;
    }
    return null;
  }

  async authenticateBearer(token: string): Promise<Principal | null> {
    for (const realm of await this.active()) {
      const p = await realm.authenticateBearer?.(token);
      if (p) return p;
    }
    return null;
  }

  async anonymousSettings(): Promise<AnonymousSettings> {
    const settings = (await this.store.snapshot()).settings;
    const v = settings.get('anonymous.enabled');
    return {
      enabled: v === undefined ? this.anonymousDefault : v === 'true',
      userId: settings.get('anonymous.userId') ?? DEFAULT_ANONYMOUS_USER,
      realmName: settings.get('anonymous.realmName') ?? ANONYMOUS_REALM,
    };
  }

  async anonymousEnabled(): Promise<boolean> {
    return (await this.anonymousSettings()).enabled;
  }

  /** Switches anonymous access (and optionally its user); takes effect on this node at once, on others within a second. */
  async setAnonymous(enabled: boolean, user?: { userId: string; realmName: string }): Promise<void> {
    await this.content.setProperty(SETTINGS_SCOPE, 'anonymous.enabled', String(enabled));
    if (user) {
      await this.content.setProperty(SETTINGS_SCOPE, 'anonymous.userId', user.userId);
      await this.content.setProperty(SETTINGS_SCOPE, 'anonymous.realmName', user.realmName);
    }
    this.store.invalidate();
  }

  /**
   * The principal of a request without credentials: null when anonymous access is off (or its
   * user is disabled); otherwise the anonymous user with that user's current roles.
   */
  async anonymousPrincipal(): Promise<Principal | null> {
    // Computed once per security snapshot (the snapshot revalidates about once a second and is
    // replaced on any change); the object is frozen since every anonymous request shares it.
    const snap = await this.store.snapshot();
    if (this.anonymous?.snap === snap) return this.anonymous.principal;
    const settings = await this.anonymousSettings();
    const user = snap.anonymousUser;
    const principal =
      !settings.enabled || (user && user.status !== 'active')
        ? null
        : Object.freeze({ userId: settings.userId, anonymous: true, roles: Object.freeze(user ? [...user.roles] : ['nx-anonymous']) as string[], source: 'default' });
    this.anonymous = { snap, principal };
    return principal;
  }

  private anonymous?: { snap: object; principal: Principal | null };
}
