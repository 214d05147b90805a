import type Koa from 'koa';
import type { Stowage } from '../stowage.js';
import { notFound } from '../errors.js';
import { denied, principalOf, requireContent } from '../http/auth.js';
import type { AssetQuery, ComponentFilter } from '../content/content-service.js';
import type { AssetView, ComponentRow } from '../content/types.js';
import type { Repository } from '../repository/repository.js';
import type { ContentAction } from '../repository/types.js';
import { canContent, contentRepositories } from './access.js';
import { assetXO, componentXO, decodeId } from './content-xo.js';

/**
 * Which stored repositories a request covers, and the repository each is shown as: a group shows
 * its members' content under its own name. Keys are the stored repositories' ids.
 */
export type Scope = Map<number, { view: Repository; owner: Repository }>;

/** One repository the caller may `action` (a group: its members, shown as the group). */
export async function repositoryScope(app: Stowage, ctx: Koa.Context, name: string, action: ContentAction = 'browse'): Promise<Scope> {
  const view = await app.repositories.require(name);
  const p = principalOf(ctx);
  if (!(await canContent(app, p, view, action))) throw denied(p, `${action} repository '${name}'`);
  const scope: Scope = new Map();
  for (const owner of await contentRepositories(app, view)) scope.set(owner.id, { view, owner });
  return scope;
}

/**
 * Search scope: the named repository, or every non-group repository the caller may browse;
 * optionally only one format. Nothing browsable is an empty scope, not an error (Nexus search).
 */
export async function searchScope(app: Stowage, ctx: Koa.Context, opts: { repository?: string; format?: string }): Promise<Scope> {
  const p = principalOf(ctx);
  if (!p) throw denied(p, 'search');
  const scope: Scope = new Map();
  if (opts.repository) {
    const view = await app.repositories.find(opts.repository);
    if (!view || (opts.format && view.format.name !== opts.format) || !(await canContent(app, p, view, 'browse'))) return scope;
    for (const owner of await contentRepositories(app, view)) scope.set(owner.id, { view, owner });
    return scope;
  }
  for (const repo of await app.repositories.list()) {
    if (repo.type === 'group' || (opts.format && repo.format.name !== opts.format)) continue;
    if (await canContent(app, p, repo, 'browse')) scope.set(repo.id, { view: repo, owner: repo });
  }
  return scope;
}

export interface ContentSearch extends ComponentFilter {
  sha256?: string;
  sha1?: string;
  md5?: string;
  sha512?: string;
}

type ComponentItem = ReturnType<typeof componentXO>;
type AssetItem = ReturnType<typeof assetXO>;

const EMPTY = { items: [], continuationToken: null };

/** Builds API views of content rows within a scope. */
export class ContentViews {
  constructor(
    private readonly app: Stowage,
    private readonly baseUrl: string,
  ) {}

  private assetItem(a: AssetView, scope: Scope): AssetItem {
    const s = scope.get(a.repository_id)!;
    return assetXO(a, s.view, s.owner, this.baseUrl);
  }

  private async components(rows: ComponentRow[], scope: Scope, assetAttributes?: Record<string, string>): Promise<ComponentItem[]> {
    const assets = new Map<number, AssetItem[]>();
    for (const a of await this.app.content.assetsOfComponents(
      rows.map((c) => c.id),
      assetAttributes,
    )) {
      const list = assets.get(a.component_id!) ?? [];
      list.push(this.assetItem(a, scope));
      assets.set(a.component_id!, list);
    }
    return rows.map((c) => componentXO(c, assets.get(c.id) ?? [], scope.get(c.repository_id)!.view));
  }

  async componentPage(scope: Scope, search: ContentSearch, token: string | null, limit: number): Promise<{ items: ComponentItem[]; continuationToken: string | null }> {
    if (scope.size === 0) return EMPTY;
    const page = await this.app.content.listComponents({ ...search, repositoryIds: [...scope.keys()] }, token, limit);
    return { items: await this.components(page.items, scope, search.assetAttributes), continuationToken: page.continuationToken };
  }

  async assetPage(scope: Scope, search: ContentSearch, token: string | null, limit: number): Promise<{ items: AssetItem[]; continuationToken: string | null }> {
    if (scope.size === 0) return EMPTY;
    const { sha256, sha1, md5, sha512, ...component } = search;
    const q: AssetQuery = { repositoryIds: [...scope.keys()], sha256, sha1, md5, sha512 };
    if (Object.values(component).some((v) => v !== undefined)) q.component = component;
    const page = await this.app.content.listAssets(q, token, limit);
    return { items: page.items.map((a) => this.assetItem(a, scope)), continuationToken: page.continuationToken };
  }

  /** A component by API id, checked against what the caller may do in the repository it names. */
  async findComponent(ctx: Koa.Context, id: string, action: ContentAction): Promise<{ item: ComponentItem; row: ComponentRow; owner: Repository }> {
    const { scope, rowId } = await this.resolve(ctx, id);
    const row = await this.app.content.componentById(rowId);
    if (!row || !scope.has(row.repository_id)) throw notFound(`Component '${id}' not found`);
    await this.require(ctx, scope, row.repository_id, action);
    return { item: (await this.components([row], scope))[0], row, owner: scope.get(row.repository_id)!.owner };
  }

  /** An asset by API id, checked against what the caller may do in the repository it names. */
  async findAsset(ctx: Koa.Context, id: string, action: ContentAction): Promise<{ item: AssetItem; row: AssetView; owner: Repository }> {
    const { scope, rowId } = await this.resolve(ctx, id);
    const row = await this.app.content.assetById(rowId);
    if (!row || !scope.has(row.repository_id)) throw notFound(`Asset '${id}' not found`);
    await this.require(ctx, scope, row.repository_id, action);
    return { item: this.assetItem(row, scope), row, owner: scope.get(row.repository_id)!.owner };
  }

  /** The id's repository (browsable by the caller) and row id; anything unknown is a 404. */
  private async resolve(ctx: Koa.Context, id: string): Promise<{ scope: Scope; rowId: number }> {
    const d = decodeId(id);
    if (!d || !(await this.app.repositories.find(d.repository))) throw notFound(`No item with id '${id}'`);
    return { scope: await repositoryScope(this.app, ctx, d.repository, 'browse'), rowId: d.id };
  }

  /** Browsing happened through the view; any other action is checked on the repository that stores the row. */
  private async require(ctx: Koa.Context, scope: Scope, repositoryId: number, action: ContentAction): Promise<void> {
    if (action === 'browse') return;
    const { owner } = scope.get(repositoryId)!;
    await requireContent(this.app, ctx, { format: owner.format.name, repository: owner.name, action });
  }
}
