import type { Db } from '../db/db.js';
import { num, readCommittedRow } from '../db/db.js';

/** Never-expiring negative cache entries (timeToLive -1) still need a number in the column. */
const NEVER = Number.MAX_SAFE_INTEGER;

export interface AutoBlockTiming {
  /** First window after a failure; later ones follow the Fibonacci sequence (as Nexus), capped. */
  initialMs: number;
  maxMs: number;
}

export interface RemoteState {
  failures: number;
  blockedUntil: number | null;
  lastError: string | null;
}

/** Whether a request may go upstream now. */
export type Gate = { open: true; /** The remote had failures: a success must clear them. */ recovering: boolean } | { open: false; state: RemoteState };

/** Window after the n-th consecutive failure: initial × fib(n) (40 s, 40 s, 80 s, 120 s … in Nexus), capped. */
export function blockWindow(failures: number, t: AutoBlockTiming): number {
  let [a, b] = [1, 1]; // fib(1), fib(2)
  for (let i = 1; i < failures && a * t.initialMs < t.maxMs; i++) [a, b] = [b, a + b];
  return Math.min(t.maxMs, a * t.initialMs);
}

/**
 * Proxy state every node must agree on, kept in the database: the negative cache (paths the
 * remote said are missing, until a TTL) and the remote's health (consecutive failures, auto-block
 * window, last error).
 */
export class ProxyState {
  constructor(
    private readonly db: Db,
    private readonly timing: AutoBlockTiming,
  ) {}

  // Negative cache ----------------------------------------------------------------------------

  /** True while the remote's "not found" for `path` is remembered. */
  async isMissing(repositoryId: number, path: string, at = Date.now()): Promise<boolean> {
    // Asked on every read of a path a proxy lacks (a group's metadata asks each member): on
    // SQLite from the committed reader, which keeps the row until the next write; the expiry is
    // compared here so that the lookup is the same whatever the time.
    const fast = readCommittedRow(this.db, 'select expires_at from negative_cache where repository_id = ? and path = ? limit 1', [repositoryId, path]);
    if (fast !== null) return !!fast && num(fast.expires_at) > at;
    const r = await this.db('negative_cache').where({ repository_id: repositoryId, path }).where('expires_at', '>', at).first('status');
    return !!r;
  }

  async rememberMissing(repositoryId: number, path: string, status: number, ttlMs: number, at = Date.now()): Promise<void> {
    const expires = ttlMs < 0 ? NEVER : at + ttlMs;
    if (expires <= at) return;
    await this.db('negative_cache')
      .insert({ repository_id: repositoryId, path, status, expires_at: expires })
      .onConflict(['repository_id', 'path'])
      .merge(['status', 'expires_at']);
  }

  /** Forgets one path, or the whole repository's negative cache. */
  async forgetMissing(repositoryId: number, path?: string): Promise<number> {
    const q = this.db('negative_cache').where({ repository_id: repositoryId });
    if (path !== undefined) q.where({ path });
    return q.delete();
  }

  /** Drops expired entries (an expired entry is already ignored; this only reclaims the rows). */
  async purgeExpired(at = Date.now()): Promise<number> {
    return this.db('negative_cache').where('expires_at', '<=', at).delete();
  }

  // Remote health / auto-block ------------------------------------------------------------------

  async read(repositoryId: number): Promise<RemoteState> {
    const r = await this.db('proxy_status').where({ repository_id: repositoryId }).first();
    if (!r) return { failures: 0, blockedUntil: null, lastError: null };
    return {
      failures: num(r.failures),
      blockedUntil: r.blocked_until === null || r.blocked_until === undefined ? null : num(r.blocked_until),
      lastError: r.last_error ?? null,
    };
  }

  /**
   * Decides whether a request may go upstream. Inside an auto-block window: no. After it: one
   * request (on any node) wins the right to probe the remote by moving the window forward by
   * `probeMs` in a conditional update; the others stay blocked until the probe settles.
   */
  async gate(repositoryId: number, autoBlock: boolean, probeMs: number, at = Date.now()): Promise<Gate> {
    const state = await this.read(repositoryId);
    const recovering = state.failures > 0 || state.blockedUntil !== null;
    if (!autoBlock || state.blockedUntil === null) return { open: true, recovering };
    if (state.blockedUntil > at) return { open: false, state };
    const won = await this.db('proxy_status')
      .where({ repository_id: repositoryId, blocked_until: state.blockedUntil })
      .update({ blocked_until: at + probeMs, updated_at: at });
    if (won === 1) return { open: true, recovering: true };
    return { open: false, state: await this.read(repositoryId) };
  }

  /** The remote failed (unreachable, timeout, 5xx): count it and, with auto-block, block it for a while. */
  async failure(repositoryId: number, message: string, autoBlock: boolean, at = Date.now()): Promise<RemoteState> {
    await this.db('proxy_status').insert({ repository_id: repositoryId, failures: 0, updated_at: at }).onConflict('repository_id').ignore();
    await this.db('proxy_status')
      .where({ repository_id: repositoryId })
      .update({ failures: this.db.raw('failures + 1'), last_error: message.slice(0, 2000), updated_at: at });
    const state = await this.read(repositoryId);
    if (autoBlock) {
      state.blockedUntil = at + blockWindow(state.failures, this.timing);
      await this.db('proxy_status').where({ repository_id: repositoryId }).update({ blocked_until: state.blockedUntil });
    }
    return state;
  }

  /** The remote answered: whatever failures were counted are over. */
  async success(repositoryId: number): Promise<void> {
    await this.db('proxy_status').where({ repository_id: repositoryId }).update({ failures: 0, blocked_until: null, last_error: null, updated_at: Date.now() });
  }
}
