import { promises as fs } from 'node:fs';
import path from 'node:path';

const CHECK_MS = 1_000;
const FILE = 'space-reserve';

/**
 * A file of `bytes` in the data directory, given back when the disk is full so the database can
 * still commit the deletes that free space (SQLite cannot even delete without free pages for its
 * WAL), and written again once there is room. The free-space threshold keeps Stowage's own
 * uploads from filling the disk; this covers what the threshold cannot: concurrent uploads that
 * overshoot it, and other programs filling the disk.
 */
export class SpaceReserve {
  private timer?: NodeJS.Timeout;
  private busy = false;
  readonly file: string;

  constructor(
    readonly dir: string,
    readonly bytes: number,
    /** Free bytes the disk must keep after the reserve is written again. */
    private readonly minFree: number,
  ) {
    this.file = path.join(dir, FILE);
  }

  /** Writes the reserve if there is room, and watches the free space (checked every second). */
  start(): void {
    if (this.bytes <= 0 || this.timer) return;
    void this.check();
    this.timer = setInterval(() => void this.check(), CHECK_MS).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Releases the reserve when the disk is full, writes it again when there is room. `free`: known free bytes. */
  async check(free?: number): Promise<void> {
    if (this.bytes <= 0 || this.busy) return;
    this.busy = true;
    try {
      let room: number;
      if (free !== undefined) room = free;
      else {
        const s = await fs.statfs(this.dir);
        room = s.bavail * s.bsize;
      }
      const held = await fs.stat(this.file).then(
        (s) => s.size,
        () => 0,
      );
      if (held > 0 && room < this.bytes) {
        await fs.rm(this.file, { force: true });
      } else if (held < this.bytes && room - (this.bytes - held) >= Math.max(this.minFree, this.bytes)) {
        // Real bytes, not a sparse file: the space must be taken now to be given back later.
        await fs.writeFile(this.file, Buffer.alloc(this.bytes));
      }
    } catch {
      // A failed write (a full disk after all) must not leave half a reserve counted as whole.
      await fs.rm(this.file, { force: true }).catch(() => undefined);
    } finally {
      this.busy = false;
    }
  }
}
