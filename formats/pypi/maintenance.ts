/**
 * The maintenance hook: a hosted repository's project pages and project list are documents
 * derived from its files, rebuilt after every change that put or removed a file, whatever made it
 * (twine, a REST delete of an asset or a component, a yank, cleanup). A `.metadata` whose file is
 * gone goes with it; a file whose `.metadata` is gone is no longer advertised with one.
 */
import type { AssetRow, AssetView, ComponentRow } from '../../src/content/types.js';
import type { Repository } from '../../src/repository/repository.js';
import type { CommittedChange } from '../../src/repository/unit-of-work.js';
import type { Stowage } from '../../src/stowage.js';
import { fileOfPath, fileUrl, LIST_PATH, pagePath, projectOfPage, type FileAttributes } from './layout.js';
import { normalizeName } from './names.js';
import { JSON_TYPE, renderListJson, renderProjectJson, versionsOf, type ProjectFile, type ProjectPage } from './simple-page.js';

/** The projects whose files a change touched. */
function touchedProjects(change: CommittedChange): Set<string> {
  const out = new Set<string>();
  for (const a of [...change.assetsPut, ...change.assetsDeleted] as AssetRow[]) {
    const f = fileOfPath(a.path);
    if (f) out.add(f.project);
  }
  for (const c of change.componentsDeleted as ComponentRow[]) out.add(normalizeName(c.name));
  return out;
}

export async function maintainPages(change: CommittedChange, app: Stowage): Promise<void> {
  const repo = change.repository;
  // A proxy's pages are upstream's; a group's are merged from its members when read.
  if (repo.type !== 'hosted') return;
  let listChanged = false;
  for (const project of touchedProjects(change)) if (await rebuildPage(app, repo, project)) listChanged = true;
  if (listChanged) await rebuildList(app, repo);
}

/** A stamp of the assets a page is built from: the change commits only if none moved meanwhile. */
const stampOf = (assets: AssetView[]) => assets.map((a) => `${a.id}:${a.updated_at}`).join(',');

/** The page of a project from its stored files (null: no file left). Pure. */
export function hostedPage(project: string, assets: AssetView[]): { page: ProjectPage | null; orphans: string[] } {
  const byPath = new Map(assets.map((a) => [a.path, a]));
  const files: Array<ProjectFile & { order: number }> = [];
  const orphans: string[] = [];
  for (const a of assets) {
    const loc = fileOfPath(a.path);
    if (!loc) continue;
    if (loc.metadata) {
      if (!byPath.has(a.path.slice(0, -'.metadata'.length))) orphans.push(a.path);
      continue;
    }
    const p = (a.attributes as { pypi?: FileAttributes }).pypi;
    if (!p || p.filename !== loc.filename) continue;
    const meta = byPath.get(`${a.path}.metadata`);
    // sha256 only, as pypi.org: installers know it, and other names are not hashlib's (blake2b_256).
    // md5 and BLAKE2b-256 are in the JSON API.
    const hashes: Record<string, string> = { sha256: a.sha256 };
    files.push({
      filename: p.filename,
      url: fileUrl(project, p.filename),
      hashes,
      requiresPython: p.requiresPython ?? null,
      coreMetadata: meta ? { sha256: meta.sha256 } : null,
      yanked: p.yanked ?? false,
      size: a.size,
      uploadTime: p.uploadTime,
      order: a.created_at,
    });
  }
  if (files.length === 0) return { page: null, orphans };
  files.sort((x, y) => x.order - y.order || (x.filename < y.filename ? -1 : 1));
  const clean = files.map(({ order: _order, ...f }) => f);
  return { page: { name: project, files: clean, versions: versionsOf(clean) }, orphans };
}

/** Rebuilds one project's page; true when the page appeared or went (the list changes). */
async function rebuildPage(app: Stowage, repo: Repository, project: string): Promise<boolean> {
  const prefix = `packages/${project}/`;
  const path = pagePath(project);
  const { committed } = await repo.change({ source: 'maintenance', key: project }, async (c) => {
    const assets = await app.content.findAssets(repo.id, { pathPrefix: prefix });
    const stamp = stampOf(assets);
    c.verify(async (read) => stampOf(await read.assets({ pathPrefix: prefix })) === stamp);
    const { page, orphans } = hostedPage(project, assets);
    for (const o of orphans) c.deleteAsset(o);
    if (!page) {
      c.deleteAsset(path);
      return;
    }
    c.put(path, await c.stageBytes(renderProjectJson(page)), { contentType: JSON_TYPE, kind: 'metadata', component: null });
  });
  return committed.created.includes(path) || committed.assetsDeleted.some((a) => a.path === path);
}

async function rebuildList(app: Stowage, repo: Repository): Promise<void> {
  await repo.change({ source: 'maintenance', key: LIST_PATH }, async (c) => {
    const pages = await app.content.findAssets(repo.id, { pathLike: 'simple/%/' });
    const names = pages.map((a) => projectOfPage(a.path)).filter((n): n is string => !!n);
    const stamp = names.join(',');
    c.verify(
      async (read) =>
        (await read.assets({ pathLike: 'simple/%/' }))
          .map((a) => projectOfPage(a.path))
          .filter((n): n is string => !!n)
          .join(',') === stamp,
    );
    if (names.length === 0) c.deleteAsset(LIST_PATH);
    else c.put(LIST_PATH, await c.stageBytes(renderListJson(names.sort())), { contentType: JSON_TYPE, kind: 'metadata', component: null });
  });
}
