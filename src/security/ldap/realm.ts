import { createHash } from 'node:crypto';
import type { Db } from '../../db/db.js';
import type { Logger } from '../../log.js';
import type { Principal } from '../principal.js';
import type { Realm } from '../realm.js';
import type { Secrets } from '../secrets.js';
import type { Security } from '../security.js';
import type { Stowage } from '../../stowage.js';
import { type LdapServerConfig, serverUrl } from './config.js';
import { LdapServerError, LdapSession, type LdapUser } from './directory.js';
import { LdapServers, type LdapServerRow } from './servers.js';
import { LRUCache } from 'lru-cache';

export const LDAP_REALM = 'LdapRealm';
/** The user source name of LDAP users (principal.source, user_role_mappings.source, the users API). */
export const LDAP_SOURCE = 'LDAP';

/** Who an LDAP login turned out to be: what the cache keeps (local role mappings are read fresh). */
export interface LdapIdentity {
  userId: string;
  realName: string;
  email: string;
  server: string;
  /** LDAP group ids (Nexus externalRoles). */
  groups: string[];
  /** ldapGroupsAsRoles of the server that answered. */
  groupsAsRoles: boolean;
}

/** Nexus UserXO of an external user, for the users API (`source=LDAP`). */
export interface LdapUserXO {
  userId: string;
  firstName: string;
  lastName: string;
  emailAddress: string;
  source: string;
  status: 'active';
  readOnly: true;
  /** Local roles given to the user (user_role_mappings). */
  roles: string[];
  /** LDAP groups, read-only. */
  externalRoles: string[];
}

/** Nexus's LdapUserXO of the "verify user mapping" dialog. */
export interface LdapMappedUser {
  username: string;
  realName: string;
  email: string;
  membership: string[];
}

/**
 * Per-server circuit: after maxIncidentsCount consecutive failures (at least one) the server is
 * skipped for connectionRetryDelaySeconds; then one attempt is let through, and a failure skips it
 * again at once. In memory per node: it only saves time, it decides nothing.
 */
class Circuit {
  private failures = 0;
  private openUntil = 0;
  private tripped = false;

  isOpen(now: number): boolean {
    return this.openUntil > now;
  }

  success(): void {
    this.failures = 0;
    this.openUntil = 0;
    this.tripped = false;
  }

  /** True when this failure opened the circuit. */
  failure(cfg: LdapServerConfig, now: number): boolean {
    this.failures++;
    if (cfg.connectionRetryDelaySeconds <= 0) return false;
    if (this.tripped || this.failures >= Math.max(1, cfg.maxIncidentsCount)) {
      this.openUntil = now + cfg.connectionRetryDelaySeconds * 1000;
      this.failures = 0;
      this.tripped = true;
      return true;
    }
    return false;
  }
}

const CACHE_MAX = 10_000;
const EXTERNAL_USERS_LIMIT = 100;
const VERIFY_MAPPING_LIMIT = 20;

function splitName(realName: string): { firstName: string; lastName: string } {
  const n = realName.trim();
  const i = n.indexOf(' ');
  return i < 0 ? { firstName: n, lastName: '' } : { firstName: n.slice(0, i), lastName: n.slice(i + 1).trim() };
}

/**
 * The LDAP realm (Nexus realm id `LdapRealm`): user id + password checked against the configured
 * servers in order. Successful lookups are cached briefly (keyed by a hash of the credentials);
 * failures never are. A server that is down answers nothing within its timeout and is then skipped
 * for its retry delay; the local realm, first in the chain, never waits on it.
 */
export class LdapRealm implements Realm {
  readonly id = LDAP_REALM;
  readonly name = 'LDAP Realm';
  readonly servers: LdapServers;
  // Bounded by count without preallocating room for all entries (as `max` would).
  private readonly cache = new LRUCache<string, { identity: LdapIdentity; until: number }>({ maxSize: CACHE_MAX, sizeCalculation: () => 1 });
  private readonly inflight = new Map<string, Promise<LdapIdentity | null>>();
  private readonly circuits = new Map<string, Circuit>();
  /** Bumped by reset(): a lookup that started under an older configuration is not cached. */
  private generation = 0;

  constructor(
    db: Db,
    secrets: Secrets,
    private readonly log: Logger,
    /** Local roles given to an LDAP user (user_role_mappings, source LDAP). */
    private readonly mappedRoles: (userId: string) => Promise<string[]>,
    private readonly cacheMs = 60_000,
  ) {
    this.servers = new LdapServers(db, secrets, () => this.reset());
  }

  /**
   * Creates the realm and wires it in: the realm chain, LDAP users for the users API, and the
   * principal lookup that lets API tokens of LDAP users resolve.
   */
  static install(app: Stowage): LdapRealm {
    const security = app.security;
    const realm = new LdapRealm(app.db, app.secrets, app.log, (userId) => security.mappedRoles(userId, LDAP_SOURCE));
    security.register(realm);
    security.externalUsers = (source, userIdPrefix) => realm.externalUsers(source, userIdPrefix);
    app.tokens.registerSource(LDAP_SOURCE, (userId) => realm.principal(userId));
    return realm;
  }

  /** The registered realm (for the REST API). */
  static of(security: Security): LdapRealm {
    const r = security.available().find((x): x is LdapRealm => x instanceof LdapRealm);
    if (!r) throw new Error('LdapRealm is not registered');
    return r;
  }

  /** Drops cached logins and reopens every circuit (after a configuration change, or on request). */
  reset(): void {
    this.generation++;
    this.cache.clear();
    this.inflight.clear();
    this.circuits.clear();
  }

  clearCache(): void {
    this.reset();
  }

  async authenticate(userId: string, password: string): Promise<Principal | null> {
    // Never an unauthenticated bind: an empty password is refused before any server is asked.
    if (!userId || !password || userId.length > 1024 || password.length > 4096) return null;
    const key = 'p:' + createHash('sha256').update(userId).update('\0').update(password).digest('hex');
    const identity = await this.cached(key, () => this.login(userId, password));
    return identity ? this.principalOf(identity) : null;
  }

  /**
   * The principal of an LDAP user as the directory has it now, without a password: for credentials
   * that stand for the user (API tokens of LDAP users). Null when no server knows the user.
   */
  async principal(userId: string): Promise<Principal | null> {
    if (!userId || userId.length > 1024) return null;
    const identity = await this.cached('u:' + createHash('sha256').update(userId).digest('hex'), () => this.find(userId));
    return identity ? this.principalOf(identity) : null;
  }

  private async cached(key: string, load: () => Promise<LdapIdentity | null>): Promise<LdapIdentity | null> {
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return hit.identity;
    if (hit) this.cache.delete(key);
    // Concurrent requests with the same credentials share one directory round trip.
    let p = this.inflight.get(key);
    if (!p) {
      const mine: Promise<LdapIdentity | null> = load().finally(() => {
        if (this.inflight.get(key) === mine) this.inflight.delete(key);
      });
      this.inflight.set(key, (p = mine));
    }
    const generation = this.generation;
    const identity = await p;
    if (identity && generation === this.generation) {
      this.cache.set(key, { identity, until: Date.now() + this.cacheMs });
    }
    return identity;
  }

  /** Groups (when they are roles) and the local roles mapped to the user, read fresh on every request. */
  private async principalOf(identity: LdapIdentity): Promise<Principal> {
    const roles = [...(identity.groupsAsRoles ? identity.groups : []), ...(await this.mappedRoles(identity.userId))];
    return { userId: identity.userId, anonymous: false, roles: [...new Set(roles)], source: LDAP_SOURCE };
  }

  private circuit(s: LdapServerRow): Circuit {
    const key = `${s.id}|${serverUrl(s.config)}`;
    let c = this.circuits.get(key);
    if (!c) this.circuits.set(key, (c = new Circuit()));
    return c;
  }

  /**
   * Runs `work` on each server in order, skipping open circuits, until one returns a value;
   * a server error counts an incident and moves on. Null when no server answered with a value.
   */
  private async eachServer<T>(work: (s: LdapSession) => Promise<T | null>): Promise<T | null> {
    for (const s of await this.servers.list()) {
      const circuit = this.circuit(s);
      if (circuit.isOpen(Date.now())) continue;
      try {
        const r = await LdapSession.run(s.config, this.servers.password(s.config), work);
        circuit.success();
        if (r !== null) return r;
      } catch (e) {
        const opened = circuit.failure(s.config, Date.now());
        const msg = `LDAP server '${s.name}' failed: ${(e as Error).message}`;
        if (opened) this.log.warn(`${msg}; skipped for ${s.config.connectionRetryDelaySeconds} s`);
        else this.log.warn(msg);
        if (!(e instanceof LdapServerError)) this.log.debug('LDAP failure detail', e);
      }
    }
    return null;
  }

  private identity(s: LdapSession, user: LdapUser, groups: string[]): LdapIdentity {
    return { userId: user.userId, realName: user.realName, email: user.email, server: s.cfg.name, groups, groupsAsRoles: s.cfg.ldapGroupsAsRoles };
  }

  private login(userId: string, password: string): Promise<LdapIdentity | null> {
    return this.eachServer(async (s) => {
      const user = await s.findUser(userId);
      if (!user) return null;
      const groups = await s.groupsOf(user);
      if (!(await s.checkPassword(user, password))) return null;
      return this.identity(s, user, groups);
    });
  }

  private find(userId: string): Promise<LdapIdentity | null> {
    return this.eachServer(async (s) => {
      const user = await s.findUser(userId);
      return user ? this.identity(s, user, await s.groupsOf(user)) : null;
    });
  }

  /**
   * LDAP users for the users API (`source=LDAP`): ids starting with `userIdPrefix`, from every
   * server in order (the first server wins for an id), at most 100, as Nexus UserXO records.
   */
  async externalUsers(source: string, userIdPrefix = ''): Promise<LdapUserXO[]> {
    if (source.toUpperCase() !== LDAP_SOURCE) return [];
    const found = new Map<string, LdapIdentity>();
    await this.eachServer(async (s) => {
      // The exact id first: a page full of longer ids must not hide it (the users API looks users up this way).
      const exact = userIdPrefix ? await s.findUser(userIdPrefix) : null;
      const page = await s.findUsers(userIdPrefix, EXTERNAL_USERS_LIMIT - found.size);
      for (const u of exact ? [{ ...exact, passwords: [] }, ...page] : page) {
        if (found.size >= EXTERNAL_USERS_LIMIT) break;
        if (!found.has(u.userId)) found.set(u.userId, this.identity(s, u, await s.groupsOf(u)));
      }
      // Keep asking the next servers until the page is full.
      return found.size >= EXTERNAL_USERS_LIMIT ? true : null;
    });
    const out: LdapUserXO[] = [];
    for (const i of [...found.values()].sort((a, b) => a.userId.localeCompare(b.userId))) {
      out.push({
        userId: i.userId,
        ...splitName(i.realName),
        emailAddress: i.email,
        source: LDAP_SOURCE,
        status: 'active',
        readOnly: true,
        roles: await this.mappedRoles(i.userId),
        externalRoles: i.groups,
      });
    }
    return out;
  }

  // Checks for the configuration screens: a configuration that need not be saved, errors thrown
  // as LdapServerError with the server's message. The bind password is the one given (or kept).

  async verifyConnection(cfg: LdapServerConfig): Promise<void> {
    await LdapSession.run(cfg, this.servers.password(cfg), (s) => s.checkBase());
  }

  async verifyUserMapping(cfg: LdapServerConfig): Promise<LdapMappedUser[]> {
    return LdapSession.run(cfg, this.servers.password(cfg), async (s) => {
      const out: LdapMappedUser[] = [];
      for (const u of await s.findUsers('', VERIFY_MAPPING_LIMIT)) {
        out.push({ username: u.userId, realName: u.realName, email: u.email, membership: await s.groupsOf(u) });
      }
      return out;
    });
  }

  /** Resolves when `username` / `password` log in with this configuration; the reason otherwise. */
  async verifyLogin(cfg: LdapServerConfig, username: string, password: string): Promise<LdapMappedUser> {
    const r = await LdapSession.run(cfg, this.servers.password(cfg), async (s) => {
      const user = await s.findUser(username);
      if (!user) return { error: `User '${username}' was not found (or is not unique) with this user mapping` };
      const membership = await s.groupsOf(user);
      if (!(await s.checkPassword(user, password))) return { error: `Login of '${username}' failed: invalid credentials` };
      return { user: { username: user.userId, realName: user.realName, email: user.email, membership } };
    });
    if ('error' in r) throw new LdapLoginRefused(r.error ?? 'Login failed');
    return r.user;
  }
}

/** verify-login: the server answered, and said no. */
export class LdapLoginRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LdapLoginRefused';
  }
}
