import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * Bytes being written (a temp file, or a key published but not yet committed) look exactly like
 * garbage a crash left behind. The blob GC must never take them, whatever its grace: a grace of 0
 * is a legitimate setting. So every such name carries its writer's tag, and GC asks:
 *
 * - the writer is this object (same tag): it knows what it has open, exactly;
 * - the writer was a process on this machine (same host and PID namespace) that no longer runs:
 *   nothing will ever finish it, collect it now (what a restart after kill -9 needs);
 * - anything else (another node, a live process, a name without a tag): it may be in flight, so
 *   it is kept until it is older than `LIVE_WINDOW_MS` as well as the grace. Writers keep the
 *   mtime of their temp files recent (`HEARTBEAT_MS`) however slowly the client sends.
 */
export const LIVE_WINDOW_MS = 10 * 60_000;
export const HEARTBEAT_MS = 60_000;

/**
 * What makes a PID meaningful: the host, its boot and the PID namespace (containers sharing a
 * hostname do not share one). Null where /proc cannot say, and then no PID is judged dead.
 */
const HOST: string | null = (() => {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const ns = readlinkSync('/proc/self/ns/pid');
    return createHash('sha256').update(`${hostname()}\n${boot}\n${ns}`).digest('hex').slice(0, 8);
  } catch {
    return null;
  }
})();

const TAG_RE = /([0-9a-f]{8}|x{8})-(\d+)-([0-9a-f]{6})$/;

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The writes one driver or blob service has open, and the tag it puts in their names. */
export class IngestOwner {
  readonly tag = `${HOST ?? 'xxxxxxxx'}-${process.pid}-${randomBytes(3).toString('hex')}`;
  /** Name → when it was opened. */
  private readonly open = new Map<string, number>();

  add(name: string): void {
    const now = Date.now();
    // Entries past the window protect nothing any more; drop them so a caller that never closes cannot grow this.
    if (this.open.size >= 4096) for (const [k, t] of this.open) if (now - t > LIVE_WINDOW_MS) this.open.delete(k);
    this.open.set(name, now);
  }

  delete(name: string): void {
    this.open.delete(name);
  }

  names(): IterableIterator<string> {
    return this.open.keys();
  }

  get size(): number {
    return this.open.size;
  }

  /**
   * Whether GC may remove `name` (a temp file name or a storage key) last modified at `modifiedMs`,
   * under a grace of `graceMs`. Call it before checking the database: an entry is dropped only
   * after its commit, so "not open here" followed by "not in the database" means garbage.
   */
  collectable(name: string, modifiedMs: number, graceMs: number, nowMs = Date.now()): boolean {
    const age = nowMs - modifiedMs;
    if (age <= graceMs) return false;
    const m = TAG_RE.exec(name);
    if (m && m[0] === this.tag) {
      const since = this.open.get(name);
      // An entry nobody closed (a caller that neither committed nor discarded) stops protecting after the window.
      return since === undefined || nowMs - since > LIVE_WINDOW_MS;
    }
    if (m && HOST !== null && m[1] === HOST && !running(Number(m[2]))) return true;
    return age > LIVE_WINDOW_MS;
  }
}
