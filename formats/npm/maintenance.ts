/**
 * npm's maintenance hook: the packument of a hosted repository stays true whatever removed a
 * tarball or a version's component (the REST API, cleanup, GC). A version whose tarball is gone
 * leaves the packument; dist-tags that named it go, and `latest` moves to the highest remaining
 * release (a prerelease only when no release is left). Changes made through the npm protocol
 * keep the packument true themselves: then there is nothing to do here.
 */
import type { AssetRow, ComponentRow } from '../../src/content/types.js';
import type { Repository } from '../../src/repository/repository.js';
import type { CommittedChange } from '../../src/repository/unit-of-work.js';
import type { Stowage } from '../../src/stowage.js';
import { changePackage } from './package-change.js';
import { nextRev, tarballBasename, tarballPath, type Packument } from './packument.js';
import { own } from './safe-json.js';
import { highestVersion } from './versions.js';

/** The packages whose tarballs or version components a change removed. */
function touchedPackages(change: CommittedChange): Set<string> {
  const names = new Set<string>();
  const add = (n: unknown) => typeof n === 'string' && n !== '' && names.add(n);
  for (const a of change.assetsDeleted as AssetRow[]) if (a.kind === 'content') add(a.attributes.packageName);
  for (const c of change.componentsDeleted as ComponentRow[]) add(c.namespace ? `@${c.namespace}/${c.name}` : c.name);
  return names;
}

export async function maintainPackuments(change: CommittedChange, app: Stowage): Promise<void> {
  const repo = change.repository;
  // A proxy's packument is upstream's; a group's is merged from its members on read.
  if (repo.type !== 'hosted') return;
  for (const name of touchedPackages(change)) await dropMissingVersions(app, repo, name);
}

async function dropMissingVersions(app: Stowage, repo: Repository, name: string): Promise<void> {
  await changePackage(repo, name, { source: 'maintenance' }, async ({ doc }) => {
    if (!doc) return doc;
    const stored = new Set((await app.content.findAssets(repo.id, { pathPrefix: `${name}/-/` })).map((a) => a.path));
    const gone = Object.entries(doc.versions)
      .filter(([v, m]) => !stored.has(tarballPath(name, tarballBasename(m?.dist?.tarball, name, v))))
      .map(([v]) => v);
    if (gone.length === 0) return doc;
    return withoutVersions(doc, gone, new Date());
  });
}

/** The packument without `gone` (null when no version is left), its dist-tags re-pointed. Pure. */
export function withoutVersions(existing: Packument, gone: string[], at: Date): Packument | null {
  const doc = structuredClone(existing);
  for (const v of gone) {
    delete doc.versions[v];
    if (doc.time) delete doc.time[v];
  }
  const left = Object.keys(doc.versions);
  if (left.length === 0) return null;
  for (const [tag, v] of Object.entries(doc['dist-tags'])) if (!own(doc.versions, v)) delete doc['dist-tags'][tag];
  if (!doc['dist-tags'].latest) doc['dist-tags'].latest = highestVersion(left)!;
  doc.time = { ...(doc.time ?? {}), modified: at.toISOString() };
  doc._rev = nextRev(existing._rev, 'maintain' + gone.join(','));
  return doc;
}
