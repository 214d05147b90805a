export interface Principal {
  userId: string;
  anonymous: boolean;
  /** Effective role ids (nested roles already expanded by the realm). */
  roles: string[];
  /** Where the identity came from: default (local), ldap, token… */
  source: string;
}

export const ANONYMOUS_USER = 'anonymous';

export function anonymousPrincipal(): Principal {
  return { userId: ANONYMOUS_USER, anonymous: true, roles: ['nx-anonymous'], source: 'default' };
}
