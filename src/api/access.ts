import type Koa from 'koa';
import type { Stowage } from '../stowage.js';
import type { Repository } from '../repository/repository.js';
import type { ContentAction } from '../repository/types.js';
import type { Principal } from '../security/principal.js';
import { denied, principalOf } from '../http/auth.js';

export type AdminAction = 'browse' | 'read' | 'edit' | 'add' | 'delete';

/**
 * Repository configuration privilege, as Nexus names it: `nx-repository-admin-<format>-<repo>-<action>`
 * (a granted privilege with `*` for any part, or a custom repository-admin privilege, covers it).
 */
export async function canRepoAdmin(app: Stowage, principal: Principal | null, format: string, repo: string, action: AdminAction): Promise<boolean> {
  return !!principal && app.authorizer.canApp(principal, `nx-repository-admin-${format}-${repo}-${action}`);
}

export async function requireRepoAdmin(app: Stowage, ctx: Koa.Context, format: string, repo: string, action: AdminAction): Promise<Principal> {
  const p = principalOf(ctx);
  if (await canRepoAdmin(app, p, format, repo, action)) return p!;
  throw denied(p, `${action} the configuration of repository '${repo}'`);
}

export async function canContent(app: Stowage, principal: Principal | null, repo: Repository, action: ContentAction): Promise<boolean> {
  return !!principal && app.authorizer.canContent(principal, { format: repo.format.name, repository: repo.name, action });
}

/**
 * The repositories whose content a listing covers: a group stands for its members (nested groups
 * flattened, each repository once), anything else for itself.
 */
export async function contentRepositories(app: Stowage, repo: Repository): Promise<Repository[]> {
  const out = new Map<number, Repository>();
  const seen = new Set<string>();
  const walk = async (r: Repository): Promise<void> => {
    if (seen.has(r.name)) return;
    seen.add(r.name);
    if (r.type !== 'group') {
      out.set(r.id, r);
      return;
    }
    for (const n of r.config.group?.memberNames ?? []) {
      const m = await app.repositories.find(n);
      if (m) await walk(m);
    }
  };
  await walk(repo);
  return [...out.values()];
}
