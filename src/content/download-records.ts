import { LRUCache } from 'lru-cache';
import type { Db } from '../db/db.js';
import { now } from '../db/db.js';
import type { AssetRow } from './types.js';

/** Downloads are written at most this long after they happen. */
const FLUSH_MS = 1000;
/** …or as soon as this many are waiting. */
const BATCH = 500;
/** One record per asset per this long (Nexus's last downloaded is a day-scale signal for cleanup). */
const THROTTLE_MS = 60_000;

/**
 * Nexus's "last downloaded" of assets, recorded off the hot path: throttled per asset, and written
 * in batches (at most a second later, or by `flush`), so a read never waits for a write.
 */
export class DownloadRecords {
  /** Recorded and not yet written: asset id → time. */
  private readonly pending = new Map<number, number>();
  /**
   * When this process last recorded each asset. Kept here, not in the row: rows may be shared and
   * frozen (the committed reader's kept rows), and writing into one threw and lost the record.
   */
  private readonly recent = new LRUCache<number, number>({ max: 100_000 });
  private timer?: NodeJS.Timeout;

  constructor(private readonly db: Db) {}

  mark(a: AssetRow): void {
    const t = now();
    if (a.last_downloaded !== null && t - a.last_downloaded < THROTTLE_MS) return;
    const marked = this.recent.get(a.id);
    if (marked !== undefined && t - marked < THROTTLE_MS) return;
    this.recent.set(a.id, t);
    this.pending.set(a.id, t);
    if (this.pending.size >= BATCH) void this.flush().catch(() => undefined);
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush().catch(() => undefined), FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Writes the downloads recorded so far (cleanup calls it before it judges last downloads). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return;
    // One statement per 500 assets, all at the batch's newest time (at most FLUSH_MS later than
    // an asset's own): a statement per asset held the one SQLite connection, and the event loop,
    // for tens of ms per flush while a build downloaded hundreds of files.
    const ids = [...this.pending.keys()];
    let t = 0;
    for (const at of this.pending.values()) t = Math.max(t, at);
    this.pending.clear();
    await this.db.transaction(async (tx) => {
      for (let i = 0; i < ids.length; i += 500) {
        await tx('assets')
          .whereIn('id', ids.slice(i, i + 500))
          .andWhere((w) => w.whereNull('last_downloaded').orWhere('last_downloaded', '<', t))
          .update({ last_downloaded: t });
      }
    });
  }
}
