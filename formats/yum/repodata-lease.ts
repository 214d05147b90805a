/**
 * A lease so that, on a cluster, one node at a time generates a repodata directory. The lease is
 * one tag row per directory (scope `yum-lease:<dir>`) holding `<node>:<until>:<dirty>`, written
 * only through conflict-checked changes on that row. A node that finds a live lease held by
 * another node sets its dirty flag on that same row instead of generating; the holder, when
 * releasing, finds the flag and generates again, so no request is lost. Because the flag and the
 * lease are one row, "mark dirty while it is held" and "release while it is clean" cannot both
 * commit. The compare-and-swap on repomd.xml in `generate` stays as the second guard (a holder
 * that stalls past its lease).
 */
import type { Repository } from '../../src/repository/repository.js';
import type { Stowage } from '../../src/stowage.js';

/** Lease length; renewed every third of it while the generation runs. A dead node's lease lapses after it. */
export const LEASE_MS = 30_000;
const LEASE_TAG = 'holder';

interface Lease {
  node: string;
  until: number;
  dirty: boolean;
}

const leaseScope = (base: string): string => `yum-lease:${base}`;
const format = (l: Lease): string => `${l.node}:${l.until}:${l.dirty ? 1 : 0}`;

function parse(v: string | null): Lease | null {
  const m = v === null ? null : /^(.*):(\d+):([01])$/.exec(v);
  return m ? { node: m[1], until: Number(m[2]), dirty: m[3] === '1' } : null;
}

/**
 * One change on the lease row: `decide` sees the row as it is and returns the row to write
 * (null: delete it; undefined: leave it) and a result; the change commits only if the row is
 * still what `decide` saw, else `decide` runs again on the new value.
 */
async function onLease<T>(app: Stowage, repo: Repository, base: string, decide: (cur: Lease | null) => { write?: Lease | null; result: T }): Promise<T> {
  const scope = leaseScope(base);
  const { value } = await repo.change({ source: 'maintenance', key: scope }, async (c) => {
    const raw = await app.content.tagTarget(repo.id, scope, LEASE_TAG);
    c.expectTag(scope, LEASE_TAG, raw);
    const { write, result } = decide(parse(raw));
    if (write === null) {
      if (raw !== null) c.deleteTag(scope, LEASE_TAG);
    } else if (write !== undefined) {
      c.setTag(scope, LEASE_TAG, format(write));
    }
    return result;
  });
  return value;
}

/**
 * Runs `generate` for `base` under the lease, again for as long as another node asked for a
 * generation while one ran; when another node holds the lease, leaves it a request instead.
 */
export async function underLease(app: Stowage, repo: Repository, base: string, generate: () => Promise<void>): Promise<void> {
  const me = app.tasks.node;
  const fresh = (): Lease => ({ node: me, until: Date.now() + LEASE_MS, dirty: false });
  const taken = await onLease(app, repo, base, (cur) => {
    if (cur && cur.node !== me && cur.until > Date.now()) return { write: cur.dirty ? undefined : { ...cur, dirty: true }, result: false };
    return { write: fresh(), result: true };
  });
  if (!taken) return;
  const renew = setInterval(
    () =>
      void onLease(app, repo, base, (cur) => {
        if (!cur || cur.node !== me) return { result: undefined };
        return { write: { ...cur, until: Date.now() + LEASE_MS }, result: undefined };
      }).catch((e) => app.log.warn(`yum: renewing the repodata lease of '${repo.name}/${base}' failed:`, (e as Error).message ?? e)),
    Math.floor(LEASE_MS / 3),
  );
  try {
    for (;;) {
      await generate();
      // Released only while nobody asked for more; a request that came meanwhile is served here.
      const again = await onLease(app, repo, base, (cur) => {
        if (!cur || cur.node !== me) return { result: false }; // Lapsed and taken: the new holder generates.
        if (cur.dirty) return { write: fresh(), result: true };
        return { write: null, result: false };
      });
      if (!again) return;
    }
  } catch (e) {
    await onLease(app, repo, base, (cur) => ({ write: cur && cur.node === me ? null : undefined, result: undefined })).catch(() => undefined);
    throw e;
  } finally {
    clearInterval(renew);
  }
}
