import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import type { ByteRange } from '../blob/driver.js';
import { giveIngestBuffer } from '../blob/ingest-buffers.js';

const CHUNK = 256 * 1024;
/** Spool files are named so a sweep can tell them from anything else in the temp folder. */
const PREFIX = 'proxy-spool-';

type State = 'writing' | 'complete' | 'failed';

/**
 * A body on its way from upstream to the blob store, in a temp file every waiting client reads
 * while it grows. One descriptor serves the writer and every reader (positional reads), so the
 * file may be moved into the blob store or unlinked while slow readers are still on it: they
 * keep reading the same inode. The descriptor closes when the writer and every reader are done.
 */
export class Spool {
  private written = 0;
  private state: State = 'writing';
  private error?: Error;
  /** The writer's reference plus one per open reader. */
  private refs = 1;
  private closed = false;
  private readonly events = new EventEmitter();

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
  ) {
    this.events.setMaxListeners(0);
  }

  static async create(dir: string): Promise<Spool> {
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, `${PREFIX}${Date.now()}-${randomBytes(8).toString('hex')}`);
    return new Spool(file, await fs.open(file, 'w+'));
  }

  /** Removes spool files older than `olderThanMs` (left by a crash). Returns how many. */
  static async sweep(dir: string, olderThanMs: number): Promise<number> {
    let n = 0;
    for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
      if (!name.startsWith(PREFIX)) continue;
      const file = path.join(dir, name);
      const s = await fs.stat(file).catch(() => null);
      if (s && Date.now() - s.mtimeMs > olderThanMs) {
        await fs.rm(file, { force: true });
        n++;
      }
    }
    return n;
  }

  /** Bytes written so far. */
  get size(): number {
    return this.written;
  }

  /** The sink for the body; bytes become visible to readers as each write lands. */
  writer(): Writable {
    return new Writable({
      highWaterMark: CHUNK,
      write: (chunk: Buffer, _enc, cb) => {
        this.append(chunk).then(() => cb(), cb);
      },
    });
  }

  private async append(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await this.handle.write(chunk, off, chunk.length - off, this.written);
      off += bytesWritten;
      this.written += bytesWritten;
    }
    // Readers follow the file, not this buffer: it may go back to the pool it came from.
    giveIngestBuffer(chunk);
    this.events.emit('change');
  }

  /** The whole body is in: readers end when they reach it. */
  complete(): void {
    if (this.state !== 'writing') return;
    this.state = 'complete';
    this.events.emit('change');
  }

  /** The body will never be whole: every reader fails with `err`. */
  fail(err: Error): void {
    if (this.state !== 'writing') return;
    this.state = 'failed';
    this.error = err;
    this.events.emit('change');
  }

  /**
   * A stream of the body (or a range of it) that follows the file as it grows; null once the
   * spool is closed (the body is stored by then: read it from the blob store).
   */
  reader(range?: ByteRange): Readable | null {
    if (this.closed) return null;
    this.refs++;
    return new SpoolReader(this, range);
  }

  /** Drops the writer's reference (once the body is stored or abandoned). */
  release(): void {
    if (--this.refs > 0 || this.closed) return;
    this.closed = true;
    // Failed or abandoned bodies leave nothing behind; a stored one was moved away already.
    void this.handle
      .close()
      .catch(() => undefined)
      .then(() => fs.rm(this.path, { force: true }))
      .catch(() => undefined);
  }

  /** @internal for SpoolReader */
  view(): { written: number; state: State; error?: Error } {
    return { written: this.written, state: this.state, error: this.error };
  }
  /** @internal */
  read(buf: Buffer, position: number): Promise<number> {
    return this.handle.read(buf, 0, buf.length, position).then((r) => r.bytesRead);
  }
  /** @internal */
  onChange(fn: () => void): () => void {
    this.events.on('change', fn);
    return () => this.events.off('change', fn);
  }
}

/** Reads a spool from a position, waiting for bytes the writer has not written yet. */
class SpoolReader extends Readable {
  private pos: number;
  /** Exclusive end, or Infinity for "to the end of the body". */
  private readonly end: number;
  private busy = false;
  private waiting = false;
  private released = false;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly spool: Spool,
    range?: ByteRange,
  ) {
    super({ highWaterMark: CHUNK });
    this.pos = range?.start ?? 0;
    this.end = range ? range.end + 1 : Infinity;
    this.unsubscribe = spool.onChange(() => {
      if (!this.waiting) return;
      this.waiting = false;
      void this.pump();
    });
  }

  override _read(): void {
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.busy || this.destroyed) return;
    this.busy = true;
    try {
      for (;;) {
        const { written, state, error } = this.spool.view();
        if (state === 'failed') {
          this.destroy(error);
          return;
        }
        // The last byte waits for the verdict on the body (its digests against the format's
        // metadata): a client never holds a whole body that is then refused.
        const limit = Math.min(state === 'writing' ? written - 1 : written, this.end);
        if (this.pos < limit) {
          const buf = Buffer.allocUnsafe(Math.min(limit - this.pos, CHUNK));
          const n = await this.spool.read(buf, this.pos);
          if (this.destroyed) return;
          if (n === 0) throw new Error('Proxy spool file is shorter than what was written to it');
          this.pos += n;
          if (!this.push(n === buf.length ? buf : buf.subarray(0, n))) return;
          continue;
        }
        if (this.pos >= this.end || state === 'complete') {
          this.push(null);
          return;
        }
        this.waiting = true;
        return;
      }
    } catch (e) {
      this.destroy(e as Error);
    } finally {
      this.busy = false;
    }
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.unsubscribe();
    if (!this.released) {
      this.released = true;
      this.spool.release();
    }
    cb(err);
  }
}
