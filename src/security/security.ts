import type { Db } from '../db/db.js';
import type { ContentService } from '../content/content-service.js';
import type { Principal } from './principal.js';
import { LocalUsers } from './users.js';

/**
 * Realms in order. Today: local users; bearer tokens and LDAP plug in here (security issue),
 * and every listener authenticates through this one object.
 */
export class Security {
  readonly users: LocalUsers;

  constructor(
    db: Db,
    private readonly content: ContentService,
    private readonly anonymousDefault: boolean,
  ) {
    this.users = new LocalUsers(db);
  }

  async authenticate(userId: string, password: string): Promise<Principal | null> {
    return this.users.authenticate(userId, password);
  }

  async authenticateBearer(_token: string): Promise<Principal | null> {
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
