import type { Principal } from './principal.js';

/**
 * One source of identities. Realms are tried in the active order (Nexus realm ids); the first
 * that recognises the credentials answers. A realm that is unreachable (LDAP down) answers null
 * within its own timeout and never blocks the others.
 */
export interface Realm {
  /** Nexus realm id, e.g. NexusAuthenticatingRealm, LdapRealm, NpmToken, DockerToken. */
  readonly id: string;
  /** Human name for /realms/available. */
  readonly name: string;
  /** User id + password (HTTP Basic, form login). */
  authenticate?(userId: string, password: string): Promise<Principal | null>;
  /** `Authorization: Bearer <token>`. */
  authenticateBearer?(token: string): Promise<Principal | null>;
  /**
   * True when a Basic password is recognisably this realm's own credential (a token with its
   * prefix): the chain asks this realm first, so a token does not pay the local slow hash on every
   * request. The other realms are still asked when it answers null.
   */
  claims?(password: string): boolean;
}

export const LOCAL_REALM = 'NexusAuthenticatingRealm';
