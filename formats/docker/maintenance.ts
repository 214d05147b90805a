/**
 * The docker maintenance hook: after any committed change (REST deletes of components and
 * assets, cleanup, GC, the registry protocol itself) tags, tag assets and components agree again:
 *   - a tag's asset `v2/<name>/manifests/<tag>` gone (its component deleted through the REST API,
 *     or the asset itself): the tag goes, so the registry no longer serves it;
 *   - a manifest by digest gone: every tag naming it goes with its asset and component, and the
 *     manifest's referrer index row.
 * The registry protocol's own deletes already do both in their change; then there is nothing left
 * to do here, found by reading, without a transaction.
 */
import type { CommittedChange } from '../../src/repository/unit-of-work.js';
import type { Stowage } from '../../src/stowage.js';
import { tagOfPath } from './components.js';
import { looksLikeDigest } from './manifest.js';
import { referrersScope, unindexReferrer } from './referrers.js';
import { removeTag } from './changes.js';

const MANIFEST_RE = /^v2\/(.+)\/manifests\/([^/]+)$/;

interface Repairs {
  untag: Array<{ name: string; tag: string; target: string }>;
  removeTags: Array<{ name: string; tag: string; target: string }>;
  unindex: Array<{ name: string; subject: string; digest: string }>;
}

/** What is out of line after `change`, read now. */
async function repairs(change: CommittedChange, app: Stowage): Promise<Repairs> {
  const repo = change.repository;
  const put = new Set(change.assetsPut.map((a) => a.path));
  const r: Repairs = { untag: [], removeTags: [], unindex: [] };
  for (const a of change.assetsDeleted) {
    if (put.has(a.path)) continue;
    const t = tagOfPath(a.path);
    if (t) {
      const target = await app.content.tagTarget(repo.id, t.name, t.tag);
      if (target !== null) r.untag.push({ ...t, target });
      continue;
    }
    const m = MANIFEST_RE.exec(a.path);
    if (!m || m[1] === '-' || !looksLikeDigest(m[2])) continue;
    const [, name, digest] = m;
    for (const tag of await app.content.getTags(repo.id, name)) if (tag.target === digest) r.removeTags.push({ name, tag: tag.name, target: digest });
    const subject = a.attributes.subject;
    if (typeof subject === 'string' && (await app.content.tagTarget(repo.id, referrersScope(name, subject), digest)) !== null) r.unindex.push({ name, subject, digest });
  }
  return r;
}

const nothing = (r: Repairs) => r.untag.length + r.removeTags.length + r.unindex.length === 0;

export async function maintain(change: CommittedChange, app: Stowage): Promise<void> {
  if (nothing(await repairs(change, app))) return;
  await change.repository.change({ source: 'maintenance' }, async (c) => {
    const r = await repairs(change, app);
    for (const t of r.untag) c.expectTag(t.name, t.tag, t.target).deleteTag(t.name, t.tag);
    for (const t of r.removeTags) {
      c.expectTag(t.name, t.tag, t.target);
      removeTag(c, t.name, t.tag);
    }
    for (const x of r.unindex) unindexReferrer(c, x.name, x.subject, x.digest);
  });
}
