import type { ContentAction } from '../repository/types.js';

export interface Principal {
  userId: string;
  anonymous: boolean;
  /** Role ids the realm gives (local roles, external group names); the authorizer expands nested roles. */
  roles: string[];
  /** Where the identity came from: default (local), ldap, token… */
  source: string;
  /**
   * Set when the request was authenticated by a user token: `read` tokens may only read, whatever
   * the user's roles allow (enforced by the ScopedAuthorizer around the one authorizer).
   */
  scope?: 'read' | 'write';
  /** The token's public id when authenticated by a user token (tokens cannot mint tokens). */
  tokenId?: string;
  /**
   * Set when the request was authenticated by a scoped bearer token (docker's token flow): the
   * principal may do no more than these content actions on these repositories, whatever its roles
   * allow, and no application privilege at all (enforced by the ScopedAuthorizer).
   */
  grants?: ContentGrant[];
}

/** Content actions a scoped token grants on one repository. */
export interface ContentGrant {
  repository: string;
  actions: ContentAction[];
}

export const ANONYMOUS_USER = 'anonymous';

export function anonymousPrincipal(): Principal {
  return { userId: ANONYMOUS_USER, anonymous: true, roles: ['nx-anonymous'], source: 'default' };
}
