import type { Db } from '../db/db.js';
import type { ContentService } from '../content/content-service.js';
import type { Principal } from './principal.js';
import { LOCAL_REALM, type Realm } from './realm.js';
import { LocalUsers } from './users.js';

const ACTIVE_KEY = 'realms.active';

/**
 * Authentication through the ordered, switchable realm chain. Every listener authenticates
 * through this one object; realms are registered by their modules (local, LDAP, tokens…).
 */
export class Security {
  readonly users: LocalUsers;
  private readonly realms = new Map<string, Realm>();

  constructor(
    db: Db,
    private readonly content: ContentService,
    private readonly anonymousDefault: boolean,
  ) {
    this.users = new LocalUsers(db);
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
    const v = await this.content.getProperty('security', ACTIVE_KEY);
    if (v) return JSON.parse(v) as string[];
    return [LOCAL_REALM, ...[...this.realms.keys()].filter((k) => k !== LOCAL_REALM)];
  }

  async setActiveRealmIds(ids: string[]): Promise<void> {
    await this.content.setProperty('security', ACTIVE_KEY, JSON.stringify(ids));
  }

  private async active(): Promise<Realm[]> {
    return (await this.activeRealmIds()).map((id) => this.realms.get(id)).filter((r): r is Realm => !!r);
  }

  async authenticate(userId: string, password: string): Promise<Principal | null> {
    for (const realm of await this.active()) {
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

  async anonymousEnabled(): Promise<boolean> {
    const v = await this.content.getProperty('security', 'anonymous.enabled');
    return v === undefined ? this.anonymousDefault : v === 'true';
  }

  async setAnonymous(enabled: boolean): Promise<void> {
    await this.content.setProperty('security', 'anonymous.enabled', String(enabled));
  }
}
