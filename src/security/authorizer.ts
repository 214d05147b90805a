import type { ContentAction } from '../repository/types.js';
import type { Principal } from './principal.js';

/** What a principal asks to do to content: the one shape every content request is checked in. */
export interface ContentPermission {
  format: string;
  repository: string;
  action: ContentAction;
  /** Path inside the repository with a leading '/' (content selectors match on it); absent for whole-repository checks. */
  path?: string;
}

/**
 * The one authorization hook. Every content request and every admin request passes through
 * it; replacing the policy means replacing this object, never touching a format.
 */
export interface Authorizer {
  canContent(principal: Principal, perm: ContentPermission): Promise<boolean>;
  /** Application privilege such as `nx-repositories-read` or `nx-blobstores-all`. */
  canApp(principal: Principal, privilege: string): Promise<boolean>;
}

/** Source of a role's privileges (built-in now; the security model stores them). */
export interface RoleSource {
  privilegesOf(roles: string[]): Promise<Set<string>>;
}

export const BUILTIN_ROLES: Record<string, string[]> = {
  'nx-admin': ['nx-all'],
  'nx-anonymous': ['nx-healthcheck-read', 'nx-search-read', 'nx-repository-view-*-*-read', 'nx-repository-view-*-*-browse'],
};

export class BuiltinRoles implements RoleSource {
  async privilegesOf(roles: string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const r of roles) for (const p of BUILTIN_ROLES[r] ?? []) out.add(p);
    return out;
  }
}

/** Nexus privilege-name semantics over a role source. */
export class PrivilegeAuthorizer implements Authorizer {
  constructor(private readonly roles: RoleSource) {}

  async canContent(principal: Principal, perm: ContentPermission): Promise<boolean> {
    const privs = await this.roles.privilegesOf(principal.roles);
    if (privs.has('nx-all')) return true;
    for (const f of [perm.format, '*']) {
      for (const r of [perm.repository, '*']) {
        for (const a of [perm.action, '*']) {
          if (privs.has(`nx-repository-view-${f}-${r}-${a}`)) return true;
        }
      }
    }
    return false;
  }

  async canApp(principal: Principal, privilege: string): Promise<boolean> {
    const privs = await this.roles.privilegesOf(principal.roles);
    if (privs.has('nx-all') || privs.has(privilege)) return true;
    const domain = privilege.replace(/-[a-z]+$/, '');
    return privs.has(`${domain}-all`);
  }
}
