/**
 * Login throttling: after repeated failed sign-ins for one user id from one address, or from one
 * address for any users, further attempts from there are refused for a window that doubles with
 * every further failure, up to a cap. The refusal comes before any password is checked, so a
 * locked account cannot be probed from that address (not even with the right password), and the
 * answer is the same whether or not the user exists. A lock never follows the user elsewhere:
 * otherwise anyone could lock anyone (admin, CI) out by failing five times.
 *
 * State is per node and in memory: a cluster of N nodes behind a balancer allows up to N times
 * the attempts, which still turns an online guessing attack from thousands per second into a
 * handful per window.
 */
export interface ThrottleOptions {
  /** Failures of one user id from one address within the window before that pair is locked. */
  userThreshold: number;
  /** Failures from one address within the window (higher: several users may share a NAT). */
  addressThreshold: number;
  /** Failures older than this (after any lock ended) are forgotten. */
  windowMs: number;
  /** First lock; each further failure doubles it. */
  baseLockMs: number;
  maxLockMs: number;
  /** Entries kept per kind at most (oldest dropped), so a flood of names cannot exhaust memory. */
  maxEntries: number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = {
  userThreshold: 5,
  addressThreshold: 20,
  windowMs: 5 * 60_000,
  baseLockMs: 2_000,
  maxLockMs: 15 * 60_000,
  maxEntries: 100_000,
};

interface Entry {
  failures: number;
  last: number;
  lockedUntil: number;
}

/** Who is signing in: the user id given (absent for a bearer token) and the remote address. */
export interface LoginAttempt {
  user?: string;
  address: string;
}

/** A lock that a failure started or extended, for the audit log. */
export interface Lock {
  kind: 'user' | 'address';
  /** The user id (kind user, locked from `address` only) or the address. */
  key: string;
  address: string;
  until: number;
  failures: number;
}

export class LoginThrottle {
  options: ThrottleOptions;
  // Kept apart so that a flood of (spoofed) addresses cannot evict the entries of users, and back.
  // Users are keyed by (user id, address).
  private readonly users = new Map<string, Entry>();
  private readonly addresses = new Map<string, Entry>();

  constructor(options: Partial<ThrottleOptions> = {}) {
    this.options = { ...DEFAULT_THROTTLE, ...options };
  }

  /** Milliseconds before this attempt may be made; 0 when it may be made now. */
  retryAfter(a: LoginAttempt, t = Date.now()): number {
    let wait = 0;
    for (const [map, key] of this.keys(a)) {
      const e = this.live(map, key, t);
      if (e && e.lockedUntil > t) wait = Math.max(wait, e.lockedUntil - t);
    }
    return wait;
  }

  /** Counts a failed attempt; returns the locks it started or extended. */
  failure(a: LoginAttempt, t = Date.now()): Lock[] {
    const locks: Lock[] = [];
    for (const [map, key, kind] of this.keys(a)) {
      const e = this.live(map, key, t) ?? { failures: 0, last: t, lockedUntil: 0 };
      e.failures++;
      e.last = t;
      const threshold = kind === 'user' ? this.options.userThreshold : this.options.addressThreshold;
      if (e.failures >= threshold) {
        const lock = Math.min(this.options.maxLockMs, this.options.baseLockMs * 2 ** Math.min(30, e.failures - threshold));
        e.lockedUntil = t + lock;
        locks.push({ kind, key: kind === 'user' ? a.user! : a.address, address: a.address, until: e.lockedUntil, failures: e.failures });
      }
      map.delete(key); // Re-inserted last: Map order is then least recently failed first.
      map.set(key, e);
      this.bound(map, t);
    }
    return locks;
  }

  /** A successful sign-in clears the user's failures from that address (the address's run out with the window). */
  success(a: LoginAttempt): void {
    if (a.user !== undefined) this.users.delete(userKey(a.user, a.address));
  }

  private keys(a: LoginAttempt): Array<[Map<string, Entry>, string, 'user' | 'address']> {
    const out: Array<[Map<string, Entry>, string, 'user' | 'address']> = [[this.addresses, a.address, 'address']];
    if (a.user !== undefined) out.unshift([this.users, userKey(a.user, a.address), 'user']);
    return out;
  }

  /** The entry, unless it is over: no lock running and its last failure older than the window. */
  private live(map: Map<string, Entry>, key: string, t: number): Entry | undefined {
    const e = map.get(key);
    if (!e) return undefined;
    if (Math.max(e.last, e.lockedUntil) + this.options.windowMs < t) {
      map.delete(key);
      return undefined;
    }
    return e;
  }

  private bound(map: Map<string, Entry>, t: number): void {
    if (map.size <= this.options.maxEntries) return;
    for (const [k, e] of map) {
      if (map.size <= this.options.maxEntries * 0.9) break;
      if (Math.max(e.last, e.lockedUntil) + this.options.windowMs < t || map.size > this.options.maxEntries) map.delete(k);
    }
  }
}

/** User ids differ in case between realms (LDAP ignores it): one counter for all spellings. */
function userKey(user: string, address: string): string {
  return `${user.toLowerCase()}\n${address}`;
}
