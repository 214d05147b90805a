/**
 * One cleanup run of a repository:
 *   1. a journal left by a run that did not finish (a crash) is finished first;
 *   2. the selection of each policy is written to the journal (every component it names, with
 *      the time its content last changed) before anything is deleted;
 *   3. the journal's components are deleted through the unit of work (source `cleanup`), a batch
 *      per change, each asset expected unchanged — a component stored again, or changed, since it
 *      was selected stays — so the format's maintenance hook keeps its metadata true;
 *   4. the format reclaims what only the deleted components kept (docker: untagged manifests and
 *      their layers);
 *   5. the blobs of everything deleted that nothing references any more are removed, and with
 *      them the bytes (blob store usage drops in the same run).
 * Nothing is deleted that the journal does not name.
 */
import { now, num } from '../db/db.js';
import type { Repository } from '../repository/repository.js';
import type { Stowage } from '../stowage.js';
import type { TaskRunContext } from '../tasks/task-runs.js';
import type { Policy } from './policy.js';
import { selectComponents } from './selection.js';

/** Components deleted per change: one transaction, one maintenance call (npm rewrites a packument once per batch). */
const BATCH = 500;
const SYSTEM = { principal: null, remoteAddress: '' };

export interface RepositoryReport {
  repository: string;
  policies: string[];
  componentsDeleted: number;
  assetsDeleted: number;
  blobsDeleted: number;
  bytesReclaimed: number;
  /** Selected components left alone because they changed since they were selected. */
  skipped: number;
  resumed: number;
}

export interface RunOptions {
  asOf: number;
  graceMs: number;
  ctx?: Pick<TaskRunContext, 'log' | 'signal'>;
}

/** Writes what the policies select to the journal; returns how many components that is. */
async function journal(app: Stowage, repo: Repository, policies: Policy[], asOf: number, signal?: AbortSignal): Promise<number> {
  let n = 0;
  const t = now();
  for (const p of policies) {
    for await (const page of selectComponents(app.db, repo, p, asOf)) {
      signal?.throwIfAborted();
      for (let i = 0; i < page.length; i += BATCH) {
        const rows = page.slice(i, i + BATCH).map((c) => ({ repository_id: repo.id, component_id: c.id, last_updated: c.lastUpdated, created_at: t }));
        await app.db('cleanup_journal').insert(rows).onConflict(['repository_id', 'component_id']).ignore();
      }
      n += page.length;
    }
  }
  return n;
}

interface Deleted {
  components: number;
  assets: number;
  skipped: number;
  blobIds: number[];
}

/** The component's assets as stored now, with the newest change among them. */
async function assetsOf(app: Stowage, componentIds: number[]): Promise<Map<number, Array<{ path: string; blobId: number; updated: number }>>> {
  const out = new Map<number, Array<{ path: string; blobId: number; updated: number }>>();
  if (componentIds.length === 0) return out;
  for (const r of await app.db('assets').whereIn('component_id', componentIds).select('component_id', 'path', 'blob_id', 'updated_at')) {
    const id = num(r.component_id);
    const list = out.get(id) ?? [];
    list.push({ path: String(r.path), blobId: num(r.blob_id), updated: num(r.updated_at) });
    out.set(id, list);
  }
  return out;
}

/** Deletes one batch of journaled components; falls back to one change per component when a batch meets a concurrent change. */
async function deleteBatch(repo: Repository, app: Stowage, rows: Array<{ component_id: number; last_updated: number }>, out: Deleted): Promise<void> {
  const ids = rows.map((r) => r.component_id);
  const existing = new Set((await app.db('components').whereIn('id', ids).where({ repository_id: repo.id }).select('id')).map((r) => num(r.id)));
  const assets = await assetsOf(app, ids);
  const eligible = rows.filter((r) => {
    if (!existing.has(r.component_id)) return false;
    const newest = Math.max(0, ...(assets.get(r.component_id) ?? []).map((a) => a.updated));
    // Stored again (or changed) since it was selected: it no longer is what the selection named.
    if (newest > r.last_updated) {
      out.skipped++;
      return false;
    }
    return true;
  });
  const attempt = async (batch: typeof eligible): Promise<boolean> => {
    const expected = new Map(batch.flatMap((r) => (assets.get(r.component_id) ?? []).map((a) => [a.path, a.blobId] as const)));
    const { skipped, committed } = await repo.change({ source: 'cleanup', onConflict: 'skip' }, (c) => {
      // Inside the transaction: every asset still holds the content it held when read (one query
      // per 500 paths rather than a lock per asset; cleanup deletes thousands).
      if (expected.size > 0) {
        c.verify(async (read) => {
          const now = await read.assets({ paths: [...expected.keys()] });
          return now.length === expected.size && now.every((a) => expected.get(a.path) === a.blob_id);
        });
      }
      for (const r of batch) c.deleteComponent(r.component_id);
    });
    if (skipped) return false;
    out.components += committed.componentsDeleted.length;
    out.assets += committed.assetsDeleted.length;
    for (const a of committed.assetsDeleted) out.blobIds.push(a.blob_id);
    return true;
  };
  if (eligible.length === 0 || (await attempt(eligible))) return;
  for (const r of eligible) if (!(await attempt([r]))) out.skipped++;
}

/** Deletes what the repository's journal names, a batch at a time, removing each batch's rows after it. */
async function drain(app: Stowage, repo: Repository, out: Deleted, signal?: AbortSignal): Promise<void> {
  for (;;) {
    signal?.throwIfAborted();
    const rows = (await app.db('cleanup_journal').where({ repository_id: repo.id }).orderBy('id').limit(BATCH).select('id', 'component_id', 'last_updated')).map((r) => ({
      id: num(r.id),
      component_id: num(r.component_id),
      last_updated: num(r.last_updated),
    }));
    if (rows.length === 0) return;
    await deleteBatch(repo, app, rows, out);
    await app
      .db('cleanup_journal')
      .whereIn(
        'id',
        rows.map((r) => r.id),
      )
      .delete();
  }
}

/** Runs the policies on one repository (see the file comment) and records what it reclaimed in the audit log. */
export async function cleanRepository(app: Stowage, repo: Repository, policies: Policy[], opts: RunOptions): Promise<RepositoryReport> {
  const signal = opts.ctx?.signal;
  const log = (line: string) => opts.ctx?.log(`${repo.name}: ${line}`);
  const started = now();
  const out: Deleted = { components: 0, assets: 0, skipped: 0, blobIds: [] };
  await app.content.flushDownloads();

  const leftover = num((await app.db('cleanup_journal').where({ repository_id: repo.id }).count({ n: '*' }).first())?.n ?? 0);
  if (leftover > 0) {
    log(`finishing an interrupted run: ${leftover} components it had selected`);
    await drain(app, repo, out, signal);
  }
  const selected = await journal(app, repo, policies, opts.asOf, signal);
  log(`policies ${policies.map((p) => `'${p.name}'`).join(', ')} select ${selected} components`);
  await drain(app, repo, out, signal);

  let reclaimed = 0;
  if ((out.components > 0 || leftover > 0) && repo.format.reclaim) {
    const r = await repo.format.reclaim(repo, app, { asOf: opts.asOf, graceMs: opts.graceMs, signal });
    reclaimed = r.assetsDeleted;
    out.assets += r.assetsDeleted;
    out.blobIds.push(...r.blobIds);
    if (r.assetsDeleted > 0) log(`${r.assetsDeleted} assets only the deleted components used`);
  }
  log(`deleted ${out.components} components; freeing ${out.blobIds.length} blobs`);
  const blobs = await app.blobs.collect(out.blobIds, started, signal);
  const report: RepositoryReport = {
    repository: repo.name,
    policies: policies.map((p) => p.name),
    componentsDeleted: out.components,
    assetsDeleted: out.assets,
    blobsDeleted: blobs.blobsDeleted,
    bytesReclaimed: blobs.bytesReclaimed,
    skipped: out.skipped,
    resumed: leftover,
  };
  log(
    `deleted ${report.componentsDeleted} components and ${report.assetsDeleted} assets${reclaimed ? ` (${reclaimed} reclaimed after them)` : ''}; ` +
      `removed ${report.blobsDeleted} blobs, reclaimed ${report.bytesReclaimed} bytes` +
      (report.skipped ? `; ${report.skipped} selected components changed meanwhile and stay` : ''),
  );
  if (report.componentsDeleted + report.assetsDeleted + report.blobsDeleted > 0) {
    await app.audit.record(SYSTEM, {
      domain: 'repository.cleanup',
      type: 'cleaned',
      context: repo.name,
      attributes: { format: repo.format.name, ...report },
    });
  }
  return report;
}
