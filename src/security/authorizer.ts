import type { ContentAction } from '../repository/types.js';
import type { Principal } from './principal.js';
import { builtinPrivilege, implies, permissionOf, type Permission } from './permissions.js';
import type { Grants, RoleSource } from './security-store.js';

export type { RoleSource } from './security-store.js';

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
  /**
   * A built-in privilege by name: application (`nx-repositories-read`, `nx-blobstores-all`) or
   * repository admin (`nx-repository-admin-raw-files-edit`).
   */
  canApp(principal: Principal, privilege: string): Promise<boolean>;
}

function granted(grants: Grants, requested: Permission): boolean {
  return grants.permissions.some((g) => implies(g, requested));
}

/** Whole-repository decisions per grants object (grants are per security snapshot, so is this). */
const decisions = new WeakMap<Grants, Map<string, boolean>>();

function repositoryGranted(grants: Grants, perm: ContentPermission): boolean {
  let m = decisions.get(grants);
  if (!m) decisions.set(grants, (m = new Map()));
  const key = `${perm.format}\n${perm.repository}\n${perm.action}`;
  let ok = m.get(key);
  if (ok === undefined) {
    ok = granted(grants, [['nexus'], ['repository-view'], [perm.format], [perm.repository], [perm.action]]);
    if (m.size >= 10_000) m.clear();
    m.set(key, ok);
  }
  return ok;
}

/**
 * Nexus semantics over a role source: a principal may do what any privilege of its (nested)
 * roles implies. Content-selector privileges grant their actions on a path they match; a
 * whole-repository check (no path) is never granted by a selector.
 */
export class PrivilegeAuthorizer implements Authorizer {
  constructor(private readonly roles: RoleSource) {}

  async canContent(principal: Principal, perm: ContentPermission): Promise<boolean> {
    const grants = await this.roles.grantsOf(principal);
    if (repositoryGranted(grants, perm)) return true;
    if (perm.path === undefined) return false;
    const input = { format: perm.format, path: perm.path };
    return grants.selectors.some(
      (s) =>
        (s.format === '*' || s.format === perm.format) &&
        (s.repository === '*' || s.repository === perm.repository) &&
        (s.actions.includes('*') || s.actions.includes(perm.action)) &&
        s.selector.matches(input),
    );
  }

  async canApp(principal: Principal, privilege: string): Promise<boolean> {
    const p = builtinPrivilege(privilege);
    const requested = p && permissionOf(p);
    if (!requested) return false;
    return granted(await this.roles.grantsOf(principal), requested);
  }
}
