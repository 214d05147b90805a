/**
 * Keeps a hosted repository's repodata true (the maintenance hook): after every change that put
 * or removed an RPM, each affected repodata directory is generated again from the package
 * metadata stored with each RPM at upload (no RPM is read again). One change puts the new
 * hash-named files and repomd.xml together (clients see the old set or the new one); the files
 * of the previous generation stay for clients mid-refresh. Requests arriving while a generation
 * runs share the next one (a burst of uploads costs two generations, not one per upload); on a
 * cluster, one node at a time generates a directory (`repodata-lease.ts`), and repomd.xml's blob
 * is the change's expectation, so two nodes never both win even if the lease lapsed.
 */
import type { AssetView } from '../../src/content/types.js';
import type { ContentChange } from '../../src/content/content-change.js';
import type { Repository } from '../../src/repository/repository.js';
import type { CommittedChange } from '../../src/repository/unit-of-work.js';
import type { Stowage } from '../../src/stowage.js';
import { DEFAULT_YUM, GZ_TYPE, isRpm, repodataBase, XML_TYPE, type YumSection } from './paths.js';
import { underLease } from './repodata-lease.js';
import { repodataFiles, repomdXml, type RepoPackage } from './repodata.js';
import type { RpmPackage } from './rpm-package.js';
import { keyIdOf, signDetached, signingKeyOf, type SigningKey } from './signing.js';

/** How long files of older generations stay after they left repomd.xml. */
export const RETAIN_MS = 10 * 60_000;

export function yumSectionOf(repo: Repository): YumSection {
  return { ...DEFAULT_YUM, ...(repo.section<YumSection>('yum') ?? {}) };
}

/** The repodata directories a change touched. */
function touchedBases(change: CommittedChange, depth: number): Set<string> {
  const out = new Set<string>();
  for (const a of [...change.assetsPut, ...change.assetsDeleted]) {
    if (a.kind !== 'content' || !isRpm(a.path)) continue;
    const base = repodataBase(a.path, depth);
    if (base !== null) out.add(base);
  }
  return out;
}

export async function maintainRepodata(change: CommittedChange, app: Stowage): Promise<void> {
  const repo = change.repository;
  if (repo.type !== 'hosted') return;
  const bases = touchedBases(change, yumSectionOf(repo).repodataDepth);
  await Promise.all([...bases].map((b) => requestGeneration(app, repo, b)));
}

interface Slot {
  running: Promise<void> | null;
  next: Promise<void> | null;
}
const slots = new Map<string, Slot>();

/**
 * Resolves once a generation that started after this call has committed: the one queued behind
 * the running generation, shared by every request that arrives meanwhile.
 */
export function requestGeneration(app: Stowage, repo: Repository, base: string): Promise<void> {
  // Per node (app), not per process: tests run two nodes in one process.
  const key = `${app.tasks.node}:${repo.id}:${base}`;
  let slot = slots.get(key);
  if (!slot) slots.set(key, (slot = { running: null, next: null }));
  const s = slot;
  const start = (): Promise<void> => {
    const p = underLease(app, repo, base, () => generate(app, repo, base))
      .catch((e) => app.log.warn(`yum: repodata of '${repo.name}/${base}' not generated:`, (e as Error).message ?? e))
      .finally(() => {
        if (s.running === p) s.running = null;
        if (!s.running && !s.next) slots.delete(key);
      });
    s.running = p;
    return p;
  };
  if (!s.running) return start();
  if (!s.next) {
    s.next = s.running.then(() => {
      s.next = null;
      return start();
    });
  }
  return s.next;
}

/** repomd.xml.asc and .key beside repomd.xml when the repository has a key; none when it has not. */
export async function putSignature(c: ContentChange, repomdPath: string, repomd: Buffer, key: SigningKey | null): Promise<void> {
  if (!key) {
    c.deleteAsset(`${repomdPath}.asc`).deleteAsset(`${repomdPath}.key`);
    return;
  }
  const sig = await signDetached(key, repomd);
  c.put(`${repomdPath}.asc`, await c.stageBytes(sig.asc), { contentType: 'text/plain', kind: 'metadata', attributes: { fingerprint: sig.fingerprint } });
  c.put(`${repomdPath}.key`, await c.stageBytes(sig.publicKey), { contentType: 'text/plain', kind: 'metadata', attributes: { fingerprint: sig.fingerprint } });
}

/** Every repodata directory of a hosted repository generated again (a signing key set or removed). */
export async function regenerateAll(app: Stowage, repo: Repository): Promise<void> {
  if (repo.type !== 'hosted') return;
  const bases = new Set((await app.content.findAssets(repo.id, { pathLike: '%repodata/repomd.xml' })).map((a) => a.path.slice(0, -'repodata/repomd.xml'.length)));
  if (bases.size === 0) bases.add('');
  await Promise.all([...bases].map((b) => requestGeneration(app, repo, b)));
}

/**
 * For tests: generations made so far (per process), to check coalescing; generations of one
 * directory that ran while another (of any node in this process) was running, to check the
 * lease; how many run now; and a pause inside each generation, after it read the packages, that
 * widens the window in which generations could overlap or miss an upload.
 */
export const generationStats = { count: 0, overlaps: 0, active: 0, pauseMs: 0 };
const running = new Map<string, number>();

function repoPackage(a: AssetView, base: string): RepoPackage | null {
  const pkg = a.attributes.rpm as RpmPackage | undefined;
  if (!pkg || typeof pkg !== 'object') return null;
  return { pkg, href: a.path.slice(base.length), sha256: a.sha256, size: a.size, fileTime: Math.floor(a.created_at / 1000) };
}

/** One generation of `base`'s repodata, from the stored package metadata only. */
export async function generate(app: Stowage, repo: Repository, base: string): Promise<void> {
  const depth = yumSectionOf(repo).repodataDepth;
  const repomdPath = `${base}repodata/repomd.xml`;
  const dir = `${repo.id}:${base}`;
  const others = running.get(dir) ?? 0;
  running.set(dir, others + 1);
  if (others > 0) generationStats.overlaps++;
  generationStats.active++;
  try {
    await generateNow(app, repo, base, depth, repomdPath);
  } finally {
    generationStats.active--;
    const n = (running.get(dir) ?? 1) - 1;
    if (n > 0) running.set(dir, n);
    else running.delete(dir);
  }
}

async function generateNow(app: Stowage, repo: Repository, base: string, depth: number, repomdPath: string): Promise<void> {
  await repo.change({ source: 'maintenance', key: `yum-repodata:${base}` }, async (c) => {
    const current = await app.content.findAsset(repo.id, repomdPath);
    c.expectAsset(repomdPath, current?.blob_id ?? null);
    const assets = await app.content.findAssets(repo.id, base ? { pathPrefix: base, pathLike: '%.rpm' } : { pathLike: '%.rpm' });
    if (generationStats.pauseMs > 0) await new Promise((r) => setTimeout(r, generationStats.pauseMs));
    const pkgs = assets
      .filter((a) => a.kind === 'content' && repodataBase(a.path, depth) === base)
      .map((a) => repoPackage(a, base))
      .filter((p): p is RepoPackage => p !== null)
      .sort((a, b) => (a.href < b.href ? -1 : a.href > b.href ? 1 : 0));
    const files = await repodataFiles(pkgs);
    const hrefs = files.map((f) => f.href);
    const was = (current?.attributes.files as string[] | undefined) ?? [];
    const key = await signingKeyOf(app, repo);
    const keyId = keyIdOf(key);
    // Same packages, same documents, same key: nothing to write (an upload of identical bytes, a retry).
    if (current && hrefs.length === was.length && hrefs.every((h, i) => was[i] === h) && (current.attributes.signingKey ?? null) === keyId) return;
    generationStats.count++;
    for (const f of files) c.put(base + f.href, await c.stageBytes(f.gz), { contentType: GZ_TYPE, kind: 'metadata', ifAbsent: true });
    const revision = Math.floor(Date.now() / 1000);
    const repomd = Buffer.from(repomdXml(files, revision));
    c.put(repomdPath, await c.stageBytes(repomd), { contentType: XML_TYPE, kind: 'metadata', attributes: { files: hrefs, previous: was, revision, signingKey: keyId } });
    await putSignature(c, repomdPath, repomd, key);
    const keep = new Set([...hrefs, ...was].map((h) => base + h));
    const old = await app.content.findAssets(repo.id, { pathPrefix: `${base}repodata/` });
    for (const a of old) {
      if (a.path === repomdPath || keep.has(a.path) || !/-(primary|filelists|other)\.xml\.gz$/.test(a.path)) continue;
      if (Date.now() - a.updated_at > RETAIN_MS) c.deleteAsset(a.path);
    }
  });
}
