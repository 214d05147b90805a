/**
 * How a change of one npm package is written: the packument (a metadata asset at `<name>`, the
 * stored source of truth) and its dist-tag rows, committed by the core's unit of work only while
 * the packument is still the one the change was computed from. Changes of one package run one at
 * a time on a node (the change key); across nodes the expectation decides and the core retries.
 */
import type { ContentChange } from '../../src/content/content-change.js';
import type { Repository } from '../../src/repository/repository.js';
import type { ChangeOptions, ChangeOutcome } from '../../src/repository/unit-of-work.js';
import { readPackument } from './documents.js';
import type { Packument } from './packument.js';

const JSON_TYPE = 'application/json';

export interface CurrentPackument {
  doc: Packument | null;
  /** The packument's blob (null: the package does not exist). */
  blobId: number | null;
}

export async function currentPackument(repo: Repository, name: string): Promise<CurrentPackument> {
  const c = await repo.local(name);
  if (!c) return { doc: null, blobId: null };
  return { doc: await readPackument(c), blobId: c.blob.id };
}

/** Describes on `c` the move from `cur` to `next` (null: the package is gone). */
export async function writePackument(c: ContentChange, name: string, cur: CurrentPackument, next: Packument | null): Promise<void> {
  c.expectAsset(name, cur.blobId);
  if (next) {
    c.put(name, await c.stageBytes(JSON.stringify(next)), { contentType: JSON_TYPE, kind: 'metadata', attributes: { packageName: name } });
  } else if (cur.blobId !== null) {
    c.deleteAsset(name);
  }
  const before = cur.doc?.['dist-tags'] ?? {};
  const after = next?.['dist-tags'] ?? {};
  for (const t of Object.keys(before)) if (!(t in after)) c.deleteTag(name, t);
  for (const [t, v] of Object.entries(after)) if (before[t] !== v) c.setTag(name, t, v);
}

/**
 * One change of package `name`: `compute` reads the current packument and describes the change
 * on `c` (tarballs to put or delete, audit records); it returns the next packument (null: the
 * package is gone; `cur.doc` itself: unchanged), written by writePackument.
 */
export async function changePackage(
  repo: Repository,
  name: string,
  opts: Omit<ChangeOptions, 'key'>,
  compute: (cur: CurrentPackument, c: ContentChange) => Promise<Packument | null> | Packument | null,
): Promise<ChangeOutcome<Packument | null>> {
  return repo.change({ ...opts, key: name }, async (c) => {
    const cur = await currentPackument(repo, name);
    const next = await compute(cur, c);
    // The very document read: nothing to write.
    if (next !== cur.doc) await writePackument(c, name, cur, next);
    return next;
  });
}
