/**
 * Which components of a repository a policy selects: the one function preview and run share, so
 * they select exactly the same components.
 *
 * The repository is read a page of component names at a time (every version of a name in the
 * same page, since `retain` ranks them together): one SQL query per page aggregates each
 * component's assets (count, bytes, last stored, last used); the criteria and the ranking are
 * then applied to that page, and the asset paths are read only for the components still selected
 * when the policy has a regex. Memory holds one page, whatever the repository's size.
 */
import type { Db } from '../db/db.js';
import { num } from '../db/db.js';
import type { Repository } from '../repository/repository.js';
import type { Policy } from './policy.js';
import { selectsAnything } from './policy.js';

export const DAY_MS = 86_400_000;
/** Component names read per page. */
const NAMES_PER_PAGE = 500;
const IN_CHUNK = 500;

/** A component as cleanup sees it. */
export interface Candidate {
  id: number;
  namespace: string;
  name: string;
  version: string;
  assetCount: number;
  /** Bytes of its assets' blobs (a blob another asset shares is counted for each). */
  bytes: number;
  /** Newest time one of its assets got its content (the component's when it has none). */
  lastUpdated: number;
  /** Newest download of one of its assets; a never-downloaded asset counts from when it was stored. */
  lastUsed: number;
}

/** Where a scan is: after this component name. */
export interface NameKey {
  namespace: string;
  name: string;
}

/** Filters `rows` (every component of some names) down to what `policy` selects, as of `asOf`. */
async function evaluate(db: Db, repo: Repository, policy: Policy, asOf: number, rows: Candidate[]): Promise<Candidate[]> {
  const c = policy.criteria;
  const format = repo.format;
  const protectedIds = new Set<number>();
  if (c.retain !== undefined) {
    const byName = new Map<string, Candidate[]>();
    for (const r of rows) {
      const k = `${r.namespace}\n${r.name}`;
      const list = byName.get(k);
      if (list) list.push(r);
      else byName.set(k, [r]);
    }
    const byVersion = c.sortBy !== 'date' && format.compareVersions;
    for (const list of byName.values()) {
      list.sort((a, b) => (byVersion ? format.compareVersions!(b.version, a.version) : b.lastUpdated - a.lastUpdated) || b.id - a.id);
      for (const r of list.slice(0, c.retain)) protectedIds.add(r.id);
    }
  }
  const blobCutoff = c.lastBlobUpdated !== undefined ? asOf - c.lastBlobUpdated * DAY_MS : undefined;
  const usedCutoff = c.lastDownloaded !== undefined ? asOf - c.lastDownloaded * DAY_MS : undefined;
  let out = rows.filter((r) => {
    if (protectedIds.has(r.id)) return false;
    if (blobCutoff !== undefined && !(r.lastUpdated < blobCutoff)) return false;
    if (usedCutoff !== undefined && !(r.lastUsed < usedCutoff)) return false;
    if (c.releaseType !== undefined) {
      const pre = format.isPrerelease?.(r.version) ?? false;
      if (pre !== (c.releaseType === 'PRERELEASES')) return false;
    }
    return true;
  });
  if (c.regex !== undefined && out.length > 0) {
    const re = new RegExp(c.regex, 'u');
    const matching = new Set<number>();
    for (let i = 0; i < out.length; i += IN_CHUNK) {
      const ids = out.slice(i, i + IN_CHUNK).map((r) => r.id);
      for (const a of await db('assets').whereIn('component_id', ids).select('component_id', 'path')) {
        if (re.test(String(a.path))) matching.add(num(a.component_id));
      }
    }
    out = out.filter((r) => matching.has(r.id));
  }
  return out;
}

const afterName = (k: NameKey | null) => (q: import('knex').Knex.QueryBuilder) => {
  if (k) q.andWhere((w) => w.where('namespace', '>', k.namespace).orWhere((x) => x.where('namespace', k.namespace).andWhere('name', '>', k.name)));
};

/** Every component of the next page of names after `after`, aggregated; `last` is null after the last page. */
async function readPage(db: Db, repositoryId: number, after: NameKey | null): Promise<{ rows: Candidate[]; last: NameKey | null }> {
  const names = await db('components')
    .where({ repository_id: repositoryId })
    .modify(afterName(after))
    .groupBy('namespace', 'name')
    .orderBy([
      { column: 'namespace', order: 'asc' },
      { column: 'name', order: 'asc' },
    ])
    .limit(NAMES_PER_PAGE)
    .select('namespace', 'name');
  if (names.length === 0) return { rows: [], last: null };
  const key = (r: Record<string, unknown>) => ({ namespace: String(r.namespace), name: String(r.name) });
  const last = key(names[names.length - 1]);
  return { rows: await readRange(db, repositoryId, key(names[0]), last), last: names.length < NAMES_PER_PAGE ? null : last };
}

/** Every component whose name lies from `first` to `last` (inclusive), with its assets aggregated. */
async function readRange(db: Db, repositoryId: number, first: NameKey, last: NameKey): Promise<Candidate[]> {
  const raw = await db('components as c')
    .leftJoin('assets as a', 'a.component_id', 'c.id')
    .leftJoin('blobs as b', 'b.id', 'a.blob_id')
    .where('c.repository_id', repositoryId)
    .andWhere((w) => w.where('c.namespace', '>', first.namespace).orWhere((x) => x.where('c.namespace', first.namespace).andWhere('c.name', '>=', first.name)))
    .andWhere((w) => w.where('c.namespace', '<', last.namespace).orWhere((x) => x.where('c.namespace', last.namespace).andWhere('c.name', '<=', last.name)))
    .groupBy('c.id', 'c.namespace', 'c.name', 'c.version', 'c.updated_at')
    .orderBy([
      { column: 'c.namespace', order: 'asc' },
      { column: 'c.name', order: 'asc' },
      { column: 'c.id', order: 'asc' },
    ])
    .select('c.id', 'c.namespace', 'c.name', 'c.version', 'c.updated_at')
    .count({ asset_count: 'a.id' })
    .sum({ bytes: 'b.size' })
    .max({ last_updated: 'a.updated_at' })
    .select(db.raw('max(coalesce(a.last_downloaded, a.updated_at)) as last_used'));
  return raw.map((r: Record<string, unknown>) => {
    const stored = r.last_updated === null || r.last_updated === undefined ? num(r.updated_at) : num(r.last_updated);
    return {
      id: num(r.id),
      namespace: String(r.namespace ?? ''),
      name: String(r.name),
      version: String(r.version ?? ''),
      assetCount: num(r.asset_count ?? 0),
      bytes: num(r.bytes ?? 0) || 0,
      lastUpdated: stored,
      lastUsed: r.last_used === null || r.last_used === undefined ? stored : num(r.last_used),
    };
  });
}

/**
 * The components `policy` selects in `repo` as of `asOf` (ms), a page at a time, in (namespace,
 * name, id) order, starting at the name `from` (included) or at the first. A policy without
 * criteria or retain selects nothing, as in Nexus.
 */
export async function* selectComponents(db: Db, repo: Repository, policy: Policy, asOf: number, from: NameKey | null = null): AsyncGenerator<Candidate[]> {
  if (!selectsAnything(policy.criteria)) return;
  if (from) {
    const selected = await evaluate(db, repo, policy, asOf, await readRange(db, repo.id, from, from));
    if (selected.length > 0) yield selected;
  }
  for (let after = from; ;) {
    const { rows, last } = await readPage(db, repo.id, after);
    if (rows.length === 0) return;
    const selected = await evaluate(db, repo, policy, asOf, rows);
    if (selected.length > 0) yield selected;
    if (!last) return;
    after = last;
  }
}
